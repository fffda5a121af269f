"""The other VoiceTrends reports and the minted credentials: samples, quirks, XML, round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plumvoice_async import (
    CallerProfile,
    DecodeError,
    DiagnosticFlow,
    FlowNode,
    GeographicProfile,
    PerformanceReport,
    VolumeReport,
)
from plumvoice_async._core.decode import decode_response
from plumvoice_async._models import TemporaryCredentials
from plumvoice_async.testing._render import MEDIA_TYPES, render, render_json, render_xml
from tests.samples import load_sample

DAYS = [datetime(2018, 2, day, 5, tzinfo=UTC) for day in range(1, 9)]  # 1517461200, +86400...


def days(*values: float) -> dict[datetime, float]:
    return dict(zip(DAYS, values, strict=True))


ZEROS = days(0, 0, 0, 0, 0, 0, 0, 0)
ONE_CALL = days(0, 0, 0, 0, 0, 0, 1, 0)
STATES = [
    "AL",
    "AK",
    "AZ",
    "AR",
    "CA",
    "CO",
    "CT",
    "DC",
    "DE",
    "FL",
    "GA",
    "HI",
    "ID",
    "IL",
    "IN",
    "IA",
    "KS",
    "KY",
    "LA",
    "ME",
    "MD",
    "MA",
    "MI",
    "MN",
    "MS",
    "MO",
    "MT",
    "NE",
    "NV",
    "NH",
    "NJ",
    "NM",
    "NY",
    "NC",
    "ND",
    "OH",
    "OK",
    "OR",
    "PA",
    "RI",
    "SC",
    "SD",
    "TN",
    "TX",
    "UT",
    "VT",
    "VA",
    "WA",
    "WV",
    "WI",
    "WY",
]
DEMO_APP = "https://demos.plumgroup.com/vxml/start.php"

EXPECTED: dict[str, Any] = {
    "volume/200": VolumeReport(
        calls=ONE_CALL,
        call_minutes=days(0, 0, 0, 0, 0, 0, 2.4, 0),
        transfers=ZEROS,
        transfer_minutes=ZEROS,
    ),
    "performance/200": PerformanceReport(
        calls=ONE_CALL,
        js_errors=ZEROS,
        js_errors_per_call=ZEROS,
        fetch_errors=ZEROS,
        fetch_errors_per_call=ZEROS,
        average_page_load=days(0, 0, 0, 0, 0, 0, 1.37, 0),
    ),
    "profile/200": CallerProfile(calls=ONE_CALL, callers=ONE_CALL),
    "path/200": DiagnosticFlow(
        applications={
            DEMO_APP: [
                FlowNode("main.php", "main_menu", "selection", 985, 941, 32, 12, 0, 0),
                FlowNode("sales.php", "product_menu", "selection", 462, 425, 20, 4, 0, 13),
            ]
        }
    ),
    "geographic/200": GeographicProfile(
        us={**dict.fromkeys(STATES, 0), "US Toll-Free": 1}, non_us={}
    ),
    "auth/200": TemporaryCredentials(
        "57b264aa1b794ff89d4effaafdf5e4b0", "25d421b1ee6c44daa2d34808e9466f5c"
    ),
}


def decode(fmt: str, body: bytes, model: Any) -> Any:
    return decode_response(200, {"Content-Type": MEDIA_TYPES[fmt]}, body, model)


def decode_sample(name: str, model: Any) -> Any:
    status, headers, body = load_sample(name)
    return decode_response(status, headers, body, model)


# --- the samples -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_samples_decode_to_the_expected_models(name: str, fmt: str) -> None:
    expected = EXPECTED[name]
    decoded = decode_sample(f"{name}.{fmt}", type(expected))
    assert decoded == expected
    if isinstance(expected, TemporaryCredentials):  # equal, and both halves really read
        assert (decoded.login, decoded.password) == (expected.login, expected.password)


def test_geographic_sample_keeps_the_documented_key_order_and_the_toll_free_key() -> None:
    for fmt in ("json", "xml"):
        profile = decode_sample(f"geographic/200.{fmt}", GeographicProfile)
        assert list(profile.us) == [*STATES, "US Toll-Free"]
        assert len(profile.us) == 52
        assert profile.non_us == {}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_renderer_writes_the_xml_samples_byte_for_byte(name: str) -> None:
    assert render_xml(EXPECTED[name]) == load_sample(f"{name}.xml")[2]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_renderer_writes_the_json_samples_data(name: str) -> None:
    assert json.loads(render_json(EXPECTED[name])) == json.loads(load_sample(f"{name}.json")[2])


def test_json_escapes_slashes_as_php_does_and_empty_maps_are_empty_arrays() -> None:
    # plum-api.md 1.5: the diagnostic flow sample prints "https:\/\/..."; "NON_US":[].
    assert b'"https:\\/\\/demos.plumgroup.com\\/vxml\\/start.php":[' in render_json(
        EXPECTED["path/200"]
    )
    assert b'"NON_US":[]' in render_json(EXPECTED["geographic/200"])
    assert render_json(DiagnosticFlow()) == b'{"applications":[]}'


# --- tolerance: absent, empty and unknown ------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "documented"),
    [
        (VolumeReport, "call_minutes"),
        (PerformanceReport, "average_page_load"),
        (CallerProfile, "callers"),
    ],
)
def test_series_reports_keep_unknown_series_and_read_absent_ones_as_empty(
    model: type, documented: str
) -> None:
    body = json.dumps(
        {
            documented: {"1517547600": 2, "1517461200": "1.5"},
            "transfer_rate": {"1517461200": 0.25},
            "note": "not a series",
            "empty_one": [],
        }
    ).encode()
    report = decode("json", body, model)
    assert getattr(report, documented) == {DAYS[0]: 1.5, DAYS[1]: 2}
    assert list(getattr(report, documented)) == DAYS[:2]  # time order, whatever the wire's
    assert report.calls == {}
    assert report.extra == {"transfer_rate": {DAYS[0]: 0.25}}


def test_geographic_reads_non_us_objects_and_keeps_unknown_count_maps() -> None:
    body = (
        b'{"US":{"MA":"3","US Toll-Free":1},"NON_US":{"CA":2,"GB":"4"},'
        b'"CA_PROVINCES":{"ON":5},"note":"x","error_codes":{"a":"b"}}'
    )
    profile = decode("json", body, GeographicProfile)
    assert profile == GeographicProfile(
        us={"MA": 3, "US Toll-Free": 1},
        non_us={"CA": 2, "GB": 4},
        extra={"CA_PROVINCES": {"ON": 5}},
    )


@pytest.mark.parametrize(
    ("fmt", "body", "expected"),
    [
        ("json", b'{"US":[],"NON_US":[]}', GeographicProfile()),
        ("json", b"{}", GeographicProfile()),
        ("xml", b"<result><US/><NON_US/></result>", GeographicProfile()),
        (
            "xml",
            b'<result><US><item key="US Toll-Free">2</item></US>'
            b'<NON_US><item key="Trinidad &amp; Tobago">1</item></NON_US></result>',
            GeographicProfile(us={"US Toll-Free": 2}, non_us={"Trinidad & Tobago": 1}),
        ),
    ],
)
def test_geographic_empty_and_keyed_shapes(fmt: str, body: bytes, expected: Any) -> None:
    assert decode(fmt, body, GeographicProfile) == expected


@pytest.mark.parametrize(
    ("fmt", "body", "expected"),
    [
        ("json", b'{"applications":[]}', DiagnosticFlow()),
        ("json", b'{"applications":{"u":[]}}', DiagnosticFlow({"u": []})),
        ("xml", b"<result><applications/></result>", DiagnosticFlow()),
        ("xml", b'<result><applications><item url="u"/></applications></result>', None),
    ],
)
def test_diagnostic_flow_empty_shapes(fmt: str, body: bytes, expected: Any) -> None:
    assert decode(fmt, body, DiagnosticFlow) == (expected or DiagnosticFlow({"u": []}))


def test_a_flow_node_in_xml_keeps_its_item_field_and_one_node_is_a_list_of_one() -> None:
    body = (
        b'<result><applications><item url="https://a.example/s.php?x=1&amp;y=2"><item>'
        b"<page>p.php</page><form>f</form><item>choice</item><visits>3</visits>"
        b"<filled>1</filled><nomatch>1</nomatch><noinput>1</noinput><transfer>0</transfer>"
        b"<disconnect>0</disconnect><hangups>9</hangups></item></item></applications></result>"
    )
    flow = decode("xml", body, DiagnosticFlow)
    assert flow == DiagnosticFlow(
        {"https://a.example/s.php?x=1&y=2": [FlowNode("p.php", "f", "choice", 3, 1, 1, 1, 0, 0)]}
    )


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "body", "model", "reason"),
    [
        ("json", b'{"US":"none"}', GeographicProfile, "expected an object, got str @ $.us"),
        ("json", b'{"US":{"MA":"many"}}', GeographicProfile, "expected an integer"),
        ("json", b'{"applications":"none"}', DiagnosticFlow, "expected an object, got str"),
        (
            "json",
            b'{"applications":{"u":[{"page":"p","form":"f","item":"i"}]}}',
            DiagnosticFlow,
            "required field missing @ $.applications['u'][0].visits",
        ),
        ("json", b'{"calls":{"1517461200":"x"}}', VolumeReport, "expected a number"),
        (
            "xml",
            b'<result><US><item key="MA">1</item><item>2</item></US></result>',
            GeographicProfile,
            "an <item> without a key among keyed items",
        ),
        (
            "xml",
            b'<result><US><item key="MA">1</item><item url="u">2</item></US></result>',
            GeographicProfile,
            "an <item> without a key among keyed items",
        ),
        (
            "xml",
            b'<result><calls><item>1</item><item timestamp="1">2</item></calls></result>',
            PerformanceReport,
            "keyed and unkeyed <item> elements mixed",
        ),
    ],
)
def test_malformed_report_bodies_are_decode_errors(
    fmt: str, body: bytes, model: Any, reason: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(fmt, body, model)
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("fmt", "body", "reason"),
    [
        ("json", b'{"login":"secret-login-1"}', "the temporary password is missing"),
        ("json", b'{"login":"","password":"secret-pw-1"}', "the temporary login is not a non-emp"),
        ("json", b'{"login":"secret-login-1","password":42424242}', "not a non-empty string (int)"),
        ("json", b'["secret-login-1","secret-pw-1"]', "expected an object, got list"),
        ("xml", b"<result><login/><password>secret-pw-1</password></result>", "temporary login"),
    ],
)
def test_bad_temporary_credentials_are_refused_without_showing_them(
    fmt: str, body: bytes, reason: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(fmt, body, TemporaryCredentials)
    assert reason in caught.value.reason
    for secret in ("secret-login-1", "secret-pw-1", "42424242"):
        assert secret not in caught.value.reason


def test_temporary_credentials_never_show_in_repr_or_str() -> None:
    pair = EXPECTED["auth/200"]
    for text in (repr(pair), str(pair), repr([pair])):
        assert pair.login not in text
        assert pair.password not in text


# --- round trips -------------------------------------------------------------------------------

# XML 1.0 cannot carry most control characters, and an element holding only blank text reads
# as empty: element text is empty or has a visible character. Attribute values (map keys) may
# be any XML text: the renderer writes tabs, newlines and carriage returns as references.
XML_CHARACTERS = st.characters(
    blacklist_categories=("Cs", "Cc", "Cn"), whitelist_characters="\t\n\r"
)
TEXT = st.text(XML_CHARACTERS, max_size=10).filter(lambda text: text == "" or text.strip() != "")
KEYS = st.text(XML_CHARACTERS, max_size=10)
# Lower-case names cannot spell a documented field (calls, US, NON_US...) nor "error".
EXTRA_NAMES = st.builds(
    str.__add__, st.sampled_from("bdkqxz_"), st.text("bdkqxz_019", max_size=6)
).filter(lambda name: name != "item")
MOMENTS = st.integers(min_value=0, max_value=4_102_444_800).map(
    lambda seconds: datetime.fromtimestamp(seconds, UTC)
)
NUMBERS = st.integers(min_value=-(10**12), max_value=10**12) | st.floats(
    allow_nan=False, allow_infinity=False
)
SERIES = st.dictionaries(MOMENTS, NUMBERS, max_size=3).map(
    lambda points: dict(sorted(points.items()))
)
EXTRA_SERIES = st.dictionaries(EXTRA_NAMES, SERIES.filter(bool), max_size=2)
COUNTS = st.dictionaries(KEYS, st.integers(min_value=0, max_value=10**9), max_size=4)
COUNTERS = st.integers(min_value=0, max_value=10**9)
FLOW_NODES = st.builds(
    FlowNode,
    page=TEXT,
    form=TEXT,
    item=TEXT,
    visits=COUNTERS,
    filled=COUNTERS,
    nomatch=COUNTERS,
    noinput=COUNTERS,
    transfer=COUNTERS,
    disconnect=COUNTERS,
)
REPORTS = st.one_of(
    st.builds(
        VolumeReport,
        calls=SERIES,
        call_minutes=SERIES,
        transfers=SERIES,
        transfer_minutes=SERIES,
        extra=EXTRA_SERIES,
    ),
    st.builds(
        PerformanceReport,
        calls=SERIES,
        js_errors=SERIES,
        js_errors_per_call=SERIES,
        fetch_errors=SERIES,
        fetch_errors_per_call=SERIES,
        average_page_load=SERIES,
        extra=EXTRA_SERIES,
    ),
    st.builds(CallerProfile, calls=SERIES, callers=SERIES, extra=EXTRA_SERIES),
    st.builds(
        DiagnosticFlow,
        applications=st.dictionaries(KEYS, st.lists(FLOW_NODES, max_size=3), max_size=3),
    ),
    st.builds(
        GeographicProfile,
        us=COUNTS,
        non_us=COUNTS,
        # An empty unknown map reads as nothing at all, so only non-empty ones round-trip.
        extra=st.dictionaries(EXTRA_NAMES, COUNTS.filter(bool), max_size=2),
    ),
    st.builds(
        TemporaryCredentials,
        login=st.text(XML_CHARACTERS, min_size=1, max_size=12).filter(str.strip),
        password=st.text(XML_CHARACTERS, min_size=1, max_size=12).filter(str.strip),
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(REPORTS)
def test_reports_round_trip_through_json_and_xml(report: Any) -> None:
    for fmt in ("json", "xml"):
        decoded = decode(fmt, render(report, fmt), type(report))
        assert decoded == report
        if isinstance(report, GeographicProfile):
            assert list(decoded.us) == list(report.us)  # the wire's order is kept
        if isinstance(report, TemporaryCredentials):
            assert (decoded.login, decoded.password) == (report.login, report.password)
