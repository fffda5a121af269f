"""The renderers: the documented shapes byte for byte, and render -> decode round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plumvoice_async._core.decode import decode_response
from plumvoice_async._models import (
    Call,
    CallEvent,
    CallPage,
    CallType,
    DetailedCall,
    DetailedCallPage,
    EventReport,
)
from plumvoice_async.testing._render import (
    MEDIA_TYPES,
    render,
    render_error,
    render_json,
    render_xml,
)
from tests.samples import load_sample

EPOCH_2018 = datetime(2018, 2, 1, 5, tzinfo=UTC)
SAMPLE_MODELS = {
    "events/200": EventReport,
    "calls/200": CallPage,
    "all_logs/200": DetailedCallPage,
    "call/200": list[CallEvent],
}


def decode(fmt: str, body: bytes, model: Any) -> Any:
    return decode_response(200, {"Content-Type": MEDIA_TYPES[fmt]}, body, model)


def a_call(**changes: Any) -> Call:
    fields: dict[str, Any] = {
        "dest": "8009957586",
        "src": "2125551234",
        "start": datetime(2018, 6, 21, 3, 44, 51, tzinfo=UTC),
        "end": datetime(2018, 6, 21, 3, 44, 57, tzinfo=UTC),
        "session_id": "300060;001;1529552581",
        "type": CallType.INBOUND,
        "log": True,
    }
    fields.update(changes)
    return Call(**fields)


def an_event(**changes: Any) -> CallEvent:
    fields: dict[str, Any] = {
        "line": "Sent",
        "data": {"module_type": "email", "result_variable": "var_1"},
        "event_class": "debug",
        "timestamp": datetime(2018, 6, 21, 3, 44, 54, tzinfo=UTC),
    }
    fields.update(changes)
    return CallEvent(**fields)


def a_detailed_call(detail: list[CallEvent]) -> DetailedCall:
    call = a_call()
    return DetailedCall(
        call.dest, call.src, call.start, call.end, call.session_id, call.type, call.log, detail
    )


def a_report(**changes: Any) -> EventReport:
    series: dict[str, Any] = {
        "calls": {},
        "log_events": {},
        "loops_per_call": {},
        "form_items": {},
        "loops": {},
        "average_form_items": {},
    }
    series.update(changes)
    return EventReport(**series)


# --- the documented samples --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["events/200.xml", "calls/200.xml"])
def test_xml_reproduces_the_documented_samples_byte_for_byte(name: str) -> None:
    status, headers, body = load_sample(name)
    model = SAMPLE_MODELS[name.rsplit(".", 1)[0]]
    assert render_xml(decode_response(status, headers, body, model)) == body


@pytest.mark.parametrize(
    "name", ["events/200.json", "calls/200.json", "all_logs/200.json", "call/200.json"]
)
def test_json_reproduces_the_documented_samples(name: str) -> None:
    # The docs print their JSON indented in several styles; the data must be identical,
    # including all_logs' string start/end and the JSON false of has_audio.
    status, headers, body = load_sample(name)
    model = SAMPLE_MODELS[name.rsplit(".", 1)[0]]
    assert json.loads(render_json(decode_response(status, headers, body, model))) == json.loads(
        body
    )


def test_error_bodies_reproduce_the_documented_samples() -> None:
    assert render_error("Invalid start parameter.", "xml") == load_sample("events/400.xml")[2]
    assert render_error("Invalid start parameter.", "json") == (
        load_sample("events/400.json")[2].rstrip(b"\n")
    )
    assert render_error("a < b & c", "xml").splitlines()[2] == b"  <error>a &lt; b &amp; c</error>"


# --- the documented quirks -----------------------------------------------------------------------


def test_calls_json_sends_int_times_and_all_logs_string_times() -> None:
    page = json.loads(render_json(CallPage(calls=[a_call()], total_calls=1)))
    assert page["calls"][0]["start"] == 1529552691
    assert page["calls"][0]["log"] is True
    detailed = json.loads(render_json(DetailedCallPage([a_detailed_call([])], total_calls=1)))
    assert detailed["calls"][0]["start"] == "1529552691"
    assert detailed["calls"][0]["end"] == "1529552697"
    assert list(detailed["calls"][0]) == [
        "dest",
        "src",
        "start",
        "end",
        "session_id",
        "detail",
        "type",
        "log",
    ]


def test_compact_json() -> None:
    assert render_json(CallPage(calls=[], total_calls=0)) == b'{"calls":[],"total_calls":0}'


def test_empty_series_and_empty_data_are_php_empty_arrays() -> None:
    report = json.loads(render_json(a_report(calls={EPOCH_2018: 1})))
    assert report["calls"] == {"1517461200": 1}
    assert report["loops"] == []
    (event,) = json.loads(render_json([an_event(data={})]))
    assert event == {
        "event": {"line": "Sent", "data": []},
        "class": "debug",
        "timestamp": 1529552694,
    }


def test_xml_shapes() -> None:
    assert render_xml(CallPage(calls=[], total_calls=0)).splitlines() == [
        b'<?xml version="1.0"?>',
        b"<result>",
        b"  <calls/>",
        b"  <total_calls>0</total_calls>",
        b"</result>",
    ]
    assert render_xml([]) == b'<?xml version="1.0"?>\n<result/>\n'
    report = render_xml(a_report(calls={EPOCH_2018: 0.5}, extra={"transfers": {EPOCH_2018: 3}}))
    assert b'  <calls>\n    <item timestamp="1517461200">0.5</item>\n  </calls>\n' in report
    assert b"  <loops/>\n" in report
    assert b'  <transfers>\n    <item timestamp="1517461200">3</item>\n  </transfers>\n' in report


def test_xml_event_shape() -> None:
    body = render_xml([an_event(data={"has_audio": False, "n": 3, "nested": {"a": ["x"]}})])
    assert body.decode().splitlines() == [
        '<?xml version="1.0"?>',
        "<result>",
        "  <item>",
        "    <event>",
        "      <line>Sent</line>",
        "      <data>",
        "        <has_audio>false</has_audio>",
        "        <n>3</n>",
        "        <nested>",
        "          <a>",
        "            <item>x</item>",
        "          </a>",
        "        </nested>",
        "      </data>",
        "    </event>",
        "    <class>debug</class>",
        "    <timestamp>1529552694</timestamp>",
        "  </item>",
        "</result>",
    ]


@pytest.mark.parametrize("key", ["has audio", "1st", "item", ""])
def test_xml_refuses_keys_it_cannot_carry(key: str) -> None:
    with pytest.raises(ValueError, match="cannot be an XML element name"):
        render_xml([an_event(data={key: "x"})])


def test_render_dispatches_on_format() -> None:
    page = CallPage(calls=[a_call()], total_calls=1)
    assert render(page, "xml") == render_xml(page)
    assert render(page, "json") == render_json(page)


def test_unknown_objects_are_refused() -> None:
    with pytest.raises(TypeError, match="cannot render Call"):
        render_json(a_call())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot render int"):
        render_xml(5)  # type: ignore[arg-type]


# --- round trips ---------------------------------------------------------------------------------

# XML 1.0 cannot carry most control characters, and an element holding only blank text reads
# as empty: text fields are empty or have a visible character; carriage returns are kept (the
# renderer writes them as &#13;).
XML_CHARACTERS = st.characters(
    blacklist_categories=("Cs", "Cc", "Cn"), whitelist_characters="\t\n\r"
)
TEXT = st.text(XML_CHARACTERS, max_size=12).filter(lambda text: text == "" or text.strip() != "")
VISIBLE_TEXT = st.text(XML_CHARACTERS, min_size=1, max_size=12).filter(str.strip)
XML_NAMES = st.builds(
    str.__add__, st.sampled_from("abcxyz_"), st.text("abcxyz_019", max_size=6)
).filter(lambda name: name != "item")
MOMENTS = st.integers(min_value=0, max_value=4_102_444_800).map(
    lambda seconds: datetime.fromtimestamp(seconds, UTC)
)
CALL_TYPES = st.sampled_from(list(CallType)) | st.text("abcdefghij", min_size=1, max_size=8).map(
    CallType
)
NUMBERS = st.integers(min_value=-(10**12), max_value=10**12) | st.floats(
    allow_nan=False, allow_infinity=False
)
SERIES = st.dictionaries(MOMENTS, NUMBERS, max_size=4).map(
    lambda points: dict(sorted(points.items()))
)
EVENTS = st.builds(
    CallEvent,
    line=TEXT,
    # XML has no types: data values are text so both formats can carry them.
    data=st.dictionaries(XML_NAMES, VISIBLE_TEXT, max_size=4),
    event_class=TEXT,
    timestamp=MOMENTS,
)
CALL_FIELDS = {
    "dest": TEXT,
    "src": TEXT,
    "start": MOMENTS,
    "end": MOMENTS,
    "session_id": TEXT,
    "type": CALL_TYPES,
    "log": st.booleans(),
}
CALL_PAGES = st.builds(
    CallPage,
    calls=st.lists(st.builds(Call, **CALL_FIELDS), max_size=4),
    total_calls=st.integers(min_value=0, max_value=10**9),
)
DETAILED_CALL_PAGES = st.builds(
    DetailedCallPage,
    calls=st.lists(
        st.builds(DetailedCall, **CALL_FIELDS, detail=st.lists(EVENTS, max_size=3)), max_size=3
    ),
    total_calls=st.integers(min_value=0, max_value=10**9),
)
EVENT_REPORTS = st.builds(
    EventReport,
    calls=SERIES,
    log_events=SERIES,
    loops_per_call=SERIES,
    form_items=SERIES,
    loops=SERIES,
    average_form_items=SERIES,
    # An empty unknown series reads as nothing at all, so only non-empty ones round-trip.
    # XML_NAMES' alphabet cannot spell a documented series name nor "error".
    extra=st.dictionaries(XML_NAMES, SERIES.filter(bool), max_size=2),
)
ROUND_TRIP = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_round_trips(model: Any, obj: Any) -> None:
    assert decode("json", render_json(obj), model) == obj
    assert decode("xml", render_xml(obj), model) == obj


@ROUND_TRIP
@given(CALL_PAGES)
def test_call_pages_round_trip(page: CallPage) -> None:
    assert_round_trips(CallPage, page)


@settings(ROUND_TRIP, max_examples=150)  # each example is up to 3 calls of 3 log lines
@given(DETAILED_CALL_PAGES)
def test_detailed_call_pages_round_trip(page: DetailedCallPage) -> None:
    assert_round_trips(DetailedCallPage, page)


@ROUND_TRIP
@given(EVENT_REPORTS)
def test_event_reports_round_trip(report: EventReport) -> None:
    assert_round_trips(EventReport, report)
    for fmt in ("json", "xml"):
        decoded = decode(fmt, render(report, fmt), EventReport)
        assert list(decoded.calls) == sorted(report.calls)


@settings(ROUND_TRIP, max_examples=50)  # the same events as inside the detailed pages
@given(st.lists(EVENTS, max_size=4))
def test_single_call_logs_round_trip(events: list[CallEvent]) -> None:
    assert_round_trips(list[CallEvent], events)
