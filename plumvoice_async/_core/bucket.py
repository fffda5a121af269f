"""The quota bucket: one quota group of one account, as a pure state machine.

Nothing here reads a clock or waits: every method that depends on time takes ``now`` (the local
monotonic clock) and, where the server's headers or an epoch alignment need it, ``wall`` (the
local UNIX time). The shell (``_local_governor``) only sleeps and wakes; every number it acts on
comes from here. ``_redis`` re-states the same rules as Lua scripts.

What the server does (plum-api.md 1.3): fixed windows aligned to its own clock (every documented
``X-RateLimit-Reset`` is a multiple of 900 s); each response says ``Limit``, ``Remaining`` (after
counting this request) and ``Reset`` (absolute epoch seconds, server clock), plus ``Date`` (server
clock, 1 s resolution). Other processes and tools may spend the same quota.

Theory of operation
-------------------
A bucket is in one of three phases:

- ``PROBING``: the current server window is unknown (at start, and whenever the window we knew
  has ended). One request, the probe, goes out; its answer tells the window's ``Remaining`` and
  ``Reset``. Nobody else goes until an answer from the new window arrives, because another
  process may already have spent it (no thundering herd at the reset: governor.md rule 3).
- ``SERVER``: synchronised with the server's headers for window ``Reset``.
- ``LOCAL``: the server sent no headers (an error page, a proxy, an API that never sends them):
  count locally, ``limit`` per ``window``, on windows aligned to the last server window's end
  when one was ever known and to the local epoch otherwise (governor.md rule 5).

The rules, each a transition below:

1. ADMIT. Tokens grantable now = ``remaining - len(in_flight) - len(unreported)`` (``SERVER``,
   ``LOCAL``), or one probe (``PROBING``, if ``limit - len(in_flight) > 0``). Every request in
   flight is subtracted because we cannot know whether the server has counted it yet: the error
   errs on the safe side by at most the number in flight, and vanishes as their answers arrive.
   Completed requests are never subtracted again: the server's ``Remaining`` already counts
   them, and counting them twice would leave quota idle.
2. SETTLE (an answer with headers). The window's local end is anchored on the monotonic clock at
   receipt: ``now + (Reset - Date) + margin``. ``Reset - Date`` reads one clock, the server's, so
   client clock skew cannot shift it; ``Date`` is truncated to the second and stamped before the
   answer left, so it over-states the time left and is never early. Then:
   a later window than ours starts a new window (``remaining`` = the reported value); the same
   window takes ``remaining = min(remaining, reported)`` (a late, stale answer never raises it)
   and the earliest end any of its answers implies; an earlier window, or ours after it ended,
   is ignored. A ``Reset`` below ``DELTA_RESET_THRESHOLD`` is seconds from the answer
   (plum-api.md 6.1). No ``Date``: use the server clock's offset learned from an earlier
   ``Date``; with none ever seen, the local wall clock plus ``NO_DATE_MARGIN``.
3. ROLL OVER. When ``now`` reaches the window's end, go back to ``PROBING`` (or open the next
   ``LOCAL`` window when the server sends no headers). Requests still in flight across the
   boundary stay subtracted, so they are charged to the new window until their answers say
   otherwise.
4. CLOSE (a 429). ``remaining = 0`` until that answer's ``Reset``, for every waiter. The
   request that got it re-queues at the front (``enqueue(front=True)``): quota exhaustion is
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
   theirs is cleared at the window's end. A probe
   answered without headers opens a ``LOCAL`` window, so a server without headers is not
   serialised behind one probe after another.
6. WAIT. Waiters queue FIFO, re-queued 429s ahead of first attempts. ``dispatch`` hands tokens
   to the head of the queue while any are grantable, and refuses at once a waiter whose
   ``max_wait`` ends before its forecast turn (``forecast``). ``next_deadline`` is the one
   instant the shell must wake at without an answer arriving (a window end or a lease expiry).

Invariants (checked by tests/core/test_bucket.py, including a Hypothesis state machine):

- Requests admitted into one server window never exceed its limit once the window's first
  answer is known: no 429 comes from our own traffic.
- Within one window ``remaining`` only falls, and ``remaining - len(unreported)`` never exceeds
  what the server has left; ``len(in_flight)`` only counts admitted, unanswered, unreleased,
  unexpired tokens; every token taken is settled, released or expired.
- Tokens go to waiters in queue order, and only while ``grantable() > 0``: if waiters exist
  after a ``dispatch``, no token is grantable, and ``next_deadline()`` says when to look again
  (nobody waits forever). Once every answer is in, ``grantable()`` is what the server has
  left, less at most one token per unreported spend (rule 5) for at most ``window + margin``:
  the price of never overshooting when an answer carries no count.
- A window's local end is never before the server's end plus ``margin``.
"""

from __future__ import annotations

import itertools
from enum import StrEnum

import attrs

from .ratelimit import RateLimit

__all__ = [
    "NO_DATE_MARGIN",
    "Bucket",
    "BucketView",
    "Dispatch",
    "Phase",
    "Refusal",
    "Sync",
]

NO_DATE_MARGIN = 2.0
"""Extra seconds added when a ``Reset`` must be read against the local wall clock (no ``Date``
ever seen): the client's clock may be off the server's, and nothing else bounds it."""

_RESET_TOLERANCE = 0.5
"""Absolute ``Reset`` values are whole seconds: two within this distance name the same window."""


class Phase(StrEnum):
    """What the bucket knows about the current window."""

    PROBING = "probing"
    """Window unknown: one probe goes first, the rest after its answer."""
    SERVER = "server"
    """Synchronised with the server's ``X-RateLimit-*`` headers."""
    LOCAL = "local"
    """The server sent no headers: counting locally, ``limit`` per ``window``."""


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
    """Monotonic instant the waiter could have expected its token."""


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
    in_flight: int
    waiting: int
    remaining: int | None
    """The server's ``Remaining`` as reconciled (``None`` while probing)."""
    reset: float | None
    """The absolute ``Reset`` of the server window in force (``None``: unknown, delta, local)."""


_NOTHING = Dispatch()


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
    """

    __slots__ = (
        "_admissions",
        "_deadlines",
        "_in_flight",
        "_limit",
        "_probe",
        "_remaining",
        "_retries",
        "_server_end",
        "_server_offset",
        "_server_reset",
        "_speaks_headers",
        "_tickets",
        "_unreported",
        "_waiters",
        "_window_end",
        "expired",
        "lease",
        "margin",
        "phase",
        "wall_clock_fallbacks",
        "window",
    )

    def __init__(
        self, limit: int, window: float, *, margin: float = 1.0, lease: float | None = None
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit!r}")
        if window <= 0:
            raise ValueError(f"window must be positive seconds, got {window!r}")
        if margin < 0:
            raise ValueError(f"margin must be >= 0 seconds, got {margin!r}")
        self.window = float(window)
        self.margin = float(margin)
        self.lease = 2.0 * self.window if lease is None else float(lease)
        self.phase = Phase.PROBING
        self.expired = 0
        """Tokens that outlived their lease (counted as spent)."""
        self.wall_clock_fallbacks = 0
        """Answers whose ``Reset`` was read on the local wall clock (no ``Date`` ever seen)."""
        self._limit = limit
        self._remaining = 0
        self._window_end: float | None = None
        # The last server window adopted: its Reset (None for a delta Reset) and local end.
        self._server_reset: float | None = None
        self._server_end: float | None = None
        # A lower bound of (server clock - local monotonic clock), from the latest Date.
        self._server_offset: float | None = None
        self._speaks_headers = True
        self._probe: int | None = None
        # ticket -> (admitted at (monotonic), admission number); dicts keep insertion order, so
        # the oldest comes first.
        self._in_flight: dict[int, tuple[float, int]] = {}
        self._admissions = 0
        # Spent, not yet in any Remaining (rule 5): ticket -> (when it joined, the number of
        # admissions then: a report from any later admission includes it).
        self._unreported: dict[int, tuple[float, int]] = {}
        # Two FIFO queues as ordered sets: re-queued 429s go before first attempts.
        self._retries: dict[int, None] = {}
        self._waiters: dict[int, None] = {}
        self._deadlines: dict[int, float] = {}
        self._tickets = itertools.count(1)

    # -- reading ------------------------------------------------------------------------------

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def waiting(self) -> int:
        return len(self._retries) + len(self._waiters)

    @property
    def remaining(self) -> int | None:
        """What the server has left as reconciled (rule 5), ``None`` while probing."""
        return None if self.phase is Phase.PROBING else self._reconciled()

    @property
    def window_end(self) -> float | None:
        """The monotonic instant the current window ends, ``None`` while probing."""
        return None if self.phase is Phase.PROBING else self._window_end

    @property
    def head(self) -> int | None:
        """The ticket first in line, or ``None`` when nobody waits."""
        for queue in (self._retries, self._waiters):
            for ticket in queue:
                return ticket
        return None

    def grantable(self) -> int:
        """Tokens that may be handed out now (rule 1); never negative."""
        if self.phase is Phase.PROBING:
            outstanding = len(self._in_flight) + len(self._unreported)
            return 1 if self._probe is None and self._limit - outstanding > 0 else 0
        return max(0, self._remaining - len(self._in_flight) - len(self._unreported))

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
        )

    def next_deadline(self) -> float | None:
        """When the shell must call ``dispatch`` although no answer arrived, or ``None``.

        Only while somebody waits: at the window's end (new tokens), when the oldest token's
        lease expires, or when the oldest unreported spend lapses (either stops blocking the
        queue). Always later than the ``now`` of the last ``dispatch``, which already rolled
        over everything due.
        """
        if not (self._retries or self._waiters):
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
        return min(deadlines) if deadlines else None

    def forecast(self, now: float, position: int) -> float:
        """When the waiter at queue ``position`` (0 = head) can expect a token (monotonic).

        Optimistic within the current window (in-flight requests the server already counted
        give their tokens back when answered), exact about windows: the waiters beyond what
        this window can still give wait for later windows of ``limit`` tokens each. Used only
        to refuse a ``max_wait`` at once; it is re-checked at every ``dispatch``, so an
        optimistic forecast is corrected within one answer.
        """
        limit = self._limit
        if self.phase is Phase.PROBING:
            # The window is unknown until the probe answers; it may end any moment.
            ahead = position - max(0, limit - len(self._in_flight) - len(self._unreported))
            return now if ahead < 0 else now + (ahead // limit) * self.window
        if self.phase is Phase.SERVER:
            reclaimable = self._remaining
        else:
            reclaimable = max(0, self._remaining - len(self._in_flight) - len(self._unreported))
        ahead = position - reclaimable
        if ahead < 0:
            return now
        assert self._window_end is not None  # SERVER and LOCAL always know their end
        return max(now, self._window_end) + (ahead // limit) * self.window

    # -- queueing and admitting -----------------------------------------------------------------

    def try_admit(self, now: float, wall: float) -> int | None:
        """Admit at once when nobody waits and a token is grantable: the fast path."""
        if self._retries or self._waiters:
            return None
        self._advance(now, wall)
        if self.grantable() <= 0:
            return None
        ticket = next(self._tickets)
        self._admit(ticket, now)
        return ticket

    def enqueue(self, now: float, *, front: bool = False, max_wait: float | None = None) -> int:
        """Join the queue; ``front`` for a request re-queued after its 429 (rule 4)."""
        ticket = next(self._tickets)
        (self._retries if front else self._waiters)[ticket] = None
        if max_wait is not None:
            self._deadlines[ticket] = now + max_wait
        return ticket

    def dispatch(self, now: float, wall: float) -> Dispatch:
        """Hand tokens to the head of the queue while any are grantable; refuse lost causes."""
        if not (self._retries or self._waiters):
            return _NOTHING
        self._advance(now, wall)
        granted: list[int] = []
        while self.grantable() > 0:
            ticket = self._pop_head()
            if ticket is None:
                break
            self._deadlines.pop(ticket, None)
            self._admit(ticket, now)
            granted.append(ticket)
        refused: list[Refusal] = []
        if self._deadlines:
            position = 0
            for ticket in [*self._retries, *self._waiters]:
                deadline = self._deadlines.get(ticket)
                if deadline is not None:
                    ready_at = self.forecast(now, position)
                    if ready_at > deadline:
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
    ) -> Sync:
        """Reconcile the bucket with the answer to ``ticket`` (``status=None``: no answer).

        The answer's headers count even for a ticket that expired or is unknown: they are the
        server's word. Only the token itself is not charged twice.
        """
        self._advance(now, wall)
        admitted = self._in_flight.pop(ticket, None)
        if admitted is not None and ticket == self._probe:
            self._probe = None
        if rate_limit is not None:
            # Its own report includes it, if it was counted as lost before (rule 5).
            self._unreported.pop(ticket, None)
            number = None if admitted is None else admitted[1]
            return self._resync(rate_limit, now, wall, closed=status == 429, number=number)
        if admitted is None:
            return Sync.UNKNOWN_TICKET
        if status == 429:
            # A 429 without headers: closed until the end of the window we know, or the next
            # aligned boundary when we know none.
            if self.phase is Phase.PROBING:
                self._open_local(now, wall)
            self._remaining = 0
            return Sync.CLOSED
        self._unreported[ticket] = (now, self._admissions)
        if self.phase is not Phase.PROBING:
            return Sync.COUNTED
        if status is None:
            return Sync.NO_ANSWER
        # The probe was answered, without headers: this server does not send them (now).
        self._speaks_headers = False
        self._open_local(now, wall)
        return Sync.LOCAL_WINDOW

    # -- transitions --------------------------------------------------------------------------

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

    def _pop_head(self) -> int | None:
        for queue in (self._retries, self._waiters):
            for ticket in queue:
                del queue[ticket]
                return ticket
        return None

    def _withdraw(self, ticket: int) -> bool:
        self._deadlines.pop(ticket, None)
        for queue in (self._retries, self._waiters):
            if ticket in queue:
                del queue[ticket]
                return True
        return False

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
        while unreported:
            ticket, (joined_at, _) = next(iter(unreported.items()))
            if joined_at + self._unreported_life > now:
                break
            del unreported[ticket]  # the window it reached has ended
        if self.phase is Phase.PROBING:
            return
        assert self._window_end is not None  # SERVER and LOCAL always know their end
        if now < self._window_end:
            return
        if self._speaks_headers:
            self.phase = Phase.PROBING
            self._window_end = None
        else:
            unreported.clear()  # nothing reports in LOCAL windows: charged to the old one
            self._open_local(now, wall)

    def _open_local(self, now: float, wall: float) -> None:
        """Start a local window of ``limit`` tokens, ending at the next aligned boundary."""
        anchor = self._server_end if self._server_end is not None else self._window_end
        if anchor is None:
            end = now + (self.window - wall % self.window)
        else:
            # The boundaries the last known window implies: anchor + k * window.
            periods = (now - anchor) // self.window + 1
            end = anchor + max(periods, 1) * self.window
        self.phase = Phase.LOCAL
        self._window_end = end
        self._remaining = self._limit

    def _resync(
        self, rate_limit: RateLimit, now: float, wall: float, *, closed: bool, number: int | None
    ) -> Sync:
        """Apply one report (rule 2); ``number`` is its request's admission number, if known."""
        self._speaks_headers = True
        if number is not None and self._unreported:
            # This request was admitted after these spends: its count includes them (rule 5).
            for ticket, (_, admissions) in list(self._unreported.items()):
                if number > admissions:
                    del self._unreported[ticket]
        end, reset = self._window_of(rate_limit, now, wall)
        reported = 0 if closed else rate_limit.remaining
        relation = self._compare(end, reset)
        if relation > 0:
            # A later window: the server's count is the authority (rule 2).
            self.phase = Phase.SERVER
            self._server_reset, self._server_end = reset, end
            self._window_end = end
            self._remaining = reported
            if rate_limit.limit > 0:
                self._limit = rate_limit.limit
            if end <= now:
                self._advance(now, wall)
            return Sync.CLOSED if closed else Sync.NEW_WINDOW
        if relation < 0 or self.phase is not Phase.SERVER:
            # An earlier window, or ours after it ended: its count says nothing about now.
            return Sync.STALE
        assert self._server_end is not None
        self._server_end = self._window_end = min(self._server_end, end)
        lowered = reported < self._remaining
        self._remaining = min(self._remaining, reported)
        if rate_limit.limit > 0:
            self._limit = rate_limit.limit
        if self._server_end <= now:
            self._advance(now, wall)
        if closed:
            return Sync.CLOSED
        return Sync.LOWERED if lowered else Sync.UNCHANGED

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
