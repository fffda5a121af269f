"""The other VoiceTrends raw-data reports: volume, performance, caller profile (per period),
diagnostic flow and geographic (over the whole range) (plum-api.md 1.4, 1.5).

One class per shape of request, each bound to a report's path and model; every report spends
the one VoiceTrends raw-data quota (150 requests per 15 minutes, shared with ``events``).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Generic, TypeVar

import attrs

from .._core.requests import GEOGRAPHIC, VoiceTrendsReport, report_request
from .._models import Period
from .._raw import RawView, raw
from .._transport import Transport

__all__ = [
    "DEFAULT_GEOGRAPHIC_RESOURCE",
    "PeriodReport",
    "RangeReport",
    "RawPeriodReport",
    "RawRangeReport",
    "geographic_location",
]

R = TypeVar("R")

DEFAULT_GEOGRAPHIC_RESOURCE = GEOGRAPHIC.resource
"""``profile``: where the docs put the geographic report (plum-api.md 1.5, quirk 4)."""

# RFC 3986 unreserved characters; "." and ".." alone are refused separately.
_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")


class PeriodReport(Generic[R]):
    """A report grouped by period: ``{resource}/{start}/{end}/{period}/{phone}``."""

    def __init__(
        self, transport: Transport, base_url: str, report: VoiceTrendsReport, model: type[R]
    ) -> None:
        self._transport = transport
        self._base_url = base_url
        self._report = report
        self._model = model

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._report.name}>"

    @property
    def with_raw_response(self) -> RawPeriodReport[R]:
        """The same ``fetch``, answering a ``RawResponse`` (headers, quota, ``parse()``)."""
        return RawPeriodReport(self)

    async def fetch(
        self,
        start: date | str | int,
        end: date | str | int,
        *,
        period: Period | str,
        phone: str,
    ) -> R:
        """Fetch the report for the days ``start`` to ``end`` (both inclusive).

        ``start``/``end`` are a ``datetime.date``, a ``"YYYYMMDD"`` string or an int YYYYMMDD,
        days of Plum's calendar (US Eastern: see ``Series`` for how its keys read in UTC);
        ``period`` is ``"day"``, ``"week"`` or ``"month"``; ``phone`` is a number of digits or
        ``"ALL"``. All are validated before any quota is spent.

        Raises:
            InvalidParameterError: a parameter is invalid (nothing sent).
            APIError, DecodeError, TransportError: see ``PlumClient``.
        """
        spec = report_request(
            self._base_url, self._report, start=start, end=end, period=period, phone=phone
        )
        return await self._transport.request(spec, self._model)


class RangeReport(Generic[R]):
    """A report over the whole range, with no period: ``{resource}/{start}/{end}/{phone}``."""

    def __init__(
        self, transport: Transport, base_url: str, report: VoiceTrendsReport, model: type[R]
    ) -> None:
        self._transport = transport
        self._base_url = base_url
        self._report = report
        self._model = model

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._report.name}>"

    @property
    def with_raw_response(self) -> RawRangeReport[R]:
        """The same ``fetch``, answering a ``RawResponse`` (headers, quota, ``parse()``)."""
        return RawRangeReport(self)

    async def fetch(
        self, start: date | str | int, end: date | str | int, *, phone: str, period: None = None
    ) -> R:
        """Fetch the report for the days ``start`` to ``end`` (both inclusive).

        Same parameters as the period reports, without ``period``: the wire has none, so one
        passed (code copied from a period report) is an ``InvalidParameterError`` rather than
        silently dropped.

        Raises:
            InvalidParameterError: a parameter is invalid (nothing sent).
            APIError, DecodeError, TransportError: see ``PlumClient``.
        """
        spec = report_request(
            self._base_url, self._report, start=start, end=end, phone=phone, period=period
        )
        return await self._transport.request(spec, self._model)


class RawPeriodReport(RawView[PeriodReport[R]]):
    """A period report's ``with_raw_response``: ``fetch`` answering ``RawResponse``."""

    fetch = raw(PeriodReport[R].fetch)


class RawRangeReport(RawView[RangeReport[R]]):
    """A whole-range report's ``with_raw_response``: ``fetch`` answering ``RawResponse``."""

    fetch = raw(RangeReport[R].fetch)


def geographic_location(base_url: str, resource: object) -> tuple[str, VoiceTrendsReport]:
    """Where the geographic report lives: the base URL to use, and the report with its resource.

    plum-api.md quirk 4: the docs put it at ``profile/{start}/{end}/{phone}``, the caller
    profile's prefix with one segment fewer, possibly a documentation error. ``resource``
    (``PlumClient(geographic_resource=...)``) moves it without waiting for a release: one or
    more ``/``-separated segments of unreserved characters, such as ``"geographic"``.

    Raises:
        ValueError: ``resource`` is not such a path; it is configuration, not a parameter.
    """
    if not isinstance(resource, str) or not all(
        _SEGMENT.fullmatch(segment) and segment not in (".", "..")
        for segment in resource.split("/")
    ):
        raise ValueError(
            f"geographic_resource must be one or more '/'-separated path segments of letters, "
            f"digits, '-', '_', '.' or '~' (not '.' or '..'), got {resource!r}"
        )
    *prefix, last = resource.split("/")
    # The leading segments extend the base URL; the last is the report's own resource, so the
    # core builder still encodes each user value as exactly one segment after it.
    base = base_url + "".join(f"{segment}/" for segment in prefix)
    return base, attrs.evolve(GEOGRAPHIC, resource=last)
