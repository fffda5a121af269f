"""``Archive``: a database kept up to date with an account's calls and their detailed logs."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from types import TracebackType
from typing import Any, Self

import anyio

from .._client import PlumClient
from .._core import params
from .._core.archive_plan import DEFAULT_MAX_GAP, DEFAULT_OVERLAP
from .._core.params import LIMIT_MAX
from .._errors import InvalidParameterError
from ._store import SqlStore
from ._sync import SyncJob, SyncResult, run_sync
from ._url import checked_url, redact_url

__all__ = ["Archive"]


class Archive:
    """A SQLite or PostgreSQL database holding every call and detailed log of an account.

    ``Archive.open(url)`` then ``async with``: entering connects and creates or migrates the
    tables (``plum_calls``, ``plum_call_events``, ``plum_sync_state``; see
    ``plumvoice_async.archive._schema`` for their columns); leaving closes the connection.

    ``url`` is ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (the embedded
    default: a file, no server) or ``postgresql://user:password@host:port/database`` (the
    ``postgres`` extra). Database calls run on a worker thread, one at a time, so the event
    loop stays free; it works under asyncio and trio. ``repr`` never shows a password.

    Raises (from ``open``): InvalidParameterError: not such a URL (an unknown scheme, no
    SQLite path, a password libpq would read differently: percent-encode its ``@ / # ?``).
    Raises (entering): ArchiveUnavailableError: the server cannot be reached;
    SchemaVersionError: the tables were made by a newer plumvoice-async; ArchiveError: no
    permission, not a database. In every case nothing was written.
    """

    def __init__(self, url: str) -> None:
        self._url = checked_url(url)
        self._store: SqlStore | None = None
        self._limiter = anyio.CapacityLimiter(1)

    @classmethod
    def open(cls, url: str) -> Self:
        """The archive at ``url``, to enter with ``async with``; nothing is opened yet."""
        return cls(url)

    def __repr__(self) -> str:
        state = "open" if self._store is not None else "closed"
        return f"Archive({redact_url(self._url)!r}, {state})"

    async def __aenter__(self) -> Self:
        store = await anyio.to_thread.run_sync(self._connect, limiter=self._limiter)
        try:
            await self._run(store.migrate)
        except BaseException:
            await anyio.to_thread.run_sync(store.close, limiter=self._limiter)
            raise
        self._store = store
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection (a sync in progress must have finished)."""
        store, self._store = self._store, None
        if store is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(store.close, limiter=self._limiter)

    def _connect(self) -> SqlStore:
        if self._url.startswith("sqlite:"):
            from ._sqlite import open_sqlite

            return open_sqlite(self._url.removeprefix("sqlite:///"))
        from ._postgres import open_postgres

        return open_postgres(self._url)

    async def _run(self, function: Any, *args: Any) -> Any:
        # Shielded: a transaction the thread has begun finishes (commits or rolls back) even
        # when the caller is cancelled, so the connection is never left mid-transaction.
        with anyio.CancelScope(shield=True):
            return await anyio.to_thread.run_sync(function, *args, limiter=self._limiter)

    async def sync(
        self,
        client: PlumClient,
        *,
        since: date | datetime | int | None = None,
        details: bool = True,
        number: str | None = None,
        account: str | None = None,
        overlap: int = DEFAULT_OVERLAP,
        max_gap: int = DEFAULT_MAX_GAP,
        page_size: int = LIMIT_MAX,
    ) -> SyncResult:
        """Store what is new since the last run: calls, then pending detailed logs.

        Args:
            client: the client whose Fuse account is archived.
            since: the oldest call wanted (a ``date`` is that UTC day's midnight; a datetime
                must be aware; an int is UNIX seconds), not in the future. ``None``: since
                the last run, or the last 5 days on a first run. An older ``since`` than
                before backfills.
            details: also archive the detailed logs of the stored calls with ``log`` true,
                oldest first, while Plum still has them (5 days).
            number: only calls to this deployment number (its own watermark).
            account: the name the rows are stored under; by default the same hash of the
                Fuse login that keys the quota, never the login itself.
            overlap: seconds re-read before the watermark, for calls listed late.
            max_gap: seconds between pending logs beyond which they are fetched apart.
            page_size: calls per request (the endpoint's maximum by default).

        Returns:
            A ``SyncResult``: ``new_calls``, ``updated_calls``, ``new_events``,
            ``expired_details``, ``requests`` and more.

        Raises:
            InvalidParameterError: a bad argument (nothing sent, nothing written).
            RuntimeError: the archive is not open (use ``async with``).
            ArchiveError: the database failed; what was committed before stays, and a rerun
                continues from it.
            PlumError: as the client's requests (a rerun continues likewise).
        """
        store = self._store
        if store is None:
            raise RuntimeError("the archive is not open: use `async with Archive.open(url)`")
        job = SyncJob(
            account=_account(client, account),
            number=params.number(number),
            since=_since(since, now=int(client.clock.time())),
            details=details,
            overlap=_seconds("overlap", overlap),
            max_gap=_seconds("max_gap", max_gap),
            page_size=_page_size(page_size),
        )
        return await run_sync(client, store, self._run, job)


def _account(client: PlumClient, account: object) -> str:
    if account is not None:
        if not isinstance(account, str) or not account or "\x00" in account:
            raise InvalidParameterError("account", account, "expected a non-empty name, no NUL")
        return account
    key = client.quota_key("fuse")
    return "default" if key is None else key.account  # no Fuse login: the first request says so


def _since(value: object, *, now: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        # Through the same checks as an int: a day before 1970 is refused here too.
        second = params.fuse_time(
            int(datetime.combine(value, time(), UTC).timestamp()), name="since"
        )
    else:
        second = params.fuse_time(value, name="since")
    if second > now:
        # Plum lists a call once it has ended: a future `since` asks for nothing, ever.
        raise InvalidParameterError("since", value, "in the future: no call started there yet")
    return second


def _seconds(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidParameterError(name, value, "expected a whole number of seconds >= 0")
    return value


def _page_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= LIMIT_MAX:
        raise InvalidParameterError("page_size", value, f"expected 1 to {LIMIT_MAX}")
    return value
