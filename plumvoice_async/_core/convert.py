"""The cattrs converter that turns the wire's JSON-like data into the typed models.

The models (``_models.py``) say what the data is; every oddity of the wire lives here, as a
structure hook, so that the JSON and the XML of the same data give equal objects:

- timestamps arrive as ints or as numeric strings (plum-api.md 2.3: ``start``/``end`` are
  strings in ``all_logs``, ints in ``calls``; XML carries only text) -> UTC-aware ``datetime``;
- booleans arrive as ``true``/``false``, ``"true"``/``"false"``, ``"1"``/``"0"`` or ``1``/``0``;
  anything else is an error, not a guess;
- ints arrive as strings (``total_calls`` in XML);
- a list field may get one object (a one-item list from a lenient XML reader) or ``None`` (an
  empty XML element);
- a report series is an object keyed by timestamp strings, ``[]`` when empty (PHP's
  ``json_encode`` of an empty array, plum-api.md 1.4) or ``None``; it becomes a dict sorted by
  time whose values stay ``int`` for integral text and become ``float`` otherwise;
- a detailed-log entry nests ``line``/``data`` under ``event`` and names its class ``class``
  (plum-api.md 2.4); it is flattened into ``CallEvent`` with ``event_class``;
- a map keyed by text (the geographic counts, the diagnostic flow's applications) is an
  object, ``[]`` when empty (``"NON_US":[]`` in the geographic sample, plum-api.md 1.5) or
  ``None``; the geographic report's ``US``/``NON_US`` become ``us``/``non_us``;
- the minted ``TemporaryCredentials`` must be two non-empty strings, and no message about
  them ever shows their values;
- unknown keys are ignored, except that a report keeps what it does not know in ``extra``: a
  series report (``EventReport``, ``VolumeReport``, ``PerformanceReport``, ``CallerProfile``)
  an unknown series, ``GeographicProfile`` an unknown count map.

Two converters share these hooks. ``make_converter`` is the reference: cattrs-generated, with
per-field error detail; it defines what each model accepts. ``structure_wire``, what decoding
uses, gets the same results faster: no error bookkeeping, the first failure ends the body,
and the hot models (a page of calls is the bulk of every export) are built column by column
(see "The fast path" below). Only after a failure does the reference converter structure the
body again, to name the failing fields; its lists and maps stop after the first few failing
items, so a body of N bytes costs O(N) either way (a 100,000-row page of ``{}`` used to
collect seven errors a row: 15 s and +955 MiB).

Structuring failures of the reference converter raise cattrs' validation exception groups (a
top-level value of the wrong shape raises ``WireValueError`` itself);
``describe_structure_error`` turns either into a short readable sentence naming the failing
fields. ``structure_wire`` raises ``WireValueError`` with that sentence.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from itertools import chain, islice, repeat
from operator import itemgetter, methodcaller
from typing import Any, TypeVar, cast, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import list_structure_factory, mapping_structure_factory
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn, override
from cattrs.v import format_exception, transform_error

from .._models import (
    Call,
    CallerProfile,
    CallEvent,
    CallPage,
    CallType,
    DetailedCall,
    DetailedCallPage,
    EventReport,
    GeographicProfile,
    PerformanceReport,
    Series,
    TemporaryCredentials,
    VolumeReport,
)

__all__ = [
    "WireValueError",
    "configure_converter",
    "describe_structure_error",
    "make_converter",
    "structure_series",
    "structure_wire",
]

T = TypeVar("T")

_INTEGER_TEXT = re.compile(r"\s*[+-]?[0-9]+\s*")
_DECIMAL_TEXT = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*")
_TRUE_TEXTS = frozenset({"true", "1"})
_FALSE_TEXTS = frozenset({"false", "0"})
_MAX_DESCRIBED_ERRORS = 3
_MAX_SHOWN_CHARS = 40


class WireValueError(ValueError):
    """A wire value that no hook can read; its text is the reason shown to the user."""


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _shown(value: object) -> str:
    """The value's type and a short repr, for an error message about one wire value."""
    text = repr(value)
    if len(text) > _MAX_SHOWN_CHARS:
        text = text[: _MAX_SHOWN_CHARS - 3] + "..."
    return f"{_type_name(value)} {text}"


def _int_from_text(text: str) -> int | None:
    if not _INTEGER_TEXT.fullmatch(text):
        return None
    try:
        return int(text)
    except ValueError:  # more digits than int() accepts (sys.get_int_max_str_digits)
        return None


def _structure_int(value: object, _: object = None) -> int:
    # bool is an int subclass: JSON true is not a count.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and (number := _int_from_text(value)) is not None:
        return number
    raise WireValueError(f"expected an integer, got {_shown(value)}")


def _structure_str(value: object, _: object = None) -> str:
    if isinstance(value, str):
        return value
    # An empty XML element reads as None; text is all XML carries, so it is the empty string.
    if value is None:
        return ""
    # A number where text is documented (a phone number sent unquoted) is still that text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise WireValueError(f"expected a string, got {_shown(value)}")


def _structure_bool(value: object, _: object = None) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE_TEXTS:
            return True
        if text in _FALSE_TEXTS:
            return False
    raise WireValueError(f"expected a boolean, got {_shown(value)}")


def _structure_call_type(value: object, _: object = None) -> CallType:
    # Registered by exact type: CallType is a str, so the str hook would otherwise claim it.
    # An unknown value is kept by CallType._missing_; only a non-text value is refused.
    if not isinstance(value, str) or not value:
        raise WireValueError(f"expected a call type, got {_shown(value)}")
    return CallType(value)


def _structure_timestamp(value: object, _: object = None) -> datetime:
    try:
        seconds = _structure_int(value)
    except WireValueError:
        raise WireValueError(f"expected a UNIX timestamp, got {_shown(value)}") from None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise WireValueError(f"UNIX timestamp out of range: {_shown(value)}") from None


def _structure_count(value: object, _: object = None) -> int:
    count = _structure_int(value)
    if count < 0:
        raise WireValueError(f"expected a count (an integer >= 0), got {_shown(value)}")
    return count


def _structure_optional_count(value: object, _: object = None) -> int | None:
    # plum-api.md 2.3: all_logs may leave ``total_calls`` out (an empty XML element says as much).
    return None if value is None else _structure_count(value)


def _series_number(value: object) -> int | float:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str):
        if (integer := _int_from_text(value)) is not None:
            return integer
        if _DECIMAL_TEXT.fullmatch(value):
            number = float(value)
            if math.isfinite(number):
                return number
    raise WireValueError(f"expected a number, got {_shown(value)}")


def structure_series(value: object, _: object = None) -> dict[datetime, int | float]:
    """Read one report series: ``{"<unix ts>": n}``, ``[]`` or ``None`` -> time-ordered dict."""
    # plum-api.md 1.4: PHP encodes an empty series as [], and an empty XML element reads as None.
    if value is None or (isinstance(value, list) and not value):
        return {}
    if not isinstance(value, Mapping):
        raise WireValueError(
            f"expected a series object keyed by timestamps, got {_type_name(value)}"
        )
    points = [(_structure_timestamp(key), _series_number(number)) for key, number in value.items()]
    points.sort(key=lambda point: point[0])
    return dict(points)


def _structure_data(value: object, _: object = None) -> dict[str, Any]:
    # plum-api.md 2.4: ``data`` is free-form; PHP sends an empty one as [], XML as an empty element.
    if value is None or (isinstance(value, list) and not value):
        return {}
    if not isinstance(value, Mapping):
        raise WireValueError(f"expected an object, got {_type_name(value)}")
    if set(map(type, value)) <= {str}:  # always so from JSON and XML: copied in one C call
        return dict(value)
    return {_structure_str(key): item for key, item in value.items()}


def _require_mapping(value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WireValueError(f"expected an object, got {_type_name(value)}")
    return value


def _is_list(type_: Any) -> bool:
    return type_ is list or get_origin(type_) is list


class _CappedValidationError(IterableValidationError):
    """The first few failures of a list or map whose remaining items were not examined."""


class _Failures:
    """The failing items of one list or map, in cattrs' shape, capped at a few.

    Explaining a failure must cost no more than the body: a 100,000-row page of ``{}`` would
    otherwise collect seven errors for every row. After ``_MAX_DESCRIBED_ERRORS`` failing
    items the collection stops and the rest of the list is not examined.
    """

    def __init__(self, target: Any) -> None:
        self._target = target
        self._errors: list[Exception] = []

    def add(self, exc: Exception, index: int | str, item_type: Any) -> None:
        note = IterableValidationNote(
            f"Structuring {self._target} @ index {index!r}", index, item_type
        )
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]
        self._errors.append(exc)
        if len(self._errors) >= _MAX_DESCRIBED_ERRORS:
            raise _CappedValidationError(
                f"While structuring {self._target!r}", self._errors, self._target
            )

    def raise_any(self) -> None:
        if self._errors:
            raise IterableValidationError(
                f"While structuring {self._target!r}", self._errors, self._target
            )


def _list_items(value: object) -> list[Any]:
    """A list field's items: ``None`` (an empty XML element) is no items, one object (a
    one-item list read without knowing it was a list) is one item."""
    if isinstance(value, list):
        return value
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value]
    raise WireValueError(f"expected a list, got {_type_name(value)}")


def _list_hook_factory(type_: Any, converter: cattrs.Converter) -> Callable[[Any, Any], list[Any]]:
    if not converter.detailed_validation:
        structure_items = list_structure_factory(type_, converter)

        def structure_list(value: object, target: Any) -> list[Any]:
            result: list[Any] = structure_items(_list_items(value), target)
            return result

        return structure_list

    item_type = get_args(type_)[0] if get_args(type_) else Any
    structure_item = converter.get_structure_hook(item_type)

    def structure_list_capped(value: object, target: Any) -> list[Any]:
        failures = _Failures(target)
        result = []
        for index, item in enumerate(_list_items(value)):
            try:
                result.append(structure_item(item, item_type))
            except Exception as exc:  # every failure is reported, capped
                failures.add(exc, index, item_type)
        failures.raise_any()
        return result

    return structure_list_capped


def _attrs_hook_factory(type_: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    structure_fields = make_dict_structure_fn(type_, converter)

    def structure_attrs(value: object, target: Any) -> Any:
        return structure_fields(_require_mapping(value), target)

    return structure_attrs


def _call_event_hook(converter: cattrs.Converter) -> Callable[[Any, Any], CallEvent]:
    structure_fields = make_dict_structure_fn(CallEvent, converter)

    def structure_call_event(value: object, target: Any) -> CallEvent:
        # plum-api.md 2.4: {"event": {"line", "data"}, "class", "timestamp"}. Keys absent on the
        # wire stay absent here, so the generated function reports them as missing fields.
        entry = _require_mapping(value)
        event = _require_mapping(entry.get("event", {}))
        flat: dict[str, Any] = {}
        if "line" in event:
            flat["line"] = event["line"]
        flat["data"] = event.get("data")
        if "class" in entry:
            flat["event_class"] = entry["class"]
        if "timestamp" in entry:
            flat["timestamp"] = entry["timestamp"]
        return structure_fields(flat, target)

    return structure_call_event


_SERIES_REPORTS: tuple[type, ...] = (EventReport, VolumeReport, PerformanceReport, CallerProfile)
"""The reports made of period series (plum-api.md 1.4), each with an ``extra`` of unknown ones."""

# ``error`` explains a non-200 answer (plum-api.md 1.4); it is never a series nor a count map.
_NOT_DATA = frozenset({"error"})


def _extra_series(value: object) -> dict[datetime, int | float] | None:
    if not isinstance(value, Mapping) or not value:
        return None
    try:
        return structure_series(value)
    except WireValueError:
        return None


def _series_report_hook(
    report_class: type, converter: cattrs.Converter
) -> Callable[[Any, Any], Any]:
    structure_fields: Callable[[Mapping[str, Any], Any], Any] = make_dict_structure_fn(
        report_class, converter, extra=override(omit=True)
    )
    known = frozenset(field.name for field in attrs.fields(report_class)) | _NOT_DATA

    def structure_series_report(value: object, target: Any) -> Any:
        mapping = _require_mapping(value)
        report = structure_fields(mapping, target)
        # A series the docs do not list is kept, so a new server field is never lost; an empty
        # or non-series value cannot be told from any other field and is ignored.
        extra = {
            str(key): series
            for key, item in mapping.items()
            if key not in known and (series := _extra_series(item)) is not None
        }
        return attrs.evolve(report, extra=extra) if extra else report

    return structure_series_report


def _is_text_keyed_mapping(type_: Any) -> bool:
    # Mapping[str, X] exactly: ``Series`` (datetime keys) and ``dict[str, Any]`` (free-form
    # ``data``) have hooks of their own.
    return get_origin(type_) is Mapping and get_args(type_)[:1] == (str,)


def _text_keyed_hook_factory(
    type_: Any, converter: cattrs.Converter
) -> Callable[[Any, Any], dict[str, Any]]:
    # Without detailed validation, cattrs' own loop stops at the first failure.
    structure_entries = (
        None if converter.detailed_validation else mapping_structure_factory(type_, converter)
    )
    value_type = get_args(type_)[1]
    structure_value = converter.get_structure_hook(value_type)

    def structure_text_keyed(value: object, target: Any) -> dict[str, Any]:
        # plum-api.md 1.5: PHP sends an empty map as [] ("NON_US":[]); XML as an empty element.
        if value is None or (isinstance(value, list) and not value):
            return {}
        mapping = _require_mapping(value)
        if structure_entries is not None:
            result: dict[str, Any] = structure_entries(mapping, target)
            return result
        failures = _Failures(target)
        entries = {}
        for key, item in mapping.items():
            try:
                entries[_structure_str(key)] = structure_value(item, value_type)
            except Exception as exc:  # every failure is reported, capped
                failures.add(exc, key, value_type)
        failures.raise_any()
        return entries

    return structure_text_keyed


_GEOGRAPHIC_WIRE_NAMES = {"us": "US", "non_us": "NON_US"}
"""plum-api.md 1.5: the wire's upper-case keys, for the model's field names."""
_GEOGRAPHIC_KNOWN = frozenset(_GEOGRAPHIC_WIRE_NAMES.values()) | _NOT_DATA


def _extra_counts(value: object) -> dict[str, int] | None:
    if not isinstance(value, Mapping) or not value:
        return None
    try:
        return {_structure_str(key): _structure_int(count) for key, count in value.items()}
    except WireValueError:
        return None


def _geographic_hook(converter: cattrs.Converter) -> Callable[[Any, Any], GeographicProfile]:
    structure_fields = make_dict_structure_fn(
        GeographicProfile,
        converter,
        us=override(rename=_GEOGRAPHIC_WIRE_NAMES["us"]),
        non_us=override(rename=_GEOGRAPHIC_WIRE_NAMES["non_us"]),
        extra=override(omit=True),
    )

    def structure_geographic(value: object, target: Any) -> GeographicProfile:
        mapping = _require_mapping(value)
        profile = structure_fields(mapping, target)
        extra = {
            str(key): counts
            for key, item in mapping.items()
            if key not in _GEOGRAPHIC_KNOWN and (counts := _extra_counts(item)) is not None
        }
        return attrs.evolve(profile, extra=extra) if extra else profile

    return structure_geographic


def _structure_temporary_credentials(value: object, _: object = None) -> TemporaryCredentials:
    # plum-api.md 1.2: {"login": ..., "password": ...}. The values are secrets: a message may
    # name what is wrong, never show what was sent.
    mapping = _require_mapping(value)
    halves = []
    for name in ("login", "password"):
        half = mapping.get(name)
        if not isinstance(half, str) or not half:
            kind = "missing" if half is None else f"not a non-empty string ({_type_name(half)})"
            raise WireValueError(f"the temporary {name} is {kind}")
        halves.append(half)
    return TemporaryCredentials(*halves)


def _page_hook(
    page_class: type, count_hook: Callable[[Any, Any], int | None], converter: cattrs.Converter
) -> Callable[[Any, Any], Any]:
    structure_fields: Callable[[Mapping[str, Any], Any], Any] = make_dict_structure_fn(
        page_class, converter, total_calls=override(struct_hook=count_hook)
    )

    def structure_page(value: object, target: Any) -> Any:
        return structure_fields(_require_mapping(value), target)

    return structure_page


# The fast path: the hot models. A page of calls is the bulk of every export, so its rows
# are built column by column, with the loops in C (``map``, ``set``, ``itemgetter``): a column
# whose values all have the common wire type (``str`` for text, ``int`` for a JSON timestamp,
# ``bool`` for ``log``) is taken as it is or converted by one C call per value; any other
# column goes value by value through the same hooks as the reference converter. The frozen
# slotted instances are filled through their slot descriptors, which is what attrs' own
# ``__init__`` does with ``object.__setattr__``. No error is collected: the first failure of
# any kind ends the page, and ``structure_wire`` re-derives a readable message from the
# reference converter.

_from_timestamp = datetime.fromtimestamp
_consume: Callable[[Any], None] = deque(maxlen=0).extend
_CALL_TYPES: dict[object, CallType] = {member.value: member for member in CallType}
_get_event = methodcaller("get", "event", {})
_get_data = methodcaller("get", "data")

Column = Callable[[list[Any]], list[Any]]


def _all_of(kind: type, values: Iterable[Any]) -> bool:
    return set(map(type, values)) <= {kind}


def _text_column(values: list[Any]) -> list[Any]:
    return values if _all_of(str, values) else list(map(_structure_str, values))


def _timestamp_column(values: list[Any]) -> list[Any]:
    if _all_of(int, values):
        return list(map(_from_timestamp, values, repeat(UTC)))
    return list(map(_structure_timestamp, values))


def _bool_column(values: list[Any]) -> list[Any]:
    return values if _all_of(bool, values) else list(map(_structure_bool, values))


def _call_type_column(values: list[Any]) -> list[Any]:
    try:  # the text keys match only text; a list or a dict is unhashable
        return list(map(_CALL_TYPES.__getitem__, values))
    except (KeyError, TypeError):  # an unknown type (kept by the hook) or a non-text value
        return list(map(_structure_call_type, values))


def _data_column(values: list[Any]) -> list[Any]:
    if _all_of(dict, values) and _all_of(str, chain.from_iterable(values)):
        return list(map(dict, values))  # what _structure_data does for each, in one C loop
    return list(map(_structure_data, values))


def _mappings(values: list[Any]) -> list[Any]:
    return values if _all_of(dict, values) else list(map(_require_mapping, values))


def _slot_setters(model: type, *names: str) -> list[Any]:
    """The slot descriptors' setters of ``model``'s fields, which must be ``names``."""
    if tuple(field.name for field in attrs.fields(model)) != names:  # pragma: no cover
        raise RuntimeError(f"the fast structuring of {model.__name__} is out of date")
    return [getattr(model, name).__set__ for name in names]


_CALL_COLUMNS: tuple[tuple[str, Column], ...] = (
    ("dest", _text_column),
    ("src", _text_column),
    ("start", _timestamp_column),
    ("end", _timestamp_column),
    ("session_id", _text_column),
    ("type", _call_type_column),
    ("log", _bool_column),
)
_CALL_SETTERS = _slot_setters(Call, *(key for key, _ in _CALL_COLUMNS))
(_set_detail,) = _slot_setters(DetailedCall, *(key for key, _ in _CALL_COLUMNS), "detail")[-1:]
_CALL_EVENT_SETTERS = _slot_setters(CallEvent, "line", "data", "event_class", "timestamp")


def _instances(model: type, count: int) -> list[Any]:
    return list(map(object.__new__, repeat(model, count)))


def _structure_calls(rows: list[Any], model: type) -> tuple[list[Any], list[Any]]:
    """``Call``s or ``DetailedCall``s (their ``detail`` still unset) and their wire rows."""
    rows = _mappings(rows)
    # Every column is read and checked before any instance exists: a bad page fails first.
    columns = [convert(list(map(itemgetter(key), rows))) for key, convert in _CALL_COLUMNS]
    calls = _instances(model, len(rows))
    for setter, column in zip(_CALL_SETTERS, columns, strict=True):
        _consume(map(setter, calls, column))
    return calls, rows


def _structure_detailed_calls(rows: list[Any]) -> list[Any]:
    calls, rows = _structure_calls(rows, DetailedCall)
    # Every log line of the page in one column run, then cut back into each call's detail.
    details = list(map(_list_items, map(itemgetter("detail"), rows)))
    events = iter(_structure_call_events(list(chain.from_iterable(details))))
    _consume(map(_set_detail, calls, [list(islice(events, len(detail))) for detail in details]))
    return calls


def _structure_call_events(entries: list[Any]) -> list[Any]:
    # plum-api.md 2.4: {"event": {"line", "data"}, "class", "timestamp"}, as the reference hook.
    entries = _mappings(entries)
    events = _mappings(list(map(_get_event, entries)))
    columns = (
        _text_column(list(map(itemgetter("line"), events))),
        _data_column(list(map(_get_data, events))),
        _text_column(list(map(itemgetter("class"), entries))),
        _timestamp_column(list(map(itemgetter("timestamp"), entries))),
    )
    instances = _instances(CallEvent, len(entries))
    for setter, column in zip(_CALL_EVENT_SETTERS, columns, strict=True):
        _consume(map(setter, instances, column))
    return instances


def _fast_call(row: object, _: object = None) -> Call:
    (call,) = _structure_calls([row], Call)[0]
    return cast(Call, call)


def _fast_detailed_call(row: object, _: object = None) -> DetailedCall:
    (call,) = _structure_detailed_calls([row])
    return cast(DetailedCall, call)


def _fast_call_event(entry: object, _: object = None) -> CallEvent:
    (event,) = _structure_call_events([entry])
    return cast(CallEvent, event)


def _fast_call_events(value: object, _: object = None) -> list[CallEvent]:
    return _structure_call_events(_list_items(value))


def _fast_call_page(value: object, _: object = None) -> CallPage:
    page = _require_mapping(value)
    calls = _structure_calls(_list_items(page["calls"]), Call)[0]
    return CallPage(calls, _structure_count(page["total_calls"]))


def _fast_detailed_call_page(value: object, _: object = None) -> DetailedCallPage:
    page = _require_mapping(value)
    calls = _structure_detailed_calls(_list_items(page["calls"]))
    return DetailedCallPage(calls, _structure_optional_count(page.get("total_calls")))


def configure_converter(converter: cattrs.Converter) -> None:
    """Register the wire-quirk hooks on ``converter`` (cattrs ``preconf`` style)."""
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(datetime, _structure_timestamp)
    converter.register_structure_hook(CallType, _structure_call_type)
    converter.register_structure_hook_func(lambda type_: type_ == Series, structure_series)
    converter.register_structure_hook_func(lambda type_: type_ == dict[str, Any], _structure_data)
    converter.register_structure_hook_factory(_is_list, _list_hook_factory)
    converter.register_structure_hook_factory(attrs.has, _attrs_hook_factory)
    converter.register_structure_hook_factory(_is_text_keyed_mapping, _text_keyed_hook_factory)
    converter.register_structure_hook(CallEvent, _call_event_hook(converter))
    for report_class in _SERIES_REPORTS:
        converter.register_structure_hook(
            report_class, _series_report_hook(report_class, converter)
        )
    converter.register_structure_hook(GeographicProfile, _geographic_hook(converter))
    converter.register_structure_hook(TemporaryCredentials, _structure_temporary_credentials)
    converter.register_structure_hook(CallPage, _page_hook(CallPage, _structure_count, converter))
    converter.register_structure_hook(
        DetailedCallPage, _page_hook(DetailedCallPage, _structure_optional_count, converter)
    )


def make_converter() -> cattrs.Converter:
    """The reference converter: cattrs-generated, with per-field error detail.

    It defines what every model accepts, and it explains a failure of ``structure_wire``
    (its lists and maps stop after the first few failing items, so explaining costs no more
    than the body). ``structure_wire`` is the fast way to the same results.
    """
    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    configure_converter(converter)
    return converter


def _make_fast_converter() -> cattrs.Converter:
    """The converter of ``structure_wire``: no error bookkeeping, the hot models hand-built."""
    converter = cattrs.Converter(detailed_validation=False, forbid_extra_keys=False)
    configure_converter(converter)
    converter.register_structure_hook(Call, _fast_call)
    converter.register_structure_hook(DetailedCall, _fast_detailed_call)
    converter.register_structure_hook(CallEvent, _fast_call_event)
    converter.register_structure_hook(CallPage, _fast_call_page)
    converter.register_structure_hook(DetailedCallPage, _fast_detailed_call_page)
    converter.register_structure_hook_func(
        lambda type_: type_ == list[CallEvent], _fast_call_events
    )
    return converter


_FAST = _make_fast_converter()
_REFERENCE = make_converter()


def structure_wire(tree: Any, model: type[T]) -> T:
    """Structure a parsed body (JSON-like) into ``model``: fast, or ``WireValueError``.

    The happy path keeps no per-row error state and stops at the first failure; only then is
    the body structured again by the reference converter, to name the failing fields of the
    first few bad rows. Both steps cost O(size of the body).
    """
    try:
        return _FAST.structure(tree, model)
    except Exception as failure:  # any failure is the body's, explained below
        try:
            _REFERENCE.structure(tree, model)
        except Exception as detailed:
            raise WireValueError(describe_structure_error(detailed)) from detailed
        # The two converters disagree: a bug, reported with what the fast path saw.
        raise WireValueError(f"{type(failure).__name__}: {failure}") from failure


def _describe_one(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, WireValueError):
        return str(exc)
    return format_exception(exc, type_)


def describe_structure_error(exc: BaseException) -> str:
    """A readable summary naming each failing field: ``expected an integer ... @ $.total_calls``.

    The per-field detail comes from cattrs' ``transform_error``; only the first few failures
    are spelled out, so a 10,000-row page with one bad column does not make a huge message.
    """
    messages = transform_error(exc, path="$", format_exception=_describe_one)
    summary = "; ".join(messages[:_MAX_DESCRIBED_ERRORS])
    if len(messages) > _MAX_DESCRIBED_ERRORS:
        summary += f"; and {len(messages) - _MAX_DESCRIBED_ERRORS} more"
    if _was_capped(exc):
        summary += "; later items not examined"
    return summary


def _was_capped(exc: BaseException) -> bool:
    if isinstance(exc, _CappedValidationError):
        return True
    return isinstance(exc, BaseExceptionGroup) and any(map(_was_capped, exc.exceptions))
