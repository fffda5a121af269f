"""The archive's tables, as users query them, and how each database spells them.

Three tables (api-contract.md, "Export and the archive"; their names and keys are binding):

- ``plum_calls``: one row per call, primary key ``(account, session_id)``; ``dest``, ``src``,
  ``start`` and ``end`` (UTC), ``type``, ``log`` and ``details_status``, one of ``DETAILS_*``.
- ``plum_call_events``: one row per line of a detailed log, primary key
  ``(account, session_id, seq)`` (``seq`` counts from 0 in the log's order); ``timestamp``
  (UTC), ``class``, ``line`` and ``data`` (JSON).
- ``plum_sync_state``: ``key`` -> ``value`` (text): ``schema_version``, and per account and
  number the coverage of the planner (``_core/archive_plan.py``) as JSON.

PostgreSQL stores instants as ``timestamptz``, ``log`` as ``boolean`` and ``data`` as
``jsonb``. SQLite has no such types: instants are ``'YYYY-MM-DD HH:MM:SS'`` text in UTC (the
form of its own ``datetime()``, so they compare and sort as times), ``log`` is 0/1 and ``data``
JSON text (its ``json_extract`` reads it). ``end`` and ``timestamp`` are SQL keywords:
queries quote them (``"end"``). A NUL in any text or JSON string is stored as U+FFFD
(``_store.NUL``): neither database can hold one everywhere.

A database whose ``schema_version`` is newer than ``SCHEMA_VERSION`` is refused before anything
is written; an older one is brought up to date by ``MIGRATIONS``, in one transaction.
"""

from __future__ import annotations

__all__ = [
    "DETAILS_ARCHIVED",
    "DETAILS_EXPIRED",
    "DETAILS_NONE",
    "DETAILS_PENDING",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "VERSION_KEY",
    "create_statements",
]

SCHEMA_VERSION = 1
VERSION_KEY = "schema_version"

DETAILS_NONE = "none"
"""``log`` is false: Plum keeps no detailed log for this call."""
DETAILS_PENDING = "pending"
"""The log exists at Plum and is not archived yet."""
DETAILS_ARCHIVED = "archived"
"""The log is in ``plum_call_events``."""
DETAILS_EXPIRED = "expired"
"""The log expired (5 days) before it was archived; it is never asked for again."""

# Per dialect: the type of an instant, a boolean and a JSON document.
_TYPES = {
    "sqlite": {"time": "TEXT", "bool": "INTEGER", "json": "TEXT"},
    "postgresql": {"time": "TIMESTAMPTZ", "bool": "BOOLEAN", "json": "JSONB"},
}

_CREATE = (
    """CREATE TABLE plum_sync_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE plum_calls (
        account TEXT NOT NULL,
        session_id TEXT NOT NULL,
        dest TEXT NOT NULL,
        src TEXT NOT NULL,
        start {time} NOT NULL,
        "end" {time} NOT NULL,
        type TEXT NOT NULL,
        log {bool} NOT NULL,
        details_status TEXT NOT NULL,
        PRIMARY KEY (account, session_id)
    )""",
    # The planner's query: an account's pending logs, oldest first.
    "CREATE INDEX plum_calls_details ON plum_calls (details_status, account, start, session_id)",
    """CREATE TABLE plum_call_events (
        account TEXT NOT NULL,
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        "timestamp" {time} NOT NULL,
        class TEXT NOT NULL,
        line TEXT NOT NULL,
        data {json} NOT NULL,
        PRIMARY KEY (account, session_id, seq)
    )""",
)

MIGRATIONS: dict[int, tuple[str, ...]] = {}
"""``MIGRATIONS[v]``: the statements that take a version ``v - 1`` database to version ``v``."""


def create_statements(dialect: str) -> list[str]:
    """The statements that create the current schema in ``dialect`` (an empty database)."""
    types = _TYPES[dialect]
    return [statement.format(**types) for statement in _CREATE]
