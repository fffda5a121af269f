"""How ``PlumSimulator`` reads a request: path, ``Accept``, credentials, ``auth`` form, parameters.

Apart from the simulator so that module is about answering (quotas, faults, resources), and so
the documented parameter rules (plum-api.md 1.2, 1.4, 2.2-2.4) read in one place. Nothing here
holds state: each function takes the request's text (``read_form`` its ASGI body), and a bad
parameter raises ``Rejected``, which the simulator answers as a 4xx with an ``error`` message.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from datetime import date
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote

from .._credentials import TOOLS
from .._models import Period

__all__ = [
    "Format",
    "Message",
    "Receive",
    "Rejected",
    "Scope",
    "auth_form",
    "basic_credentials",
    "negotiate",
    "page_arguments",
    "read_form",
    "report_period",
    "report_phone",
    "report_range",
    "same",
    "split_path",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Format = Literal["json", "xml"]

_LIMIT_DEFAULT, _LIMIT_MAX = 1000, 10_000  # plum-api.md 2.3 (all_logs; calls assumed the same)
_MAX_REPORT_DAYS = 3660  # ten years of daily rows: a bound on one answer, not a Plum rule
_MAX_FORM_BYTES = 64 * 1024  # an auth form is three short fields
_FORM_TYPE = "application/x-www-form-urlencoded"  # plum-api.md 1.2
_PHONE = re.compile(r"[0-9]{3,15}")
_DIGITS = re.compile(r"[0-9]{1,12}")


class Rejected(Exception):
    """A request refused with ``status`` and an ``error`` message (by a parser or a resource)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """The ``(login, password)`` of an HTTP Basic ``Authorization`` header, else ``None``."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        login, colon, password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (login, password) if colon else None


async def read_form(receive: Receive, content_type: str) -> dict[str, str] | None:
    """The form fields of a form-encoded body, or ``None`` for any other body."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if content_type.split(";", maxsplit=1)[0].strip().lower() != _FORM_TYPE:
        return None
    try:
        pairs = parse_qsl(b"".join(chunks).decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        return None
    return dict(reversed(pairs))  # a repeated field: the first one counts


def auth_form(form: Mapping[str, str] | None) -> tuple[str, str, str]:
    """The ``(tool, login, password)`` of an ``auth`` form (plum-api.md 1.2)."""
    if form is None:
        raise Rejected(400, f"Invalid data: the body must be {_FORM_TYPE}.")
    if form.get("tool") not in TOOLS:
        raise Rejected(400, "Invalid tool parameter.")
    for name in ("login", "password"):
        if not form.get(name):
            raise Rejected(400, f"Invalid {name} parameter.")
    return form["tool"], form["login"], form["password"]


def report_range(start: str, end: str) -> tuple[date, date]:
    first, last = _report_day(start, "start"), _report_day(end, "end")
    if last < first or (last - first).days >= _MAX_REPORT_DAYS:
        raise Rejected(400, "Invalid end parameter.")
    return first, last


def report_period(period: str) -> Period:
    if period not in {member.value for member in Period}:
        raise Rejected(400, "Invalid period parameter.")
    return Period(period)


def report_phone(phone: str) -> str:
    if phone != "ALL" and not _PHONE.fullmatch(phone):
        raise Rejected(400, "Invalid phone parameter.")
    return phone


def split_path(scope: Scope) -> tuple[str, list[str]]:
    """The resource and its decoded arguments; split before decoding, so ``%2F`` stays inside."""
    raw = scope.get("raw_path") or str(scope["path"]).encode()
    segments = [unquote(segment) for segment in raw.decode("latin-1").split("/")]
    if len(segments) < 3 or segments[:2] != ["", "api"]:
        return "", []
    return segments[2], segments[3:]


def negotiate(accept: str) -> Format:
    """``application/xml`` selects XML; anything else is JSON (plum-api.md 1.1, 2.1)."""
    for item in accept.split(","):
        media_type = item.split(";")[0].strip().lower()
        if media_type == "application/xml":
            return "xml"
        if media_type == "application/json":
            return "json"
    return "json"


def _report_day(text: str, name: str) -> date:
    if not re.fullmatch(r"[0-9]{8}", text):
        raise Rejected(400, f"Invalid {name} parameter.")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise Rejected(400, f"Invalid {name} parameter.") from None


def page_arguments(
    start: str, end: str, query: Mapping[str, str]
) -> tuple[int, int, str | None, int, int]:
    """The ``(first, last, number, limit, offset)`` of a ``calls`` or ``all_logs`` page."""
    first, last = _count(start, "start"), _count(end, "end")
    if last < first:
        raise Rejected(400, "Invalid end parameter.")
    number = query.get("number")
    if number is not None and not _PHONE.fullmatch(number):
        raise Rejected(400, "Invalid number parameter.")
    limit = _count(query.get("limit", str(_LIMIT_DEFAULT)), "limit")
    if not 1 <= limit <= _LIMIT_MAX:
        raise Rejected(400, "Invalid limit parameter.")
    offset = _count(query.get("offset", "0"), "offset")
    return first, last, number, limit, offset


def _count(text: str, name: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise Rejected(400, f"Invalid {name} parameter.")
    return int(text)
