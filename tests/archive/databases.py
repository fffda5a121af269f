"""Reading an archive back with plain SQL (``sqlite3``, ``psycopg``), as a user would."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

import attrs

from plumvoice_async import Call, CallEvent

__all__ = ["Database", "call_row", "event_rows"]


def _second(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp())


@attrs.frozen
class Database:
    url: str

    @property
    def kind(self) -> str:
        return self.url.partition(":")[0]

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.kind == "sqlite":
            connection = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            try:
                return connection.execute(sql, params).fetchall()
            finally:
                connection.close()
        import psycopg

        with psycopg.connect(self.url) as connection:
            return connection.execute(sql.replace("?", "%s"), params).fetchall()  # type: ignore[arg-type]

    def execute(self, sql: str, *params: Any) -> None:
        if self.kind == "sqlite":
            connection = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            with connection:
                connection.execute(sql, params)
            connection.close()
            return
        import psycopg

        with psycopg.connect(self.url) as connection:
            connection.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]

    def calls(self) -> dict[str, tuple[Any, ...]]:
        """session_id -> (dest, src, start, end, type, log, details_status), instants as seconds."""
        rows = self.query(
            'SELECT session_id, dest, src, start, "end", type, log, details_status FROM plum_calls'
        )
        return {
            row[0]: (row[1], row[2], _second(row[3]), _second(row[4]), row[5], bool(row[6]), row[7])
            for row in rows
        }

    def events(self) -> dict[str, list[tuple[Any, ...]]]:
        """session_id -> [(seq, timestamp, class, line, data)], in seq order."""
        rows = self.query(
            'SELECT session_id, seq, "timestamp", class, line, data FROM plum_call_events '
            "ORDER BY session_id, seq"
        )
        events: dict[str, list[tuple[Any, ...]]] = {}
        for session_id, seq, moment, kind, line, data in rows:
            document = json.loads(data) if isinstance(data, str) else data
            events.setdefault(session_id, []).append((seq, _second(moment), kind, line, document))
        return events

    def count(self, table: str) -> int:
        return int(self.query(f"SELECT count(*) FROM {table}")[0][0])


def call_row(call: Call, status: str) -> tuple[Any, ...]:
    return (
        call.dest,
        call.src,
        int(call.start.timestamp()),
        int(call.end.timestamp()),
        call.type.value,
        call.log,
        status,
    )


def event_rows(detail: list[CallEvent]) -> list[tuple[Any, ...]]:
    return [
        (seq, int(event.timestamp.timestamp()), event.event_class, event.line, event.data)
        for seq, event in enumerate(detail)
    ]
