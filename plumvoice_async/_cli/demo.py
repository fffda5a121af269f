"""``plumvoice demo``: the bulk export, end to end, against a simulator in this process.

No credentials and no network: a ``PlumSimulator`` with a few thousand calls is served on a
loopback port (uvicorn) or, with ``--in-process`` or without uvicorn, through an in-memory
transport. Its quota is compressed to 15 requests per 2-second window, and the client's
``LocalGovernor`` is configured to match, so the export visibly waits for windows instead of
collecting 429s. The summary is computed from the simulator's own request log: what the
server saw, not what the client believes it sent.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import math
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import anyio
import attrs

from .._client import PlumClient
from .._core.requests import QuotaGroup
from .._export import ExportResult, checkpoint_path
from .._local_governor import LocalGovernor
from ..testing import CallDataset, PlumSimulator, Quota, serve
from .output import Progress, quota_probe, series_rows, shows_progress, write_table

__all__ = ["DEMO_QUOTA", "run_demo"]

DEMO_QUOTA = Quota(limit=15, window=2)
"""Plum's 150 per 900 s, compressed so that quota waits show within seconds."""
_PAGE_SIZE = 100  # small pages: more requests than one window allows, so the governor works
_CONCURRENCY = 4
_SPACING = 30  # seconds between the simulated calls


@attrs.frozen
class _Run:
    """Strictly private: what the demo did, for the summary."""

    where: str
    out: Path
    exports: dict[str, ExportResult]
    periods: int
    seconds: float


async def run_demo(args: argparse.Namespace) -> None:
    # A folder the user can see and open (the summary names it), not a temp dir left behind.
    out = Path(args.out)
    await anyio.Path(out).mkdir(parents=True, exist_ok=True)
    # Two days before today's UTC midnight: inside the 5-day window of the detailed logs.
    start = (int(time.time()) // 86_400 - 2) * 86_400
    end = start + args.calls * _SPACING
    simulator = PlumSimulator(
        CallDataset(size=args.calls, start=start, spacing=_SPACING),
        limit=DEMO_QUOTA.limit,
        window=DEMO_QUOTA.window,
    )
    governor = LocalGovernor(limit=DEMO_QUOTA.limit, window=DEMO_QUOTA.window)
    in_process = args.in_process or importlib.util.find_spec("uvicorn") is None
    began = time.monotonic()
    exports: dict[str, ExportResult] = {}
    with _client(simulator, governor, in_process=in_process) as (client, where):
        async with client:
            for command, resource in (("calls", client.calls), ("details", client.call_details)):
                path = out / f"{command}.jsonl"
                # The demo always starts afresh.
                await anyio.Path(checkpoint_path(path)).unlink(missing_ok=True)
                progress = Progress(
                    command,
                    sys.stderr,
                    enabled=shows_progress(args),
                    quota=quota_probe(client, QuotaGroup.FUSE),
                )
                exports[command] = await progress.run(
                    functools.partial(
                        resource.export,
                        start,
                        end,
                        path,
                        page_size=_PAGE_SIZE,
                        concurrency=_CONCURRENCY,
                        progress=progress.update,
                    )
                )
            first, last = _utc_day(start), _utc_day(end)
            report = await client.events.fetch(first, last, period="day", phone="ALL")
    columns, rows = series_rows(report)
    write_table(out / "events.jsonl", "jsonl", columns, rows)
    run = _Run(where, out, exports, len(rows), time.monotonic() - began)
    print("\n".join(_summary(simulator, run)))


@contextmanager
def _client(
    simulator: PlumSimulator, governor: LocalGovernor, *, in_process: bool
) -> Iterator[tuple[PlumClient, str]]:
    if in_process:
        yield simulator.client(governor=governor), "in process (httpx.ASGITransport)"
        return
    with serve(simulator) as url:
        client = PlumClient(
            fuse_auth=simulator.fuse_auth,
            voicetrends_auth=simulator.voicetrends_auth,
            fuse_url=url,
            voicetrends_url=url,
            governor=governor,
        )
        yield client, url


def _utc_day(second: int) -> date:
    return datetime.fromtimestamp(second, UTC).date()


def _summary(simulator: PlumSimulator, run: _Run) -> list[str]:
    """The summary lines: rows, pages, requests and 429s, and the quota spent per window."""
    log = simulator.requests
    pages = Counter(entry.path.split("/")[2] for entry in log if entry.status == 200)
    rejected = sum(1 for entry in log if entry.status == 429)
    window = DEMO_QUOTA.window
    per_window: dict[str, Counter[int]] = {}
    for entry in log:
        if entry.counted and entry.group is not None:
            per_window.setdefault(entry.group.value, Counter())[
                math.floor(entry.time / window)
            ] += 1
    lines = [
        f"plumvoice demo: {simulator.dataset.size:,} simulated calls, served {run.where}",
        f"  quota     {DEMO_QUOTA.limit} requests per {window} s window (Plum: 150 per 900 s)",
    ]
    for command, result in run.exports.items():
        resource = "calls" if command == "calls" else "all_logs"
        lines.append(
            f"  {command:<9} {result.rows:,} rows in {pages[resource]} pages -> "
            f"{run.out / f'{command}.jsonl'}"
        )
    lines.append(f"  events    {run.periods} daily rows -> {run.out / 'events.jsonl'}")
    lines.append(f"  requests  {len(log)}, 429 answers: {rejected}")
    for group, counts in sorted(per_window.items()):
        spent = ", ".join(str(counts[index]) for index in sorted(counts))
        lines.append(
            f"  {group:<9} requests per window: {spent} (max {max(counts.values())}, "
            f"limit {DEMO_QUOTA.limit})"
        )
    lines.append(f"  time      {run.seconds:.1f} s")
    return lines
