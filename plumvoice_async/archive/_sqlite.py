"""The embedded store: a SQLite file through the standard library's ``sqlite3``.

No server and no extra dependency. ``sqlite3`` blocks, so the archive calls it from a worker
thread (``check_same_thread=False``; one call at a time). WAL journal with ``synchronous =
NORMAL``: a committed transaction survives the process being killed (``kill -9``), and
readers (a user's own SQL) do not block the sync.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._errors import ArchiveError
from ._store import Dialect, SqlStore

__all__ = ["open_sqlite"]

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _time_in(moment: datetime) -> str:
    # The models' instants are UTC already; isoformat is C, several times strftime's speed.
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(" ")[:19]


def _time_out(text: Any) -> int:
    return int(datetime.strptime(str(text), _TIME_FORMAT).replace(tzinfo=UTC).timestamp())


def _translate(exc: BaseException) -> ArchiveError | None:
    if not isinstance(exc, sqlite3.Error):
        return None
    text = str(exc)
    if "readonly" in text or "permission" in text.lower():
        return ArchiveError(f"no permission to write the SQLite database ({text})")
    return ArchiveError(f"SQLite: {text}")


SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    begin="BEGIN IMMEDIATE",  # take the write lock at once: no upgrade deadlock with a reader
    migrate_lock=None,  # BEGIN IMMEDIATE: one writer at a time already
    json="?",
    in_list="session_id IN (SELECT value FROM json_each(?))",
    list_param=json.dumps,
    time_in=_time_in,
    time_out=_time_out,
    table_exists="SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
    translate=_translate,
    conflict=lambda exc: False,  # one writer at a time: no deadlock between transactions
)


_BUSY_MS = 10_000


def _wal(connection: sqlite3.Connection) -> None:
    """Switch to WAL, waiting as the busy timeout would: the switch of a new file takes an
    exclusive lock and SQLite answers "database is locked" at once, without its busy handler,
    when another connection (a second sync starting) holds one."""
    deadline = time.monotonic() + _BUSY_MS / 1000
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
        else:
            return


def open_sqlite(path: str) -> SqlStore:
    """Open (creating if needed) the SQLite file at ``path``; blocking.

    Raises:
        ArchiveError: the file cannot be opened or created (a missing folder, no permission,
            not a database).
    """
    if path != ":memory:" and not Path(path).parent.is_dir():
        raise ArchiveError(f"cannot create the SQLite database: no folder {Path(path).parent}")
    try:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        _wal(connection)
        connection.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.Error as exc:
        raise ArchiveError(f"cannot open the SQLite database {path}: {exc}") from None
    return SqlStore(connection, SQLITE)
