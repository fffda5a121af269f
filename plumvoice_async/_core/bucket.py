"""The quota bucket: one quota group of one account, as a pure state machine.

Nothing here reads a clock or waits: every method that depends on time takes ``now`` (the local
monotonic clock) and, where the server's headers or an epoch alignment need it, ``wall`` (the
local UNIX time). The shell (``_local_governor``) only sleeps and wakes; every number it acts on
comes from here. ``_redis`` re-states the same rules as Lua scripts, with the same constants
(``NO_DATE_MARGIN``, ``NO_HEADER_PROOF`` here, ``MAX_RESET_WINDOWS`` and ``MAX_HEADER_COUNT`` in
``ratelimit``).

What the server does (plum-api.md 1.3): fixed windows aligned to its own clock (every documented
``X-RateLimit-Reset`` is a multiple of 900 s); each response says ``Limit``, ``Remaining`` (after
counting this request) and ``Reset`` (absolute epoch seconds, server clock), plus ``Date`` (server
clock, 1 s resolution). Other processes and tools may spend the same quota. A hostile or broken
server may also lie: stale 429s from servers whose clocks disagree, answers without headers,
absurd values (issue 11). None of it may make the bucket overspend, storm, or never reopen.

Phases
------
- ``PROBING``: the current server window is unknown (at start, and whenever the window we knew
  has ended). One request, the probe, goes out; its answer tells the window's ``Remaining`` and
  ``Reset``. Nobody else goes until an answer from a new window arrives, because another
  process may already have spent it (no thundering herd at the reset: governor.md rule 3).
- ``SERVER``: synchronised with the server's headers for window ``Reset``.
- ``LOCAL``: the server is proven to send no headers (``NO_HEADER_PROOF`` probes in a row were
  answered without): count locally, ``limit`` per ``window``, on windows aligned to the last
  server window's end when one was ever known and to the local epoch otherwise (rule 5).
- ``CLOSED``: a 429 said the quota is spent: nothing goes until the instant it named (its own
  ``Reset``, or its ``Retry-After``), then one probe (rule 4).

Transition table
----------------
Every phase change is one row of ``TRANSITIONS`` (below), and the code changes ``phase`` only
through it (``Bucket._on``). Events (``Event``): an answer WITH plausible headers is classified by
the window it names against the one the bucket knows (``LATER``, ``SAME``, ``EARLIER``; while
``PROBING`` or ``LOCAL`` the window we knew has ended, so ``SAME`` means a straggler of it).

=========  =================  =========  ===========================================================
phase      event              new phase  action
=========  =================  =========  ===========================================================
PROBING    LATER              SERVER     adopt the window: remaining = reported, end = its end
PROBING    SAME, EARLIER      PROBING    ignore the count (the window it names has ended for us)
PROBING    LIMITED            CLOSED     close until the 429's own end (or Retry-After); adopt its
                                         window whether later, same or earlier (rule 1)
PROBING    BLIND_LIMITED      CLOSED     close until the next aligned window boundary
PROBING    HEADERLESS         PROBING    spend stays unreported; the probe's slot is free again,
                                         one probe at a time (rule 2)
PROBING    NO_HEADERS_PROVEN  LOCAL      the NO_HEADER_PROOF-th probe in a row answered without
                                         headers: open a LOCAL window
PROBING    LOST               PROBING    spend stays unreported; the probe's slot is free again
SERVER     LATER              SERVER     adopt the new window
SERVER     SAME               SERVER     remaining = min(remaining, reported); end = the earliest
SERVER     EARLIER            SERVER     ignore the count
SERVER     LIMITED            CLOSED     as PROBING
SERVER     BLIND_LIMITED      SERVER     remaining = 0 until the window we know ends
SERVER     HEADERLESS, LOST   SERVER     spend stays unreported (rule 5)
SERVER     END                PROBING    the window ended: one probe
LOCAL      LATER              SERVER     adopt the new window (headers again)
LOCAL      SAME, EARLIER      PROBING    headers again, naming a window that is over: probe
LOCAL      LIMITED            CLOSED     as PROBING
LOCAL      BLIND_LIMITED      LOCAL      remaining = 0 until the local window ends
LOCAL      HEADERLESS, LOST   LOCAL      spend stays unreported until the local window ends
LOCAL      END                LOCAL      the next local window, ``limit`` tokens
CLOSED     LATER              CLOSED     keep the new window's count for the reopening
CLOSED     SAME, EARLIER      CLOSED     as SERVER (the count only falls)
CLOSED     LIMITED            CLOSED     closed until the later of both ends
CLOSED     BLIND_LIMITED      CLOSED     nothing
CLOSED     HEADERLESS, LOST   CLOSED     spend stays unreported
CLOSED     END                PROBING    the closure is over and nothing newer is known: one probe
CLOSED     END_KNOWN          SERVER     a later window's count arrived while closed and that
                                         window has not ended: it is the probe's answer already
=========  =================  =========  ===========================================================

Priorities (rule 8) add no row: they decide who gets a token, never the phase. Which priority
may take a token, per phase:

=========  ==========================  =====================================================
phase      ``"interactive"``           ``"bulk"``
=========  ==========================  =====================================================
PROBING    the probe                   the probe, if no interactive request waits for it
SERVER     while ``grantable > 0``     while ``grantable > reserve`` and no interactive waits
LOCAL      as SERVER                   as SERVER
CLOSED     nothing                     nothing
=========  ==========================  =====================================================

Events not in the table cannot happen (a ``PROBING`` bucket has no end; ``NO_HEADERS_PROVEN``
comes only from a probe's answer). ``LIMITED`` is a 429 with plausible headers, or without them
but with a ``Retry-After`` (closed for that long plus ``margin``); ``BLIND_LIMITED`` a 429 with
neither. ``HEADERLESS``: an answer without (plausible) headers; ``LOST``: no answer at all
(``status=None``) or a lease that expired. Any answer with plausible headers resets the count of
header-less probes in a row.

The rules
---------
1. ADMIT. Tokens grantable now = ``remaining - len(in_flight) - len(unreported)`` (``SERVER``,
   ``LOCAL``), none while ``CLOSED``, or one probe (``PROBING``, if ``limit - len(in_flight) -
   len(unreported) > 0``). Every request in flight is subtracted because we cannot know whether
   the server has counted it yet: the error errs on the safe side by at most the number in
   flight, and vanishes as their answers arrive. Completed requests are never subtracted again:
   the server's ``Remaining`` already counts them, and counting them twice would leave quota
   idle.
2. SETTLE (an answer with headers). The window's local end is anchored on the monotonic clock at
   receipt: ``now + (Reset - Date) + margin``. ``Reset - Date`` reads one clock, the server's, so
   client clock skew cannot shift it; ``Date`` is truncated to the second and stamped before the
   answer left, so it over-states the time left and is never early. A ``Reset`` below
   ``DELTA_RESET_THRESHOLD`` is seconds from the answer (plum-api.md 6.1). No ``Date``: use the
   server clock's offset learned from an earlier ``Date``; with none ever seen, the local wall
   clock plus ``NO_DATE_MARGIN``. Headers that are implausible (``RateLimit.plausible``: a
   ``Reset`` more than ``MAX_RESET_WINDOWS`` windows away, counts above ``MAX_HEADER_COUNT``,
   anything not finite) are treated as absent and counted in ``ignored_headers``.
3. ROLL OVER (``END``). When ``now`` reaches the window's end, go back to ``PROBING`` (or open the
   next ``LOCAL`` window). Requests still in flight across the boundary stay subtracted, so they
   are charged to the new window until their answers say otherwise.
4. CLOSE (a 429). Nothing goes until that answer's own end, whatever window the bucket believed
   current: servers behind one host may disagree on the window by more than ``margin``, and a
   429 ignored as "stale" would send the front-queued retry straight back out (a retry storm).
   The request that got it re-queues at the front (``enqueue(front=True)``): quota exhaustion is
   not a transient fault, so the transport does not spend a retry on it.
5. NO HEADERS. A request answered without headers (an error page), not answered at all
   (``status=None``: it reached the server before the error, or never will) or whose lease
   expired counts as spent: it joins ``unreported``, the spends no ``Remaining`` has shown yet,
   subtracted like the requests in flight, in every phase and across window boundaries. Not
   ``remaining -= 1``: the next report may come from a request that reached the server before
   it, and ``min`` would forget it. It leaves ``unreported`` when a request admitted after it
   joined reports, in any window (that request reached the server later, so its count
   includes it, or it belongs to an earlier window), when its own late answer reports, or
   ``window + margin`` after it joined (the window it reached has ended by then, so an outage
   of error pages cannot block the queue for good). ``LOCAL`` windows hear no reports, so
   theirs is cleared at the window's end. A probe answered without headers (a proxy's 502)
   proves nothing about the window, so the slow start goes on, one probe at a time, until an
   answer with headers or ``NO_HEADER_PROOF`` header-less probe answers in a row.
6. WAIT. Waiters queue FIFO per priority (rule 8), re-queued 429s ahead of first attempts.
   ``dispatch`` hands tokens to the head of the queue while any are grantable to its priority,
   and refuses a waiter whose ``max_wait``
   ends before its forecast turn (``forecast``, which subtracts what ``grantable`` subtracts),
   or whose ``max_wait`` has run out. ``next_deadline`` is the one instant the shell must wake
   at without an answer arriving (a window end, a lease expiry, a lapse, a waiter's deadline).
8. PRIORITIES. Two priorities, ``PRIORITIES`` in serving order: ``"interactive"`` (the default)
   and ``"bulk"``. Each has its own FIFO queue pair (a 429 re-queue goes to the front of its
   own priority's queue); ``dispatch`` serves every interactive waiter before any bulk one. A
   bulk request is granted only while ``grantable > reserve``: the window's last ``reserve``
   tokens go to interactive requests (``reserve`` 0 is the single FIFO of before). The fast
   path (``try_admit``) lets an interactive request past bulk waiters, never past interactive
   ones; a bulk request only when nobody waits. The probe is not reserved: either priority may
   take it (it learns the window for everybody). The reserve in force never reaches the limit
   the server last stated (``min(reserve, limit - 1)``), so bulk is slowed, never starved.
   ``forecast`` counts, for an interactive waiter, the interactive waiters ahead of it with
   the whole window; for a bulk waiter every interactive waiter and the bulk ones ahead, with
   ``limit - reserve`` per window.
9. FORGET. A bucket with nothing in flight, nothing unreported, nobody waiting and no window in
   force (``idle``) holds nothing a fresh bucket would not learn with its first probe: the shell
   may drop it.

Invariants (checked by tests/core/test_bucket.py, including a Hypothesis state machine):

- Requests admitted into one server window never exceed its limit once the window's first
  answer is known: no 429 comes from our own traffic.
- Within one window ``remaining`` only falls, and ``remaining - len(unreported)`` never exceeds
  what the server has left; ``len(in_flight)`` only counts admitted, unanswered, unreleased,
  unexpired tokens; every token taken is settled, released or expired.
- Tokens go to waiters in queue order (interactive first), and only while ``grantable() > 0``
  (``> reserve`` for bulk): if waiters of a priority exist after a ``dispatch``, no token is
  grantable to that priority, no bulk token went out while an interactive request waited,
  and ``next_deadline()`` says when to look again (nobody waits forever). Once every answer
  is in, ``grantable()`` is what the server has left, less at most one token per unreported
  spend (rule 5) for at most ``window + margin``: the price of never overshooting when an
  answer carries no count.
- After a 429 nothing is admitted before its own end; after that end, one probe.
- A window's local end is never before the server's end plus ``margin``.
- A refusal's ``ready_at`` is never before the ``now`` it was made at.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Mapping
from enum import StrEnum

import attrs

from .ratelimit import MAX_HEADER_COUNT, MAX_RESET_WINDOWS, RateLimit

__all__ = [
    "MAX_HEADER_COUNT",
    "MAX_RESET_WINDOWS",
    "NO_DATE_MARGIN",
    "NO_HEADER_PROOF",
    "PRIORITIES",
    "TRANSITIONS",
    "Bucket",
    "BucketView",
    "Dispatch",
    "Event",
    "Phase",
    "Refusal",
    "Sync",
]

NO_DATE_MARGIN = 2.0
"""Extra seconds added when a ``Reset`` must be read against the local wall clock (no ``Date``
ever seen): the client's clock may be off the server's, and nothing else bounds it."""

NO_HEADER_PROOF = 3
"""Probe answers without headers, in a row, that prove the server sends none (rule 5): until
then the slow start goes on, one probe at a time."""

PRIORITIES = ("interactive", "bulk")
"""The priorities, in serving order: every waiting ``"interactive"`` request is served before any
waiting ``"bulk"`` one (rule 8)."""

_INTERACTIVE, _BULK = PRIORITIES

_RESET_TOLERANCE = 0.5
"""Absolute ``Reset`` values are whole seconds: two within this distance name the same window."""


class Phase(StrEnum):
    """What the bucket knows about the current window."""

    PROBING = "probing"
    """Window unknown: one probe goes first, the rest after its answer."""
    SERVER = "server"
    """Synchronised with the server's ``X-RateLimit-*`` headers."""
    LOCAL = "local"
    """The server sends no headers: counting locally, ``limit`` per ``window``."""
    CLOSED = "closed"
    """A 429 said the quota is spent: nothing goes until the end it named, then one probe."""


class Event(StrEnum):
    """What happened to a bucket, as far as its phase is concerned (see ``TRANSITIONS``)."""

    LATER = "an answer with headers names a later window"
    SAME = "an answer with headers names the window we know"
    EARLIER = "an answer with headers names an earlier window"
    LIMITED = "a 429 with headers or a Retry-After"
    BLIND_LIMITED = "a 429 with neither headers nor Retry-After"
    HEADERLESS = "an answer without headers"
    NO_HEADERS_PROVEN = "the last of NO_HEADER_PROOF probe answers in a row without headers"
    LOST = "no answer, or a lease expired"
    END = "the window or closure ended"
    END_KNOWN = "the closure ended and a later window's count is known"


_P, _E = Phase, Event
TRANSITIONS: dict[tuple[Phase, Event], Phase] = {
    (_P.PROBING, _E.LATER): _P.SERVER,
    (_P.PROBING, _E.SAME): _P.PROBING,
    (_P.PROBING, _E.EARLIER): _P.PROBING,
    (_P.PROBING, _E.LIMITED): _P.CLOSED,
    (_P.PROBING, _E.BLIND_LIMITED): _P.CLOSED,
    (_P.PROBING, _E.HEADERLESS): _P.PROBING,
    (_P.PROBING, _E.NO_HEADERS_PROVEN): _P.LOCAL,
    (_P.PROBING, _E.LOST): _P.PROBING,
    (_P.SERVER, _E.LATER): _P.SERVER,
    (_P.SERVER, _E.SAME): _P.SERVER,
    (_P.SERVER, _E.EARLIER): _P.SERVER,
    (_P.SERVER, _E.LIMITED): _P.CLOSED,
    (_P.SERVER, _E.BLIND_LIMITED): _P.SERVER,
    (_P.SERVER, _E.HEADERLESS): _P.SERVER,
    (_P.SERVER, _E.LOST): _P.SERVER,
    (_P.SERVER, _E.END): _P.PROBING,
    (_P.LOCAL, _E.LATER): _P.SERVER,
    (_P.LOCAL, _E.SAME): _P.PROBING,
    (_P.LOCAL, _E.EARLIER): _P.PROBING,
    (_P.LOCAL, _E.LIMITED): _P.CLOSED,
    (_P.LOCAL, _E.BLIND_LIMITED): _P.LOCAL,
    (_P.LOCAL, _E.HEADERLESS): _P.LOCAL,
    (_P.LOCAL, _E.LOST): _P.LOCAL,
    (_P.LOCAL, _E.END): _P.LOCAL,
    (_P.CLOSED, _E.LATER): _P.CLOSED,
    (_P.CLOSED, _E.SAME): _P.CLOSED,
    (_P.CLOSED, _E.EARLIER): _P.CLOSED,
    (_P.CLOSED, _E.LIMITED): _P.CLOSED,
    (_P.CLOSED, _E.BLIND_LIMITED): _P.CLOSED,
    (_P.CLOSED, _E.HEADERLESS): _P.CLOSED,
    (_P.CLOSED, _E.LOST): _P.CLOSED,
    (_P.CLOSED, _E.END): _P.PROBING,
    (_P.CLOSED, _E.END_KNOWN): _P.SERVER,
}
"""(phase, event) -> the next phase: the table in the module docstring, as the code uses it."""
del _P, _E


class Sync(StrEnum):
    """What one settled answer did to the bucket (the shell logs it, with ``view``)."""

    NEW_WINDOW = "new window"
    LOWERED = "remaining lowered"
    UNCHANGED = "unchanged"
    STALE = "stale answer ignored"
    CLOSED = "closed by 429"
    COUNTED = "counted locally (no headers)"
    LOCAL_WINDOW = "no headers: counting locally"
    NO_ANSWER = "probe had no answer"
    UNKNOWN_TICKET = "unknown or expired ticket"


@attrs.frozen
class Refusal:
    """A waiter whose ``max_wait`` ends before its forecast turn, removed from the queue."""

    ticket: int
    ready_at: float
    """Monotonic instant the waiter could have expected its token; never before the refusal."""


@attrs.frozen
class Dispatch:
    """The outcome of one ``dispatch``: tickets granted (in queue order) and refused."""

    granted: tuple[int, ...] = ()
    refused: tuple[Refusal, ...] = ()


@attrs.frozen
class BucketView:
    """A bucket's state at one moment, for snapshots and reprs."""

    limit: int
    window: float
    phase: Phase
    grantable: int
    window_end: float | None
    """When the window (or closure) in force ends, monotonic; ``None`` while probing."""
    in_flight: int
    waiting: int
    remaining: int | None
    """The server's ``Remaining`` as reconciled (``None`` while probing, 0 while closed)."""
    reset: float | None
    """The absolute ``Reset`` of the server window in force (``None``: unknown, delta, local)."""
    reserve: int = 0
    waiting_by_priority: Mapping[str, int] = attrs.field(factory=dict)
    """Waiters per priority (every key of ``PRIORITIES``); they add up to ``waiting``."""


_NOTHING = Dispatch()


def _check_priority(priority: str) -> None:
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {PRIORITIES}, got {priority!r}")


class _Queue:
    """Strictly private: a bucket's waiters, made only once somebody waits."""

    __slots__ = ("deadline_heap", "deadlines", "lines")

    def __init__(self) -> None:
        # Per priority, two FIFO queues as ordered sets: re-queued 429s go before first
        # attempts. Serving order: the priorities in PRIORITIES order, each retries first.
        self.lines: dict[str, tuple[dict[int, None], dict[int, None]]] = {
            priority: ({}, {}) for priority in PRIORITIES
        }
        # max_wait deadlines: ticket -> deadline, and a heap of them (stale entries skipped).
        self.deadlines: dict[int, float] = {}
        self.deadline_heap: list[tuple[float, int]] = []

    def count(self, priority: str) -> int:
        retries, waiters = self.lines[priority]
        return len(retries) + len(waiters)

    def in_order(self) -> Iterator[tuple[str, int]]:
        """(priority, ticket) for every waiter, in serving order."""
        for priority, (retries, waiters) in self.lines.items():
            for ticket in (*retries, *waiters):
                yield priority, ticket


class Bucket:
    """The quota state of one (group, account): see the module docstring for the rules.

    Strictly private. Tickets are opaque ints: one per ``enqueue`` or ``try_admit``, naming a
    waiter while it queues and its token once admitted.

    Args:
        limit: requests per window until the server's ``X-RateLimit-Limit`` says otherwise.
        window: the window's length in seconds (the server's windows are aligned multiples).
        margin: seconds added to every window end derived from the server (covers servers
            behind one host whose clocks differ).
        lease: seconds after which a token never settled nor released counts as spent and
            leaves ``in_flight`` (a transport that lost it must not leak quota forever);
            twice the window by default.
        reserve: the last ``reserve`` grantable tokens of every window go to ``"interactive"``
            requests only (rule 8); 0 to ``limit - 1``.
    """

    __slots__ = (
        "_admissions",
        "_headerless_probes",
        "_in_flight",
        "_known_while_closed",
        "_last_ticket",
        "_limit",
        "_probe",
        "_queue",
        "_remaining",
        "_server_end",
        "_server_offset",
        "_server_reset",
        "_unreported",
        "_window_end",
        "expired",
        "ignored_headers",
        "lease",
        "margin",
        "phase",
        "reserve",
        "wall_clock_fallbacks",
        "window",
    )

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        margin: float = 1.0,
        lease: float | None = None,
        reserve: int = 0,
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit!r}")
        if not 0 <= reserve < limit:
            raise ValueError(f"reserve must be 0 to limit - 1, got {reserve!r}")
        if not 0 < window < math.inf:
            raise ValueError(f"window must be positive seconds, got {window!r}")
        if not 0 <= margin < math.inf:
            raise ValueError(f"margin must be >= 0 seconds, got {margin!r}")
        self.window = float(window)
        self.margin = float(margin)
        self.lease = 2.0 * self.window if lease is None else float(lease)
        self.reserve = reserve
        self.phase = Phase.PROBING
        self.expired = 0
        """Tokens that outlived their lease (counted as spent)."""
        self.wall_clock_fallbacks = 0
        """Answers whose ``Reset`` was read on the local wall clock (no ``Date`` ever seen)."""
        self.ignored_headers = 0
        """Answers whose headers (or ``Retry-After``) were implausible, so treated as absent."""
        self._limit = limit
        self._remaining = 0
        # When the phase in force ends (SERVER, LOCAL: the window; CLOSED: the closure).
        self._window_end: float | None = None
        # The last server window adopted: its Reset (None for a delta Reset) and local end.
        self._server_reset: float | None = None
        self._server_end: float | None = None
        # A lower bound of (server clock - local monotonic clock), from the latest Date.
        self._server_offset: float | None = None
        self._headerless_probes = 0  # in a row, since the last answer with headers
        self._known_while_closed = False  # a later window's count arrived while CLOSED
        self._probe: int | None = None
        # ticket -> (admitted at (monotonic), admission number); dicts keep insertion order, so
        # the oldest comes first.
        self._in_flight: dict[int, tuple[float, int]] = {}
        self._admissions = 0
        # Spent, not yet in any Remaining (rule 5): ticket -> (when it joined, the number of
        # admissions then: a report from any later admission includes it).
        self._unreported: dict[int, tuple[float, int]] = {}
        self._queue: _Queue | None = None  # made by the first enqueue: most buckets never wait
        self._last_ticket = 0

    # -- reading ------------------------------------------------------------------------------

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def waiting(self) -> int:
        queue = self._queue
        return 0 if queue is None else sum(queue.count(priority) for priority in PRIORITIES)

    def waiting_by_priority(self) -> dict[str, int]:
        """Waiters per priority, every priority a key."""
        queue = self._queue
        return {priority: 0 if queue is None else queue.count(priority) for priority in PRIORITIES}

    @property
    def remaining(self) -> int | None:
        """What the server has left as reconciled (rule 5), ``None`` while probing."""
        if self.phase is Phase.PROBING:
            return None
        return 0 if self.phase is Phase.CLOSED else self._reconciled()

    @property
    def window_end(self) -> float | None:
        """The monotonic instant the window (or closure) in force ends, ``None`` while probing."""
        return None if self.phase is Phase.PROBING else self._window_end

    @property
    def head(self) -> int | None:
        """The ticket first in line, or ``None`` when nobody waits."""
        head = self._head()
        return None if head is None else head[1]

    def _head(self) -> tuple[str, int] | None:
        queue = self._queue
        return None if queue is None else next(queue.in_order(), None)

    def grantable(self) -> int:
        """Tokens that may be handed out now (rule 1); never negative."""
        phase = self.phase
        if phase is Phase.CLOSED:
            return 0
        outstanding = len(self._in_flight) + len(self._unreported)
        if phase is Phase.PROBING:
            return 1 if self._probe is None and self._limit - outstanding > 0 else 0
        return max(0, self._remaining - outstanding)

    def grantable_to(self, priority: str) -> int:
        """Tokens a request of ``priority`` may take now (rule 8): bulk ones leave the reserve.

        The probe is not reserved: either priority may take it (an interactive waiter first).
        """
        grantable = self.grantable()
        if priority == _INTERACTIVE or self.phase is Phase.PROBING:
            return grantable
        return max(0, grantable - self._reserve())

    def _reserve(self) -> int:
        """The reserve in force: below the limit the server last stated, so bulk never starves."""
        return min(self.reserve, self._limit - 1)

    def view(self, now: float, wall: float) -> BucketView:
        """The state at ``now`` (windows that ended by then are rolled over first)."""
        self._advance(now, wall)
        return BucketView(
            limit=self._limit,
            window=self.window,
            phase=self.phase,
            grantable=self.grantable(),
            window_end=self.window_end,
            in_flight=len(self._in_flight),
            waiting=self.waiting,
            remaining=self.remaining,
            reset=self._server_reset if self.phase is Phase.SERVER else None,
            reserve=self._reserve(),
            waiting_by_priority=self.waiting_by_priority(),
        )

    def idle(self, now: float, wall: float) -> bool:
        """Whether the bucket holds nothing a fresh one would not learn again (rule 9).

        Nothing in flight or unreported, nobody waiting, and no server window or closure in
        force (a ``LOCAL`` window with nothing spent in it counts as over).
        """
        if self._in_flight or self._unreported or self.waiting:
            return False
        self._advance(now, wall)
        return self.phase is Phase.PROBING or self.phase is Phase.LOCAL

    def next_deadline(self) -> float | None:
        """When the shell must call ``dispatch`` although no answer arrived, or ``None``.

        Only while somebody waits: at the window's (or closure's) end (new tokens), when the
        oldest token's lease expires, or when the oldest unreported spend lapses (either stops
        blocking the queue), or when a waiter's ``max_wait`` runs out (it is refused by then at
        the latest). Always later than the ``now`` of the last ``dispatch``, which already
        handled everything due.
        """
        if not self.waiting:
            return None
        deadlines = []
        if self.phase is not Phase.PROBING and self._window_end is not None:
            deadlines.append(self._window_end)
        for admitted_at, _ in self._in_flight.values():
            deadlines.append(admitted_at + self.lease)
            break
        for joined_at, _ in self._unreported.values():
            deadlines.append(joined_at + self._unreported_life)
            break
        waiter_deadline = self._earliest_waiter_deadline()
        if waiter_deadline is not None:
            deadlines.append(waiter_deadline)
        return min(deadlines) if deadlines else None

    def forecast(self, now: float, position: int, *, priority: str = _INTERACTIVE) -> float:
        """When a waiter of ``priority`` at ``position`` can expect a token (monotonic).

        ``position`` counts the waiters served before it (rule 8): for an interactive waiter
        the interactive ones ahead; for a bulk waiter every interactive waiter plus the bulk
        ones ahead. The current window gives what ``grantable_to`` would (in-flight and
        unreported spends subtracted, so a ``max_wait`` is not granted on hope); each later
        window gives ``limit``, less the reserve for bulk. While probing, the window is unknown
        and may end any moment; while closed, the next window starts at the closure's end.
        Never before ``now``.
        """
        reserve = 0 if priority == _INTERACTIVE else self._reserve()
        per_window = self._limit - reserve  # what each later window gives this priority
        # What the current window still gives this priority: the reserve stays out of it.
        outstanding = len(self._in_flight) + len(self._unreported) + reserve
        phase = self.phase
        if phase is Phase.PROBING:
            ahead = position - max(0, self._limit - outstanding)
            return now if ahead < 0 else now + (ahead // per_window) * self.window
        assert self._window_end is not None  # SERVER, LOCAL and CLOSED always know their end
        start = max(now, self._window_end)
        if phase is Phase.CLOSED:
            return start + (position // per_window) * self.window
        ahead = position - max(0, self._remaining - outstanding)
        if ahead < 0:
            return now
        return start + (ahead // per_window) * self.window

    # -- queueing and admitting -----------------------------------------------------------------

    def try_admit(self, now: float, wall: float, *, priority: str = _INTERACTIVE) -> int | None:
        """Admit at once when nobody it must yield to waits and a token is grantable to it.

        The fast path (rule 8): an interactive request yields only to interactive waiters, a
        bulk one to every waiter.
        """
        _check_priority(priority)
        queue = self._queue
        if queue is not None and (
            queue.count(_INTERACTIVE) if priority == _INTERACTIVE else self.waiting
        ):
            return None
        self._advance(now, wall)
        if self.grantable_to(priority) <= 0:
            return None
        self._last_ticket = ticket = self._last_ticket + 1
        self._admit(ticket, now)
        return ticket

    def enqueue(
        self,
        now: float,
        *,
        front: bool = False,
        max_wait: float | None = None,
        priority: str = _INTERACTIVE,
    ) -> int:
        """Join the queue of ``priority``; ``front`` for a request re-queued after its 429."""
        _check_priority(priority)
        queue = self._queue
        if queue is None:
            queue = self._queue = _Queue()
        self._last_ticket = ticket = self._last_ticket + 1
        retries, waiters = queue.lines[priority]
        (retries if front else waiters)[ticket] = None
        if max_wait is not None:
            deadline = now + max_wait
            queue.deadlines[ticket] = deadline
            heapq.heappush(queue.deadline_heap, (deadline, ticket))
        return ticket

    def dispatch(self, now: float, wall: float) -> Dispatch:
        """Hand tokens to the head of the queue while any are grantable; refuse lost causes.

        A waiter with a ``max_wait`` is refused when its forecast turn is past its deadline, or
        when the deadline has come and it still has no token.
        """
        queue = self._queue
        if queue is None or not self.waiting:
            return _NOTHING
        self._advance(now, wall)
        granted: list[int] = []
        deadlines = queue.deadlines
        # In serving order: once the head cannot have a token, nobody behind it may (a bulk
        # head means no interactive waiter is left; an interactive one that gets nothing
        # leaves nothing for bulk either).
        while (head := self._head()) is not None and self.grantable_to(head[0]) > 0:
            ticket = head[1]
            self._withdraw(ticket)
            self._admit(ticket, now)
            granted.append(ticket)
        refused: list[Refusal] = []
        if deadlines:
            position = 0  # interactive waiters count for everybody behind them (rule 8)
            for priority, ticket in list(queue.in_order()):
                deadline = deadlines.get(ticket)
                if deadline is not None:
                    ready_at = self.forecast(now, position, priority=priority)
                    if ready_at > deadline or now >= deadline:
                        self._withdraw(ticket)
                        refused.append(Refusal(ticket, ready_at))
                        continue
                position += 1
        return Dispatch(tuple(granted), tuple(refused))

    def release(self, ticket: int) -> bool:
        """Give back a place in the queue or an unsent token; ``False`` if ``ticket`` holds none.

        No quota is charged: the request never left.
        """
        if self._withdraw(ticket):
            return True
        if self._in_flight.pop(ticket, None) is None:
            return False
        if ticket == self._probe:
            self._probe = None
        return True

    # -- answers ------------------------------------------------------------------------------

    def settle(
        self,
        ticket: int,
        now: float,
        wall: float,
        *,
        status: int | None,
        rate_limit: RateLimit | None,
        retry_after: float | None = None,
    ) -> Sync:
        """Reconcile the bucket with the answer to ``ticket`` (``status=None``: no answer).

        ``retry_after``: the answer's ``Retry-After`` in seconds from receipt; it matters only
        for a 429 without plausible headers (closed that long plus ``margin``, then one probe).
        The answer's headers count even for a ticket that expired or is unknown: they are the
        server's word. Only the token itself is not charged twice.
        """
        self._advance(now, wall)
        admitted = self._in_flight.pop(ticket, None)
        was_probe = admitted is not None and ticket == self._probe
        if was_probe:
            self._probe = None
        if rate_limit is not None and not rate_limit.plausible(
            self.window, self._server_now(now, wall)
        ):
            self.ignored_headers += 1
            rate_limit = None
        if rate_limit is not None:
            # Its own report includes it, if it was counted as lost before (rule 5).
            self._unreported.pop(ticket, None)
            number = None if admitted is None else admitted[1]
            sync = self._resync(rate_limit, now, wall, closed=status == 429, number=number)
            self._advance(now, wall)
            return sync
        if status == 429:
            self._close_blind(now, wall, retry_after)
            return Sync.UNKNOWN_TICKET if admitted is None else Sync.CLOSED
        if admitted is None:
            return Sync.UNKNOWN_TICKET
        return self._count(ticket, now, wall, answered=status is not None, probe=was_probe)

    def _count(self, ticket: int, now: float, wall: float, *, answered: bool, probe: bool) -> Sync:
        """A spend no header reports (rule 5); maybe proof that the server sends none."""
        self._unreported[ticket] = (now, self._admissions)
        if not answered:
            self._on(Event.LOST)
            return Sync.NO_ANSWER if self.phase is Phase.PROBING else Sync.COUNTED
        if not (probe and self.phase is Phase.PROBING):
            self._on(Event.HEADERLESS)
            return Sync.COUNTED
        # The probe was answered without headers: a proxy's error page proves nothing about
        # the window, unless it keeps happening (rule 5).
        self._headerless_probes += 1
        if self._headerless_probes < NO_HEADER_PROOF:
            self._on(Event.HEADERLESS)
            return Sync.COUNTED
        self._on(Event.NO_HEADERS_PROVEN)
        self._open_local(now, wall)
        return Sync.LOCAL_WINDOW

    # -- transitions --------------------------------------------------------------------------

    def _on(self, event: Event) -> None:
        """Change phase as ``TRANSITIONS`` says; an event missing from it is a bug."""
        self.phase = TRANSITIONS[self.phase, event]

    def _admit(self, ticket: int, now: float) -> None:
        self._admissions += 1
        self._in_flight[ticket] = (now, self._admissions)
        if self.phase is Phase.PROBING:
            self._probe = ticket

    @property
    def _unreported_life(self) -> float:
        return self.window + self.margin

    def _reconciled(self) -> int:
        return max(0, self._remaining - len(self._unreported))

    def _server_now(self, now: float, wall: float) -> float:
        """The server's clock as best known: an earlier ``Date``'s offset, else the wall clock."""
        return wall if self._server_offset is None else now + self._server_offset

    def _withdraw(self, ticket: int) -> bool:
        queue = self._queue
        if queue is None:
            return False
        queue.deadlines.pop(ticket, None)
        for lines in queue.lines.values():
            for line in lines:
                if ticket in line:
                    del line[ticket]
                    return True
        return False

    def _earliest_waiter_deadline(self) -> float | None:
        if self._queue is None:
            return None
        heap, deadlines = self._queue.deadline_heap, self._queue.deadlines
        while heap and deadlines.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)  # granted, refused or withdrawn since
        return heap[0][0] if heap else None

    def _advance(self, now: float, wall: float) -> None:
        """Apply what time alone changes: expired leases and spends, then the window's end."""
        in_flight, unreported = self._in_flight, self._unreported
        while in_flight:
            ticket, (admitted_at, _) = next(iter(in_flight.items()))
            if admitted_at + self.lease > now:
                break
            # Lost by its holder: it may have reached the server, so it counts as spent.
            del in_flight[ticket]
            self.expired += 1
            unreported[ticket] = (now, self._admissions)
            if ticket == self._probe:
                self._probe = None
            self._on(Event.LOST)
        while unreported:
            ticket, (joined_at, _) = next(iter(unreported.items()))
            if joined_at + self._unreported_life > now:
                break
            del unreported[ticket]  # the window it reached has ended
        if self.phase is Phase.PROBING:
            return
        assert self._window_end is not None  # SERVER, LOCAL and CLOSED always know their end
        if now < self._window_end:
            return
        if self.phase is Phase.LOCAL:
            self._on(Event.END)
            unreported.clear()  # nothing reports in LOCAL windows: charged to the old one
            self._open_local(now, wall)
            return
        if self.phase is Phase.CLOSED and self._known_while_closed:
            self._known_while_closed = False
            assert self._server_end is not None
            if now < self._server_end:
                self._on(Event.END_KNOWN)
                self._window_end = self._server_end
                return
        self._on(Event.END)
        self._window_end = None

    def _next_boundary(self, now: float, wall: float) -> float:
        """The next window boundary: those the last known window implies, else the epoch's."""
        anchor = self._server_end if self._server_end is not None else self._window_end
        if anchor is None:
            return now + (self.window - wall % self.window)
        periods = (now - anchor) // self.window + 1
        return anchor + max(periods, 1) * self.window

    def _open_local(self, now: float, wall: float) -> None:
        """Start a local window of ``limit`` tokens, ending at the next aligned boundary."""
        self._window_end = self._next_boundary(now, wall)
        self._remaining = self._limit

    def _close(self, end: float) -> None:
        """Close the gate until ``end`` (or a later end already in force)."""
        if self.phase is Phase.CLOSED:
            assert self._window_end is not None
            end = max(end, self._window_end)
        self._on(Event.LIMITED)
        self._window_end = end
        self._known_while_closed = False

    def _close_blind(self, now: float, wall: float, retry_after: float | None) -> None:
        """A 429 without plausible headers: for ``Retry-After``, else until the window's end."""
        if retry_after is not None and not 0 <= retry_after <= MAX_RESET_WINDOWS * self.window:
            self.ignored_headers += 1
            retry_after = None
        if retry_after is not None:
            # The closure ends inside a server window, not at its end: forget the window, so
            # the probe's answer afterwards, naming that same window, is adopted as the
            # server's count instead of read as stale (which kept the slow start to its end).
            self._server_reset = self._server_end = None
            self._close(now + retry_after + self.margin)
            self._remaining = 0
            return
        if self.phase is Phase.PROBING:
            self._on(Event.BLIND_LIMITED)
            self._window_end = self._next_boundary(now, wall)
            self._known_while_closed = False
        else:
            self._on(Event.BLIND_LIMITED)
        self._remaining = 0

    def _resync(
        self, rate_limit: RateLimit, now: float, wall: float, *, closed: bool, number: int | None
    ) -> Sync:
        """Apply one report (rule 2); ``number`` is its request's admission number, if known."""
        self._headerless_probes = 0
        if number is not None and self._unreported:
            # This request was admitted after these spends: its count includes them (rule 5).
            for ticket, (_, admissions) in list(self._unreported.items()):
                if number > admissions:
                    del self._unreported[ticket]
        end, reset = self._window_of(rate_limit, now, wall)
        relation = self._compare(end, reset)
        if closed:
            # Rule 4: closed until the 429's own end, whatever window we believed current. A
            # same-window 429 keeps the earliest end any answer implied for the server window;
            # a later or an earlier ("stale") one becomes the window we know, so the probe's
            # answer after the closure, naming a later window, is adopted.
            if relation == 0 and self._server_end is not None:
                self._server_end = min(self._server_end, end)
            else:
                self._server_reset, self._server_end = reset, end
            self._close(end)
            self._remaining = 0
            self._learn_limit(rate_limit)
            return Sync.CLOSED
        phase = self.phase
        if relation > 0:
            # A later window: the server's count is the authority (rule 2).
            self._on(Event.LATER)
            self._server_reset, self._server_end = reset, end
            self._remaining = rate_limit.remaining
            self._learn_limit(rate_limit)
            if phase is Phase.CLOSED:
                self._known_while_closed = True  # the reopening needs no probe
            else:
                self._window_end = end
            return Sync.NEW_WINDOW
        if relation < 0 or phase is Phase.PROBING or phase is Phase.LOCAL:
            # An earlier window, or ours after it ended: its count says nothing about now.
            self._on(Event.EARLIER if relation < 0 else Event.SAME)
            if self.phase is Phase.PROBING:
                self._window_end = None
            return Sync.STALE
        self._on(Event.SAME)
        assert self._server_end is not None
        self._server_end = min(self._server_end, end)
        if phase is Phase.SERVER:
            self._window_end = self._server_end
        lowered = rate_limit.remaining < self._remaining
        self._remaining = min(self._remaining, rate_limit.remaining)
        self._learn_limit(rate_limit)
        return Sync.LOWERED if lowered else Sync.UNCHANGED

    def _learn_limit(self, rate_limit: RateLimit) -> None:
        self._limit = rate_limit.limit  # plausible: 1 .. MAX_HEADER_COUNT

    def _window_of(
        self, rate_limit: RateLimit, now: float, wall: float
    ) -> tuple[float, float | None]:
        """The local end of the answer's window, and its absolute Reset (``None``: a delta)."""
        reset = rate_limit.reset
        if rate_limit.reset_is_delta:
            return now + reset + self.margin, None
        date = rate_limit.server_date
        if date is not None:
            # Reset - Date: one clock, the server's; anchored on our monotonic clock (rule 2).
            self._server_offset = date - now
            return now + max(0.0, reset - date) + self.margin, reset
        if self._server_offset is not None:
            # No Date on this answer: the server's clock as an earlier Date placed it.
            return max(now, reset - self._server_offset) + self.margin, reset
        self.wall_clock_fallbacks += 1
        return now + max(0.0, reset - wall) + self.margin + NO_DATE_MARGIN, reset

    def _compare(self, end: float, reset: float | None) -> int:
        """Whether an answer's window is later (1), the same (0) or earlier (-1) than ours."""
        if self._server_end is None:
            return 1
        if reset is not None and self._server_reset is not None:
            difference = reset - self._server_reset
            tolerance = _RESET_TOLERANCE
        else:
            # A delta Reset names no window: compare the ends, a window apart at least.
            difference = end - self._server_end
            tolerance = self.window / 2
        if difference > tolerance:
            return 1
        return -1 if difference < -tolerance else 0

    def __repr__(self) -> str:
        return (
            f"Bucket(phase={self.phase.value}, limit={self._limit}, remaining={self._remaining}, "
            f"in_flight={len(self._in_flight)}, waiting={self.waiting})"
        )
