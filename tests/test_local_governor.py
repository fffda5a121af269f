from __future__ import annotations

import logging
import math
from datetime import UTC
from email.utils import formatdate

import anyio
import pytest

from plumvoice_async._clock import Clock, SystemClock
from plumvoice_async._core.ratelimit import RateLimit
from plumvoice_async._core.requests import QuotaGroup
from plumvoice_async._errors import InvalidParameterError, RateLimitError
from plumvoice_async._governor import Governor, Permit, QuotaKey, Snapshot, account_hash
from plumvoice_async._local_governor import _SWEEP_STEP, LocalGovernor
from plumvoice_async.testing import FakeClock

from .governor_scenarios import SCENARIOS, Scenario, check, run

pytestmark = pytest.mark.anyio

LOGIN = "alice@example.com"
KEY = QuotaKey(QuotaGroup.VOICETRENDS.value, account_hash(LOGIN))
WINDOW = 60.0
SERVER_START = 1_700_000_010.0
"""30 s before a server window ends (1_700_000_040 is a multiple of 60)."""


def local_governor(
    clock: Clock, limit: int, window: float, margin: float, *, reserve: int = 0
) -> Governor:
    return LocalGovernor(limit, window, margin=margin, clock=clock, reserve=reserve)


def answer(server: FakeClock, remaining: int, limit: int = 10) -> RateLimit:
    """What the server says now: its window's Reset and its own Date."""
    now = server.time()
    return RateLimit(limit, remaining, (now // WINDOW + 1) * WINDOW, float(math.floor(now)))


async def spent_governor(clock: FakeClock) -> LocalGovernor:
    """A governor whose window (ending in 30 s + margin) has no quota left."""
    gov = LocalGovernor(10, WINDOW, clock=clock)
    probe = await gov.acquire(KEY)
    await gov.settle(probe, status=200, rate_limit=answer(clock, 0))
    return gov


# -- the scenario table -------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_scenario(scenario: Scenario):
    check(await run(scenario, local_governor))


class _Unlimited:
    """A governor that lets everything through (and gives up after a 429): the table must
    fail it."""

    async def acquire(self, key, *, max_wait=None, retry=False, priority="interactive"):
        if retry:
            raise RateLimitError("gave up", reset_at=None)
        return Permit(key)

    async def settle(self, permit, *, status, rate_limit, retry_after=None):
        pass

    async def release(self, permit):
        pass

    async def snapshot(self, key):
        return Snapshot(limit=0, remaining=0, reset_at=None, in_flight=0, waiting=0)


async def test_the_table_fails_a_governor_that_does_not_govern():
    result = await run(SCENARIOS[0], lambda *settings: _Unlimited())
    with pytest.raises(AssertionError, match="429s"):
        check(result)


# -- settings and keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, {"voicetrends": 150, "fuse": 150, "voicetrends-auth": 15, "other": 150}),
        ({"limit": 20, "window": 60.0}, {"voicetrends": 20, "fuse": 20, "voicetrends-auth": 15}),
        (
            {"groups": {QuotaGroup.FUSE: (40, 300.0), "voicetrends-auth": (5, 900.0)}},
            {"voicetrends": 150, "fuse": 40, "voicetrends-auth": 5},
        ),
    ],
)
async def test_limits_per_quota_group(kwargs, expected):
    gov = LocalGovernor(**kwargs, clock=FakeClock())
    for group, limit in expected.items():
        assert (await gov.snapshot(QuotaKey(group, "h"))).limit == limit


@pytest.mark.parametrize(
    "kwargs",
    [{"limit": 0}, {"window": 0.0}, {"margin": -1.0}, {"groups": {"fuse": (10, -5.0)}}],
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match=r"limit|window|margin"):
        LocalGovernor(**kwargs)


async def test_accounts_have_their_own_buckets_and_share_them_between_clients():
    clock = FakeClock(SERVER_START)
    gov = LocalGovernor(10, WINDOW, clock=clock)
    bob = QuotaKey(QuotaGroup.VOICETRENDS.value, account_hash("bob@example.com"))
    probe = await gov.acquire(KEY)
    await gov.acquire(bob)  # bob's own probe: alice's pending one does not hold him back
    alice_again = QuotaKey(QuotaGroup.VOICETRENDS.value, account_hash(LOGIN))  # another client
    async with anyio.create_task_group() as tg:
        tg.start_soon(gov.acquire, alice_again)
        await anyio.wait_all_tasks_blocked()
        assert (await gov.snapshot(KEY)).waiting == 1  # same account: same bucket
        await gov.settle(probe, status=200, rate_limit=answer(clock, 9))
    assert ((await gov.snapshot(KEY)).in_flight, (await gov.snapshot(bob)).in_flight) == (1, 1)


# -- observability ------------------------------------------------------------------------------


async def test_the_snapshot_shows_the_window_read_on_the_servers_clock():
    server = FakeClock(SERVER_START)
    client = server.skewed(1800.0)  # the client's wall clock is 30 minutes fast
    gov = LocalGovernor(10, WINDOW, clock=client)
    assert (await gov.snapshot(KEY)).phase == "probing"
    probe = await gov.acquire(KEY)
    await gov.settle(probe, status=200, rate_limit=answer(server, 7))
    await gov.acquire(KEY)
    snap = await gov.snapshot(KEY)
    assert (snap.limit, snap.remaining, snap.in_flight, snap.waiting, snap.phase) == (
        10,
        6,
        1,
        0,
        "server",
    )
    assert snap.reset_at is not None
    assert snap.reset_at.tzinfo is UTC
    # 30 s to the server's reset plus the 1 s margin, in the client's (fast) wall clock.
    assert snap.reset_at.timestamp() == pytest.approx(client.time() + 31.0)


async def test_repr_shows_each_buckets_live_state_and_no_credential():
    clock = FakeClock(SERVER_START)
    gov = await spent_governor(clock)
    text = repr(gov)
    assert KEY.account in text
    assert "server 0/10 per 60s, in_flight=0, waiting=0, resets_in=31.0s" in text
    assert "alice" not in text


async def test_waits_wakes_429s_and_resyncs_are_logged_without_credentials(caplog):
    caplog.set_level(logging.DEBUG, logger="plumvoice_async")
    clock = FakeClock(SERVER_START)
    gov = LocalGovernor(10, WINDOW, clock=clock)
    probe = await gov.acquire(KEY)
    async with anyio.create_task_group() as tg:
        tg.start_soon(gov.acquire, KEY)
        await anyio.wait_all_tasks_blocked()
        await gov.settle(probe, status=429, rate_limit=answer(clock, 0))
        await clock.advance(32.0)
    messages = [r.getMessage() for r in caplog.records if r.name == "plumvoice_async"]
    text = "\n".join(messages)
    assert f"quota {KEY}: waiting" in text
    assert "closed until the reset" in text
    assert f"quota {KEY}: token after 31.000 s" in text  # the reset is 30 s away, plus margin
    assert all(r.levelno == logging.DEBUG for r in caplog.records)
    assert "alice" not in text


# -- waiting, waking, cancelling ---------------------------------------------------------------


async def test_a_token_handed_to_a_waiter_cancelled_before_it_ran_goes_to_the_next():
    clock = FakeClock(SERVER_START)
    gov = LocalGovernor(10, WINDOW, clock=clock)
    probe = await gov.acquire(KEY)
    got: list[str] = []

    async def waiter(name: str, scope: anyio.CancelScope) -> None:
        with scope:
            await gov.acquire(KEY)
            got.append(name)

    first, second = anyio.CancelScope(), anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, "first", first)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(waiter, "second", second)
        await anyio.wait_all_tasks_blocked()
        # One token left: settle hands it to "first", which is cancelled before it runs.
        await gov.settle(probe, status=200, rate_limit=answer(clock, 1))
        first.cancel()
    assert got == ["second"]
    assert first.cancelled_caught
    snap = await gov.snapshot(KEY)
    assert (snap.in_flight, snap.waiting, snap.remaining) == (1, 0, 0)


async def test_a_request_re_queued_after_its_429_goes_before_everyone_waiting():
    clock = FakeClock(SERVER_START)
    gov = LocalGovernor(10, WINDOW, clock=clock)
    probe = await gov.acquire(KEY)
    order: list[str] = []

    async def waiter(name: str, retry: bool = False) -> None:
        permit = await gov.acquire(KEY, retry=retry)
        order.append(name)
        await clock.sleep(0.1)
        # One token left after each answer: the next waiter goes, one at a time, in order.
        await gov.settle(permit, status=200, rate_limit=answer(clock, 1))

    async with anyio.create_task_group() as tg:
        for name in ("first", "second"):
            tg.start_soon(waiter, name)
            await anyio.wait_all_tasks_blocked()
        await gov.settle(probe, status=429, rate_limit=answer(clock, 0))
        tg.start_soon(waiter, "re-queued", True)
        await clock.advance(30.0)
        assert order == []  # closed for everyone until the reset
        await clock.advance(5.0)
    assert order == ["re-queued", "first", "second"]


async def test_max_wait_shorter_than_the_reset_raises_at_once_with_reset_at():
    clock = FakeClock(SERVER_START)
    gov = await spent_governor(clock)
    before = clock.monotonic()
    with pytest.raises(RateLimitError) as caught:
        await gov.acquire(KEY, max_wait=5.0)
    assert clock.monotonic() == before
    error = caught.value
    assert error.status_code == 429
    assert error.reset_at is not None
    assert error.reset_at.tzinfo is UTC
    assert error.reset_at.timestamp() == pytest.approx(clock.time() + 31.0)
    assert "max_wait" in str(error)
    assert "alice" not in str(error)
    assert (await gov.snapshot(KEY)).waiting == 0


async def test_a_waiter_is_refused_as_soon_as_an_answer_shows_its_wait_is_too_long():
    clock = FakeClock(SERVER_START)
    gov = LocalGovernor(10, WINDOW, clock=clock)
    probe = await gov.acquire(KEY)
    refused: list[float] = []

    async def hurried() -> None:
        with pytest.raises(RateLimitError):
            await gov.acquire(KEY, max_wait=5.0)  # the window is unknown: it may wait
        refused.append(clock.monotonic())

    async with anyio.create_task_group() as tg:
        tg.start_soon(hurried)
        await anyio.wait_all_tasks_blocked()
        assert not refused
        await clock.advance(1.0)
        await gov.settle(probe, status=429, rate_limit=answer(clock, 0))
    assert refused == [SERVER_START + 1.0]


async def test_only_the_head_of_the_queue_sleeps_and_only_until_the_reset():
    sleeps: list[float] = []

    class CountingClock(FakeClock):
        async def sleep(self, seconds: float) -> None:
            sleeps.append(seconds)
            await super().sleep(seconds)

    clock = CountingClock(SERVER_START)
    gov = await spent_governor(clock)
    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(gov.acquire, KEY)
        await clock.advance(29.0)
        assert sleeps == [31.0]  # one timer for 50 waiters, no polling
        await clock.advance(3.0)
        snap = await gov.snapshot(KEY)
        assert (snap.in_flight, snap.waiting, snap.phase) == (1, 49, "probing")
        tg.cancel_scope.cancel()
    # The new head is the timer now: it only watches the probe's lease (two windows).
    assert sleeps == [31.0, 2 * WINDOW]


async def test_settle_and_release_of_spent_or_foreign_permits_change_nothing():
    clock = FakeClock(SERVER_START)
    gov = LocalGovernor(10, WINDOW, clock=clock)
    probe = await gov.acquire(KEY)
    await gov.settle(probe, status=200, rate_limit=answer(clock, 5))
    permit = await gov.acquire(KEY)
    await gov.release(permit)
    await gov.release(permit)
    await gov.settle(permit, status=None, rate_limit=None)
    await gov.settle(Permit(QuotaKey("voicetrends", "other")), status=200, rate_limit=None)
    await gov.release(Permit(KEY, token="not ours"))
    assert (await gov.snapshot(KEY)).remaining == 5


async def test_runs_on_the_system_clock_without_sleeping():
    gov = LocalGovernor(clock=SystemClock())
    permit = await gov.acquire(KEY)
    now = SystemClock().time()
    rate_limit = RateLimit(150, 149, (now // 900 + 1) * 900, float(math.floor(now)))
    await gov.settle(permit, status=200, rate_limit=rate_limit)
    snap = await gov.snapshot(KEY)
    assert (snap.remaining, snap.phase) == (149, "server")


# -- hostile headers ----------------------------------------------------------------------------

ABSURD_RESETS = ["nan", "inf", "1000000000000", "1e30", "-5"]


@pytest.mark.parametrize("reset", ABSURD_RESETS)
async def test_absurd_reset_headers_never_escape_as_anything_but_a_plum_error(reset, caplog):
    # Issue 11, case 4: Reset inf escaped max_wait as OverflowError, 1000000000000 as
    # "ValueError: year 33658 is out of range", and snapshot() raised after 1e30.
    caplog.set_level(logging.DEBUG, logger="plumvoice_async")
    clock = FakeClock(SERVER_START)
    gov = await spent_governor(clock)  # the window we know: spent, 31 s to go
    headers = {
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": reset,
        "Date": formatdate(clock.time(), usegmt=True),
    }
    rate_limit = RateLimit.from_headers(headers)
    async with anyio.create_task_group() as tg:
        tg.start_soon(gov.acquire, KEY)  # waits for the reset, then probes
        await anyio.wait_all_tasks_blocked()
        await clock.advance(31.0)
        snap = await gov.snapshot(KEY)
        assert (snap.phase, snap.in_flight) == ("probing", 1)
    probe = Permit(KEY, 2)  # the waiter's ticket (the first probe was 1)
    await gov.settle(probe, status=429, rate_limit=rate_limit)
    snap = await gov.snapshot(KEY)  # never raises
    with pytest.raises(RateLimitError) as caught:
        await gov.acquire(KEY, max_wait=1.0)
    assert caught.value.reset_at is not None
    assert caught.value.reset_at.timestamp() >= clock.time()
    # Not poisoned: it reopens within a window.
    await clock.advance(WINDOW + 1.0)
    assert (await gov.snapshot(KEY)).remaining >= 1
    if rate_limit is not None:
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert "implausible quota headers ignored" in text


# -- forgetting idle buckets -------------------------------------------------------------------


def accounts(count: int) -> list[QuotaKey]:
    return [QuotaKey(QuotaGroup.VOICETRENDS.value, f"{i:016x}") for i in range(count)]


async def test_idle_buckets_are_dropped_lazily_and_busy_ones_kept():
    # Issue 11, case 7: a backend holding many accounts kept every bucket forever.
    clock = FakeClock(SERVER_START)
    gov = LocalGovernor(10, WINDOW, clock=clock)
    keys = accounts(200)
    for key in keys:
        permit = await gov.acquire(key)
        await gov.settle(permit, status=200, rate_limit=answer(clock, 9))
    busy = keys[0]
    held = await gov.acquire(busy)  # in flight: kept whatever the time
    assert len(gov._lanes) == 200
    for _ in range(200):  # windows still open: nothing is idle
        await gov.release(await gov.acquire(keys[1]))
    assert len(gov._lanes) == 200
    await clock.advance(WINDOW)  # every window is over
    hot = keys[1]
    for _ in range(200 // _SWEEP_STEP + 2):  # a full pass of the sweep, a few per acquire
        await gov.release(await gov.acquire(hot))
    assert set(gov._lanes) == {busy, hot}
    await gov.settle(held, status=200, rate_limit=answer(clock, 9))
    assert (await gov.snapshot(busy)).phase == "server"


async def test_a_dropped_bucket_is_learned_again_with_one_probe():
    clock = FakeClock(SERVER_START)
    gov = LocalGovernor(10, WINDOW, clock=clock)
    key, other = accounts(2)
    permit = await gov.acquire(key)
    await gov.settle(permit, status=200, rate_limit=answer(clock, 0))
    await clock.advance(WINDOW)
    for _ in range(4):
        await gov.release(await gov.acquire(other))
    assert key not in gov._lanes
    await gov.acquire(key)
    snap = await gov.snapshot(key)
    assert (snap.phase, snap.in_flight, snap.remaining) == ("probing", 1, 0)


async def test_a_waiter_is_refused_by_its_own_deadline_at_the_latest():
    # Issue 11, case 3: no waiter's own deadline was a wake-up, so a max_wait could be overrun
    # by a whole window while the forecast looked hopeful.
    clock = FakeClock(SERVER_START)
    gov = LocalGovernor(10, WINDOW, clock=clock)
    await gov.acquire(KEY)  # the probe: its answer never comes
    refused: list[float] = []

    async def hurried() -> None:
        with pytest.raises(RateLimitError) as caught:
            await gov.acquire(KEY, max_wait=5.0)
        assert caught.value.reset_at is not None
        assert caught.value.reset_at.timestamp() >= clock.time()
        refused.append(clock.monotonic())

    async with anyio.create_task_group() as tg:
        tg.start_soon(hurried)
        await anyio.wait_all_tasks_blocked()
        await clock.advance(4.9)
        assert refused == []
        await clock.advance(0.1)
        tg.cancel_scope.cancel()  # (a waiter still queued here is the bug)
    assert refused == [SERVER_START + 5.0]


# -- priorities and the reserve (issue 13) ------------------------------------------------------


async def test_interactive_waiters_are_served_before_bulk_ones_that_came_first(caplog):
    caplog.set_level(logging.DEBUG, logger="plumvoice_async")
    clock = FakeClock(SERVER_START)
    gov = await spent_governor(clock)
    order: list[str] = []

    async def waiter(name: str, priority: str) -> None:
        permit = await gov.acquire(KEY, priority=priority)
        order.append(name)
        await clock.sleep(0.1)
        await gov.settle(permit, status=200, rate_limit=answer(clock, 1))  # one at a time

    async with anyio.create_task_group() as tg:
        for name, priority in (
            ("bulk 1", "bulk"),
            ("bulk 2", "bulk"),
            ("dashboard", "interactive"),
        ):
            tg.start_soon(waiter, name, priority)
            await anyio.wait_all_tasks_blocked()
        snap = await gov.snapshot(KEY)
        assert (snap.waiting, snap.waiting_by_priority) == (3, {"interactive": 1, "bulk": 2})
        await clock.advance(35.0)
    assert order == ["dashboard", "bulk 1", "bulk 2"]
    assert "(interactive served)" in caplog.text
    assert "(bulk served)" in caplog.text


async def test_bulk_requests_leave_the_reserve_and_interactive_ones_pass_them():
    clock = FakeClock(SERVER_START)
    gov = LocalGovernor(10, WINDOW, clock=clock, reserve=3)
    probe = await gov.acquire(KEY, priority="bulk")  # the probe is for either priority
    await gov.settle(probe, status=200, rate_limit=answer(clock, 5))
    for _ in range(2):
        await gov.acquire(KEY, priority="bulk")
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: gov.acquire(KEY, priority="bulk"))
        await anyio.wait_all_tasks_blocked()
        snap = await gov.snapshot(KEY)
        assert (snap.remaining, snap.reserve) == (3, 3)
        assert snap.waiting_by_priority == {"interactive": 0, "bulk": 1}
        for _ in range(3):  # the fast path, past the bulk waiter
            await gov.acquire(KEY)
        snap = await gov.snapshot(KEY)
        assert (snap.remaining, snap.waiting) == (0, 1)
        tg.cancel_scope.cancel()


async def test_an_interactive_max_wait_counts_only_the_interactive_queue_ahead():
    """Ten bulk waiters fill the next window; a dashboard's max_wait=40 still fits in it."""
    clock = FakeClock(SERVER_START)
    gov = await spent_governor(clock)  # reset in 30 s + margin
    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(lambda: gov.acquire(KEY, priority="bulk"))
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(RateLimitError):  # a bulk one behind them waits two windows
            await gov.acquire(KEY, max_wait=40.0, priority="bulk")
        got: list[Permit] = []

        async def dashboard() -> None:
            got.append(await gov.acquire(KEY, max_wait=40.0))

        tg.start_soon(dashboard)
        await anyio.wait_all_tasks_blocked()
        await clock.advance(31.0)
        assert len(got) == 1
        tg.cancel_scope.cancel()


async def test_an_unknown_priority_is_refused_naming_it_before_anything_is_queued():
    clock = FakeClock(SERVER_START)
    gov = await spent_governor(clock)
    for priority in ("urgent", "Bulk", None, 1):
        with pytest.raises(InvalidParameterError) as caught:
            await gov.acquire(KEY, priority=priority)  # type: ignore[arg-type]
        assert caught.value.parameter == "priority"
    assert (await gov.snapshot(KEY)).waiting == 0
