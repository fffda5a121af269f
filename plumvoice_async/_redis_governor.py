"""The shared governor: one quota for every process and host, kept in Redis.

The bucket of ``_core/bucket.py`` lives in Redis, one hash per ``QuotaKey`` plus two sorted
sets, and its rules run as Lua scripts (``_lua/``: admit, settle, release, view), each one
atomic, loaded once and called by SHA (redis-py's ``Script`` reloads it after ``NOSCRIPT``):
one round trip to admit, one to settle. The scripts read Redis ``TIME``, the one clock every
host shares; a settle turns the answer's ``Reset - Date`` (the server's clock only) into a
window end on that clock, ``redis_now + (Reset - Date) + margin``, so no host's clock matters.

Guarantees kept from the local bucket: admission subtracts every request in flight in any
process from the server's ``Remaining``; a window's remaining only falls; a 429 closes the
bucket until its reset for every process; a window we do not know starts with one probe; the
lost and header-less requests count as spent until a later report includes them.

Differences from ``LocalGovernor``, on purpose:

- In-flight requests are leases scored by expiry (``lease`` seconds, 120 by default: longer
  than a request's timeout), so a process killed mid-request leaks its tokens for at most
  that long; an expired lease counts as spent, like the local bucket's lost tokens.
- FIFO holds within a process, not across processes: each process queues its own waiters and
  only its head asks Redis, one admission per round trip. A 429's re-queued request goes first
  in its own process.
- Waiting processes do not poll: the head sleeps until the script's next deadline (the window
  end, a lease expiry) or a pub/sub message published by a settle or release while some
  process is marked as waiting, and re-checks at most once per ``recheck`` seconds (1 s) as a
  safety net against a lost message.
- ``max_wait`` forecasts count this process's queue only (other processes' waiters are not
  visible), so a refusal is exact about windows but optimistic about other processes' demand.
- ``Snapshot.waiting`` counts this process's waiters; ``in_flight`` counts every process's.
- Redis ``TIME`` is the Redis host's wall clock, not a monotonic one: a step of that clock
  moves every window end with it (the margin absorbs NTP slewing, not a manual reset).
- Local windows (a server without headers) are aligned to the Redis epoch.
- It runs on asyncio only (redis-py's asyncio client), needs Redis >= 5 (scripts replicated
  by their effects, so ``TIME`` may precede writes), and holds connections: ``aclose()`` it.

Redis unreachable (connect or socket timeout, ``socket_timeout`` seconds, 2 by default): an
``acquire`` raises ``GovernorUnavailableError`` and sends nothing, unless the governor was built
with ``fallback="local"``: then this process falls back to a ``LocalGovernor`` holding
``fallback_share`` of each limit (a conservative share: the other processes may still be
spending), logs a WARNING once per outage and tries Redis again ``retry_after`` seconds later.
A settle or release that cannot reach Redis is logged at WARNING and dropped: the lease expires
and counts as spent, never as free.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from ._clock import Clock, SystemClock
from ._core.bucket import NO_DATE_MARGIN
from ._core.ratelimit import RateLimit
from ._core.requests import QuotaGroup
from ._errors import GovernorUnavailableError, RateLimitError
from ._governor import Permit, QuotaKey, Snapshot
from ._local_governor import DEFAULT_AUTH_QUOTA, LocalGovernor
from ._logging import logger

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisGovernor"]

_VERBS = ("admit", "settle", "release", "view")


def _import_redis() -> Any:
    try:
        import redis.asyncio
    except ImportError as exc:
        raise ImportError(
            "RedisGovernor needs the redis client: pip install 'plumvoice-async[redis]'"
        ) from exc
    return redis


def _script_text(verb: str) -> str:
    folder = importlib.resources.files("plumvoice_async") / "_lua"
    return (folder / "bucket.lua").read_text() + "\n" + (folder / f"{verb}.lua").read_text()


@attrs.frozen
class _Reply:
    """What a script said: the head value, the outcome, and the bucket's state after it."""

    head: int
    outcome: str
    phase: str
    limit: int
    remaining: int
    window_end_in: float | None
    """Seconds from now until the window ends (``None``: unknown, probing)."""
    in_flight: int
    unreported: int
    grantable: int
    deadline_in: float | None
    """Seconds from now until time alone changes the bucket (``None``: nothing due)."""

    @classmethod
    def parse(cls, raw: list[Any]) -> _Reply:
        def seconds(ms: Any) -> float | None:
            return None if int(ms) < 0 else int(ms) / 1000

        return cls(
            int(raw[0]),
            str(raw[1]),
            str(raw[2]),
            int(raw[3]),
            int(raw[4]),
            seconds(raw[5]),
            int(raw[6]),
            int(raw[7]),
            int(raw[8]),
            seconds(raw[9]),
        )

    def forecast(self, position: int, window: float) -> float:
        """Seconds until this process's waiter at ``position`` can expect a token.

        The local bucket's ``forecast``: optimistic within the window, exact about windows.
        """
        limit = max(1, self.limit)
        if self.phase == "probing":
            ahead = position - max(0, limit - self.in_flight - self.unreported)
            return 0.0 if ahead < 0 else (ahead // limit) * window
        reclaimable = self.remaining
        if self.phase != "server":
            reclaimable = max(0, self.remaining - self.in_flight - self.unreported)
        ahead = position - reclaimable
        if ahead < 0:
            return 0.0
        return (self.window_end_in or 0.0) + (ahead // limit) * window


@attrs.frozen
class _Lease:
    """A token held in Redis: the admission number the leases set knows it by."""

    number: int


@attrs.frozen
class _Borrowed:
    """A token from the fallback ``LocalGovernor`` while Redis was unreachable."""

    permit: Permit


class _Unavailable(Exception):
    """Strictly private: the outcome of a waiter whose lane lost Redis."""


class _Waiter:
    """Strictly private: one task waiting in ``acquire``."""

    __slots__ = ("deadline", "outcome", "since", "wake")

    def __init__(self, since: float, deadline: float | None) -> None:
        self.since = since
        self.deadline = deadline
        self.wake = anyio.Event()
        self.outcome: _Lease | RateLimitError | _Unavailable | None = None

    def decide(self, outcome: _Lease | RateLimitError | _Unavailable) -> None:
        self.outcome = outcome
        self.wake.set()


class _Lane:
    """Strictly private: one key's Redis names, this process's queue and its pumping head."""

    __slots__ = (
        "args",
        "channel",
        "key",
        "keys",
        "last",
        "last_at",
        "pubsub",
        "pumping",
        "retries",
        "waiters",
    )

    def __init__(self, key: QuotaKey, prefix: str, args: list[Any]) -> None:
        base = f"{prefix}{{{key.group}:{key.account}}}"  # one hash slot per bucket (cluster)
        self.key = key
        self.keys = [f"{base}:state", f"{base}:leases", f"{base}:unreported", f"{base}:waiting"]
        self.channel = f"{base}:wake"
        self.args = [*args[:5], self.channel, *args[5:]]
        # Re-queued 429s ahead of first attempts; dicts keep arrival order (FIFO).
        self.retries: dict[_Waiter, None] = {}
        self.waiters: dict[_Waiter, None] = {}
        self.pumping = False
        self.pubsub: Any = None
        # The latest reply and when it came (monotonic), for refusing a max_wait at once.
        self.last: _Reply | None = None
        self.last_at = 0.0

    def queue(self) -> list[_Waiter]:
        return [*self.retries, *self.waiters]

    def remove(self, waiter: _Waiter) -> None:
        self.retries.pop(waiter, None)
        self.waiters.pop(waiter, None)


class RedisGovernor:
    """Keeps every request of every process and host sharing a Redis within the quota.

    Build it with ``from_url``; share it between the clients of one process, and point every
    process at the same Redis (and ``prefix``). Quotas, headers and 429s are handled as by
    ``LocalGovernor``; the module docstring says what differs and what happens when Redis is
    unreachable. Keys are ``{prefix}{group:account-hash}:...`` (no credential) and expire when
    idle (two windows plus the lease).

    Args:
        client: a ``redis.asyncio.Redis`` (set its socket timeouts: nothing may hang).
        limit, window, groups, margin: as for ``LocalGovernor``.
        lease: seconds an unsettled token stays in flight before it counts as spent (a killed
            process leaks its tokens no longer than this); keep it above the request timeout.
        prefix: the namespace of every key and channel.
        fallback: ``None`` (raise ``GovernorUnavailableError`` when Redis is unreachable) or
            ``"local"`` (fall back to a per-process ``LocalGovernor``).
        fallback_share: the fraction of each limit the fallback may spend (at least 1).
        retry_after: seconds in fallback before trying Redis again.
        recheck: the longest a waiting process sleeps without asking Redis (a lost pub/sub
            message costs at most this).
        clock: the clock to sleep on and to turn window ends into ``datetime`` for
            ``reset_at`` (the scripts themselves use Redis ``TIME``).
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
        clock: Clock | None = None,
    ) -> None:
        if fallback not in (None, "local"):
            raise ValueError(f"fallback must be None or 'local', got {fallback!r}")
        if not 0 < fallback_share <= 1:
            raise ValueError(f"fallback_share must be in (0, 1], got {fallback_share!r}")
        for name, value in (("lease", lease), ("retry_after", retry_after), ("recheck", recheck)):
            if value <= 0:
                raise ValueError(f"{name} must be positive seconds, got {value!r}")
        # Validates limit, window, margin and groups the way the local governor does.
        local = LocalGovernor(limit, window, groups=groups, margin=margin, clock=clock)
        self.limit, self.window, self.margin = local.limit, local.window, local.margin
        self.lease, self.prefix, self.recheck = float(lease), prefix, float(recheck)
        self.fallback, self.fallback_share, self.retry_after = fallback, fallback_share, retry_after
        self._clock: Clock = clock if clock is not None else SystemClock()
        quotas: dict[str, tuple[int, float]] = {
            QuotaGroup.VOICETRENDS.value: (limit, self.window),
            QuotaGroup.FUSE.value: (limit, self.window),
            QuotaGroup.VOICETRENDS_AUTH.value: DEFAULT_AUTH_QUOTA,
        }
        quotas.update({str(group): (n, float(w)) for group, (n, w) in (groups or {}).items()})
        self._quotas = quotas
        self._redis = client
        self._owns_client = False
        self._scripts = {verb: client.register_script(_script_text(verb)) for verb in _VERBS}
        self._lanes: dict[QuotaKey, _Lane] = {}
        self._fallback: LocalGovernor | None = None
        if fallback == "local":
            shared = {
                group: (max(1, math.floor(n * fallback_share)), w)
                for group, (n, w) in quotas.items()
            }
            self._fallback = LocalGovernor(
                max(1, math.floor(limit * fallback_share)),
                self.window,
                groups=shared,
                margin=self.margin,
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
            ImportError: the ``redis`` extra is not installed.
        """
        redis = _import_redis()
        client = redis.asyncio.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            decode_responses=True,
        )
        governor = cls(client, limit=limit, window=window, **options)
        governor._owns_client = True
        return governor

    # -- the four verbs -----------------------------------------------------------------------

    async def acquire(
        self, key: QuotaKey, *, max_wait: float | None = None, retry: bool = False
    ) -> Permit:
        """Wait for a token, first come first served in this process.

        Raises:
            RateLimitError: at once when the forecast wait exceeds ``max_wait``.
            GovernorUnavailableError: Redis is unreachable and no fallback was chosen.
        """
        _require_asyncio()
        if self._in_fallback():
            return await self._borrow(key, max_wait=max_wait, retry=retry)
        lane = self._lane(key)
        now = self._clock.monotonic()
        if not lane.queue():
            try:
                lease = await self._admit_at_once(lane, max_wait)
            except GovernorUnavailableError:
                return await self._unavailable(key, max_wait=max_wait, retry=retry)
            if lease is not None:
                return Permit(key, lease)
        waiter = _Waiter(now, None if max_wait is None else now + max_wait)
        (lane.retries if retry else lane.waiters)[waiter] = None
        if max_wait is not None and lane.last is not None:
            # Refused at once on what Redis said last, not after the head's next round trip.
            aged = attrs.evolve(lane.last, window_end_in=_aged(lane.last, now - lane.last_at))
            self._refuse_lost_causes(lane, aged, self._quota(key)[1])
        outcome = await self._queue(lane, waiter)
        if isinstance(outcome, _Unavailable):
            return await self._unavailable(key, max_wait=max_wait, retry=retry)
        if isinstance(outcome, RateLimitError):
            raise outcome
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("quota %s: token after %.3f s", key, self._clock.monotonic() - now)
        return Permit(key, outcome)

    async def _queue(self, lane: _Lane, waiter: _Waiter) -> _Lease | RateLimitError | _Unavailable:
        """Wait in this process's queue until decided; pump for everyone while first."""
        try:
            while waiter.outcome is None:
                if not lane.pumping:
                    await self._pump(lane, waiter)
                else:
                    waiter.wake = anyio.Event()
                    await waiter.wake.wait()
        except BaseException:
            lane.remove(waiter)
            if isinstance(waiter.outcome, _Lease):  # handed over, not taken: give it back
                with anyio.CancelScope(shield=True):
                    await self.release(Permit(lane.key, waiter.outcome))
            raise
        return waiter.outcome

    async def _admit_at_once(self, lane: _Lane, max_wait: float | None) -> _Lease | None:
        """The fast path, nobody waiting here: a token now, or ``None`` (or a refusal)."""
        with anyio.CancelScope(shield=True):  # a granted token must not be lost
            reply = await self._run(lane, "admit")
        if reply.head >= 0:
            return _Lease(reply.head)
        wait = reply.forecast(0, self._quota(lane.key)[1])
        if max_wait is not None and wait > max_wait:
            raise self._refusal(lane.key, wait, max_wait)
        return None

    async def settle(
        self, permit: Permit, *, status: int | None, rate_limit: RateLimit | None
    ) -> None:
        """Reconcile the shared bucket with the answer. Never waits for quota."""
        token = permit.token
        if isinstance(token, _Borrowed):
            assert self._fallback is not None
            await self._fallback.settle(token.permit, status=status, rate_limit=rate_limit)
            return
        if not isinstance(token, _Lease):
            return
        headers = ["0", "0", "0", "0", ""]
        if rate_limit is not None:
            date = "" if rate_limit.server_date is None else repr(rate_limit.server_date)
            headers = [
                "1",
                str(rate_limit.limit),
                str(rate_limit.remaining),
                repr(rate_limit.reset),
                date,
            ]
        extra = [token.number, "" if status is None else str(status), *headers]
        extra.append(round(NO_DATE_MARGIN * 1000))
        try:
            reply = await self._run(self._lane(permit.key), "settle", extra)
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

    async def release(self, permit: Permit) -> None:
        """Give back the token of a request that was never sent."""
        token = permit.token
        if isinstance(token, _Borrowed):
            assert self._fallback is not None
            await self._fallback.release(token.permit)
            return
        if not isinstance(token, _Lease):
            return
        try:
            await self._run(self._lane(permit.key), "release", [token.number])
        except GovernorUnavailableError as exc:
            logger.warning(
                "quota %s: token not returned, its lease will expire: %s", permit.key, exc
            )

    async def snapshot(self, key: QuotaKey) -> Snapshot:
        """The shared bucket's state; ``waiting`` counts this process's waiters only."""
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
            waiting=len(lane.retries) + len(lane.waiters),
            phase=reply.phase,
        )

    async def aclose(self) -> None:
        """Close the pub/sub connections, and the Redis client if ``from_url`` made it."""
        for lane in self._lanes.values():
            await _close_pubsub(lane)
        if self._owns_client:
            await self._redis.aclose()

    # -- waiting ------------------------------------------------------------------------------

    async def _pump(self, lane: _Lane, me: _Waiter) -> None:
        """Ask Redis for tokens for the head of this process's queue until ``me`` is decided.

        One task pumps per lane; when it leaves (served, refused, cancelled), the next waiter
        takes over, so the role never lapses while anyone waits.
        """
        lane.pumping = True
        window = self._quota(lane.key)[1]
        try:
            while me.outcome is None:
                try:
                    with anyio.CancelScope(shield=True):  # a granted token must not be lost
                        reply = await self._run(lane, "admit")
                except GovernorUnavailableError:
                    for waiter in lane.queue():
                        lane.remove(waiter)
                        waiter.decide(_Unavailable())
                    return
                queue = lane.queue()
                if reply.head >= 0:
                    if queue:
                        lane.remove(queue[0])
                        queue[0].decide(_Lease(reply.head))
                    else:  # everybody left while Redis answered
                        await self.release(Permit(lane.key, _Lease(reply.head)))
                    continue
                if me in self._refuse_lost_causes(lane, reply, window):
                    return
                wait = self.recheck
                if reply.deadline_in is not None:
                    wait = min(wait, reply.deadline_in + 0.001)
                await self._wait_for_news(lane, wait)
        finally:
            lane.pumping = False
            for waiter in lane.queue():
                if waiter is not me:  # the next in line takes over
                    waiter.wake.set()
                    break

    def _refuse_lost_causes(self, lane: _Lane, reply: _Reply, window: float) -> list[_Waiter]:
        """Refuse the waiters whose ``max_wait`` ends before their forecast turn."""
        now = self._clock.monotonic()
        position = 0
        refused = []
        for waiter in lane.queue():
            if waiter.deadline is not None:
                wait = reply.forecast(position, window)
                if now + wait > waiter.deadline:
                    lane.remove(waiter)
                    waiter.decide(self._refusal(lane.key, wait, waiter.deadline - waiter.since))
                    refused.append(waiter)
                    continue
            position += 1
        return refused

    async def _wait_for_news(self, lane: _Lane, seconds: float) -> None:
        """Sleep until a settle or release anywhere publishes, or ``seconds`` pass."""
        try:
            if lane.pubsub is None:
                lane.pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                await lane.pubsub.subscribe(lane.channel)
                # A message published before the subscription took effect is lost: ask again
                # now rather than after ``recheck``.
                return
            await lane.pubsub.get_message(timeout=seconds)
        except anyio.get_cancelled_exc_class():
            # A read cut short leaves the connection mid-reply: start afresh next time.
            with anyio.CancelScope(shield=True):
                await _close_pubsub(lane)
            raise
        except Exception as exc:
            logger.debug(
                "quota %s: pub/sub unavailable (%s); re-checking on a timer", lane.key, exc
            )
            with anyio.CancelScope(shield=True):
                await _close_pubsub(lane)
            await self._clock.sleep(seconds)

    # -- Redis and its absence ----------------------------------------------------------------

    async def _run(self, lane: _Lane, verb: str, extra: list[Any] | None = None) -> _Reply:
        redis = _import_redis()
        try:
            raw = await self._scripts[verb](keys=lane.keys, args=[*lane.args, *(extra or [])])
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            raise GovernorUnavailableError(
                f"the quota store (Redis) is unreachable: {type(exc).__name__}"
            ) from exc
        lane.last = reply = _Reply.parse(raw)
        lane.last_at = self._clock.monotonic()
        return reply

    def _in_fallback(self) -> bool:
        if self._down_until is None:
            return False
        if self._clock.monotonic() < self._down_until:
            return True
        self._down_until = None  # try Redis again
        return False

    async def _unavailable(self, key: QuotaKey, *, max_wait: float | None, retry: bool) -> Permit:
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
        return await self._borrow(key, max_wait=max_wait, retry=retry)

    async def _borrow(self, key: QuotaKey, *, max_wait: float | None, retry: bool) -> Permit:
        assert self._fallback is not None
        permit = await self._fallback.acquire(key, max_wait=max_wait, retry=retry)
        return Permit(key, _Borrowed(permit))

    # -- helpers ------------------------------------------------------------------------------

    def _quota(self, key: QuotaKey) -> tuple[int, float]:
        return self._quotas.get(key.group, (self.limit, self.window))

    def _lane(self, key: QuotaKey) -> _Lane:
        lane = self._lanes.get(key)
        if lane is None:
            limit, window = self._quota(key)
            ttl = 2 * window + self.lease
            args = [
                limit,
                round(window * 1000),
                round(self.margin * 1000),
                round(self.lease * 1000),
                math.ceil(ttl * 1000),
                math.ceil(2 * self.recheck * 1000),  # the waiting marker outlives one re-check
            ]
            lane = self._lanes[key] = _Lane(key, self.prefix, args)
        return lane

    def _refusal(self, key: QuotaKey, wait: float, max_wait: float | None) -> RateLimitError:
        logger.debug("quota %s: refused, the wait (%.1f s) exceeds max_wait", key, wait)
        return RateLimitError(
            f"quota {key} spent: the wait for a token ({wait:.1f} s) exceeds "
            f"max_wait ({max_wait} s)",
            reset_at=datetime.fromtimestamp(self._clock.time() + wait, tz=UTC),
        )

    def __repr__(self) -> str:
        waiting = sum(len(lane.retries) + len(lane.waiters) for lane in self._lanes.values())
        return (
            f"<RedisGovernor prefix={self.prefix!r} limit={self.limit} window={self.window:g}s "
            f"margin={self.margin:g}s lease={self.lease:g}s fallback={self.fallback!r} "
            f"buckets={len(self._lanes)} waiting={waiting}>"
        )


def _aged(reply: _Reply, seconds: float) -> float | None:
    """The reply's window end, ``seconds`` after it was read."""
    return None if reply.window_end_in is None else max(0.0, reply.window_end_in - seconds)


def _require_asyncio() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "RedisGovernor runs on asyncio only (redis-py's asyncio client)"
        ) from None


async def _close_pubsub(lane: _Lane) -> None:
    pubsub, lane.pubsub = lane.pubsub, None
    if pubsub is not None:
        try:
            await pubsub.aclose()
        except Exception:
            logger.debug("quota %s: closing pub/sub failed", lane.key)
