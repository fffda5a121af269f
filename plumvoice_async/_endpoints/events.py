"""``client.events``: the VoiceTrends Event Tracker report (plum-api.md 1.5)."""

from __future__ import annotations

from datetime import date

from .._core.requests import events_request
from .._models import EventReport, Period
from .._raw import RawView, raw
from .._transport import Transport

__all__ = ["Events", "RawEvents"]


class Events:
    """The Event Tracker: calls, log events, loops and form items per period."""

    def __init__(self, transport: Transport, base_url: str) -> None:
        self._transport = transport
        self._base_url = base_url

    @property
    def with_raw_response(self) -> RawEvents:
        """The same methods, answering a ``RawResponse`` (headers, quota, ``parse()``)."""
        return RawEvents(self)

    async def fetch(
        self,
        start: date | str | int,
        end: date | str | int,
        *,
        period: Period | str,
        phone: str,
    ) -> EventReport:
        """Fetch the report for the days ``start`` to ``end`` (both inclusive).

        ``start``/``end`` are a ``datetime.date``, a ``"YYYYMMDD"`` string or an int YYYYMMDD,
        days of Plum's calendar (US Eastern: see ``Series`` for how its keys read in UTC);
        ``period`` is ``"day"``, ``"week"`` or ``"month"``; ``phone`` is a number of digits or
        ``"ALL"``. All are validated before any quota is spent.

        Raises:
            InvalidParameterError: a parameter is invalid (nothing sent).
            APIError, DecodeError, TransportError: see ``PlumClient``.
        """
        spec = events_request(self._base_url, start=start, end=end, period=period, phone=phone)
        return await self._transport.request(spec, EventReport)


class RawEvents(RawView[Events]):
    """``events.with_raw_response``: ``fetch`` answering ``RawResponse``."""

    fetch = raw(Events.fetch)
