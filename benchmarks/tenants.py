"""Multi-tenant benchmark: a governor holding many accounts' buckets. Run by hand.

    .venv/bin/python benchmarks/tenants.py              # 10, 1,000, 10,000, 100,000 accounts
    .venv/bin/python benchmarks/tenants.py --sizes 10 1000 --ops 100000

A SaaS backend keeps one ``LocalGovernor`` for many customers' accounts, so the governor must
neither slow down nor hold memory for accounts that went quiet (issue 11, case 7). For each
number of accounts, in a fresh interpreter (RSS is only comparable process to process):

1. one bucket per account, each synchronised by a probe's answer (phase "server");
2. ``acquire`` + ``settle`` round-robin over every account, ``--ops`` times, best of
   ``ROUNDS`` (asyncio, no I/O, quota to spare, a ``FakeClock``, a ``QuotaKey`` made per
   request as the transport does): the cost per pair;
3. RSS with every bucket live;
4. the fake clock moves past the window, then ``acquire`` + ``settle`` go on for the first ten
   accounts only, enough for the governor's lazy sweep to pass over every bucket (a few per
   acquire); RSS again, after a ``gc.collect()``.

Each size runs ``--repeat`` times, interleaved with the others; the run with the best cost
counts. Printed per size: microseconds per pair and its ratio to the 10-account run, buckets
held, RSS live and after idling, and the idle RSS as a ratio to the 10-account run's. Targets:
cost ratio <= 1.2 at 100,000 accounts; idle RSS within 10% of the 10-account figure (issue 11).
The last column, the interpreter's allocated blocks after idling as a ratio to the 10-account
run's, tells objects still held (a leak) from memory the allocators keep after freeing (RSS).
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

import anyio

from plumvoice_async._core.ratelimit import RateLimit
from plumvoice_async._core.requests import QuotaGroup
from plumvoice_async._governor import QuotaKey
from plumvoice_async._local_governor import _SWEEP_STEP, LocalGovernor
from plumvoice_async.testing import FakeClock

WINDOW = 900.0
ROUNDS = 5
"""Timed rounds per run; the best counts (the machine may be shared)."""
START = 1_700_000_010.0
"""The fake clock's start: 890 s before a server window ends (1_700_000_900 is a multiple)."""


def rss_mib() -> float:
    """This process's resident set, MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def child(accounts: int, ops: int) -> dict[str, float]:
    clock = FakeClock(START)
    gov = LocalGovernor(150, WINDOW, clock=clock)
    group = QuotaGroup.VOICETRENDS.value
    reset = (START // WINDOW + 1) * WINDOW
    answer = RateLimit(150, 149, reset, START)

    async def pairs(among: int, count: int) -> float:
        """``count`` pairs round-robin over the first ``among`` accounts; a ``QuotaKey`` made
        per request, as the transport does (no list of every account is kept)."""
        started = time.perf_counter()
        for i in range(count):
            key = QuotaKey(group, f"{i % among:016x}")
            await gov.settle(await gov.acquire(key), status=200, rate_limit=answer)
        return time.perf_counter() - started

    await pairs(accounts, accounts)  # every bucket synchronised by its probe's answer
    best = min([await pairs(accounts, ops) for _ in range(ROUNDS)])
    gc.collect()
    live = rss_mib()
    held_live = len(gov._lanes)
    await clock.advance(WINDOW + 2.0)  # every window is over: every bucket but the hot is idle
    hot = 10
    answer = RateLimit(150, 149, reset + WINDOW, START + WINDOW + 2.0)
    await pairs(hot, accounts // _SWEEP_STEP + 2 * hot)
    gc.collect()
    return {
        "accounts": accounts,
        "us_per_pair": best / ops * 1e6,
        "held_live": held_live,
        "rss_live": live,
        "held_idle": len(gov._lanes),
        "rss_idle": rss_mib(),
        "blocks_idle": sys.getallocatedblocks(),
    }


def main(arguments: argparse.Namespace) -> None:
    runs: dict[int, list[dict[str, float]]] = {size: [] for size in arguments.sizes}
    for _ in range(arguments.repeat):  # sizes interleaved, so load on the machine hits all
        for accounts in arguments.sizes:
            command = [sys.executable, __file__, "--child", str(accounts)]
            command += ["--ops", str(arguments.ops)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            runs[accounts].append(json.loads(output))
    rows = [min(found, key=lambda row: row["us_per_pair"]) for found in runs.values()]
    base = rows[0]
    print(
        f"{'accounts':>9} {'us/pair':>8} {'cost x':>7} {'held':>7} {'RSS live':>9} "
        f"{'held idle':>9} {'RSS idle':>9} {'idle RSS x':>10} {'idle blocks x':>13}"
    )
    for row in rows:
        print(
            f"{row['accounts']:>9,} {row['us_per_pair']:>8.2f} "
            f"{row['us_per_pair'] / base['us_per_pair']:>7.2f} {row['held_live']:>7,} "
            f"{row['rss_live']:>8.1f}M {row['held_idle']:>9,} {row['rss_idle']:>8.1f}M "
            f"{row['rss_idle'] / base['rss_idle']:>10.3f} "
            f"{row['blocks_idle'] / base['blocks_idle']:>13.4f}"
        )
    print(
        f"(ratios to the {base['accounts']:,}-account run; targets: cost x <= 1.2, "
        "idle RSS x <= 1.1)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1_000, 10_000, 100_000])
    parser.add_argument("--ops", type=int, default=200_000, help="acquire+settle pairs timed")
    parser.add_argument("--repeat", type=int, default=2, help="runs per size; the best counts")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child is not None:
        result = anyio.run(child, arguments.child, arguments.ops)
        print(json.dumps(result))
    else:
        main(arguments)
