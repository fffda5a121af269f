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
from urllib.parse import parse_qsl, unquote

from .._errors import InvalidParameterError
from ._errors import ArchiveError, ArchiveUnavailableError
from ._store import Dialect, SqlStore

__all__ = ["check_url", "open_postgres"]

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
)


def check_url(url: str) -> None:
    """Refuse a URL whose password libpq would read otherwise than ``redact_url`` hides it.

    libpq ends the user part at the *first* ``@`` (before any ``/``), a URL parser at the
    last: with an unescaped ``@`` or ``/`` in the password, part of it becomes the host, port
    or database name, which libpq's error messages quote. Its parse errors quote the
    offending token (a broken ``%`` escape in the password, the whole URL for an unknown
    prefix). So the URL is read here first, and refused, quoting nothing of libpq's, unless
    libpq's password is the one ``redact_url`` hides. Without psycopg nothing is checked:
    entering says the extra is missing.

    Raises:
        InvalidParameterError: ``url``, shown without its password.
    """
    from ._archive import redact_url

    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return
    reason = None
    try:
        read = conninfo_to_dict(url).get("password")
    except psycopg.Error:
        reason = "not a PostgreSQL URL libpq can read"
    else:
        # The user part: to the last "@" before the query (whose values may hold an "@").
        userinfo, at, _ = url.partition("://")[2].partition("?")[0].rpartition("@")
        hidden = {unquote(userinfo.partition(":")[2])} if at and ":" in userinfo else set()
        query = url.rpartition("?")[2] if "?" in url else ""
        hidden |= {value for name, value in parse_qsl(query) if name == "password"}
        if read not in hidden | ({None} if not hidden else set()):
            reason = "percent-encode the password (%40 for @, %2F for /, %3F for ?)"
    # Raised here, outside the handler: libpq's own message never rides along as context.
    if reason is not None:
        raise InvalidParameterError("url", redact_url(url), reason)


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
