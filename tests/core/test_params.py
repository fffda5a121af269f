from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plumvoice_async import InvalidParameterError, Period, PlumError
from plumvoice_async._core import params

# --- report days ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [date(2018, 2, 1), "20180201", 20180201])
def test_report_date_forms_are_equivalent(value):
    assert params.report_date(value, name="start") == "20180201"


@given(st.dates(min_value=date(1000, 1, 1)))
def test_report_date_date_str_and_int_agree_for_any_day(day):
    text = params.report_date(day, name="start")
    assert len(text) == 8
    assert params.report_date(text, name="start") == text
    assert params.report_date(int(text), name="start") == text
    assert date(int(text[:4]), int(text[4:6]), int(text[6:])) == day


def test_report_date_refuses_datetime_and_says_pass_a_date():
    with pytest.raises(InvalidParameterError, match="pass a date") as info:
        params.report_date(datetime(2018, 2, 1, tzinfo=UTC), name="end")
    assert info.value.parameter == "end"
    assert info.value.value == datetime(2018, 2, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (20180230, "not a calendar date"),
        ("20180229", "not a calendar date"),  # 2018 is no leap year
        ("00000101", "not a calendar date"),
        (date(999, 12, 31), "four-digit year"),
        ("09991231", "four-digit year"),
        ("2018-02-01", "8 digits"),
        ("\uff12\uff10\uff11\uff18\uff10\uff12\uff10\uff11", "8 digits"),  # full-width digits
        ("20180201\n", "8 digits"),
        (True, "bool"),
        (20180201.0, "got float"),
    ],
)
def test_report_date_refusals_explain_themselves(value, reason):
    with pytest.raises(InvalidParameterError, match=reason) as info:
        params.report_date(value, name="start")
    assert info.value.parameter == "start"
    assert "start" in str(info.value)


def test_report_date_accepts_leap_day():
    assert params.report_date("20160229", name="start") == "20160229"


def test_report_range_allows_one_day_and_names_end_when_reversed():
    assert params.report_range(20180201, "20180201") == ("20180201", "20180201")
    with pytest.raises(InvalidParameterError, match="end 20180131 is before start") as info:
        params.report_range(date(2018, 2, 1), date(2018, 1, 31))
    assert info.value.parameter == "end"


# --- period -----------------------------------------------------------------------------------


@pytest.mark.parametrize("member", list(Period))
def test_period_enum_and_string_agree(member):
    assert params.period(member) == params.period(member.value) == member.value
    assert type(params.period(member)) is str


@pytest.mark.parametrize("value", ["Day", "days", "", " day", None, 1])
def test_period_refuses_anything_else(value):
    with pytest.raises(InvalidParameterError) as info:
        params.period(value)
    assert info.value.parameter == "period"


# --- phone and number -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["ALL", "6177123000", "004420712345", "911", "1" * 15])
def test_phone_accepts_digits_and_all_unchanged(value):
    assert params.phone(value) == value


def test_phone_explains_lower_case_all_and_ints():
    with pytest.raises(InvalidParameterError, match="upper-case 'ALL'"):
        params.phone("all")
    with pytest.raises(InvalidParameterError, match="leading zeros"):
        params.phone(6177123000)


@pytest.mark.parametrize("value", ["12", "1" * 16, "+16177123000", "ALL/x", "617\t7123000"])
def test_phone_refuses_lengths_and_punctuation(value):
    with pytest.raises(InvalidParameterError, match="3 to 15 digits") as info:
        params.phone(value)
    assert info.value.parameter == "phone"


def test_number_is_optional_digits_without_the_all_literal():
    assert params.number(None) is None
    assert params.number("0617712300") == "0617712300"
    with pytest.raises(InvalidParameterError) as info:
        params.number("ALL")
    assert info.value.parameter == "number"
    assert "ALL" not in info.value.reason  # Fuse documents no such literal; do not suggest it


# --- Fuse instants ----------------------------------------------------------------------------


def test_fuse_time_aware_datetimes_in_different_zones_name_one_instant():
    utc = datetime(2018, 6, 21, 3, 0, tzinfo=UTC)
    eastern = datetime(2018, 6, 20, 23, 0, tzinfo=timezone(timedelta(hours=-4)))
    kolkata = datetime(2018, 6, 21, 8, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert {params.fuse_time(t, name="start") for t in (utc, eastern, kolkata)} == {1_529_550_000}
    assert params.fuse_time(1_529_550_000, name="start") == 1_529_550_000


def test_fuse_time_floors_fractional_seconds():
    base = datetime(2018, 6, 21, 3, 0, tzinfo=UTC)
    assert params.fuse_time(base + timedelta(microseconds=999_999), name="end") == 1_529_550_000
    just_after_epoch = datetime(1970, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC)
    assert params.fuse_time(just_after_epoch, name="start") == 0


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_fuse_time_is_the_floor_second_of_the_instant(moment, offset_minutes):
    zoned = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    # timegm of the UTC fields drops the microseconds: an independent floor.
    expected = calendar.timegm(moment.utctimetuple())
    assert params.fuse_time(zoned, name="start") == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (datetime(2018, 6, 21, 3), "naive"),
        (date(2018, 6, 21), "a date has no time of day"),
        (True, "bool"),
        (-1, "before 1970"),
        (datetime(1969, 12, 31, 23, 59, tzinfo=UTC), "before 1970"),
        (1_529_550_000_000, "milliseconds"),
        (1_529_550_000.5, "got float"),
        ("1529550000", "got str"),
    ],
)
def test_fuse_time_refusals_explain_themselves(value, reason):
    with pytest.raises(InvalidParameterError, match=reason) as info:
        params.fuse_time(value, name="end")
    assert info.value.parameter == "end"


def test_fuse_range_allows_one_second_and_keeps_order_after_flooring():
    assert params.fuse_range(5, 5) == (5, 5)
    start = datetime(2018, 6, 21, 3, 0, 0, 200_000, tzinfo=UTC)
    end = start + timedelta(microseconds=600_000)
    assert params.fuse_range(start, end) == (1_529_550_000, 1_529_550_000)
    with pytest.raises(InvalidParameterError, match="end 4 is before start 5") as info:
        params.fuse_range(5, 4)
    assert info.value.parameter == "end"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        # Reversed within one second: both floor to 1_529_550_000, yet end precedes start.
        (
            datetime(2018, 6, 21, 3, 0, 0, 600_000, tzinfo=UTC),
            datetime(2018, 6, 21, 3, 0, 0, 300_000, tzinfo=UTC),
        ),
        # An int start and a datetime end a microsecond before it.
        (1_529_550_000, datetime(2018, 6, 21, 2, 59, 59, 999_999, tzinfo=UTC)),
        # The same instant one microsecond apart, written in two zones.
        (
            datetime(2018, 6, 21, 3, 0, 0, 1, tzinfo=UTC),
            datetime(2018, 6, 20, 23, 0, tzinfo=timezone(timedelta(hours=-4))),
        ),
    ],
)
def test_fuse_range_checks_order_before_flooring(start, end):
    with pytest.raises(InvalidParameterError, match="before start") as info:
        params.fuse_range(start, end)
    assert info.value.parameter == "end"


def test_fuse_range_order_message_shows_the_fraction_that_reverses_it():
    start = datetime(2018, 6, 21, 3, 0, 0, 600_000, tzinfo=UTC)
    with pytest.raises(InvalidParameterError) as info:
        params.fuse_range(start, start - timedelta(microseconds=300_000))
    assert "end 1529550000.300000 is before start 1529550000.600000" in str(info.value)


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    st.integers(min_value=-(10**6), max_value=10**6),
)
def test_fuse_range_accepts_exactly_the_ordered_pairs(start, microseconds):
    end = start + timedelta(microseconds=microseconds)
    if microseconds < 0:
        with pytest.raises(InvalidParameterError):
            params.fuse_range(start, end)
    else:
        assert params.fuse_range(start, end) == (
            params.fuse_time(start, name="start"),
            params.fuse_time(end, name="end"),
        )


# --- the 5-day window -------------------------------------------------------------------------


def test_details_window_boundary_is_exactly_five_days():
    now = 1_529_600_000.0
    params.check_details_window(int(now) - 5 * 86_400, now=now)
    params.check_details_window(int(now) + 3_600, now=now)  # the future is not "old"
    with pytest.raises(InvalidParameterError, match="last 5 days") as info:
        params.check_details_window(int(now) - 5 * 86_400 - 1, now=now)
    assert info.value.parameter == "start"
    assert info.value.value == int(now) - 5 * 86_400 - 1


def test_details_window_message_gives_the_start_and_its_age():
    with pytest.raises(InvalidParameterError) as info:
        params.check_details_window(1_529_000_000, now=1_529_600_000.0)
    assert "2018-06-14T18:13:20+00:00" in str(info.value)
    assert "6.9 days ago" in str(info.value)


# --- paging -----------------------------------------------------------------------------------


def test_limit_and_offset_bounds():
    assert params.limit(None) is None
    assert params.offset(None) is None
    assert params.limit(1) == 1
    assert params.limit(10_000) == 10_000
    assert params.offset(0) == 0
    assert params.offset(10**9) == 10**9
    for bad in (0, 10_001, -1):
        with pytest.raises(InvalidParameterError, match="from 1 to 10000"):
            params.limit(bad)
    with pytest.raises(InvalidParameterError, match=">= 0"):
        params.offset(-1)
    with pytest.raises(InvalidParameterError, match="got bool"):
        params.offset(True)
    for bad in (2.0, "2", None):
        with pytest.raises(InvalidParameterError, match="expected an int") as info:
            params.count(bad, name="page_size", minimum=1)
        assert info.value.parameter == "page_size"


# --- session ids ------------------------------------------------------------------------------


def test_session_id_keeps_the_documented_form_verbatim():
    assert params.session_id("300060;001;1529552581") == "300060;001;1529552581"
    assert params.session_id("0;0;0") == "0;0;0"


@pytest.mark.parametrize(
    "value",
    ["1;2", "a;b;c", "1;2;3/../x", "1;2;3;4", ";;", "1;2;3\n", "1;;3", "1" * 21 + ";2;3", b"1;2;3"],
)
def test_session_id_refuses_other_shapes(value):
    with pytest.raises(InvalidParameterError, match="three ';'-separated groups") as info:
        params.session_id(value)
    assert info.value.parameter == "session_id"


def test_invalid_parameter_is_both_a_plum_error_and_a_value_error():
    with pytest.raises(ValueError, match="invalid limit=0") as info:
        params.limit(0)
    assert isinstance(info.value, PlumError)
