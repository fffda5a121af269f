"""The simulated Plum account the archive's tests sync: 300 calls 15 minutes apart, on a fake
clock at a UTC noon, with a quota that never gets in the way."""

from __future__ import annotations

from plumvoice_async import Call
from plumvoice_async.testing import CallDataset, FakeClock, PlumSimulator

__all__ = ["DAY", "NOW", "SIZE", "SPACING", "served", "simulator"]

NOW = 1_700_000_000 // 86_400 * 86_400 + 43_200  # a UTC noon
DAY = 86_400
SIZE = 300
SPACING = 900  # 300 calls over about 3 days, all inside the 5-day window at NOW


def simulator(*, size: int = SIZE, start: int = NOW - 4 * DAY) -> PlumSimulator:
    return PlumSimulator(
        CallDataset(size=size, start=start, spacing=SPACING),
        clock=FakeClock(start=NOW),
        limit=100_000,
    )


def served(sim: PlumSimulator) -> list[Call]:
    """Every call the simulator serves, in order."""
    dataset = sim.dataset
    return dataset.page(0, 2 * NOW, offset=0, limit=len(dataset))
