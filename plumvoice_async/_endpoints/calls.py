"""``client.calls``: the Fuse call logs, one page or every call (plum-api.md 2.2)."""

from __future__ import annotations

import os
from datetime import datetime

from .._core.requests import calls_request
from .._encoding import OutputFormat
from .._export import ExportResult, ProgressHook, export_call_logs
from .._models import Call, CallPage
from .._pagination import PageIterator, ResumePoint
from .._raw import RawView, raw
from .._transport import Transport

__all__ = ["Calls", "RawCalls", "session_id_of"]


def session_id_of(call: Call) -> str:
    """The key a walk dedupes by: Plum's unique id of a call."""
    return call.session_id


class Calls:
    """Completed calls in a time range, optionally for one deployment number."""

    def __init__(self, transport: Transport, base_url: str) -> None:
        self._transport = transport
        self._base_url = base_url

    @property
    def with_raw_response(self) -> RawCalls:
        """The same methods, answering a ``RawResponse`` (headers, quota, ``parse()``)."""
        return RawCalls(self)

    async def page(
        self,
        start: int | datetime,
        end: int | datetime,
        *,
        number: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> CallPage:
        """Fetch one ``limit``/``offset`` page of the calls between ``start`` and ``end``.

        ``start``/``end`` are int UNIX timestamps or timezone-aware datetimes (a naive
        datetime is refused: its instant is ambiguous). ``number``, ``limit`` and ``offset``
        are sent only when given. All are validated before any quota is spent.

        Raises:
            InvalidParameterError: a parameter is invalid (nothing sent).
            APIError, DecodeError, TransportError: see ``PlumClient``.
        """
        spec = calls_request(
            self._base_url, start=start, end=end, number=number, limit=limit, offset=offset
        )
        return await self._transport.request(spec, CallPage)

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
    ) -> PageIterator[Call, str]:
        """Every call between ``start`` and ``end``, each exactly once, in the server's order.

        Use ``async for call in client.calls.iterate(...)``. Pages of ``page_size`` (the
        endpoint's maximum by default: each page spends one request of the quota) are fetched
        ``concurrency`` at a time. ``.checkpoint`` is where to resume, with ``resume=`` (in
        this process or another: ``.checkpoint.to_dict()`` is JSON-ready), and ``.total`` the
        latest ``total_calls``. ``start_offset=`` (``.offset``) with ``after=`` (``.last_key``)
        still works, but only ``resume=`` stays exactly once when calls were inserted behind
        the walk's place. What "exactly once" guarantees while the data changes is written in
        ``PageIterator``.

        Raises:
            InvalidParameterError: here, before any request, for a bad parameter.
        """
        calls_request(self._base_url, start=start, end=end, number=number)

        async def fetch(offset: int, limit: int) -> tuple[list[Call], int]:
            page = await self.page(start, end, number=number, limit=limit, offset=offset)
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
        """Write every call between ``start`` and ``end`` to ``path``, exactly once.

        JSON Lines (``format="jsonl"``) or CSV, one row per call as ``to_dict()`` writes it,
        each page appended and fsynced before ``path.checkpoint`` records it. After a crash,
        ``kill -9`` or a cancellation, the same call with ``resume=True`` drops any half-written
        row and goes on: every call is written exactly once. A finished export's checkpoint
        stays, marked complete, so resuming it again spends nothing. ``progress(rows, total)``
        is called before the first page and after each one. The CLI's ``plumvoice calls --out``
        is this call.

        Raises:
            InvalidParameterError: a parameter is invalid, ``path``'s folder does not exist or
                ``path`` is a folder (nothing sent, nothing written).
            ExportError: ``path`` holds another export's checkpoint, or an unfinished export
                and ``resume`` is false, or a file no export wrote; its checkpoint is damaged
                or it changed behind it; another export is writing it now.
            APIError, DecodeError, TransportError, PagingError: the export stopped; the file
                and its checkpoint stay resumable.
        """
        return await export_call_logs(
            "calls",
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


class RawCalls(RawView[Calls]):
    """``calls.with_raw_response``: ``page`` answering ``RawResponse``."""

    page = raw(Calls.page)
