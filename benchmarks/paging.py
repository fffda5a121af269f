"""Paging benchmark: throughput by concurrency, and peak memory by walk length. Run by hand.

    .venv/bin/python benchmarks/paging.py                  # 1,000,000 calls, 50 ms per page
    .venv/bin/python benchmarks/paging.py --calls 200000 --page-size 1000

Three measurements, each a ratio against a baseline taken in the same run:

1. ``client``: ``PlumClient.calls.iterate`` against ``PlumSimulator`` in process (httpx's
   ASGI transport), every page delayed by the simulated latency, no quota on either side (a
   governor with a huge limit: this measures paging, not the 150-request budget). Calls per
   second at each concurrency, and the ratio to concurrency 1.
2. ``paging``: the same walk over an in-memory list of rows, whose fetch only sleeps the
   latency. It isolates what the paging layer itself adds, which the first measurement mixes
   with the simulator building and rendering each call and the client decoding it, all on one
   thread: see the CPU time per call printed with it.
3. ``memory``: peak RSS of a fresh process walking N and 10 x N calls (``client``, with the
   highest concurrency): bounded memory means the two peaks are within a few percent.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from collections.abc import Sequence

import anyio

from plumvoice_async import LocalGovernor
from plumvoice_async._pagination import PageIterator
from plumvoice_async.testing import CallDataset, PlumSimulator

START, END = 0, 2**31 - 1


async def count(walk: PageIterator[object, str], *, read_ahead: bool) -> int:
    """Consume the walk (plainly, or inside ``async with`` to read ahead); count its rows."""
    seen = 0
    if read_ahead:
        async with walk:
            return await count(walk, read_ahead=False)
    async for _ in walk:
        seen += 1
    return seen


async def walk_client(
    calls: int, *, latency: float, page_size: int, concurrency: int, read_ahead: bool
) -> int:
    """Walk every call of a simulator through the client; return how many were yielded."""
    sim = PlumSimulator(CallDataset(size=calls), quotas={"fuse": None})
    if latency:
        sim.faults.latency(latency, path_prefix="/api/calls/")
    governor = LocalGovernor(limit=10**9, window=900.0)
    async with sim.client(governor=governor, timeout=600.0) as client:
        walk = client.calls.iterate(START, END, page_size=page_size, concurrency=concurrency)
        return await count(walk, read_ahead=read_ahead)  # type: ignore[arg-type]


async def walk_list(
    rows: Sequence[str], *, latency: float, page_size: int, concurrency: int, read_ahead: bool
) -> int:
    """Walk an in-memory list whose fetch only waits the latency."""

    async def fetch(offset: int, limit: int) -> tuple[Sequence[str], int]:
        await anyio.sleep(latency)
        return rows[offset : offset + limit], len(rows)

    walk = PageIterator(fetch, key=str, page_size=page_size, concurrency=concurrency)
    return await count(walk, read_ahead=read_ahead)  # type: ignore[arg-type]


def timed(label: str, run: object, *args: object, **kwargs: object) -> tuple[float, float]:
    """Run ``anyio.run(run, ...)``; print and return (calls per second, CPU seconds per call)."""
    wall, cpu = time.perf_counter(), time.process_time()
    count = anyio.run(lambda: run(*args, **kwargs))  # type: ignore[operator]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rate = count / wall
    print(
        f"  {label:<16} {count:>9,} calls in {wall:7.2f} s  {rate:>10,.0f} calls/s  "
        f"CPU {cpu / count * 1e6:6.1f} us/call"
    )
    return rate, cpu / count


def throughput(name: str, run: object, levels: list[int], **kwargs: object) -> None:
    print(f"\n{name}")
    rates = {
        level: timed(f"concurrency {level}", run, concurrency=level, **kwargs)[0]
        for level in levels
    }
    base = rates[levels[0]]
    print(
        "  ratios to concurrency",
        levels[0],
        ": " + ", ".join(f"{level}: {rate / base:.2f}x" for level, rate in rates.items()),
    )


def peak_rss_kib(
    calls: int, *, latency: float, page_size: int, concurrency: int, read_ahead: bool
) -> int:
    """Peak RSS of a fresh interpreter that walks ``calls`` calls through the client."""
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--rss-child",
            str(calls),
            "--latency",
            str(latency),
            "--page-size",
            str(page_size),
            "--concurrency",
            str(concurrency),
            *(["--read-ahead"] if read_ahead else []),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per page")
    parser.add_argument("--page-size", type=int, default=10_000)
    parser.add_argument("--concurrency", default="1,2,4,8", help="levels, comma-separated")
    parser.add_argument("--only", choices=["client", "paging", "memory"], action="append")
    parser.add_argument(
        "--read-ahead", action="store_true", help="iterate inside `async with` (read-ahead)"
    )
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]

    if args.rss_child is not None:  # one walk in this fresh process, then its peak RSS
        anyio.run(
            lambda: walk_client(
                args.rss_child,
                latency=args.latency,
                page_size=args.page_size,
                concurrency=levels[-1],
                read_ahead=args.read_ahead,
            )
        )
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        return

    only = set(args.only or ["client", "paging", "memory"])
    common = {
        "latency": args.latency,
        "page_size": args.page_size,
        "read_ahead": args.read_ahead,
    }
    print(
        f"{args.calls:,} calls, {args.latency * 1000:.0f} ms per page, "
        f"page_size {args.page_size:,}, {'read-ahead' if args.read_ahead else 'plain'} "
        f"iteration, Python {sys.version.split()[0]}"
    )
    if "client" in only:
        throughput(
            "client: PlumClient.calls.iterate against PlumSimulator, in process",
            walk_client,
            levels,
            calls=args.calls,
            **common,
        )
    if "paging" in only:
        rows = [f"{i};{i % 1000};1" for i in range(args.calls)]
        throughput(
            "paging: PageIterator over an in-memory list, fetch = latency only",
            walk_list,
            levels,
            rows=rows,
            **common,
        )
    if "memory" in only:
        print(
            f"\nmemory: peak RSS of a fresh process walking through the client "
            f"(concurrency {levels[-1]})"
        )
        small, large = args.calls // 10, args.calls
        peaks = {
            n: peak_rss_kib(
                n,
                latency=0.0,  # memory does not depend on time
                page_size=args.page_size,
                concurrency=levels[-1],
                read_ahead=args.read_ahead,
            )
            for n in (small, large)
        }
        for n, peak in peaks.items():
            print(f"  {n:>9,} calls: {peak / 1024:7.1f} MiB")
        print(f"  ratio {large:,} / {small:,}: {peaks[large] / peaks[small]:.3f}")


if __name__ == "__main__":
    main()
