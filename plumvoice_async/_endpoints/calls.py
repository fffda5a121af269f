"""``client.calls``: the Fuse call logs, one page or every call (plum-api.md 2.2)."""

from __future__ import annotations

from datetime import datetime

from .._core.requests import calls_request
from .._models import Call, CallPage
from .._pagination import PageIterator, ResumePoint
from .._transport import Transport

__all__ = ["Calls", "session_id_of"]


def session_id_of(call: Call) -> str:
    """The key a walk dedupes by: Plum's unique id of a call."""
    return call.session_id


class Calls:
    """Completed calls in a time range, optionally for one deployment number."""

    def __init__(self, transport: Transport, base_url: str) -> None:
        self._transport = transport
        self._base_url = base_url

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
