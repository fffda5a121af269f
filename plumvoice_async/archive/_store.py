# ruff: noqa: S608 - the SQL text is built from constants and the dialect's placeholder only;
# every value travels as a parameter.
"""One store over a DB-API connection, for SQLite and PostgreSQL alike; blocking, one thread.

Every method is one transaction and runs on a worker thread (``Archive`` calls them through
``anyio.to_thread`` one at a time), so the event loop never waits on the database. What the
two databases spell differently (the placeholder, instants, JSON, a list parameter, which
errors mean what) is a ``Dialect``; the SQL itself is shared.

Counting without a read first: calls are inserted with ``ON CONFLICT DO NOTHING`` (the driver's
summed ``rowcount`` is the new rows), then, unless every row was new, updated only where a
field differs (``rowcount`` is the changed rows), so a call re-read unchanged in the overlap
counts as neither.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any, ParamSpec, Protocol, TypeVar

import attrs

from .._core.archive_plan import PendingLog
from .._models import Call, DetailedCall
from ._errors import ArchiveError, SchemaVersionError
from ._schema import (
    DETAILS_ARCHIVED,
    DETAILS_EXPIRED,
    DETAILS_NONE,
    DETAILS_PENDING,
    MIGRATIONS,
    SCHEMA_VERSION,
    VERSION_KEY,
    create_statements,
)

__all__ = ["Dialect", "SqlStore"]

P = ParamSpec("P")
T = TypeVar("T")


class _Cursor(Protocol):
    rowcount: int

    def execute(self, query: Any, params: Any = ..., /) -> Any: ...
    def executemany(self, query: Any, params: Any, /) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def close(self) -> Any: ...


class Connection(Protocol):
    """The part of a DB-API connection (``sqlite3``, ``psycopg``) the store uses."""

    def cursor(self) -> Any: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


@attrs.frozen
class Dialect:
    """Strictly private: what SQLite and PostgreSQL spell differently.

    ``conflict``: whether a driver exception is the server aborting the transaction to break a
    deadlock (or a serialization failure): the whole transaction is then run again;
    ``begin``: the statement opening a write transaction (``None``: the driver opens one);
    ``migrate_lock``: a statement that makes concurrent ``migrate`` transactions wait for each
    other (``None``: ``begin`` already does);
    ``json``: the placeholder of a JSON parameter; ``in_list``: the ``IN`` test of one list
    parameter, made by ``list_param``; ``time_in``/``time_out``: an instant to and from the
    database; ``table_exists``: a query with one parameter, the table name; ``translate``:
    a driver exception -> ``ArchiveError`` (or ``None``: not the database's, re-raised).
    """

    name: str
    placeholder: str
    begin: str | None
    migrate_lock: str | None
    json: str
    in_list: str
    list_param: Callable[[list[str]], Any]
    time_in: Callable[[datetime], Any]
    time_out: Callable[[Any], int]
    table_exists: str
    translate: Callable[[BaseException], ArchiveError | None]
    conflict: Callable[[BaseException], bool]


class _Conflict(Exception):
    """A transaction the server rolled back to break a deadlock between two syncs (their
    rows' locks taken in different orders): nothing of it stayed, so it is run again."""

    def __init__(self, error: ArchiveError) -> None:
        super().__init__(str(error))
        self.error = error


_ATTEMPTS = 5


def _retried(method: Callable[P, T]) -> Callable[P, T]:
    """``method`` (one transaction) run again after a ``_Conflict``, up to ``_ATTEMPTS`` in
    all; the last one's error is the method's."""

    @functools.wraps(method)
    def again(*args: P.args, **kwargs: P.kwargs) -> T:
        for _ in range(_ATTEMPTS - 1):
            with suppress(_Conflict):
                return method(*args, **kwargs)
        try:
            return method(*args, **kwargs)
        except _Conflict as conflict:
            raise conflict.error from None

    return again


class SqlStore:
    """Strictly private: the archive's reads and writes, each one transaction."""

    def __init__(self, connection: Connection, dialect: Dialect) -> None:
        self._db = connection
        self._dialect = dialect
        p = dialect.placeholder
        self._insert_call = (
            'INSERT INTO plum_calls (account, session_id, dest, src, start, "end", type, log, '
            f"details_status) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}) "
            "ON CONFLICT (account, session_id) DO NOTHING"
        )
        # The last six parameters repeat the first six: only a row that differs is touched.
        self._update_call = (
            f'UPDATE plum_calls SET dest = {p}, src = {p}, start = {p}, "end" = {p}, '
            f"type = {p}, log = {p}, details_status = CASE "
            f"WHEN details_status = '{DETAILS_NONE}' AND {p} THEN '{DETAILS_PENDING}' "
            f"WHEN details_status = '{DETAILS_PENDING}' AND NOT {p} THEN '{DETAILS_NONE}' "
            # A call changed since its log was archived: its log may have changed with it.
            f"WHEN details_status = '{DETAILS_ARCHIVED}' AND {p} THEN '{DETAILS_PENDING}' "
            f"ELSE details_status END WHERE account = {p} AND session_id = {p} AND NOT ("
            f'dest = {p} AND src = {p} AND start = {p} AND "end" = {p} AND type = {p} '
            f"AND log = {p})"
        )
        self._insert_event = (
            'INSERT INTO plum_call_events (account, session_id, seq, "timestamp", class, line, '
            f"data) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {dialect.json}) "
            "ON CONFLICT (account, session_id, seq) DO NOTHING"
        )
        self._put_state = (
            f"INSERT INTO plum_sync_state (key, value) VALUES ({p}, {p}) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )

    # --- Transactions and errors --------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A cursor inside one transaction: committed on success, rolled back on any error;
        a database error leaves as an ``ArchiveError``."""
        cursor = self._db.cursor()
        try:
            try:
                if self._dialect.begin is not None:
                    cursor.execute(self._dialect.begin)
                yield cursor
                self._db.commit()
            except BaseException:
                self._rollback()
                raise
            finally:
                cursor.close()
        except ArchiveError:
            raise
        except Exception as exc:
            error = self._dialect.translate(exc)
            if error is None:
                raise
            if self._dialect.conflict(exc):
                raise _Conflict(error) from None
            raise error from None

    def _rollback(self) -> None:
        # A failed rollback means the connection is gone; the first error is the story.
        with suppress(Exception):
            self._db.rollback()

    def close(self) -> None:
        self._db.close()

    # --- Schema -------------------------------------------------------------------------

    @_retried
    def migrate(self) -> None:
        """Create the tables in an empty database, or bring an older schema up to date.

        Raises:
            SchemaVersionError: the database's schema is newer than this library's (nothing
                was written).
            ArchiveError: no permission to create the tables, or not a database.
        """
        p = self._dialect.placeholder
        with self._transaction() as cursor:
            if self._dialect.migrate_lock is not None:
                cursor.execute(self._dialect.migrate_lock)
            cursor.execute(self._dialect.table_exists, ("plum_sync_state",))
            if not cursor.fetchall():
                for statement in create_statements(self._dialect.name):
                    cursor.execute(statement)
                cursor.execute(self._put_state, (VERSION_KEY, str(SCHEMA_VERSION)))
                return
            cursor.execute(f"SELECT value FROM plum_sync_state WHERE key = {p}", (VERSION_KEY,))
            rows = cursor.fetchall()
            found = int(rows[0][0]) if rows else 0
            if found > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"the database's archive schema is version {found}, newer than this "
                    f"plumvoice-async knows ({SCHEMA_VERSION}): upgrade plumvoice-async"
                )
            for version in range(found + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    cursor.execute(statement)
            if found < SCHEMA_VERSION:
                cursor.execute(self._put_state, (VERSION_KEY, str(SCHEMA_VERSION)))

    # --- Sync state ---------------------------------------------------------------------

    @_retried
    def state(self, key: str) -> str | None:
        p = self._dialect.placeholder
        with self._transaction() as cursor:
            cursor.execute(f"SELECT value FROM plum_sync_state WHERE key = {p}", (key,))
            rows = cursor.fetchall()
        return None if not rows else str(rows[0][0])

    @_retried
    def put_state(self, key: str, value: str) -> None:
        with self._transaction() as cursor:
            cursor.execute(self._put_state, (key, value))

    # --- Calls --------------------------------------------------------------------------

    @_retried
    def store_calls(
        self, account: str, calls: Sequence[Call], key: str, value: str
    ) -> tuple[int, int]:
        """Upsert ``calls`` and set the state ``key`` in one transaction; (new, updated)."""
        time_in = self._dialect.time_in
        rows = []
        for call in calls:
            start, end = time_in(call.start), time_in(call.end)
            status = DETAILS_PENDING if call.log else DETAILS_NONE
            rows.append(
                (
                    call.session_id,
                    call.dest,
                    call.src,
                    start,
                    end,
                    call.type.value,
                    call.log,
                    status,
                )
            )
        rows = [_without_nul(row) for row in rows]
        with self._transaction() as cursor:
            cursor.executemany(self._insert_call, [(account, *row) for row in rows])
            new = max(cursor.rowcount, 0)
            updated = 0
            if new < len(rows):
                cursor.executemany(
                    self._update_call,
                    [
                        (
                            dest,
                            src,
                            start,
                            end,
                            kind,
                            log,
                            log,
                            log,
                            log,
                            account,
                            session_id,
                            dest,
                            src,
                            start,
                            end,
                            kind,
                            log,
                        )
                        for session_id, dest, src, start, end, kind, log, _ in rows
                    ],
                )
                updated = max(cursor.rowcount, 0)
            cursor.execute(self._put_state, (key, value))
        return new, updated

    # --- Detailed logs ------------------------------------------------------------------

    @_retried
    def pending(
        self, account: str, number: str | None, after: PendingLog | None, limit: int
    ) -> list[PendingLog]:
        """Up to ``limit`` pending logs after ``after``, oldest first (by start, then id)."""
        p = self._dialect.placeholder
        query = (
            f"SELECT session_id, start FROM plum_calls WHERE account = {p} AND details_status = {p}"
        )
        params: list[Any] = [account, DETAILS_PENDING]
        if number is not None:
            query += f" AND dest = {p}"
            params.append(number)
        if after is not None:
            query += f" AND (start > {p} OR (start = {p} AND session_id > {p}))"
            moment = self._dialect.time_in(_utc(after.start))
            params += [moment, moment, after.session_id]
        query += f" ORDER BY start, session_id LIMIT {int(limit)}"
        time_out = self._dialect.time_out
        with self._transaction() as cursor:
            cursor.execute(query, params)
            return [
                PendingLog(str(session_id), time_out(start))
                for session_id, start in cursor.fetchall()
            ]

    @_retried
    def count_pending(self, account: str, number: str | None, after: int, through: int) -> int:
        """How many pending logs started in ``(after, through]`` (UNIX seconds)."""
        p = self._dialect.placeholder
        query = (
            f"SELECT count(*) FROM plum_calls WHERE account = {p} AND details_status = {p} "
            f"AND start > {p} AND start <= {p}"
        )
        time_in = self._dialect.time_in
        params: list[Any] = [account, DETAILS_PENDING, time_in(_utc(after)), time_in(_utc(through))]
        if number is not None:
            query += f" AND dest = {p}"
            params.append(number)
        with self._transaction() as cursor:
            cursor.execute(query, params)
            return int(cursor.fetchall()[0][0])

    @_retried
    def expire(self, account: str, session_ids: Sequence[str]) -> int:
        """Mark these pending logs expired; how many were still pending."""
        if not session_ids:
            return 0
        p = self._dialect.placeholder
        with self._transaction() as cursor:
            cursor.execute(
                f"UPDATE plum_calls SET details_status = '{DETAILS_EXPIRED}' "
                f"WHERE account = {p} AND {self._dialect.in_list} "
                f"AND details_status || '' = '{DETAILS_PENDING}'",
                (account, self._dialect.list_param(list(session_ids))),
            )
            return max(int(cursor.rowcount), 0)

    @_retried
    def store_details(self, account: str, calls: Sequence[DetailedCall]) -> tuple[int, int]:
        """Archive the logs of those ``calls`` still pending, in one transaction: each call's
        status and its events together. Returns (logs archived, events inserted)."""
        p = self._dialect.placeholder
        # Keyed as stored: the RETURNING ids below are the stored ones.
        by_id = {call.session_id.replace("\x00", NUL): call for call in calls}
        if not by_id:
            return 0, 0
        time_in = self._dialect.time_in
        with self._transaction() as cursor:
            # "|| ''" keeps the planners off the details index (SQLite's, and PostgreSQL's
            # before it has statistics, would scan every pending row of the account for each
            # id) and on the primary key: one lookup per id.
            cursor.execute(
                f"UPDATE plum_calls SET details_status = '{DETAILS_ARCHIVED}' "
                f"WHERE account = {p} AND {self._dialect.in_list} "
                f"AND details_status || '' = '{DETAILS_PENDING}' RETURNING session_id",
                (account, self._dialect.list_param(list(by_id))),
            )
            archived = [str(row[0]) for row in cursor.fetchall()]
            events = [
                (
                    account,
                    session_id,
                    seq,
                    time_in(event.timestamp),
                    event.event_class,
                    event.line,
                    _json_without_nul(event.data),
                )
                for session_id in archived
                for seq, event in enumerate(by_id[session_id].detail)
            ]
            events = [_without_nul(row) for row in events]
            if archived:  # a log read again (its call changed): the new one replaces the old
                cursor.execute(
                    f"DELETE FROM plum_call_events WHERE account = {p} AND {self._dialect.in_list}",
                    (account, self._dialect.list_param(archived)),
                )
            new_events = 0
            if events:
                cursor.executemany(self._insert_event, events)
                new_events = max(cursor.rowcount, 0)
        return len(archived), new_events


_json = json.JSONEncoder(separators=(",", ":")).encode
"""Compact JSON; one encoder for every row (``json.dumps`` with options builds one per call)."""


NUL = "\ufffd"
"""What a NUL in any text or JSON string is stored as: PostgreSQL's ``text`` and ``jsonb``
cannot hold one, nor SQLite's JSON functions (the archive's id lists), and a row refused for
it would be refused every run, stopping the archive there."""


def _without_nul(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` with each NUL in its text as ``NUL``."""
    if not any(isinstance(value, str) and "\x00" in value for value in row):
        return row
    return tuple(value.replace("\x00", NUL) if isinstance(value, str) else value for value in row)


_ESCAPED_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
"""A NUL in JSON text: the escape ``\\u0000`` after an even run of backslashes (the encoder
never writes a raw NUL; ``\\\\u0000`` is a backslash, then the text ``u0000``)."""


def _json_without_nul(document: Any) -> str:
    """``document`` as compact JSON, each NUL in its strings (keys too) as ``NUL``."""
    text = _json(document)
    if "\\u0000" not in text:
        return text
    return _ESCAPED_NUL.sub(lambda found: f"{found[1]}\\u{ord(NUL):04x}", text)


def _utc(second: int) -> datetime:
    return datetime.fromtimestamp(second, UTC)
