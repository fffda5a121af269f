"""Rows of call logs and their bytes: JSON Lines or CSV, the same for the library and the CLI.

A row is a plain ``dict`` of JSON-ready values: a call is its ``to_dict()`` with the
``session_id`` first (``CALL_COLUMNS``), a detailed call adds ``detail``, the list of its log
lines (``line``, ``data``, ``event_class``, ``timestamp``). Instants are ISO 8601 in UTC with a
``Z``; a call's ``type`` is its text, so a type Plum adds later passes through unchanged.

Encoders turn a row into the exact bytes appended to an output, because the resumable export
checkpoints byte lengths: a row is one line of JSON, or one CSV record in which nested values
(``detail``) are compact JSON, ``None`` is empty and booleans are ``true``/``false`` as in the
JSON form.

Every row reads back exactly (``json.loads`` of its line, ``csv.reader`` of its record),
whatever its text holds. A CR alone is quoted like a LF: ``csv.writer`` with ``\\n`` line ends
leaves it bare and a reader splits the record there, hence the few lines of RFC 4180 below. A
lone surrogate, which UTF-8 cannot hold but a hostile server's JSON escape can produce, must not
stop an export (at the same row on every resume): JSON escapes it (``\\ud800``, read back
exactly) and a CSV cell that is not JSON holds U+FFFD in its place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from ._models import Call, DetailedCall

__all__ = [
    "CALL_COLUMNS",
    "DETAILED_CALL_COLUMNS",
    "OUTPUT_FORMATS",
    "CsvEncoder",
    "JsonLinesEncoder",
    "OutputFormat",
    "Row",
    "RowEncoder",
    "call_row",
    "detailed_call_row",
    "encoder_for",
]

OutputFormat = Literal["jsonl", "csv"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("jsonl", "csv")
Row = dict[str, Any]

CALL_COLUMNS = ("session_id", "dest", "src", "start", "end", "type", "log")
DETAILED_CALL_COLUMNS = (*CALL_COLUMNS, "detail")


def call_row(call: Call) -> Row:
    """A call as a row: its ``to_dict()``, in ``CALL_COLUMNS`` order (the id first)."""
    data = call.to_dict()
    return {column: data[column] for column in CALL_COLUMNS}


def detailed_call_row(call: DetailedCall) -> Row:
    """A detailed call as a row: its ``to_dict()``, in ``DETAILED_CALL_COLUMNS`` order."""
    data = call.to_dict()
    return {column: data[column] for column in DETAILED_CALL_COLUMNS}


class RowEncoder(Protocol):
    """Bytes for an output: a header written once at the start, then one chunk per row."""

    def header(self) -> bytes: ...

    def row(self, row: Mapping[str, Any]) -> bytes: ...


class JsonLinesEncoder:
    """One JSON object per line, UTF-8; no header."""

    def header(self) -> bytes:
        return b""

    def row(self, row: Mapping[str, Any]) -> bytes:
        try:
            return (json.dumps(row, ensure_ascii=False) + "\n").encode()
        except UnicodeEncodeError:  # a lone surrogate: escaped, so it reads back exactly
            return (json.dumps(row) + "\n").encode()


class CsvEncoder:
    """RFC 4180 records (``\\n`` line ends), UTF-8, with a header of the column names."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)

    def header(self) -> bytes:
        return self._record(self.columns)

    def row(self, row: Mapping[str, Any]) -> bytes:
        return self._record([_cell(row.get(column)) for column in self.columns])

    @staticmethod
    def _record(cells: Sequence[str]) -> bytes:
        return (",".join(map(_quoted, cells)) + "\n").encode()


_NEEDS_QUOTES = re.compile(r'[,"\r\n]')
_SURROGATE = re.compile("[\ud800-\udfff]")


def _quoted(cell: str) -> str:
    """RFC 4180: a cell with a comma, a quote, a CR or a LF is quoted, its quotes doubled."""
    cell = _SURROGATE.sub("\ufffd", cell)
    if _NEEDS_QUOTES.search(cell) is None:
        return cell
    return '"' + cell.replace('"', '""') + '"'


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        if _SURROGATE.search(text) is None:
            return text
        return json.dumps(value, separators=(",", ":"))  # escaped: reads back exactly
    return str(value)


def encoder_for(fmt: OutputFormat, columns: Sequence[str]) -> RowEncoder:
    return CsvEncoder(columns) if fmt == "csv" else JsonLinesEncoder()
