"""What the ``plumvoice`` command writes besides call logs: report tables, and progress.

Rows are plain ``dict``s of JSON-ready values, encoded as the call logs are (``_encoding``):
a period report is one row per period, ``period_start`` (ISO 8601 UTC with a ``Z``) and then
one column per series; the diagnostic flow is one row per form item (``application`` first),
the geographic profile one row per place (``group``: ``us``, ``non_us`` or an unlisted group).

Progress goes to stderr as one line redrawn with ``\r``, only when stderr is a terminal, so
standard output stays pure data and logs of unattended runs stay clean.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

import anyio
import attrs

from .._client import PlumClient
from .._core.data import iso_utc
from .._core.requests import QuotaGroup
from .._encoding import OutputFormat, Row, encoder_for
from .._governor import Snapshot
from .._models import DiagnosticFlow, FlowNode, GeographicProfile

__all__ = [
    "Progress",
    "flow_rows",
    "geographic_rows",
    "quota_probe",
    "render_progress",
    "series_rows",
    "shows_progress",
    "write_table",
]

T = TypeVar("T")

PERIOD_COLUMN = "period_start"


def series_rows(report: attrs.AttrsInstance) -> tuple[list[str], list[Row]]:
    """A period-series report as ``(columns, rows)``: one row per period, a column per series.

    Works for every report whose fields are series (period start -> number) plus ``extra``
    (series the docs do not list, which become columns after the documented ones). A period
    missing from one series gets ``None`` there. Rows are in time order.
    """
    series: dict[str, Mapping[datetime, Any]] = {}
    for field in attrs.fields(type(report)):
        value = getattr(report, field.name)
        if field.name == "extra":
            series.update({str(name): extra for name, extra in value.items()})
        else:
            series[field.name] = value
    periods = sorted({start for values in series.values() for start in values})
    rows = [
        {PERIOD_COLUMN: iso_utc(start)}
        | {name: values.get(start) for name, values in series.items()}
        for start in periods
    ]
    return [PERIOD_COLUMN, *series], rows


def flow_rows(report: DiagnosticFlow) -> tuple[list[str], list[Row]]:
    """The diagnostic flow as ``(columns, rows)``: one row per form item, in the order sent."""
    node_columns = [field.name for field in attrs.fields(FlowNode)]
    rows = [
        {"application": application} | attrs.asdict(node)
        for application, nodes in report.applications.items()
        for node in nodes
    ]
    return ["application", *node_columns], rows


def geographic_rows(report: GeographicProfile) -> tuple[list[str], list[Row]]:
    """The geographic profile as ``(columns, rows)``: one row per place, grouped as sent."""
    groups: dict[str, Mapping[str, int]] = {"us": report.us, "non_us": report.non_us}
    groups.update(report.extra)
    rows = [
        {"group": group, "place": place, "calls": calls}
        for group, counts in groups.items()
        for place, calls in counts.items()
    ]
    return ["group", "place", "calls"], rows


def write_table(
    out: Path | None, fmt: OutputFormat, columns: Sequence[str], rows: Sequence[Row]
) -> None:
    """Write a whole table (a report) at once; a file appears complete or not at all."""
    encoder = encoder_for(fmt, columns)
    data = encoder.header() + b"".join(encoder.row(row) for row in rows)
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, out)


# --- Progress on stderr ----------------------------------------------------------------------


def render_progress(
    label: str,
    *,
    rows: int,
    total: int | None,
    rate: float,
    quota: Snapshot | None,
    now: datetime,
) -> str:
    """One status line: rows done of the total, rate, quota left, and the wait for the window."""
    parts = [label]
    if total:
        parts.append(f"{rows:,}/{total:,} rows ({min(100, 100 * rows // total)}%)")
    else:
        parts.append(f"{rows:,} rows")
    parts.append(f"{rate:,.0f} rows/s")
    if quota is not None:
        parts.append(f"quota {quota.remaining}/{quota.limit} left")
        if quota.waiting and quota.remaining == 0 and quota.reset_at is not None:
            wait = max(0.0, (quota.reset_at - now).total_seconds())
            parts.append(f"waiting for quota: next window in {wait:.1f} s")
    return "  ".join(parts)


class Progress:
    """A status line on ``stream``, redrawn in place with ``\\r`` while ``run`` works.

    Disabled, it draws nothing and starts no task (stderr is not a terminal, or ``--quiet``).
    Enabled, a task redraws it every ``interval`` seconds, so the countdown to the next quota
    window moves while every request is waiting and no row arrives.
    """

    def __init__(
        self,
        label: str,
        stream: TextIO,
        *,
        enabled: bool,
        quota: Callable[[], Awaitable[Snapshot]] | None = None,
        interval: float = 0.2,
    ) -> None:
        self.label = label
        self.enabled = enabled
        self.rows = 0
        self.total: int | None = None
        self._stream = stream
        self._quota = quota
        self._interval = interval
        self._rows_at_start = 0
        self._started = time.monotonic()
        self._width = 0

    def start(self, rows: int) -> None:
        """Count from ``rows`` (a resumed export's rows); the rate counts this run's only."""
        self.rows = self._rows_at_start = rows
        self._started = time.monotonic()

    def update(self, rows: int, total: int | None) -> None:
        self.rows, self.total = rows, total

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Await ``work()`` while redrawing; the last line stays on screen, then a newline."""
        if not self.enabled:
            return await work()
        failure: Exception | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(self._refresh)
            try:
                result = await work()
            except Exception as exc:  # re-raised below, outside the group, unwrapped
                failure = exc
            finally:
                group.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await self._draw()
        self._stream.write("\n")
        self._stream.flush()
        if failure is not None:
            raise failure
        return result

    async def _refresh(self) -> None:
        while True:
            await self._draw()
            await anyio.sleep(self._interval)

    async def _draw(self) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        line = render_progress(
            self.label,
            rows=self.rows,
            total=self.total,
            rate=(self.rows - self._rows_at_start) / elapsed,
            quota=None if self._quota is None else await self._quota(),
            now=datetime.now(UTC),
        )
        # Pad over the previous, longer line; \r alone would leave its tail on screen.
        self._stream.write("\r" + line.ljust(self._width))
        self._stream.flush()
        self._width = len(line)


def quota_probe(client: PlumClient, group: QuotaGroup) -> Callable[[], Awaitable[Snapshot]] | None:
    """What the progress line shows of the quota: the client's bucket of ``group``."""
    key = client.quota_key(group)
    if key is None:
        return None
    return lambda: client.governor.snapshot(key)


def shows_progress(args: argparse.Namespace) -> bool:
    """Progress is drawn for people: on a terminal, unless ``-q`` asked for silence."""
    return not args.quiet and sys.stderr.isatty()
