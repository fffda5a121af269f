"""The in-process governor: a ``Bucket`` per quota key, and waiters asleep until handed a token.

The arithmetic lives in ``_core/bucket.py``; this shell only queues, sleeps and wakes. Waiting
costs nothing while nothing happens: a waiter sleeps on its own ``anyio.Event`` and is woken
only when the bucket hands it a token (after an answer, or at the window's end) or refuses it.
The one timer is the head of the queue: it alone sleeps until the bucket's next deadline, then
dispatches for everybody; when the head changes (served, cancelled, overtaken by a re-queued
429) the role passes to the new head. Bookkeeping on cancellation is synchronous (no await),
so it runs to completion even inside a cancelled scope.

Buckets that have gone idle (``Bucket.idle``: nothing in flight, nobody waiting, their window
over) are dropped, so a backend holding many accounts does not keep every bucket it ever made.
At most one pass over the buckets starts per (shortest) window, since buckets only go idle as
windows end, and it proceeds ``_SWEEP_STEP`` buckets per ``acquire``: O(1) per acquire, and
nothing at all between passes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import anyio

from ._clock import Clock, SystemClock
from ._core import arguments
from ._core.bucket import PRIORITIES, Bucket, Refusal, Sync
from ._core.ratelimit import RateLimit
from ._core.requests import QuotaGroup
from ._errors import RateLimitError
from ._governor import Permit, QuotaKey, Snapshot
from ._logging import logger

__all__ = ["DEFAULT_AUTH_QUOTA", "LocalGovernor"]

DEFAULT_AUTH_QUOTA = (15, 900.0)
"""VoiceTrends authentication: 15 attempts per 15 minutes (plum-api.md 1.3)."""

_GRANTED = object()

_SWEEP_STEP = 2
"""Buckets examined for idleness per ``acquire`` while a pass is under way."""

_LATEST = datetime.max.replace(tzinfo=UTC)


class _Waiter:
    """Strictly private: one task waiting in ``acquire``."""

    __slots__ = ("outcome", "priority", "scope", "since", "ticket", "wake")

    def __init__(self, ticket: int, since: float, priority: str) -> None:
        self.ticket = ticket
        self.since = since
        self.priority = priority
        self.wake = anyio.Event()
        self.scope: anyio.CancelScope | None = None
        self.outcome: object = None  # _GRANTED or a Refusal once decided

    @property
    def granted(self) -> bool:
        return self.outcome is _GRANTED

    def poke(self) -> None:
        """Make the waiter look at its state again (granted, refused, or the timer role)."""
        self.wake.set()
        if self.scope is not None:
            self.scope.cancel()


class _Lane:
    """Strictly private: a bucket, its waiters and who holds its timer."""

    __slots__ = ("bucket", "key", "no_date_logged", "timer_deadline", "timer_holder", "waiters")

    def __init__(self, key: QuotaKey, bucket: Bucket) -> None:
        self.key = key
        self.bucket = bucket
        self.waiters: dict[int, _Waiter] = {}
        self.timer_holder: int | None = None
        self.timer_deadline: float | None = None
        self.no_date_logged = False


class LocalGovernor:
    """Keeps every request of this process within the server's quota, without idling under it.

    One bucket per ``QuotaKey`` (quota group and hashed account): the VoiceTrends raw-data group
    and the Fuse group get ``limit`` per ``window`` until the server's headers say otherwise;
    VoiceTrends authentication gets 15 per 900 s. ``groups`` overrides any group's
    ``(limit, window)``. Each answer's ``X-RateLimit-*`` headers re-synchronise the bucket
    (``Reset`` read against the answer's own ``Date``, so clock skew does not matter); a 429
    closes it for every waiter until the reset; waiters are served first come, first served
    within a priority, every ``"interactive"`` waiter before any ``"bulk"`` one, and the last
    ``reserve`` tokens of each window of the data groups go to interactive requests only.

    One governor per event loop: it is not thread-safe and its waiters belong to one loop
    (asyncio or trio). Share it between clients of that loop; clients of different accounts get
    different buckets, clients of the same account share one.

    Args:
        limit: requests per window for the data groups (VoiceTrends reports, Fuse logs).
        window: the window's length in seconds (plum-api.md 1.3: 900).
        groups: per-group ``(limit, window)`` overrides, keyed by ``QuotaGroup`` value.
        margin: seconds added to every window end read from the server (covers clock
            differences between the servers behind one host); ``Date``'s 1 s resolution is
            already on the safe side.
        clock: the clock to read and sleep on (``SystemClock`` by default).
        reserve: tokens of every window that only ``"interactive"`` requests may take (0 to
            ``limit - 1``), in the data groups: a bulk export then never leaves a dashboard
            waiting for the next window. The authentication group (15 per window) has none.
    """

    __slots__ = (
        "_clock",
        "_lanes",
        "_lanes_peak",
        "_next_pass",
        "_quotas",
        "_reserved",
        "_sweep",
        "limit",
        "margin",
        "reserve",
        "window",
    )

    def __init__(
        self,
        limit: int = 150,
        window: float = 900.0,
        *,
        groups: Mapping[str, tuple[int, float]] | None = None,
        margin: float = 1.0,
        clock: Clock | None = None,
        reserve: int = 0,
    ) -> None:
        limit = arguments.count(limit, name="limit", minimum=1)
        reserve = arguments.reserve(reserve, name="reserve", limit=limit)
        window = arguments.positive_finite(window, name="window")
        margin = arguments.non_negative_finite(margin, name="margin")
        groups = None if groups is None else arguments.quota_groups(groups, name="groups")
        clock = arguments.clock(clock, name="clock")
        self.limit = limit
        self.window = float(window)
        self.margin = float(margin)
        self.reserve = reserve
        self._clock: Clock = clock if clock is not None else SystemClock()
        quotas: dict[str, tuple[int, float]] = {
            QuotaGroup.VOICETRENDS.value: (limit, self.window),
            QuotaGroup.FUSE.value: (limit, self.window),
            QuotaGroup.VOICETRENDS_AUTH.value: DEFAULT_AUTH_QUOTA,
        }
        quotas.update({str(group): quota for group, quota in (groups or {}).items()})
        reserved = {QuotaGroup.VOICETRENDS.value, QuotaGroup.FUSE.value}
        for group, (group_limit, group_window) in quotas.items():
            if group in reserved:
                arguments.reserve(reserve, name="reserve", limit=group_limit)
            Bucket(group_limit, group_window, margin=self.margin)  # validates, or raises
            quotas[group] = (group_limit, float(group_window))
        self._quotas = quotas
        self._reserved = frozenset(reserved)
        self._lanes: dict[QuotaKey, _Lane] = {}
        self._lanes_peak = 0  # the most lanes since the dict was last rebuilt
        self._sweep: Iterator[QuotaKey] | None = None  # the pass under way
        self._next_pass = -math.inf  # when the next pass may start (monotonic)

    # -- the four verbs -----------------------------------------------------------------------

    async def acquire(
        self,
        key: QuotaKey,
        *,
        max_wait: float | None = None,
        retry: bool = False,
        priority: str = "interactive",
    ) -> Permit:
        """Wait for a token, first come first served within ``priority``; interactive first.

        ``retry=True`` queues at the front of the priority's queue. A ``"bulk"`` request also
        leaves the window's last ``reserve`` tokens to interactive ones.

        Raises:
            InvalidParameterError: ``priority`` is not one of ``PRIORITIES`` (nothing queued).
            RateLimitError: at once, with no token taken, when the wait forecast for this
                request exceeds ``max_wait`` (also while waiting, as soon as an answer shows
                the forecast grew past it); ``reset_at`` says when its turn would have come.
        """
        priority = arguments.one_of(priority, name="priority", choices=PRIORITIES)
        clock = self._clock
        now, wall = clock.monotonic(), clock.time()
        self._drop_idle(now, wall)
        lane = self._lane(key)
        bucket = lane.bucket
        ticket = bucket.try_admit(now, wall, priority=priority)
        if ticket is not None:
            return Permit(key, ticket)
        ticket = bucket.enqueue(now, front=retry, max_wait=max_wait, priority=priority)
        waiter = lane.waiters[ticket] = _Waiter(ticket, now, priority)
        self._pump(lane)
        if waiter.outcome is None:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "quota %s: waiting %s (%s, %d waiting, %d in flight)",
                    key,
                    priority,
                    "re-queued after 429" if retry else "queued",
                    bucket.waiting - 1,
                    bucket.in_flight,
                )
            try:
                await self._wait(lane, waiter)
            except BaseException:
                # Cancelled in the queue: give back the place, or the token handed over
                # before this task could take it.
                lane.waiters.pop(ticket, None)
                if waiter.granted:
                    logger.debug("quota %s: token returned by a cancelled waiter", key)
                if bucket.release(ticket):
                    self._pump(lane)
                raise
        if isinstance(waiter.outcome, Refusal):
            raise self._refusal_error(key, waiter.outcome, max_wait)
        return Permit(key, ticket)

    async def settle(
        self,
        permit: Permit,
        *,
        status: int | None,
        rate_limit: RateLimit | None,
        retry_after: float | None = None,
    ) -> None:
        """Reconcile the bucket with the answer (``status=None``: sent, no answer). Never waits.

        ``retry_after`` (seconds from receipt) closes the bucket that long after a 429 without
        ``X-RateLimit-*`` headers. Implausible header values are ignored, logged at DEBUG.
        """
        lane = self._lanes.get(permit.key)
        if lane is None or not isinstance(permit.token, int):
            return
        clock = self._clock
        bucket = lane.bucket
        ignored = bucket.ignored_headers
        sync = bucket.settle(
            permit.token,
            clock.monotonic(),
            clock.time(),
            status=status,
            rate_limit=rate_limit,
            retry_after=retry_after,
        )
        if bucket.ignored_headers != ignored:
            logger.debug(
                "quota %s: status %s: implausible quota headers ignored (%r, retry_after=%r)",
                lane.key,
                status,
                rate_limit,
                retry_after,
            )
        if logger.isEnabledFor(logging.DEBUG):
            self._log_sync(lane, status, sync)
        if lane.waiters:
            self._pump(lane)

    async def release(self, permit: Permit) -> None:
        """Give back the token of a request that was never sent. Never waits."""
        lane = self._lanes.get(permit.key)
        if lane is None or not isinstance(permit.token, int):
            return
        if lane.bucket.release(permit.token) and lane.waiters:
            self._pump(lane)

    async def snapshot(self, key: QuotaKey) -> Snapshot:
        """The bucket's state: tokens grantable now, window end, in flight, waiting."""
        lane = self._lane(key)
        clock = self._clock
        view = lane.bucket.view(clock.monotonic(), clock.time())
        reset_at = None if view.window_end is None else self._wall(view.window_end)
        return Snapshot(
            limit=view.limit,
            remaining=view.grantable,
            reset_at=reset_at,
            in_flight=view.in_flight,
            waiting=view.waiting,
            phase=view.phase.value,
            reserve=view.reserve,
            waiting_by_priority=view.waiting_by_priority,
        )

    # -- waiting and waking -------------------------------------------------------------------

    async def _wait(self, lane: _Lane, waiter: _Waiter) -> None:
        """Sleep until granted or refused; the head of the queue also keeps the timer."""
        clock = self._clock
        while waiter.outcome is None:
            waiter.wake = anyio.Event()
            deadline = lane.timer_deadline if lane.timer_holder == waiter.ticket else None
            if deadline is None:
                await waiter.wake.wait()
                continue
            with anyio.CancelScope() as scope:
                waiter.scope = scope
                await clock.sleep(deadline - clock.monotonic())
            waiter.scope = None
            if not scope.cancelled_caught:
                self._pump(lane)

    def _pump(self, lane: _Lane) -> None:
        """Let the bucket hand out tokens, wake whom it chose, and place the one timer."""
        clock = self._clock
        now = clock.monotonic()
        bucket = lane.bucket
        dispatch = bucket.dispatch(now, clock.time())
        waiters = lane.waiters
        for ticket in dispatch.granted:
            waiter = waiters.pop(ticket)
            waiter.outcome = _GRANTED
            waiter.poke()
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "quota %s: token after %.3f s (%s served)",
                    lane.key,
                    now - waiter.since,
                    waiter.priority,
                )
        for refusal in dispatch.refused:
            waiter = waiters.pop(refusal.ticket)
            waiter.outcome = refusal
            waiter.poke()
        holder = bucket.head
        deadline = bucket.next_deadline() if holder is not None else None
        if deadline is None:
            holder = None
        if holder == lane.timer_holder and deadline == lane.timer_deadline:
            return
        previous = waiters.get(lane.timer_holder) if lane.timer_holder is not None else None
        lane.timer_holder, lane.timer_deadline = holder, deadline
        current = waiters.get(holder) if holder is not None else None
        if previous is not None:
            previous.poke()
        if current is not None and current is not previous:
            current.poke()

    # -- helpers ------------------------------------------------------------------------------

    def _lane(self, key: QuotaKey) -> _Lane:
        lanes = self._lanes
        lane = lanes.get(key)
        if lane is None:
            limit, window = self._quotas.get(key.group, (self.limit, self.window))
            reserve = self.reserve if key.group in self._reserved else 0
            bucket = Bucket(limit, window, margin=self.margin, reserve=reserve)
            lane = lanes[key] = _Lane(key, bucket)
            self._lanes_peak = max(self._lanes_peak, len(lanes))
        return lane

    def _drop_idle(self, now: float, wall: float) -> None:
        """Go on with the pass over the buckets (or start one, once per window): drop the idle."""
        lanes = self._lanes
        sweep = self._sweep
        if sweep is None:
            if now < self._next_pass:
                return
            self._next_pass = now + min(window for _, window in self._quotas.values())
            sweep = self._sweep = iter(list(lanes))
        for _ in range(_SWEEP_STEP):
            key = next(sweep, None)
            if key is None:
                self._sweep = None
                # A dict never shrinks by itself: rebuild it once most of its entries have
                # gone (O(n), at most once per pass of n / _SWEEP_STEP acquires).
                if len(lanes) < self._lanes_peak // 4:
                    self._lanes = dict(lanes)
                    self._lanes_peak = len(lanes)
                return
            lane = lanes.get(key)
            if lane is not None and not lane.waiters and lane.bucket.idle(now, wall):
                del lanes[key]

    def _wall(self, monotonic: float) -> datetime:
        """A local monotonic instant as a UTC datetime, by the local wall clock.

        Never raises: an instant beyond what ``datetime`` can hold reads as its latest.
        """
        clock = self._clock
        try:
            return datetime.fromtimestamp(clock.time() + (monotonic - clock.monotonic()), tz=UTC)
        except (OverflowError, OSError, ValueError):
            return _LATEST

    def _refusal_error(
        self, key: QuotaKey, refusal: Refusal, max_wait: float | None
    ) -> RateLimitError:
        wait = max(0.0, refusal.ready_at - self._clock.monotonic())
        logger.debug("quota %s: refused, the wait (%.1f s) exceeds max_wait", key, wait)
        return RateLimitError(
            f"quota {key} spent: the wait for a token ({wait:.1f} s) exceeds "
            f"max_wait ({max_wait} s)",
            reset_at=self._wall(refusal.ready_at),
        )

    def _log_sync(self, lane: _Lane, status: int | None, sync: Sync) -> None:
        bucket = lane.bucket
        if bucket.wall_clock_fallbacks and not lane.no_date_logged:
            lane.no_date_logged = True
            logger.debug("quota %s: no Date header; reading Reset on the local clock", lane.key)
        window_end = bucket.window_end
        if window_end is None:
            logger.debug("quota %s: status %s: %s", lane.key, status, sync.value)
            return
        logger.debug(
            "quota %s: status %s: %s (%s): remaining %s, resets in %.1f s",
            lane.key,
            status,
            "closed until the reset" if sync is Sync.CLOSED else "re-synced",
            sync.value,
            bucket.remaining,
            window_end - self._clock.monotonic(),
        )

    def __repr__(self) -> str:
        clock = self._clock
        now, wall = clock.monotonic(), clock.time()
        buckets = []
        for key, lane in self._lanes.items():
            view = lane.bucket.view(now, wall)
            resets = "?" if view.window_end is None else f"{view.window_end - now:.1f}s"
            buckets.append(
                f"{key}: {view.phase.value} {view.grantable}/{view.limit} per {view.window:g}s, "
                f"in_flight={view.in_flight}, waiting={view.waiting}, resets_in={resets}"
            )
        return (
            f"<LocalGovernor limit={self.limit} window={self.window:g}s margin={self.margin:g}s "
            f"buckets=[{'; '.join(buckets)}]>"
        )
