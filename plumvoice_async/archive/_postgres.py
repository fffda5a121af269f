"""The server store: PostgreSQL through psycopg 3 (the ``postgres`` extra).

Why psycopg 3: it is the PostgreSQL project's own adapter line (libpq underneath, so every
``postgresql://`` URL form, TLS setting and ``PG*`` variable works as in ``psql``), actively
maintained, typed, and its ``executemany`` pipelines the rows in one round trip, which is what
bulk upserts need. Its asyncio connection cannot run under trio, and asyncpg is asyncio-only
too; the archive works under both, so it drives psycopg's blocking connection from a worker
thread (``anyio.to_thread``), as it does ``sqlite3``: the event loop never waits on it.

Errors are told apart by SQLSTATE where the server sent one (a refused login has none: by
libpq's words then): class 28 (login refused) and 3D (no such database), 3F000 (no schema to
create in) and 42501 (insufficient privilege) are the user's to fix; a failure to connect or a
connection lost is ``ArchiveUnavailableError``.
"""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from ._errors import ArchiveError, ArchiveUnavailableError
from ._store import Dialect, SqlStore

__all__ = ["open_postgres"]

_CONNECT_TIMEOUT = 10


def _time_out(moment: Any) -> int:
    return int(moment.timestamp())


_REFUSED = re.compile(
    r"FATAL: .*(password authentication failed|authentication failed|no pg_hba\.conf entry"
    r'|(database|role) ".*" does not exist)'
)
"""A login the server refused, in libpq's text: a failed connection carries no SQLSTATE, and
told apart only by its words (the server's, in English: another language reads as
unreachable) it must not say "cannot reach" for a wrong password or database name."""


def _translate(exc: BaseException) -> ArchiveError | None:
    import psycopg

    if not isinstance(exc, psycopg.Error):
        return None
    state = exc.sqlstate or ""
    text = _first_line(exc)
    if state == "42501":
        return ArchiveError(f"no permission in the PostgreSQL database ({text})")
    if state == "3F000":
        return ArchiveError(
            f"no schema to create the archive's tables in: check the search_path and the "
            f"role's privileges ({text})"
        )
    if state.startswith(("28", "3D")) or (not state and _REFUSED.search(text)):
        return ArchiveError(f"PostgreSQL refused the connection ({text})")
    if isinstance(exc, psycopg.OperationalError) and not state:
        return ArchiveUnavailableError(f"cannot reach PostgreSQL ({text})")
    return ArchiveError(f"PostgreSQL: {text}")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


POSTGRES = Dialect(
    name="postgresql",
    placeholder="%s",
    begin=None,  # psycopg opens a transaction at the first statement
    # Two archives entering an empty database at once: the second waits, then finds the
    # tables (CREATE TABLE does not wait for another transaction's, it fails).
    migrate_lock="SELECT pg_advisory_xact_lock(hashtext('plumvoice_async.archive.migrate'))",
    json="CAST(%s AS jsonb)",
    in_list="session_id = ANY(%s)",
    list_param=lambda ids: ids,
    time_in=lambda moment: moment.astimezone(UTC),
    time_out=_time_out,
    table_exists=(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_name = %s"
    ),
    translate=_translate,
    conflict=lambda exc: getattr(exc, "sqlstate", None) in ("40P01", "40001"),
)


def open_postgres(url: str) -> SqlStore:
    """Connect to the PostgreSQL database at ``url``; blocking.

    Raises:
        ArchiveError: the ``postgres`` extra is missing, or the login is refused.
        ArchiveUnavailableError: the server cannot be reached.
    """
    try:
        import psycopg
    except ImportError:
        raise ArchiveError(
            "a postgresql:// archive needs psycopg: pip install 'plumvoice-async[postgres]'"
        ) from None
    try:
        connection = psycopg.connect(url, connect_timeout=_CONNECT_TIMEOUT)
    except psycopg.Error as exc:
        error = _translate(exc) or ArchiveError(_first_line(exc))
    else:
        return SqlStore(connection, POSTGRES)
    raise error  # outside the handler: the driver's exception is not kept as its context
