"""A clock that moves only when a test says so."""

from __future__ import annotations

import heapq
import itertools

import anyio
from anyio.lowlevel import checkpoint

from .._core import arguments
from .._errors import InvalidParameterError

__all__ = ["FakeClock"]


async def _quiesce() -> None:
    """Let every other task run until all are blocked.

    A few bare checkpoints first: they settle the common case cheaply, where anyio's
    ``wait_all_tasks_blocked`` on asyncio polls every task of the loop and costs far more
    with a thousand waiters. It still has the last word, so nothing runnable is skipped.
    """
    for _ in range(8):
        await checkpoint()
    await anyio.wait_all_tasks_blocked()


class _Timeline:
    """Strictly private: the instant shared by a clock and its skewed views, and the sleepers."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.sleepers: list[tuple[float, int, anyio.Event]] = []
        self.order = itertools.count()


class FakeClock:
    """A ``Clock`` for tests: time stands still until ``advance`` moves it.

    ``time()`` is ``start`` plus the elapsed time plus this view's skew; ``skewed(s)`` returns a
    view of the same timeline whose wall clock is ``s`` seconds ahead (negative: behind), which
    is how a test puts the client's clock 30 minutes off the simulator's. Sleepers wake in
    deadline order as ``advance`` passes their deadlines.
    """

    __slots__ = ("_skew", "_timeline")

    def __init__(
        self,
        start: float = 1_700_000_000.0,
        *,
        _timeline: _Timeline | None = None,
        _skew: float = 0.0,
    ) -> None:
        start = arguments.finite(start, name="start")
        self._timeline = _timeline if _timeline is not None else _Timeline(start)
        self._skew = _skew

    def skewed(self, seconds: float) -> FakeClock:
        """A view of the same timeline with its wall clock ``seconds`` off this one's."""
        seconds = arguments.finite(seconds, name="seconds")
        return FakeClock(_timeline=self._timeline, _skew=self._skew + seconds)

    def monotonic(self) -> float:
        return self._timeline.now

    def time(self) -> float:
        return self._timeline.now + self._skew

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await checkpoint()
            return
        timeline = self._timeline
        woken = anyio.Event()
        heapq.heappush(timeline.sleepers, (timeline.now + seconds, next(timeline.order), woken))
        await woken.wait()

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper at its deadline and letting it run."""
        if arguments.finite(seconds, name="seconds") < 0:
            raise InvalidParameterError("seconds", seconds, "a clock cannot go back")
        timeline = self._timeline
        target = timeline.now + seconds
        await _quiesce()
        while timeline.sleepers and timeline.sleepers[0][0] <= target:
            deadline, _, woken = heapq.heappop(timeline.sleepers)
            timeline.now = max(timeline.now, deadline)
            woken.set()
            await _quiesce()
        timeline.now = target
        await _quiesce()

    def __repr__(self) -> str:
        return f"FakeClock(time={self.time():.3f}, sleepers={len(self._timeline.sleepers)})"
