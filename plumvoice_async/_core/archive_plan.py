"""The archive's planner: which time ranges to read, which detailed logs to fetch or give up on.

Pure: every instant is an int UNIX second passed in; nothing here reads a clock or a database.
``archive/_sync.py`` asks, does the I/O and stores the answers.

Rules (plum-api.md 2.2-2.4 and api-contract.md, "Export and the archive"):

1. **Coverage.** For each (account, number) the archive remembers ``[low, high]``: every call
   that *started* in it was read by a walk that finished. ``high`` is the watermark. A walk in
   progress is remembered as a ``Walk`` (its range, and the offset and last session id of the
   last page stored with it), so a killed run resumes it instead of starting over.
2. **Late calls.** Plum lists a call once it has ended, so a call that started just before
   ``high`` may appear after the walk that covered its second. Each run therefore re-reads
   ``overlap`` seconds before ``high``; upserts make the re-read harmless.
3. **Order of ranges.** A walk interrupted earlier is finished first (same range, from its
   offset); then older days the caller asks for with ``since`` (a backfill, ``[since, low)``);
   then ``[high - overlap, now]``. Each finished walk widens ``[low, high]``; the ranges touch,
   so coverage stays one interval.
4. **Detailed logs** exist for calls that started in the last 5 days only. A stored call with
   ``log`` true whose log is not archived yet is *pending*; one that started before
   ``now - 5 days + safety`` is *expired* (the safety margin covers the time a request takes to
   arrive). Pending calls are fetched by ``all_logs`` ranges, oldest first so the logs closest
   to expiry go first, never one request per call: consecutive pending calls share a range
   unless more than ``max_gap`` seconds separate them (a long gap is mostly calls whose logs are
   already archived, which a range over it would download again).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from .params import DETAILS_RETENTION_SECONDS

__all__ = [
    "DEFAULT_MAX_GAP",
    "DEFAULT_OVERLAP",
    "EXPIRY_SAFETY",
    "Coverage",
    "DetailsPlan",
    "PendingLog",
    "ReadRange",
    "Walk",
    "expires_at",
    "expiring_within",
    "finish_walk",
    "plan_details",
    "plan_reads",
]

DEFAULT_OVERLAP = 3_600
"""Seconds re-read before the watermark: calls last minutes, and Plum lists a call once it ended."""
DEFAULT_MAX_GAP = 3_600
"""Seconds between two pending logs beyond which they are fetched by separate ranges."""
EXPIRY_SAFETY = 60
"""Seconds before its 5-day limit a log counts as expired: a request for it could arrive late."""


@attrs.frozen
class Walk:
    """A walk of ``[start, end]`` stored up to ``offset`` (``after`` = last session id stored)."""

    start: int
    end: int
    offset: int = 0
    after: str | None = None


@attrs.frozen
class Coverage:
    """What one (account, number) has read: ``[low, high]`` complete, plus a walk in progress.

    ``low``/``high`` are ``None`` before the first walk finished.
    """

    low: int | None = None
    high: int | None = None
    walk: Walk | None = None


@attrs.frozen
class ReadRange:
    """One walk to make: ``calls`` from ``start`` to ``end`` (both inclusive), from ``offset``."""

    start: int
    end: int
    offset: int = 0
    after: str | None = None

    @property
    def walk(self) -> Walk:
        return Walk(self.start, self.end, self.offset, self.after)


def plan_reads(coverage: Coverage, *, since: int | None, now: int, overlap: int) -> list[ReadRange]:
    """The walks to make, in order (rules 1-3).

    Args:
        coverage: what was read before.
        since: the oldest start second wanted; ``None`` = no backfill (on a first run the
            caller chooses a default).
        now: the current UNIX second; the newest range ends here.
        overlap: seconds re-read before the watermark (rule 2).

    Raises:
        ValueError: ``overlap`` < 0, or no ``since`` for an archive that read nothing yet.
    """
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0 seconds, got {overlap}")
    ranges: list[ReadRange] = []
    low, high = coverage.low, coverage.high
    walk = coverage.walk
    if walk is not None:
        ranges.append(ReadRange(walk.start, walk.end, walk.offset, walk.after))
        low = walk.start if low is None else min(low, walk.start)
        high = walk.end if high is None else max(high, walk.end)
    if low is None or high is None:
        if since is None:
            raise ValueError("a first sync needs `since`: nothing was read yet")
        if since <= now:
            ranges.append(ReadRange(since, now))
        return ranges
    if since is not None and since < low:
        ranges.append(ReadRange(since, low - 1))
    fresh_start = max(high - overlap, low if since is None else min(low, since))
    if fresh_start <= now:
        ranges.append(ReadRange(fresh_start, now))
    return ranges


def finish_walk(coverage: Coverage, walk: Walk) -> Coverage:
    """The coverage once ``walk`` has been read to its end (it touches the covered interval)."""
    low = walk.start if coverage.low is None else min(coverage.low, walk.start)
    high = walk.end if coverage.high is None else max(coverage.high, walk.end)
    return Coverage(low, high, None)


@attrs.frozen
class PendingLog:
    """A stored call whose detailed log is not archived yet: its id and start second."""

    session_id: str
    start: int


@attrs.frozen
class DetailsPlan:
    """``expired``: give these up (mark them, never ask again); ``ranges``: ``all_logs`` walks,
    oldest first, each ``(start, end)`` inclusive."""

    expired: list[str]
    ranges: list[tuple[int, int]]


def expires_at(start: int) -> int:
    """The second after which a call that started at ``start`` counts as expired (rule 4)."""
    return start + DETAILS_RETENTION_SECONDS - EXPIRY_SAFETY


def plan_details(pending: Iterable[PendingLog], *, now: int, max_gap: int) -> DetailsPlan:
    """Which pending logs to give up and which ``all_logs`` ranges fetch the rest (rule 4).

    ``pending`` may come in any order; the plan is oldest first.

    Raises:
        ValueError: ``max_gap`` < 0.
    """
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0 seconds, got {max_gap}")
    expired: list[str] = []
    live: list[int] = []
    for log in sorted(pending, key=lambda log: (log.start, log.session_id)):
        if now >= expires_at(log.start):
            expired.append(log.session_id)
        else:
            live.append(log.start)
    ranges: list[tuple[int, int]] = []
    for start in live:
        if ranges and start - ranges[-1][1] <= max_gap:
            ranges[-1] = (ranges[-1][0], start)
        else:
            ranges.append((start, start))
    return DetailsPlan(expired, ranges)


def expiring_within(starts: Sequence[int], *, now: int, within: int) -> int:
    """How many of these pending logs (by start second) expire within ``within`` seconds."""
    return sum(1 for start in starts if now < expires_at(start) <= now + within)
