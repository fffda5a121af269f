from __future__ import annotations

import httpx
import pytest

from plumvoice_async._core.ratelimit import RateLimit, parse_http_date, parse_retry_after

EVENTS_SAMPLE = {  # plum-api.md 1.5, the Event Tracker's documented headers, plus a Date
    "X-RateLimit-Limit": "150",
    "X-RateLimit-Remaining": "149",
    "X-RateLimit-Reset": "1519659900",
    "Date": "Mon, 26 Feb 2018 15:40:00 GMT",
}


def test_documented_headers_parse_case_insensitively():
    lowered = {name.lower(): value for name, value in EVENTS_SAMPLE.items()}
    for headers in (EVENTS_SAMPLE, lowered):
        rate_limit = RateLimit.from_headers(headers)
        assert rate_limit == RateLimit(150, 149, 1519659900.0, 1519659600.0)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-RateLimit-Limit": "150", "X-RateLimit-Remaining": "149"},
        {**EVENTS_SAMPLE, "X-RateLimit-Remaining": "many"},
        {**EVENTS_SAMPLE, "X-RateLimit-Limit": "-1"},
        {**EVENTS_SAMPLE, "X-RateLimit-Reset": ""},
    ],
)
def test_absent_or_malformed_quota_headers_give_none(headers):
    assert RateLimit.from_headers(headers) is None


def test_a_missing_or_bad_date_leaves_server_date_unknown():
    for date in (None, "yesterday", "Mon, 26 Feb 2018 15:40:00"):
        headers = {k: v for k, v in EVENTS_SAMPLE.items() if k != "Date"}
        if date is not None:
            headers["Date"] = date
        rate_limit = RateLimit.from_headers(headers)
        assert rate_limit is not None
        assert rate_limit.server_date is None


@pytest.mark.parametrize(
    ("reset", "server_date", "local_wall", "expected"),
    [
        # Reset - Date, both server time: the local clock is irrelevant, however skewed.
        (1519659900.0, 1519659600.0, 1519659600.0, 300.0),
        (1519659900.0, 1519659600.0, 1519659600.0 + 1800, 300.0),
        (1519659900.0, 1519659600.0, 1519659600.0 - 1800, 300.0),
        # No Date: the local wall clock stands in.
        (1519659900.0, None, 1519659800.0, 100.0),
        # A Reset below 10^9 is a delta, seconds from now.
        (42.0, 1519659600.0, 0.0, 42.0),
        # Never negative.
        (1519659900.0, 1519660000.0, 0.0, 0.0),
    ],
)
def test_seconds_to_reset(reset, server_date, local_wall, expected):
    rate_limit = RateLimit(150, 10, reset, server_date)
    assert rate_limit.seconds_to_reset(local_wall) == expected
    assert rate_limit.reset_is_delta is (reset < 1e9)


def test_parse_http_date():
    assert parse_http_date("Thu, 01 Jan 1970 00:01:40 GMT") == 100.0
    assert parse_http_date(None) is None
    assert parse_http_date("not a date") is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-RateLimit-Reset", "nan"),
        ("X-RateLimit-Reset", "inf"),
        ("X-RateLimit-Reset", "-infinity"),
        ("X-RateLimit-Reset", "-5"),
        ("X-RateLimit-Limit", "0"),
        ("X-RateLimit-Limit", "1000001"),
        ("X-RateLimit-Remaining", "1000001"),
        ("X-RateLimit-Remaining", "-1"),
    ],
)
def test_non_finite_negative_or_absurd_values_read_as_absent(name, value):
    # Issue 11, case 4: nan and inf went through, and poisoned the bucket.
    assert RateLimit.from_headers({**EVENTS_SAMPLE, name: value}) is None


@pytest.mark.parametrize(
    ("reset", "date", "window", "plausible"),
    [
        (1519659900.0, 1519659600.0, 900.0, True),
        (1519659600.0 + 4 * 900, 1519659600.0, 900.0, True),
        (1519659600.0 + 4 * 900 + 1, 1519659600.0, 900.0, False),  # beyond four windows
        (1_000_000_000_000.0, 1519659600.0, 900.0, False),  # the year 33658
        (1e30, 1519659600.0, 900.0, False),
        (1e30, None, 900.0, False),  # read against the server's clock as the bucket knows it
        (3600.0, 1519659600.0, 900.0, True),  # a delta of four windows
        (3601.0, 1519659600.0, 900.0, False),
        (1519659900.0, 1519659600.0, 60.0, False),  # five of these windows away
    ],
)
def test_plausible_reads_reset_against_date_and_the_window(reset, date, window, plausible):
    rate_limit = RateLimit(150, 10, reset, date)
    assert rate_limit.plausible(window, server_now=1519659600.0) is plausible


@pytest.mark.parametrize(
    "rate_limit",
    [
        RateLimit(150, 10, float("nan"), 1519659600.0),
        RateLimit(150, 10, float("inf"), 1519659600.0),
        RateLimit(0, 0, 1519659900.0, 1519659600.0),
        RateLimit(150, -1, 1519659900.0, 1519659600.0),
        RateLimit(150, 10**7, 1519659900.0, 1519659600.0),
    ],
)
def test_plausible_checks_values_built_by_hand_in_full(rate_limit):
    assert not rate_limit.plausible(900.0, server_now=1519659600.0)


TWO_DATES = [
    # (what, the Date values as sent, the server_date read)
    ("equal dates are one", ["Mon, 26 Feb 2018 15:40:00 GMT"] * 2, 1519659600.0),
    (
        "different dates: the latest",
        ["Mon, 26 Feb 2018 15:40:00 GMT", "Mon, 26 Feb 2018 15:40:01 GMT"],
        1519659601.0,
    ),
    (
        "the latest whatever the order",
        ["Mon, 26 Feb 2018 15:40:05 GMT", "Mon, 26 Feb 2018 15:40:01 GMT"],
        1519659605.0,
    ),
    ("an unreadable one is skipped", ["Mon, 26 Feb 2018 15:40:00 GMT", "garbage"], 1519659600.0),
]


@pytest.mark.parametrize(("what", "dates", "expected"), TWO_DATES)
def test_two_date_headers_are_read_sensibly(what, dates, expected):
    # Issue 11, case 5: uvicorn adds its own Date beside an app's; httpx joins the two with
    # ", " in get() and items(), which read as no Date at all.
    pairs = [(k, v) for k, v in EVENTS_SAMPLE.items() if k != "Date"]
    pairs += [("Date", date) for date in dates]
    assert RateLimit.from_headers(pairs).server_date == expected, what
    joined = httpx.Headers(pairs)
    assert RateLimit.from_headers(joined).server_date == expected, what  # ", "-joined
    assert RateLimit.from_headers(joined.multi_items()).server_date == expected, what


def test_a_repeated_quota_header_counts_only_when_the_copies_agree():
    pairs = [*EVENTS_SAMPLE.items(), ("X-RateLimit-Remaining", "149")]
    assert RateLimit.from_headers(pairs) == RateLimit(150, 149, 1519659900.0, 1519659600.0)
    pairs = [*EVENTS_SAMPLE.items(), ("X-RateLimit-Remaining", "3")]
    assert RateLimit.from_headers(pairs) is None


DATE = "Mon, 26 Feb 2018 15:40:00 GMT"  # 1519659600


@pytest.mark.parametrize(
    ("headers", "wall", "expected"),
    [
        ({"Retry-After": "1"}, 0.0, 1.0),
        ({"Retry-After": " 120 "}, 0.0, 120.0),
        ({"Retry-After": "1.5"}, 0.0, 1.5),
        ({"Retry-After": "-3"}, 0.0, 0.0),  # now
        # An HTTP date: against the answer's Date (the server's clock), whatever the wall clock.
        ({"Retry-After": "Mon, 26 Feb 2018 15:40:30 GMT", "Date": DATE}, 0.0, 30.0),
        ({"Retry-After": "Mon, 26 Feb 2018 15:40:30 GMT", "Date": DATE}, 1519659000.0, 30.0),
        # Without a Date, the local wall clock stands in.
        ({"Retry-After": "Mon, 26 Feb 2018 15:40:30 GMT"}, 1519659620.0, 10.0),
        ({"Retry-After": "Mon, 26 Feb 2018 15:39:00 GMT", "Date": DATE}, 0.0, 0.0),  # past
        ({}, 0.0, None),
        ({"Retry-After": "soon"}, 0.0, None),
        ({"Retry-After": "nan"}, 0.0, None),
        ({"Retry-After": "inf"}, 0.0, None),
        ({"Retry-After": "1e30"}, 0.0, None),
        ({"Retry-After": "86401"}, 0.0, None),  # more than a day: absurd
        ({"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT", "Date": DATE}, 0.0, None),
    ],
)
def test_parse_retry_after(headers, wall, expected):
    assert parse_retry_after(headers, wall) == expected
