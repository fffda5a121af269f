"""The shared governor: one quota for every process and host, kept in Redis.

The bucket of ``_core/bucket.py`` lives in Redis, one hash per ``QuotaKey`` plus sorted sets
for leases, unreported spends and the waiting processes' turns, and its rules (the bucket's
transition table, phase for phase; tests/test_redis_differential.py holds them to it) run as
atomic Lua scripts (``lua/``, called by ``scripts``): one
round trip to admit, one to settle. The scripts read Redis ``TIME``, the one clock every host
shares; a settle turns the answer's ``Reset - Date`` (the server's clock only) into a window
end on that clock, ``redis_now + (Reset - Date) + margin``, so no host's clock matters.

Guarantees kept from the local bucket: admission subtracts every request in flight in any
process from the server's ``Remaining``; a window's remaining only falls; a 429 closes the
bucket until its own end for every process, whatever window it names; a window we do not know
starts with one probe, and a probe answered without headers keeps that slow start; the
lost and header-less requests count as spent until a later report includes them; waiters are
served first come, first served (re-queued 429s first) and woken only when handed a token: a
settle or release hands what it frees to this process's queue in its own round trip, as the
local governor's settle does, so no answer leaves quota idle while this process waits.

Differences from ``LocalGovernor``, on purpose:

- In-flight requests are leases scored by expiry (``lease`` seconds, 120 by default: longer
  than a request's timeout), so a process killed mid-request leaks its tokens for at most
  that long; an expired lease counts as spent, like the local bucket's lost tokens.
- Priorities (``"interactive"``, ``"bulk"``) and the ``reserve`` hold across processes: the
  scripts serve every process's interactive waiters before any process's bulk ones, a bulk
  grant leaves the window's last ``reserve`` tokens (one reserve per window for the account),
  and the turns below are kept per priority.
- FIFO holds within a process and a priority; across processes, turns: each process queues its
  own waiters
  and one of them, the pump, asks Redis for all (one round trip grants as many tokens as the
  queue wants and the bucket allows). A process left waiting marks its turn in Redis (since
  when, how many tokens it wants); any call serves the processes that have waited longer
  first, and one served in part goes to the back, so no process with waiters is passed over
  for more than one window while others are served at its priority. A process whose last
  waiter leaves takes
  its mark back; a dead one's lapses after ``2 * recheck``.
- Waiting processes do not poll: the pump sleeps until the scripts' next deadline (a window
  end, a lease expiry), until this process's settle or release hands tokens over, or until
  another process publishes on the bucket's channel (settles and releases do while another
  process is marked as waiting); it re-checks at most every ``recheck`` seconds (1 s), a
  safety net against a lost message.
- ``max_wait`` forecasts count this process's queue only (other processes' waiters are not
  visible), so a refusal is exact about windows but optimistic about other processes' demand;
  a waiter's deadline wakes the pump, so it is refused by then at the latest.
- ``Snapshot.waiting`` and ``waiting_by_priority`` count this process's waiters; ``in_flight``
  counts every process's.
- Redis ``TIME`` is the Redis host's wall clock, not a monotonic one: a step of that clock
  moves every window end with it (the margin absorbs NTP slewing, not a manual reset). Local
  windows (a server without headers) are aligned to the Redis epoch.
- It runs on asyncio only (redis-py's asyncio client), needs Redis >= 5 (scripts replicated
  by their effects, so ``TIME`` may precede writes), and holds connections and a listener task
  per bucket waited on: ``aclose()`` it.

The test seam: every wait goes through the injected ``clock``, and ``_time_from_clock=True``
makes the scripts read ``clock.time()`` instead of Redis ``TIME``, the way ``LocalGovernor``
reads its clock, so a ``FakeClock`` drives windows, leases and sleeps alike (the scenario table
of tests/governor_scenarios.py runs so). Never in production: hosts' clocks differ, and one
clock for all is what Redis ``TIME`` is for.

Redis unreachable (connect or socket timeout, ``socket_timeout`` seconds, 2 by default): an
``acquire`` raises ``GovernorUnavailableError`` and sends nothing, unless the governor was built
with ``fallback="local"``: then this process falls back to a ``LocalGovernor`` holding
``fallback_share`` of each limit and told only the top ``fallback_share`` of the server's
count (``_fallback_share_of``: the other processes may still be spending), logs a WARNING once
per outage and tries Redis again ``retry_after`` seconds later.
A settle or release that cannot reach Redis is logged at WARNING and dropped: the lease expires
and counts as spent, never as free.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from .._clock import Clock, SystemClock
from .._core import arguments
from .._core.bucket import NO_DATE_MARGIN, NO_HEADER_PROOF, PRIORITIES
from .._core.ratelimit import MAX_HEADER_COUNT, MAX_RESET_WINDOWS, RateLimit
from .._core.requests import QuotaGroup
from .._errors import GovernorUnavailableError, InvalidParameterError, RateLimitError
from .._governor import Permit, QuotaKey, Snapshot
from .._local_governor import DEFAULT_AUTH_QUOTA, LocalGovernor
from .._logging import logger
from .lane import Lane, Lease, Reply, Unavailable, Waiter, listen
from .scripts import Scripts, bucket_args, import_redis

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisGovernor"]

_RESERVED = (QuotaGroup.VOICETRENDS.value, QuotaGroup.FUSE.value)
"""The groups whose windows keep the reserve (as ``LocalGovernor``'s)."""


@attrs.frozen
class _Borrowed:
    """A token from the fallback ``LocalGovernor`` while Redis was unreachable."""

    permit: Permit


class RedisGovernor:
    """Keeps every request of every process and host sharing a Redis within the quota.

    Build it with ``from_url``; share it between the clients of one process, and point every
    process at the same Redis (and ``prefix``). Quotas, headers and 429s are handled as by
    ``LocalGovernor``; the module docstring says what differs and what happens when Redis is
    unreachable. Keys are ``{prefix}{group:account-hash}:...`` (no credential) and expire when
    idle (two windows plus the lease after the window or closure in force ends).

    Args:
        client: a ``redis.asyncio.Redis`` (set its socket timeouts: nothing may hang).
        limit: as for ``LocalGovernor``.
        window: as for ``LocalGovernor``.
        groups: as for ``LocalGovernor``.
        margin: as for ``LocalGovernor``.
        lease: seconds an unsettled token stays in flight before it counts as spent (a killed
            process leaks its tokens no longer than this); keep it above the request timeout.
        prefix: the namespace of every key and channel.
        fallback: ``None`` (raise ``GovernorUnavailableError`` when Redis is unreachable) or
            ``"local"`` (fall back to a per-process ``LocalGovernor``).
        fallback_share: the fraction of each limit the fallback may spend (at least 1).
        reserve: the last ``reserve`` grantable tokens of every window, for the whole account,
            go to ``"interactive"`` requests only (an int from 0 to ``limit - 1``).
        retry_after: seconds in fallback before trying Redis again.
        recheck: the longest a waiting process sleeps without asking Redis (a lost pub/sub
            message costs at most this).
        clock: the clock to sleep on and to turn window ends into ``datetime`` for
            ``reset_at`` (the scripts themselves use Redis ``TIME``).
        _time_from_clock: tests only (see the module docstring): the scripts read ``clock``.
    """

    def __init__(
        self,
        client: Redis,
        *,
        limit: int = 150,
        window: float = 900.0,
        groups: Mapping[str, tuple[int, float]] | None = None,
        margin: float = 1.0,
        lease: float = 120.0,
        prefix: str = "plumvoice:",
        fallback: str | None = None,
        fallback_share: float = 0.25,
        retry_after: float = 5.0,
        recheck: float = 1.0,
        reserve: int = 0,
        clock: Clock | None = None,
        _time_from_clock: bool = False,
    ) -> None:
        arguments.instance(client, name="client", kind=import_redis().asyncio.Redis)
        lease = arguments.positive_finite(lease, name="lease")
        prefix = arguments.text(prefix, name="prefix")
        fallback = arguments.one_of(fallback, name="fallback", choices=(None, "local"))
        fallback_share = arguments.fraction(fallback_share, name="fallback_share")
        retry_after = arguments.positive_finite(retry_after, name="retry_after")
        recheck = arguments.positive_finite(recheck, name="recheck")
        # Validates limit, window, margin, groups and reserve the way the local governor does.
        local = LocalGovernor(
            limit, window, groups=groups, margin=margin, reserve=reserve, clock=clock
        )
        self.limit, self.window, self.margin = local.limit, local.window, local.margin
        self.reserve = local.reserve
        self.lease, self.prefix, self.recheck = float(lease), prefix, float(recheck)
        self.fallback, self.fallback_share, self.retry_after = fallback, fallback_share, retry_after
        self._clock: Clock = clock if clock is not None else SystemClock()
        # Names this process in the waiting marks and wake messages: its own are not news.
        self._origin = secrets.token_hex(8)
        quotas: dict[str, tuple[int, float]] = {
            QuotaGroup.VOICETRENDS.value: (limit, self.window),
            QuotaGroup.FUSE.value: (limit, self.window),
            QuotaGroup.VOICETRENDS_AUTH.value: DEFAULT_AUTH_QUOTA,
        }
        quotas.update({str(group): (n, float(w)) for group, (n, w) in (groups or {}).items()})
        self._quotas = quotas
        self._redis = client
        self._owns_client = False
        self._scripts = Scripts(client, self._clock, time_from_clock=_time_from_clock)
        self._lanes: dict[QuotaKey, Lane] = {}
        self._fallback: LocalGovernor | None = None
        if fallback == "local":
            shared = {
                group: (max(1, math.floor(n * fallback_share)), w)
                for group, (n, w) in quotas.items()
            }
            cap = max(1, math.floor(limit * fallback_share))
            # The reserve's share, below every data group's share of its limit.
            smallest = min(shared[group][0] for group in _RESERVED)
            self._fallback = LocalGovernor(
                cap,
                self.window,
                groups=shared,
                margin=self.margin,
                reserve=max(0, min(math.floor(self.reserve * fallback_share), smallest - 1)),
                clock=self._clock,
            )
        self._down_until: float | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        limit: int = 150,
        window: float = 900.0,
        socket_timeout: float = 2.0,
        **options: Any,
    ) -> RedisGovernor:
        """A governor on the Redis at ``url`` (``redis://`` or ``rediss://``).

        ``socket_timeout`` bounds connecting and every command, so an unreachable Redis fails
        fast instead of hanging; ``options`` are the constructor's keyword arguments.

        Raises:
            InvalidParameterError: an argument is invalid (the URL is never echoed).
            ImportError: the ``redis`` extra is not installed.
        """
        url = arguments.secret_text(url, name="url")
        socket_timeout = arguments.positive_finite(socket_timeout, name="socket_timeout")
        redis = import_redis()
        try:
            client = redis.asyncio.Redis.from_url(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                decode_responses=True,
            )
        except ValueError:
            # Never echoed, nor redis-py's message about it: the URL may hold a password.
            reason = "not a redis://, rediss:// or unix:// URL with a valid host and port"
            raise InvalidParameterError("url", arguments.REDACTED, reason) from None
        governor = cls(client, limit=limit, window=window, **options)
        governor._owns_client = True
        return governor

    # -- the four verbs -----------------------------------------------------------------------

    async def acquire(
        self,
        key: QuotaKey,
        *,
        max_wait: float | None = None,
        retry: bool = False,
        priority: str = "interactive",
    ) -> Permit:
        """Wait for a token, first come first served in this process at ``priority``; every
        process's interactive waiters go before any bulk one.

        Raises:
            InvalidParameterError: ``priority`` is not ``"interactive"`` or ``"bulk"``.
            RateLimitError: at once when the forecast wait exceeds ``max_wait``.
            GovernorUnavailableError: Redis is unreachable and no fallback was chosen.
        """
        priority = arguments.one_of(priority, name="priority", choices=PRIORITIES)
        _require_asyncio()
        if self._in_fallback():
            return await self._borrow(key, max_wait=max_wait, retry=retry, priority=priority)
        lane = self._lane(key)
        now = self._clock.monotonic()
        # Queued before any round trip, so arrival order is queue order even while Redis
        # answers somebody else.
        waiter = Waiter(now, None if max_wait is None else now + max_wait, priority)
        lane.enqueue(waiter, retry=retry)
        if priority == "interactive" and lane.wanting(priority) == 1 and lane.pump is not None:
            # The pump sleeps for bulk waiters, maybe only on the reserve, which this one may
            # take: Redis is asked again now.
            lane.hear()
        if max_wait is not None and lane.pump is not None and lane.last is not None:
            # Refused at once on what Redis said last, not after the pump's next round trip;
            # else the pump wakes by its deadline to refuse it then at the latest.
            self._refuse_lost_causes(lane, lane.last.aged(now - lane.last_at))
            if waiter.outcome is None and waiter.deadline is not None:
                lane.wake_by(waiter.deadline)
                lane.stir()
        outcome = await self._queue(lane, waiter)
        if isinstance(outcome, Unavailable):
            return await self._unavailable(key, max_wait=max_wait, retry=retry, priority=priority)
        if isinstance(outcome, RateLimitError):
            raise outcome
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "quota %s: %s token after %.3f s", key, priority, self._clock.monotonic() - now
            )
        return Permit(key, outcome)

    async def settle(
        self,
        permit: Permit,
        *,
        status: int | None,
        rate_limit: RateLimit | None,
        retry_after: float | None = None,
    ) -> None:
        """Reconcile the shared bucket with the answer; hand what it frees to this process's
        queue (after the processes that waited longer). Never waits for quota.

        ``retry_after``: seconds a 429 without ``X-RateLimit-*`` headers asked to wait; the
        gate closes that long plus ``margin``, then one probe goes.
        """
        token = permit.token
        if isinstance(token, _Borrowed):
            assert self._fallback is not None
            await self._fallback.settle(
                token.permit,
                status=status,
                rate_limit=self._fallback_share_of(permit.key, rate_limit),
                retry_after=retry_after,
            )
            return
        if not isinstance(token, Lease):
            return
        extra = [
            token.number,
            "" if status is None else str(status),
            *_header_args(rate_limit),
            round(NO_DATE_MARGIN * 1000),
            "" if retry_after is None else repr(float(retry_after)),
            MAX_RESET_WINDOWS,
            MAX_HEADER_COUNT,
            NO_HEADER_PROOF,
        ]
        lane = self._lane(permit.key)
        try:
            reply = await self._run(lane, "settle", extra)
        except GovernorUnavailableError as exc:
            logger.warning(
                "quota %s: answer not recorded, its lease will expire: %s", permit.key, exc
            )
            return
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "quota %s: status %s: %s: remaining %d, %s",
                permit.key,
                status,
                reply.outcome,
                reply.remaining,
                reply.phase,
            )
        await self._apply(lane, reply)

    async def release(self, permit: Permit) -> None:
        """Give back the token of a request that was never sent (to this process's queue
        first)."""
        token = permit.token
        if isinstance(token, _Borrowed):
            assert self._fallback is not None
            await self._fallback.release(token.permit)
            return
        if not isinstance(token, Lease):
            return
        lane = self._lane(permit.key)
        try:
            reply = await self._run(lane, "release", [token.number])
        except GovernorUnavailableError as exc:
            logger.warning(
                "quota %s: token not returned, its lease will expire: %s", permit.key, exc
            )
            return
        await self._apply(lane, reply)

    async def snapshot(self, key: QuotaKey) -> Snapshot:
        """The shared bucket's state; ``waiting`` and ``waiting_by_priority`` count this
        process's waiters only."""
        _require_asyncio()
        if self._in_fallback():
            assert self._fallback is not None
            return await self._fallback.snapshot(key)
        lane = self._lane(key)
        reply = await self._run(lane, "view")
        reset_at = None
        if reply.window_end_in is not None and reply.phase != "probing":
            reset_at = datetime.fromtimestamp(self._clock.time() + reply.window_end_in, tz=UTC)
        return Snapshot(
            limit=reply.limit,
            remaining=reply.grantable,
            reset_at=reset_at,
            in_flight=reply.in_flight,
            waiting=lane.waiting,
            phase=reply.phase,
            reserve=min(lane.reserve, max(0, reply.limit - 1)),  # the reserve in force
            waiting_by_priority={p: lane.wanting(p) for p in PRIORITIES},
        )

    async def aclose(self) -> None:
        """Stop the pub/sub listeners, and close the Redis client if ``from_url`` made it."""
        for lane in self._lanes.values():
            await lane.stop_listening()
        if self._owns_client:
            await self._redis.aclose()

    # -- waiting ------------------------------------------------------------------------------

    async def _queue(self, lane: Lane, waiter: Waiter) -> Lease | RateLimitError | Unavailable:
        """Wait in this process's queue until decided; pump for everyone while nobody else
        does."""
        try:
            while waiter.outcome is None:
                if lane.pump is None:
                    await self._pump(lane, waiter)
                else:
                    await waiter.sleep()
        except BaseException:
            lane.remove(waiter)
            with anyio.CancelScope(shield=True):
                if isinstance(waiter.outcome, Lease):  # handed over, not taken: give it back
                    await self.release(Permit(lane.key, waiter.outcome))
                elif lane.marked and not lane.waiting:
                    await self._unmark(lane)
            raise
        return waiter.outcome

    async def _pump(self, lane: Lane, me: Waiter) -> None:
        """Ask Redis for tokens for this process's queue until ``me`` is decided.

        One task pumps per lane; when it leaves (served, refused, cancelled), the next waiter
        takes over, with the plan, so the role never lapses while anyone waits and a successor
        sleeps on a plan that still holds without a round trip.
        """
        lane.pump = me
        clock = self._clock
        due = False  # the plan's instant came: ask, whatever the float arithmetic says
        try:
            while me.outcome is None:
                if due or lane.news or lane.wake_at is None or clock.monotonic() >= lane.wake_at:
                    lane.wake_at, lane.news, due = None, False, False
                    try:
                        reply = await self._run(lane, "admit")
                    except GovernorUnavailableError:
                        for waiter in lane.queue():
                            lane.decide(waiter, Unavailable())
                        return
                    await self._apply(lane, reply)
                else:
                    due = await self._nap(lane)
        finally:
            lane.pump = None
            lane.remove(me)  # if cancelled; either way the role passes to the next waiter

    async def _nap(self, lane: Lane) -> bool:
        """Sleep on the clock until the plan's instant (``True``) or until stirred."""
        if lane.listener is None or lane.listener.done():
            lane.listener = asyncio.get_running_loop().create_task(
                listen(lane, self._redis, self._origin)
            )
        assert lane.wake_at is not None
        with anyio.CancelScope() as scope:
            lane.nap = scope
            try:
                await self._clock.sleep(lane.wake_at - self._clock.monotonic())
            finally:
                lane.nap = None
        return not scope.cancelled_caught

    async def _apply(self, lane: Lane, reply: Reply) -> None:
        """Hand a reply's tokens to the head of the queue, refuse lost causes, stir the pump."""
        surplus = lane.hand_out(reply)
        self._refuse_lost_causes(lane, reply)
        head = lane.head()
        if head is not None and reply.grantable_to(head.priority, lane.reserve) > 0:
            lane.news = True  # more waiters came than were asked for
        lane.stir()  # to look at the new plan
        if lane.marked and not lane.waiting:  # refused, or served by another answer
            await self._unmark(lane)
        if surplus:
            with anyio.CancelScope(shield=True):
                for number in surplus:
                    await self.release(Permit(lane.key, Lease(number)))

    def _refuse_lost_causes(self, lane: Lane, reply: Reply) -> None:
        window = self._quota(lane.key)[1]
        lane.refuse_lost_causes(reply, window, lane.reserve, self._clock.monotonic(), self._refusal)

    # -- Redis and its absence ----------------------------------------------------------------

    async def _run(self, lane: Lane, verb: str, extra: list[Any] | None = None) -> Reply:
        want = lane.waiting
        reply = await self._scripts.run(lane, verb, extra)
        if verb != "view":
            lane.marked = len(reply.granted) + len(reply.granted_bulk) < want
        lane.learn(reply, self._clock.monotonic(), self.recheck)
        return reply

    async def _unmark(self, lane: Lane) -> None:
        """Take back this process's turn among the waiting processes: its last waiter left, and
        the turn would hold tokens back from the others for nobody until it lapsed."""
        try:
            reply = await self._run(lane, "release", [""])
        except GovernorUnavailableError:
            return  # the mark lapses on its own, ``2 * recheck`` after it was set
        await self._apply(lane, reply)

    def _in_fallback(self) -> bool:
        if self._down_until is None:
            return False
        if self._clock.monotonic() < self._down_until:
            return True
        self._down_until = None  # try Redis again
        return False

    async def _unavailable(
        self, key: QuotaKey, *, max_wait: float | None, retry: bool, priority: str
    ) -> Permit:
        if self._fallback is None:
            raise GovernorUnavailableError(
                f"quota {key}: the quota store (Redis) is unreachable; no request was sent"
            )
        if self._down_until is None:
            logger.warning(
                "quota store (Redis) unreachable: falling back to a local governor with %g of "
                "each limit for %g s",
                self.fallback_share,
                self.retry_after,
            )
        self._down_until = self._clock.monotonic() + self.retry_after
        return await self._borrow(key, max_wait=max_wait, retry=retry, priority=priority)

    async def _borrow(
        self, key: QuotaKey, *, max_wait: float | None, retry: bool, priority: str
    ) -> Permit:
        assert self._fallback is not None
        permit = await self._fallback.acquire(
            key, max_wait=max_wait, retry=retry, priority=priority
        )
        return Permit(key, _Borrowed(permit))

    # -- helpers ------------------------------------------------------------------------------

    def _fallback_share_of(self, key: QuotaKey, rate_limit: RateLimit | None) -> RateLimit | None:
        """What the fallback bucket is told of an answer: the top ``fallback_share`` of it.

        The fallback ``LocalGovernor`` would otherwise adopt the server's ``Limit`` and
        ``Remaining`` and spend the whole window alone (issue 11: 15 admitted where 5 were
        promised). It is told ``Limit = cap`` (``fallback_share`` of the configured limit) and
        ``Remaining`` less the ``Limit - cap`` tokens left to everybody else: the server's own
        count is the one thing every process still shares, so each process in fallback admits
        at most ``cap`` per window (its own spends lower the ``Remaining`` it is told one for
        one), all of them together at most ``cap`` (they read the same count), and none ever
        more than the server has left: no 429 from our own traffic, however many processes
        lose Redis at once. Conservative on purpose: without Redis nobody can tell how many
        processes share the window. Implausible values go through unchanged: the bucket
        ignores them (rule 4 of the spec), and scaling must not make them plausible.
        """
        if rate_limit is None or not (
            0 < rate_limit.limit <= MAX_HEADER_COUNT
            and 0 <= rate_limit.remaining <= MAX_HEADER_COUNT
        ):
            return rate_limit
        cap = max(1, math.floor(self._quota(key)[0] * self.fallback_share))
        others = max(0, rate_limit.limit - cap)
        return attrs.evolve(
            rate_limit,
            limit=min(rate_limit.limit, cap),
            remaining=max(0, rate_limit.remaining - others),
        )

    def _quota(self, key: QuotaKey) -> tuple[int, float]:
        return self._quotas.get(key.group, (self.limit, self.window))

    def _lane(self, key: QuotaKey) -> Lane:
        lane = self._lanes.get(key)
        if lane is None:
            limit, window = self._quota(key)
            lane = self._lanes[key] = Lane(key, self.prefix)
            # Only the data groups keep a reserve, as in LocalGovernor: bulk clients must
            # still be able to sign in.
            lane.reserve = self.reserve if key.group in _RESERVED else 0
            lane.args = bucket_args(
                limit=limit,
                window=window,
                margin=self.margin,
                lease=self.lease,
                recheck=self.recheck,
                channel=lane.channel,
                origin=self._origin,
                reserve=lane.reserve,
            )
        return lane

    def _refusal(self, key: QuotaKey, wait: float, max_wait: float) -> RateLimitError:
        logger.debug("quota %s: refused, the wait (%.1f s) exceeds max_wait", key, wait)
        return RateLimitError(
            f"quota {key} spent: the wait for a token ({wait:.1f} s) exceeds "
            f"max_wait ({max_wait} s)",
            reset_at=datetime.fromtimestamp(self._clock.time() + wait, tz=UTC),
        )

    def __repr__(self) -> str:
        waiting = sum(lane.waiting for lane in self._lanes.values())
        return (
            f"<RedisGovernor prefix={self.prefix!r} limit={self.limit} window={self.window:g}s "
            f"margin={self.margin:g}s lease={self.lease:g}s reserve={self.reserve} "
            f"fallback={self.fallback!r} "
            f"buckets={len(self._lanes)} waiting={waiting}>"
        )


def _header_args(rate_limit: RateLimit | None) -> list[str]:
    """``ARGV[13..17]`` of ``settle.lua``: whether there were headers, then their values as
    text (the script treats implausible ones as absent, as the bucket does)."""
    if rate_limit is None:
        return ["0", "0", "0", "0", ""]
    date = "" if rate_limit.server_date is None else repr(float(rate_limit.server_date))
    return [
        "1",
        str(rate_limit.limit),
        str(rate_limit.remaining),
        repr(float(rate_limit.reset)),
        date,
    ]


def _require_asyncio() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "RedisGovernor runs on asyncio only (redis-py's asyncio client)"
        ) from None
