"""Event hooks and OpenTelemetry: each attempt, retry, wait for quota and 429, as they happen."""

from __future__ import annotations

import base64
import functools
import logging
import subprocess
import sys
import traceback
import urllib.parse
import warnings
from datetime import UTC, date, datetime

import anyio
import attrs
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
    AuthenticationError,
    ClientEvent,
    DecodeError,
    InvalidParameterError,
    LocalGovernor,
    PlumClient,
    PlumError,
    QuotaWaited,
    RateLimited,
    RateLimitError,
    Retrying,
    ServerError,
    TransportError,
    VoiceTrendsLogin,
)
from plumvoice_async._telemetry import OpenTelemetry
from plumvoice_async.testing import FakeClock, PlumSimulator, Quota
from tests.doubles import InstantClock, handler_counting, json_response, scripted

pytestmark = pytest.mark.anyio

FUSE = ("me@example.com", "DEVKEY-secret")
TODAY = date(2023, 11, 14)
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


# --- red team: no secret in a span, a metric, a log line, an event or an error --------------

TOOL = VoiceTrendsLogin("fuseplus", "tool.owner@example.com", "p@ss w0rd&more")
MINTED = {"login": "minted-login-7f3a", "password": "minted-password-91c2"}


def basic_token(login: str, password: str) -> str:
    return base64.b64encode(f"{login}:{password}".encode()).decode()


SECRETS = (
    *FUSE,
    basic_token(*FUSE),
    TOOL.login,
    TOOL.password,
    urllib.parse.quote_plus(TOOL.login),
    urllib.parse.quote_plus(TOOL.password),
    *MINTED.values(),
    basic_token(MINTED["login"], MINTED["password"]),
)


def echo(request: httpx.Request) -> str:
    """What a hostile server sends back: the request's secrets, as sent and as decoded."""
    said = [f"Authorization: {request.headers.get('authorization')}", request.content.decode()]
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme == "Basic":
        said.append(base64.b64decode(token).decode())  # login:password
    form = urllib.parse.parse_qsl(request.content.decode())
    said += [f"{name}={value}" for name, value in form]
    return "; ".join(said)


def echoing(status: int, *, mint: int = 200) -> httpx.MockTransport:
    """A server that mints ``MINTED`` (or answers ``mint``) and answers data requests
    ``status``, every answer quoting the request (``echo``)."""

    def handler(request: httpx.Request) -> httpx.Response:
        said = echo(request)
        if request.url.path.endswith("/auth"):
            if mint == 200:
                return httpx.Response(200, json=MINTED, headers=QUOTA)
            return httpx.Response(mint, json={"error": f"refused: {said}"})
        if status == 200:  # a success whose body is an HTML page quoting the request
            return httpx.Response(200, text=f"<html>{said}</html>", headers=QUOTA)
        return httpx.Response(status, json={"error": said, "message": said}, headers=QUOTA)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("api", "status", "mint"),
    [
        ("fuse", 401, 200),
        ("fuse", 403, 200),
        ("fuse", 500, 200),
        ("fuse", 200, 200),
        ("voicetrends", 401, 200),  # twice: with the first pair, then with a new one
        ("voicetrends", 200, 200),
        ("voicetrends", 200, 400),  # the auth resource refuses, echoing the form
        ("voicetrends", 200, 401),
        ("voicetrends", 200, 503),
    ],
)
async def test_no_secret_reaches_spans_metrics_logs_events_or_errors(
    recorded, caplog, api, status, mint
):
    """A server echoing the request (a 401 page quoting ``Authorization``, an ``auth`` answer
    quoting the form) used to put the credentials in the error's message, and so in the
    span's exception event and in every log that printed the error."""
    reader, exporter = recorded
    events: list[ClientEvent] = []
    http = httpx.AsyncClient(transport=echoing(status, mint=mint))
    client = PlumClient(
        fuse_auth=FUSE,
        voicetrends_login=TOOL,
        http_client=http,
        clock=InstantClock(),
        max_retries=1,
        event_hooks=[events.append],
    )
    caught: list[BaseException] = []
    with caplog.at_level(logging.DEBUG, logger="plumvoice_async"):
        async with client:
            for view in (client, client.with_options(priority="bulk")):
                if api == "fuse":
                    call = functools.partial(view.calls.page, 1, 2)
                    raw = functools.partial(view.calls.with_raw_response.page, 1, 2)
                else:
                    period = {"period": "day", "phone": "ALL"}
                    call = functools.partial(view.events.fetch, TODAY, TODAY, **period)
                    raw = functools.partial(
                        view.events.with_raw_response.fetch, TODAY, TODAY, **period
                    )
                for attempt in (call, raw):
                    try:
                        answer = await attempt()
                    except PlumError as exc:
                        caught.append(exc)
                        continue
                    # A raw 200 whose body is the echo: the error comes at parse().
                    texts = [repr(answer), repr(answer.http_response.headers)]
                    texts.append(repr(answer.http_response.request.headers))
                    texts.append(repr(attrs.asdict(answer, recurse=False)))
                    assert not [s for s in SECRETS if any(s in text for text in texts)]
                    with pytest.raises(DecodeError) as at_parse:
                        answer.parse()
                    caught.append(at_parse.value)
    assert len(caught) == 4
    texts = [caplog.text, *map(repr, events)]
    for exc in caught:
        texts += [str(exc), repr(exc), *map(str, exc.args)]
        texts += ["".join(traceback.format_exception(exc))]
        texts += [
            str(value) for value in vars(exc).values() if not isinstance(value, httpx.Response)
        ]
    for span in exporter.get_finished_spans():
        texts += [f"{span.name} {dict(span.attributes or {})} {span.status.description}"]
        texts += [f"{event.name} {dict(event.attributes or {})}" for event in span.events]
    texts += [repr(points(reader))]
    leaked = {secret for secret in SECRETS if any(secret in text for text in texts)}
    assert not leaked
    assert len(exporter.get_finished_spans()) == 4


# --- red team: hooks that raise, escape, await, re-enter, or are registered twice ----------


class Escape(BaseException):
    """What a hook may raise that is no ``Exception`` (``KeyboardInterrupt``, ``SystemExit``)."""


def busy_then_ok() -> tuple[httpx.MockTransport, list[httpx.Request]]:
    return scripted(
        json_response(503, {"error": "busy"}, **QUOTA),
        json_response(429, {"error": "rate limit exceeded"}, **QUOTA),
        json_response(200, {"calls": [], "total_calls": 3}, **QUOTA),
    )


async def test_a_hook_raising_on_every_event_neither_loses_nor_doubles_a_request(caplog):
    calls: list[ClientEvent] = []

    def broken(event: ClientEvent) -> None:
        calls.append(event)
        raise RuntimeError("observer bug")

    transport, seen = busy_then_ok()
    governor = LocalGovernor(clock=InstantClock())
    with caplog.at_level(logging.WARNING, logger="plumvoice_async"):
        async with make_client(transport, governor=governor, event_hooks=[broken]) as client:
            assert (await client.calls.page(1, 2)).total_calls == 3
            key = client.quota_key("fuse")
            assert key is not None
            snapshot = await governor.snapshot(key)
    assert len(seen) == 3  # 503, 429, 200: each sent once, none lost or repeated
    assert len(calls) == 3 + 3 + 1 + 1  # QuotaWaited and Answered each, Retrying, RateLimited
    assert caplog.text.count("event hook") == len(calls)
    assert snapshot.in_flight == 0


async def test_a_hook_registered_twice_is_called_twice_for_each_event():
    seen: list[ClientEvent] = []
    transport, _ = scripted(json_response(200, PAGE, **QUOTA))
    async with make_client(transport, event_hooks=[seen.append, seen.append]) as client:
        await client.calls.page(1, 2)
    assert [type(event).__name__ for event in seen] == [
        "QuotaWaited", "QuotaWaited", "Answered", "Answered",
    ]  # fmt: skip
    assert seen[0] is seen[1]


@pytest.mark.parametrize("kind", [QuotaWaited, Answered, Retrying, RateLimited])
async def test_a_hook_escaping_with_a_base_exception_leaks_no_token(kind):
    """A ``KeyboardInterrupt``-like exception from a hook goes through (it is not the
    hook's bug to swallow); it used to leave the token taken from the governor in flight for
    good when it came out of the ``QuotaWaited`` hook, before the send."""

    def escape(event: ClientEvent) -> None:
        if isinstance(event, kind):
            raise Escape

    transport, seen = busy_then_ok()
    governor = LocalGovernor(clock=InstantClock())
    async with make_client(transport, governor=governor, event_hooks=[escape]) as client:
        with pytest.raises(Escape):
            await client.calls.page(1, 2)
        key = client.quota_key("fuse")
        assert key is not None
        snapshot = await governor.snapshot(key)
        assert snapshot.in_flight == 0
        assert len(seen) <= 2  # it stopped where the hook escaped


async def test_an_async_hook_is_refused_rather_than_never_awaited():
    """Hooks are called, not awaited: an ``async def`` hook used to be accepted and each of
    its coroutines dropped with a "never awaited" warning, so it saw nothing."""

    async def watch(event: ClientEvent) -> None: ...

    class Watcher:
        async def __call__(self, event: ClientEvent) -> None: ...

    send, receive = anyio.create_memory_object_stream[ClientEvent](10)
    with send, receive:
        for hook in (watch, Watcher(), functools.partial(watch), send.send):
            with pytest.raises(InvalidParameterError, match="awaited") as caught:
                PlumClient(fuse_auth=FUSE, event_hooks=[print, hook])
            assert caught.value.parameter == "event_hooks"


async def test_a_hook_returning_a_coroutine_is_logged_and_the_coroutine_closed(caplog):
    send, receive = anyio.create_memory_object_stream[ClientEvent](10)
    transport, _ = scripted(json_response(200, PAGE, **QUOTA))
    with send, receive, warnings.catch_warnings():
        warnings.simplefilter("error")  # a coroutine never awaited would warn: it is closed
        with caplog.at_level(logging.WARNING, logger="plumvoice_async"):
            # A plain function returning a coroutine: ``send.send`` itself would be refused.
            hook = lambda e: send.send(e)  # noqa: E731, PLW0108
            async with make_client(transport, event_hooks=[hook]) as client:
                await client.calls.page(1, 2)
    assert caplog.text.count("returned an awaitable") == 2


async def test_a_hook_may_start_requests_on_the_same_client():
    """Re-entrant use: a hook that schedules a request of its own (a task group it holds)
    on the client it watches; each request goes through once, and the hook sees them all."""
    transport, seen = handler_counting(lambda request: json_response(200, PAGE, **QUOTA))
    started: list[str] = []
    events: list[ClientEvent] = []

    async with anyio.create_task_group() as group:
        client: PlumClient | None = None

        def spawn(event: ClientEvent) -> None:
            events.append(event)
            if isinstance(event, Answered) and len(started) < 3 and client is not None:
                started.append(event.operation)
                group.start_soon(client.with_options(priority="bulk").calls.page, 1, 2)

        client = make_client(transport, event_hooks=[spawn])
        await client.calls.page(1, 2)
    await client.aclose()
    assert len(seen) == 4  # the first request and the three the hook started
    assert [type(event).__name__ for event in events].count("Answered") == 4
    priorities = [event.priority for event in events if isinstance(event, QuotaWaited)]
    assert priorities == ["interactive", "bulk", "bulk", "bulk"]


async def test_a_span_names_a_status_only_when_the_server_answered(recorded):
    """A request refused by the governor (``max_wait``) or for want of credentials sends
    nothing, yet its span used to say ``http.response.status_code`` 429 or 401: the class's
    status, not an answer's. A body that fails to decode was answered: its span says 200."""
    _, exporter = recorded
    transport, seen = scripted(json_response(200, PAGE, **{**QUOTA, "X-RateLimit-Remaining": "0"}))
    governor = LocalGovernor(limit=1, window=900.0, clock=InstantClock())
    async with make_client(transport, governor=governor) as client:
        await client.calls.page(1, 2)
        with pytest.raises(RateLimitError):
            await client.with_options(max_wait=0).calls.page(1, 2)  # refused, nothing sent
        with pytest.raises(AuthenticationError):
            await client.events.fetch(TODAY, TODAY, period="day", phone="ALL")  # no credentials
    assert len(seen) == 1
    ok, refused, unauthenticated = exporter.get_finished_spans()
    assert ok.attributes["http.response.status_code"] == 200
    for span in (refused, unauthenticated):
        assert "http.response.status_code" not in span.attributes
        assert span.status.status_code is StatusCode.ERROR


async def test_a_span_of_an_undecodable_answer_names_its_status(recorded):
    _, exporter = recorded
    transport, _ = scripted(httpx.Response(200, text="<html>maintenance</html>"))
    async with make_client(transport) as client:
        with pytest.raises(DecodeError):
            await client.calls.page(1, 2)
    (span,) = exporter.get_finished_spans()
    assert span.attributes["http.response.status_code"] == 200
    assert span.status.status_code is StatusCode.ERROR


async def test_a_hook_is_named_in_logs_and_errors_never_shown_with_what_it_binds(caplog):
    """A hook's repr can carry the application's own secrets (a partial binding an API key):
    warnings and errors used to print it whole."""

    def ship(event: ClientEvent, *, api_key: str) -> None:
        raise RuntimeError("collector down")

    async def ship_async(event: ClientEvent, *, api_key: str) -> None: ...

    class Exporter:
        def __init__(self, token: str) -> None:
            self.token = token

        def __repr__(self) -> str:
            return f"Exporter(token={self.token!r})"

        def __call__(self, event: ClientEvent) -> None:
            raise RuntimeError("collector down")

    hooks = [functools.partial(ship, api_key="dd-KEY-123"), Exporter("tok-SECRET-456")]
    transport, _ = scripted(json_response(200, PAGE, **QUOTA))
    with caplog.at_level(logging.WARNING, logger="plumvoice_async"):
        async with make_client(transport, event_hooks=hooks) as client:
            await client.calls.page(1, 2)
    with pytest.raises(InvalidParameterError) as caught:
        PlumClient(event_hooks=[functools.partial(ship_async, api_key="dd-KEY-123")])
    texts = (caplog.text, str(caught.value))
    assert "ship>" in caplog.text
    assert "Exporter>" in caplog.text
    assert "ship_async>" in str(caught.value)
    assert not [text for text in texts if "dd-KEY-123" in text or "tok-SECRET-456" in text]


async def test_a_refused_mint_names_the_tool_and_hides_the_account():
    transport, _ = scripted(
        json_response(400, {"error": "invalid developer login for tool dev: tool.owner@x.io"})
    )
    client = PlumClient(
        voicetrends_login=VoiceTrendsLogin("dev", "tool.owner@x.io", "pw-123456"),
        http_client=httpx.AsyncClient(transport=transport),
        clock=InstantClock(),
    )
    async with client:
        with pytest.raises(PlumError) as caught:
            await client.events.fetch(TODAY, TODAY, period="day", phone="ALL")
    assert "invalid developer login for tool dev: <redacted>" in str(caught.value)


async def test_a_malformed_answer_quoting_the_request_leaves_no_secret_in_the_error(recorded):
    """httpx quotes a malformed answer in its protocol error; the ``TransportError`` raised
    from it chained that error, so the span's stack trace showed the echoed credentials."""
    _, exporter = recorded

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError(f"illegal header line: {echo(request)!r}")

    async with make_client(httpx.MockTransport(handler), max_retries=1) as client:
        with pytest.raises(TransportError) as caught:
            await client.calls.page(1, 2)
    texts = [str(caught.value), "".join(traceback.format_exception(caught.value))]
    for span in exporter.get_finished_spans():
        texts += [f"{event.name} {dict(event.attributes or {})}" for event in span.events]
    assert "RemoteProtocolError" in texts[0]  # the type is still named
    assert [secret for secret in SECRETS if any(secret in text for text in texts)] == []
