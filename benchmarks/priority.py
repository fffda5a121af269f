"""Priority benchmark: a dashboard and a bulk export on one account. Run by hand.

    .venv/bin/python benchmarks/priority.py            # 150 per 4 s, 64 bulk tasks, 10 windows
    .venv/bin/python benchmarks/priority.py --reserve 10 --every 0.25

One run, two rows, against a fresh ``PlumSimulator`` in process each (httpx's ASGI transport,
real time, the quota compressed to ``--limit`` per ``--window`` seconds), starting on a window
boundary, for ``--windows`` windows. Two clients of one account share one ``LocalGovernor``:

- the export: ``--tasks`` tasks fetching the events report in a loop, as fast as the quota
  allows (a bulk export keeps a window's worth of requests queued all the time);
- the dashboard: one volume report every ``--every`` seconds, interactive.

Rows:

- ``priorities, reserve N``: the export's client has ``priority="bulk"``, the governor
  ``reserve=N`` (the dashboard's client keeps the default, ``"interactive"``);
- ``baseline: one FIFO``: both clients interactive, reserve 0: the library before issue 13.

Columns: the dashboard's wait for quota (``QuotaWaited.seconds``: from asking the governor to
holding a token) p50, p99 and max in milliseconds, the dashboard's requests that got an answer;
the export's requests counted per window (lowest, mean); 429s; quota used per window (lowest,
mean: every window is full, the export asks all through each). Targets (issue 13): dashboard p99
under 50 ms, no 429, at least 99% of every window used.

``RedisGovernor`` in two processes (the same rules across processes) is not measured here yet:
its Lua side of priorities lands separately (see the CHANGELOG).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import time
from datetime import UTC, date, datetime, timedelta

import anyio
import anyio.lowlevel

from plumvoice_async import ClientEvent, LocalGovernor, PlumError, QuotaWaited
from plumvoice_async._core.requests import QuotaGroup
from plumvoice_async.testing._simulator import LoggedRequest, PlumSimulator


async def load(
    *,
    priorities: bool,
    reserve: int,
    limit: int,
    window: int,
    tasks: int,
    windows: int,
    every: float,
) -> tuple[list[LoggedRequest], list[float], float, float]:
    """Run the export and the dashboard; the simulator's log, the dashboard's waits, start, end."""
    simulator = PlumSimulator(limit=limit, window=window)
    governor = LocalGovernor(limit, float(window), reserve=reserve)
    day = datetime.fromtimestamp(simulator.dataset.start, UTC).date()
    waits: list[float] = []

    def record(event: ClientEvent) -> None:
        if isinstance(event, QuotaWaited):
            waits.append(event.seconds)

    export = simulator.client(
        governor=governor, max_retries=0, priority="bulk" if priorities else "interactive"
    )
    dashboard = simulator.client(governor=governor, max_retries=0, event_hooks=[record])
    async with export, dashboard:

        async def fetch_forever() -> None:
            while True:
                try:
                    await export.events.fetch(
                        day, day + timedelta(days=1), period="day", phone="ALL"
                    )
                except PlumError:
                    await anyio.lowlevel.checkpoint()

        async def refresh(at: float) -> None:
            await anyio.sleep(max(0.0, at - time.time()))
            with contextlib.suppress(PlumError):  # counted as not answered
                await dashboard.volume.fetch(day, day, period="day", phone="ALL")

        await anyio.sleep(window - time.time() % window + 0.001)  # start on a boundary
        start = time.time()
        end = (math.floor(start / window) + windows) * window
        with anyio.move_on_after(end - start):
            async with anyio.create_task_group() as group:
                for _ in range(tasks):
                    group.start_soon(fetch_forever)
                at = start + every / 2
                while at < end:
                    group.start_soon(refresh, at)
                    at += every
    return simulator.requests, waits, start, end


def summarise(
    log: list[LoggedRequest], start: float, end: float, *, limit: int, window: int
) -> tuple[list[int], int, list[float], int]:
    """Per window: the export's counted requests; the dashboard's answered; quota used; 429s."""
    first, last = math.floor(start / window), math.floor(end / window)
    bulk = dict.fromkeys(range(first, last), 0)
    total = dict(bulk)
    dashboard = rejected = 0
    for request in log:
        if request.group is not QuotaGroup.VOICETRENDS or not start <= request.time < end:
            continue
        rejected += request.status == 429
        if not request.counted:
            continue
        index = math.floor(request.time / window)
        total[index] += 1
        if "/volume/" in request.path:
            dashboard += request.status == 200
        else:
            bulk[index] += 1
    return list(bulk.values()), dashboard, [count / limit for count in total.values()], rejected


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


async def main(arguments: argparse.Namespace) -> None:
    limit, window, reserve = arguments.limit, arguments.window, arguments.reserve
    print(
        f"quota {limit} per {window} s, export {arguments.tasks} tasks, dashboard one request "
        f"per {arguments.every:g} s, {arguments.windows} windows, LocalGovernor, PlumSimulator "
        f"in process, {date.today()}"
    )
    print(
        f"{'':<27} {'dashboard wait for quota, ms':>30} {'export/window':>15} {'429s':>5} "
        f"{'quota used':>16}"
    )
    print(
        f"{'':<27} {'p50':>8} {'p99':>8} {'max':>8} {'n':>4} {'lowest':>7} {'mean':>7} "
        f"{'':>5} {'lowest':>7} {'mean':>8}"
    )
    rows = ((True, reserve, f"priorities, reserve {reserve}"), (False, 0, "baseline: one FIFO"))
    for priorities, row_reserve, name in rows:
        log, waits, start, end = await load(
            priorities=priorities,
            reserve=row_reserve,
            limit=limit,
            window=window,
            tasks=arguments.tasks,
            windows=arguments.windows,
            every=arguments.every,
        )
        bulk, answered, used, rejected = summarise(log, start, end, limit=limit, window=window)
        print(
            f"{name:<27} {percentile(waits, 0.5) * 1e3:>8.1f} "
            f"{percentile(waits, 0.99) * 1e3:>8.1f} {max(waits) * 1e3:>8.1f} {answered:>4} "
            f"{min(bulk):>7} {statistics.mean(bulk):>7.1f} {rejected:>5} "
            f"{min(used):>7.1%} {statistics.mean(used):>8.1%}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=150)
    parser.add_argument("--window", type=int, default=4, help="seconds (the simulator's unit)")
    parser.add_argument("--tasks", type=int, default=64, help="the export's tasks")
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--every", type=float, default=0.5, help="seconds between dashboard calls")
    parser.add_argument("--reserve", type=int, default=15)
    anyio.run(main, parser.parse_args())
