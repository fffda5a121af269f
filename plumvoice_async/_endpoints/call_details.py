"""``client.call_details``: the Fuse call logs with details (plum-api.md 2.3, 2.4)."""

from __future__ import annotations

import os
from datetime import datetime

from .._core.requests import call_details_request, call_log_request
from .._encoding import OutputFormat
from .._export import ExportResult, ProgressHook, export_call_logs
from .._models import CallEvent, DetailedCall, DetailedCallPage
from .._pagination import PageIterator, ResumePoint
from .._raw import RawView, raw
from .._transport import Transport
from .calls import session_id_of

__all__ = ["CallDetails", "RawCallDetails"]


class CallDetails:
    """Calls with their detailed logs; Plum keeps these for the last 5 days only."""

    def __init__(self, transport: Transport, base_url: str) -> None:
        self._transport = transport
        self._base_url = base_url

    @property
    def with_raw_response(self) -> RawCallDetails:
        """The same methods, answering a ``RawResponse`` (headers, quota, ``parse()``)."""
        return RawCallDetails(self)

    async def page(
        self,
        start: int | datetime,
        end: int | datetime,
        *,
        number: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> DetailedCallPage:
        """Fetch one page of detailed calls between ``start`` and ``end``.

        Same parameters as ``client.calls.page``; a ``start`` older than 5 days (by the
        client's clock) is refused before any request, since Plum has no details for it.

        Raises:
            InvalidParameterError: a parameter is invalid (nothing sent).
            APIError, DecodeError, TransportError: see ``PlumClient``.
        """
        return await self._page(
            start, end, number=number, limit=limit, offset=offset, now=self._transport.clock.time()
        )

    def iterate(
        self,
        start: int | datetime,
        end: int | datetime,
        *,
        number: str | None = None,
        page_size: int = 10_000,
        concurrency: int = 1,
        start_offset: int = 0,
        after: str | None = None,
        resume: ResumePoint[str] | None = None,
    ) -> PageIterator[DetailedCall, str]:
        """Every detailed call between ``start`` and ``end``, each exactly once, in order.

        As ``client.calls.iterate``. The 5-day window is judged once, when the walk starts,
        so a long walk is not cut short as its ``start`` ages; rows that expire meanwhile
        simply leave the server's set (the walk stays exactly-once for the rest).

        Raises:
            InvalidParameterError: here, before any request, for a bad parameter.
        """
        started_at = self._transport.clock.time()
        call_details_request(self._base_url, start=start, end=end, number=number, now=started_at)

        async def fetch(offset: int, limit: int) -> tuple[list[DetailedCall], int | None]:
            page = await self._page(
                start, end, number=number, limit=limit, offset=offset, now=started_at
            )
            return page.calls, page.total_calls

        return PageIterator(
            fetch,
            key=session_id_of,
            page_size=page_size,
            concurrency=concurrency,
            start_offset=start_offset,
            after=after,
            resume=resume,
        )

    async def export(
        self,
        start: int | datetime,
        end: int | datetime,
        path: str | os.PathLike[str],
        *,
        format: OutputFormat = "jsonl",
        resume: bool = False,
        number: str | None = None,
        page_size: int = 10_000,
        concurrency: int = 1,
        progress: ProgressHook | None = None,
    ) -> ExportResult:
        """Write every call with its detailed log in the range to ``path``, exactly once.

        As ``Calls.export`` (the same arguments, checkpoint, resume and errors), with each
        row's ``detail``; ``plumvoice details --out`` is this call. Detailed logs exist for
        the last 5 days only: an older ``start`` is an ``InvalidParameterError``.
        """
        return await export_call_logs(
            "details",
            self.iterate,
            start,
            end,
            path,
            format=format,
            resume=resume,
            number=number,
            page_size=page_size,
            concurrency=concurrency,
            progress=progress,
        )

    async def get(self, session_id: str) -> list[CallEvent]:
        """Fetch the detailed log of one call (``GET {fuse_url}call/{session_id}``).

        ``session_id`` is the documented form, three ``;``-separated digit groups (as in
        ``Call.session_id``); it is validated and sent percent-encoded as one path segment.

        Raises:
            InvalidParameterError: the session id is malformed (nothing sent).
            NotFoundError: Plum has no log for it (unknown, or older than 5 days).
            APIError, DecodeError, TransportError: see ``PlumClient``.
        """
        spec = call_log_request(self._base_url, session_id=session_id)
        return await self._transport.request(spec, list[CallEvent])

    async def _page(
        self,
        start: int | datetime,
        end: int | datetime,
        *,
        number: str | None,
        limit: int | None,
        offset: int | None,
        now: float,
    ) -> DetailedCallPage:
        spec = call_details_request(
            self._base_url,
            start=start,
            end=end,
            number=number,
            limit=limit,
            offset=offset,
            now=now,
        )
        return await self._transport.request(spec, DetailedCallPage)


class RawCallDetails(RawView[CallDetails]):
    """``call_details.with_raw_response``: ``page``, ``get`` answering ``RawResponse``."""

    page = raw(CallDetails.page)
    get = raw(CallDetails.get)
