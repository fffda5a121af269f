"""The converter's wire-quirk hooks, one table per quirk (plum-api.md 1.4, 2.2-2.4)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from cattrs.errors import BaseValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from plumvoice_async._core.convert import (
    WireValueError,
    describe_structure_error,
    make_converter,
    structure_series,
    structure_wire,
)
from plumvoice_async._models import (
    Call,
    CallEvent,
    CallPage,
    CallType,
    DetailedCall,
    DetailedCallPage,
    EventReport,
)
from tests.samples import wire_call

CONVERTER = make_converter()
START = datetime(2018, 6, 21, 3, 44, 51, tzinfo=UTC)
END = datetime(2018, 6, 21, 3, 44, 57, tzinfo=UTC)
FEB_1 = datetime(2018, 2, 1, 5, tzinfo=UTC)
FEB_2 = datetime(2018, 2, 2, 5, tzinfo=UTC)
FEB_3 = datetime(2018, 2, 3, 5, tzinfo=UTC)
SERIES_NAMES = (
    "calls",
    "log_events",
    "loops_per_call",
    "form_items",
    "loops",
    "average_form_items",
)


def call_with(**changes: Any) -> Call:
    fields: dict[str, Any] = {
        "dest": "8009957586",
        "src": "2125551234",
        "start": START,
        "end": END,
        "session_id": "300060;001;1529552581",
        "type": CallType.INBOUND,
        "log": True,
    }
    fields.update(changes)
    return Call(**fields)


def structure_call(**changes: Any) -> Call:
    return CONVERTER.structure(wire_call(**changes), Call)


def report_wire(**series: Any) -> dict[str, Any]:
    wire: dict[str, Any] = {name: [] for name in SERIES_NAMES}
    wire.update(series)
    return wire


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (1529552691, START),  # calls JSON: an int
        ("1529552691", START),  # all_logs JSON and every XML: a numeric string
        (" 1529552691\n", START),  # XML text with stray whitespace
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_timestamps_become_utc_datetimes(wire: object, expected: datetime) -> None:
    start = structure_call(start=wire).start
    assert start == expected
    assert start.tzinfo is UTC


@pytest.mark.parametrize(
    "wire", ["abc", "", "1529552691.5", 1529552691.0, True, None, "1e9", "١٢", 10**20]
)
def test_timestamps_refuse_anything_else(wire: object) -> None:
    with pytest.raises(BaseValidationError) as info:
        structure_call(start=wire)
    assert "@ $.start" in describe_structure_error(info.value)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),  # the XML sample's <log>true</log>
        ("false", False),
        (" TRUE ", True),
        ("1", True),
        ("0", False),
        (1, True),
        (0, False),
    ],
)
def test_booleans_in_every_spelling(wire: object, expected: bool) -> None:
    assert structure_call(log=wire).log is expected


@pytest.mark.parametrize("wire", ["yes", "", "2", 2, -1, 1.0, None, [], {}])
def test_booleans_refuse_anything_else(wire: object) -> None:
    with pytest.raises(BaseValidationError) as info:
        structure_call(log=wire)
    assert "expected a boolean" in describe_structure_error(info.value)


@pytest.mark.parametrize(("wire", "expected"), [(2, 2), ("2", 2), (" 10000 ", 10000), ("0", 0)])
def test_ints_sent_as_strings(wire: object, expected: int) -> None:
    page = CONVERTER.structure({"calls": [], "total_calls": wire}, CallPage)
    assert page.total_calls == expected
    assert type(page.total_calls) is int


@pytest.mark.parametrize("wire", ["2.5", 2.5, 2.0, True, None, "two", "1_000"])
def test_ints_refuse_anything_else(wire: object) -> None:
    with pytest.raises(BaseValidationError) as info:
        CONVERTER.structure({"calls": [], "total_calls": wire}, CallPage)
    assert "@ $.total_calls" in describe_structure_error(info.value)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("8009957586", "8009957586"),
        (8009957586, "8009957586"),  # a phone number sent unquoted
        (None, ""),  # an empty XML element
        ("", ""),
    ],
)
def test_strings(wire: object, expected: str) -> None:
    assert structure_call(dest=wire).dest == expected


@pytest.mark.parametrize("wire", [1.5, True, {"a": 1}, ["a"]])
def test_strings_refuse_other_shapes(wire: object) -> None:
    with pytest.raises(BaseValidationError):
        structure_call(dest=wire)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ([wire_call()], [call_with()]),
        (wire_call(), [call_with()]),  # one object where a list belongs: a list of one
        (None, []),  # an empty XML element
        ([], []),
    ],
)
def test_list_fields(wire: object, expected: list[Call]) -> None:
    assert CONVERTER.structure({"calls": wire, "total_calls": 1}, CallPage).calls == expected


@pytest.mark.parametrize("wire", ["oops", 5, True])
def test_list_fields_refuse_scalars(wire: object) -> None:
    with pytest.raises(BaseValidationError) as info:
        CONVERTER.structure({"calls": wire, "total_calls": 1}, CallPage)
    assert "expected a list" in describe_structure_error(info.value)


def test_series_become_time_ordered_dicts() -> None:
    # Sent out of order, as a JSON object may be: the result is in time order.
    series = structure_series({"1517634000": 2, "1517461200": 0, "1517547600": 1})
    assert series == {FEB_1: 0, FEB_2: 1, FEB_3: 2}
    assert list(series) == [FEB_1, FEB_2, FEB_3]


@pytest.mark.parametrize("empty", [[], None, {}])
def test_empty_series(empty: object) -> None:
    # plum-api.md 1.4: PHP's json_encode sends an empty series as [].
    assert structure_series(empty) == {}


@pytest.mark.parametrize(
    ("wire", "expected", "kind"),
    [
        (0, 0, int),
        (7, 7, int),
        ("0", 0, int),  # XML text of a count stays an int
        (" 12 ", 12, int),
        ("-3", -3, int),
        ("0.5", 0.5, float),  # an average
        ("1.0", 1.0, float),
        ("1e3", 1000.0, float),
        (".25", 0.25, float),
        (0.5, 0.5, float),  # a JSON float stays a float
        (2.0, 2.0, float),
    ],
)
def test_series_numbers(wire: object, expected: float, kind: type) -> None:
    (value,) = structure_series({"1517461200": wire}).values()
    assert value == expected
    assert type(value) is kind


@pytest.mark.parametrize(
    "wire", ["abc", "", True, None, "nan", "inf", float("nan"), float("inf"), [1], {"a": 1}]
)
def test_series_numbers_refuse_anything_else(wire: object) -> None:
    with pytest.raises(WireValueError, match="expected a number"):
        structure_series({"1517461200": wire})


@pytest.mark.parametrize("wire", [[1, 2], "x", 5, {"monday": 1}])
def test_series_refuse_other_shapes(wire: object) -> None:
    with pytest.raises(WireValueError):
        structure_series(wire)


def test_event_report_series_and_extra() -> None:
    report = CONVERTER.structure(
        report_wire(
            calls={"1517547600": "1", "1517461200": "0"},
            loops_per_call={"1517461200": 0.5},
            error="not a series",  # explains a non-200; never a series
            transfers={"1517461200": 3},  # a series the docs do not list: kept
            note="hello",  # unknown and not a series: ignored
            count=5,
            bad={"monday": 1},
            empty_new=[],  # an empty unknown value says nothing: ignored
        ),
        EventReport,
    )
    assert report.calls == {FEB_1: 0, FEB_2: 1}
    assert list(report.calls) == [FEB_1, FEB_2]
    assert report.loops_per_call == {FEB_1: 0.5}
    assert report.log_events == {}
    assert report.extra == {"transfers": {FEB_1: 3}}


def test_event_report_without_unknown_series_has_empty_extra() -> None:
    assert CONVERTER.structure(report_wire(), EventReport).extra == {}


def test_event_report_absent_series_are_empty() -> None:
    # plum-api.md 1.4: every series is "not always present".
    report = CONVERTER.structure({"calls": {"1517461200": 1}}, EventReport)
    assert report == EventReport(calls={FEB_1: 1})
    assert report.loops == {}


def test_event_report_refuses_a_bad_series() -> None:
    with pytest.raises(BaseValidationError) as info:
        CONVERTER.structure(report_wire(loops={"1517461200": "many"}), EventReport)
    assert describe_structure_error(info.value) == "expected a number, got str 'many' @ $.loops"


def test_call_event_is_flattened() -> None:
    wire = {
        "event": {"line": "User input: 6 (dtmf)", "data": {"module_type": "number"}},
        "class": "event",
        "timestamp": "1575898405",
    }
    assert CONVERTER.structure(wire, CallEvent) == CallEvent(
        line="User input: 6 (dtmf)",
        data={"module_type": "number"},
        event_class="event",
        timestamp=datetime(2019, 12, 9, 13, 33, 25, tzinfo=UTC),
    )


@pytest.mark.parametrize("data", [None, [], {}, "absent"])
def test_call_event_empty_data(data: object) -> None:
    event: dict[str, Any] = {"line": "x"}
    if data != "absent":
        event["data"] = data
    wire = {"event": event, "class": "info", "timestamp": 0}
    assert CONVERTER.structure(wire, CallEvent).data == {}


def test_call_event_missing_parts_are_named() -> None:
    with pytest.raises(BaseValidationError) as info:
        CONVERTER.structure([{"class": "info", "timestamp": 0}, "x"], list[CallEvent])
    summary = describe_structure_error(info.value)
    assert "required field missing @ $[0].line" in summary
    assert "expected an object, got str @ $[1]" in summary


def test_call_event_data_must_be_an_object() -> None:
    wire = {"event": {"line": "x", "data": "oops"}, "class": "info", "timestamp": 0}
    with pytest.raises(BaseValidationError, match="CallEvent"):
        CONVERTER.structure(wire, CallEvent)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [("inbound", CallType.INBOUND), ("outbound", CallType.OUTBOUND), ("transfer", "transfer")],
)
def test_known_call_types(wire: str, expected: str) -> None:
    call_type = structure_call(type=wire).type
    assert call_type == expected
    assert type(call_type) is CallType


def test_unknown_call_type_is_kept() -> None:
    call_type = structure_call(type="conference").type
    assert type(call_type) is CallType
    assert call_type == "conference"
    assert call_type.value == "conference"


@pytest.mark.parametrize("wire", ["", None, 5])
def test_call_type_refuses_non_text(wire: object) -> None:
    with pytest.raises(BaseValidationError) as info:
        structure_call(type=wire)
    assert "@ $.type" in describe_structure_error(info.value)


def test_unknown_fields_are_ignored() -> None:
    wire = {
        "calls": [wire_call(duration=6, carrier={"name": "x"}, tags=[1, 2])],
        "total_calls": 1,
        "page": {"next": None},
    }
    assert CONVERTER.structure(wire, CallPage) == CallPage(calls=[call_with()], total_calls=1)


def test_detailed_call_extends_call() -> None:
    wire = {
        "calls": [
            wire_call(
                start="1529552691",
                end="1529552697",
                detail=[{"event": {"line": "x", "data": None}, "class": "info", "timestamp": 5}],
            )
        ],
        "total_calls": "1",
    }
    page = CONVERTER.structure(wire, DetailedCallPage)
    (call,) = page.calls
    assert type(call) is DetailedCall
    assert call == DetailedCall(
        **attrs.asdict(call_with(), recurse=False),
        detail=[CallEvent("x", {}, "info", datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC))],
    )


def test_json_and_xml_spellings_give_equal_objects() -> None:
    as_json = wire_call()
    as_xml = {key: str(value).lower() for key, value in wire_call().items()}
    assert as_xml["log"] == "true"
    assert CONVERTER.structure(as_json, Call) == CONVERTER.structure(as_xml, Call)


def test_error_summary_names_each_field_and_counts_the_rest() -> None:
    wire = {"calls": [wire_call(dest=1.5, src=[], start="x", end="y")], "total_calls": "z"}
    with pytest.raises(BaseValidationError) as info:
        CONVERTER.structure(wire, CallPage)
    summary = describe_structure_error(info.value)
    assert summary.startswith("expected a string, got float 1.5 @ $.calls[0].dest; ")
    assert "$.calls[0].src" in summary
    assert summary.endswith("; and 2 more")


def test_error_messages_show_a_short_excerpt_of_the_value() -> None:
    with pytest.raises(BaseValidationError) as info:
        structure_call(dest=list(range(1000)))
    summary = describe_structure_error(info.value)
    assert (
        summary == "expected a string, got list [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11... @ $.dest"
    )


def test_more_digits_than_int_accepts_are_refused_not_raised_raw() -> None:
    digits = "9" * 5000  # beyond sys.get_int_max_str_digits()
    with pytest.raises(BaseValidationError) as info:
        CONVERTER.structure({"calls": [], "total_calls": digits}, CallPage)
    assert "expected an integer" in describe_structure_error(info.value)
    with pytest.raises(WireValueError, match="expected a number"):
        structure_series({"1517461200": digits})
    report = CONVERTER.structure(report_wire(new={"1517461200": digits}), EventReport)
    assert report.extra == {}


# --- the fast path (structure_wire) against the reference converter ------------------------------
# structure_wire builds the hot models column by column; the reference converter defines what
# they accept. Every spelling above, valid or not, in any mix of rows, must give the same
# result through both, or fail through both.


def spellings(valid: list[object], invalid: list[object]) -> st.SearchStrategy[object]:
    """A valid spelling mostly, an invalid one about once in 30 draws (a page has many)."""
    return st.integers(0, 29).flatmap(lambda roll: st.sampled_from(invalid if roll == 0 else valid))


TEXTS = spellings(["8009957586", "", " x ", 8009957586, None], [1.5, True, ["a"], {"a": 1}])
TIMESTAMPS = spellings(
    [1529552691, "1529552691", " 1529552691\n", 0, -5],
    ["abc", "", 1.0, True, None, 10**20, "9" * 5000],
)
BOOLEANS = spellings([True, False, "true", " TRUE ", "0", 1, 0], ["yes", 2, None, []])
CALL_TYPES = spellings(["inbound", "outbound", "transfer", "conference"], ["", None, 5, ["x"]])
DATA = spellings([None, [], {}, {"module_type": "start"}], ["oops", [1]])
COUNTS = spellings([0, 2, "2", " 10 "], [-5, "-1", "two", 2.5, True, None])
ROW_SHAPES = spellings(["object"], ["null", "text", "list"])


def maybe_drop(draw: st.DrawFn, row: dict[str, Any]) -> dict[str, Any]:
    """The row, sometimes missing a key or carrying an unknown one."""
    if draw(st.integers(0, 29)):
        return row
    keys = sorted(row)
    row = dict(row)
    if draw(st.booleans()):
        del row[draw(st.sampled_from(keys))]
    else:
        row["unknown"] = draw(TEXTS)
    return row


@st.composite
def wire_events(draw: st.DrawFn) -> object:
    event: dict[str, Any] = {"line": draw(TEXTS), "data": draw(DATA)}
    entry = {"event": maybe_drop(draw, event), "class": draw(TEXTS), "timestamp": draw(TIMESTAMPS)}
    return (
        maybe_drop(draw, entry) if draw(st.integers(0, 29)) else draw(st.sampled_from([None, "x"]))
    )


@st.composite
def wire_calls(draw: st.DrawFn, *, detail: bool) -> object:
    shape = draw(ROW_SHAPES)
    if shape != "object":
        return {"null": None, "text": "x", "list": []}[shape]
    row = {
        "dest": draw(TEXTS),
        "src": draw(TEXTS),
        "start": draw(TIMESTAMPS),
        "end": draw(TIMESTAMPS),
        "session_id": draw(TEXTS),
        "type": draw(CALL_TYPES),
        "log": draw(BOOLEANS),
    }
    if detail:
        row["detail"] = draw(lists_on_the_wire(wire_events()))
    return maybe_drop(draw, row)


def lists_on_the_wire(items: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Mostly a list; else one item where a list belongs, an empty XML element, or a scalar."""
    others = [items, st.none(), st.sampled_from(["oops", 5])]
    return st.integers(0, 29).flatmap(
        lambda roll: others[roll] if roll < len(others) else st.lists(items, max_size=4)
    )


@st.composite
def wire_pages(draw: st.DrawFn) -> tuple[object, Any]:
    model = draw(st.sampled_from([CallPage, DetailedCallPage, list[CallEvent], Call, CallEvent]))
    if model == list[CallEvent]:
        return draw(lists_on_the_wire(wire_events())), model
    if model is CallEvent:
        return draw(wire_events()), model
    if model is Call:
        return draw(wire_calls(detail=False)), model
    page = {
        "calls": draw(lists_on_the_wire(wire_calls(detail=model is DetailedCallPage))),
        "total_calls": draw(COUNTS),
    }
    return maybe_drop(draw, page), model


def outcome(structure: Any, tree: object, model: Any) -> object:
    try:
        return structure(tree, model)
    except Exception as exc:  # compared below: both fail, or neither
        return type(exc)


@settings(max_examples=500, deadline=None)
@given(page=wire_pages())
def test_the_fast_path_agrees_with_the_reference_converter(page: tuple[object, Any]) -> None:
    tree, model = page
    fast = outcome(structure_wire, tree, model)
    reference = outcome(CONVERTER.structure, tree, model)
    if isinstance(reference, type):
        assert fast is WireValueError
    else:
        assert fast == reference
        assert repr(fast) == repr(reference)  # same types all the way down (int, not bool...)


def test_the_fast_path_failure_names_the_fields_of_the_first_bad_rows() -> None:
    rows = [wire_call()] * 50 + [wire_call(start="x", log="maybe")] + [{}] * 10_000
    with pytest.raises(WireValueError) as info:
        structure_wire({"calls": rows, "total_calls": 1}, CallPage)
    assert str(info.value) == (
        "expected a UNIX timestamp, got str 'x' @ $.calls[50].start; "
        "expected a boolean, got str 'maybe' @ $.calls[50].log; "
        "required field missing @ $.calls[51].dest; and 13 more; later items not examined"
    )
