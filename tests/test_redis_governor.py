"""RedisGovernor on a real ``redis-server`` (see tests/redis_server.py), asyncio only.

redis-py's asyncio client does not run on trio, so this module overrides ``anyio_backend``
to asyncio (one test checks that trio gets a clear error).

The governor's scenario table (tests/governor_scenarios.py) runs here unchanged, as it does
against ``LocalGovernor``, on a ``FakeClock``: the governor sleeps on the injected clock, its
scripts read that clock instead of Redis ``TIME`` (the private ``_time_from_clock`` seam), and
the runner moves fake time only while no Redis command awaits its reply (``CountingRedis``).
Its safety-net re-check is set a day off, so every wake-up in those runs is a deadline or a
hand-over, never a poll.

The other tests run on real time and Redis ``TIME`` (compressed windows of about a second
where one must end): what only several processes or Redis itself show (a quota shared across
processes, wake-ups by pub/sub, leases of a killed process, scripts reloaded, round trips per
request, Redis unreachable).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from plumvoice_async import (
    GovernorUnavailableError,
    InvalidParameterError,
    RateLimitError,
    RedisGovernor,
)
from plumvoice_async._clock import Clock, SystemClock
from plumvoice_async._core.ratelimit import RateLimit
from plumvoice_async._core.requests import QuotaGroup
from plumvoice_async._governor import Governor, Permit, QuotaKey, account_hash
from plumvoice_async._redis.lane import Lease
from plumvoice_async._redis.scripts import Scripts, import_redis
from plumvoice_async.testing import FakeClock, PlumSimulator, serve
from plumvoice_async.testing._simulator import Quota

from .governor_scenarios import SCENARIOS, Scenario, check, run
from .redis_server import redis_url, running_redis_server

__all__ = ["redis_url"]  # the fixture, imported for pytest

pytestmark = pytest.mark.anyio

LOGIN = "alice@example.com"
KEY = QuotaKey(QuotaGroup.VOICETRENDS.value, account_hash(LOGIN))
ROOT = Path(__file__).resolve().parent.parent
_prefixes = itertools.count()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def prefix() -> str:
    """A fresh namespace per test, so no test sees another's buckets."""
    return f"test{os.getpid()}-{next(_prefixes)}:"


@pytest.fixture
async def make(redis_url: str, prefix: str) -> AsyncIterator[object]:
    """Builds governors ("processes") sharing the test's namespace; closes them after."""
    made: list[RedisGovernor] = []

    def build(**options: object) -> RedisGovernor:
        settings: dict[str, object] = {"limit": 10, "window": 60.0, "prefix": prefix}
        settings.update(options)
        governor = RedisGovernor.from_url(redis_url, **settings)  # type: ignore[arg-type]
        made.append(governor)
        return governor

    yield build
    for governor in made:
        await governor.aclose()


class SkewedClock(SystemClock):
    """The system clock with its wall clock ``skew`` seconds off."""

    def __init__(self, skew: float) -> None:
        self.skew = skew

    def time(self) -> float:
        return time.time() + self.skew


class Server:
    """A server whose clock is an hour off every host's: only ``Reset - Date`` means anything.

    Its clock starts on a whole second when it is made, and its window ends ``reset_in``
    seconds later; ``Date`` follows real time from there.
    """

    def __init__(self, reset_in: int = 30, limit: int = 10) -> None:
        self.limit = limit
        self.started = time.monotonic()
        self.start = float(math.floor(time.time()) - 3600)
        self.reset = self.start + reset_in

    def answer(self, remaining: int) -> RateLimit:
        date = self.start + math.floor(time.monotonic() - self.started)
        return RateLimit(self.limit, remaining, self.reset, date)


class CountingRedis(Redis):
    """A Redis client that knows how many commands await their reply.

    The scenario runner's ``quiesce``: fake time must not move while Redis answers.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.in_flight = 0
        self._idle: anyio.Event | None = None

    async def execute_command(self, *args, **options):
        self.in_flight += 1
        try:
            return await super().execute_command(*args, **options)
        finally:
            self.in_flight -= 1
            if not self.in_flight and self._idle is not None:
                self._idle.set()

    async def quiesce(self) -> bool:
        if not self.in_flight:
            return False
        self._idle = anyio.Event()
        await self._idle.wait()
        return True


# -- the scenario table ------------------------------------------------------------------------

DAY = 86_400.0


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_scenario(scenario: Scenario, redis_url: str, prefix: str):
    client = CountingRedis.from_url(redis_url, decode_responses=True, socket_timeout=5.0)
    made: list[RedisGovernor] = []

    def redis_governor(
        clock: Clock, limit: int, window: float, margin: float, *, reserve: int = 0
    ) -> Governor:
        governor = RedisGovernor(
            client,
            limit=limit,
            window=window,
            margin=margin,
            reserve=reserve,
            prefix=prefix,
            recheck=DAY,
            clock=clock,
            _time_from_clock=True,
        )
        made.append(governor)
        return governor

    try:
        result = await run(scenario, redis_governor, quiesce=client.quiesce)
    finally:
        for governor in made:
            await governor.aclose()
        await client.aclose()
    check(result)


# -- the bucket's rules, shared --------------------------------------------------------------


async def test_one_probe_then_the_servers_remaining_less_everything_in_flight(make):
    a, b, server = make(), make(), Server()
    probe = await a.acquire(KEY)
    with pytest.raises(RateLimitError):  # the window is unknown: the probe goes alone
        await b.acquire(KEY, max_wait=0.0)
    assert (await b.snapshot(KEY)).phase == "probing"
    await a.settle(probe, status=200, rate_limit=server.answer(4))
    permits = [await (a, b)[i % 2].acquire(KEY) for i in range(4)]
    snap = await a.snapshot(KEY)
    assert (snap.remaining, snap.in_flight, snap.phase, snap.limit) == (0, 4, "server", 10)
    # A late answer saying more is left does not raise it; the lowest report wins.
    await b.settle(permits[0], status=200, rate_limit=server.answer(6))
    assert (await a.snapshot(KEY)).remaining == 1  # 4 reported, 3 still in flight
    await b.settle(permits[1], status=200, rate_limit=server.answer(0))
    for permit in permits[2:]:
        await a.release(permit)  # never sent: nothing charged, but the server said 0
    assert (await b.snapshot(KEY)).remaining == 0


async def test_reset_is_read_against_date_so_no_host_clock_matters(make):
    fast = make(clock=SkewedClock(1800.0), margin=1.0)
    probe = await fast.acquire(KEY)
    await fast.settle(probe, status=200, rate_limit=Server(30).answer(5))
    snap = await fast.snapshot(KEY)
    assert snap.reset_at is not None
    # 30 s (Reset - Date) + 1 s margin from now, in the fast clock's own frame; the server's
    # clock is an hour behind and the host's 30 minutes ahead: neither shifts it.
    assert snap.reset_at.timestamp() - (time.time() + 1800.0) == pytest.approx(31.0, abs=1.0)


async def test_a_429_closes_the_bucket_for_every_process_until_its_reset(make):
    a, b, server = make(margin=0.1), make(margin=0.1), Server(1)
    probe = await a.acquire(KEY)
    await a.settle(probe, status=200, rate_limit=server.answer(9))
    first = await a.acquire(KEY)
    await a.settle(first, status=429, rate_limit=server.answer(0))
    with pytest.raises(RateLimitError) as refused:
        await b.acquire(KEY, max_wait=0.2)
    assert refused.value.reset_at is not None
    assert refused.value.reset_at.timestamp() - time.time() == pytest.approx(1.1, abs=0.3)
    started = time.monotonic()
    with anyio.fail_after(3):
        await b.acquire(KEY)  # the next window's probe, at the reset (Redis time)
    assert 0.7 < time.monotonic() - started < 1.5


async def test_a_waiter_in_another_process_is_woken_by_a_settle_not_by_polling(make):
    a, b = make(), make(recheck=30.0)  # b's safety-net re-check is far off
    probe = await a.acquire(KEY)
    waited: list[float] = []

    async def wait_in_b() -> None:
        started = time.monotonic()
        await b.acquire(KEY)
        waited.append(time.monotonic() - started)

    async with anyio.create_task_group() as group:
        group.start_soon(wait_in_b)
        await anyio.sleep(0.2)
        assert (await b.snapshot(KEY)).waiting == 1
        await a.settle(probe, status=200, rate_limit=Server().answer(5))
    assert 0.15 < waited[0] < 1.0


async def test_waiters_of_one_process_are_served_first_come_first_served(make):
    a, other = make(), make()
    probe = await other.acquire(KEY)
    order: list[int] = []

    async def wait(task: int) -> None:
        await a.acquire(KEY)
        order.append(task)

    async with anyio.create_task_group() as group:
        for task in range(6):
            group.start_soon(wait, task)
            await anyio.sleep(0.01)
        await other.settle(probe, status=200, rate_limit=Server().answer(6))
    assert order == list(range(6))


async def test_arrivals_are_served_in_order_while_redis_answers_somebody_else(make):
    a, server = make(), Server()
    probe = await a.acquire(KEY)
    await a.settle(probe, status=200, rate_limit=server.answer(9))
    order: list[int] = []

    async def take(task: int) -> None:
        await a.acquire(KEY)
        order.append(task)

    async with anyio.create_task_group() as group:
        for task in range(8):  # all arrive while the first one's admission is in flight
            group.start_soon(take, task)
    assert order == list(range(8))


async def test_a_settle_hands_its_tokens_to_this_process_s_queue_in_its_own_round_trip(make):
    a, server = make(recheck=30.0), Server()
    probe = await a.acquire(KEY)
    served: list[int] = []

    async def wait(task: int) -> None:
        await a.acquire(KEY)
        served.append(task)

    async with anyio.create_task_group() as group:
        for task in range(3):
            group.start_soon(wait, task)
        await _until_asleep(a)
        before = await a._redis.info("commandstats")
        await a.settle(probe, status=200, rate_limit=server.answer(5))
    after = await a._redis.info("commandstats")
    assert served == [0, 1, 2]
    assert _ran(before, after, "evalsha") == 1  # the settle: no admission after it
    assert _ran(before, after, "publish") == 0  # nobody else waits: no message


async def test_a_process_is_not_woken_by_its_own_messages(make):
    a, b = make(recheck=30.0), make(recheck=30.0)
    probe = await a.acquire(KEY)

    async def wait(governor: RedisGovernor) -> None:
        await governor.acquire(KEY)

    async with anyio.create_task_group() as group:
        for governor in (a, a, b):
            group.start_soon(wait, governor)
        await _until_asleep(a, b)
        before = await a._redis.info("commandstats")
        # One token: a's first waiter takes it; the message wakes b, which finds none, and
        # not a's second waiter, which sleeps on what the settle's own reply said.
        await a.settle(probe, status=200, rate_limit=Server().answer(1))
        with anyio.fail_after(5):
            while _ran(before, await a._redis.info("commandstats"), "evalsha") < 2:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        await anyio.sleep(0.05)  # a's own copy of the message arrived with b's: no news
        after = await a._redis.info("commandstats")
        group.cancel_scope.cancel()
    assert _ran(before, after, "evalsha") == 2  # a's settle, b's admission
    assert _ran(before, after, "publish") == 1


async def _until_asleep(*governors: RedisGovernor) -> None:
    """Until each governor has waiters and every pump sleeps on its plan with its subscription
    in force (real time, bounded): nothing more happens then until time or a message says so."""

    def asleep(governor: RedisGovernor) -> bool:
        lanes = [lane for lane in governor._lanes.values() if lane.waiting]
        return bool(lanes) and all(
            lane.listening and lane.nap is not None and not lane.news for lane in lanes
        )

    with anyio.fail_after(5):
        while not all(asleep(governor) for governor in governors):  # noqa: ASYNC110
            await anyio.sleep(0.005)


def _ran(before: dict[str, Any], after: dict[str, Any], command: str) -> int:
    """How many ``command`` ran between two ``INFO commandstats`` (a NOSCRIPT refusal did not)."""

    def ran(stats: dict[str, Any]) -> int:
        entry = stats.get(f"cmdstat_{command}", {})
        return int(entry.get("calls", 0)) - int(entry.get("failed_calls", 0))

    return ran(after) - ran(before)


async def test_the_pump_role_passes_on_when_its_successor_is_served_before_it_runs(
    make, monkeypatch
):
    """The pump, served, wakes the next waiter to pump; another answer may serve that waiter
    before it runs. The role must still reach the rest of the queue (a hang, seen under load:
    four processes stalled with quota to come)."""
    a, other, server = make(recheck=0.2), make(), Server(limit=3)
    probe = await a.acquire(KEY)
    await a.settle(probe, status=200, rate_limit=server.answer(3))
    spare = await other.acquire(KEY)  # another process's: freed last, by a message only
    first, second = await a.acquire(KEY), await a.acquire(KEY)
    served: list[int] = []

    async def wait(task: int) -> None:
        await a.acquire(KEY)
        served.append(task)

    gate = anyio.Event()
    real_run = Scripts.run

    async def held_run(scripts: Scripts, lane: Any, verb: str, extra: Any = None) -> Any:
        reply = await real_run(scripts, lane, verb, extra)
        if extra == [second.token.number]:
            await gate.wait()  # the answer is in; its hand-over waits for the test
        return reply

    monkeypatch.setattr(Scripts, "run", held_run)
    async with anyio.create_task_group() as group:
        for task in range(3):
            group.start_soon(wait, task)
        await _until_asleep(a)
        group.start_soon(a.release, second)  # its reply grants one token, held at the gate
        await anyio.sleep(0.1)
        await a.release(first)  # hands a token to the pump (task 0), which wakes task 1...
        gate.set()  # ...and this hand-over serves task 1 before it runs
        await anyio.sleep(0.1)
        assert served == [0, 1]
        with anyio.fail_after(3):
            await other.release(spare)  # task 2 needs a pump to hear of it
            while len(served) < 3:  # noqa: ASYNC110
                await anyio.sleep(0.01)
    assert served == [0, 1, 2]


async def test_a_retry_after_a_429_goes_before_first_attempts(make):
    a = make()
    probe = await a.acquire(KEY)
    order: list[str] = []

    async def wait(name: str, retry: bool) -> None:
        await a.acquire(KEY, retry=retry)
        order.append(name)

    async with anyio.create_task_group() as group:
        group.start_soon(wait, "first", False)
        await anyio.sleep(0.05)
        group.start_soon(wait, "retry", True)
        await anyio.sleep(0.05)
        await a.settle(probe, status=200, rate_limit=Server().answer(2))
    assert order == ["retry", "first"]


TASKS_IN_ALL = 36


@pytest.mark.parametrize("seed", range(3))
async def test_random_interleavings_in_three_processes_strand_nobody(make, seed):
    """Liveness under races only real concurrency shows: three processes, 36 tasks, answers
    and cancellations at random moments; every task ends and nothing is left in flight."""
    rng = random.Random(seed)
    governors = [make(limit=6, window=0.25, margin=0.02, recheck=0.1) for _ in range(3)]
    ended: list[int] = []

    async def task(number: int, governor: RedisGovernor) -> None:
        for _ in range(4):
            permit = None
            with anyio.move_on_after(rng.choice((None, None, None, 0.01, 0.05))):
                permit = await governor.acquire(KEY)
            if permit is None:
                continue  # cancelled while waiting
            await anyio.sleep(rng.random() * 0.01)
            if rng.random() < 0.4:
                await governor.release(permit)  # never sent: its token is handed over
            else:
                await governor.settle(permit, status=200, rate_limit=None)
        ended.append(number)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for number in range(TASKS_IN_ALL):
                group.start_soon(task, number, governors[number % 3])
    assert sorted(ended) == list(range(TASKS_IN_ALL))
    for governor in governors:
        snap = await governor.snapshot(KEY)
        assert (snap.in_flight, snap.waiting) == (0, 0)


async def test_cancelled_waiters_leave_the_queue_and_the_next_one_takes_over(make):
    a, other = make(), make()
    probe = await other.acquire(KEY)
    served: list[int] = []
    scopes = [anyio.CancelScope() for _ in range(3)]

    async def wait(task: int) -> None:
        with scopes[task]:
            await a.acquire(KEY)
            served.append(task)

    async with anyio.create_task_group() as group:
        for task in range(3):
            group.start_soon(wait, task)
            await anyio.sleep(0.02)
        scopes[0].cancel()  # the head, which was asking Redis for everyone
        await anyio.sleep(0.05)
        await other.settle(probe, status=200, rate_limit=Server().answer(3))
    assert served == [1, 2]
    snap = await a.snapshot(KEY)
    assert (snap.in_flight, snap.waiting, snap.remaining) == (2, 0, 1)


async def test_a_lost_lease_expires_and_counts_as_spent_until_a_later_report(make):
    a, server = make(lease=0.3), Server()
    probe = await a.acquire(KEY)
    await a.settle(probe, status=200, rate_limit=server.answer(3))
    lost = await a.acquire(KEY)  # its holder vanishes: never settled nor released
    assert (await a.snapshot(KEY)).remaining == 2
    await anyio.sleep(0.4)
    snap = await a.snapshot(KEY)
    assert (snap.in_flight, snap.remaining) == (0, 2)  # expired, but still counted as spent
    later = await a.acquire(KEY)
    # Its count includes the lost one.
    await a.settle(later, status=200, rate_limit=server.answer(1))
    assert (await a.snapshot(KEY)).remaining == 1
    await a.settle(lost, status=200, rate_limit=None)  # a very late answer charges nothing twice
    assert (await a.snapshot(KEY)).remaining == 1


async def test_a_process_killed_mid_request_leaks_its_tokens_only_for_the_lease(
    redis_url, prefix, make
):
    holder = subprocess.Popen(  # noqa: ASYNC220 - starting a process does not block long
        [
            sys.executable,
            "-c",
            "import sys, anyio; from plumvoice_async import RedisGovernor, QuotaKey\n"
            "async def main():\n"
            f"    g = RedisGovernor.from_url({redis_url!r}, limit=10, window=60.0,"
            f" prefix={prefix!r}, lease=1.0)\n"
            f"    await g.acquire(QuotaKey({KEY.group!r}, {KEY.account!r}))\n"
            "    print('holding', flush=True)\n"
            "    await anyio.sleep(60)\n"
            "anyio.run(main)\n",
        ],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert await anyio.to_thread.run_sync(holder.stdout.readline) == "holding\n"
        os.kill(holder.pid, signal.SIGKILL)
    finally:
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()
    survivor = make()
    assert (await survivor.snapshot(KEY)).in_flight == 1  # the dead process's probe
    started = time.monotonic()
    with anyio.fail_after(5):
        await survivor.acquire(KEY)
    assert time.monotonic() - started < 2.0  # the 1 s lease, plus a re-check at most


async def test_max_wait_forecasts_the_queue_and_refuses_at_once(make):
    a, other = make(), make()
    probe = await other.acquire(KEY)
    await other.settle(probe, status=200, rate_limit=Server(30).answer(0))
    started = time.monotonic()
    with pytest.raises(RateLimitError) as refused:
        await a.acquire(KEY, max_wait=5.0)
    assert time.monotonic() - started < 0.5
    assert refused.value.reset_at is not None
    assert refused.value.reset_at.timestamp() - time.time() == pytest.approx(31.0, abs=1.0)
    assert (await a.snapshot(KEY)).waiting == 0
    async with anyio.create_task_group() as group:
        group.start_soon(a.acquire, KEY)  # waits for the reset, asking Redis for everyone
        await anyio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(RateLimitError):  # behind it: refused at once too, no round trip
            await a.acquire(KEY, max_wait=5.0)
        assert time.monotonic() - started < 0.05
        assert (await a.snapshot(KEY)).waiting == 1
        group.cancel_scope.cancel()
    assert (await a.snapshot(KEY)).waiting == 0


# -- a hostile server (issue 11), on a fake clock --------------------------------------------


@pytest.fixture
async def fake(redis_url: str, prefix: str) -> AsyncIterator[tuple[FakeClock, RedisGovernor]]:
    """One governor whose scripts read a ``FakeClock`` (the ``_time_from_clock`` seam): windows
    of 60 s starting on a boundary, margin 1 s, a re-check a day off."""
    clock = FakeClock(start=1_700_000_040.0)  # 60 s windows: this is a boundary
    governor = RedisGovernor.from_url(
        redis_url,
        limit=10,
        window=60.0,
        prefix=prefix,
        recheck=DAY,
        clock=clock,
        _time_from_clock=True,
    )
    yield clock, governor
    await governor.aclose()


def answer(clock: FakeClock, remaining: int, *, windows: int = 1, limit: int = 10) -> RateLimit:
    """The server's headers now: its window ends ``windows`` boundaries ahead."""
    reset = (math.floor(clock.time() / 60) + windows) * 60.0
    return RateLimit(limit, remaining, reset, float(math.floor(clock.time())))


async def refused(governor: RedisGovernor) -> bool:
    """Whether ``max_wait=0`` is refused (by its deadline: fake time does not move here)."""
    try:
        with anyio.fail_after(5):  # real time: a refusal takes a round trip or two
            permit = await governor.acquire(KEY, max_wait=0.0)
    except RateLimitError:
        return True
    await governor.release(permit)
    return False


async def test_a_stale_429_closes_the_gate_until_its_own_end_then_one_probe(fake):
    """Issue 11, case 1: a 429 naming the window before ours was ignored, and the retry went
    straight back out (194 in 1 s). It closes the gate until its own end, then one probe."""
    clock, governor = fake
    probe = await governor.acquire(KEY)
    await governor.settle(probe, status=200, rate_limit=answer(clock, 8, windows=2))
    first = await governor.acquire(KEY)
    await clock.advance(5.0)
    await governor.settle(first, status=429, rate_limit=answer(clock, 0))  # a window earlier
    assert await refused(governor)
    assert (await governor.snapshot(KEY)).remaining == 0
    await clock.advance(60 - 5 + 1.0 - 0.01)  # just before its own end (+ margin)
    assert await refused(governor)
    await clock.advance(0.02)
    probe = await governor.acquire(KEY, max_wait=0.0)
    assert await refused(governor)  # one probe per reopening
    await governor.settle(probe, status=200, rate_limit=answer(clock, 5))  # adopted normally
    assert (await governor.snapshot(KEY)).remaining == 5


async def test_a_429_naming_a_later_window_closes_until_that_end_too(fake):
    clock, governor = fake
    probe = await governor.acquire(KEY)
    await governor.settle(probe, status=429, rate_limit=answer(clock, 0, windows=2))
    await clock.advance(61.5)  # our first window is over, the 429's is not
    assert await refused(governor)
    await clock.advance(60.0)
    assert not await refused(governor)


async def test_a_probe_answered_without_headers_keeps_the_slow_start(fake):
    """Issue 11, case 2: a proxy's 502 on the probe opened a local window of the full limit
    (8 of 9 got 429 with one token left). One at a time until 3 such answers in a row."""
    _, governor = fake
    for answered in range(3):
        snap = await governor.snapshot(KEY)
        assert snap.phase == "probing", answered
        probe = await governor.acquire(KEY, max_wait=0.0)
        assert await refused(governor)  # one request at a time
        await governor.settle(probe, status=502, rate_limit=None)
    assert (await governor.snapshot(KEY)).phase == "local"  # proven: no headers here


async def test_an_answer_with_headers_restarts_the_proof(fake):
    clock, governor = fake
    for _ in range(2):
        probe = await governor.acquire(KEY)
        await governor.settle(probe, status=502, rate_limit=None)
    probe = await governor.acquire(KEY)
    await governor.settle(probe, status=200, rate_limit=answer(clock, 0))
    await clock.advance(61.0)
    for _ in range(2):
        probe = await governor.acquire(KEY)
        await governor.settle(probe, status=502, rate_limit=None)
    assert (await governor.snapshot(KEY)).phase == "probing"


async def test_max_wait_counts_unreported_spends_and_reset_at_is_never_past(fake):
    """Issue 11, case 3: Remaining 9, then nine 502s without headers: ``max_wait=5`` was
    refused after 3 s with ``reset_at`` in the past. Refused at once, ``reset_at`` ahead."""
    clock, governor = fake
    probe = await governor.acquire(KEY)
    await governor.settle(probe, status=200, rate_limit=answer(clock, 9))
    for _ in range(9):
        permit = await governor.acquire(KEY)
        await governor.settle(permit, status=502, rate_limit=None)
    with anyio.fail_after(5), pytest.raises(RateLimitError) as caught:
        await governor.acquire(KEY, max_wait=5.0)
    reset_at = caught.value.reset_at
    assert reset_at is not None
    assert reset_at.timestamp() - clock.time() == pytest.approx(61.0, abs=0.01)


async def test_a_waiter_is_refused_by_its_own_deadline_at_the_latest(fake):
    """A waiter whose forecast said "soon" but whose turn did not come wakes at its deadline
    and is refused then, ``reset_at`` not in the past (it slept on no other deadline)."""
    clock, governor = fake
    probe = await governor.acquire(KEY)  # the window is unknown until it answers
    outcome: list[BaseException] = []

    async def wait() -> None:
        try:
            await governor.acquire(KEY, max_wait=5.0)
        except RateLimitError as exc:
            outcome.append(exc)

    with anyio.fail_after(5):  # real time: a Redis round trip or two
        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            await clock.advance(4.9)
            assert not outcome
            await clock.advance(0.1)
            while not outcome:  # noqa: ASYNC110
                await anyio.sleep(0.01)
    reset_at = outcome[0].reset_at  # type: ignore[attr-defined]
    assert reset_at is not None
    assert reset_at.timestamp() >= clock.time() == 1_700_000_045.0
    await governor.settle(probe, status=200, rate_limit=answer(clock, 5))


@pytest.mark.parametrize(
    "headers",
    [
        RateLimit(10, 0, math.nan, 1_700_000_040.0),
        RateLimit(10, 0, math.inf, 1_700_000_040.0),
        RateLimit(10, 0, 1_000_000_000_000.0, 1_700_000_040.0),
        RateLimit(10, 0, 1e30, None),
        RateLimit(10, 0, 1_700_000_040.0 + 5 * 60, 1_700_000_040.0),  # 5 windows away
        RateLimit(10, 0, 5 * 60.0, None),  # a delta of 5 windows
        RateLimit(0, 0, 1_700_000_100.0, 1_700_000_040.0),
        RateLimit(10**7, 0, 1_700_000_100.0, 1_700_000_040.0),
        RateLimit(10, 10**7, 1_700_000_100.0, 1_700_000_040.0),
        RateLimit(10, 0, 1_700_000_100.0, math.inf),
    ],
    ids=repr,
)
async def test_absurd_header_values_are_treated_as_absent(fake, headers):
    """Issue 11, case 4: ``Reset: nan`` left the bucket probing for good, ``inf`` never reopened,
    ``1e12`` or ``1e30`` raised from ``max_wait`` or ``snapshot``. Absent, nothing raises."""
    clock, governor = fake
    for status in (200, 429):
        with anyio.fail_after(5):
            permit = await governor.acquire(KEY, max_wait=120.0)
        await governor.settle(permit, status=status, rate_limit=headers)
        snap = await governor.snapshot(KEY)
        assert snap.reset_at is None or snap.reset_at.timestamp() < clock.time() + 4 * 60
    await clock.advance(130.0)
    permit = await governor.acquire(KEY, max_wait=0.0)  # it reopens
    await governor.settle(permit, status=200, rate_limit=answer(clock, 5))
    assert (await governor.snapshot(KEY)).remaining == 5


async def test_retry_after_on_a_429_without_headers_closes_the_gate_that_long(fake):
    """Issue 11, case 6: a 429 with ``Retry-After: 1`` and no X-RateLimit headers waited for
    the next aligned window (770 s of 900). Closed for 1 s + margin, then one probe."""
    clock, governor = fake
    probe = await governor.acquire(KEY)
    await governor.settle(probe, status=200, rate_limit=answer(clock, 5))
    permit = await governor.acquire(KEY)
    await governor.settle(permit, status=429, rate_limit=None, retry_after=1.0)
    assert await refused(governor)
    await clock.advance(1.99)
    assert await refused(governor)
    await clock.advance(0.02)
    probe = await governor.acquire(KEY, max_wait=0.0)
    assert await refused(governor)  # one probe per reopening
    await governor.settle(probe, status=200, rate_limit=answer(clock, 3, windows=2))
    assert (await governor.snapshot(KEY)).remaining == 3


async def test_after_a_retry_after_closure_the_same_window_s_count_is_adopted(fake):
    """The closure ends inside the window the scripts knew: the probe's answer for that same
    window is the server's count now. Read as stale, it kept the slow start to the window's end."""
    clock, governor = fake
    probe = await governor.acquire(KEY)
    await governor.settle(probe, status=200, rate_limit=answer(clock, 5))
    permit = await governor.acquire(KEY)
    await governor.settle(permit, status=429, rate_limit=None, retry_after=1.0)
    await clock.advance(2.01)
    probe = await governor.acquire(KEY, max_wait=0.0)
    await governor.settle(probe, status=200, rate_limit=answer(clock, 3))
    snapshot = await governor.snapshot(KEY)
    assert (snapshot.phase, snapshot.remaining) == ("server", 3)


async def _quiet(*governors: RedisGovernor) -> None:
    """Until every lane with waiters has its pump asleep on its plan, subscribed, with no news,
    twice in a row 50 ms apart (real time, bounded): pub/sub messages and round trips done."""

    def asleep() -> bool:
        lanes = [lane for g in governors for lane in g._lanes.values() if lane.waiting]
        return all(lane.listening and lane.nap is not None and not lane.news for lane in lanes)

    with anyio.fail_after(5):
        while True:
            await anyio.sleep(0.05)
            if asleep():
                await anyio.sleep(0.05)
                if asleep():
                    return


@pytest.mark.parametrize(("priority", "reserve"), [("interactive", 0), ("bulk", 1)])
async def test_no_process_with_waiters_is_passed_over_for_more_than_one_window(
    redis_url, prefix, priority, reserve
):
    """Issue 11, case 8: a settle handed what it freed to its own process first, so a busy
    process kept another waiting window after window. The process that has waited longer is
    served first (its turn among processes), and one served in part goes to the back. Issue
    13: the same at bulk priority, whose turns are kept apart, with a reserve left unspent."""
    clock = FakeClock(start=1_700_000_040.0)  # a 60 s boundary
    governors = {
        name: RedisGovernor.from_url(
            redis_url,
            limit=4,
            window=60.0,
            prefix=prefix,
            recheck=DAY,
            reserve=reserve,
            clock=clock,
            _time_from_clock=True,
        )
        for name in ("busy", "other")
    }
    busy, other = governors["busy"], governors["other"]
    spent: Counter[int] = Counter()
    served: list[tuple[str, int]] = []

    def window() -> int:
        return math.floor(clock.time() / 60) - math.floor(1_700_000_040.0 / 60)

    async def send(name: str, permit: Permit, *, waiter: bool = True) -> None:
        index = window()
        spent[index] += 1
        if waiter:
            served.append((name, index))
        status, left = (200, 4 - spent[index]) if spent[index] <= 4 else (429, 0)
        await governors[name].settle(permit, status=status, rate_limit=answer(clock, left, limit=4))

    async def task(name: str) -> None:
        await send(name, await governors[name].acquire(KEY, priority=priority))

    try:
        probe = await busy.acquire(KEY)
        async with anyio.create_task_group() as group:
            for _ in range(10):  # more than two windows' worth: turns must alternate
                group.start_soon(task, "other")
            await _quiet(other)
            await clock.advance(0.01)  # the busy process's waiters come after
            for _ in range(10):
                group.start_soon(task, "busy")
            await _quiet(busy, other)
            await send("busy", probe, waiter=False)  # its answer frees 3 tokens
            await _quiet(busy, other)
            for _ in range(7):
                # Past the next window's end at the server, our margin (1 s), Date's 1 s.
                await clock.advance(60.0 - clock.time() % 60.0 + 2.0)
                await _quiet(busy, other)
            group.cancel_scope.cancel()  # whoever still waits was stranded: asserted below
    finally:
        for governor in governors.values():
            await governor.aclose()
    assert spent[0] <= 4
    assert all(count <= 4 for count in spent.values()), spent  # no 429 from our traffic
    assert all(n <= 4 - reserve for n in Counter(i for _, i in served).values()), served
    assert len(served) == 20
    assert ("other", 0) in served, served  # the first answer's tokens went to it
    for name in governors:
        # While its waiters waited, neither was passed over two windows running.
        windows = {index for who, index in served if who == name}
        for index in range(max(windows)):
            assert index in windows or index + 1 in windows, (name, served)


# -- priorities and the reserve (issue 13), on a fake clock ----------------------------------


@pytest.fixture
async def pair(
    redis_url: str, prefix: str
) -> AsyncIterator[tuple[FakeClock, RedisGovernor, RedisGovernor]]:
    """Two processes on one Redis and one ``FakeClock``: limit 10 per 60 s, reserve 3."""
    clock = FakeClock(start=1_700_000_040.0)  # a 60 s boundary
    a, b = (
        RedisGovernor.from_url(
            redis_url,
            limit=10,
            window=60.0,
            prefix=prefix,
            recheck=DAY,
            reserve=3,
            clock=clock,
            _time_from_clock=True,
        )
        for _ in range(2)
    )
    yield clock, a, b
    await a.aclose()
    await b.aclose()


async def test_an_interactive_waiter_anywhere_goes_before_bulk_waiters_elsewhere(pair):
    """Issue 13: bulk waiters in process B queued first; an interactive waiter in process A
    came later. B's own answer frees the tokens, and still A's interactive waiters take theirs
    first; B's bulk ones get only what is left above the reserve."""
    clock, a, b = pair
    probe = await b.acquire(KEY)
    served: list[str] = []

    async def wait(governor: RedisGovernor, name: str, priority: str) -> None:
        await governor.acquire(KEY, priority=priority)
        served.append(name)

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(wait, b, "b bulk", "bulk")
        await _quiet(b)
        for _ in range(3):
            group.start_soon(wait, a, "a interactive", "interactive")
        await _quiet(a, b)
        assert served == []  # the probe is out: nothing to grant until it answers
        await b.settle(probe, status=200, rate_limit=answer(clock, 7))  # 7 left, 3 reserved
        await _quiet(a, b)
        group.cancel_scope.cancel()
    assert Counter(served) == {"a interactive": 3, "b bulk": 1}, served
    snapshot = await b.snapshot(KEY)
    assert snapshot.remaining == 3  # the reserve, untouched by bulk


async def test_the_reserve_is_one_per_window_for_the_account_and_bulk_never_takes_it(pair):
    """Issue 13: bulk waiters in two processes together take the window down to the reserve,
    not a reserve each; the reserve then serves interactive requests of either process, and
    no bulk request even when a bulk process's own answers free tokens."""
    clock, a, b = pair
    probe = await a.acquire(KEY)
    bulk: Counter[str] = Counter()
    held: list[tuple[RedisGovernor, Permit]] = []

    async def wait(governor: RedisGovernor, name: str) -> None:
        permit = await governor.acquire(KEY, priority="bulk")
        bulk[name] += 1
        held.append((governor, permit))

    async with anyio.create_task_group() as group:
        for governor, name in ((a, "a"), (b, "b")):
            for _ in range(6):
                group.start_soon(wait, governor, name)
        await _quiet(a, b)
        await a.settle(probe, status=200, rate_limit=answer(clock, 9))
        await _quiet(a, b)
        assert sum(bulk.values()) == 6, bulk  # 9 grantable, 3 of them reserved
        assert (await a.snapshot(KEY)).remaining == 3
        # Bulk answers free nothing new (the server counts them): still no bulk grant, though
        # each process's own answers hand what they free to its own queue first.
        for governor, permit in list(held):
            await governor.settle(permit, status=200, rate_limit=answer(clock, 3))
        await _quiet(a, b)
        assert sum(bulk.values()) == 6, bulk
        # The reserve is the interactive requests', from either process (fake time stands).
        with anyio.fail_after(5):
            for governor in (a, b, a):
                await governor.acquire(KEY, max_wait=1.0)
            with pytest.raises(RateLimitError):
                await b.acquire(KEY, max_wait=1.0)
        group.cancel_scope.cancel()


async def test_max_wait_counts_priorities_and_the_reserve(pair):
    """Issue 13: bulk waiters queued ahead do not push an interactive request's forecast past
    its max_wait; a bulk request is refused when only the reserve is left."""
    clock, a, _ = pair
    probe = await a.acquire(KEY)
    await a.settle(probe, status=200, rate_limit=answer(clock, 4))  # 4 left, 3 reserved
    first = await a.acquire(KEY, priority="bulk")
    with pytest.raises(RateLimitError):
        with anyio.fail_after(5):
            await a.acquire(KEY, max_wait=1.0, priority="bulk")
    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(partial(a.acquire, KEY, priority="bulk"))
        await _quiet(a)
        assert (await a.snapshot(KEY)).waiting_by_priority == {"interactive": 0, "bulk": 4}
        with anyio.fail_after(5):  # behind 4 bulk waiters, still at once (fake time stands)
            permit = await a.acquire(KEY, max_wait=1.0)
        await a.release(permit)
        group.cancel_scope.cancel()
    await a.release(first)


async def test_snapshot_reports_the_reserve_and_this_process_s_waiters_per_priority(pair):
    _, a, b = pair
    probe = await a.acquire(KEY)
    async with anyio.create_task_group() as group:
        group.start_soon(partial(a.acquire, KEY, priority="bulk"))
        group.start_soon(partial(a.acquire, KEY, priority="bulk"))
        group.start_soon(partial(a.acquire, KEY, priority="interactive"))
        group.start_soon(partial(b.acquire, KEY, priority="bulk"))
        await _quiet(a, b)
        snapshot = await a.snapshot(KEY)
        assert snapshot.reserve == 3
        assert snapshot.waiting == 3
        assert snapshot.waiting_by_priority == {"interactive": 1, "bulk": 2}
        group.cancel_scope.cancel()
    await a.release(probe)
    assert (await b.snapshot(KEY)).waiting_by_priority == {"interactive": 0, "bulk": 0}


async def test_the_authentication_group_keeps_no_reserve(pair):
    """As ``LocalGovernor``: a bulk client must still sign in when a data window is down to
    its reserve; the sign-in group's window (15) keeps none."""
    clock, a, _ = pair
    auth = QuotaKey(QuotaGroup.VOICETRENDS_AUTH.value, KEY.account)
    probe = await a.acquire(auth)
    await a.settle(probe, status=200, rate_limit=answer(clock, 2, limit=15))
    with anyio.fail_after(5):
        await a.acquire(auth, priority="bulk", max_wait=1.0)  # 2 left, under a reserve of 3
    assert (await a.snapshot(auth)).reserve == 0
    probe = await a.acquire(KEY)
    await a.settle(probe, status=200, rate_limit=answer(clock, 2))
    with pytest.raises(RateLimitError), anyio.fail_after(5):
        await a.acquire(KEY, priority="bulk", max_wait=1.0)
    assert (await a.snapshot(KEY)).reserve == 3


def test_the_fallback_s_reserve_fits_every_group_s_share(redis_url):
    """A reserve valid for every group (5 of fuse's 6) stays valid for the fallback's shares
    (a quarter: 1 of fuse's 1 was refused): the fallback keeps what fits, 0 here."""
    governor = RedisGovernor.from_url(
        redis_url,
        groups={QuotaGroup.FUSE.value: (6, 60.0)},
        reserve=5,
        fallback="local",
        fallback_share=0.25,
    )
    assert governor._fallback is not None
    assert governor._fallback.reserve == 0


@pytest.mark.parametrize("reserve", ["3", 1.5, True, None, -1, 10, 11])
async def test_a_bad_reserve_is_refused_naming_it(redis_url, reserve):
    with pytest.raises(InvalidParameterError) as raised:
        RedisGovernor.from_url(redis_url, limit=10, reserve=reserve)
    assert raised.value.parameter == "reserve"
    with pytest.raises(InvalidParameterError) as raised:
        RedisGovernor(Redis.from_url(redis_url), limit=10, reserve=reserve)
    assert raised.value.parameter == "reserve"


@pytest.mark.parametrize("priority", ["urgent", "", "Interactive", None, 1])
async def test_an_unknown_priority_is_refused_before_anything_is_queued_or_sent(
    make, prefix, redis_url, priority
):
    governor = make()
    probe = Redis.from_url(redis_url)
    try:
        with pytest.raises(InvalidParameterError) as raised:
            await governor.acquire(KEY, priority=priority)
        assert raised.value.parameter == "priority"
        assert governor._lanes == {}  # nothing queued
        assert await probe.keys(f"{prefix}*") == []  # nothing sent
    finally:
        await probe.aclose()


# -- Redis itself --------------------------------------------------------------------------


async def test_keys_are_namespaced_hold_no_credential_and_expire_when_idle(make, prefix):
    a = make(window=60.0, lease=30.0)
    probe = await a.acquire(KEY)
    await a.settle(probe, status=200, rate_limit=Server().answer(5))
    names = sorted(await a._redis.keys("*"))
    ours = [name for name in names if name.startswith(prefix)]
    assert ours == [f"{prefix}{{{KEY.group}:{KEY.account}}}:{part}" for part in ("state",)]
    held = await a.acquire(KEY)
    ours = sorted(n for n in await a._redis.keys("*") if n.startswith(prefix))
    assert [n.rsplit(":", 1)[1] for n in ours] == ["leases", "state"]
    for name in ours:
        assert LOGIN not in name
        # Two windows and a lease after the window's end (31 s away: Reset - Date + margin).
        assert 0 < await a._redis.pttl(name) <= (31 + 2 * 60 + 30) * 1000
    await a.release(held)


async def test_idle_buckets_vanish_from_redis_even_after_a_429_closed_them(make, prefix):
    """Keys outlive a closed window (a 429 may close one up to MAX_RESET_WINDOWS ahead), then
    expire: an idle bucket costs Redis nothing (issue 11, case 7)."""
    a = make(window=0.5, lease=0.2)
    server = Server(reset_in=1)
    probe = await a.acquire(KEY)
    await a.settle(probe, status=429, rate_limit=server.answer(0))
    ours = [n for n in await a._redis.keys("*") if n.startswith(prefix)]
    assert ours
    for name in ours:
        assert await a._redis.pttl(name) > 1000  # past the 429's reset, 1 s away
    with anyio.fail_after(5):
        while [n for n in await a._redis.keys("*") if n.startswith(prefix)]:  # noqa: ASYNC110
            await anyio.sleep(0.1)


async def test_scripts_are_reloaded_after_redis_forgets_them(make):
    a = make()
    await a.snapshot(KEY)
    await a._redis.script_flush()
    probe = await a.acquire(KEY)  # NOSCRIPT, then loaded again and run
    await a.settle(probe, status=200, rate_limit=Server().answer(4))
    assert (await a.snapshot(KEY)).remaining == 4


async def test_commands_per_request_are_one_round_trip_each(make):
    a, server = make(), Server()
    probe = await a.acquire(KEY)
    await a.settle(probe, status=200, rate_limit=server.answer(8))
    before = await a._redis.info("commandstats")
    for _ in range(5):
        permit = await a.acquire(KEY)
        await a.settle(permit, status=200, rate_limit=server.answer(8))
    after = await a._redis.info("commandstats")
    calls = after["cmdstat_evalsha"]["calls"] - before["cmdstat_evalsha"]["calls"]
    assert calls == 10  # one script to admit, one to settle


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_redis_unreachable_fails_fast_with_a_clear_error(caplog):
    governor = RedisGovernor.from_url(f"redis://127.0.0.1:{_closed_port()}/0", socket_timeout=0.5)
    with anyio.fail_after(3), pytest.raises(GovernorUnavailableError, match="unreachable"):
        await governor.acquire(KEY)
    # An answer that cannot be recorded is not an error for the request that got it: its
    # lease expires and counts as spent.
    with caplog.at_level(logging.WARNING, logger="plumvoice_async"), anyio.fail_after(3):
        await governor.settle(Permit(KEY, Lease(1)), status=200, rate_limit=None)
    assert "lease will expire" in caplog.records[-1].getMessage()
    await governor.aclose()


async def test_redis_unreachable_falls_back_to_a_share_of_the_quota_when_asked(caplog):
    governor = RedisGovernor.from_url(
        f"redis://127.0.0.1:{_closed_port()}/0",
        socket_timeout=0.5,
        limit=20,
        fallback="local",
        fallback_share=0.25,
    )
    with caplog.at_level(logging.WARNING, logger="plumvoice_async"), anyio.fail_after(3):
        probe = await governor.acquire(KEY)
        await governor.settle(probe, status=200, rate_limit=None)
        second = await governor.acquire(KEY)  # the fallback is used at once now
        await governor.release(second)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "local governor" in warnings[0].getMessage()
    assert (await governor.snapshot(KEY)).limit == 5
    await governor.aclose()


class CountingServer:
    """One account's window at the server, ``limit`` requests, counted for every process."""

    def __init__(self, limit: int) -> None:
        self.clock = Server(reset_in=30, limit=limit)
        self.spent = 0
        self.rejected = 0

    def answer(self) -> tuple[int, RateLimit]:
        if self.spent >= self.clock.limit:
            self.rejected += 1
            return 429, self.clock.answer(0)
        self.spent += 1
        return 200, self.clock.answer(self.clock.limit - self.spent)


async def test_the_fallback_never_spends_more_than_its_share_when_redis_stops_mid_run():
    """Issue 11, case 5: three processes lose Redis mid-window and fall back. Each admits at
    most ``fallback_share`` of the limit (5 of 20), and no 429 comes back (before the fix each
    adopted the server's Limit and Remaining: 15 admitted in one window, then 429s)."""
    server = CountingServer(limit=20)
    with running_redis_server() as url:
        governors = [
            RedisGovernor.from_url(
                url,
                limit=20,
                window=60.0,
                prefix="fallback:",
                socket_timeout=0.5,
                fallback="local",
                fallback_share=0.25,
                retry_after=60.0,
            )
            for _ in range(3)
        ]
        for governor in governors:  # one request each through Redis
            permit = await governor.acquire(KEY)
            status, answer = server.answer()
            await governor.settle(permit, status=status, rate_limit=answer)
    # redis-server is stopped: every governor falls back at its next acquire.
    admitted = []
    with anyio.fail_after(10):
        for governor in governors * 2:  # two rounds: the first of each may be its probe
            count = 0
            while True:
                try:
                    permit = await governor.acquire(KEY, max_wait=0.0)
                except RateLimitError:
                    break
                count += 1
                status, answer = server.answer()
                await governor.settle(permit, status=status, rate_limit=answer)
            admitted.append(count)
    for governor in governors:
        await governor.aclose()
    assert server.rejected == 0
    per_process = [a + b for a, b in zip(admitted[:3], admitted[3:], strict=True)]
    assert all(count <= 5 for count in per_process), per_process
    assert sum(per_process) <= 5  # they all read the same count: together at most the share
    assert sum(per_process) >= 1  # and the fallback does serve


def test_bad_settings_are_refused():
    redis = import_redis()
    client = redis.asyncio.Redis()
    for options in ({"fallback": "remote"}, {"fallback_share": 0.0}, {"lease": 0}, {"limit": 0}):
        with pytest.raises(ValueError, match=r"fallback|lease|limit"):
            RedisGovernor(client, **options)  # type: ignore[arg-type]


def test_the_redis_extra_is_named_when_the_client_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ImportError, match=r"plumvoice-async\[redis\]"):
        RedisGovernor.from_url("redis://127.0.0.1:6379/0")


def test_trio_gets_a_clear_error(redis_url):
    governor = RedisGovernor.from_url(redis_url)
    with pytest.raises(RuntimeError, match="asyncio only"):
        anyio.run(governor.acquire, KEY, backend="trio")


# -- many processes, one quota --------------------------------------------------------------

PROCESSES, TASKS, LIMIT, WINDOW, WINDOWS = 4, 16, 30, 3, 4


@pytest.fixture
def simulator() -> Iterator[tuple[PlumSimulator, str]]:
    sim = PlumSimulator(quotas={QuotaGroup.VOICETRENDS: Quota(LIMIT, WINDOW)})
    with serve(sim) as url:
        yield sim, url


async def test_four_processes_share_one_quota_without_a_429_or_idling(redis_url, prefix, simulator):
    sim, url = simulator
    per_process = LIMIT * WINDOWS // PROCESSES
    workers = [
        subprocess.Popen(  # noqa: ASYNC220 - starting a process does not block long
            [
                sys.executable,
                "-m",
                "tests.redis_server",
                *(redis_url, prefix, url),
                *map(str, (LIMIT, WINDOW, TASKS, per_process)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert await anyio.to_thread.run_sync(worker.stdout.readline) == "ready\n"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [
            await anyio.to_thread.run_sync(lambda w=w: w.communicate(timeout=40)[0])
            for w in workers
        ]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
            for pipe in (worker.stdin, worker.stdout):
                if pipe is not None:
                    pipe.close()  # a failure here must not leak them into later tests
    assert outputs == [f"done {per_process}\n"] * PROCESSES
    data = [r for r in sim.requests if r.group is QuotaGroup.VOICETRENDS]
    assert Counter(r.status for r in data) == {200: LIMIT * WINDOWS}  # no 429, none lost
    per_window = Counter(math.floor(r.time / WINDOW) for r in data)
    first, last = min(per_window), max(per_window)
    assert last - first >= WINDOWS - 1
    for window in range(first + 1, last):  # the full windows, between the first and last
        assert per_window[window] >= 0.95 * LIMIT, per_window
