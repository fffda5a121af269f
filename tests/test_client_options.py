"""``PlumClient.with_options``: per-call settings over one pool, one governor, one set of keys."""

from __future__ import annotations

import itertools
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date

import anyio
import anyio.lowlevel
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import plumvoice_async._client
from plumvoice_async import (
    ClientEvent,
    InvalidParameterError,
    LocalGovernor,
    PlumClient,
    QuotaWaited,
    RateLimitError,
    ServerError,
    SyncPlumClient,
)
from plumvoice_async._governor import Governor
from plumvoice_async._redis import RedisGovernor
from plumvoice_async._telemetry import OpenTelemetry
from plumvoice_async.testing import FakeClock
from tests.doubles import InstantClock, RecordingGovernor, handler_counting
from tests.redis_server import redis_url

__all__ = ["redis_url"]  # the fixture, imported for pytest

pytestmark = pytest.mark.anyio

FUSE = ("me@example.com", "DEVKEY-secret")
QUOTA = {
    "X-RateLimit-Limit": "2",
    "X-RateLimit-Reset": "1519659900",
    "Date": "Mon, 26 Feb 2018 15:30:00 GMT",
}


def counting_server(status: int = 200):
    """A Fuse that answers ``status`` and records each request's limit and timeout."""
    seen: list[tuple[str, dict[str, float | None]]] = []
    remaining = iter(range(1, -100, -1))

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.params["limit"], request.extensions["timeout"]))
        headers = {**QUOTA, "X-RateLimit-Remaining": str(max(0, next(remaining)))}
        body = {"calls": [], "total_calls": 0} if status == 200 else {"error": "busy"}
        return httpx.Response(status, json=body, headers=headers)

    return httpx.MockTransport(handler), seen


def make_client(transport: httpx.AsyncBaseTransport, **settings) -> PlumClient:
    return PlumClient(
        fuse_auth=FUSE,
        http_client=httpx.AsyncClient(transport=transport),
        clock=InstantClock(),
        **settings,
    )


async def test_a_child_shares_the_pool_the_governor_and_so_the_quota():
    transport, seen = counting_server()
    governor = LocalGovernor(limit=2, window=900.0, clock=InstantClock())
    async with make_client(transport, governor=governor) as parent:
        child = parent.with_options(max_wait=0)
        assert child.governor is parent.governor
        assert child._http is parent._http
        await parent.calls.page(1, 2, limit=1)
        await child.calls.page(1, 2, limit=2)  # the server's Remaining is 0 after this one
        key = parent.quota_key("fuse")
        assert key is not None
        snapshot = await governor.snapshot(key)
        assert snapshot.remaining == 0  # both requests drew from the one bucket
        with pytest.raises(RateLimitError):
            await child.calls.page(1, 2, limit=3)  # max_wait=0: refused at once
    assert [limit for limit, _ in seen] == ["1", "2"]


async def test_closing_the_parent_closes_the_child_and_not_the_other_way():
    transport, seen = counting_server()
    parent = make_client(transport)
    child = parent.with_options(max_retries=0)
    await child.aclose()
    await parent.calls.page(1, 2, limit=1)  # the parent is untouched by its child's close
    grandchild = parent.with_options(max_wait=5).with_options(max_retries=1)
    await parent.aclose()
    for closed in (child, grandchild, parent):
        with pytest.raises(RuntimeError, match="closed"):
            await closed.calls.page(1, 2, limit=9)
    assert [limit for limit, _ in seen] == ["1"]


async def test_timeouts_as_seconds_or_httpx_timeout_reach_each_request():
    transport, seen = counting_server()
    async with make_client(transport, timeout=httpx.Timeout(7.0, connect=2.0)) as parent:
        await parent.calls.page(1, 2, limit=1)
        await parent.with_options(timeout=3.5).calls.page(1, 2, limit=2)
        await parent.with_options(timeout=httpx.Timeout(1.0)).calls.page(1, 2, limit=3)
    timeouts = [timeout for _, timeout in seen]
    assert timeouts[0] == {"connect": 2.0, "read": 7.0, "write": 7.0, "pool": 7.0}
    assert timeouts[1] == dict.fromkeys(("connect", "read", "write", "pool"), 3.5)
    assert timeouts[2] == dict.fromkeys(("connect", "read", "write", "pool"), 1.0)


async def test_siblings_running_at_once_keep_their_own_settings():
    transport, seen = counting_server(status=503)
    async with make_client(transport, max_retries=3) as parent:
        siblings = {n: parent.with_options(max_retries=n) for n in (0, 1, 2)}

        async def fetch(client: PlumClient, tag: int) -> None:
            with pytest.raises(ServerError):
                await client.calls.page(1, 2, limit=tag + 10)

        async with anyio.create_task_group() as group:
            for n, sibling in siblings.items():
                group.start_soon(fetch, sibling, n)
            group.start_soon(fetch, parent, 9)
    attempts = Counter(int(limit) - 10 for limit, _ in seen)
    assert attempts == {0: 1, 1: 2, 2: 3, 9: 4}  # max_retries + 1 each; the parent's 3 kept


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("timeout", math.nan),
        ("timeout", 0),
        ("timeout", "5"),
        ("max_retries", -1),
        ("max_retries", True),
        ("max_retries", 2.0),
        ("max_wait", -1),
        ("max_wait", math.inf),
        ("priority", "urgent"),
        ("priority", "BULK"),
        ("priority", None),
        ("priority", 1),
    ],
)
async def test_options_are_checked_as_the_constructor_checks_them(option, value):
    transport, seen = counting_server()
    async with make_client(transport) as parent:
        with pytest.raises(InvalidParameterError) as caught:
            parent.with_options(**{option: value})
    assert caught.value.parameter == option
    assert seen == []


async def test_an_unknown_option_is_a_type_error():
    transport, _ = counting_server()
    async with make_client(transport) as parent:
        with pytest.raises(TypeError):
            parent.with_options(format="xml")  # type: ignore[call-arg]


async def test_priority_reaches_the_governor_and_the_quota_wait_event():
    """Issue 13: a bulk child's requests queue as bulk; the parent's stay interactive."""
    transport, _ = counting_server()
    governor = RecordingGovernor()
    waited: list[QuotaWaited] = []
    hooks = [lambda event: waited.append(event) if isinstance(event, QuotaWaited) else None]
    async with make_client(transport, governor=governor, event_hooks=hooks) as parent:
        bulk = parent.with_options(priority="bulk")
        await bulk.calls.page(1, 2, limit=10)
        await parent.calls.page(1, 2, limit=10)
        await bulk.with_options(max_wait=1).calls.page(1, 2, limit=10)  # a grandchild keeps it
        await bulk.with_options(priority="interactive").calls.page(1, 2, limit=10)
    expected = ["bulk", "interactive", "bulk", "interactive"]
    assert governor.priorities == expected
    assert [event.priority for event in waited] == expected


async def test_the_constructors_priority_is_the_default_of_every_request():
    transport, _ = counting_server()
    governor = RecordingGovernor()
    async with make_client(transport, governor=governor, priority="bulk") as client:
        await client.calls.page(1, 2, limit=10)
    assert governor.priorities == ["bulk"]


def test_the_sync_client_takes_priority_in_the_constructor_and_with_options():
    transport, _ = counting_server()
    governor = RecordingGovernor()
    client = SyncPlumClient(
        fuse_auth=FUSE,
        http_client=httpx.AsyncClient(transport=transport),
        clock=InstantClock(),
        governor=governor,
        priority="bulk",
    )
    try:
        client.calls.page(1, 2, limit=10)
        client.with_options(priority="interactive").calls.page(1, 2, limit=10)
        with pytest.raises(InvalidParameterError) as caught:
            client.with_options(priority="later")
        assert caught.value.parameter == "priority"
    finally:
        client.close()
    assert governor.priorities == ["bulk", "interactive"]


# --- red team: options that are not what they seem, and a parent closed under a child ------


@pytest.mark.parametrize(
    "bad",
    [
        httpx.Timeout(-1.0),
        httpx.Timeout(0.0),
        httpx.Timeout(math.nan),
        httpx.Timeout(math.inf),
        httpx.Timeout(5.0, connect=-2.0),
        httpx.Timeout(5.0, pool=math.nan),
        httpx.Timeout(5.0, read=True),  # type: ignore[arg-type]
        httpx.Timeout(5.0, write="3"),  # type: ignore[arg-type]
    ],
)
async def test_an_httpx_timeout_is_checked_field_by_field(bad):
    """An ``httpx.Timeout`` went through unchecked: a negative field failed every attempt with
    a ``ConnectTimeout`` (a ``TransportError`` after spending a token per attempt), a nan one
    with a bare ``ValueError`` from the event loop."""
    transport, seen = counting_server()
    with pytest.raises(InvalidParameterError) as built:
        make_client(transport, timeout=bad)
    assert built.value.parameter == "timeout"
    async with make_client(transport) as parent:
        with pytest.raises(InvalidParameterError) as derived:
            parent.with_options(timeout=bad)
    assert derived.value.parameter == "timeout"
    assert seen == []


async def test_an_httpx_timeout_may_leave_fields_unbounded():
    transport, seen = counting_server()
    async with make_client(transport, timeout=httpx.Timeout(None, connect=2.0)) as parent:
        await parent.calls.page(1, 2, limit=1)
    assert seen[0][1] == {"connect": 2.0, "read": None, "write": None, "pool": None}


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_wait", True),
        ("max_wait", math.nan),
        ("max_wait", "1"),
        ("timeout", False),
        ("timeout", -0.0),
        ("timeout", None),
        ("max_retries", None),
        ("max_retries", 10**100 * 1.0),
    ],
)
async def test_more_bad_options_are_refused_naming_them_after_a_chain(option, value):
    transport, seen = counting_server()
    async with make_client(transport) as parent:
        chained = parent.with_options(max_wait=1).with_options(priority="bulk")
        with pytest.raises(InvalidParameterError) as caught:
            chained.with_options(**{option: value})
        assert caught.value.parameter == option
        assert chained._transport.max_wait == 1  # a refused option changes nothing
    assert seen == []


async def test_a_child_waiting_for_quota_when_the_parent_closes_sends_nothing():
    """A child queued for quota used to be handed its token after the parent closed the pool,
    then fail inside httpx with its token counted as spent; it now says the client is closed
    and gives the token back."""
    clock = FakeClock()
    governor = LocalGovernor(limit=1, window=100.0, clock=clock)
    transport, seen = handler_counting(
        lambda request: httpx.Response(200, json={"calls": [], "total_calls": 0})
    )
    parent = make_client(transport, governor=governor)
    child = parent.with_options(priority="bulk")
    await parent.calls.page(1, 2, limit=1)  # the window's one token
    key = parent.quota_key("fuse")
    assert key is not None
    failures: list[BaseException] = []

    async def waiting() -> None:
        try:
            await child.calls.page(1, 2, limit=2)
        except RuntimeError as exc:
            failures.append(exc)

    async with anyio.create_task_group() as group:
        group.start_soon(waiting)
        while (await governor.snapshot(key)).waiting == 0:
            await anyio.lowlevel.checkpoint()
        await parent.aclose()
        await clock.advance(200.0)
    assert [request.url.params["limit"] for request in seen] == ["1"]
    assert len(failures) == 1
    assert "closed" in str(failures[0])
    snapshot = await governor.snapshot(key)
    assert snapshot.in_flight == 0
    assert snapshot.remaining == 1  # the token given back, not spent


# --- red team: cancellation at every await of a request, at each priority ------------------


def slow_server() -> httpx.MockTransport:
    """Every request: a few awaits, then 200 (the first), 503, 429, and 200 for good."""
    answers = [200, 503, 429]

    async def handler(request: httpx.Request) -> httpx.Response:
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        status = answers.pop(0) if answers else 200
        body = {"calls": [], "total_calls": 0} if status == 200 else {"error": "busy"}
        return httpx.Response(status, json=body, headers={"Retry-After": "1"})

    return httpx.MockTransport(handler)


@pytest.fixture
def spans(monkeypatch) -> InMemorySpanExporter:
    """The spans the clients of the test record (OpenTelemetry SDK, in memory)."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    recorder = OpenTelemetry(tracer_provider=tracer_provider)
    monkeypatch.setattr(plumvoice_async._client, "load_telemetry", lambda: recorder)
    return exporter


async def cancel_at_every_step(
    governor_for: Callable[[InstantClock], Governor],
    priority: str,
    spans: InMemorySpanExporter,
    schedule: Iterable[int | None] = range(400),
) -> tuple[int | None, list[ClientEvent]]:
    """Cancel one request after each number of scheduler steps of ``schedule`` in turn
    (``None``: never), until one run completes: through its wait for quota, its 503 backoff,
    its 429 re-queue and each send. After each cancellation nothing of it is in flight or
    waiting, and its span has ended. Returns the steps the completed run took and its events."""
    for run, steps in enumerate(schedule):
        events: list[ClientEvent] = []
        clock = InstantClock()
        governor = governor_for(clock)
        async with PlumClient(
            fuse_auth=FUSE,
            http_client=httpx.AsyncClient(transport=slow_server()),
            clock=clock,
            governor=governor,
            priority=priority,
            event_hooks=[events.append],
        ) as client:
            key = client.quota_key("fuse")
            assert key is not None
            await client.with_options(priority="interactive").calls.page(1, 2)  # one spent
            done: list[object] = []

            async def request(client: PlumClient = client, done: list[object] = done) -> None:
                done.append(await client.calls.page(1, 2))

            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as group:
                    group.start_soon(request)
                    if steps is not None:
                        for _ in range(steps):
                            await anyio.lowlevel.checkpoint()
                        scope.cancel()
            snapshot = await governor.snapshot(key)
            assert (snapshot.in_flight, snapshot.waiting) == (0, 0), steps
        assert len(spans.get_finished_spans()) == 2 * (run + 1), steps  # all ended
        if done:
            return steps, events
    raise AssertionError("the request never completed")


@pytest.mark.parametrize("priority", ["interactive", "bulk"])
async def test_cancelling_a_request_at_every_await_leaks_no_token_and_ends_its_span(
    priority, spans
):
    steps, events = await cancel_at_every_step(
        lambda clock: LocalGovernor(limit=2, window=100.0, clock=clock, reserve=1),
        priority,
        spans,
    )
    assert steps is not None
    assert steps > 10  # so many distinct points of cancellation were tried
    # The run that completed went through each kind of await: the queue, a retry, a 429.
    kinds = {type(event).__name__ for event in events}
    assert {"Retrying", "RateLimited"} <= kinds
    assert any(isinstance(event, QuotaWaited) and event.seconds > 0 for event in events)
    assert {event.priority for event in events if isinstance(event, QuotaWaited)} >= {priority}


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # redis-py: asyncio only
@pytest.mark.parametrize("priority", ["interactive", "bulk"])
async def test_cancelling_a_request_on_a_redis_governor_leaks_no_lease(priority, spans, redis_url):
    prefixes = itertools.count()
    governors: list[RedisGovernor] = []

    def governor_for(clock: InstantClock) -> Governor:
        governors.append(
            RedisGovernor.from_url(
                redis_url,
                limit=10,
                window=60.0,
                reserve=1,
                prefix=f"options{os.getpid()}-{priority}-{next(prefixes)}:",
            )
        )
        return governors[-1]

    # Redis answers over a socket and the 429 closes its gate for a real second: the steps
    # grow, and the last run is left to complete.
    schedule = [0, 1, 2, 3, *(2**n for n in range(2, 14)), None]
    try:
        steps, events = await cancel_at_every_step(governor_for, priority, spans, schedule)
    finally:
        for governor in governors:
            await governor.aclose()
    assert steps is None
    assert {"Retrying", "RateLimited"} <= {type(event).__name__ for event in events}


async def test_a_bulk_childs_raw_requests_and_mints_are_bulk_too():
    """The raw twin and the minting a request triggers keep the child's priority (and its
    max_wait): neither falls back to the parent's settings."""
    from plumvoice_async.testing import PlumSimulator

    simulator = PlumSimulator(clock=FakeClock())
    governor = RecordingGovernor()
    async with simulator.client(
        voicetrends_login=simulator.voicetrends_login, governor=governor
    ) as parent:
        bulk = parent.with_options(priority="bulk", max_wait=5)
        raw = await bulk.calls.with_raw_response.page(0, 2**31 - 1, limit=1)
        await bulk.events.with_raw_response.fetch(
            date(2023, 11, 14), date(2023, 11, 14), period="day", phone="ALL"
        )  # mints first
        await parent.calls.page(0, 2**31 - 1, limit=1)
    assert raw.http_response.status_code == 200
    assert governor.priorities == ["bulk", "bulk", "bulk", "interactive"]
    groups = [key.group for verb, (key, _) in governor.calls if verb == "acquire"]
    assert groups == ["fuse", "voicetrends-auth", "voicetrends", "fuse"]


# --- red team: any sequence of derivations, closes and requests ------------------------------

_OPTION_VALUES = {
    "timeout": st.one_of(st.sampled_from([0.5, 7.0, 30.0]), st.just(httpx.Timeout(2.0))),
    "max_retries": st.integers(0, 3),
    "max_wait": st.sampled_from([None, 0.0, 5.0]),
    "priority": st.sampled_from(["interactive", "bulk"]),
}
_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("derive"),
            st.integers(0, 20),
            st.dictionaries(st.sampled_from(list(_OPTION_VALUES)), st.none()).flatmap(
                lambda keys: st.fixed_dictionaries({key: _OPTION_VALUES[key] for key in keys})
            ),
        ),
        st.tuples(st.just("close"), st.integers(0, 20), st.none()),
        st.tuples(st.just("request"), st.integers(0, 20), st.none()),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(ops=_OPS)
def test_any_chain_of_derivations_keeps_settings_and_closes_with_its_ancestors(ops):
    """A model: each client is (parent, settings, closed). A request goes out iff neither the
    client nor any ancestor is closed, with the settings of its own derivation chain (the last
    value given for each option on the way down); nothing else is ever sent."""

    async def main() -> None:
        sent: list[tuple[str, object]] = []

        def handler(request: httpx.Request) -> httpx.Response:
            sent.append((request.url.params["limit"], request.extensions["timeout"]))
            return httpx.Response(200, json={"calls": [], "total_calls": 0})

        governor = RecordingGovernor()
        root = make_client(httpx.MockTransport(handler), governor=governor)
        defaults = {"timeout": 30.0, "max_retries": 3, "max_wait": None, "priority": "interactive"}
        clients: list[PlumClient] = [root]
        model: list[tuple[int | None, dict[str, object], bool]] = [(None, defaults, False)]

        def closed(index: int | None) -> bool:
            while index is not None:
                parent, _, shut = model[index]
                if shut:
                    return True
                index = parent
            return False

        for number, (op, target, options) in enumerate(ops):
            index = target % len(clients)
            client = clients[index]
            if op == "derive":
                clients.append(client.with_options(**options))
                model.append((index, {**model[index][1], **options}, False))
            elif op == "close":
                await client.aclose()
                parent, chosen, _ = model[index]
                model[index] = (parent, chosen, True)
            else:
                before = len(sent)
                if closed(index):
                    with pytest.raises(RuntimeError, match="closed"):
                        await client.calls.page(1, 2, limit=number + 1)
                    assert len(sent) == before
                    continue
                await client.calls.page(1, 2, limit=number + 1)
                chosen = model[index][1]
                (limit, timeout), priority = sent[-1], governor.priorities[-1]
                assert (limit, priority) == (str(number + 1), chosen["priority"])
                expected = chosen["timeout"]
                seconds = expected.read if isinstance(expected, httpx.Timeout) else expected
                assert timeout["read"] == seconds
                transport = client._transport
                assert (transport.max_retries, transport.max_wait) == (
                    chosen["max_retries"],
                    chosen["max_wait"],
                )
        await root.aclose()

    anyio.run(main)


# --- red team: a dashboard's max_wait behind an export's minting ----------------------------


async def minting_behind_an_export(dashboard_wait: float, cancel_dashboard: bool = False):
    """An export (bulk, no max_wait) starts minting while the authentication quota is spent
    for 900 s; a dashboard request (``max_wait=dashboard_wait``) comes a second later."""
    from plumvoice_async._governor import QuotaKey, account_hash
    from plumvoice_async.testing import PlumSimulator

    clock = FakeClock()
    simulator = PlumSimulator(clock=clock)
    governor = LocalGovernor(groups={"voicetrends-auth": (1, 900.0)}, clock=clock)
    key = QuotaKey("voicetrends-auth", account_hash(simulator.VOICETRENDS_LOGIN[1]))
    await governor.settle(await governor.acquire(key), status=None, rate_limit=None)  # spent
    day = date(2023, 11, 14)
    outcome: dict[str, object] = {}
    async with simulator.client(
        voicetrends_login=simulator.voicetrends_login, governor=governor, max_wait=dashboard_wait
    ) as dashboard:
        export = dashboard.with_options(priority="bulk", max_wait=None)

        async def run(name: str, client: PlumClient) -> None:
            try:
                await client.events.fetch(day, day, period="day", phone="ALL")
                outcome[name] = clock.monotonic()
            except RateLimitError as exc:
                outcome[name] = exc

        async with anyio.create_task_group() as group:
            group.start_soon(run, "export", export)
            await clock.advance(1.0)
            dashboard_scope = anyio.CancelScope()

            async def run_dashboard() -> None:
                with dashboard_scope:
                    await run("dashboard", dashboard)

            group.start_soon(run_dashboard)
            await clock.advance(5.0)
            early = dict(outcome)
            if cancel_dashboard:
                dashboard_scope.cancel()
            await clock.advance(1000.0)
        await dashboard.events.fetch(day, day, period="day", phone="ALL")  # the lock is free
    mints = [entry for entry in simulator.requests if entry.path.endswith("/auth")]
    return early, outcome, len(mints)


async def test_a_dashboard_behind_an_exports_minting_keeps_its_max_wait():
    """The dashboard's ``max_wait=2`` used to count for nothing while the export's mint
    waited 900 s for the authentication quota: it waited on the minting lock the whole time."""
    early, outcome, mints = await minting_behind_an_export(dashboard_wait=2.0)
    assert isinstance(early.get("dashboard"), RateLimitError)  # within its 2 s, not 900
    assert "minting" in str(early["dashboard"])
    assert isinstance(outcome["export"], float)  # the export minted and went on
    assert mints == 1


async def test_a_dashboard_whose_wait_covers_the_minting_gets_the_pair_minted_once():
    early, outcome, mints = await minting_behind_an_export(dashboard_wait=2000.0)
    assert early == {}
    assert isinstance(outcome["dashboard"], float)
    assert isinstance(outcome["export"], float)
    assert mints == 1  # the dashboard used the export's pair


async def test_a_dashboard_cancelled_while_it_waits_for_the_minting_leaves_the_lock_free():
    early, outcome, mints = await minting_behind_an_export(
        dashboard_wait=2000.0, cancel_dashboard=True
    )
    assert early == {}
    assert "dashboard" not in outcome
    assert isinstance(outcome["export"], float)
    assert mints == 1  # and the request after it went through: the lock was given back
