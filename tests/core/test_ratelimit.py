from __future__ import annotations

import pytest

from plumvoice_async._core.ratelimit import RateLimit, parse_http_date

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
