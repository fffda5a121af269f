"""The archive's planner: ranges to read, logs to fetch and logs given up, with no I/O."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plumvoice_async._core.archive_plan import (
    EXPIRY_SAFETY,
    Coverage,
    PendingLog,
    ReadRange,
    Walk,
    expires_at,
    expiring_within,
    finish_walk,
    plan_details,
    plan_reads,
)
from plumvoice_async._core.params import DETAILS_RETENTION_SECONDS

NOW = 1_700_000_000
DAY = 86_400


def test_a_first_run_reads_from_since_to_now():
    assert plan_reads(Coverage(), since=NOW - DAY, now=NOW, overlap=60) == [
        ReadRange(NOW - DAY, NOW)
    ]


def test_a_first_run_without_since_is_refused():
    with pytest.raises(ValueError, match="since"):
        plan_reads(Coverage(), since=None, now=NOW, overlap=60)


def test_a_later_run_rereads_the_overlap_before_the_watermark():
    coverage = Coverage(NOW - DAY, NOW - 600)
    assert plan_reads(coverage, since=None, now=NOW, overlap=60) == [ReadRange(NOW - 660, NOW)]


def test_the_overlap_never_reaches_before_what_was_asked_for():
    coverage = Coverage(NOW - 100, NOW - 50)
    assert plan_reads(coverage, since=None, now=NOW, overlap=3_600) == [ReadRange(NOW - 100, NOW)]


def test_an_older_since_backfills_the_days_before_low_first():
    coverage = Coverage(NOW - DAY, NOW - 600)
    assert plan_reads(coverage, since=NOW - 3 * DAY, now=NOW, overlap=60) == [
        ReadRange(NOW - 3 * DAY, NOW - DAY - 1),
        ReadRange(NOW - 660, NOW),
    ]


def test_an_interrupted_walk_is_resumed_first_from_its_offset():
    walk = Walk(NOW - DAY, NOW - 600, offset=20_000, after="1;2;3")
    ranges = plan_reads(Coverage(walk=walk), since=NOW - DAY, now=NOW, overlap=60)
    assert ranges == [ReadRange(NOW - DAY, NOW - 600, 20_000, "1;2;3"), ReadRange(NOW - 660, NOW)]


def test_a_negative_overlap_is_refused():
    with pytest.raises(ValueError, match="overlap"):
        plan_reads(Coverage(1, 2), since=None, now=NOW, overlap=-1)


def test_finishing_a_walk_widens_the_coverage():
    assert finish_walk(Coverage(), Walk(10, 20, 5, "x")) == Coverage(10, 20)
    assert finish_walk(Coverage(10, 20), Walk(15, 40)) == Coverage(10, 40)
    assert finish_walk(Coverage(10, 20), Walk(0, 9)) == Coverage(0, 20)


@settings(max_examples=200, deadline=None)
@given(
    first_since=st.integers(0, 10 * DAY),
    runs=st.lists(
        st.tuples(
            st.integers(0, DAY),  # time passing before the run
            st.one_of(st.none(), st.integers(0, 10 * DAY)),  # since
            st.one_of(st.none(), st.integers(0, 5)),  # index of the range the run dies in
        ),
        max_size=8,
    ),
    overlap=st.integers(0, 7_200),
)
def test_coverage_stays_one_interval_from_the_oldest_since_to_the_last_complete_run(
    first_since, runs, overlap
):
    """Runs interrupted anywhere never leave a hole: what is covered was all read."""
    now = 10 * DAY + 1
    coverage = Coverage()
    read: list[tuple[int, int]] = []  # every range read to its end
    oldest = first_since
    plan = plan_reads(coverage, since=first_since, now=now, overlap=overlap)
    for walk_range in plan:
        coverage = Coverage(coverage.low, coverage.high, walk_range.walk)
        coverage = finish_walk(coverage, walk_range.walk)
        read.append((walk_range.start, walk_range.end))
    last_complete = now
    for elapsed, since, dies_in in runs:
        now += elapsed
        plan = plan_reads(coverage, since=since, now=now, overlap=overlap)
        for index, walk_range in enumerate(plan):
            if coverage.walk is None and coverage.low is not None and coverage.high is not None:
                # Every planned range touches what is covered, so finishing it leaves no hole.
                assert walk_range.start <= coverage.high + 1
                assert walk_range.end >= coverage.low - 1
            if index == dies_in:
                # Killed mid-walk: the walk is remembered, nothing after it ran.
                coverage = Coverage(coverage.low, coverage.high, walk_range.walk)
                break
            coverage = finish_walk(coverage, walk_range.walk)
            read.append((walk_range.start, walk_range.end))
        else:
            last_complete = now
            oldest = oldest if since is None else min(oldest, since)  # asked for and done
    if coverage.walk is not None:
        for walk_range in plan_reads(coverage, since=None, now=now, overlap=overlap):
            coverage = finish_walk(coverage, walk_range.walk)
            read.append((walk_range.start, walk_range.end))
        last_complete = now
    assert coverage.high == last_complete
    assert coverage.walk is None
    assert coverage.low is not None
    assert coverage.low <= oldest  # every completed run's since is covered
    # The union of the ranges read is exactly [low, high], no hole.
    assert min(start for start, _ in read) == coverage.low
    reach = coverage.low - 1
    for start, end in sorted(read):
        assert start <= reach + 1, "a hole in what was read"
        reach = max(reach, end)
    assert reach == last_complete


# --- Detailed logs -------------------------------------------------------------------------


def test_logs_past_five_days_less_the_safety_margin_are_expired():
    edge = NOW - DETAILS_RETENTION_SECONDS + EXPIRY_SAFETY
    pending = [PendingLog("old", edge), PendingLog("young", edge + 1)]
    plan = plan_details(pending, now=NOW, max_gap=60)
    assert plan.expired == ["old"]
    assert plan.ranges == [(edge + 1, edge + 1)]


def test_pending_logs_share_ranges_oldest_first_split_at_long_gaps():
    pending = [PendingLog(f"c{start}", start) for start in (NOW - 10, NOW - 500, NOW - 480)]
    plan = plan_details(pending, now=NOW, max_gap=60)
    assert plan.expired == []
    assert plan.ranges == [(NOW - 500, NOW - 480), (NOW - 10, NOW - 10)]


def test_a_thousand_pending_logs_close_together_are_one_range():
    pending = [PendingLog(f"c{i}", NOW - 10_000 + i) for i in range(1_000)]
    assert plan_details(pending, now=NOW, max_gap=60).ranges == [(NOW - 10_000, NOW - 9_001)]


def test_logs_expiring_within_the_hour_are_counted():
    soon = NOW - DETAILS_RETENTION_SECONDS + EXPIRY_SAFETY + 1_800
    later = soon + 7_200
    gone = NOW - DETAILS_RETENTION_SECONDS
    assert expiring_within([soon, later, gone], now=NOW, within=3_600) == 1
    assert expires_at(soon) - NOW == 1_800


@settings(max_examples=300, deadline=None)
@given(
    starts=st.lists(st.integers(NOW - 7 * DAY, NOW), max_size=60, unique=True),
    max_gap=st.integers(0, 10_000),
)
def test_every_live_log_is_in_exactly_one_range_and_none_expired_is_asked_for(starts, max_gap):
    pending = [PendingLog(f"id{start}", start) for start in starts]
    plan = plan_details(reversed(pending), now=NOW, max_gap=max_gap)
    live = sorted(start for start in starts if expires_at(start) > NOW)
    assert sorted(plan.expired) == sorted(f"id{s}" for s in starts if expires_at(s) <= NOW)
    assert plan.ranges == sorted(plan.ranges)
    for (_, end), (start, _) in zip(plan.ranges, plan.ranges[1:], strict=False):
        assert start - end > max_gap  # split only at long gaps...
    for start in live:
        assert sum(lo <= start <= hi for lo, hi in plan.ranges) == 1
    for lo, hi in plan.ranges:
        inside = [start for start in live if lo <= start <= hi]
        assert inside[0] == lo
        assert inside[-1] == hi
        assert all(b - a <= max_gap for a, b in itertools.pairwise(inside))  # ...only
        assert all(expires_at(start) > NOW for start in inside)
    assert len(plan.ranges) <= len(live)


def test_a_negative_gap_is_refused():
    with pytest.raises(ValueError, match="max_gap"):
        plan_details([], now=NOW, max_gap=-1)
