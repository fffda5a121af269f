"""The bucket's rules, as plain synchronous calls (no clock, no event loop)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from plumvoice_async._core.bucket import (
    NO_DATE_MARGIN,
    NO_HEADER_PROOF,
    PRIORITIES,
    Bucket,
    Phase,
    Sync,
)
from plumvoice_async._core.ratelimit import RateLimit

LIMIT, WINDOW, MARGIN = 10, 60.0, 1.0
RESET = 1_700_000_040.0
"""A server window end (a multiple of 60)."""
NOW = 500.0
"""The local monotonic clock: unrelated to any wall clock."""
DATE = RESET - 30.0
"""The server's clock when it answered: 30 s before the reset."""


def answer(remaining: int, *, reset: float = RESET, date: float | None = DATE) -> RateLimit:
    return RateLimit(LIMIT, remaining, reset, date)


def bucket(**kwargs: Any) -> Bucket:
    return Bucket(LIMIT, WINDOW, margin=MARGIN, **kwargs)


def synced(remaining: int = 9, *, reset: float = RESET, reserve: int = 0) -> Bucket:
    """A bucket whose probe was answered with ``remaining`` for window ``reset``."""
    b = bucket(reserve=reserve)
    probe = b.try_admit(NOW, DATE)
    assert probe is not None
    b.settle(probe, NOW, DATE, status=200, rate_limit=answer(remaining, reset=reset))
    return b


def admit(b: Bucket, now: float = NOW, wall: float = DATE) -> int:
    ticket = b.try_admit(now, wall)
    assert ticket is not None, "expected a token"
    return ticket


# -- admit ----------------------------------------------------------------------------------------


def test_a_fresh_bucket_lets_one_probe_go_and_holds_the_rest_for_its_answer():
    b = bucket()
    assert b.try_admit(NOW, DATE) is not None
    assert b.try_admit(NOW, DATE) is None
    view = b.view(NOW, DATE)
    assert (view.phase, view.grantable, view.in_flight, view.remaining) == (
        Phase.PROBING,
        0,
        1,
        None,
    )


@pytest.mark.parametrize(
    ("admitted", "reported", "grantable"),
    [
        (1, 9, 9),  # the answered request was the only one out: the server's word stands
        (4, 9, 6),  # three more may or may not be counted yet: assume they are not
        (9, 8, 0),
        (3, 0, 0),  # never negative
    ],
)
def test_grantable_is_remaining_minus_every_request_in_flight(admitted, reported, grantable):
    b = synced(remaining=9)
    tickets = [admit(b) for _ in range(admitted)]
    b.settle(tickets[0], NOW, DATE, status=200, rate_limit=answer(reported))
    assert b.grantable() == grantable


def test_completed_requests_are_not_subtracted_again():
    b = synced(remaining=9)
    for reported in (8, 7, 6, 5):
        b.settle(admit(b), NOW, DATE, status=200, rate_limit=answer(reported))
    assert (b.grantable(), b.in_flight) == (5, 0)


def test_requests_in_flight_hold_back_the_probe_of_a_new_window():
    b = synced(remaining=LIMIT)  # e.g. the probe's own answer was lost and another said 10
    tickets = [admit(b) for _ in range(LIMIT)]
    after_reset = NOW + 31.0 + MARGIN
    assert b.view(after_reset, RESET + 1).phase is Phase.PROBING
    assert b.try_admit(after_reset, RESET + 1) is None  # 10 in flight + a probe would be 11
    b.release(tickets[0])
    assert b.try_admit(after_reset, RESET + 1) is not None


# -- settle ---------------------------------------------------------------------------------------

SAME_WINDOW = [
    # (what, counts reported one after another, remaining after, what the last did)
    ("a later answer lowers remaining", (9, 5), 5, Sync.LOWERED),
    ("a stale answer arriving late never raises it", (5, 8), 5, Sync.UNCHANGED),
    ("equal counts change nothing", (6, 6), 6, Sync.UNCHANGED),
]


@pytest.mark.parametrize(("what", "counts", "remaining", "sync"), SAME_WINDOW)
def test_within_one_window_remaining_only_falls(what, counts, remaining, sync):
    b = synced(remaining=counts[0])
    ticket = admit(b)
    sync = b.settle(ticket, NOW + 1, DATE, status=200, rate_limit=answer(counts[1]))
    assert (sync, b.remaining) == (sync, remaining), what


WINDOWS = [
    # (what, first Reset, second Reset, remaining after, what the second did)
    ("a later Reset starts a new window", RESET, RESET + WINDOW, 7, Sync.NEW_WINDOW),
    ("an earlier window's count is ignored", RESET + WINDOW, RESET, 3, Sync.STALE),
]


@pytest.mark.parametrize(("what", "first", "second", "remaining", "sync"), WINDOWS)
def test_answers_from_other_windows(what, first, second, remaining, sync):
    b = synced(remaining=3, reset=first)
    ticket = admit(b)
    date = second - 30.0
    sync = b.settle(ticket, NOW, date, status=200, rate_limit=answer(7, reset=second, date=date))
    assert (sync, b.remaining) == (sync, remaining), what


@pytest.mark.parametrize("skew", [-1800.0, -30.0, 0.0, 30.0, 1800.0])
def test_the_window_end_is_read_on_the_servers_clock_whatever_the_local_wall_clock(skew):
    b = bucket()
    probe = admit(b, wall=DATE + skew)
    b.settle(probe, NOW, DATE + skew, status=200, rate_limit=answer(9))
    assert b.window_end == NOW + (RESET - DATE) + MARGIN
    assert b.wall_clock_fallbacks == 0


def test_of_several_answers_the_earliest_implied_end_wins():
    b = synced(remaining=9)  # answered at NOW with Date = RESET - 30: end NOW + 31
    # Answered 0.5 s later by our clock but stamped 1 s later (the first Date was truncated
    # more): the tighter bound wins.
    b.settle(admit(b), NOW + 0.5, DATE, status=200, rate_limit=answer(8, date=DATE + 1))
    assert b.window_end == NOW + 0.5 + 29 + MARGIN


def test_the_window_ends_on_time_then_one_probe_goes():
    b = synced(remaining=0)
    end = NOW + 30 + MARGIN
    assert b.view(end - 0.001, RESET).phase is Phase.SERVER
    assert b.try_admit(end - 0.001, RESET) is None
    assert b.view(end, RESET).phase is Phase.PROBING
    assert b.try_admit(end, RESET) is not None
    assert b.try_admit(end, RESET) is None


def test_stragglers_across_the_boundary_are_charged_to_the_new_window_until_answered():
    b = synced(remaining=9)
    late, stale = admit(b), admit(b)  # sent just before the end
    after = NOW + 31 + MARGIN
    probe = admit(b, after, RESET + 2)
    # The probe reached the new window after `late` did: 10 - late - probe = 8.
    new = RESET + WINDOW
    b.settle(probe, after, RESET + 2, status=200, rate_limit=answer(8, reset=new, date=RESET + 2))
    assert b.grantable() == 6  # 8 minus the two still in flight
    # `stale` was counted by the old window: its answer is ignored, its token comes back.
    sync = b.settle(stale, after + 1, RESET + 3, status=200, rate_limit=answer(0, date=DATE))
    assert (sync, b.grantable()) == (Sync.STALE, 7)
    # `late` landed in the new window: its (higher, earlier) count is ignored by the min.
    b.settle(late, after + 1, RESET + 3, status=200, rate_limit=answer(9, reset=new, date=RESET))
    assert b.grantable() == 8


def test_an_answer_of_the_window_that_ended_is_ignored_even_if_it_says_more():
    b = synced(remaining=0)
    ticket = admit(b, NOW + 40, RESET + 10)  # the probe of the next window
    sync = b.settle(ticket, NOW + 41, RESET + 11, status=200, rate_limit=answer(5, date=DATE))
    assert sync is Sync.STALE
    assert b.view(NOW + 41, RESET + 11).phase is Phase.PROBING
    assert b.try_admit(NOW + 41, RESET + 11) is not None  # the probe's slot is free again


def test_a_delta_reset_is_seconds_from_the_answer():
    b = bucket()
    b.settle(admit(b), NOW, 0.0, status=200, rate_limit=answer(9, reset=42.0, date=None))
    assert b.window_end == NOW + 42 + MARGIN
    # Another answer of the same window (its end within half a window) lowers remaining.
    b.settle(admit(b), NOW + 5, 0.0, status=200, rate_limit=answer(3, reset=36.0, date=None))
    assert b.view(NOW + 5, 0.0).remaining == 3


def test_without_date_the_offset_learned_from_an_earlier_date_places_reset():
    b = synced(remaining=0)  # learned: the server's clock reads DATE at monotonic NOW
    after = NOW + 40
    probe = admit(b, after, 0.0)
    reset = RESET + WINDOW
    b.settle(probe, after, 0.0, status=200, rate_limit=answer(9, reset=reset, date=None))
    assert b.window_end == NOW + (reset - DATE) + MARGIN
    assert b.wall_clock_fallbacks == 0


def test_with_no_date_ever_the_wall_clock_stands_in_with_a_larger_margin():
    b = bucket()
    b.settle(admit(b), NOW, DATE, status=200, rate_limit=answer(9, date=None))
    assert b.window_end == NOW + 30 + MARGIN + NO_DATE_MARGIN
    assert b.wall_clock_fallbacks == 1


# -- 429 and missing headers ----------------------------------------------------------------------


def test_a_429_closes_the_bucket_until_its_reset():
    b = synced(remaining=8)
    ticket = admit(b)
    sync = b.settle(ticket, NOW + 1, DATE, status=429, rate_limit=answer(0, date=DATE + 1))
    assert (sync, b.grantable()) == (Sync.CLOSED, 0)
    end = NOW + 1 + 29 + MARGIN
    assert b.next_deadline() is None  # nobody waits
    b.enqueue(NOW + 1)
    assert b.next_deadline() == end
    assert b.dispatch(end, RESET + 1).granted  # the probe of the next window


def test_a_429_from_a_later_window_opens_it_closed():
    b = synced(remaining=8)
    new = RESET + WINDOW
    sync = b.settle(admit(b), NOW, DATE, status=429, rate_limit=answer(3, reset=new))
    assert (sync, b.remaining, b.grantable()) == (Sync.CLOSED, 0, 0)


def test_a_429_without_headers_closes_until_the_window_we_know_ends():
    b = synced(remaining=8)
    sync = b.settle(admit(b), NOW, DATE, status=429, rate_limit=None)
    assert (sync, b.grantable(), b.window_end) == (Sync.CLOSED, 0, NOW + 31)


def closed_until(b: Bucket, now: float) -> float:
    """Step time in 0.1 s until the bucket admits again; that instant (at most 10 windows on)."""
    t = now
    while b.try_admit(t, t) is None:
        t = round(t + 0.1, 6)
        assert t < now + 10 * WINDOW, "never reopened"
    return t


STALE_429S = [
    # (what, the 429's Reset, its Date (server clock), how long its own end is from receipt)
    ("the window the bucket just left, from a server 5 s behind", RESET, RESET - 5, 5 + MARGIN),
    ("an earlier window still", RESET - WINDOW, RESET - 5, MARGIN),
    ("the same window, from a server whose clock is 5 s behind", RESET + WINDOW, RESET + 25, 36),
]


@pytest.mark.parametrize(("what", "reset", "date", "closed_for"), STALE_429S)
def test_a_429_closes_the_gate_until_its_own_end_whatever_window_the_bucket_believes(
    what, reset, date, closed_for
):
    # Issue 11, case 1: a 429 whose Reset names a window the bucket has left was ignored as
    # stale, and the re-queued retry went straight back out: a retry storm.
    b = bucket()
    now = NOW
    probe = admit(b, now)  # the bucket learns window RESET + WINDOW, 5 left, 30 s to go
    new = RESET + WINDOW
    b.settle(probe, now, 0.0, status=200, rate_limit=answer(5, reset=new, date=RESET + 30))
    sync = b.settle(
        admit(b, now), now, 0.0, status=429, rate_limit=answer(0, reset=reset, date=date)
    )
    assert (sync, b.grantable()) == (Sync.CLOSED, 0), what
    retry = b.enqueue(now, front=True)
    assert b.dispatch(now, 0.0).granted == ()
    assert b.next_deadline() == pytest.approx(now + closed_for)
    assert b.dispatch(now + closed_for - 0.01, 0.0).granted == ()
    # At its end, one probe, and only one, until it is answered.
    assert b.dispatch(now + closed_for, 0.0).granted == (retry,)
    assert b.try_admit(now + closed_for, 0.0) is None
    # Its answer, naming a later window than the 429's, is adopted normally.
    later = max(new, reset + WINDOW)
    b.settle(
        retry, now + closed_for, 0.0, status=200, rate_limit=answer(3, reset=later, date=later - 20)
    )
    assert (b.phase, b.grantable()) == (Phase.SERVER, 3)


def test_a_later_windows_count_arriving_while_closed_reopens_without_another_probe():
    b = synced(remaining=5)
    straggler = admit(b)
    b.settle(admit(b), NOW, DATE, status=429, rate_limit=answer(0, reset=RESET, date=RESET - 5))
    new = RESET + WINDOW
    sync = b.settle(
        straggler, NOW + 1, DATE, status=200, rate_limit=answer(7, reset=new, date=RESET)
    )
    assert (sync, b.grantable()) == (Sync.NEW_WINDOW, 0)  # still closed until NOW + 5 + margin
    view = b.view(NOW + 6, DATE)
    assert (view.phase, view.grantable) == (Phase.SERVER, 7)


def test_a_429_with_retry_after_and_no_headers_closes_for_that_long_then_one_probe():
    # Issue 11, case 6: it waited for the next aligned window (770 s at 900 s) instead.
    b = synced(remaining=8)
    sync = b.settle(admit(b), NOW, DATE, status=429, rate_limit=None, retry_after=1.0)
    assert (sync, b.phase, b.grantable(), b.window_end) == (
        Sync.CLOSED,
        Phase.CLOSED,
        0,
        NOW + 1 + MARGIN,
    )
    assert b.try_admit(NOW + 1 + MARGIN, DATE) is not None
    assert b.try_admit(NOW + 1 + MARGIN, DATE) is None  # a probe: one at a time
    assert b.phase is Phase.PROBING


def test_after_a_retry_after_closure_the_probe_s_answer_for_the_same_window_is_adopted():
    # A Retry-After closure ends inside the server window the bucket knew. The probe's answer
    # names that same window: it is the server's count now, not a stale one (read as stale, it
    # kept the bucket probing, one request at a time, until the window's end).
    b = synced(remaining=8)
    b.settle(admit(b), NOW, DATE, status=429, rate_limit=None, retry_after=1.0)
    later = NOW + 1 + MARGIN
    probe = admit(b, later, DATE + 2)
    b.settle(probe, later, DATE + 2, status=200, rate_limit=answer(5, date=DATE + 2))
    assert (b.phase, b.grantable()) == (Phase.SERVER, 5)


@pytest.mark.parametrize("retry_after", [-1.0, math.nan, math.inf, 4 * WINDOW + 1])
def test_a_retry_after_that_is_absurd_is_ignored(retry_after):
    b = synced(remaining=8)
    b.settle(admit(b), NOW, DATE, status=429, rate_limit=None, retry_after=retry_after)
    assert (b.grantable(), b.window_end, b.ignored_headers) == (0, NOW + 31, 1)


def test_retry_after_is_ignored_when_the_429_has_headers():
    b = synced(remaining=8)
    b.settle(admit(b), NOW, DATE, status=429, rate_limit=answer(0), retry_after=1.0)
    assert b.window_end == NOW + 31


ABSURD = [
    ("Reset nan", RateLimit(LIMIT, 5, math.nan, DATE)),
    ("Reset inf", RateLimit(LIMIT, 0, math.inf, DATE)),
    ("Reset in year 33658", RateLimit(LIMIT, 0, 1_000_000_000_000.0, DATE)),
    ("Reset 1e30", RateLimit(LIMIT, 0, 1e30, DATE)),
    ("Reset 1e30 without Date", RateLimit(LIMIT, 0, 1e30, None)),
    ("Reset more than four windows away", RateLimit(LIMIT, 0, DATE + 4 * WINDOW + 1, DATE)),
    ("a delta Reset of five windows", RateLimit(LIMIT, 0, 5 * WINDOW, DATE)),
    ("a negative Reset", RateLimit(LIMIT, 0, -5.0, DATE)),
    ("Limit 0", RateLimit(0, 0, RESET, DATE)),
    ("Limit above a million", RateLimit(10**7, 10**7, RESET, DATE)),
    ("Remaining above a million", RateLimit(LIMIT, 10**7, RESET, DATE)),
    ("Remaining negative", RateLimit(LIMIT, -3, RESET, DATE)),
]


@pytest.mark.parametrize("status", [200, 429])
@pytest.mark.parametrize(("what", "rate_limit"), ABSURD, ids=[what for what, _ in ABSURD])
def test_absurd_header_values_are_read_as_absent_and_never_poison_the_bucket(
    what, rate_limit, status
):
    # Issue 11, case 4: nan kept a bucket probing for good, inf never reopened it.
    b = synced(remaining=8)
    b.settle(admit(b), NOW, DATE, status=status, rate_limit=rate_limit)
    view = b.view(NOW, DATE)
    assert view.window_end == NOW + 31, what  # the window the bucket knew stands
    assert view.remaining == (0 if status == 429 else 7)
    assert closed_until(b, NOW) <= NOW + 31
    assert b.ignored_headers == 1  # the shell logs it


def test_an_answer_without_headers_counts_as_spent():
    b = synced(remaining=8)
    for status in (502, None):
        sync = b.settle(admit(b), NOW, DATE, status=status, rate_limit=None)
        assert sync is Sync.COUNTED
    assert b.grantable() == 6


def test_a_lost_answer_stays_spent_until_a_request_admitted_after_it_reports():
    # Found by the state machine below: the lost request reached the server last, and the
    # reports that follow come from requests that reached it before.
    b = synced(remaining=9)
    first, second, lost = admit(b), admit(b), admit(b)  # the server counts them 8, 7, 6 left
    b.settle(lost, NOW, DATE, status=None, rate_limit=None)
    b.settle(first, NOW, DATE, status=200, rate_limit=answer(8))
    b.settle(second, NOW, DATE, status=200, rate_limit=answer(7))
    assert (b.view(NOW, DATE).remaining, b.grantable()) == (6, 6)
    b.settle(admit(b), NOW, DATE, status=200, rate_limit=answer(5))  # admitted after: covers it
    assert (b.view(NOW, DATE).remaining, b.grantable()) == (5, 5)


def test_an_answer_without_headers_is_covered_by_the_next_admissions_report():
    b = synced(remaining=9)
    b.settle(admit(b), NOW, DATE, status=502, rate_limit=None)  # counted: 8 left
    assert b.grantable() == 8
    b.settle(admit(b), NOW, DATE, status=200, rate_limit=answer(7))
    assert b.grantable() == 7


def test_a_lost_probe_holds_back_another_while_stragglers_may_fill_the_window():
    # Found by the state machine below: a second probe went out into a window that the lost
    # one, and the stragglers still in flight, had already filled.
    b = synced(remaining=9)
    stragglers = [admit(b) for _ in range(9)]
    after = NOW + 31 + MARGIN
    probe = admit(b, after, RESET + 2)
    b.settle(probe, after, RESET + 2, status=None, rate_limit=None)
    assert b.try_admit(after, RESET + 2) is None
    new = RESET + WINDOW
    b.settle(stragglers[0], after, RESET + 2, status=200, rate_limit=answer(1, reset=new))
    assert b.view(after, RESET + 2).phase is Phase.SERVER
    assert b.grantable() == 0  # 1 left, minus the lost probe: nothing


def test_an_outage_of_error_pages_cannot_block_the_queue_for_good():
    b = bucket()
    for _ in range(LIMIT):  # every probe gets a connection error
        b.settle(admit(b), NOW, DATE, status=None, rate_limit=None)
    waiter = b.enqueue(NOW)
    assert b.dispatch(NOW, DATE).granted == ()  # ten spends may fill the window
    assert b.next_deadline() == NOW + WINDOW + MARGIN  # by then that window has ended
    assert b.dispatch(NOW + WINDOW + MARGIN, DATE).granted == (waiter,)


def test_a_probe_without_an_answer_lets_another_probe_go():
    b = bucket()
    sync = b.settle(admit(b), NOW, DATE, status=None, rate_limit=None)
    assert sync is Sync.NO_ANSWER
    assert b.try_admit(NOW, DATE) is not None


def test_probes_answered_without_headers_keep_the_slow_start_until_they_prove_a_pattern():
    # Issue 11, case 2: a proxy's 502 on the probe used to open a LOCAL window with the full
    # limit at once, while the server had one token left.
    wall = 1_700_000_017.0
    b = bucket()
    probes = 0
    while True:
        ticket = admit(b, wall=wall)
        assert b.try_admit(NOW, wall) is None, "more than one request out while probing"
        probes += 1
        sync = b.settle(ticket, NOW, wall, status=502, rate_limit=None)
        if sync is Sync.LOCAL_WINDOW:
            break
        assert b.phase is Phase.PROBING
    assert probes == NO_HEADER_PROOF


def test_an_answer_with_headers_resets_the_count_of_header_less_probes():
    wall = 1_700_000_017.0
    b = bucket()
    b.settle(admit(b, wall=wall), NOW, wall, status=502, rate_limit=None)
    b.settle(admit(b, wall=wall), NOW, wall, status=502, rate_limit=None)
    # An answer with headers (its window ends a second later): the server does speak them.
    ending = RateLimit(LIMIT, 5, RESET - WINDOW, DATE)
    assert (
        b.settle(admit(b, wall=wall), NOW, wall, status=200, rate_limit=ending) is Sync.NEW_WINDOW
    )
    b.settle(admit(b, wall=wall), NOW + 40, wall + 40, status=502, rate_limit=None)
    assert b.view(NOW + 40, wall + 40).phase is Phase.PROBING


def test_a_server_proven_header_less_is_counted_locally_on_epoch_aligned_windows():
    wall = 1_700_000_017.0  # 37 s into an epoch-aligned 60 s window
    b = bucket()
    for _ in range(NO_HEADER_PROOF - 1):
        b.settle(admit(b, wall=wall), NOW, wall, status=200, rate_limit=None)
    sync = b.settle(admit(b, wall=wall), NOW, wall, status=200, rate_limit=None)
    # The probes' spends stay charged to this window: 10 - 3.
    assert (sync, b.remaining, b.window_end) == (Sync.LOCAL_WINDOW, LIMIT - 3, NOW + 23)
    tickets = [admit(b, wall=wall) for _ in range(LIMIT - 3)]
    assert b.try_admit(NOW, wall) is None
    for ticket in tickets:
        b.settle(ticket, NOW, wall, status=200, rate_limit=None)
    # The next window is local again (no headers yet), a full one, with no probe first.
    assert b.view(NOW + 23, wall + 23).phase is Phase.LOCAL
    assert b.view(NOW + 23, wall + 23).grantable == LIMIT


def test_local_windows_follow_the_last_server_windows_boundaries():
    b = synced(remaining=0)  # server window ends at NOW + 31 (margin included)
    for _ in range(NO_HEADER_PROOF):
        b.settle(admit(b, NOW + 100, 0.0), NOW + 100, 0.0, status=502, rate_limit=None)
    assert (b.phase, b.window_end) == (Phase.LOCAL, NOW + 31 + 2 * WINDOW)


def test_headers_again_after_local_counting_take_over():
    wall = 1_700_000_017.0
    b = bucket()
    for _ in range(NO_HEADER_PROOF):
        b.settle(admit(b, wall=wall), NOW, wall, status=200, rate_limit=None)
    assert b.phase is Phase.LOCAL
    sync = b.settle(admit(b, wall=wall), NOW, wall, status=200, rate_limit=answer(4))
    assert (sync, b.view(NOW, wall).phase, b.grantable()) == (
        Sync.NEW_WINDOW,
        Phase.SERVER,
        4,
    )


# -- leases ---------------------------------------------------------------------------------------


def test_a_token_never_settled_expires_with_its_lease_and_counts_as_spent():
    b = Bucket(LIMIT, WINDOW, margin=MARGIN, lease=10.0)
    probe = admit(b)
    b.settle(probe, NOW, DATE, status=200, rate_limit=answer(9))
    lost = admit(b)
    assert b.view(NOW + 9.9, DATE).in_flight == 1
    view = b.view(NOW + 10, DATE)
    assert (view.in_flight, view.remaining, b.expired) == (0, 8, 1)
    # Its late answer still re-synchronises; it is not charged twice.
    sync = b.settle(lost, NOW + 11, DATE, status=502, rate_limit=None)
    assert (sync, b.view(NOW + 11, DATE).remaining) == (Sync.UNKNOWN_TICKET, 8)
    sync = b.settle(lost, NOW + 11, DATE, status=200, rate_limit=answer(2))
    assert b.remaining == 2


def test_while_the_queue_is_blocked_by_in_flight_tokens_the_lease_is_the_deadline():
    b = Bucket(LIMIT, WINDOW, margin=MARGIN, lease=10.0)
    admit(b)  # the probe, never answered
    b.enqueue(NOW)
    assert b.next_deadline() == NOW + 10
    assert b.dispatch(NOW + 10, DATE).granted  # a new probe once the old one expired


# -- the queue ------------------------------------------------------------------------------------


def test_waiters_are_served_in_order_and_re_queued_429s_first():
    b = synced(remaining=0)
    first, second = b.enqueue(NOW), b.enqueue(NOW)
    retry_a = b.enqueue(NOW, front=True)
    retry_b = b.enqueue(NOW, front=True)
    assert b.head == retry_a
    b.settle(admit_unknown := 999, NOW, DATE, status=200, rate_limit=None)  # no effect
    assert admit_unknown not in b.dispatch(NOW, DATE).granted
    later = b.view(NOW + 31, RESET + 1)  # the window ended: one probe
    assert later.phase is Phase.PROBING
    assert b.dispatch(NOW + 31, RESET + 1).granted == (retry_a,)
    new = RESET + WINDOW
    b.settle(retry_a, NOW + 32, RESET + 2, status=200, rate_limit=answer(2, reset=new))
    assert b.dispatch(NOW + 32, RESET + 2).granted == (retry_b, first)
    assert b.head == second


def test_release_gives_back_a_place_or_an_unsent_token_and_charges_nothing():
    b = synced(remaining=2)
    token = admit(b)
    waiter = b.enqueue(NOW)
    assert b.release(waiter)
    assert b.waiting == 0
    assert b.release(token)
    assert b.grantable() == 2
    assert not b.release(token)
    assert not b.release(12345)


def test_releasing_the_probe_lets_the_next_waiter_probe():
    b = bucket()
    probe = admit(b)
    waiter = b.enqueue(NOW)
    assert b.dispatch(NOW, DATE).granted == ()
    b.release(probe)
    assert b.dispatch(NOW, DATE).granted == (waiter,)


# -- forecasts and max_wait ----------------------------------------------------------------------


def test_a_wait_beyond_max_wait_is_refused_at_once_with_the_window_end():
    b = synced(remaining=0)  # closed until NOW + 31
    patient = b.enqueue(NOW, max_wait=40.0)
    hurried = b.enqueue(NOW, max_wait=20.0)
    outcome = b.dispatch(NOW, DATE)
    assert outcome.granted == ()
    assert [(r.ticket, r.ready_at) for r in outcome.refused] == [(hurried, NOW + 31)]
    assert b.head == patient


@pytest.mark.parametrize(
    ("position", "ready_at"),
    [(0, NOW + 31), (LIMIT - 1, NOW + 31), (LIMIT, NOW + 31 + WINDOW), (25, NOW + 31 + 2 * 60)],
)
def test_the_forecast_counts_whole_windows_of_limit(position, ready_at):
    assert synced(remaining=0).forecast(NOW, position) == ready_at


def test_the_forecast_is_optimistic_while_the_window_is_unknown():
    b = bucket()
    admit(b)
    assert b.forecast(NOW, 0) == NOW
    assert b.forecast(NOW, LIMIT + 3) == NOW  # the unknown window may end right now
    assert b.forecast(NOW, 2 * LIMIT) == NOW + WINDOW


def test_a_forecast_that_grows_refuses_a_waiter_at_the_next_dispatch():
    b = bucket()
    probe = admit(b)
    waiter = b.enqueue(NOW, max_wait=5.0)
    assert b.dispatch(NOW, DATE).refused == ()  # the unknown window may end any moment
    b.settle(probe, NOW + 1, DATE, status=429, rate_limit=answer(0, date=DATE + 1))
    refused = b.dispatch(NOW + 1, DATE + 1).refused
    assert [(r.ticket, r.ready_at) for r in refused] == [(waiter, NOW + 1 + 29 + MARGIN)]


def test_the_forecast_subtracts_unreported_spends_and_requests_in_flight_as_grantable_does():
    # Issue 11, case 3: Remaining=9, then nine 502s without headers. The forecast counted the
    # nine as tokens, so max_wait=5 was granted after 51 s instead of refused at once.
    b = synced(remaining=9)
    for _ in range(9):
        b.settle(admit(b), NOW, DATE, status=502, rate_limit=None)
    waiter = b.enqueue(NOW, max_wait=5.0)
    outcome = b.dispatch(NOW, DATE)
    assert [(r.ticket, r.ready_at) for r in outcome.refused] == [(waiter, NOW + 31)]
    # The same with the nine still in flight: nothing is grantable, so nothing is promised.
    b = synced(remaining=9)
    for _ in range(9):
        admit(b)
    waiter = b.enqueue(NOW, max_wait=5.0)
    assert [r.ticket for r in b.dispatch(NOW, DATE).refused] == [waiter]


def test_a_waiters_own_deadline_is_a_wake_up_and_it_is_refused_by_then():
    b = Bucket(LIMIT, WINDOW, margin=MARGIN, lease=1000.0)
    admit(b)  # the probe: never answered (its lease is long)
    waiters = [b.enqueue(NOW) for _ in range(LIMIT - 1)]
    hurried = b.enqueue(NOW, max_wait=5.0)  # may go with the probe's answer: not refused yet
    assert b.dispatch(NOW, DATE).refused == ()
    assert b.next_deadline() == NOW + 5.0
    refused = b.dispatch(NOW + 5.0, DATE + 5).refused
    assert [(r.ticket, r.ready_at) for r in refused] == [(hurried, NOW + 5.0)]
    assert b.next_deadline() == NOW + 1000.0
    assert b.waiting == len(waiters)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0, "window": 60.0}, "limit"),
        ({"limit": 5, "window": 0.0}, "window"),
        ({"limit": 5, "window": 60.0, "margin": -1.0}, "margin"),
        ({"limit": 5, "window": 60.0, "reserve": 5}, "reserve"),
        ({"limit": 5, "window": 60.0, "reserve": -1}, "reserve"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Bucket(**kwargs)


def test_an_unknown_priority_is_refused_before_anything_is_queued():
    b = synced(remaining=0)
    with pytest.raises(ValueError, match="priority"):
        b.enqueue(NOW, priority="urgent")
    with pytest.raises(ValueError, match="priority"):
        b.try_admit(NOW, DATE, priority="Bulk")
    assert b.waiting == 0


# -- priorities and the reserve (issue 13) -------------------------------------------------------


def test_interactive_waiters_go_first_fifo_within_a_priority_and_429s_first_in_their_own():
    b = synced(remaining=0)
    bulk_a, interactive_a = b.enqueue(NOW, priority="bulk"), b.enqueue(NOW)
    bulk_retry = b.enqueue(NOW, front=True, priority="bulk")
    interactive_b = b.enqueue(NOW)
    interactive_retry = b.enqueue(NOW, front=True)
    bulk_b = b.enqueue(NOW, priority="bulk")
    assert b.waiting_by_priority() == {"interactive": 3, "bulk": 3}
    assert b.head == interactive_retry
    assert b.dispatch(NOW + 31, RESET + 1).granted == (interactive_retry,)  # the probe
    b.settle(
        interactive_retry,
        NOW + 32,
        RESET + 2,
        status=200,
        rate_limit=answer(9, reset=RESET + WINDOW),
    )
    served = b.dispatch(NOW + 32, RESET + 2).granted
    assert served == (interactive_a, interactive_b, bulk_retry, bulk_a, bulk_b)


def test_bulk_leaves_the_reserve_which_interactive_requests_may_take():
    b = synced(remaining=5, reserve=3)
    assert [b.try_admit(NOW, DATE, priority="bulk") is not None for _ in range(3)] == [
        True,
        True,
        False,  # 3 grantable: the reserve
    ]
    waiter = b.enqueue(NOW, priority="bulk")
    assert b.dispatch(NOW, DATE).granted == ()
    assert b.grantable() == 3
    # The fast path: an interactive request does not queue behind bulk waiters.
    assert [b.try_admit(NOW, DATE) is not None for _ in range(4)] == [True, True, True, False]
    assert b.head == waiter
    view = b.view(NOW, DATE)
    assert (view.reserve, view.waiting_by_priority) == (3, {"interactive": 0, "bulk": 1})


def test_with_no_reserve_bulk_takes_the_last_token_and_nothing_changes():
    b = synced(remaining=2)
    assert b.try_admit(NOW, DATE, priority="bulk") is not None
    assert b.try_admit(NOW, DATE, priority="bulk") is not None
    assert b.grantable() == 0


def test_a_bulk_request_waits_behind_an_interactive_waiter_even_with_tokens_left():
    b = synced(remaining=1, reserve=0)
    first = admit(b)  # the last token
    interactive = b.enqueue(NOW)
    assert b.try_admit(NOW, DATE, priority="bulk") is None
    bulk = b.enqueue(NOW, priority="bulk")
    b.release(first)
    assert b.dispatch(NOW, DATE).granted == (interactive,)
    assert b.head == bulk


def test_either_priority_may_take_the_probe_and_an_interactive_waiter_goes_first():
    b = bucket(reserve=LIMIT - 1)
    assert b.try_admit(NOW, DATE, priority="bulk") is not None  # the reserve never blocks it
    b = bucket(reserve=LIMIT - 1)
    probe = admit(b)
    bulk, interactive = b.enqueue(NOW, priority="bulk"), b.enqueue(NOW)
    b.release(probe)
    assert b.dispatch(NOW, DATE).granted == (interactive,)
    assert b.head == bulk


def test_the_reserve_never_reaches_the_limit_the_server_states():
    """A server stating a limit at or below the reserve must not lock bulk out for good."""
    b = bucket(reserve=LIMIT - 1)
    probe = admit(b)
    b.settle(probe, NOW, DATE, status=200, rate_limit=RateLimit(3, 2, RESET, DATE))
    assert b.view(NOW, DATE).reserve == 2
    assert b.try_admit(NOW, DATE, priority="bulk") is None  # 2 grantable, reserve 2
    assert b.forecast(NOW, 0, priority="bulk") == NOW + 31  # one per window for bulk


def test_forecasts_count_only_the_waiters_served_before_and_bulk_windows_lack_the_reserve():
    b = synced(remaining=0, reserve=4)  # closed until NOW + 31; bulk gets 6 per window
    for _ in range(5):
        b.enqueue(NOW, priority="bulk")
    hurried = b.enqueue(NOW, max_wait=40.0)  # behind five bulk waiters, but served first
    outcome = b.dispatch(NOW, DATE)
    assert outcome.refused == ()
    assert b.head == hurried
    assert b.forecast(NOW, LIMIT - 1) == NOW + 31
    assert b.forecast(NOW, LIMIT - 1, priority="bulk") == NOW + 31 + WINDOW
    assert b.forecast(NOW, 6, priority="bulk") == NOW + 31 + WINDOW
    assert b.forecast(NOW, 5, priority="bulk") == NOW + 31
    # A bulk waiter counts every interactive waiter as ahead of it.
    for _ in range(5):
        b.enqueue(NOW, max_wait=40.0)
    late_bulk = b.enqueue(NOW, max_wait=40.0, priority="bulk")  # position 11: two windows
    refused = b.dispatch(NOW, DATE).refused
    assert [(r.ticket, r.ready_at) for r in refused] == [(late_bulk, NOW + 31 + WINDOW)]


def test_the_current_window_gives_bulk_only_what_lies_above_the_reserve():
    b = synced(remaining=5, reserve=3)
    assert b.forecast(NOW, 1, priority="bulk") == NOW
    assert b.forecast(NOW, 2, priority="bulk") == NOW + 31
    assert b.forecast(NOW, 4) == NOW


# -- the invariants, under any interleaving ------------------------------------------------------


PRIORITY = st.sampled_from(PRIORITIES)


class BucketAgainstServer(RuleBasedStateMachine):
    """Random arrivals of both priorities, sends, latencies, answers, losses, cancellations and
    clock moves, with a reserve from 0 to ``limit - 1``.

    The server counts per clock-aligned window and answers with ``Date`` at 1 s resolution;
    answers may arrive in any order and any number of windows late. No other process spends
    the quota, so every 429 would be our own fault.
    """

    def __init__(self) -> None:
        super().__init__()
        self.limit, self.window = 4, 60.0
        self.bucket = Bucket(self.limit, self.window, margin=1.0, lease=1e9)
        self.now = 1_000.0
        self.server_offset = 1_700_000_017.0 - self.now  # server clock = now + offset
        self.counts: dict[int, int] = {}
        self.rejected = 0
        # The model's FIFOs, per priority (retries are put in front of waiters of theirs).
        self.lines = {priority: ([], []) for priority in PRIORITIES}
        self.priority_of: dict[int, str] = {}
        self.unsent: list[int] = []
        self.on_the_way: list[int] = []
        self.answers: list[tuple[int, int, RateLimit]] = []
        self.taken = self.settled = self.released = 0
        self.lost = False

    @initialize(reserve=st.integers(0, 3))
    def reserve(self, reserve):
        self.bucket = Bucket(self.limit, self.window, margin=1.0, lease=1e9, reserve=reserve)

    @property
    def server_time(self) -> float:
        return self.now + self.server_offset

    @property
    def queue_order(self) -> list[int]:
        return [ticket for retries, queue in self.lines.values() for ticket in retries + queue]

    def _unqueue(self, ticket: int) -> None:
        for line in self.lines[self.priority_of[ticket]]:
            if ticket in line:
                line.remove(ticket)

    def _waiting(self, priority: str) -> int:
        return sum(len(line) for line in self.lines[priority])

    def _check_bulk_grants(self, granted: list[int], interactive_waited: bool) -> None:
        """Issue 13: no bulk grant while grantable <= reserve, or an interactive waiter waits."""
        if not any(self.priority_of[ticket] == "bulk" for ticket in granted):
            return
        assert not interactive_waited, "bulk served while an interactive request waited"
        if self.bucket.phase is Phase.PROBING:
            assert len(granted) == 1  # the probe: either priority may take it
        else:
            # Each bulk grant left the grantable count at or above the reserve.
            assert self.bucket.grantable() >= self.bucket.view(self.now, self.now).reserve

    def _dispatch(self) -> None:
        outcome = self.bucket.dispatch(self.now, self.now)
        for refusal in outcome.refused:
            self._unqueue(refusal.ticket)
        expected = self.queue_order[: len(outcome.granted)]
        assert list(outcome.granted) == expected, "priority order or FIFO broken"
        granted = list(outcome.granted)
        interactive_left = self._waiting("interactive") - sum(
            self.priority_of[ticket] == "interactive" for ticket in granted
        )
        for ticket in granted:
            self._unqueue(ticket)
        self._check_bulk_grants(granted, interactive_left > 0)
        self.unsent += outcome.granted
        self.taken += len(outcome.granted)

    def _enqueue(self, priority: str, *, front: bool = False, max_wait: float | None = None):
        ticket = self.bucket.enqueue(self.now, front=front, max_wait=max_wait, priority=priority)
        self.priority_of[ticket] = priority
        self.lines[priority][0 if front else 1].append(ticket)

    @rule(front=st.booleans(), max_wait=st.none() | st.floats(0, 120), priority=PRIORITY)
    def arrive(self, front, max_wait, priority):
        self._enqueue(priority, front=front, max_wait=max_wait)
        self._dispatch()

    @rule(count=st.integers(2, 8), priority=PRIORITY)
    def a_burst_arrives(self, count, priority):
        for _ in range(count):
            self._enqueue(priority)
        self._dispatch()

    @rule(priority=PRIORITY)
    def fast_path(self, priority):
        interactive_waited = self._waiting("interactive") > 0
        ticket = self.bucket.try_admit(self.now, self.now, priority=priority)
        if ticket is None:
            return
        assert priority == "bulk" or not interactive_waited
        assert priority == "interactive" or not self.queue_order
        self.priority_of[ticket] = priority
        self._check_bulk_grants([ticket], interactive_waited)
        self.unsent.append(ticket)
        self.taken += 1

    @rule(seconds=st.floats(0.01, 3) | st.floats(3, 90))
    def time_passes(self, seconds):
        self.now += seconds
        self._dispatch()

    @rule(data=st.data())
    def send(self, data):
        if self.unsent:
            ticket = data.draw(st.sampled_from(self.unsent))
            self.unsent.remove(ticket)
            self.on_the_way.append(ticket)

    @rule()
    def everything_unsent_goes_out(self):
        self.on_the_way += self.unsent
        self.unsent = []

    @rule(data=st.data())
    def reach_server(self, data):
        if self.on_the_way:
            self._reach(data.draw(st.sampled_from(self.on_the_way)))

    @rule()
    def everything_on_the_way_arrives(self):
        for ticket in list(self.on_the_way):
            self._reach(ticket)

    def _reach(self, ticket: int) -> None:
        self.on_the_way.remove(ticket)
        index = math.floor(self.server_time / self.window)
        used = self.counts.get(index, 0)
        if used < self.limit:
            self.counts[index] = used + 1
            status, remaining = 200, self.limit - used - 1
        else:
            self.rejected += 1
            status, remaining = 429, 0
        reset = (index + 1) * self.window
        date = float(math.floor(self.server_time))
        self.answers.append((ticket, status, RateLimit(self.limit, remaining, reset, date)))

    @rule(data=st.data(), lose=st.booleans())
    def answer_arrives(self, data, lose):
        if self.answers:
            self._receive(data.draw(st.sampled_from(self.answers)), lose=lose)

    @rule(newest_first=st.booleans())
    def every_answer_arrives(self, newest_first):
        for answer in self.answers[::-1] if newest_first else self.answers[:]:
            self._receive(answer, lose=False)

    def _receive(self, answer: tuple[int, int, RateLimit], *, lose: bool) -> None:
        ticket, status, rate_limit = answer
        self.answers.remove(answer)
        if lose:  # a connection error: sent, no answer
            self.lost = True
            self.bucket.settle(ticket, self.now, self.now, status=None, rate_limit=None)
        else:
            self.bucket.settle(ticket, self.now, self.now, status=status, rate_limit=rate_limit)
        self.settled += 1
        if status == 429 and not lose:
            self._enqueue(self.priority_of[ticket], front=True)
        self._dispatch()

    @rule(data=st.data())
    def cancel(self, data):
        choices = self.unsent + self.queue_order
        if not choices:
            return
        ticket = data.draw(st.sampled_from(choices))
        assert self.bucket.release(ticket)
        if ticket in self.unsent:
            self.unsent.remove(ticket)
            self.released += 1
        else:
            self._unqueue(ticket)
        self._dispatch()

    @invariant()
    def no_429_from_our_own_traffic(self):
        assert self.rejected == 0

    @invariant()
    def every_token_taken_is_in_flight_settled_or_released(self):
        in_flight = len(self.unsent) + len(self.on_the_way) + len(self.answers)
        assert self.bucket.in_flight == in_flight
        assert self.taken == in_flight + self.settled + self.released
        assert self.bucket.waiting == len(self.queue_order)
        assert self.bucket.waiting_by_priority() == {
            priority: self._waiting(priority) for priority in PRIORITIES
        }

    @invariant()
    def nobody_waits_while_a_token_is_grantable_to_it(self):
        for priority in PRIORITIES:
            assert not self._waiting(priority) or self.bucket.grantable_to(priority) == 0

    @invariant()
    def whoever_waits_has_a_deadline_to_wake_at(self):
        if self.bucket.waiting:
            deadline = self.bucket.next_deadline()
            assert deadline is not None
            assert deadline > self.now

    @invariant()
    def once_all_answers_are_in_the_bucket_knows_what_the_server_has_left(self):
        view = self.bucket.view(self.now, self.now)
        index = math.floor(self.server_time / self.window)
        if view.in_flight or view.reset != (index + 1) * self.window or view.remaining is None:
            return
        left = self.limit - self.counts.get(index, 0)
        assert view.remaining <= left
        if not self.lost:
            assert view.remaining == left


TestBucketAgainstServer = BucketAgainstServer.TestCase
TestBucketAgainstServer.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


class BucketAgainstHostileServer(RuleBasedStateMachine):
    """Like ``BucketAgainstServer``, but the server behind the host lies and disagrees.

    Up to three servers answer, their clocks up to 5 s apart: each counts in the window its
    own clock names and stamps ``Reset`` and ``Date`` by it, so 429s come labelled with earlier
    and later windows than the bucket's. Answers may lose their headers (a proxy's 502, or a
    429 stripped of them, maybe with a ``Retry-After``), carry absurd values, or be lost.
    429s are now expected; what must hold instead:

    - no overshoot: once every answer is in, the bucket never believes a window has more left
      than the server that labelled it counted;
    - nothing is admitted before any settled 429's own end, and while probing, one request at
      a time;
    - a ``max_wait`` is refused only when its forecast is past its deadline or the deadline
      has come, never after it, and never with a ``ready_at`` before now.
    """

    def __init__(self) -> None:
        super().__init__()
        self.limit, self.window, self.margin = 4, 60.0, 1.0
        self.bucket = Bucket(self.limit, self.window, margin=self.margin, lease=1e9)
        self.now = 1_000.0
        self.base = 1_700_000_017.0 - self.now
        self.skews: list[float] = [0.0]
        self.counts: dict[float, int] = {}  # per window end (Reset) as its server labelled it
        self.waiting: list[int] = []
        self.deadlines: dict[int, float] = {}
        self.in_flight: list[tuple[int, bool]] = []  # (ticket, admitted as a probe)
        self.answers: list[tuple[int, int, RateLimit | None, float | None]] = []
        self.closed_until = -math.inf
        self.probe_out: int | None = None

    @initialize(skews=st.lists(st.floats(0, 5), min_size=1, max_size=3), data=st.data())
    def servers(self, skews, data):
        self.skews = skews
        reserve = data.draw(st.integers(0, self.limit - 1), label="reserve")
        self.bucket = Bucket(
            self.limit, self.window, margin=self.margin, lease=1e9, reserve=reserve
        )
        self.priority_of: dict[int, str] = {}

    def _dispatch(self) -> None:
        probing = self.bucket.view(self.now, self.now).phase is Phase.PROBING
        deadline = self.bucket.next_deadline()
        if self.deadlines and deadline is not None:
            assert deadline <= min(self.deadlines.values()), "a waiter's deadline is no wake-up"
        outcome = self.bucket.dispatch(self.now, self.now)
        for refusal in outcome.refused:
            limit = self.deadlines.pop(refusal.ticket)
            assert refusal.ready_at >= self.now, "reset_at in the past"
            assert refusal.ready_at > limit or self.now >= limit, "refused though in time"
            self.waiting.remove(refusal.ticket)
        if outcome.granted:
            assert self.now >= self.closed_until, "admitted before a 429's own end"
        if probing:
            assert len(outcome.granted) <= 1, "more than one probe at once"
            assert not outcome.granted or self.probe_out is None, "a second probe went out"
        for ticket in outcome.granted:
            self.waiting.remove(ticket)
            self.deadlines.pop(ticket, None)
            self.in_flight.append((ticket, probing))
            if probing:
                self.probe_out = ticket
        for ticket, deadline in self.deadlines.items():
            assert deadline > self.now, f"waiter {ticket} still waits after its max_wait"

    @rule(front=st.booleans(), max_wait=st.none() | st.floats(0, 120), priority=PRIORITY)
    def arrive(self, front, max_wait, priority):
        ticket = self.bucket.enqueue(self.now, front=front, max_wait=max_wait, priority=priority)
        self.priority_of[ticket] = priority
        self.waiting.insert(0, ticket) if front else self.waiting.append(ticket)
        if max_wait is not None:
            self.deadlines[ticket] = self.now + max_wait
        self._dispatch()

    @rule(seconds=st.floats(0.01, 3) | st.floats(3, 90))
    def time_passes(self, seconds):
        self.now += seconds
        self._dispatch()

    @rule(data=st.data())
    def reach_a_server(self, data):
        if not self.in_flight:
            return
        ticket, _ = entry = data.draw(st.sampled_from(self.in_flight))
        self.in_flight.remove(entry)
        skew = data.draw(st.sampled_from(self.skews))
        clock = self.now + self.base + skew
        reset = (math.floor(clock / self.window) + 1) * self.window
        used = self.counts.get(reset, 0)
        status = 200 if used < self.limit else 429
        self.counts[reset] = min(self.limit, used + 1)
        remaining = max(0, self.limit - used - 1)
        kind = data.draw(st.sampled_from(["plain", "plain", "no headers", "absurd", "lost"]))
        rate_limit: RateLimit | None = RateLimit(self.limit, remaining, reset, math.floor(clock))
        retry_after = None
        if kind == "no headers":
            rate_limit = None
            status = 502 if status == 200 else 429
            retry_after = data.draw(st.none() | st.floats(0, 10)) if status == 429 else None
        elif kind == "absurd":
            value = data.draw(st.sampled_from([math.nan, math.inf, 1e30, 1e12, -1.0]))
            rate_limit = RateLimit(self.limit, remaining, value, math.floor(clock))
        elif kind == "lost":
            status, rate_limit = -1, None
        self.answers.append((ticket, status, rate_limit, retry_after))

    @rule(data=st.data())
    def answer_arrives(self, data):
        if not self.answers:
            return
        answer = data.draw(st.sampled_from(self.answers))
        self.answers.remove(answer)
        ticket, status, rate_limit, retry_after = answer
        self.bucket.settle(
            ticket,
            self.now,
            self.now,
            status=None if status == -1 else status,
            rate_limit=rate_limit,
            retry_after=retry_after,
        )
        if ticket == self.probe_out:
            self.probe_out = None
        if status == 429:
            date = None if rate_limit is None else rate_limit.server_date
            if rate_limit is not None and date is not None and rate_limit.plausible(60.0, 0.0):
                own = self.now + max(0.0, rate_limit.reset - date)
                self.closed_until = max(self.closed_until, own + self.margin)
            elif retry_after is not None:
                self.closed_until = max(self.closed_until, self.now + retry_after + self.margin)
            retry = self.bucket.enqueue(self.now, front=True)
            self.waiting.insert(0, retry)
        self._dispatch()

    @rule(data=st.data())
    def cancel(self, data):
        if self.waiting:
            ticket = data.draw(st.sampled_from(self.waiting))
            assert self.bucket.release(ticket)
            self.waiting.remove(ticket)
            self.deadlines.pop(ticket, None)
            self._dispatch()

    @invariant()
    def no_overshoot_of_what_the_labelling_server_counted(self):
        view = self.bucket.view(self.now, self.now)
        if self.in_flight or self.answers or view.remaining is None or view.reset is None:
            return
        assert view.remaining <= self.limit - self.counts.get(view.reset, 0)

    @invariant()
    def nobody_waits_while_a_token_is_grantable_to_it(self):
        for priority in {self.priority_of[ticket] for ticket in self.waiting}:
            assert self.bucket.grantable_to(priority) == 0

    @invariant()
    def whoever_waits_has_a_deadline_to_wake_at(self):
        if self.bucket.waiting:
            deadline = self.bucket.next_deadline()
            assert deadline is not None
            assert deadline > self.now


TestBucketAgainstHostileServer = BucketAgainstHostileServer.TestCase
TestBucketAgainstHostileServer.settings = settings(
    max_examples=200, stateful_step_count=60, deadline=None
)
