"""Redis governor benchmark: one quota shared by several processes, and what it costs. By hand.

    .venv/bin/python benchmarks/redis_quota.py                  # 4 x 16 tasks, 150 per 4 s
    .venv/bin/python benchmarks/redis_quota.py --processes 2 --window 6

Needs ``redis-server`` on the PATH (started on a free loopback port, no persistence) unless
``--redis-url`` names one. Three parts:

1. ``--processes`` worker processes, each with ``--tasks`` tasks fetching the events report in
   a loop through one ``PlumClient`` and a ``RedisGovernor`` on the same Redis, against one
   ``PlumSimulator`` served by uvicorn on loopback (``--limit`` per ``--window`` seconds, one
   account), for ``--windows`` windows from a window boundary. From the simulator's log:
   requests admitted per window, 429s, quota used per full window (lowest, mean). A window is
   judged only when it is full: every worker was running and asking from its start to its
   end (each says ``ready`` once imported, connected and its scripts loaded; the first window
   starts at a boundary after the last one did). Starting the clock before the workers were
   up was why one run of seven once showed a first window of 114 of 150 with no 429: the
   boundary was computed before the workers started, and a worker's start-up (imports, the
   uvicorn client, Redis) on a loaded machine took longer than the time left until it.
2. ``acquire`` + ``settle`` with quota to spare, asyncio, one task: ``RedisGovernor`` (a round
   trip each, loopback) against ``LocalGovernor`` (no I/O), in microseconds and as a ratio.
3. Redis commands per request over part 2, from ``INFO commandstats`` before and after: round
   trips (``EVALSHA``) and every command, the ones the scripts run included.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import anyio.lowlevel

from plumvoice_async import LocalGovernor, PlumClient, PlumError, RedisGovernor
from plumvoice_async._core.ratelimit import RateLimit
from plumvoice_async._core.requests import QuotaGroup
from plumvoice_async._governor import Governor, QuotaKey, account_hash
from plumvoice_async.testing import PlumSimulator, serve

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests/
from tests.redis_server import RedisServerMissing, running_redis_server

KEY = QuotaKey(QuotaGroup.VOICETRENDS.value, account_hash("bench@example.com"))


# -- part 1: many processes ---------------------------------------------------------------------


def worker(redis_url: str, simulator_url: str, limit: int, window: int, tasks: int) -> None:
    """One process: says ``ready`` once set up, then ``tasks`` fetch loops from the ``go``
    line on stdin until the UNIX time that line names."""

    async def main() -> None:
        governor = RedisGovernor.from_url(
            redis_url, limit=limit, window=float(window), prefix="bench:", margin=0.2, lease=10.0
        )
        day = datetime.now(UTC).date() - timedelta(days=4)
        async with PlumClient(
            voicetrends_auth=PlumSimulator.VOICETRENDS_AUTH,
            voicetrends_url=simulator_url,
            governor=governor,
            max_retries=0,
        ) as client:
            await governor.snapshot(KEY)  # connected, scripts loaded
            print("ready", flush=True)
            end = float((await anyio.to_thread.run_sync(sys.stdin.readline)).split()[1])

            async def fetch_forever() -> None:
                while True:
                    try:
                        await client.events.fetch(
                            day, day + timedelta(days=1), period="day", phone="ALL"
                        )
                    except PlumError:
                        await anyio.lowlevel.checkpoint()

            with anyio.move_on_after(end - time.time()):
                async with anyio.create_task_group() as group:
                    for _ in range(tasks):
                        group.start_soon(fetch_forever)
        await governor.aclose()

    anyio.run(main)


def many_processes(redis_url: str, args: argparse.Namespace) -> None:
    from plumvoice_async.testing._simulator import Quota

    simulator = PlumSimulator(quotas={QuotaGroup.VOICETRENDS: Quota(args.limit, args.window)})
    with serve(simulator) as url:
        launched = time.time()
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--worker",
                    *(redis_url, url, str(args.limit), str(args.window), str(args.tasks)),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(args.processes)
        ]
        for process in workers:
            assert process.stdout is not None
            if process.stdout.readline() != "ready\n":
                sys.exit("a worker did not start")
        ready = time.time()
        # The first judged window starts at a boundary after every worker is up and asking
        # (they start at once and warm up in the partial window before it).
        start = (math.floor((ready + 0.5) / args.window) + 1) * args.window
        end = start + args.windows * args.window
        for process in workers:
            assert process.stdin is not None
            process.stdin.write(f"go {end!r}\n")
            process.stdin.close()
        for process in workers:
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
    data = [r for r in simulator.requests if r.group is QuotaGroup.VOICETRENDS]
    admitted = Counter(math.floor(r.time / args.window) for r in data if r.status != 429)
    first, last = math.floor(start / args.window), math.floor(end / args.window)
    full = [admitted[w] for w in range(first, last)]
    used = [n / args.limit for n in full]
    rejected = sum(r.status == 429 for r in data)
    print(
        f"{args.processes} processes x {args.tasks} tasks, {args.limit} per {args.window} s, "
        f"{args.windows} windows"
    )
    print(
        f"  workers ready {ready - launched:.1f} s after launch; judged windows: the "
        f"{args.windows} full ones from {start - ready:.1f} s after that"
    )
    partial = [admitted[w] for w in sorted(admitted) if not first <= w < last]
    print(f"  admitted per full window: {full} (partial windows, not judged: {partial})")
    print(f"  429s: {rejected}")
    print(f"  quota used per full window: lowest {min(used):.1%}, mean {sum(used) / len(used):.1%}")


# -- parts 2 and 3: cost per request ---------------------------------------------------------------


async def per_request(governor: Governor, rounds: int) -> float:
    """Mean seconds of ``acquire`` + ``settle`` with quota to spare."""
    server_now = math.floor(time.time())
    plenty = RateLimit(1_000_000, 999_999, float(server_now + 3600), float(server_now))
    probe = await governor.acquire(KEY)
    await governor.settle(probe, status=200, rate_limit=plenty)
    started = time.perf_counter()
    for _ in range(rounds):
        permit = await governor.acquire(KEY)
        await governor.settle(permit, status=200, rate_limit=plenty)
    return (time.perf_counter() - started) / rounds


async def costs(redis_url: str, rounds: int) -> None:
    local = await per_request(LocalGovernor(1_000_000, 3600.0), rounds)
    redis = RedisGovernor.from_url(redis_url, limit=1_000_000, window=3600.0, prefix="cost:")
    await per_request(redis, 100)  # scripts loaded, connection open
    before = await redis._redis.info("commandstats")
    shared = await per_request(redis, rounds)
    after = await redis._redis.info("commandstats")
    await redis.aclose()

    def calls(stats: dict[str, dict[str, int]], name: str | None = None) -> int:
        return sum(v["calls"] for k, v in stats.items() if name is None or k == f"cmdstat_{name}")

    requests = rounds + 1  # the measured rounds and their probe
    commands = calls(after) - calls(before) - 1  # less the INFO that read "before"
    trips = calls(after, "evalsha") - calls(before, "evalsha")
    print(f"acquire + settle, {rounds} rounds, asyncio, loopback Redis:")
    print(f"  LocalGovernor {local * 1e6:8.1f} us")
    print(f"  RedisGovernor {shared * 1e6:8.1f} us   ({shared / local:.0f}x the local governor)")
    print(f"  Redis round trips per request: {trips / requests:.2f} (EVALSHA)")
    print(f"  Redis commands per request, in-script ones included: {commands / requests:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--limit", type=int, default=150)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    if args.redis_url:
        many_processes(args.redis_url, args)
        anyio.run(costs, args.redis_url, args.rounds)
        return
    try:
        with running_redis_server() as url:
            many_processes(url, args)
            anyio.run(costs, url, args.rounds)
    except RedisServerMissing as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        redis_url, simulator_url, limit, window, tasks = sys.argv[2:7]
        worker(redis_url, simulator_url, int(limit), int(window), int(tasks))
    else:
        main()
