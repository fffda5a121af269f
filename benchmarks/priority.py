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

With ``--redis`` (needs ``redis-server`` on the PATH, or ``--redis-url``, and a
``RedisGovernor`` that takes ``reserve``): the same two rows across two processes, each with its
own ``RedisGovernor`` on one Redis, against one ``PlumSimulator`` served by uvicorn on
loopback: one process runs the export, the other the dashboard. The run starts at a window
boundary after both processes are up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import anyio
import anyio.lowlevel

from plumvoice_async import ClientEvent, LocalGovernor, PlumClient, PlumError, QuotaWaited
from plumvoice_async._core.requests import QuotaGroup
from plumvoice_async.testing import serve
from plumvoice_async.testing._simulator import LoggedRequest, PlumSimulator, Quota

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests/
from tests.redis_server import RedisServerMissing, running_redis_server


async def export_forever(client: PlumClient, day: date) -> None:
    """The export's task: one report after another, as fast as the quota lets it."""
    while True:
        try:
            await client.events.fetch(day, day + timedelta(days=1), period="day", phone="ALL")
        except PlumError:
            await anyio.lowlevel.checkpoint()


async def dashboard_request(client: PlumClient, day: date, at: float) -> None:
    """One dashboard request at ``at`` (wall clock); a failure counts as not answered."""
    await anyio.sleep(max(0.0, at - time.time()))
    with contextlib.suppress(PlumError):
        await client.volume.fetch(day, day, period="day", phone="ALL")


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
        await anyio.sleep(window - time.time() % window + 0.001)  # start on a boundary
        start = time.time()
        end = (math.floor(start / window) + windows) * window
        with anyio.move_on_after(end - start):
            async with anyio.create_task_group() as group:
                for _ in range(tasks):
                    group.start_soon(export_forever, export, day)
                at = start + every / 2
                while at < end:
                    group.start_soon(dashboard_request, dashboard, day, at)
                    at += every
    return simulator.requests, waits, start, end


# -- across processes: RedisGovernor ------------------------------------------------------------


def worker(role: str, redis_url: str, simulator_url: str, settings: str) -> None:
    """One process: the export or the dashboard; says ``ready``, runs from the ``go`` line's
    start to its end, and the dashboard prints its waits (JSON) last."""
    from plumvoice_async import RedisGovernor

    options = json.loads(settings)
    limit, window, reserve = options["limit"], options["window"], options["reserve"]
    priority = "bulk" if role == "export" and options["priorities"] else "interactive"

    async def main() -> None:
        governor = RedisGovernor.from_url(
            redis_url,
            limit=limit,
            window=float(window),
            prefix=options["prefix"],
            margin=0.2,
            lease=10.0,
            reserve=reserve,
        )
        waits: list[float] = []

        def record(event: ClientEvent) -> None:
            if isinstance(event, QuotaWaited):
                waits.append(event.seconds)

        day = datetime.now(UTC).date() - timedelta(days=4)
        async with PlumClient(
            voicetrends_auth=PlumSimulator.VOICETRENDS_AUTH,
            voicetrends_url=simulator_url,
            governor=governor,
            max_retries=0,
            priority=priority,
            event_hooks=[record],
        ) as client:
            key = client.quota_key("voicetrends")
            assert key is not None
            await governor.snapshot(key)  # connected, scripts loaded
            print("ready", flush=True)
            line = await anyio.to_thread.run_sync(sys.stdin.readline)
            start, end = (float(word) for word in line.split()[1:3])

            await anyio.sleep(max(0.0, start - time.time()))
            with anyio.move_on_after(end - time.time()):
                async with anyio.create_task_group() as group:
                    if role == "export":
                        for _ in range(options["tasks"]):
                            group.start_soon(export_forever, client, day)
                    else:
                        at = start + options["every"] / 2
                        while at < end:
                            group.start_soon(dashboard_request, client, day, at)
                            at += options["every"]
        await governor.aclose()
        if role == "dashboard":
            print(json.dumps(waits), flush=True)

    anyio.run(main)


def load_redis(
    redis_url: str,
    *,
    priorities: bool,
    reserve: int,
    limit: int,
    window: int,
    tasks: int,
    windows: int,
    every: float,
    prefix: str,
) -> tuple[list[LoggedRequest], list[float], float, float]:
    """``load``, with the export and the dashboard in two processes on one Redis."""
    simulator = PlumSimulator(quotas={QuotaGroup.VOICETRENDS: Quota(limit, window)})
    settings = json.dumps(
        {
            "priorities": priorities,
            "reserve": reserve,
            "limit": limit,
            "window": window,
            "tasks": tasks,
            "every": every,
            "prefix": prefix,
        }
    )
    with serve(simulator) as url:
        workers = {
            role: subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--worker",
                    role,
                    redis_url,
                    url,
                    settings,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for role in ("export", "dashboard")
        }
        for process in workers.values():
            assert process.stdout is not None
            if process.stdout.readline() != "ready\n":
                sys.exit("a worker did not start")
        start = (math.floor(time.time() / window) + 1) * window + 0.001
        end = math.floor(start / window) * window + windows * window
        for process in workers.values():
            assert process.stdin is not None
            process.stdin.write(f"go {start!r} {end!r}\n")
            process.stdin.close()
        outputs: dict[str, str] = {}
        for role, process in workers.items():
            assert process.stdout is not None
            outputs[role] = process.stdout.read()
            process.wait()
    waits = json.loads(outputs["dashboard"].splitlines()[-1])
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


async def main(arguments: argparse.Namespace, redis_url: str | None) -> None:
    limit, window, reserve = arguments.limit, arguments.window, arguments.reserve
    where = (
        "RedisGovernor, export and dashboard in two processes, PlumSimulator on loopback"
        if redis_url
        else "LocalGovernor, PlumSimulator in process"
    )
    print(
        f"quota {limit} per {window} s, export {arguments.tasks} tasks, dashboard one request "
        f"per {arguments.every:g} s, {arguments.windows} windows, {where}, {date.today()}"
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
        settings = {
            "priorities": priorities,
            "reserve": row_reserve,
            "limit": limit,
            "window": window,
            "tasks": arguments.tasks,
            "windows": arguments.windows,
            "every": arguments.every,
        }
        if redis_url is None:
            log, waits, start, end = await load(**settings)
        else:
            prefix = f"bench-priority-{time.time_ns()}:"  # a fresh bucket per row
            log, waits, start, end = await anyio.to_thread.run_sync(
                lambda: load_redis(redis_url, prefix=prefix, **settings)  # noqa: B023
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
    parser.add_argument("--redis", action="store_true", help="RedisGovernor, two processes")
    parser.add_argument("--redis-url", help="an existing Redis (else a redis-server is started)")
    if sys.argv[1:2] == ["--worker"]:
        worker(*sys.argv[2:6])
        sys.exit()
    arguments = parser.parse_args()
    if arguments.redis_url:
        anyio.run(main, arguments, arguments.redis_url)
    elif arguments.redis:
        try:
            with running_redis_server() as url:
                anyio.run(main, arguments, url)
        except RedisServerMissing as exc:
            sys.exit(str(exc))
    else:
        anyio.run(main, arguments, None)
