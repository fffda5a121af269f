"""Render the models back into the documented Plum wire shapes, for the simulator and round trips.

The stable surface (the simulator imports these)::

    Renderable = (CallPage | DetailedCallPage | EventReport | VolumeReport | PerformanceReport
                  | CallerProfile | DiagnosticFlow | GeographicProfile | TemporaryCredentials
                  | Sequence[CallEvent])
    render_json(obj: Renderable) -> bytes
    render_xml(obj: Renderable) -> bytes
    render(obj: Renderable, fmt: Literal["json", "xml"]) -> bytes
    render_error(message: str, fmt: Literal["json", "xml"]) -> bytes
    MEDIA_TYPES: Mapping[str, str]     # "json" -> "application/json", "xml" -> "application/xml"

A ``Sequence[CallEvent]`` is the single call log of ``call/{id}``: a top-level JSON array
(plum-api.md 2.4), root-level ``<item>`` elements in XML.

What is reproduced from the docs:

- ``calls`` sends ``start``/``end`` as JSON ints, ``all_logs`` as numeric strings
  (plum-api.md 2.3); ``log`` is JSON ``true`` and XML text ``true``;
- a series is ``{"<unix ts>": n}`` in JSON, ``[]`` when empty (PHP's ``json_encode`` of an empty
  array, plum-api.md 1.4; an empty ``data`` likewise), and ``<item timestamp="..">n</item>`` in
  XML (seed 000); the series reports list their documented series in the docs' order, then
  ``extra``;
- the geographic report's maps are ``US``/``NON_US``, ``[]`` when empty (plum-api.md 1.5);
  the diagnostic flow's ``applications`` map a URL to its form items; in XML their entries
  are ``<item key="..">`` and ``<item url="..">`` (the assumed shapes of ``_core/decode.py``);
- the minted credentials of ``auth`` are ``{"login": .., "password": ..}`` (plum-api.md 1.2);
- XML is ``<?xml version="1.0"?>`` then a ``<result>`` root, indented by two spaces with a final
  newline, as the documented samples print it (and as PHP's SimpleXML writes it); lists are
  ``<item>`` elements; an empty list, mapping or ``None`` is an empty element.
- JSON is compact (``json_encode`` style), ASCII with ``\\u`` escapes, and slashes escaped as
  ``\\/`` as PHP does (the diagnostic flow sample's ``https:\\/\\/``, plum-api.md 1.5).

Rendering is fast enough for 10,000-row pages: JSON goes through one ``json.dumps``, XML is a
list of strings joined once. XML cannot carry a mapping key that is not an XML name, nor
``item`` as a key (it would read back as a list); either raises ``ValueError``. Text with
characters XML 1.0 forbids (most control characters) is not checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal
from xml.sax.saxutils import escape

import attrs

from .._models import (
    Call,
    CallerProfile,
    CallEvent,
    CallPage,
    DetailedCall,
    DetailedCallPage,
    DiagnosticFlow,
    EventReport,
    FlowNode,
    GeographicProfile,
    PerformanceReport,
    TemporaryCredentials,
    VolumeReport,
)

__all__ = [
    "MEDIA_TYPES",
    "Renderable",
    "render",
    "render_error",
    "render_json",
    "render_xml",
]

SeriesReport = EventReport | VolumeReport | PerformanceReport | CallerProfile
VoiceTrendsDocument = SeriesReport | DiagnosticFlow | GeographicProfile | TemporaryCredentials
Renderable = CallPage | DetailedCallPage | VoiceTrendsDocument | Sequence[CallEvent]

MEDIA_TYPES: Mapping[str, str] = {"json": "application/json", "xml": "application/xml"}

_XML_DECLARATION = '<?xml version="1.0"?>'
_INDENT = "  "
# A parser turns a raw carriage return into a newline; a character reference survives.
_XML_TEXT_ESCAPES = {"\r": "&#13;"}
# In an attribute a parser also turns raw newlines and tabs into spaces (XML 1.0, 3.3.3).
_XML_ATTRIBUTE_ESCAPES = {'"': "&quot;", "\r": "&#13;", "\n": "&#10;", "\t": "&#9;"}
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# Each report's documented series, in the documented order (plum-api.md 1.5); ``extra`` follows.
_SERIES: dict[type, tuple[str, ...]] = {
    report: tuple(field.name for field in attrs.fields(report) if field.name != "extra")
    for report in (EventReport, VolumeReport, PerformanceReport, CallerProfile)
}
# plum-api.md 1.5: the geographic report's wire names.
_GEOGRAPHIC_KEYS = (("US", "us"), ("NON_US", "non_us"))


def render(obj: Renderable, fmt: Literal["json", "xml"]) -> bytes:
    """``render_json`` or ``render_xml``, by ``fmt``."""
    return render_xml(obj) if fmt == "xml" else render_json(obj)


def render_error(message: str, fmt: Literal["json", "xml"]) -> bytes:
    """An error body: ``{"error": message}`` or ``<result><error>message</error></result>``."""
    if fmt == "xml":
        return _xml_document([f"{_INDENT}<error>{_text(message)}</error>"])
    return _json_bytes({"error": message})


# --- JSON --------------------------------------------------------------------------------------


def render_json(obj: Renderable) -> bytes:
    """The documented JSON body for ``obj``."""
    return _json_bytes(_json_shape(obj))


def _json_bytes(shape: Any) -> bytes:
    text = json.dumps(shape, separators=(",", ":"), allow_nan=False)
    # PHP's json_encode escapes "/"; outside strings JSON has no "/", so replacing is exact.
    return text.replace("/", "\\/").encode("ascii")


def _json_shape(obj: Renderable) -> Any:
    if isinstance(obj, CallPage):
        return {"calls": [_call_json(call) for call in obj.calls], "total_calls": obj.total_calls}
    if isinstance(obj, DetailedCallPage):
        return {
            "calls": [_detailed_call_json(call) for call in obj.calls],
            "total_calls": obj.total_calls,
        }
    if isinstance(obj, VoiceTrendsDocument):
        return _voicetrends_json(obj)
    if isinstance(obj, Sequence):
        return [_event_json(event) for event in obj]
    raise TypeError(f"cannot render {type(obj).__name__}")


def _voicetrends_json(obj: VoiceTrendsDocument) -> dict[str, Any]:
    if isinstance(obj, SeriesReport):
        shape = {name: _series_json(getattr(obj, name)) for name in _SERIES[type(obj)]}
        shape.update((name, _series_json(series)) for name, series in obj.extra.items())
        return shape
    if isinstance(obj, GeographicProfile):
        counts: dict[str, Any] = {
            wire: dict(getattr(obj, name)) or [] for wire, name in _GEOGRAPHIC_KEYS
        }
        counts.update((name, dict(extra) or []) for name, extra in obj.extra.items())
        return counts
    if isinstance(obj, DiagnosticFlow):
        applications = {
            url: [attrs.asdict(node) for node in nodes] for url, nodes in obj.applications.items()
        }
        return {"applications": applications or []}
    return {"login": obj.login, "password": obj.password}


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def _call_json(call: Call) -> dict[str, Any]:
    return {
        "dest": call.dest,
        "src": call.src,
        "start": _unix(call.start),
        "end": _unix(call.end),
        "session_id": call.session_id,
        "type": call.type.value,
        "log": call.log,
    }


def _detailed_call_json(call: DetailedCall) -> dict[str, Any]:
    # plum-api.md 2.3: all_logs sends start/end as strings, and detail before type and log.
    return {
        "dest": call.dest,
        "src": call.src,
        "start": str(_unix(call.start)),
        "end": str(_unix(call.end)),
        "session_id": call.session_id,
        "detail": [_event_json(event) for event in call.detail],
        "type": call.type.value,
        "log": call.log,
    }


def _event_json(event: CallEvent) -> dict[str, Any]:
    return {
        "event": {"line": event.line, "data": event.data or []},
        "class": event.event_class,
        "timestamp": _unix(event.timestamp),
    }


def _series_json(series: Mapping[datetime, float]) -> dict[str, float] | list[Any]:
    return {str(_unix(moment)): value for moment, value in series.items()} or []


# --- XML ---------------------------------------------------------------------------------------


def render_xml(obj: Renderable) -> bytes:
    """The documented (or, where undocumented, assumed: see ``_core/decode.py``) XML body."""
    lines: list[str] = []
    pad = _INDENT
    if isinstance(obj, CallPage | DetailedCallPage):
        if not obj.calls:
            lines.append(f"{pad}<calls/>")
        else:
            lines.append(f"{pad}<calls>")
            for call in obj.calls:
                if isinstance(obj, DetailedCallPage) and isinstance(call, DetailedCall):
                    _detailed_call_xml(lines, call, pad * 2)
                else:
                    _call_xml(lines, call, pad * 2)
            lines.append(f"{pad}</calls>")
        lines.append(f"{pad}<total_calls>{obj.total_calls}</total_calls>")
    elif isinstance(obj, VoiceTrendsDocument):
        _voicetrends_xml(lines, obj, pad)
    elif isinstance(obj, Sequence):
        for event in obj:
            _event_xml(lines, event, pad)
    else:
        raise TypeError(f"cannot render {type(obj).__name__}")
    return _xml_document(lines)


def _voicetrends_xml(lines: list[str], obj: VoiceTrendsDocument, pad: str) -> None:
    if isinstance(obj, SeriesReport):
        for name in _SERIES[type(obj)]:
            _series_xml(lines, name, getattr(obj, name), pad)
        for name, series in obj.extra.items():
            _series_xml(lines, _xml_tag(name), series, pad)
    elif isinstance(obj, GeographicProfile):
        for wire, name in _GEOGRAPHIC_KEYS:
            _counts_xml(lines, wire, getattr(obj, name), pad)
        for name, counts in obj.extra.items():
            _counts_xml(lines, _xml_tag(name), counts, pad)
    elif isinstance(obj, DiagnosticFlow):
        _applications_xml(lines, obj.applications, pad)
    else:
        lines += (
            f"{pad}<login>{_text(obj.login)}</login>",
            f"{pad}<password>{_text(obj.password)}</password>",
        )


def _xml_document(lines: list[str]) -> bytes:
    if not lines:
        return f"{_XML_DECLARATION}\n<result/>\n".encode()
    return "\n".join([_XML_DECLARATION, "<result>", *lines, "</result>", ""]).encode()


def _text(value: str) -> str:
    return escape(value, _XML_TEXT_ESCAPES)


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _call_fields_xml(lines: list[str], call: Call, pad: str) -> None:
    lines += (
        f"{pad}<dest>{_text(call.dest)}</dest>",
        f"{pad}<src>{_text(call.src)}</src>",
        f"{pad}<start>{_unix(call.start)}</start>",
        f"{pad}<end>{_unix(call.end)}</end>",
        f"{pad}<session_id>{_text(call.session_id)}</session_id>",
    )


def _call_tail_xml(lines: list[str], call: Call, pad: str) -> None:
    lines += (
        f"{pad}<type>{_text(call.type.value)}</type>",
        f"{pad}<log>{_bool_text(call.log)}</log>",
    )


def _call_xml(lines: list[str], call: Call, pad: str) -> None:
    inner = pad + _INDENT
    lines.append(f"{pad}<item>")
    _call_fields_xml(lines, call, inner)
    _call_tail_xml(lines, call, inner)
    lines.append(f"{pad}</item>")


def _detailed_call_xml(lines: list[str], call: DetailedCall, pad: str) -> None:
    inner = pad + _INDENT
    lines.append(f"{pad}<item>")
    _call_fields_xml(lines, call, inner)
    if not call.detail:
        lines.append(f"{inner}<detail/>")
    else:
        lines.append(f"{inner}<detail>")
        for event in call.detail:
            _event_xml(lines, event, inner + _INDENT)
        lines.append(f"{inner}</detail>")
    _call_tail_xml(lines, call, inner)
    lines.append(f"{pad}</item>")


def _event_xml(lines: list[str], event: CallEvent, pad: str) -> None:
    inner = pad + _INDENT
    deeper = inner + _INDENT
    lines += (f"{pad}<item>", f"{inner}<event>", f"{deeper}<line>{_text(event.line)}</line>")
    _value_xml(lines, "data", event.data, deeper)
    lines += (
        f"{inner}</event>",
        f"{inner}<class>{_text(event.event_class)}</class>",
        f"{inner}<timestamp>{_unix(event.timestamp)}</timestamp>",
        f"{pad}</item>",
    )


def _series_xml(lines: list[str], tag: str, series: Mapping[datetime, float], pad: str) -> None:
    if not series:
        lines.append(f"{pad}<{tag}/>")
        return
    inner = pad + _INDENT
    lines.append(f"{pad}<{tag}>")
    lines.extend(
        f'{inner}<item timestamp="{_unix(moment)}">{_scalar_text(value)}</item>'
        for moment, value in series.items()
    )
    lines.append(f"{pad}</{tag}>")


def _attribute(value: str) -> str:
    return escape(value, _XML_ATTRIBUTE_ESCAPES)


def _counts_xml(lines: list[str], tag: str, counts: Mapping[str, int], pad: str) -> None:
    if not counts:
        lines.append(f"{pad}<{tag}/>")
        return
    inner = pad + _INDENT
    lines.append(f"{pad}<{tag}>")
    lines.extend(
        f'{inner}<item key="{_attribute(key)}">{_scalar_text(count)}</item>'
        for key, count in counts.items()
    )
    lines.append(f"{pad}</{tag}>")


def _applications_xml(
    lines: list[str], applications: Mapping[str, list[FlowNode]], pad: str
) -> None:
    if not applications:
        lines.append(f"{pad}<applications/>")
        return
    inner = pad + _INDENT
    lines.append(f"{pad}<applications>")
    for url, nodes in applications.items():
        if not nodes:
            lines.append(f'{inner}<item url="{_attribute(url)}"/>')
            continue
        lines.append(f'{inner}<item url="{_attribute(url)}">')
        for node in nodes:
            _flow_node_xml(lines, node, inner + _INDENT)
        lines.append(f"{inner}</item>")
    lines.append(f"{pad}</applications>")


def _flow_node_xml(lines: list[str], node: FlowNode, pad: str) -> None:
    # The node's own ``item`` field is an <item> among named siblings: a field, not a list.
    inner = pad + _INDENT
    lines.append(f"{pad}<item>")
    lines.extend(
        f"{inner}<{name}>{_scalar_text(value)}</{name}>"
        for name, value in attrs.asdict(node).items()
    )
    lines.append(f"{pad}</item>")


@lru_cache(maxsize=1024)
def _xml_tag(key: str) -> str:
    if key == "item" or not _XML_NAME.fullmatch(key):
        raise ValueError(f"{key!r} cannot be an XML element name in a Plum body")
    return key


def _value_xml(lines: list[str], tag: str, value: Any, pad: str) -> None:
    """A free-form value (``data`` of a log line): scalars as text, containers nested."""
    children: list[tuple[str, Any]]
    if isinstance(value, Mapping):
        children = [(_xml_tag(str(key)), item) for key, item in value.items()]
    elif isinstance(value, list | tuple):
        children = [("item", item) for item in value]
    elif value is None:
        children = []
    else:
        lines.append(f"{pad}<{tag}>{_scalar_text(value)}</{tag}>")
        return
    if not children:
        lines.append(f"{pad}<{tag}/>")
        return
    lines.append(f"{pad}<{tag}>")
    for child_tag, item in children:
        _value_xml(lines, child_tag, item, pad + _INDENT)
    lines.append(f"{pad}</{tag}>")


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return _bool_text(value)
    if isinstance(value, datetime):
        return str(_unix(value))
    if isinstance(value, int | float):
        return repr(value)
    return _text(str(value))
