"""Priorities across processes: a bulk export and a dashboard on one account, two processes,
one ``RedisGovernor``. By hand, or through ``two_processes`` (for benchmarks/priority.py).

    .venv/bin/python benchmarks/redis_priority.py               # 150 per 4 s, 10 windows
    .venv/bin/python benchmarks/redis_priority.py --windows 5

Needs ``redis-server`` on the PATH (started on a free loopback port) unless ``--redis-url``
names one. Process "bulk" runs ``--bulk-tasks`` fetch loops, process "interactive" starts one
request every ``--every`` seconds; both go through a ``PlumClient`` and a ``RedisGovernor`` on
the same Redis against one ``PlumSimulator`` (``--limit`` per ``--window`` seconds) served by
uvicorn. Run twice: with priorities and ``--reserve`` (bulk at ``"bulk"``, the dashboard at
``"interactive"``), and the baseline (both ``"interactive"``, reserve 0: one FIFO, as before
issue 13). Prints per run: the interactive requests' wait for quota (p50, p99, max, the time
``acquire`` took for their VoiceTrends token), bulk requests admitted per full window, quota
used per full window and 429s. Windows are judged only when full (both processes up and asking
from the window's start to its end), as in benchmarks/redis_quota.py.

The priority is set on the governor by ``AtPriority`` (every ``acquire`` at one priority,
timed), so this needs nothing of the client but its governor.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

from plumvoice_async import PlumClient, PlumError, RedisGovernor
from plumvoice_async._core.ratelimit import RateLimit
from plumvoice_async._core.requests import QuotaGroup
from plumvoice_async._governor import Permit, QuotaKey, Snapshot
from plumvoice_async.testing import PlumSimulator, serve

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests/
from tests.redis_server import RedisServerMissing, running_redis_server


class AtPriority:
    """A governor whose every ``acquire`` runs at ``priority``; records when each VoiceTrends
    token came (wall time) and how long it took."""

    def __init__(self, governor: RedisGovernor, priority: str) -> None:
        self.governor = governor
        self.priority = priority
        self.grants: list[tuple[float, float]] = []  # (wall time granted, seconds waited)

    async def acquire(
        self,
        key: QuotaKey,
        *,
        max_wait: float | None = None,
        retry: bool = False,
        priority: str = "interactive",
    ) -> Permit:
        started = time.monotonic()
        permit = await self.governor.acquire(
            key, max_wait=max_wait, retry=retry, priority=self.priority
        )
        if key.group == QuotaGroup.VOICETRENDS.value:
            self.grants.append((time.time(), time.monotonic() - started))
        return permit

    async def settle(
        self,
        permit: Permit,
        *,
        status: int | None,
        rate_limit: RateLimit | None,
        retry_after: float | None = None,
    ) -> None:
        await self.governor.settle(
            permit, status=status, rate_limit=rate_limit, retry_after=retry_after
        )

    async def release(self, permit: Permit) -> None:
        await self.governor.release(permit)

    async def snapshot(self, key: QuotaKey) -> Snapshot:
        return await self.governor.snapshot(key)


def worker(
    role: str,
    redis_url: str,
    simulator_url: str,
    settings: dict[str, Any],
) -> None:
    """One process: says ``ready`` once set up, runs its role from the ``go`` line on stdin
    until the UNIX time that line names, then prints its grants as JSON."""

    async def main() -> None:
        governor = RedisGovernor.from_url(
            redis_url,
            limit=settings["limit"],
            window=float(settings["window"]),
            prefix=settings["prefix"],
            margin=0.2,
            lease=10.0,
            reserve=settings["reserve"],
        )
        priority = role if settings["priorities"] else "interactive"
        timed = AtPriority(governor, priority)
        day = datetime.now(UTC).date() - timedelta(days=4)
        async with PlumClient(
            voicetrends_auth=PlumSimulator.VOICETRENDS_AUTH,
            voicetrends_url=simulator_url,
            governor=timed,
            max_retries=0,
        ) as client:

            async def fetch() -> None:
                try:
                    await client.events.fetch(
                        day, day + timedelta(days=1), period="day", phone="ALL"
                    )
                except PlumError:
                    await anyio.lowlevel.checkpoint()

            async def fetch_forever() -> None:
                while True:
                    await fetch()

            await fetch()  # connected, signed in, scripts loaded
            timed.grants.clear()
            print("ready", flush=True)
            end = float((await anyio.to_thread.run_sync(sys.stdin.readline)).split()[1])
            with anyio.move_on_after(end - time.time()):
                async with anyio.create_task_group() as group:
                    if role == "bulk":
                        for _ in range(settings["bulk_tasks"]):
                            group.start_soon(fetch_forever)
                    else:
                        while True:  # one request every `every` seconds, however slow
                            group.start_soon(fetch)
                            await anyio.sleep(settings["every"])
        await governor.aclose()
        print(json.dumps(timed.grants), flush=True)

    anyio.run(main)


@dataclass(frozen=True)
class Result:
    """One run's figures, over its full windows."""

    interactive_waits: list[float]
    """Seconds each interactive request waited for its VoiceTrends token."""
    bulk_per_window: list[int]
    used_per_window: list[float]
    """Requests admitted by the server per full window, as a fraction of the limit."""
    rejected: int
    """429s, over the whole run."""


def two_processes(
    redis_url: str,
    *,
    limit: int = 150,
    window: int = 4,
    windows: int = 10,
    reserve: int = 15,
    bulk_tasks: int = 64,
    every: float = 0.5,
    priorities: bool = True,
) -> Result:
    """One run: the bulk and the interactive process on one Redis and one simulator."""
    from plumvoice_async.testing._simulator import Quota

    settings = {
        "prefix": f"bench-priority-{secrets.token_hex(4)}:",  # a fresh bucket per run
        "limit": limit,
        "window": window,
        "reserve": reserve,
        "bulk_tasks": bulk_tasks,
        "every": every,
        "priorities": priorities,
    }
    simulator = PlumSimulator(quotas={QuotaGroup.VOICETRENDS: Quota(limit, window)})
    outputs: dict[str, list[tuple[float, float]]] = {}
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
                    json.dumps(settings),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for role in ("bulk", "interactive")
        }
        for process in workers.values():
            assert process.stdout is not None
            if process.stdout.readline() != "ready\n":
                sys.exit("a worker did not start")
        ready = time.time()
        start = (math.floor((ready + 0.5) / window) + 1) * window
        end = start + windows * window
        for process in workers.values():
            assert process.stdin is not None
            process.stdin.write(f"go {end!r}\n")
            process.stdin.close()
        for role, process in workers.items():
            assert process.stdout is not None
            outputs[role] = [tuple(g) for g in json.loads(process.stdout.read())]  # type: ignore[misc]
            process.wait()
            process.stdout.close()
    data = [r for r in simulator.requests if r.group is QuotaGroup.VOICETRENDS]
    first, last = math.floor(start / window), math.floor(end / window)
    admitted = Counter(math.floor(r.time / window) for r in data if r.status != 429)
    bulk = Counter(math.floor(at / window) for at, _ in outputs["bulk"])
    return Result(
        interactive_waits=[wait for at, wait in outputs["interactive"] if start <= at < end],
        bulk_per_window=[bulk[w] for w in range(first, last)],
        used_per_window=[admitted[w] / limit for w in range(first, last)],
        rejected=sum(r.status == 429 for r in data),
    )


def summary(name: str, result: Result) -> str:
    waits = sorted(result.interactive_waits) or [0.0]
    p99 = waits[min(len(waits) - 1, math.ceil(0.99 * len(waits)) - 1)]
    used = result.used_per_window
    return (
        f"{name}\n"
        f"  interactive wait for quota: p50 {statistics.median(waits) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {waits[-1] * 1000:.1f} ms ({len(waits)} requests)\n"
        f"  bulk requests per full window: {result.bulk_per_window}\n"
        f"  quota used per full window: lowest {min(used):.1%}, mean {statistics.mean(used):.1%}\n"
        f"  429s: {result.rejected}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url")
    parser.add_argument("--limit", type=int, default=150)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--reserve", type=int, default=15)
    parser.add_argument("--bulk-tasks", type=int, default=64)
    parser.add_argument("--every", type=float, default=0.5)
    args = parser.parse_args()

    def runs(url: str) -> None:
        common = {
            "limit": args.limit,
            "window": args.window,
            "windows": args.windows,
            "bulk_tasks": args.bulk_tasks,
            "every": args.every,
        }
        print(
            f"RedisGovernor, 2 processes: {args.bulk_tasks} bulk tasks and one interactive "
            f"request per {args.every} s, {args.limit} per {args.window} s, {args.windows} windows"
        )
        with_priorities = two_processes(url, reserve=args.reserve, priorities=True, **common)
        print(summary(f"priorities, reserve {args.reserve}", with_priorities))
        baseline = two_processes(url, reserve=0, priorities=False, **common)
        print(summary("baseline: one FIFO, reserve 0", baseline))

    if args.redis_url:
        runs(args.redis_url)
        return
    try:
        with running_redis_server() as url:
            runs(url)
    except RedisServerMissing as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        role, redis_url, simulator_url, settings = sys.argv[2:6]
        worker(role, redis_url, simulator_url, json.loads(settings))
    else:
        main()
