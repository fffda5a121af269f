"""One shared table of bad inputs: every row must be refused before any request is sent.

Row format (``BadInput``, frozen):

- ``id``: a unique, readable test id.
- ``endpoint``: which user call the row is for:

  ==================  ==================================================================
  ``"events"``        ``client.events.fetch(**kwargs)``
  ``"calls"``         ``client.calls.page(**kwargs)``
  ``"call_details"``  ``client.call_details.page(**kwargs)``; the client's clock must
                      read ``NOW`` (inject a clock whose wall time is ``NOW``), since the
                      5-day rule of the detailed logs is measured from it
  ``"call_log"``      ``client.call_details.get(**kwargs)`` (kwargs hold ``session_id``)
  ``"volume"``,       ``client.<endpoint>.fetch(**kwargs)``: the VoiceTrends reports
  ``"performance"``,  grouped by period, same parameters as ``events``
  ``"caller_profile"``
  ``"diagnostic_flow"``, ``client.<endpoint>.fetch(**kwargs)``: the reports over the whole
  ``"geographic"``    range, without ``period``
  ==================  ==================================================================

- ``kwargs``: the keyword arguments exactly as a user would pass them. Each row has exactly
  one bad value; the others are the valid ones of ``VALID_KWARGS``. Read-only mappings.
- ``parameter``: the name the ``InvalidParameterError`` must carry in ``.parameter`` (and in
  its message).

The core builders in ``plumvoice_async._core.requests`` take the same keyword names, so the
same rows drive the core tests and the client-level tests (which also assert that no request
reached the transport and no quota was spent).

The rows of the five other reports are in ``REPORT_BAD_INPUTS`` (their valid arguments in
``REPORT_VALID_KWARGS``), apart from ``BAD_INPUTS`` until ``tests/core/test_requests.py``'s
``build`` knows their endpoints (``rq.report_request(DEFAULT_VOICETRENDS_URL, report,
**kwargs)`` with the report constant of each); ``tests/test_reports.py`` runs them through
``report_request`` meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, Literal

from plumvoice_async import Period

__all__ = [
    "BAD_INPUTS",
    "NOW",
    "REPORT_BAD_INPUTS",
    "REPORT_VALID_KWARGS",
    "VALID_KWARGS",
    "BadInput",
    "Endpoint",
]

Endpoint = Literal[
    "events",
    "calls",
    "call_details",
    "call_log",
    "volume",
    "performance",
    "caller_profile",
    "diagnostic_flow",
    "geographic",
]

NOW = 1_529_600_000.0
"""The wall-clock UNIX time the ``call_details`` rows are judged at (2018-06-21T16:53:20Z)."""

_FUSE_START = 1_529_550_000  # 2018-06-21T03:00:00Z, within 5 days of NOW
_FUSE_END = 1_529_560_000
_FIVE_DAYS = 5 * 86_400

VALID_KWARGS: Mapping[Endpoint, Mapping[str, Any]] = MappingProxyType(
    {
        "events": MappingProxyType(
            {"start": date(2018, 2, 1), "end": date(2018, 2, 8), "period": "day", "phone": "ALL"}
        ),
        "calls": MappingProxyType({"start": _FUSE_START, "end": _FUSE_END}),
        "call_details": MappingProxyType({"start": _FUSE_START, "end": _FUSE_END}),
        "call_log": MappingProxyType({"session_id": "300060;001;1529552581"}),
    }
)
"""One accepted set of arguments per endpoint (every row differs from it in one value)."""


@dataclass(frozen=True)
class BadInput:
    id: str
    endpoint: Endpoint
    kwargs: Mapping[str, Any]
    parameter: str


_PERIOD_REPORT_KWARGS = VALID_KWARGS["events"]
_RANGE_REPORT_KWARGS = MappingProxyType(
    {"start": date(2018, 2, 1), "end": date(2018, 2, 8), "phone": "ALL"}
)
REPORT_VALID_KWARGS: Mapping[Endpoint, Mapping[str, Any]] = MappingProxyType(
    {
        "volume": _PERIOD_REPORT_KWARGS,
        "performance": _PERIOD_REPORT_KWARGS,
        "caller_profile": _PERIOD_REPORT_KWARGS,
        "diagnostic_flow": _RANGE_REPORT_KWARGS,
        "geographic": _RANGE_REPORT_KWARGS,
    }
)
"""One accepted set of arguments per report endpoint of ``REPORT_BAD_INPUTS``."""


def _row(row_id: str, endpoint: Endpoint, parameter: str, **bad: Any) -> BadInput:
    valid = VALID_KWARGS.get(endpoint) or REPORT_VALID_KWARGS[endpoint]
    kwargs = {**valid, **bad}
    return BadInput(row_id, endpoint, MappingProxyType(kwargs), parameter)


_EST = timezone(timedelta(hours=-5))

BAD_INPUTS: tuple[BadInput, ...] = (
    # --- events: report days (integer YYYYMMDD, plum-api.md 1.4) ---
    _row("events-start-aware-datetime", "events", "start", start=datetime(2018, 2, 1, tzinfo=UTC)),
    _row("events-start-naive-datetime", "events", "start", start=datetime(2018, 2, 1)),
    _row("events-start-iso-string", "events", "start", start="2018-02-01"),
    _row("events-start-9-digit-int", "events", "start", start=201802011),
    _row("events-start-7-digit-int", "events", "start", start=2018021),
    _row("events-end-9-digit-str", "events", "end", end="201802081"),
    _row("events-end-7-digit-str", "events", "end", end="2018028"),
    _row("events-start-feb-30-int", "events", "start", start=20180230),
    _row("events-end-month-13-str", "events", "end", end="20181301"),
    _row("events-start-bool", "events", "start", start=True),
    _row("events-start-float", "events", "start", start=20180201.0),
    _row("events-start-none", "events", "start", start=None),
    _row("events-start-leading-space", "events", "start", start=" 20180201"),
    _row("events-end-negative-int", "events", "end", end=-20180208),
    _row("events-end-before-start", "events", "end", start=20180208, end=20180201),
    # --- events: period ---
    _row("events-period-unknown", "events", "period", period="daily"),
    _row("events-period-upper-case", "events", "period", period="DAY"),
    _row("events-period-none", "events", "period", period=None),
    _row("events-period-int", "events", "period", period=1),
    # --- events: phone (digits or the literal ALL) ---
    _row("events-phone-traversal", "events", "phone", phone="ALL/../x"),
    _row("events-phone-encoded-slash", "events", "phone", phone="%2F"),
    _row("events-phone-trailing-space", "events", "phone", phone="ALL "),
    _row("events-phone-inner-spaces", "events", "phone", phone="617 712 3000"),
    _row("events-phone-empty", "events", "phone", phone=""),
    _row("events-phone-dot-dot", "events", "phone", phone=".."),
    _row("events-phone-lower-case-all", "events", "phone", phone="all"),
    _row("events-phone-plus", "events", "phone", phone="+16177123000"),
    _row("events-phone-dashes", "events", "phone", phone="617-712-3000"),
    _row("events-phone-int", "events", "phone", phone=6177123000),
    _row("events-phone-none", "events", "phone", phone=None),
    _row("events-phone-16-digits", "events", "phone", phone="1" * 16),
    _row("events-phone-trailing-newline", "events", "phone", phone="6177123000\n"),
    _row("events-phone-arabic-digits", "events", "phone", phone="٦١٧٧١٢٣٠٠٠"),
    # --- calls: instants (UNIX seconds, plum-api.md 2.2) ---
    _row("calls-start-naive-datetime", "calls", "start", start=datetime(2018, 6, 21, 3)),
    _row("calls-end-naive-datetime", "calls", "end", end=datetime(2018, 6, 21, 6)),
    _row("calls-end-before-start", "calls", "end", start=_FUSE_END, end=_FUSE_START),
    _row(
        "calls-aware-end-before-start",
        "calls",
        "end",
        start=datetime(2018, 6, 21, 3, tzinfo=_EST),  # 08:00Z
        end=datetime(2018, 6, 21, 7, tzinfo=UTC),  # 07:00Z: earlier, despite the larger hour
    ),
    _row(
        "calls-end-before-start-same-second",  # both floor to 03:00:00Z (issue 12, item 10)
        "calls",
        "end",
        start=datetime(2018, 6, 21, 3, 0, 0, 600_000, tzinfo=UTC),
        end=datetime(2018, 6, 21, 3, 0, 0, 300_000, tzinfo=UTC),
    ),
    _row("calls-start-bool", "calls", "start", start=True),
    _row("calls-start-negative", "calls", "start", start=-1),
    _row("calls-start-float", "calls", "start", start=1_529_550_000.0),
    _row("calls-start-numeric-string", "calls", "start", start="1529550000"),
    _row("calls-start-date", "calls", "start", start=date(2018, 6, 21)),
    _row("calls-start-none", "calls", "start", start=None),
    _row("calls-end-none", "calls", "end", end=None),
    _row("calls-end-milliseconds", "calls", "end", end=1_529_560_000_000),
    # --- calls: paging and number ---
    _row("calls-limit-zero", "calls", "limit", limit=0),
    _row("calls-limit-10001", "calls", "limit", limit=10_001),
    _row("calls-limit-negative", "calls", "limit", limit=-5),
    _row("calls-limit-bool", "calls", "limit", limit=True),
    _row("calls-limit-string", "calls", "limit", limit="100"),
    _row("calls-limit-float", "calls", "limit", limit=100.0),
    _row("calls-offset-negative", "calls", "offset", offset=-1),
    _row("calls-offset-bool", "calls", "offset", offset=False),
    _row("calls-offset-float", "calls", "offset", offset=1.5),
    _row("calls-number-traversal", "calls", "number", number="6177123000/../x"),
    _row("calls-number-empty", "calls", "number", number=""),
    _row("calls-number-int", "calls", "number", number=6177123000),
    _row("calls-number-all", "calls", "number", number="ALL"),
    _row("calls-number-encoded-slash", "calls", "number", number="%2F"),
    # --- call_details: the same rules plus the 5-day window (plum-api.md 2.3) ---
    _row(
        "details-start-older-than-5-days",
        "call_details",
        "start",
        start=int(NOW) - _FIVE_DAYS - 1,
    ),
    _row(
        "details-aware-start-6-days-old",
        "call_details",
        "start",
        start=datetime.fromtimestamp(NOW, UTC) - timedelta(days=6),
    ),
    _row("details-start-naive-datetime", "call_details", "start", start=datetime(2018, 6, 21, 3)),
    _row("details-end-before-start", "call_details", "end", start=_FUSE_END, end=_FUSE_START),
    _row(
        "details-end-before-start-same-second",
        "call_details",
        "end",
        start=datetime(2018, 6, 21, 3, 0, 0, 600_000, tzinfo=UTC),
        end=datetime(2018, 6, 21, 3, 0, 0, 300_000, tzinfo=UTC),
    ),
    _row("details-start-bool", "call_details", "start", start=True),
    _row("details-limit-zero", "call_details", "limit", limit=0),
    _row("details-limit-10001", "call_details", "limit", limit=10_001),
    _row("details-offset-negative", "call_details", "offset", offset=-1),
    _row("details-number-spaces", "call_details", "number", number="617 712 3000"),
    # --- call_log: session ids (three ';'-separated digit groups, plum-api.md 2.4) ---
    _row("log-session-two-groups", "call_log", "session_id", session_id="1;2"),
    _row("log-session-four-groups", "call_log", "session_id", session_id="1;2;3;4"),
    _row("log-session-letters", "call_log", "session_id", session_id="a;b;c"),
    _row("log-session-traversal", "call_log", "session_id", session_id="1;2;3/../x"),
    _row("log-session-empty", "call_log", "session_id", session_id=""),
    _row("log-session-none", "call_log", "session_id", session_id=None),
    _row("log-session-int", "call_log", "session_id", session_id=300060),
    _row(
        "log-session-trailing-space",
        "call_log",
        "session_id",
        session_id="300060;001;1529552581 ",
    ),
    _row(
        "log-session-pre-encoded",
        "call_log",
        "session_id",
        session_id="300060%3B001%3B1529552581",
    ),
)
"""Every bad input, at least one per rule; ids are unique."""


def _report_rows(endpoint: Endpoint, *, takes_period: bool) -> tuple[BadInput, ...]:
    """The report parameter rules of ``events`` again, for one more report."""
    rows = [
        _row(
            f"{endpoint}-start-aware-datetime",
            endpoint,
            "start",
            start=datetime(2018, 2, 1, tzinfo=UTC),
        ),
        _row(f"{endpoint}-start-iso-string", endpoint, "start", start="2018-02-01"),
        _row(f"{endpoint}-start-feb-30-int", endpoint, "start", start=20180230),
        _row(f"{endpoint}-start-bool", endpoint, "start", start=True),
        _row(f"{endpoint}-end-before-start", endpoint, "end", start=20180208, end=20180201),
        _row(f"{endpoint}-end-7-digit-str", endpoint, "end", end="2018028"),
        _row(f"{endpoint}-phone-traversal", endpoint, "phone", phone="ALL/../x"),
        _row(f"{endpoint}-phone-encoded-slash", endpoint, "phone", phone="%2F"),
        _row(f"{endpoint}-phone-lower-case-all", endpoint, "phone", phone="all"),
        _row(f"{endpoint}-phone-int", endpoint, "phone", phone=6177123000),
        _row(f"{endpoint}-phone-empty", endpoint, "phone", phone=""),
    ]
    if takes_period:
        rows += [
            _row(f"{endpoint}-period-unknown", endpoint, "period", period="daily"),
            _row(f"{endpoint}-period-upper-case", endpoint, "period", period="DAY"),
            _row(f"{endpoint}-period-none", endpoint, "period", period=None),
        ]
    else:
        # No period on the wire (plum-api.md 1.4): one passed is refused, not dropped.
        rows += [
            _row(f"{endpoint}-period-given", endpoint, "period", period="day"),
            _row(f"{endpoint}-period-enum-given", endpoint, "period", period=Period.WEEK),
        ]
    return tuple(rows)


REPORT_BAD_INPUTS: tuple[BadInput, ...] = (
    *_report_rows("volume", takes_period=True),
    *_report_rows("performance", takes_period=True),
    *_report_rows("caller_profile", takes_period=True),
    *_report_rows("diagnostic_flow", takes_period=False),
    *_report_rows("geographic", takes_period=False),
)
"""Every bad input of the five other VoiceTrends reports; ids are unique, also with BAD_INPUTS."""
