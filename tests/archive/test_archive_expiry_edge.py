"""The 5-day edge of the detailed logs moves while a run fetches them (an injected clock)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from plumvoice_async import Call, CallType
from plumvoice_async._core.archive_plan import EXPIRY_SAFETY, expires_at
from plumvoice_async._core.params import DETAILS_RETENTION_SECONDS
from plumvoice_async.archive import Archive

from .account import NOW, SIZE, served, simulator
from .databases import Database, call_row

pytestmark = pytest.mark.anyio

# --- The 5-day edge moves while a run fetches logs ------------------------------------------


async def test_logs_expiring_during_a_long_details_run_are_given_up_not_a_crash(
    database: Database,
):
    """Each all_logs request takes 1000 s (a quota wait), so pending logs, 900 s apart, expire
    at Plum faster than one range a request walks them: the run must give those up (marked,
    counted) and archive the rest, not die of the client's own 5-day check."""
    sim = simulator()
    async with sim.client() as client, Archive.open(database.url) as archive:
        await archive.sync(client, details=False)
        oldest = int(served(sim)[0].start.timestamp())
        await sim.clock.advance(expires_at(oldest) - 30 - NOW)  # type: ignore[attr-defined]

        async def slow(offset: int, limit: int) -> None:
            await sim.clock.advance(1_000)  # type: ignore[attr-defined]

        sim.on_page = slow
        result = await archive.sync(client, max_gap=0)
    statuses = [row[-1] for row in database.calls().values()]
    assert 0 < result.archived_details == statuses.count("archived")
    assert 0 < result.expired_details == statuses.count("expired")
    assert result.archived_details + result.expired_details == SIZE


async def test_a_range_whose_pages_outlast_the_5_day_edge_is_walked_to_its_end(
    database: Database,
):
    """One range of 300 logs in pages of 50; each page takes 120 s, so the range's start is
    past 5 days old by its second page: the walk was judged when it began and goes on."""
    sim = simulator()
    async with sim.client() as client, Archive.open(database.url) as archive:
        await archive.sync(client, details=False)
        oldest = int(served(sim)[0].start.timestamp())
        # The calls' page takes 120 s too: the plan sees the oldest log 30 s from expiry.
        await sim.clock.advance(expires_at(oldest) - 150 - NOW)  # type: ignore[attr-defined]

        async def slow(offset: int, limit: int) -> None:
            await sim.clock.advance(120)  # type: ignore[attr-defined]

        sim.on_page = slow
        result = await archive.sync(client, page_size=50)
    assert result.archived_details == SIZE
    assert database.calls() == {c.session_id: call_row(c, "archived") for c in served(sim)}


async def test_the_5_day_edge_to_the_second_expired_and_expiring_soon(database: Database):
    """Logs whose calls started at the edge, one second either side, and an hour on: which
    are given up (``expired_details``) and which are counted as expiring within the hour."""
    edge = NOW - DETAILS_RETENTION_SECONDS + EXPIRY_SAFETY  # expires_at(edge) == NOW
    starts = {
        "expired": edge,
        "in 1 s": edge + 1,
        "in 1 h": edge + 3_600,
        "in 1 h 1 s": edge + 3_601,
    }
    sim = simulator(size=0)
    calls = {
        name: Call(
            dest="6177123000",
            src="6175550000",
            start=datetime.fromtimestamp(start, UTC),
            end=datetime.fromtimestamp(start + 20, UTC),
            session_id=f"{100_000 + i};001;{start - 3}",
            type=CallType.INBOUND,
            log=True,
        )
        for i, (name, start) in enumerate(starts.items())
    }
    sim.dataset.insert_calls(calls.values())
    async with sim.client() as client, Archive.open(database.url) as archive:
        listed = await archive.sync(client, details=False)
        fetched = await archive.sync(client)
    assert listed.new_calls == 4
    assert listed.expiring_soon == 2  # in 1 s and in 1 h; not the expired one, not 1 h 1 s
    assert fetched.expired_details == 1
    assert fetched.archived_details == 3
    assert fetched.expiring_soon == 0
    statuses = {name: database.calls()[call.session_id][-1] for name, call in calls.items()}
    assert statuses == {
        "expired": "expired",
        "in 1 s": "archived",
        "in 1 h": "archived",
        "in 1 h 1 s": "archived",
    }
