"""The governor's scenario table, as data, and a runner that plays it against any ``Governor``.

Each ``Scenario`` is a few tasks that each make one request (plus its retries after a 429) at
a priority, a model of the server, and what must hold. The runner drives them on a
``FakeClock`` and talks to the governor only through its four verbs (``acquire``,
``settle``, ``release``, ``snapshot``) and the injected clock, so the same table runs
unchanged against ``LocalGovernor`` and ``RedisGovernor``: a factory builds the governor
under test from ``(clock, limit, window, margin)``, and ``reserve=`` as a keyword when the
scenario has one (issue 13).

The server is a tiny inline model of plum-api.md 1.3, not the HTTP simulator: per account, a
counter per window aligned to the server's clock; every answer carries ``X-RateLimit-Limit``,
``-Remaining``, ``-Reset`` and a ``Date`` at 1 s resolution, all read from the server's clock. The
client's wall clock may be skewed from the server's (``Scenario.skew``) and the monotonic clock
matches neither, so a governor that compares ``Reset`` with anything but ``Date`` shows it.

Time moves one deadline at a time (``_Steps``): every sleep of the run, the governor's
included, goes through a clock that records its deadline; the runner moves the ``FakeClock``
to the earliest one, then lets the tasks it woke run one at a time, each until every task is
blocked again. A governor that does I/O (``RedisGovernor``: a round trip to Redis per verb)
passes ``quiesce``, which waits until no round trip is in flight: a task waiting for a socket
counts as blocked, and without it fake time would jump while Redis answers.

``check(run)`` asserts the invariants every scenario shares plus the ones its ``Expect`` names:

- nothing leaked: every task ended, and the governor ends with nothing in flight or waiting;
- no more 429s than expected (0 unless other processes spend the quota unannounced);
- ``fifo``: first attempts are granted in the order they asked, within a priority; a request
  re-queued after its 429 goes before every first attempt of its priority already waiting;
- priorities (always): no bulk attempt is granted while an interactive one waits, and no
  window counts more than ``limit - reserve`` bulk requests;
- ``probe_first``: when waiters were queued at a window's start and the previous window was
  spent, at most one of them is admitted before the new window's first answer arrives;
- ``prompt``: waiters queued at a window's start reach the server within ``margin`` + ``Date``'s
  resolution + the latencies of that start (no idling after the reset);
- ``full_windows``: a window with tasks waiting through all of it serves exactly ``limit``
  (at least ``limit - reserve`` when only bulk ones waited through it),
  less one per answer without headers, or lost, in the window before it or in it: such a spend
  may already be in a count the server reported, but nothing says which, so a governor that
  never overshoots holds a token back for it until the server's next report (or the window
  it reached has surely ended);
- ``no_idle``: whenever an answer leaves tasks waiting and nothing in flight, the server has no
  quota left (no more than the reserve when only bulk tasks wait), outside the window's first
  ``margin`` + ``Date`` resolution + latency seconds, with the same allowance;
- ``interactive_wait``: every interactive first attempt is granted within that many seconds;
- refusals (``max_wait``) happen at once, only for the tasks named, and ``reset_at`` is never
  before the server's window end nor later than it by more than that slack.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from email.utils import formatdate
from enum import Enum
from typing import Any

import anyio
import attrs
from anyio.lowlevel import checkpoint

from plumvoice_async._core.ratelimit import RateLimit, parse_retry_after
from plumvoice_async._core.requests import QuotaGroup
from plumvoice_async._errors import RateLimitError
from plumvoice_async._governor import Governor, QuotaKey, account_hash
from plumvoice_async.testing import FakeClock

__all__ = ["SCENARIOS", "Expect", "Fault", "Foreign", "Headers", "Req", "Scenario", "check", "run"]

GovernorFactory = Callable[..., Governor]
"""Builds the governor under test from ``(clock, limit, window, margin)`` and, in the
scenarios that have one, the keyword ``reserve``."""

Quiesce = Callable[[], Awaitable[bool]]
"""Waits until the governor under test has no I/O in flight; says whether there was any."""

MONOTONIC_START = 5_000.0
"""The fake monotonic clock's reading at the start: unrelated to any wall clock."""

DATE_RESOLUTION = 1.0
"""``Date`` carries whole seconds (RFC 7231)."""

REAL_TIME_LIMIT = 60.0
"""Seconds of real time a scenario may take before the runner gives up on the governor."""

NO_DATE_SLACK = 2.0
"""How much later a governor may reopen when answers carry no ``Date`` (the local wall clock
must stand in for the server's, so it adds a margin)."""


class Headers(Enum):
    """What the server's answers carry."""

    ALL = "absolute Reset and Date"
    DELTA = "Reset as seconds from now, and Date"
    NO_DATE = "absolute Reset, no Date"
    NONE = "no X-RateLimit headers at all"


class Fault(Enum):
    """What goes wrong with one request."""

    NONE = "answered normally"
    NO_HEADERS = "a proxy's 502 without headers (the server counted the request)"
    NO_ANSWER = "sent, counted, never answered (a connection error)"
    RESET_FAR = "X-RateLimit-Reset: 1000000000000 (the year 33658)"
    RESET_HUGE = "X-RateLimit-Reset: 1e30"
    RESET_NAN = "X-RateLimit-Reset: nan"
    LIMIT_ZERO = "X-RateLimit-Limit: 0"
    PROXY_429 = "its first attempt is refused by a proxy: 429, Retry-After: 2, not counted"


_ABSURD = {
    Fault.RESET_FAR: ("X-RateLimit-Reset", "1000000000000"),
    Fault.RESET_HUGE: ("X-RateLimit-Reset", "1e30"),
    Fault.RESET_NAN: ("X-RateLimit-Reset", "nan"),
    Fault.LIMIT_ZERO: ("X-RateLimit-Limit", "0"),
}
"""Faults whose answers carry an absurd header value (so, to a sane governor, no headers)."""

PROXY_RETRY_AFTER = 2
"""The ``Retry-After`` of ``Fault.PROXY_429``, in seconds."""


@attrs.frozen
class Req:
    """One task: it asks for a token ``at`` seconds after the start, then sends one request."""

    at: float = 0.0
    up: float = 0.05
    """Seconds from the client to the server."""
    down: float = 0.05
    """Seconds from the server back to the client."""
    max_wait: float | None = None
    cancel_at: float | None = None
    """Cancel the task at this time (seconds after the start), wherever it is."""
    fault: Fault = Fault.NONE
    account: str = "alice"
    lag: float = 0.0
    """Seconds the clock of the server answering this task lags the others' (servers behind
    one host that disagree on the window: it counts and stamps ``Reset``/``Date`` by its own)."""
    priority: str = "interactive"


@attrs.frozen
class Foreign:
    """Another process spends ``count`` of an account's quota at ``at`` (seconds after start)."""

    at: float
    count: int
    account: str = "alice"


@attrs.frozen
class Expect:
    max_429: int = 0
    refused: frozenset[int] = frozenset()
    cancelled: frozenset[int] = frozenset()
    fifo: bool = True
    probe_first: bool = True
    prompt: bool = True
    full_windows: bool = True
    no_idle: bool = True
    interactive_wait: float | None = None


@attrs.frozen
class Scenario:
    name: str
    requests: tuple[Req, ...]
    limit: int = 10
    window: float = 60.0
    margin: float = 1.0
    phase: float = 10.0
    """The run starts this many seconds into a server window."""
    skew: float = 0.0
    """The client's wall clock minus the server's, in seconds."""
    headers: Headers = Headers.ALL
    foreign: tuple[Foreign, ...] = ()
    reserve: int = 0
    """Tokens of each window left to interactive requests (issue 13)."""
    expect: Expect = Expect()

    @property
    def duration(self) -> float:
        """Long enough for every task to be served, with two windows to spare."""
        last = max(max(r.at, r.cancel_at or 0.0) for r in self.requests)
        accounts = {r.account for r in self.requests}
        most = max(sum(r.account == a for r in self.requests) for a in accounts)
        return last + (most // self.limit + 3) * self.window

    @property
    def slack(self) -> float:
        """How long after a server window starts the governor may still be closed."""
        late = NO_DATE_SLACK if self.headers is Headers.NO_DATE else 0.0
        return self.margin + DATE_RESOLUTION + max(r.down for r in self.requests) + late + 1e-6


def _many(count: int, **fields: Any) -> tuple[Req, ...]:
    return tuple(Req(**fields) for _ in range(count))


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("steady demand, three windows", _many(35)),
    Scenario(
        "staggered arrivals are served first come, first served",
        tuple(Req(at=0.7 * i) for i in range(28)),
    ),
    Scenario(
        "answers arrive out of order",
        tuple(Req(up=0.05 + 0.3 * (i % 3), down=(3.0, 0.05, 1.5)[i % 3]) for i in range(30)),
    ),
    Scenario(
        "a stale answer arrives last, even after the next window began",
        # A normal request goes first (the probe); the slow two are admitted with its answer.
        (Req(), Req(at=0.01, down=20.0), Req(at=0.02, down=65.0), *_many(21, at=0.03)),
    ),
    Scenario(
        "requests sent late in a window reach the server in the next (answers before our reset)",
        (*_many(5), *_many(20, at=47.5, up=3.0)),
    ),
    Scenario(
        "requests sent late in a window reach the server in the next (answers after our reset)",
        (*_many(5), *_many(20, at=47.5, up=3.0, down=3.0)),
    ),
    Scenario(
        "answers from the old window arrive after the boundary",
        (*_many(5), *_many(20, at=47.5, up=0.5, down=10.0)),
    ),
    Scenario(
        "a 429 under load closes the gate for everyone; retries go first after the reset",
        _many(40, up=1.0),
        foreign=(Foreign(at=1.5, count=5),),
        expect=Expect(max_429=5),
    ),
    Scenario(
        "another process spends quota between our answers",
        _many(30, up=0.5),
        foreign=(Foreign(at=0.3, count=3), Foreign(at=70.0, count=4)),
    ),
    Scenario(
        "the server sends no headers: local counting on aligned windows",
        _many(25),
        headers=Headers.NONE,
        expect=Expect(probe_first=False),
    ),
    Scenario(
        "some answers lack headers (a proxy's 502)",
        tuple(Req(fault=Fault.NO_HEADERS if i % 4 == 3 else Fault.NONE) for i in range(30)),
    ),
    Scenario(
        "connection errors count as spent",
        tuple(Req(fault=Fault.NO_ANSWER if i % 5 == 2 else Fault.NONE) for i in range(30)),
    ),
    Scenario("the client's clock is 30 minutes fast", _many(30), skew=1800.0),
    Scenario("the client's clock is 30 minutes slow", _many(30), skew=-1800.0),
    Scenario(
        "Reset is sent as seconds from now, client clock 30 minutes fast",
        _many(30),
        headers=Headers.DELTA,
        skew=1800.0,
    ),
    Scenario("answers carry no Date", _many(30), headers=Headers.NO_DATE),
    Scenario(
        "waiters cancelled in the queue, the head (the timer) among them",
        tuple(Req(at=0.01 * i, cancel_at={10: 30.0, 12: 5.0, 13: 5.0}.get(i)) for i in range(26)),
        expect=Expect(cancelled=frozenset({10, 12, 13})),
    ),
    Scenario(
        "a token handed over is given back when its task is cancelled before sending",
        tuple(Req(at=0.01 * i, up=1.0, cancel_at=1.5 if i == 3 else None) for i in range(22)),
        expect=Expect(cancelled=frozenset({3})),
    ),
    Scenario(
        "max_wait shorter than the reset raises at once; a longer one waits",
        (
            *_many(12),
            Req(at=10.0, max_wait=5.0),
            Req(at=10.0, max_wait=30.0),
            Req(at=10.0, max_wait=60.0),
        ),
        expect=Expect(refused=frozenset({12, 13})),
    ),
    Scenario(
        "two accounts sharing one governor do not share a bucket",
        tuple(Req(account=("alice", "bob")[i % 2]) for i in range(40)),
    ),
    Scenario("1,000 tasks waiting at once", _many(1000), limit=100),
    # Issue 11: a hostile or broken server.
    Scenario(
        "a 429 from a server whose clock lags the others' by more than margin: no retry storm",
        # The probe of window 1 reaches a server 5 s behind: to it window 0 (spent) goes on.
        (*_many(10), *_many(10, at=40.0, lag=5.0)),
        expect=Expect(max_429=1, prompt=False),
    ),
    Scenario(
        "a proxy's 502 on the probe keeps the slow start (one token left at the server)",
        (*_many(10), Req(at=40.0, fault=Fault.NO_HEADERS), *_many(8, at=40.01)),
        foreign=(Foreign(at=50.5, count=9),),
        expect=Expect(max_429=1),
    ),
    Scenario(
        "header-less answers hold the window: a max_wait is refused at once",
        (Req(), *_many(9, at=0.5, fault=Fault.NO_HEADERS), Req(at=2.0, max_wait=5.0)),
        expect=Expect(refused=frozenset({10})),
    ),
    Scenario(
        "absurd header values are read as absent, and no bucket is poisoned",
        tuple(Req(fault=(*_ABSURD, Fault.NONE)[i % 5] if i % 2 else Fault.NONE) for i in range(30)),
    ),
    Scenario(
        "a 429 with Retry-After and no quota headers closes the gate that long, not a window",
        (*_many(3), Req(at=1.0, fault=Fault.PROXY_429), *_many(3, at=1.5, max_wait=10.0)),
        expect=Expect(no_idle=False),
    ),
    # Issue 13: priorities and the reserve.
    Scenario(
        "interactive requests are served before the bulk ones that queued first",
        (*_many(30, priority="bulk"), *_many(5, at=1.0), *_many(5, at=65.0)),
    ),
    Scenario(
        "the reserve is left to interactive requests: a dashboard never waits for an export",
        (*_many(40, priority="bulk"), *_many(3, at=20.0), *_many(3, at=80.0), Req(at=140.0)),
        reserve=3,
        expect=Expect(interactive_wait=0.0),
    ),
    Scenario(
        "a 429 re-queues each request at the front of its own priority",
        tuple(Req(up=1.0, priority=("bulk", "interactive")[i % 3 == 0]) for i in range(36)),
        foreign=(Foreign(at=1.5, count=5),),
        reserve=2,
        expect=Expect(max_429=5),
    ),
    Scenario(
        "an interactive max_wait counts only the interactive queue ahead, not the export",
        # Fifteen bulk requests wait past this window; the dashboard's turn is the next one.
        (*_many(25, priority="bulk"), Req(at=10.0, max_wait=45.0)),
    ),
    Scenario(
        "bulk requests of two accounts: each account keeps its own reserve",
        tuple(
            Req(account=("alice", "bob")[i % 2], priority="bulk" if i < 40 else "interactive")
            for i in range(46)
        ),
        reserve=4,
    ),
)


# -- the run ------------------------------------------------------------------------------------


@attrs.define
class Attempt:
    """One acquire that got a token, and what became of its request."""

    task: int
    account: str
    retry: bool
    seq: int
    asked_at: float
    granted_at: float
    priority: str = "interactive"
    arrived_at: float | None = None
    window: int | None = None
    status: int | None = None
    received_at: float | None = None


@attrs.frozen
class Refused:
    task: int
    asked_at: float
    refused_at: float
    reset_at: datetime | None
    client_wall: float
    server_window_end: float
    """Server-clock end of the window current when refused."""
    server_wall: float


@attrs.frozen
class IdleSample:
    """After an answer: tasks waiting, none in flight, and what the server had left."""

    account: str
    at: float
    server_remaining: int
    into_window: float
    bulk_only: bool = False
    """Only bulk requests waited: the reserve may be left."""


@attrs.define
class Run:
    scenario: Scenario
    window_zero: float
    """Monotonic time at which server window 0 (the one the run starts in) began."""
    attempts: list[Attempt] = attrs.Factory(list)
    asked: dict[int, float] = attrs.Factory(dict)
    refused: list[Refused] = attrs.Factory(list)
    cancelled: set[int] = attrs.Factory(set)
    finished: set[int] = attrs.Factory(set)
    idle: list[IdleSample] = attrs.Factory(list)
    unreported: list[tuple[str, float]] = attrs.Factory(list)
    """(account, when) of every answer that came without headers, or never came (faults)."""
    counts: dict[tuple[str, int], int] = attrs.Factory(dict)
    """Server-side: requests counted per (account, window), ours and others'."""
    rejected: int = 0
    """Server-side: 429s sent."""
    leftovers: dict[str, tuple[int, int]] = attrs.Factory(dict)
    """Per account: (in flight, waiting) in the governor's snapshot at the end."""

    def window_start(self, index: int) -> float:
        return self.window_zero + index * self.scenario.window

    def allowance(self, account: str, start: float, end: float) -> int:
        """Unreported spends that may hold a token back between ``start`` and ``end``: those
        answered (or lost) from ``window + margin`` before ``start`` on (see ``check``)."""
        since = start - self.scenario.window - self.scenario.margin
        return sum(1 for who, at in self.unreported if who == account and since <= at <= end)


class _Server:
    """plum-api.md 1.3 in miniature: clock-aligned windows, one counter per account."""

    def __init__(self, scenario: Scenario, clock: FakeClock, run: Run) -> None:
        self.scenario = scenario
        self.clock = clock
        self.run = run
        self.origin = math.floor(clock.time() / scenario.window)

    def index(self, lag: float = 0.0) -> int:
        return math.floor((self.clock.time() - lag) / self.scenario.window) - self.origin

    def spend(self, account: str, count: int) -> None:
        slot = (account, self.index())
        self.run.counts[slot] = min(self.scenario.limit, self.run.counts.get(slot, 0) + count)

    def remaining(self, account: str) -> int:
        return self.scenario.limit - self.run.counts.get((account, self.index()), 0)

    def handle(
        self, account: str, fault: Fault, lag: float = 0.0
    ) -> tuple[int, list[tuple[str, str]] | None, int]:
        """Count one arriving request: its status, its headers, its window."""
        scenario, now = self.scenario, self.clock.time() - lag
        index = self.index(lag)
        if fault is Fault.PROXY_429:
            return 429, [("Retry-After", str(PROXY_RETRY_AFTER))], index
        used = self.run.counts.get((account, index), 0)
        if used < scenario.limit:
            self.run.counts[account, index] = used + 1
            status, remaining = 200, scenario.limit - used - 1
        else:
            self.run.rejected += 1
            status, remaining = 429, 0
        reset = (self.origin + index + 1) * scenario.window
        if scenario.headers is Headers.NONE or fault is Fault.NO_HEADERS:
            return (502 if status == 200 else status), None, index
        headers = {
            "X-RateLimit-Limit": str(scenario.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(int(reset)),
        }
        if scenario.headers is Headers.DELTA:
            headers["X-RateLimit-Reset"] = str(math.floor(reset - now))
        if fault in _ABSURD:
            name, value = _ABSURD[fault]
            headers[name] = value
        if scenario.headers is not Headers.NO_DATE:
            headers["Date"] = formatdate(math.floor(now), usegmt=True)
        return status, list(headers.items()), index


def quota_key(account: str) -> QuotaKey:
    return QuotaKey(QuotaGroup.VOICETRENDS.value, account_hash(account))


async def run(
    scenario: Scenario, make_governor: GovernorFactory, *, quiesce: Quiesce | None = None
) -> Run:
    """Play ``scenario`` against a fresh governor; return what happened.

    ``quiesce``: for a governor that does I/O, waits until none is in flight (see above).
    """
    window = scenario.window
    base = FakeClock(start=MONOTONIC_START)
    steps = _Steps(base, quiesce or _no_io)
    clock = steps.clock(base)
    # The server's wall clock starts ``phase`` into a window and matches no other clock.
    server_start = (1_700_000_000 // window) * window + scenario.phase
    server_clock = base.skewed(server_start - MONOTONIC_START)
    client_clock = steps.clock(server_clock.skewed(scenario.skew))
    # The keyword only when used: it is newer than the table (as ``retry_after`` below).
    reserved = {"reserve": scenario.reserve} if scenario.reserve else {}
    governor = make_governor(client_clock, scenario.limit, window, scenario.margin, **reserved)
    record = Run(scenario, window_zero=MONOTONIC_START - scenario.phase)
    server = _Server(scenario, server_clock, record)
    order = itertools.count()
    scopes = {i: anyio.CancelScope() for i, r in enumerate(scenario.requests) if r.cancel_at}

    async def client(task: int, req: Req) -> None:
        await clock.sleep(req.at)
        key = quota_key(req.account)
        with scopes.get(task) or anyio.CancelScope() as scope:
            retry = False
            while True:
                seq, asked_at = next(order), base.monotonic()
                record.asked.setdefault(task, asked_at)
                try:
                    permit = await governor.acquire(
                        key, max_wait=req.max_wait, retry=retry, priority=req.priority
                    )
                except RateLimitError as exc:
                    record.refused.append(
                        Refused(
                            task,
                            asked_at,
                            base.monotonic(),
                            exc.reset_at,
                            client_clock.time(),
                            (server.origin + server.index() + 1) * window,
                            server_clock.time(),
                        )
                    )
                    break
                attempt = Attempt(
                    task, req.account, retry, seq, asked_at, base.monotonic(), req.priority
                )
                record.attempts.append(attempt)
                try:
                    await clock.sleep(req.up)
                except BaseException:  # cancelled before sending: the token goes back
                    with anyio.CancelScope(shield=True):
                        await governor.release(permit)
                    raise
                fault = req.fault if not retry or req.fault is not Fault.PROXY_429 else Fault.NONE
                status, headers, index = server.handle(req.account, fault, req.lag)
                attempt.arrived_at, attempt.window, attempt.status = base.monotonic(), index, status
                answered: int | None = None if fault is Fault.NO_ANSWER else status
                try:
                    await clock.sleep(req.down)
                except BaseException:  # sent, but the answer never reached us
                    with anyio.CancelScope(shield=True):
                        await governor.settle(permit, status=None, rate_limit=None)
                    raise
                rate_limit = RateLimit.from_headers(headers) if headers else None
                retry_after = parse_retry_after(headers or (), client_clock.time())
                # Passed only when the answer has one: the keyword is newer than the table.
                extra = {} if retry_after is None else {"retry_after": retry_after}
                await governor.settle(permit, status=answered, rate_limit=rate_limit, **extra)
                if fault is not Fault.NONE and fault is not Fault.PROXY_429:
                    record.unreported.append((req.account, base.monotonic()))
                attempt.received_at = base.monotonic()
                snap = await governor.snapshot(key)
                if snap.waiting and not snap.in_flight:
                    into = server_clock.time() % window
                    # A governor that does not say who waits: all of them count as interactive.
                    bulk_only = snap.waiting_by_priority.get("interactive", snap.waiting) == 0
                    record.idle.append(
                        IdleSample(
                            req.account,
                            base.monotonic(),
                            server.remaining(req.account),
                            into,
                            bulk_only,
                        )
                    )
                if status != 429 or answered is None:
                    break
                retry = True
        if scope.cancelled_caught:
            record.cancelled.add(task)
        record.finished.add(task)

    async def canceller(task: int, at: float) -> None:
        await clock.sleep(at)
        scopes[task].cancel()

    async def other_process(foreign: Foreign) -> None:
        await clock.sleep(foreign.at)
        server.spend(foreign.account, foreign.count)

    # A real-time bound, so a governor that spins (never letting the fake clock move on) fails
    # the test instead of hanging it; the fake clock itself never sleeps.
    with anyio.fail_after(REAL_TIME_LIMIT):
        await _drive(scenario, steps, governor, client, canceller, other_process, record)
    return record


async def _drive(
    scenario: Scenario,
    steps: _Steps,
    governor: Governor,
    client: Callable[[int, Req], Coroutine[None, None, None]],
    canceller: Callable[[int, float], Coroutine[None, None, None]],
    other_process: Callable[[Foreign], Coroutine[None, None, None]],
    record: Run,
) -> None:
    async with anyio.create_task_group() as tg:
        for task, req in enumerate(scenario.requests):
            tg.start_soon(client, task, req)
            if req.cancel_at is not None:
                tg.start_soon(canceller, task, req.cancel_at)
        for foreign in scenario.foreign:
            tg.start_soon(other_process, foreign)
        await steps.advance(scenario.duration)
        for account in {r.account for r in scenario.requests}:
            snap = await governor.snapshot(quota_key(account))
            record.leftovers[account] = (snap.in_flight, snap.waiting)
        tg.cancel_scope.cancel()  # whatever is still running has leaked: check() says so


class _SteppedClock:
    """A view of the run's ``FakeClock`` whose sleeps the runner steps through."""

    __slots__ = ("_steps", "_view")

    def __init__(self, steps: _Steps, view: FakeClock) -> None:
        self._steps = steps
        self._view = view

    def monotonic(self) -> float:
        return self._view.monotonic()

    def time(self) -> float:
        return self._view.time()

    async def sleep(self, seconds: float) -> None:
        await self._steps.sleep(self._view, seconds)


class _Steps:
    """Moves a run's fake time one deadline at a time, and only when nothing else can happen.

    Every sleep of the run records its deadline here; ``advance`` moves the ``FakeClock`` to the
    earliest, then hands the sleepers it woke their turn one at a time, in the order they went
    to sleep, each followed by ``calm``: every task blocked and no I/O in flight. So the
    governor's round trips at one instant come in the order an in-process governor's calls
    would, and none is in flight while time moves.
    """

    def __init__(self, base: FakeClock, quiesce: Quiesce) -> None:
        self.base = base
        self.quiesce = quiesce
        self.deadlines: list[tuple[float, int]] = []
        self.live: set[int] = set()
        self.order = itertools.count()
        self.woken: deque[anyio.Event] = deque()

    def clock(self, view: FakeClock) -> _SteppedClock:
        return _SteppedClock(self, view)

    async def sleep(self, view: FakeClock, seconds: float) -> None:
        if seconds <= 0:
            await view.sleep(seconds)
            return
        entry = next(self.order)
        heapq.heappush(self.deadlines, (view.monotonic() + seconds, entry))
        self.live.add(entry)
        try:
            await view.sleep(seconds)
        finally:
            self.live.discard(entry)
        turn = anyio.Event()
        self.woken.append(turn)
        await turn.wait()

    def next_deadline(self) -> float | None:
        while self.deadlines and self.deadlines[0][1] not in self.live:
            heapq.heappop(self.deadlines)  # that sleep was cancelled
        return self.deadlines[0][0] if self.deadlines else None

    async def advance(self, seconds: float) -> None:
        base = self.base
        target = base.monotonic() + seconds
        await self.calm()
        while (deadline := self.next_deadline()) is not None and deadline <= target:
            await base.advance(_span(base.monotonic(), deadline))
            while self.woken:
                self.woken.popleft().set()
                await self.calm()
        await base.advance(_span(base.monotonic(), target))
        await self.calm()

    async def calm(self) -> None:
        """Let every task run until all are blocked, with no I/O in flight."""
        while True:
            for _ in range(8):  # cheap: settles the common case before anyio's full scan
                await checkpoint()
            if await self.quiesce():
                continue
            await anyio.wait_all_tasks_blocked()
            if not await self.quiesce():
                return


def _span(now: float, deadline: float) -> float:
    """The least ``span`` with ``now + span >= deadline`` in floats, as ``FakeClock`` adds."""
    span = max(0.0, deadline - now)
    while now + span < deadline:
        span = math.nextafter(span, math.inf)
    return span


async def _no_io() -> bool:
    return False


# -- the checks ---------------------------------------------------------------------------------


def check(run: Run) -> None:
    """Assert the shared invariants and the scenario's expectations (see the module docstring)."""
    scenario, expect = run.scenario, run.scenario.expect
    unfinished = set(range(len(scenario.requests))) - run.finished
    assert not unfinished, f"tasks never finished (leaked): {sorted(unfinished)[:10]}"
    for account, (in_flight, waiting) in run.leftovers.items():
        assert (in_flight, waiting) == (0, 0), (
            f"{account}: {in_flight} in flight, {waiting} waiting"
        )
    assert run.rejected <= expect.max_429, f"{run.rejected} 429s, expected <= {expect.max_429}"
    assert run.cancelled == set(expect.cancelled), f"cancelled {sorted(run.cancelled)}"
    _check_refusals(run)
    for account in sorted({r.account for r in scenario.requests}):
        attempts = [a for a in run.attempts if a.account == account]
        if expect.fifo:
            _check_fifo(run, attempts)
        _check_priorities(run, account, attempts)
        if expect.probe_first:
            _check_probe_first(run, account, attempts)
        if expect.prompt:
            _check_prompt(run, account, attempts)
        if expect.full_windows:
            _check_full_windows(run, account, attempts)
    if expect.no_idle:
        late = [
            sample
            for sample in run.idle
            if sample.into_window > scenario.slack
            and sample.server_remaining
            > run.allowance(sample.account, sample.at, sample.at)
            + (scenario.reserve if sample.bulk_only else 0)
        ]
        assert not late, f"idle under the quota after an answer: {late[:3]}"


def _check_refusals(run: Run) -> None:
    scenario = run.scenario
    refused = {r.task for r in run.refused}
    assert refused == set(scenario.expect.refused), f"refused {sorted(refused)}"
    for refusal in run.refused:
        assert refusal.refused_at == refusal.asked_at, f"task {refusal.task} not refused at once"
        assert refusal.reset_at is not None
        assert refusal.reset_at.tzinfo is not None
        # In the client's own frame: how long until reset_at, against the server's truth.
        said = refusal.reset_at.timestamp() - refusal.client_wall
        true = refusal.server_window_end - refusal.server_wall
        assert true - 1e-6 <= said <= true + scenario.slack, (refusal, said, true)


def _check_fifo(run: Run, attempts: list[Attempt]) -> None:
    for priority in {a.priority for a in attempts}:
        _check_fifo_of(run, [a for a in attempts if a.priority == priority])


def _check_fifo_of(run: Run, attempts: list[Attempt]) -> None:
    cancelled = run.cancelled
    first = sorted((a for a in attempts if not a.retry and a.task not in cancelled), key=_seq)
    for earlier, later in itertools.pairwise(first):
        assert earlier.granted_at <= later.granted_at, (
            f"task {later.task} (asked {later.asked_at}) served before task {earlier.task} "
            f"(asked {earlier.asked_at})"
        )
    for retry in (a for a in attempts if a.retry):
        for other in first:
            waiting = other.asked_at <= retry.asked_at < other.granted_at
            assert not waiting or retry.granted_at <= other.granted_at, (
                f"re-queued task {retry.task} served after waiting task {other.task}"
            )


def _check_priorities(run: Run, account: str, attempts: list[Attempt]) -> None:
    """No bulk grant while an interactive request waits; at most ``limit - reserve`` bulk
    requests counted per window; interactive first attempts served within their bound."""
    scenario = run.scenario
    interactive = [a for a in attempts if a.priority == "interactive"]
    for bulk in (a for a in attempts if a.priority == "bulk"):
        for other in interactive:
            # Strictly: within one instant of fake time the order of wake-ups is the loop's.
            assert not other.asked_at < bulk.granted_at < other.granted_at, (
                f"{account}: bulk task {bulk.task} served while interactive task "
                f"{other.task} waited"
            )
    per_window: dict[int, int] = {}
    for attempt in attempts:
        if attempt.priority == "bulk" and attempt.window is not None:
            per_window[attempt.window] = per_window.get(attempt.window, 0) + 1
    most = scenario.limit - scenario.reserve
    over = {index: count for index, count in per_window.items() if count > most}
    assert not over, f"{account}: bulk requests per window above {most}: {over}"
    bound = scenario.expect.interactive_wait
    if bound is not None:
        slow = [a.task for a in interactive if not a.retry and a.granted_at - a.asked_at > bound]
        assert not slow, f"{account}: interactive tasks waited over {bound} s: {slow}"


def _seq(attempt: Attempt) -> int:
    return attempt.seq


def _waiting_at(attempts: list[Attempt], instant: float) -> list[Attempt]:
    return [a for a in attempts if a.asked_at < instant <= a.granted_at]


def _windows(run: Run, attempts: list[Attempt]) -> range:
    last = max((a.window for a in attempts if a.window is not None), default=0)
    return range(1, last + 1)


def _check_probe_first(run: Run, account: str, attempts: list[Attempt]) -> None:
    for index in _windows(run, attempts):
        start = run.window_start(index)
        if run.counts.get((account, index - 1), 0) < run.scenario.limit:
            continue  # the previous window had quota left: no reset to stampede at
        answers = [a.received_at for a in attempts if a.window == index and a.received_at]
        first_answer = min(answers, default=math.inf)
        herd = [a for a in _waiting_at(attempts, start) if a.granted_at < first_answer]
        assert len(herd) <= 1, f"{account}: window {index}: {len(herd)} released before an answer"


def _check_prompt(run: Run, account: str, attempts: list[Attempt]) -> None:
    scenario = run.scenario
    for index in _windows(run, attempts):
        start = run.window_start(index)
        if not _waiting_at(attempts, start):
            continue
        arrivals = [a.arrived_at for a in attempts if a.window == index and a.arrived_at]
        first = min(arrivals, default=math.inf)
        latest = start + scenario.slack + max(r.up for r in scenario.requests)
        assert first <= latest, f"{account}: window {index} idle until {first - start:.2f} s"


def _check_full_windows(run: Run, account: str, attempts: list[Attempt]) -> None:
    scenario = run.scenario
    for index in _windows(run, attempts):
        start, end = run.window_start(index), run.window_start(index + 1)
        through = [a for a in attempts if a.asked_at <= start and a.granted_at >= end]
        if not through:
            continue
        used = run.counts.get((account, index), 0)
        bulk_only = all(a.priority == "bulk" for a in through)
        reserve = scenario.reserve if bulk_only else 0
        least = scenario.limit - reserve - run.allowance(account, start, end)
        assert least <= used <= scenario.limit, (
            f"{account}: window {index} used {used}/{scenario.limit} (at least {least})"
        )
