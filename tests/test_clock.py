from __future__ import annotations

import anyio
import pytest

from plumvoice_async.testing import FakeClock

pytestmark = pytest.mark.anyio


async def test_sleepers_wake_in_deadline_order_as_time_advances():
    clock = FakeClock(start=1000.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, "late", 5.0)
        tg.start_soon(sleeper, "early", 2.0)
        await clock.advance(1.0)
        assert woke == []
        await clock.advance(10.0)
    assert woke == [("early", 1002.0), ("late", 1005.0)]
    assert clock.monotonic() == 1011.0


async def test_skewed_view_shares_time_but_not_wall_clock():
    server = FakeClock(start=1000.0)
    client = server.skewed(1800.0)
    await server.advance(3.0)
    assert client.monotonic() == server.monotonic()
    assert client.time() - server.time() == 1800.0


async def test_clock_refuses_to_go_back():
    with pytest.raises(ValueError, match="cannot go back"):
        await FakeClock().advance(-1.0)
