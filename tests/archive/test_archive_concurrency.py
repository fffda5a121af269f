"""Several archives on one database at once: they cooperate, nothing doubled, nothing lost."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import anyio
import attrs
import pytest

from plumvoice_async.archive import Archive
from plumvoice_async.archive._postgres import open_postgres
from plumvoice_async.archive._sqlite import open_sqlite
from plumvoice_async.testing import CallDataset, FakeClock, PlumSimulator

from .account import DAY, NOW
from .databases import Database, call_row, event_rows

pytestmark = pytest.mark.anyio

SIZE = 200
STATUSES = ("archived", "pending")


async def test_archives_entered_at_once_on_an_empty_database_all_open(database: Database):
    """Each creates the tables if they are missing: one does, the others wait and find them
    (before: PostgreSQL's second CREATE TABLE failed, 'relation already exists', and SQLite's
    switch to WAL now and then 'database is locked')."""
    errors: list[BaseException] = []

    async def enter() -> None:
        try:
            async with Archive.open(database.url):
                pass
        except Exception as exc:  # collected, so every task runs to its end
            errors.append(exc)

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(enter)
    assert errors == []
    assert database.query("SELECT value FROM plum_sync_state") == [("1",)]


async def test_two_syncs_of_one_account_at_once_store_every_call_and_log_once(
    database: Database,
):
    """Two archives (two connections) sync the same account into one database at the same
    time, page by page interleaved, while calls are inserted and deleted between pages."""
    sim = PlumSimulator(
        CallDataset(size=SIZE, start=NOW - 4 * DAY, spacing=500),
        clock=FakeClock(start=NOW),
        limit=100_000,
    )
    served = sim.dataset.page(0, 2 * NOW, offset=0, limit=SIZE)
    pages = 0

    def churn(offset: int, limit: int) -> None:
        nonlocal pages
        pages += 1
        if pages % 5 == 0:  # one of the first calls leaves, now and then
            sim.dataset.delete_call(served[pages // 5].session_id)

    sim.on_page = churn
    async with Archive.open(database.url):
        pass  # the tables, so the two below race on rows, not on creating them

    async def one_sync() -> None:
        async with sim.client() as client, Archive.open(database.url) as archive:
            await archive.sync(client, page_size=37, max_gap=600)

    async with anyio.create_task_group() as group:
        group.start_soon(one_sync)
        group.start_soon(one_sync)
    sim.on_page = None
    # Every call served at the start, each once; the log of each still served archived (a
    # call deleted before its log was fetched may stay pending: its log is gone).
    stored = database.calls()
    assert stored.keys() == {c.session_id for c in served}
    for call in served:
        live = sim.dataset.get(call.session_id) is not None
        assert stored[call.session_id] in (
            [call_row(call, "archived")] if live else [call_row(call, s) for s in STATUSES]
        )
    expected = {
        c.session_id: event_rows(sim.dataset.details(c.session_id) or [])
        for c in served
        if sim.dataset.get(c.session_id) is not None
    }
    events = database.events()
    assert {key: events[key] for key in expected} == expected


def test_sqlite_files_opened_by_many_at_once_all_open(tmp_path):
    """A new file's switch to WAL takes an exclusive lock, and SQLite refused the others at
    once ("database is locked") without waiting: about one try in fifteen failed before.
    Threads released together, 60 fresh files."""
    for trial in range(60):
        path = str(tmp_path / f"{trial}.db")
        start = threading.Barrier(6)
        errors: list[Exception] = []

        def open_one(
            path: str = path, start: threading.Barrier = start, errors: list[Exception] = errors
        ) -> None:
            start.wait()
            try:
                store = open_sqlite(path)
                store.migrate()
                store.close()
            except Exception as exc:  # collected: each thread runs to its end
                errors.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], trial


def test_two_syncs_whose_row_locks_cross_are_not_failed_by_a_deadlock(postgres_server):
    """One sync updates changed calls (in its page's order) while another archives their logs
    (in PostgreSQL's order): the row locks cross, and PostgreSQL aborts one transaction
    ("deadlock detected": a sync failed). It is run again."""
    dataset = CallDataset(size=300, start=NOW - DAY, spacing=60)
    # Ids descending here, ascending in the index the other's UPDATE walks: fully crossed.
    calls = sorted(dataset.page(0, 2 * NOW, offset=0, limit=300), key=lambda c: c.session_id)[::-1]
    detailed = dataset.detailed_page(0, 2 * NOW, offset=0, limit=300)
    url = postgres_server.new_database()
    first, second = open_postgres(url), open_postgres(url)
    try:
        first.migrate()
        first.store_calls("acct", calls, "key", "{}")
        for trial in range(60):
            Database(url).execute("UPDATE plum_calls SET details_status = 'pending'")
            changed = [
                attrs.evolve(call, end=call.end + timedelta(seconds=trial + 1)) for call in calls
            ]
            start = threading.Barrier(2)
            errors: list[Exception] = []

            def run(
                work: Callable[[], object],
                start: threading.Barrier = start,
                errors: list[Exception] = errors,
            ) -> None:
                start.wait()
                try:
                    work()
                except Exception as exc:  # collected: both threads run to their end
                    errors.append(exc)

            threads = [
                threading.Thread(
                    target=run,
                    args=(lambda changed=changed: first.store_calls("acct", changed, "k", "{}"),),
                ),
                threading.Thread(
                    target=run, args=(lambda: second.store_details("acct", detailed),)
                ),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert errors == [], trial
    finally:
        first.close()
        second.close()
    stored = Database(url).calls()
    # The last trial's calls, each archived, or pending again when its change committed after
    # its log (a call changed since its log was archived has its log read again).
    assert stored.keys() == {call.session_id for call in changed}
    for call in changed:
        assert stored[call.session_id] in (call_row(call, "archived"), call_row(call, "pending"))
