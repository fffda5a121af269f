"""What a ``RedisGovernor`` keeps per bucket in this process: names, its queue, the pump's plan.

The bucket itself lives in Redis; a ``Lane`` is the part no other process needs: the names of
one ``QuotaKey``'s keys and wake channel, this process's two FIFOs of waiters, one per priority
(interactive first; re-queued 429s first within theirs),
and the plan of its pump, the one waiter that asks Redis for everybody. The plan is when to ask
again (``wake_at``: the scripts' next deadline, or the ``recheck`` safety net, whichever comes
first) and whether something happened elsewhere in the meantime (``news``). Every reply updates
it, whoever asked: a settle's reply says as much about the bucket as an admission's, so a pump
that takes over sleeps on its predecessor's plan without a round trip.

The pump sleeps on the governor's clock, never inside a socket read: one listener task per
lane (``listen``) reads the wake channel and stirs the pump when another process publishes.
Reading in a task of its own means no read is cut short when a timer fires (a pub/sub read
cancelled mid-reply leaves the connection unusable, so a timer on the read itself would
reconnect at every expiry), and the pump's sleeps are plain ``Clock.sleep`` calls that a
``FakeClock`` can drive. All but the listener is synchronous bookkeeping, so a reply's tokens
reach their waiters even inside a cancelled scope.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anyio
import attrs

from .._core.bucket import PRIORITIES
from .._errors import RateLimitError
from .._governor import QuotaKey
from .._logging import logger

__all__ = ["Lane", "Lease", "Reply", "Unavailable", "Waiter", "listen"]

LISTEN_SLICE = 60.0
"""Seconds one pub/sub read may block. Explicit: older redis-py releases read ``timeout=None``
as the client's ``socket_timeout`` and would drop a quiet subscription every few seconds."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@attrs.frozen
class Reply:
    """What a script said: its own value, the outcome, the bucket after it, the tokens granted."""

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
    granted: tuple[int, ...] = ()
    """Lease numbers granted to this process's interactive queue, for its head first."""
    granted_bulk: tuple[int, ...] = ()
    """Lease numbers granted to this process's bulk queue (never the reserve)."""

    @classmethod
    def parse(cls, raw: list[Any]) -> Reply:
        def seconds(ms: Any) -> float | None:
            return None if int(ms) < 0 else int(ms) / 1000

        return cls(
            int(raw[0]),
            _text(raw[1]),
            _text(raw[2]),
            int(raw[3]),
            int(raw[4]),
            seconds(raw[5]),
            int(raw[6]),
            int(raw[7]),
            int(raw[8]),
            seconds(raw[9]),
            tuple(int(number) for number in raw[10]),
            tuple(int(number) for number in raw[11]),
        )

    def aged(self, seconds: float) -> Reply:
        """This reply as it reads ``seconds`` after it came: the window end is nearer."""
        if self.window_end_in is None:
            return self
        return attrs.evolve(self, window_end_in=max(0.0, self.window_end_in - seconds))

    def grantable_to(self, priority: str, reserve: int) -> int:
        """Tokens a request of ``priority`` could take now: bulk ones leave the reserve in
        force (below the stated limit), except the probe, which either priority may take."""
        if priority == "interactive" or self.phase == "probing":
            return self.grantable
        return max(0, self.grantable - min(reserve, max(0, self.limit - 1)))

    def forecast(self, position: int, window: float, reserve: int = 0) -> float:
        """Seconds until this process's waiter at ``position`` can expect a token.

        The local bucket's ``forecast``: it counts the requests in flight and the unreported
        spends as ``grantable`` does, in every phase, and is exact about windows. A bulk
        waiter passes ``reserve`` (the tokens of each window it may not take) and counts every
        interactive waiter in ``position``.
        """
        reserve = min(reserve, max(0, self.limit - 1))  # the reserve in force, as in Lua
        limit = max(1, self.limit - reserve)
        outstanding = self.in_flight + self.unreported
        if self.phase == "probing":
            ahead = position - max(0, self.limit - outstanding - reserve)
            return 0.0 if ahead < 0 else (ahead // limit) * window
        start = self.window_end_in or 0.0
        if self.phase == "closed":
            return start + (position // limit) * window
        ahead = position - max(0, self.remaining - outstanding - reserve)
        if ahead < 0:
            return 0.0
        return start + (ahead // limit) * window


@attrs.frozen
class Lease:
    """A token held in Redis: the admission number the leases set knows it by."""

    number: int


class Unavailable(Exception):
    """Strictly private: the outcome of a waiter whose lane lost Redis."""


class Waiter:
    """Strictly private: one task waiting in ``acquire``."""

    __slots__ = ("deadline", "outcome", "priority", "since", "wake")

    def __init__(self, since: float, deadline: float | None, priority: str = "interactive") -> None:
        self.since = since
        self.deadline = deadline
        self.priority = priority
        # Made when the waiter first sleeps: most are served by their own first round trip.
        self.wake: anyio.Event | None = None
        self.outcome: Lease | RateLimitError | Unavailable | None = None

    def decide(self, outcome: Lease | RateLimitError | Unavailable) -> None:
        self.outcome = outcome
        self.poke()

    def poke(self) -> None:
        """Make a sleeping waiter look again (decided, or the pump's role is free)."""
        if self.wake is not None:
            self.wake.set()

    async def sleep(self) -> None:
        self.wake = anyio.Event()
        await self.wake.wait()


class Lane:
    """Strictly private: one key's Redis names, this process's queue and its pump's plan."""

    __slots__ = (
        "args",
        "channel",
        "key",
        "keys",
        "last",
        "last_at",
        "listener",
        "listening",
        "marked",
        "nap",
        "news",
        "pump",
        "queues",
        "reserve",
        "wake_at",
    )

    def __init__(self, key: QuotaKey, prefix: str) -> None:
        base = f"{prefix}{{{key.group}:{key.account}}}"  # one hash slot per bucket (cluster)
        self.key = key
        self.keys = [
            f"{base}:{part}"
            for part in (
                "state",
                "leases",
                "unreported",
                "waiting",
                "turns",
                "wants",
                "bulk-turns",
                "bulk-wants",
            )
        ]
        self.channel = f"{base}:wake"
        self.args: list[Any] = []  # the scripts' common arguments (``scripts``)
        self.reserve = 0  # tokens of each window bulk requests leave (its group's)
        # Per priority, interactive first: re-queued 429s, then first attempts; dicts keep
        # arrival order (FIFO).
        self.queues: dict[str, tuple[dict[Waiter, None], dict[Waiter, None]]] = {
            priority: ({}, {}) for priority in PRIORITIES
        }
        self.pump: Waiter | None = None  # the waiter asking Redis for everybody
        # The pump's plan: ask Redis again at ``wake_at`` (monotonic; ``None``: ask now), or
        # sooner when ``news`` came; ``nap`` is the pump's sleep, cancelled to make it look.
        self.wake_at: float | None = None
        self.news = False
        self.nap: anyio.CancelScope | None = None
        self.listener: asyncio.Task[None] | None = None
        self.listening = False  # subscribed: no message published from now on is missed
        # The latest reply and when it came (monotonic), for refusing a max_wait at once.
        self.last: Reply | None = None
        self.last_at = 0.0
        # Whether Redis holds this process's waiting mark (its turn among processes): a lane
        # whose queue empties takes it back at once, or it would hold tokens for nobody.
        self.marked = False

    # -- the queue --------------------------------------------------------------------------

    @property
    def waiting(self) -> int:
        return sum(self.wanting(priority) for priority in PRIORITIES)

    def wanting(self, priority: str) -> int:
        """How many tokens this process's queue at ``priority`` wants."""
        retries, waiters = self.queues[priority]
        return len(retries) + len(waiters)

    def queue(self, priority: str | None = None) -> list[Waiter]:
        """The waiters in the order they are served (of one priority, or all)."""
        chosen = PRIORITIES if priority is None else (priority,)
        return [waiter for p in chosen for part in self.queues[p] for waiter in part]

    def head(self, priority: str | None = None) -> Waiter | None:
        chosen = PRIORITIES if priority is None else (priority,)
        for p in chosen:
            for part in self.queues[p]:
                for waiter in part:
                    return waiter
        return None

    def enqueue(self, waiter: Waiter, *, retry: bool) -> None:
        retries, waiters = self.queues[waiter.priority]
        (retries if retry else waiters)[waiter] = None

    def remove(self, waiter: Waiter) -> None:
        for part in self.queues[waiter.priority]:
            part.pop(waiter, None)
        # The waiter woken to pump next may leave before it runs (served by another answer,
        # cancelled): the role must still reach the rest of the queue, or it sleeps forever.
        self.pass_on()

    def pass_on(self) -> None:
        """Without a pump, wake the head of the queue to become one; with nobody, drop the
        plan."""
        if self.pump is not None:
            return
        head = self.head()
        if head is None:
            self.forget_plan()
        else:
            head.poke()

    def decide(self, waiter: Waiter, outcome: Lease | RateLimitError | Unavailable) -> None:
        """Take ``waiter`` out of the queue with its outcome, and wake it in its turn."""
        self.remove(waiter)
        waiter.decide(outcome)
        if waiter is self.pump:
            self.stir()

    def refuse_lost_causes(
        self,
        reply: Reply,
        window: float,
        reserve: int,
        now: float,
        refusal: Callable[[QuotaKey, float, float], RateLimitError],
    ) -> None:
        """Refuse the waiters whose ``max_wait`` ends before their forecast turn, or has ended
        (another process's turn came first). An interactive waiter's turn counts only the
        interactive waiters ahead of it; a bulk one's counts them all and not the reserve."""
        position = 0
        for waiter in self.queue():
            if waiter.deadline is not None:
                bulk = waiter.priority == "bulk"
                wait = reply.forecast(position, window, reserve if bulk else 0)
                if now + wait > waiter.deadline or now >= waiter.deadline:
                    self.decide(waiter, refusal(self.key, wait, waiter.deadline - waiter.since))
                    continue
            position += 1

    def hand_out(self, reply: Reply) -> list[int]:
        """Give granted tokens to the head of their priority's queue in turn (a bulk grant to
        an interactive waiter when no bulk one is left: interactive may take whatever bulk
        may); return those nobody took."""
        surplus = []
        for numbers, order in (
            (reply.granted, ("interactive",)),
            (reply.granted_bulk, ("bulk", "interactive")),
        ):
            for number in numbers:
                waiter = next(filter(None, (self.head(p) for p in order)), None)
                if waiter is None:  # everybody it was for left while Redis answered
                    surplus.append(number)
                    continue
                self.decide(waiter, Lease(number))
        return surplus

    # -- the plan ---------------------------------------------------------------------------

    def learn(self, reply: Reply, now: float, recheck: float) -> None:
        """Keep ``reply`` for forecasts and, while somebody waits, move the plan earlier.

        Only earlier: replies to concurrent calls may arrive out of order, and waking early
        costs one round trip where waking late would idle under the quota.
        """
        self.last, self.last_at = reply, now
        if self.pump is None:
            return
        wait = recheck
        if reply.deadline_in is not None:
            wait = min(wait, reply.deadline_in + 0.001)  # just past it: the scripts use ms
        self.wake_by(now + wait)
        for waiter in self.queue():
            if waiter.deadline is not None:
                self.wake_by(waiter.deadline)  # refused by its max_wait at the latest

    def wake_by(self, instant: float) -> None:
        """Have the pump ask Redis again at ``instant`` at the latest."""
        if self.wake_at is None or instant < self.wake_at:
            self.wake_at = instant

    def forget_plan(self) -> None:
        """Nobody waits here any more: the next waiter asks Redis first."""
        self.wake_at = None
        self.news = False

    def stir(self) -> None:
        """Make a sleeping pump look at its waiter and the plan again."""
        if self.nap is not None:
            self.nap.cancel()

    def hear(self) -> None:
        """Something changed that only Redis can tell: the pump asks again."""
        self.news = True
        self.stir()

    async def stop_listening(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.cancel()
            await asyncio.wait([listener])


async def listen(lane: Lane, redis: Any, origin: str) -> None:
    """Stir ``lane``'s pump whenever another process publishes on its channel, until cancelled.

    Messages carry the publisher's id (``origin``): this process's own settles already handed
    their tokens over, so its own messages are not news. A broken connection ends the task; the
    pump starts another at its next sleep and meanwhile re-checks on its timer.
    """
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(lane.channel)
        while True:
            message = await pubsub.get_message(timeout=LISTEN_SLICE)
            if message is None:
                continue
            kind = _text(message["type"])
            if kind == "subscribe":
                # Nothing is lost from now on; a message published before may have been.
                lane.listening = True
                lane.hear()
            elif kind == "message" and _text(message["data"]) != origin:
                lane.hear()
    except Exception as exc:
        logger.debug("quota %s: pub/sub unavailable (%s); re-checking on a timer", lane.key, exc)
    finally:
        lane.listening = False
        try:
            await pubsub.aclose()
        except Exception:
            logger.debug("quota %s: closing pub/sub failed", lane.key)
