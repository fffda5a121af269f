"""Turn one response, ``(status, headers, body)``, into a model or into a typed error.

A 2xx body is parsed (JSON or XML), normalised to one JSON-like shape and structured into
the requested model by the converter of ``convert.py``; whatever goes wrong on the way
becomes a ``DecodeError`` carrying the status, the content type and the start of the body. An
error status becomes the ``APIError`` subclass of ``api_error_for_status`` with the server's
message, or the status's reason phrase when the body says nothing readable; never a
``DecodeError``, since the status already tells what happened. The transport adds the
``response`` and ``reset_at`` afterwards.

The format is chosen by the body before the ``Content-Type``: a body whose first non-space byte
is ``<`` is XML, because the documented XML 400 answer of the Event Tracker is sent with
``Content-Type: application/json`` (the 400/XML tab of the Event Tracker page, seed 000).

XML is parsed by xmltodict on expat with document type declarations refused (and, should one
slip through, entity declarations refused by xmltodict itself), so no entity can be declared:
neither entity expansion (billion laughs) nor external entities (XXE) can happen. xmltodict's
dictionaries (attributes as ``@name``, text beside them as ``#text``, a repeated name as a list,
one child as a bare value: the "one-item list" quirk) are then normalised into the shape the
JSON twin has:

- the root element must be ``<result>``;
- element text stays text (the converter reads numbers, booleans and timestamps out of it);
- an element with no children, or only blank text, is ``None``;
- an element whose children are all ``<item>`` is a list, however many items there are;
- if those items carry a ``timestamp`` attribute, they form a mapping ``{timestamp: value}``:
  that is how VoiceTrends sends a series as XML (seed 000); items keyed by a ``key`` or a
  ``url`` attribute form a mapping the same way (below);
- other elements are mappings of child name to value (a name repeated becomes a list).

Assumed shapes, not documented as XML [INFER]:

- the other VoiceTrends reports (plum-api.md 1.5, 1.6: no VoiceTrends XML sample exists beyond
  the Event Tracker's). Their JSON maps are keyed by text that cannot be an element name (a
  timestamp, ``"US Toll-Free"``, an application URL), so each entry is an ``<item>`` carrying
  its key in an attribute, like the Event Tracker's ``timestamp``: ``timestamp`` for a period
  series, ``key`` for the geographic counts, ``url`` for the diagnostic flow's applications.
  The top-level names are the JSON keys, upper case included (``US``, ``NON_US``)::

    <result><calls><item timestamp="1517461200">0</item>...</calls>...</result>
    <result><US><item key="AL">0</item>...<item key="US Toll-Free">1</item></US><NON_US/>
    </result>
    <result><applications><item url="https://demos.plumgroup.com/vxml/start.php"><item>
    <page>main.php</page><form>main_menu</form><item>selection</item><visits>985</visits>
    ...<disconnect>0</disconnect></item>...</item></applications></result>

  A form item's ``item`` field is an ``<item>`` element among named siblings, so it stays a
  field: only an element whose children are *all* ``<item>`` is a list or a keyed map.

- the minted credentials of ``auth`` (plum-api.md 1.2)::

    <result><login>..</login><password>..</password></result>

- ``all_logs`` (plum-api.md 2.3)::

    <result><calls><item>... <detail><item><event><line>..</line><data><module_type>..
    </module_type>...</data></event><class>info</class><timestamp>..</timestamp></item>
    ...</detail> ...</item></calls><total_calls>..</total_calls></result>

- the single call log ``call/{id}`` (plum-api.md 2.4), a top-level array in JSON::

    <result><item><event>...</event><class>..</class><timestamp>..</timestamp></item>...</result>
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, TypeVar, get_args, get_origin
from xml.parsers import expat

import xmltodict

from .._errors import APIError, DecodeError, api_error_for_status
from .convert import WireValueError, structure_wire

__all__ = ["decode_response", "error_from_response"]

T = TypeVar("T")

_EXCERPT_CHARS = 200
_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"
_HTML_STARTS = (b"<!doctype html", b"<html")
_HTML_SNIFF_BYTES = max(map(len, _HTML_STARTS))
# The attributes that key an <item> (module docstring), with how messages call such items.
_KEYED_ITEMS = {"timestamp": "timestamped", "key": "keyed", "url": "URL-keyed"}
_KEY_ATTRIBUTES = tuple(_KEYED_ITEMS)


class _UnreadableBody(ValueError):
    """The body is not well-formed JSON or XML, or not in the documented shape. Private."""


class _DoctypeRefused(ValueError):
    """Raised from inside expat at a ``<!DOCTYPE``, before any declaration in it is read."""


def _refuse_doctype(*_: object) -> None:
    raise _DoctypeRefused("XML with a document type declaration is refused")


class _ExpatWithoutDoctype:
    """The ``expat`` module as xmltodict uses it (``ParserCreate``), refusing any DTD."""

    @staticmethod
    def ParserCreate(*args: Any, **kwargs: Any) -> Any:  # expat's own name
        parser = expat.ParserCreate(*args, **kwargs)
        parser.StartDoctypeDeclHandler = _refuse_doctype
        return parser


def decode_response(status: int, headers: Mapping[str, str], body: bytes, model: type[T]) -> T:
    """Decode one response into ``model`` (a model class, or ``list[CallEvent]``).

    Raises:
        APIError: the status is not 2xx; the subclass follows the status (``BadRequestError``
            for 400, ``ServerError`` for 5xx...), ``message`` is the body's ``error`` text.
        DecodeError: a 2xx body that is not the documented shape of ``model``.
    """
    if not 200 <= status < 300:
        raise error_from_response(status, headers, body)
    content_type = _content_type(headers)
    try:
        tree = _parse(content_type, body)
    except (_UnreadableBody, RecursionError) as exc:
        reason = "nesting too deep" if isinstance(exc, RecursionError) else str(exc)
        # Chain the parser's own exception (JSONDecodeError, ParseError...) when there is one.
        raise _decode_error(reason, status, content_type, body) from (exc.__cause__ or exc)
    if isinstance(tree, Mapping) and "error" in tree:
        # The docs send ``error`` only with a non-200 status (plum-api.md 1.4, 2.2); every
        # other field is "not always present", so structuring would yield an empty result
        # and hide the failure.
        reason = f"a success status with an error body: {tree['error']!r}"
        raise _decode_error(reason, status, content_type, body)
    try:
        return structure_wire(tree, model)
    except WireValueError as exc:
        reason = f"not a {_model_name(model)}: {exc}"
        raise _decode_error(reason, status, content_type, body) from exc.__cause__


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> APIError:
    """The ``APIError`` for an error status, with the server's message when it gave one.

    The message is ``message`` of the legacy Fuse shape ``{"error": "NotAuthException",
    "type": "NotAuth", "message": ...}`` (plum-api.md 2.5), else the ``error`` text of a JSON
    or XML body, else the status's reason phrase: a proxy's HTML page still gives the status's
    class.
    """
    return api_error_for_status(status, _error_message(status, headers, body))


def _error_message(status: int, headers: Mapping[str, str], body: bytes) -> str:
    try:
        tree = _parse(_content_type(headers), body)
    except (_UnreadableBody, RecursionError):
        tree = None
    if isinstance(tree, Mapping):
        for key in ("message", "error"):
            text = tree.get(key)
            if isinstance(text, str) and text.strip():
                return text.strip()
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP status {status}"


def _content_type(headers: Mapping[str, str]) -> str:
    for name, value in headers.items():
        if name.lower() == "content-type":
            return value
    return ""


def _model_name(model: object) -> str:
    # ``list[CallEvent]`` reads as that, not as its origin's bare name ``list``.
    origin, args = get_origin(model), get_args(model)
    if origin is not None and args:
        return f"{_model_name(origin)}[{', '.join(_model_name(arg) for arg in args)}]"
    return str(getattr(model, "__name__", model))


def _decode_error(reason: str, status: int, content_type: str, body: bytes) -> DecodeError:
    excerpt = body[:_EXCERPT_CHARS].decode("utf-8", errors="replace")
    return DecodeError(reason, status_code=status, content_type=content_type, excerpt=excerpt)


def _parse(content_type: str, body: bytes) -> Any:
    """Parse JSON or XML into the JSON-like shape, choosing by the body first (module docstring)."""
    start = body.removeprefix(_BOM).lstrip(_WHITESPACE)
    if not start:
        raise _UnreadableBody("empty body")
    if start[:_HTML_SNIFF_BYTES].lower().startswith(_HTML_STARTS):
        raise _UnreadableBody("an HTML page, not JSON or XML")
    if start.startswith(b"<") or (
        "xml" in content_type.lower() and not start.startswith((b"{", b"["))
    ):
        return _parse_xml(body)
    return _parse_json(body)


def _refuse_constant(name: str) -> Any:
    raise _UnreadableBody(f"{name} is not a JSON number")


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits
        if isinstance(exc, _UnreadableBody):
            raise
        raise _UnreadableBody(f"not valid JSON: {exc}") from exc


def _parse_xml(body: bytes) -> Any:
    try:
        document = xmltodict.parse(
            body, expat=_ExpatWithoutDoctype, disable_entities=True, strip_whitespace=False
        )
    except _DoctypeRefused as exc:
        raise _UnreadableBody(str(exc)) from exc
    except (expat.ExpatError, ValueError, LookupError) as exc:  # LookupError: unknown encoding
        raise _UnreadableBody(f"not well-formed XML: {exc}") from exc
    (tag, root), *_ = document.items()  # expat allows exactly one root element
    if tag != "result":
        raise _UnreadableBody(f"XML root element is <{tag}>, expected <result>")
    return _element_value(root)


def _element_value(node: Any) -> Any:
    """One element as xmltodict gives it (``None``, its text, or a dict of attributes, text and
    children), in the shape of its JSON twin (module docstring)."""
    if type(node) is not dict:
        return _text_value(node)
    children = {name: value for name, value in node.items() if name[0] not in "@#"}
    if not children:
        return _text_value(node.get("#text"))  # an <item>'s text beside its key
    if children.keys() == {"item"}:
        items = children["item"]
        return _items_value(items if type(items) is list else [items])
    return {
        name: list(map(_element_value, value)) if type(value) is list else _element_value(value)
        for name, value in children.items()
    }


def _text_value(text: str | None) -> str | None:
    return text if text is None or text.strip() else None


def _items_value(items: list[Any]) -> list[Any] | dict[str, Any]:
    if dict not in set(map(type, items)):
        # Text or empty items only (the common list of values, and 1,000,000 <item/>): no
        # attribute to look for, one C loop when they are all empty.
        return items if items.count(None) == len(items) else list(map(_text_value, items))
    attribute = next(
        (name for name in _KEY_ATTRIBUTES if _attribute(items[0], name) is not None), None
    )
    if attribute is None:
        if any(
            f"@{name}" in item for item in items if type(item) is dict for name in _KEY_ATTRIBUTES
        ):
            raise _UnreadableBody("keyed and unkeyed <item> elements mixed")
        return list(map(_element_value, items))
    # A VoiceTrends map in XML: <item timestamp="1517461200">0</item> (seed 000), or keyed by
    # ``key`` or ``url`` (module docstring).
    keyed: dict[str, Any] = {}
    for item in items:
        key = _attribute(item, attribute)
        if key is None:
            raise _UnreadableBody(
                f"an <item> without a {attribute} among {_KEYED_ITEMS[attribute]} items"
            )
        keyed[key] = _element_value(item)
    return keyed


def _attribute(node: Any, name: str) -> str | None:
    return node.get(f"@{name}") if type(node) is dict else None
