"""``Archive.sync`` cancelled at each of its awaits in turn: the database stays consistent and
the next sync completes it exactly (nothing lost, nothing doubled)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from plumvoice_async.archive import Archive
from plumvoice_async.testing import CallDataset, FakeClock, PlumSimulator

from .account import DAY, NOW
from .databases import Database, call_row, event_rows

pytestmark = pytest.mark.anyio

SIZE = 60


async def cancelled_at(sim: PlumSimulator, url: str, k: int) -> int:
    """Run a sync cancelled at its ``k``-th await; how many awaits it reached."""
    awaits = 0
    with anyio.CancelScope() as scope:

        def step() -> None:
            nonlocal awaits
            awaits += 1
            if awaits == k:
                scope.cancel()

        sim.on_page = lambda offset, limit: step()
        async with sim.client() as client, Archive.open(url) as archive:
            real = archive._run

            async def counted(function: Any, *args: Any) -> Any:
                step()
                return await real(function, *args)

            archive._run = counted  # type: ignore[method-assign]
            await archive.sync(client, page_size=25)
    sim.on_page = None
    return awaits


async def test_a_sync_cancelled_at_every_await_in_turn_is_completed_by_the_next(
    database: Database,
):
    """The k-th await (a database call or a page request) is cancelled, for every k until a
    run has no k-th await; after each, the state is whole and a rerun stores exactly what the
    server serves."""
    sim = PlumSimulator(
        CallDataset(size=SIZE, start=NOW - 2 * DAY, spacing=1_800),
        clock=FakeClock(start=NOW),
        limit=100_000,
    )
    served = sim.dataset.page(0, 2 * NOW, offset=0, limit=SIZE)
    expected_calls = {c.session_id: call_row(c, "archived") for c in served}
    expected_events = {
        c.session_id: event_rows(sim.dataset.details(c.session_id) or []) for c in served
    }
    async with Archive.open(database.url):
        pass  # the tables, emptied before each attempt
    k = 0
    while True:
        k += 1
        database.execute("DELETE FROM plum_calls")
        database.execute("DELETE FROM plum_call_events")
        database.execute("DELETE FROM plum_sync_state WHERE key <> 'schema_version'")
        awaits = await cancelled_at(sim, database.url, k)
        for (value,) in database.query(
            "SELECT value FROM plum_sync_state WHERE key <> 'schema_version'"
        ):
            json.loads(value)  # whole, whatever the moment
        async with sim.client() as client, Archive.open(database.url) as archive:
            await archive.sync(client, page_size=25)
        assert database.calls() == expected_calls, k
        assert database.events() == expected_events, k
        if awaits < k:  # this run had no k-th await: every one was tried
            break
    assert k > 10
