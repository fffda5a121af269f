"""Request specs: what to send for each endpoint, as plain data (method, URL, query, quota group).

Each builder takes the raw user values, validates them with ``params.py`` and returns a
``RequestSpec``; bad input raises ``InvalidParameterError`` before anything is sent or any quota
spent. Every path segment goes through ``path_segment``, which percent-encodes it whole, so no
input can add, remove or climb a segment even if validation were bypassed.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from urllib.parse import quote, urlsplit

import attrs

from .._errors import InvalidParameterError
from . import params
from .params import FuseTime, PeriodLike, ReportDate

__all__ = [
    "CALLER_PROFILE",
    "DEFAULT_FUSE_URL",
    "DEFAULT_VOICETRENDS_URL",
    "DIAGNOSTIC_FLOW",
    "EVENTS",
    "GEOGRAPHIC",
    "PERFORMANCE",
    "VOLUME",
    "Api",
    "QuotaGroup",
    "RequestSpec",
    "VoiceTrendsReport",
    "call_details_request",
    "call_log_request",
    "calls_request",
    "events_request",
    "normalise_base_url",
    "path_segment",
    "report_request",
]

DEFAULT_FUSE_URL = "https://fuse.plumvoice.com/api/"
"""plum-api.md 2.1."""
DEFAULT_VOICETRENDS_URL = "https://voicetrends.plumvoice.com/api/"
"""plum-api.md 1.1."""


class Api(StrEnum):
    """Which Plum API, and so which credentials, a request uses."""

    FUSE = "fuse"
    VOICETRENDS = "voicetrends"


class QuotaGroup(StrEnum):
    """The quota a request spends (plum-api.md 1.3): one bucket per group and account."""

    VOICETRENDS = "voicetrends"
    """The raw-data reports: 150 per 15 minutes, shared by every report."""
    VOICETRENDS_AUTH = "voicetrends-auth"
    """Minting temporary credentials: 15 per 15 minutes."""
    FUSE = "fuse"
    """The Fuse call logs: undocumented, 150 per 15 minutes by default."""

    @property
    def api(self) -> Api:
        return Api.FUSE if self is QuotaGroup.FUSE else Api.VOICETRENDS


@attrs.frozen
class RequestSpec:
    """One request, ready to send: no credentials here, the transport adds them."""

    method: str
    url: str
    group: QuotaGroup
    query: tuple[tuple[str, str], ...] = ()
    form: tuple[tuple[str, str], ...] = ()
    operation: str = ""
    """What the user called, ``resource.method`` (``calls.page``): names spans and events."""


# --- Base URLs -------------------------------------------------------------------------------


def normalise_base_url(url: str, *, name: str) -> str:
    """Check a configured base URL and return it with exactly one trailing slash.

    Credentials travel in HTTP Basic, so the URL must be ``https://``; plain ``http://`` is
    allowed only to a loopback host (``localhost``, 127.0.0.0/8, ``::1``), where a local
    simulator or proxy listens. User info is refused (credentials in a URL leak into logs), and
    so are query strings and fragments (paths are appended, so they would end up mid-URL).
    Messages name the setting and never echo the whole URL, which might hold a secret.
    Idempotent: normalising a normalised URL returns it unchanged.

    Raises:
        ValueError: for any of the above; it is configuration, not a request parameter.
    """
    if any(char.isspace() or not char.isprintable() for char in url):
        raise ValueError(f"{name} must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # parsed for its check only: raises ValueError on a malformed port
    except ValueError as exc:
        raise ValueError(f"{name} is not a valid URL ({exc})") from None
    if "@" in parts.netloc:
        raise ValueError(
            f"{name} must not contain user info (user:password@): credentials in a URL leak "
            "into logs; pass them as fuse_auth / voicetrends_auth instead"
        )
    if parts.scheme not in ("https", "http"):
        raise ValueError(f"{name} must be an https:// URL, got scheme {parts.scheme!r}")
    if not host:
        raise ValueError(f"{name} has no host")
    if "?" in url or "#" in url:
        raise ValueError(f"{name} must not contain a query string or a fragment")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ValueError(
            f"{name} uses plain http:// to {host!r}: credentials travel in HTTP Basic, so only "
            "https:// is allowed, except to a loopback host (localhost, 127.0.0.0/8, ::1)"
        )
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}/"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- Paths -----------------------------------------------------------------------------------


def path_segment(text: str) -> str:
    """Percent-encode ``text`` as exactly one path segment.

    ``quote(..., safe="")`` encodes ``/``, ``%``, ``;``, ``?``, ``#`` and spaces, but leaves
    dots alone, and httpx (like browsers) resolves ``.`` and ``..`` segments; an empty segment
    would make ``//``, which some servers collapse. Those three are refused outright: validation
    never lets them through, so reaching this check is a bug, reported as a plain ValueError.
    """
    if text in ("", ".", ".."):
        raise ValueError(f"refusing path segment {text!r}: it would remove or climb a segment")
    return quote(text, safe="")


def _url(base_url: str, *segments: str) -> str:
    # Normalising again is cheap and idempotent, and makes the join safe whatever base arrives.
    base = normalise_base_url(base_url, name="base_url")
    return base + "/".join(path_segment(segment) for segment in segments)


# --- VoiceTrends reports (plum-api.md 1.4, 1.5) ----------------------------------------------


@attrs.frozen
class VoiceTrendsReport:
    """Where a raw-data report lives: ``{resource}/{start}/{end}/[{period}/]{phone}``.

    ``name`` is for messages only: two reports share the ``profile`` resource.
    """

    name: str
    resource: str
    takes_period: bool


EVENTS = VoiceTrendsReport("events", "events", takes_period=True)
VOLUME = VoiceTrendsReport("volume", "volume", takes_period=True)
PERFORMANCE = VoiceTrendsReport("performance", "performance", takes_period=True)
CALLER_PROFILE = VoiceTrendsReport("caller profile", "profile", takes_period=True)
DIAGNOSTIC_FLOW = VoiceTrendsReport("diagnostic flow", "path", takes_period=False)
# plum-api.md 1.5 and quirk 4: documented under the caller profile's prefix, one segment fewer.
GEOGRAPHIC = VoiceTrendsReport("geographic", "profile", takes_period=False)


def report_request(
    base_url: str,
    report: VoiceTrendsReport,
    *,
    start: ReportDate,
    end: ReportDate,
    phone: str,
    period: PeriodLike | None = None,
) -> RequestSpec:
    """Build the GET of any raw-data report; all of them spend the one VoiceTrends quota.

    ``period`` is required by the reports that group by period and refused by the two that do
    not (diagnostic flow and geographic), rather than silently dropped.
    """
    start_text, end_text = params.report_range(start, end)
    segments = [report.resource, start_text, end_text]
    if report.takes_period:
        segments.append(params.period(period))
    elif period is not None:
        raise InvalidParameterError(
            "period", period, f"the {report.name} report has no period, so it takes none"
        )
    segments.append(params.phone(phone))
    operation = f"{report.name.replace(' ', '_')}.fetch"  # the client's attribute: caller_profile
    return RequestSpec(
        "GET", _url(base_url, *segments), QuotaGroup.VOICETRENDS, operation=operation
    )


def events_request(
    base_url: str, *, start: ReportDate, end: ReportDate, period: PeriodLike, phone: str
) -> RequestSpec:
    """``GET {voicetrends_url}events/{start}/{end}/{period}/{phone}`` (plum-api.md 1.5)."""
    return report_request(base_url, EVENTS, start=start, end=end, period=period, phone=phone)


# --- Fuse call logs (plum-api.md 2.2-2.4) ----------------------------------------------------


def calls_request(
    base_url: str,
    *,
    start: FuseTime,
    end: FuseTime,
    number: str | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> RequestSpec:
    """``GET {fuse_url}calls/{start}/{end}`` with ``number``, ``limit``, ``offset`` when given."""
    start_second, end_second = params.fuse_range(start, end)
    return _fuse_page(
        "calls",
        "calls.page",
        base_url,
        start_second=start_second,
        end_second=end_second,
        number=number,
        limit=limit,
        offset=offset,
    )


def call_details_request(
    base_url: str,
    *,
    start: FuseTime,
    end: FuseTime,
    number: str | None = None,
    limit: int | None = None,
    offset: int | None = None,
    now: float,
) -> RequestSpec:
    """``GET {fuse_url}all_logs/{start}/{end}``, like ``calls_request`` plus the 5-day window.

    A ``start`` more than 5 days before ``now`` is refused (plum-api.md 2.3). ``now`` is the
    wall-clock UNIX time, passed in so the core never reads a clock.
    """
    start_second, end_second = params.fuse_range(start, end)
    params.check_details_window(start_second, now=now)
    return _fuse_page(
        "all_logs",
        "call_details.page",
        base_url,
        start_second=start_second,
        end_second=end_second,
        number=number,
        limit=limit,
        offset=offset,
    )


def _fuse_page(
    resource: str,
    operation: str,
    base_url: str,
    *,
    start_second: int,
    end_second: int,
    number: object,
    limit: object,
    offset: object,
) -> RequestSpec:
    wire_number = params.number(number)
    wire_limit = params.limit(limit)
    wire_offset = params.offset(offset)
    query: list[tuple[str, str]] = []
    if wire_number is not None:
        query.append(("number", wire_number))
    if wire_limit is not None:
        query.append(("limit", str(wire_limit)))
    if wire_offset is not None:
        query.append(("offset", str(wire_offset)))
    url = _url(base_url, resource, str(start_second), str(end_second))
    return RequestSpec("GET", url, QuotaGroup.FUSE, query=tuple(query), operation=operation)


def call_log_request(base_url: str, *, session_id: str) -> RequestSpec:
    """``GET {fuse_url}call/{session_id}``, the id encoded as one segment (``;`` -> ``%3B``).

    plum-api.md quirk 11: the id holds semicolons, which some servers and proxies read as
    path parameters; encoding them keeps the id one opaque segment.
    """
    wire_id = params.session_id(session_id)
    return RequestSpec(
        "GET", _url(base_url, "call", wire_id), QuotaGroup.FUSE, operation="call_details.get"
    )
