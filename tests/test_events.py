"""Event hooks and OpenTelemetry: each attempt, retry, wait for quota and 429, as they happen."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import UTC, datetime

import anyio
import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import plumvoice_async._client
from plumvoice_async import (
    Answered,
    ClientEvent,
    InvalidParameterError,
    LocalGovernor,
    PlumClient,
    QuotaWaited,
    RateLimited,
    Retrying,
    ServerError,
    TransportError,
)
from plumvoice_async._telemetry import OpenTelemetry
from plumvoice_async.testing import FakeClock, PlumSimulator, Quota
from tests.doubles import InstantClock, json_response, scripted

pytestmark = pytest.mark.anyio

FUSE = ("me@example.com", "DEVKEY-secret")
PAGE = {"calls": [], "total_calls": 0}
QUOTA = {
    "X-RateLimit-Limit": "150",
    "X-RateLimit-Remaining": "149",
    "X-RateLimit-Reset": "1700000100",
    "Date": "Tue, 14 Nov 2023 22:13:20 GMT",  # 1_700_000_000: the reset is 100 s later
}


def make_client(transport: httpx.AsyncBaseTransport, **settings) -> PlumClient:
    settings.setdefault("clock", InstantClock())
    return PlumClient(
        fuse_auth=FUSE, http_client=httpx.AsyncClient(transport=transport), **settings
    )


async def test_hooks_see_each_attempt_retry_and_429_in_order():
    events: list[ClientEvent] = []
    transport, _ = scripted(
        json_response(503, {"error": "busy"}, **QUOTA),
        httpx.ConnectError("refused"),
        json_response(429, {"error": "rate limit exceeded"}, **QUOTA, **{"Retry-After": "7"}),
        json_response(200, PAGE, **{**QUOTA, "X-RateLimit-Remaining": "12"}),
    )
    clock = InstantClock()
    when: list[float] = []  # our wall clock as each event came

    def stamp(event: ClientEvent) -> None:
        when.append(clock.time())

    async with make_client(transport, event_hooks=[events.append, stamp], clock=clock) as client:
        await client.calls.page(1, 2)
    kinds = [type(event).__name__ for event in events]
    assert kinds == [
        "QuotaWaited", "Answered", "Retrying",
        "QuotaWaited", "Answered", "Retrying",
        "QuotaWaited", "Answered", "RateLimited",
        "QuotaWaited", "Answered",
    ]  # fmt: skip
    answered = [event for event in events if isinstance(event, Answered)]
    assert [(a.status, a.error, a.remaining) for a in answered] == [
        (503, None, 149),
        (None, "ConnectError", None),
        (429, None, 149),
        (200, None, 12),
    ]
    retries = [event for event in events if isinstance(event, Retrying)]
    assert [(r.attempt, r.reason) for r in retries] == [(1, "503"), (2, "ConnectError")]
    assert all(r.delay > 0 for r in retries)
    (limited,) = [event for event in events if isinstance(event, RateLimited)]
    assert limited.retry_after == 7
    # Reset - Date (100 s, on the server's clock) from our clock when the 429 came.
    came = when[events.index(limited)]
    assert limited.reset_at == datetime.fromtimestamp(came + 100, UTC)
    assert {(event.operation, event.group) for event in events} == {("calls.page", "fuse")}


async def test_a_wait_for_quota_is_reported_with_its_length():
    clock = FakeClock()
    simulator = PlumSimulator(clock=clock, quotas={"fuse": Quota(limit=1, window=100)})
    waits: list[QuotaWaited] = []
    governor = LocalGovernor(limit=1, window=100.0, clock=clock)

    def record(event: ClientEvent) -> None:
        if isinstance(event, QuotaWaited):
            waits.append(event)

    async with simulator.client(governor=governor, event_hooks=[record]) as client:
        await client.calls.page(0, 2**31 - 1, limit=1)
        async with anyio.create_task_group() as group:
            group.start_soon(client.calls.page, 0, 2**31 - 1)
            await clock.advance(150.0)  # past the window's end (and the governor's margin)
    assert waits[0].seconds == 0
    assert 100 - 1 <= waits[1].seconds <= 150  # it waited for the next window, not more


async def test_a_hook_that_raises_is_logged_and_the_request_goes_on(caplog):
    def broken(event: ClientEvent) -> None:
        raise RuntimeError("observer bug")

    seen: list[ClientEvent] = []
    transport, _ = scripted(json_response(200, PAGE, **QUOTA))
    with caplog.at_level(logging.WARNING, logger="plumvoice_async"):
        async with make_client(transport, event_hooks=[broken, seen.append]) as client:
            assert (await client.calls.page(1, 2)).total_calls == 0
    assert len(seen) == 2  # the next hook still ran
    assert "event hook" in caplog.text
    assert "observer bug" in caplog.text


@pytest.mark.parametrize("hooks", [print, "x", [1], {"a": print}, None])
async def test_event_hooks_must_be_a_sequence_of_callables(hooks):
    with pytest.raises(InvalidParameterError) as caught:
        PlumClient(fuse_auth=FUSE, event_hooks=hooks)
    assert caught.value.parameter == "event_hooks"


@pytest.fixture
def recorded(monkeypatch):
    """The client's OpenTelemetry recorder, on in-memory providers instead of the globals."""
    reader = InMemoryMetricReader()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    recorder = OpenTelemetry(MeterProvider(metric_readers=[reader]), tracer_provider)
    monkeypatch.setattr(plumvoice_async._client, "load_telemetry", lambda: recorder)
    return reader, exporter


def points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict, float]]]:
    found: dict[str, list[tuple[dict, float]]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:  # a histogram: its count
                        value = point.count
                    found.setdefault(metric.name, []).append((dict(point.attributes), value))
    return found


async def test_opentelemetry_spans_and_metrics_carry_the_contract_names(recorded):
    reader, exporter = recorded
    transport, _ = scripted(
        json_response(503, {"error": "busy"}, **QUOTA),
        json_response(429, {"error": "rate limit exceeded"}, **QUOTA),
        json_response(200, PAGE, **{**QUOTA, "X-RateLimit-Remaining": "41"}),
        httpx.ConnectError("refused"),
    )
    async with make_client(transport, max_retries=1) as client:
        await client.calls.page(1, 2)
        with pytest.raises(TransportError):  # no retry left
            await client.with_options(max_retries=0).calls.page(1, 2)
    first, second = exporter.get_finished_spans()
    assert first.name == second.name == "plumvoice calls.page"
    assert first.kind is SpanKind.CLIENT
    assert first.attributes["plumvoice.quota.group"] == "fuse"
    assert first.attributes["http.response.status_code"] == 200
    assert second.status.status_code is StatusCode.ERROR
    metrics = points(reader)
    requests = {
        tuple(sorted(attributes.items())): value
        for attributes, value in metrics["plumvoice.client.requests"]
    }
    assert requests == {
        (("http.response.status_code", 503), ("plumvoice.quota.group", "fuse")): 1,
        (("http.response.status_code", 429), ("plumvoice.quota.group", "fuse")): 1,
        (("http.response.status_code", 200), ("plumvoice.quota.group", "fuse")): 1,
        (("error.type", "ConnectError"), ("plumvoice.quota.group", "fuse")): 1,
    }
    assert metrics["plumvoice.client.rate_limited"] == [({"plumvoice.quota.group": "fuse"}, 1)]
    (waits,) = metrics["plumvoice.client.quota.wait"]
    assert waits == ({"plumvoice.quota.group": "fuse", "plumvoice.priority": "interactive"}, 4)
    assert metrics["plumvoice.client.quota.remaining"] == [({"plumvoice.quota.group": "fuse"}, 41)]


async def test_a_failed_request_span_names_its_status(recorded):
    _, exporter = recorded
    transport, _ = scripted(json_response(503, {"error": "busy"}, **QUOTA))
    async with make_client(transport, max_retries=0) as client:
        with pytest.raises(ServerError):
            await client.calls.page(1, 2)
    (span,) = exporter.get_finished_spans()
    assert span.attributes["http.response.status_code"] == 503
    assert span.status.status_code is StatusCode.ERROR


def test_without_opentelemetry_nothing_of_it_is_imported():
    script = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if the otel extra were not installed\n"
        "from plumvoice_async import PlumClient\n"
        "client = PlumClient(fuse_auth=('a', 'b'))\n"
        "assert client._transport._telemetry is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "['opentelemetry']"  # only the blocker itself


def test_a_bare_import_does_not_load_opentelemetry():
    script = (
        "import sys, plumvoice_async\n"
        "print(any(m.startswith('opentelemetry') for m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"
