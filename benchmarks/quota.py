"""Quota benchmark: how much of each window a governor uses, and how many 429s. Run by hand.

    .venv/bin/python benchmarks/quota.py                 # 150 per 4 s, 64 tasks, 10 windows
    .venv/bin/python benchmarks/quota.py --window 6 --tasks 32
    .venv/bin/python benchmarks/quota.py --svg docs/quota-per-window.svg   # the README's plot

One run, one table. Each row is the same ``PlumClient`` against a fresh ``PlumSimulator`` in
process (httpx's ASGI transport, real time, the quota compressed to ``--limit`` per
``--window`` seconds), ``--tasks`` tasks fetching the events report in a loop for ``--windows``
windows, starting on a window boundary. Only the client's governor differs:

- ``LocalGovernor``: this package's governor (margin 1 s, as shipped);
- ``aiolimiter``: ``AsyncLimiter(limit, window)`` behind the four governor verbs, so every
  attempt, first or re-queued after a 429, takes its capacity;
- ``naive``: no limit; a request that gets a 429 sleeps until that answer's ``Reset`` and
  tries again (each task learns the reset on its own).

Columns, from the simulator's request log: requests the server admitted per window (max and
mean over the full windows), 429s, quota used (admitted / limit, the lowest and the mean over
full windows), and idle time while quota was left (per window: gaps longer than 50 ms between
admitted requests, from the window's start until its quota ran out). The first window is
counted like the others: every variant starts cold on a boundary.

With ``--svg``, the requests the server admitted and refused (429) in each window, for each
variant, are drawn as bars against the limit: the README's picture of the governor.

Last, the per-request cost of the governor itself, asyncio, no I/O: ``acquire`` + ``settle``
on a ``LocalGovernor`` with quota to spare, against aiolimiter's ``acquire``, in microseconds
and as a ratio measured in the same run.
"""

from __future__ import annotations

import argparse
import contextvars
import email.utils
import itertools
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import anyio
import anyio.lowlevel
import httpx
from aiolimiter import AsyncLimiter

from plumvoice_async import PlumClient, PlumError
from plumvoice_async._core.ratelimit import RateLimit
from plumvoice_async._core.requests import QuotaGroup
from plumvoice_async._governor import Governor, Permit, QuotaKey, Snapshot
from plumvoice_async._local_governor import LocalGovernor
from plumvoice_async._telemetry import OpenTelemetry
from plumvoice_async.testing._simulator import LoggedRequest, PlumSimulator

IDLE_GAP = 0.05
"""A gap between admitted requests longer than this, with quota left, counts as idle: under
load the simulator admits one every few milliseconds."""


class AiolimiterGovernor:
    """aiolimiter's leaky bucket behind the governor verbs; it never hears the server."""

    def __init__(self, limit: int, window: float) -> None:
        self._limiter = AsyncLimiter(limit, window)

    async def acquire(
        self,
        key: QuotaKey,
        *,
        max_wait: float | None = None,
        retry: bool = False,
        priority: str = "interactive",
    ) -> Permit:
        await self._limiter.acquire()
        return Permit(key)

    async def settle(
        self,
        permit: Permit,
        *,
        status: int | None,
        rate_limit: RateLimit | None,
        retry_after: float | None = None,
    ) -> None:
        pass

    async def release(self, permit: Permit) -> None:
        pass

    async def snapshot(self, key: QuotaKey) -> Snapshot:
        return Snapshot(limit=0, remaining=0, reset_at=None, in_flight=0, waiting=0)


class SleepUntilResetGovernor:
    """No limit; after a 429 the request that got it sleeps until that answer's ``Reset``."""

    def __init__(self) -> None:
        # The transport settles a 429 and re-acquires in the same task: a per-task memory.
        self._reset: contextvars.ContextVar[float] = contextvars.ContextVar("reset", default=0.0)

    async def acquire(
        self,
        key: QuotaKey,
        *,
        max_wait: float | None = None,
        retry: bool = False,
        priority: str = "interactive",
    ) -> Permit:
        if retry:
            await anyio.sleep(max(0.0, self._reset.get() - time.time()))
        return Permit(key)

    async def settle(
        self,
        permit: Permit,
        *,
        status: int | None,
        rate_limit: RateLimit | None,
        retry_after: float | None = None,
    ) -> None:
        if status == 429 and rate_limit is not None:
            self._reset.set(rate_limit.reset)

    async def release(self, permit: Permit) -> None:
        pass

    async def snapshot(self, key: QuotaKey) -> Snapshot:
        return Snapshot(limit=0, remaining=0, reset_at=None, in_flight=0, waiting=0)


async def load(
    governor: Governor, *, limit: int, window: int, tasks: int, windows: int
) -> tuple[list[LoggedRequest], float, float]:
    """Run ``tasks`` fetch loops for ``windows`` windows; the log and the run's start and end."""
    simulator = PlumSimulator(limit=limit, window=window)
    day = datetime.fromtimestamp(simulator.dataset.start, UTC).date()
    async with simulator.client(governor=governor, max_retries=0) as client:

        async def fetch_forever() -> None:
            while True:
                try:
                    await client.events.fetch(
                        day, day + timedelta(days=1), period="day", phone="ALL"
                    )
                except PlumError:
                    await anyio.lowlevel.checkpoint()

        await anyio.sleep(window - time.time() % window + 0.001)  # start on a boundary
        start = time.time()
        end = (math.floor(start / window) + windows) * window
        with anyio.move_on_after(end - start):
            async with anyio.create_task_group() as group:
                for _ in range(tasks):
                    group.start_soon(fetch_forever)
    return simulator.requests, start, end


def per_window(
    log: list[LoggedRequest], start: float, end: float, *, window: int
) -> list[tuple[int, int]]:
    """(admitted, refused with a 429) in each window of the run, in order."""
    first, last = math.floor(start / window), math.floor(end / window)
    counts = {index: [0, 0] for index in range(first, last)}
    for request in log:
        if request.group is QuotaGroup.VOICETRENDS and start <= request.time < end:
            slot = counts[math.floor(request.time / window)]
            if request.counted:
                slot[0] += 1
            elif request.status == 429:
                slot[1] += 1
    return [(admitted, refused) for admitted, refused in counts.values()]


def svg_plot(runs: Sequence[tuple[str, list[tuple[int, int]]]], limit: int, window: int) -> str:
    """Grouped bars, one group per window: admitted (solid) and 429s (hatched) per variant,
    under a dashed line at the limit. Plain SVG, so the benchmark needs no plotting library."""
    colours = ("#1b7837", "#2166ac", "#b2182b")
    windows = max(len(counts) for _, counts in runs)
    top = max([limit, *(a + r for _, counts in runs for a, r in counts)]) * 1.1
    width, height, left, bottom, pad = 760, 340, 48, 40, 70
    plot_w, plot_h = width - left - 10, height - bottom - pad
    group_w = plot_w / windows
    bar_w = group_w * 0.8 / len(runs)

    def y(value: float) -> float:
        return pad + plot_h - value / top * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        '<defs><pattern id="hatch" width="4" height="4" patternUnits="userSpaceOnUse">'
        '<path d="M0,4 l4,-4" stroke="#000" stroke-width="1"/></pattern></defs>',
        '<rect width="100%" height="100%" fill="#fff"/>',
        f'<text x="{left}" y="18" font-size="14">Requests reaching the server per window: '
        f"counted (solid), answered 429 (hatched); limit {limit} per {window} s</text>",
    ]
    for tick in range(0, int(top) + 1, 50):
        parts.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#ddd"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{tick}</text>'
        )
    for index, (name, counts) in enumerate(runs):
        colour = colours[index % len(colours)]
        legend_x = left + index * 240
        parts.append(
            f'<rect x="{legend_x}" y="30" width="12" height="12" fill="{colour}"/>'
            f'<text x="{legend_x + 16}" y="41">{name}</text>'
        )
        for window_index, (admitted, refused) in enumerate(counts):
            x = left + window_index * group_w + group_w * 0.1 + index * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{y(admitted):.1f}" width="{bar_w:.1f}" '
                f'height="{y(0) - y(admitted):.1f}" fill="{colour}"/>'
            )
            if refused:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y(admitted + refused):.1f}" width="{bar_w:.1f}" '
                    f'height="{y(admitted) - y(admitted + refused):.1f}" fill="{colour}" '
                    'fill-opacity="0.35"/>'
                    f'<rect x="{x:.1f}" y="{y(admitted + refused):.1f}" width="{bar_w:.1f}" '
                    f'height="{y(admitted) - y(admitted + refused):.1f}" fill="url(#hatch)"/>'
                )
    for window_index in range(windows):
        x = left + (window_index + 0.5) * group_w
        parts.append(
            f'<text x="{x:.1f}" y="{y(0) + 16:.1f}" text-anchor="middle">{window_index + 1}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">window</text>'
        f'<line x1="{left}" x2="{width - 10}" y1="{y(limit):.1f}" y2="{y(limit):.1f}" '
        'stroke="#000" stroke-dasharray="6,4"/></svg>'
    )
    return "\n".join(parts) + "\n"


def summarise(
    log: list[LoggedRequest], start: float, end: float, *, limit: int, window: int
) -> tuple[int, float, int, float, float, float]:
    """(max and mean admitted per window, 429s, lowest and mean quota used, mean idle s)."""
    first, last = math.floor(start / window), math.floor(end / window)
    data = [r for r in log if r.group is QuotaGroup.VOICETRENDS and start <= r.time < end]
    admitted: dict[int, list[float]] = {index: [] for index in range(first, last)}
    for request in data:
        if request.counted:
            admitted[math.floor(request.time / window)].append(request.time)
    counts = [len(times) for times in admitted.values()]
    idle = []
    for index, times in admitted.items():
        window_start = index * window
        # Quota is left until the limit-th admission, or all window long.
        busy_until = times[limit - 1] if len(times) >= limit else window_start + window
        marks = [window_start, *(t for t in sorted(times) if t <= busy_until), busy_until]
        gaps = (later - earlier for earlier, later in itertools.pairwise(marks))
        idle.append(sum(gap for gap in gaps if gap > IDLE_GAP))
    rejected = sum(1 for r in data if r.status == 429)
    used = [count / limit for count in counts]
    return (
        max(counts),
        sum(counts) / len(counts),
        rejected,
        min(used),
        sum(used) / len(used),
        sum(idle) / len(idle),
    )


async def overhead(iterations: int) -> tuple[float, float]:
    """Microseconds per request: LocalGovernor acquire + settle, and aiolimiter acquire."""
    key = QuotaKey(QuotaGroup.VOICETRENDS.value, "benchmark")
    huge = 10**9
    governor = LocalGovernor(huge, 900.0)
    now = time.time()
    answer = RateLimit(huge, huge - 1, (now // 900 + 1) * 900, float(math.floor(now)))
    await governor.settle(await governor.acquire(key), status=200, rate_limit=answer)
    began = time.perf_counter()
    for _ in range(iterations):
        permit = await governor.acquire(key)
        await governor.settle(permit, status=200, rate_limit=answer)
    ours = (time.perf_counter() - began) / iterations * 1e6
    limiter = AsyncLimiter(huge, 1.0)
    began = time.perf_counter()
    for _ in range(iterations):
        await limiter.acquire()
    theirs = (time.perf_counter() - began) / iterations * 1e6
    return ours, theirs


async def telemetry_overhead(requests: int) -> tuple[float, float]:
    """Microseconds per request through PlumClient (an in-memory transport, no governor
    wait), with OpenTelemetry off and on (the SDK recording: spans kept in memory, metrics
    aggregated), in the same run."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import plumvoice_async._client as client_module

    body = b'{"calls": [], "total_calls": 0}'
    headers = {
        "X-RateLimit-Limit": "1000000",
        "X-RateLimit-Remaining": "999999",
        "X-RateLimit-Reset": str((int(time.time()) // 900 + 1) * 900),
        "Date": email.utils.formatdate(usegmt=True),
        "Content-Type": "application/json",
    }
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, content=body, headers=headers)
    )
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    recorder = OpenTelemetry(
        MeterProvider(metric_readers=[InMemoryMetricReader()]), tracer_provider
    )
    loaders = {"off": lambda: None, "on": lambda: recorder}
    timings: dict[str, float] = {}
    original = client_module.load_telemetry
    try:
        for _ in range(2):  # interleaved twice, the best of each kept: the machine is noisy
            for name, loader in loaders.items():
                client_module.load_telemetry = loader
                async with PlumClient(
                    fuse_auth=("bench@example.com", "key"),
                    http_client=httpx.AsyncClient(transport=transport),
                    governor=LocalGovernor(1_000_000, 900.0),
                ) as client:
                    began = time.perf_counter()
                    for _ in range(requests):
                        await client.calls.page(1, 2)
                    spent = (time.perf_counter() - began) / requests * 1e6
                timings[name] = min(timings.get(name, math.inf), spent)
    finally:
        client_module.load_telemetry = original
    return timings["off"], timings["on"]


async def main(arguments: argparse.Namespace) -> None:
    if arguments.telemetry_only:
        off, on = await telemetry_overhead(arguments.requests)
        print(
            f"per request through PlumClient: telemetry off {off:.0f} us, on {on:.0f} us, "
            f"ratio {on / off:.2f}"
        )
        return
    limit, window = arguments.limit, arguments.window
    variants: dict[str, Callable[[], Governor]] = {
        "LocalGovernor": lambda: LocalGovernor(limit, float(window)),
        f"aiolimiter AsyncLimiter({limit}, {window})": lambda: AiolimiterGovernor(limit, window),
        "naive: sleep until Reset after a 429": SleepUntilResetGovernor,
    }
    print(
        f"quota {limit} per {window} s, {arguments.tasks} tasks, {arguments.windows} windows, "
        f"PlumSimulator in process, {date.today()}"
    )
    header = (
        f"{'governor':<40} {'admitted/window':>16} {'429s':>6} "
        f"{'quota used':>17} {'idle, quota left':>17}"
    )
    print(header)
    print(f"{'':<40} {'max':>7} {'mean':>8} {'':>6} {'lowest':>8} {'mean':>8} {'s/window':>17}")
    plotted: list[tuple[str, list[tuple[int, int]]]] = []
    for name, make in variants.items():
        log, start, end = await load(
            make(), limit=limit, window=window, tasks=arguments.tasks, windows=arguments.windows
        )
        plotted.append((name.split(" ")[0].rstrip(":"), per_window(log, start, end, window=window)))
        most, mean, rejected, lowest, used, idle = summarise(
            log, start, end, limit=limit, window=window
        )
        print(
            f"{name:<40} {most:>7} {mean:>8.1f} {rejected:>6} "
            f"{lowest:>8.1%} {used:>8.1%} {idle:>17.2f}"
        )
    if arguments.svg is not None:
        arguments.svg.parent.mkdir(parents=True, exist_ok=True)
        arguments.svg.write_text(svg_plot(plotted, limit, window))
        print(f"\nper-window plot written to {arguments.svg}")
    ours, theirs = await overhead(arguments.iterations)
    print(
        f"\nper request (asyncio, no I/O): LocalGovernor acquire+settle {ours:.2f} us, "
        f"aiolimiter acquire {theirs:.2f} us, ratio {ours / theirs:.2f}"
    )
    off, on = await telemetry_overhead(arguments.requests)
    print(
        f"per request through PlumClient: telemetry off {off:.0f} us, on {on:.0f} us, "
        f"ratio {on / off:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=150)
    parser.add_argument("--window", type=int, default=4, help="seconds (the simulator's unit)")
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--svg", type=Path, help="also draw the requests per window here")
    parser.add_argument("--requests", type=int, default=2_000, help="for the telemetry ratio")
    parser.add_argument(
        "--telemetry-only", action="store_true", help="measure only telemetry's overhead"
    )
    anyio.run(main, parser.parse_args())
