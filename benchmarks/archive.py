"""Archive benchmark: storing rate against a bare insert, and peak memory. Run by hand.

    .venv/bin/python benchmarks/archive.py                   # 1,000,000 calls, 200,000 logs
    .venv/bin/python benchmarks/archive.py --calls 100000    # a quicker look

Each measurement runs in a fresh process per database (SQLite in a temporary file, PostgreSQL
on a server started for the run, as the tests do) and size (``--calls`` and a tenth of it):

- ``Archive.sync`` pulls the calls and logs from ``PlumSimulator`` in process, no quota. The
  data set puts the last fifth of the calls inside the 5-day window, so their logs are archived
  and the older ones marked expired (1,000,000 calls: 200,000 logs).
- ``store``: seconds spent in the store's transactions that store rows (building the rows
  from the models, JSON-encoding each log line's ``data``, the upserts with their counts, the
  checkpoint, the status of each archived log). The expiry marks (an UPDATE of the older
  calls, nothing inserted) have no bare twin: ``expire s`` times them apart.
- ``bare``: after each page is stored, the same rows, already built as tuples, go into twin
  tables (same columns and keys) by a plain ``executemany`` INSERT in one transaction: the
  database's own speed with nothing of ours around it, measured in the same run.
- ``ratio``: bare seconds / store seconds, i.e. storing rows/s as a fraction of the bare insert
  rows/s (target >= 0.5); ``peak RSS`` of the process, flat in the number of rows (target: the
  large run within 10% of the small one).

Measured on the shared 2-core development machine (load 3-6), 1,000,000 calls:

    database        calls     logs       rows  store s  bare s  ratio expire s  sync s  RSS MB
    sqlite        100,000   21,770    165,284      8.4     4.3   0.51      3.9    35.9     128
    sqlite      1,000,000  201,769  1,605,224     71.8    52.7   0.73     15.0   246.9     136
    postgresql    100,000   21,770    165,284      4.2     2.9   0.71      1.1    12.7     119
    postgresql  1,000,000  201,769  1,605,224     45.3    32.4   0.72     13.5   140.6     120

Peak RSS 1,000,000 vs 100,000 calls: SQLite 1.06x, PostgreSQL 1.01x. The rest of ``sync s``
is the simulator building and rendering the calls and the client decoding them, on one core.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from plumvoice_async._core.params import DETAILS_RETENTION_SECONDS
from plumvoice_async.archive import Archive
from plumvoice_async.archive._schema import DETAILS_NONE, DETAILS_PENDING, create_statements
from plumvoice_async.testing import CallDataset, FakeClock, PlumSimulator

NOW = 1_700_000_000 // 86_400 * 86_400


class Timed:
    """Wraps the store: times its writes, and repeats each page bare into the twin tables."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.store_seconds = 0.0
        self.expire_seconds = 0.0
        self.bare_seconds = 0.0
        self.rows = 0
        dialect = store._dialect
        p = dialect.placeholder
        self.bare_call = f"INSERT INTO bare_calls VALUES ({', '.join([p] * 9)})"
        self.bare_event = f"INSERT INTO bare_events VALUES ({', '.join([p] * 6)}, {dialect.json})"
        for name in ("store_calls", "store_details", "expire"):
            setattr(store, name, self._timed(getattr(store, name), name))

    def create_twins(self) -> None:
        with self.store._transaction() as cursor:
            for statement in create_statements(self.store._dialect.name):
                if statement.startswith("CREATE TABLE plum_calls"):
                    cursor.execute(statement.replace("plum_calls", "bare_calls", 1))
                elif statement.startswith("CREATE TABLE plum_call_events"):
                    cursor.execute(statement.replace("plum_call_events", "bare_events", 1))

    def _timed(self, method: Any, name: str) -> Any:
        def timed(account: str, rows: Any, *rest: Any) -> Any:
            began = time.perf_counter()
            result = method(account, rows, *rest)
            if name == "expire":  # no bare twin: timed apart, outside the ratio
                self.expire_seconds += time.perf_counter() - began
            else:
                self.store_seconds += time.perf_counter() - began
                self._bare(name, account, rows)
            return result

        return timed

    def _bare(self, name: str, account: str, calls: Any) -> None:
        time_in = self.store._dialect.time_in
        if name == "store_calls":
            self.rows += len(calls)
            rows = [
                (
                    account,
                    c.session_id,
                    c.dest,
                    c.src,
                    time_in(c.start),
                    time_in(c.end),
                    c.type.value,
                    c.log,
                    DETAILS_PENDING if c.log else DETAILS_NONE,
                )
                for c in calls
            ]
            statement = self.bare_call
        else:
            rows = [
                (
                    account,
                    c.session_id,
                    seq,
                    time_in(e.timestamp),
                    e.event_class,
                    e.line,
                    json.dumps(e.data, separators=(",", ":")),
                )
                for c in calls
                for seq, e in enumerate(c.detail)
            ]
            self.rows += len(rows)
            statement = self.bare_event
        began = time.perf_counter()
        with self.store._transaction() as cursor:
            cursor.executemany(statement, rows)
        self.bare_seconds += time.perf_counter() - began


async def measure(url: str, calls: int) -> dict[str, Any]:
    logs = calls // 5
    spacing = 2
    # The call at index calls - logs starts an hour inside the 5-day window: the calls after
    # it have their logs, those before it (but the first hour's) are expired.
    assert logs * spacing < DETAILS_RETENTION_SECONDS - 3_600
    start = NOW - DETAILS_RETENTION_SECONDS + 3_600 - (calls - logs) * spacing
    sim = PlumSimulator(
        CallDataset(size=calls, start=start, spacing=spacing),
        clock=FakeClock(start=NOW),
        quotas={"fuse": None},
    )
    from plumvoice_async import LocalGovernor

    async with (
        sim.client(governor=LocalGovernor(limit=10**9, window=900.0), timeout=600.0) as client,
        Archive.open(url) as archive,
    ):
        timed = Timed(archive._store)
        timed.create_twins()
        began = time.perf_counter()
        result = await archive.sync(client, since=start)
        elapsed = time.perf_counter() - began
    return {
        "calls": result.new_calls,
        "logs": result.archived_details,
        "events": result.new_events,
        "expired": result.expired_details,
        "requests": result.requests,
        "rows": timed.rows,
        "store": timed.store_seconds,
        "bare": timed.bare_seconds,
        "expire": timed.expire_seconds,
        "elapsed": elapsed,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child(url: str, calls: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", url, "--calls", str(calls)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(anyio.run(measure, args.child, args.calls)))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.postgres_server import running_postgres_server

    sizes = (args.calls // 10, args.calls)
    print(
        f"{'database':<11}{'calls':>10}{'logs':>9}{'rows':>11}{'store s':>9}{'bare s':>8}"
        f"{'ratio':>7}{'expire s':>9}{'sync s':>8}{'RSS MB':>8}"
    )
    with running_postgres_server() as server, tempfile.TemporaryDirectory() as folder:
        peaks: dict[str, list[float]] = {}
        for name in ("sqlite", "postgresql"):
            for size in sizes:
                if name == "sqlite":
                    url = f"sqlite:///{folder}/archive-{size}.db"
                else:
                    url = server.new_database()
                figures = child(url, size)
                peaks.setdefault(name, []).append(figures["rss_mb"])
                print(
                    f"{name:<11}{figures['calls']:>10,}{figures['logs']:>9,}"
                    f"{figures['rows']:>11,}{figures['store']:>9.1f}{figures['bare']:>8.1f}"
                    f"{figures['bare'] / figures['store']:>7.2f}{figures['expire']:>9.1f}"
                    f"{figures['elapsed']:>8.1f}"
                    f"{figures['rss_mb']:>8.0f}",
                    flush=True,
                )
        for name, (small, large) in peaks.items():
            print(
                f"{name}: peak RSS {large:.0f} MB at {sizes[1]:,} calls vs {small:.0f} MB at "
                f"{sizes[0]:,}: {large / small:.2f}x"
            )


if __name__ == "__main__":
    main()
