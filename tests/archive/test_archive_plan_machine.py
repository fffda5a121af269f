"""The archive's planner under generated histories: runs at moving times, with and without a
``since``, each killed after any number of pages; coverage never claims a call not stored."""

from __future__ import annotations

import bisect

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from plumvoice_async._core.archive_plan import Coverage, Walk, finish_walk, plan_reads
from plumvoice_async.archive._sync import _decode, _encode

PAGE = 3
OVERLAP = 50


class ArchiveHistory(RuleBasedStateMachine):
    """Calls start at generated seconds and are listed once ``now`` reaches them; a walk reads
    a range's calls in order, ``PAGE`` at a time, storing each page with its checkpoint (the
    coverage goes through its JSON form, as in the database)."""

    @initialize(starts=st.lists(st.integers(0, 2_000), max_size=60))
    def setup(self, starts: list[int]) -> None:
        self.starts = sorted(set(starts))
        self.now = 1_000
        self.state: str | None = None
        self.stored: set[int] = set()
        self.asked: int | None = None  # the oldest since of a run that finished

    def listed(self, start: int, end: int) -> list[int]:
        low = bisect.bisect_left(self.starts, start)
        high = bisect.bisect_right(self.starts, min(end, self.now))
        return self.starts[low:high]

    @rule(seconds=st.integers(0, 400))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds

    @rule(
        since=st.none() | st.integers(0, 2_000),
        killed_after=st.none() | st.integers(0, 6),
    )
    def run(self, since: int | None, killed_after: int | None) -> None:
        coverage = Coverage() if self.state is None else _decode(self.state)
        if since is not None and since > self.now:
            return  # refused by Archive.sync
        if since is None and coverage == Coverage():
            since = max(0, self.now - 500)  # the first run's default
        pages = 0
        for read in plan_reads(coverage, since=since, now=self.now, overlap=OVERLAP):
            rows = self.listed(read.start, read.end)
            offset = read.offset
            while offset < len(rows):
                if killed_after is not None and pages == killed_after:
                    return
                page = rows[offset : offset + PAGE]
                offset += len(page)
                self.stored.update(page)
                walk = Walk(read.start, read.end, offset, str(page[-1]))
                self.state = _encode(attrs.evolve(coverage, walk=walk))
                pages += 1
            coverage = finish_walk(coverage, read.walk)
            self.state = _encode(coverage)
        if since is not None:
            self.asked = since if self.asked is None else min(self.asked, since)
        assert coverage.walk is None
        assert coverage.high == self.now

    @invariant()
    def coverage_claims_only_stored_calls(self) -> None:
        if self.state is None:
            return
        coverage = _decode(self.state)
        if coverage.low is None or coverage.high is None:
            return
        wanted = set(self.listed(coverage.low, coverage.high))
        assert wanted <= self.stored, sorted(wanted - self.stored)

    @invariant()
    def a_finished_run_covers_what_was_asked(self) -> None:
        if self.asked is None or self.state is None:
            return
        coverage = _decode(self.state)
        assert coverage.low is not None
        assert coverage.low <= self.asked


TestArchiveHistory = ArchiveHistory.TestCase
TestArchiveHistory.settings = settings(
    max_examples=300,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
