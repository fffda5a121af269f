"""The clock seam: the only place the shell reads time or sleeps.

The core never reads a clock; the shell asks a ``Clock`` so tests can inject
``plumvoice_async.testing.FakeClock`` and run a 15-minute window in microseconds.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Two readings and one wait: all the time the shell needs."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps; the governor anchors every deadline on it."""
        ...

    def time(self) -> float:
        """Wall-clock UNIX time; only for validation (the 5-day window) and header fallbacks."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (cancellable)."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic``, ``time.time`` and ``anyio.sleep``."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"
