from __future__ import annotations

import string
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from plumvoice_async import InvalidParameterError, Period
from plumvoice_async._core import requests as rq
from plumvoice_async._core.requests import (
    DEFAULT_FUSE_URL,
    DEFAULT_VOICETRENDS_URL,
    QuotaGroup,
    RequestSpec,
)
from tests.bad_inputs import BAD_INPUTS, NOW, VALID_KWARGS, BadInput

FUSE_START = 1_529_550_000
FUSE_END = 1_529_560_000


def build(endpoint: str, kwargs: dict[str, Any]) -> RequestSpec:
    """Call the core builder behind each user-facing endpoint of the bad-input table."""
    if endpoint == "events":
        return rq.events_request(DEFAULT_VOICETRENDS_URL, **kwargs)
    if endpoint == "calls":
        return rq.calls_request(DEFAULT_FUSE_URL, **kwargs)
    if endpoint == "call_details":
        return rq.call_details_request(DEFAULT_FUSE_URL, now=NOW, **kwargs)
    if endpoint == "call_log":
        return rq.call_log_request(DEFAULT_FUSE_URL, **kwargs)
    raise AssertionError(f"unknown endpoint {endpoint}")


# --- the shared bad-input table ---------------------------------------------------------------


@pytest.mark.parametrize("row", BAD_INPUTS, ids=[row.id for row in BAD_INPUTS])
def test_bad_input_is_refused_naming_its_parameter(row: BadInput):
    with pytest.raises(InvalidParameterError) as info:
        build(row.endpoint, dict(row.kwargs))
    assert info.value.parameter == row.parameter
    assert row.parameter in str(info.value)


@pytest.mark.parametrize("endpoint", sorted(VALID_KWARGS))
def test_the_valid_kwargs_the_table_varies_are_accepted(endpoint):
    # Each row changes one value of these; if these failed, the rows would prove nothing.
    assert build(endpoint, dict(VALID_KWARGS[endpoint])).method == "GET"


def test_bad_input_table_is_broad_and_well_formed():
    assert len(BAD_INPUTS) >= 40
    assert len({row.id for row in BAD_INPUTS}) == len(BAD_INPUTS)
    covered = Counter((row.endpoint, row.parameter) for row in BAD_INPUTS)
    for endpoint, kwargs in VALID_KWARGS.items():
        for parameter in kwargs:
            assert covered[endpoint, parameter] >= 1, (endpoint, parameter)
    for endpoint in ("calls", "call_details"):
        for parameter in ("number", "limit", "offset"):
            assert covered[endpoint, parameter] >= 1, (endpoint, parameter)


# --- exact wire shapes ------------------------------------------------------------------------


def test_events_request_shape():
    spec = rq.events_request(
        DEFAULT_VOICETRENDS_URL,
        start=date(2018, 2, 1),
        end=date(2018, 2, 8),
        period="day",
        phone="ALL",
    )
    assert spec == RequestSpec(
        "GET",
        "https://voicetrends.plumvoice.com/api/events/20180201/20180208/day/ALL",
        QuotaGroup.VOICETRENDS,
        operation="events.fetch",
    )


@pytest.mark.parametrize(
    ("start", "end", "period"),
    [
        (date(2018, 2, 1), date(2018, 2, 8), Period.WEEK),
        ("20180201", "20180208", "week"),
        (20180201, 20180208, Period.WEEK),
    ],
)
def test_events_request_date_and_period_forms_agree(start, end, period):
    spec = rq.events_request(
        DEFAULT_VOICETRENDS_URL, start=start, end=end, period=period, phone="6177123000"
    )
    assert (
        spec.url == "https://voicetrends.plumvoice.com/api/events/20180201/20180208/week/6177123000"
    )


def test_calls_request_sends_every_given_query_in_order():
    spec = rq.calls_request(
        DEFAULT_FUSE_URL, start=FUSE_START, end=FUSE_END, number="6177123000", limit=1000, offset=0
    )
    assert spec == RequestSpec(
        "GET",
        "https://fuse.plumvoice.com/api/calls/1529550000/1529560000",
        QuotaGroup.FUSE,
        query=(("number", "6177123000"), ("limit", "1000"), ("offset", "0")),
        operation="calls.page",
    )


@pytest.mark.parametrize(
    ("given", "query"),
    [
        ({}, ()),
        ({"offset": 0}, (("offset", "0"),)),  # 0 is given: it must not be dropped as falsy
        ({"limit": 10_000}, (("limit", "10000"),)),
        ({"offset": 5, "number": "911"}, (("number", "911"), ("offset", "5"))),
    ],
)
def test_calls_request_sends_only_the_given_query(given, query):
    spec = rq.calls_request(DEFAULT_FUSE_URL, start=FUSE_START, end=FUSE_END, **given)
    assert spec.query == query


def test_calls_request_aware_datetimes_in_any_zone_give_the_same_url():
    by_int = rq.calls_request(DEFAULT_FUSE_URL, start=FUSE_START, end=FUSE_END)
    by_utc = rq.calls_request(
        DEFAULT_FUSE_URL,
        start=datetime(2018, 6, 21, 3, 0, tzinfo=UTC),
        end=datetime(2018, 6, 21, 5, 46, 40, 999_999, tzinfo=UTC),  # floored to 1529560000
    )
    by_tokyo = rq.calls_request(
        DEFAULT_FUSE_URL,
        start=datetime(2018, 6, 21, 12, 0, tzinfo=timezone(timedelta(hours=9))),
        end=datetime(2018, 6, 21, 14, 46, 40, tzinfo=timezone(timedelta(hours=9))),
    )
    assert by_int == by_utc == by_tokyo


def test_call_details_request_shape_and_window():
    spec = rq.call_details_request(
        DEFAULT_FUSE_URL, start=FUSE_START, end=FUSE_END, number="6177123001", limit=50, now=NOW
    )
    assert spec == RequestSpec(
        "GET",
        "https://fuse.plumvoice.com/api/all_logs/1529550000/1529560000",
        QuotaGroup.FUSE,
        query=(("number", "6177123001"), ("limit", "50")),
        operation="call_details.page",
    )
    oldest = int(NOW) - 5 * 86_400
    assert rq.call_details_request(DEFAULT_FUSE_URL, start=oldest, end=FUSE_END, now=NOW).url == (
        f"https://fuse.plumvoice.com/api/all_logs/{oldest}/1529560000"
    )
    # calls has no window: the same old start is fine there.
    assert rq.calls_request(DEFAULT_FUSE_URL, start=oldest - 86_400, end=FUSE_END).url.endswith(
        f"/calls/{oldest - 86_400}/1529560000"
    )


def test_call_log_request_encodes_the_session_id_as_one_segment():
    spec = rq.call_log_request(DEFAULT_FUSE_URL, session_id="300060;001;1529552581")
    assert spec == RequestSpec(
        "GET",
        "https://fuse.plumvoice.com/api/call/300060%3B001%3B1529552581",
        QuotaGroup.FUSE,
        operation="call_details.get",
    )
    # httpx sends the path as built: the %3B survives, so the server sees one segment.
    assert httpx.URL(spec.url).raw_path == b"/api/call/300060%3B001%3B1529552581"


def test_builders_join_onto_a_custom_base_without_a_trailing_slash():
    spec = rq.call_log_request("http://127.0.0.1:8080/plum", session_id="1;2;3")
    assert spec.url == "http://127.0.0.1:8080/plum/call/1%3B2%3B3"


# --- every VoiceTrends report through the one helper ------------------------------------------

REPORTS = [
    (rq.EVENTS, "events"),
    (rq.VOLUME, "volume"),
    (rq.PERFORMANCE, "performance"),
    (rq.CALLER_PROFILE, "profile"),
    (rq.DIAGNOSTIC_FLOW, "path"),
    (rq.GEOGRAPHIC, "profile"),
]


REPORT_IDS = ["events", "volume", "performance", "caller-profile", "diagnostic-flow", "geographic"]


@pytest.mark.parametrize(("report", "resource"), REPORTS, ids=REPORT_IDS)
def test_report_request_paths(report, resource):
    kwargs: dict[str, Any] = {"start": 20180201, "end": 20180208, "phone": "ALL"}
    if report.takes_period:
        spec = rq.report_request(DEFAULT_VOICETRENDS_URL, report, period="month", **kwargs)
        tail = f"{resource}/20180201/20180208/month/ALL"
    else:
        spec = rq.report_request(DEFAULT_VOICETRENDS_URL, report, **kwargs)
        tail = f"{resource}/20180201/20180208/ALL"
    assert spec.url == DEFAULT_VOICETRENDS_URL + tail
    assert spec.group is QuotaGroup.VOICETRENDS


def test_report_request_refuses_a_period_the_report_does_not_take():
    with pytest.raises(InvalidParameterError, match="the geographic report has no period") as info:
        rq.report_request(
            DEFAULT_VOICETRENDS_URL,
            rq.GEOGRAPHIC,
            start=20180201,
            end=20180208,
            phone="ALL",
            period="day",
        )
    assert info.value.parameter == "period"
    with pytest.raises(InvalidParameterError) as info:
        rq.report_request(
            DEFAULT_VOICETRENDS_URL, rq.VOLUME, start=20180201, end=20180208, phone="ALL"
        )
    assert info.value.parameter == "period"


report_dates = st.dates(min_value=date(1000, 1, 1))
date_forms = st.sampled_from(
    [lambda d: d, lambda d: d.strftime("%Y%m%d"), lambda d: int(d.strftime("%Y%m%d"))]
)
phones = st.from_regex(r"[0-9]{3,15}", fullmatch=True) | st.just("ALL")
periods = st.sampled_from([*Period, *(p.value for p in Period)])


@given(
    st.sampled_from([report for report, _ in REPORTS]),
    report_dates,
    report_dates,
    date_forms,
    phones,
    periods,
)
def test_any_valid_report_input_yields_exactly_the_expected_segments(
    report, day_a, day_b, form, phone, period
):
    start, end = sorted((day_a, day_b))
    kwargs: dict[str, Any] = {"start": form(start), "end": form(end), "phone": phone}
    if report.takes_period:
        kwargs["period"] = period
    spec = rq.report_request(DEFAULT_VOICETRENDS_URL, report, **kwargs)
    assert spec.url.startswith(DEFAULT_VOICETRENDS_URL)
    segments = spec.url.removeprefix(DEFAULT_VOICETRENDS_URL).split("/")
    expected = [report.resource, f"{start:%Y%m%d}", f"{end:%Y%m%d}"]
    if report.takes_period:
        expected.append(Period(period).value)
    expected.append(phone)
    assert segments == expected


@given(st.text(max_size=20))
def test_any_text_as_phone_is_refused_or_stays_one_segment(text):
    try:
        spec = rq.events_request(
            DEFAULT_VOICETRENDS_URL, start=20180201, end=20180208, period="day", phone=text
        )
    except InvalidParameterError as exc:
        refused_parameter = exc.parameter
    else:
        segments = spec.url.removeprefix(DEFAULT_VOICETRENDS_URL).split("/")
        assert segments == ["events", "20180201", "20180208", "day", text]
        return
    assert refused_parameter == "phone"


# --- one segment, whatever the text ------------------------------------------------------------

_UNRESERVED = set(string.ascii_letters + string.digits + "-._~%")


@given(st.text(min_size=1).filter(lambda t: t not in (".", "..")))
def test_path_segment_encodes_any_text_as_one_reversible_segment(text):
    segment = rq.path_segment(text)
    assert set(segment) <= _UNRESERVED
    assert unquote(segment) == text


@pytest.mark.parametrize("text", ["", ".", ".."])
def test_path_segment_refuses_segments_that_vanish_or_climb(text):
    with pytest.raises(ValueError, match="would remove or climb"):
        rq.path_segment(text)


def test_path_segment_encodes_what_validation_would_refuse():
    assert rq.path_segment("ALL/../x") == "ALL%2F..%2Fx"
    assert rq.path_segment("%2F") == "%252F"
    assert rq.path_segment("1;2 3?#") == "1%3B2%203%3F%23"


# --- base URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        (DEFAULT_FUSE_URL, DEFAULT_FUSE_URL),
        (DEFAULT_VOICETRENDS_URL, DEFAULT_VOICETRENDS_URL),
        ("https://fuse.plumvoice.com/api", "https://fuse.plumvoice.com/api/"),
        ("https://fuse.plumvoice.com/api///", "https://fuse.plumvoice.com/api/"),
        ("https://fuse.plumvoice.com", "https://fuse.plumvoice.com/"),
        ("HTTPS://Fuse.PlumVoice.com/Api/", "https://fuse.plumvoice.com/Api/"),
        ("https://proxy.example.com:8443/plum/fuse", "https://proxy.example.com:8443/plum/fuse/"),
        ("http://127.0.0.1:8000/api", "http://127.0.0.1:8000/api/"),
        ("http://127.5.5.5/api/", "http://127.5.5.5/api/"),
        ("http://localhost:8000", "http://localhost:8000/"),
        ("http://LOCALHOST/api", "http://localhost/api/"),
        ("http://[::1]:8000/api", "http://[::1]:8000/api/"),
    ],
)
def test_normalise_base_url_accepts_and_normalises(url, normalised):
    assert rq.normalise_base_url(url, name="fuse_url") == normalised
    assert rq.normalise_base_url(normalised, name="fuse_url") == normalised  # idempotent


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/api/", "plain http:// to 'example.com'"),
        ("http://fuse.plumvoice.com/api/", "plain http://"),
        ("http://128.0.0.1/api/", "plain http://"),
        ("http://10.0.0.1/api/", "plain http://"),
        ("http://[::2]/api/", "plain http://"),
        ("http://localhost.example.com/", "plain http://"),
        ("http://127.0.0.1.nip.io/", "plain http://"),
        ("ftp://fuse.plumvoice.com/api/", "scheme 'ftp'"),
        ("fuse.plumvoice.com/api/", "scheme ''"),
        ("https:///api/", "no host"),
        ("https://fuse.plumvoice.com/api/?debug=1", "query string or a fragment"),
        ("https://fuse.plumvoice.com/api/?", "query string or a fragment"),
        ("https://fuse.plumvoice.com/api/#top", "query string or a fragment"),
        ("https://fuse.plumvoice.com/api/ ", "whitespace"),
        ("https://fuse.plumvoice.com:99999/api/", "not a valid URL"),
        ("https://[::1/api/", "not a valid URL"),
    ],
)
def test_normalise_base_url_refusals_name_the_setting(url, reason):
    with pytest.raises(ValueError, match=reason) as info:
        rq.normalise_base_url(url, name="voicetrends_url")
    assert str(info.value).startswith("voicetrends_url ")
    assert not isinstance(info.value, InvalidParameterError)


@pytest.mark.parametrize(
    "url",
    [
        "https://me%40example.com:SECRETKEY@fuse.plumvoice.com/api/",
        "https://SECRETKEY@fuse.plumvoice.com/api/",
        "http://me:SECRETKEY@127.0.0.1/api/",
        "http://me:SECRETKEY@example.com/api/?x#y",
    ],
)
def test_normalise_base_url_refuses_user_info_without_echoing_it(url):
    with pytest.raises(ValueError, match="user info") as info:
        rq.normalise_base_url(url, name="fuse_url")
    assert "SECRETKEY" not in str(info.value)
    assert "example.com" not in str(info.value)


def test_builders_refuse_a_bad_base_url_too():
    with pytest.raises(ValueError, match="plain http://"):
        rq.calls_request("http://example.com/api", start=FUSE_START, end=FUSE_END)


def test_every_report_names_its_operation_after_the_client_attribute():
    # PlumClient's report attributes (api-contract.md, "Beyond the seeds").
    client_attributes = {"events", "volume", "performance", "caller_profile", "diagnostic_flow"}
    for report in (rq.EVENTS, rq.VOLUME, rq.PERFORMANCE, rq.CALLER_PROFILE, rq.DIAGNOSTIC_FLOW):
        spec = rq.report_request(
            DEFAULT_VOICETRENDS_URL,
            report,
            start="20180201",
            end="20180208",
            phone="ALL",
            period="day" if report.takes_period else None,
        )
        resource, method = spec.operation.split(".")
        assert method == "fetch"
        assert resource in client_attributes
