"""Models as data: ``to_dict`` is JSON-ready and ``from_dict`` rebuilds the same model."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plumvoice_async
from plumvoice_async import (
    Call,
    CallEvent,
    CallPage,
    CallType,
    DetailedCall,
    EventReport,
    InvalidParameterError,
)

MODELS = [
    attrs.resolve_types(cls)
    for name in plumvoice_async.__all__
    if attrs.has(cls := getattr(plumvoice_async, name)) and hasattr(cls, "to_dict")
]

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(minutes=330))])
INSTANTS = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=ZONES
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
CALL_TYPES = st.sampled_from(list(CallType)) | st.text("abcxyz", min_size=1).map(CallType)
NUMBERS = st.integers() | st.floats(allow_nan=False)


# Every model is built from the types its fields declare, with aware instants.
st.register_type_strategy(datetime, INSTANTS)
st.register_type_strategy(CallType, CALL_TYPES)
st.register_type_strategy(float, NUMBERS)  # series values: counts and finite averages
EVENTS = st.builds(
    CallEvent,
    line=st.text(),
    data=st.dictionaries(st.text(), JSON_VALUES, max_size=3),
    event_class=st.text(),
    timestamp=INSTANTS,
)
st.register_type_strategy(CallEvent, EVENTS)
ANY_MODEL = st.one_of([st.builds(cls) for cls in MODELS if cls is not CallEvent] + [EVENTS])


def test_every_public_model_has_to_dict_and_from_dict():
    names = {cls.__name__ for cls in MODELS}
    assert {
        "Call",
        "CallPage",
        "CallEvent",
        "DetailedCall",
        "DetailedCallPage",
        "EventReport",
        "VolumeReport",
        "PerformanceReport",
        "CallerProfile",
        "DiagnosticFlow",
        "FlowNode",
        "GeographicProfile",
    } <= names


def only_builtins(value: Any) -> bool:
    if isinstance(value, dict):
        return all(type(k) is str and only_builtins(v) for k, v in value.items())
    if isinstance(value, list):
        return all(only_builtins(item) for item in value)
    return type(value) in (str, int, float, bool, type(None))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_MODEL)
def test_to_dict_is_json_ready_and_from_dict_rebuilds_the_model(model: Any):
    data = model.to_dict()
    assert only_builtins(data)
    assert type(model).from_dict(json.loads(json.dumps(data))) == model


def test_the_spelling_of_instants_enums_and_names():
    start = datetime(2024, 1, 31, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    call = DetailedCall(
        dest="6177123000",
        src="Outbound",
        start=start,
        end=start + timedelta(seconds=90, microseconds=5),
        session_id="1;2;3",
        type=CallType("voicemail"),
        log=True,
        detail=[CallEvent("hi", {"module_type": "start"}, "info", start)],
    )
    assert call.to_dict() == {
        "dest": "6177123000",
        "src": "Outbound",
        "start": "2024-01-31T14:30:00Z",
        "end": "2024-01-31T14:31:30.000005Z",
        "session_id": "1;2;3",
        "type": "voicemail",
        "log": True,
        "detail": [
            {
                "line": "hi",
                "data": {"module_type": "start"},
                "event_class": "info",
                "timestamp": "2024-01-31T14:30:00Z",
            }
        ],
    }
    series = EventReport(calls={start: 3}).to_dict()["calls"]
    assert series == {"2024-01-31T14:30:00Z": 3}


@pytest.mark.parametrize(
    ("model", "data", "where"),
    [
        (Call, {"dest": "1"}, "$.src"),
        (CallPage, {"calls": "nope", "total_calls": 1}, "$.calls"),
        (CallPage, {"calls": [], "total_calls": "many"}, "$.total_calls"),
        (CallEvent, {"line": "", "data": {}, "event_class": "", "timestamp": 5}, "$.timestamp"),
        (
            CallEvent,
            {"line": "", "data": {}, "event_class": "", "timestamp": "2024-01-01T00:00:00"},
            "$.timestamp",
        ),
    ],
)
def test_from_dict_names_the_first_bad_field(model: type, data: Any, where: str):
    with pytest.raises(InvalidParameterError, match=f"invalid data=.*{where.replace('$', '[$]')}"):
        model.from_dict(data)  # type: ignore[attr-defined]


def test_from_dict_refuses_what_is_not_a_mapping():
    with pytest.raises(InvalidParameterError, match="mapping"):
        Call.from_dict([1, 2])  # type: ignore[arg-type]
