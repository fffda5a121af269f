"""``Archive.sync`` against the simulator, on SQLite and a real PostgreSQL, asyncio and trio."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import anyio
import attrs
import pytest

from plumvoice_async import Call, CallType, InvalidParameterError
from plumvoice_async._core.params import DETAILS_RETENTION_SECONDS
from plumvoice_async.archive import (
    Archive,
    ArchiveError,
    ArchiveUnavailableError,
    SchemaVersionError,
)
from plumvoice_async.testing import PlumSimulator

from .account import DAY, NOW, SIZE, SPACING, served, simulator
from .databases import Database, call_row, event_rows

pytestmark = pytest.mark.anyio


def paths(sim: PlumSimulator, resource: str) -> list[list[str]]:
    """The path segments after /api/ of every request to ``resource``."""
    return [
        request.path.split("/")[3:]
        for request in sim.requests
        if request.path.split("/")[2] == resource
    ]


async def test_a_first_sync_stores_every_call_and_every_log_once(database: Database):
    sim = simulator()
    async with sim.client() as client, Archive.open(database.url) as archive:
        result = await archive.sync(client, page_size=100)
    calls = served(sim)
    assert database.calls() == {call.session_id: call_row(call, "archived") for call in calls}
    expected_events = {
        call.session_id: event_rows(sim.dataset.details(call.session_id) or []) for call in calls
    }
    assert database.events() == {key: rows for key, rows in expected_events.items() if rows}
    assert result.new_calls == SIZE
    assert result.updated_calls == 0
    assert result.archived_details == SIZE
    assert result.new_events == sum(len(rows) for rows in expected_events.values())
    assert result.expired_details == 0
    # 3 pages of calls, then the pending logs by all_logs ranges of 100: never one per call.
    assert result.requests == len(sim.requests) == 3 + 3
    assert paths(sim, "call") == []


async def test_a_second_sync_with_nothing_new_spends_one_request_and_writes_nothing(
    database: Database,
):
    sim = simulator()
    async with sim.client() as client, Archive.open(database.url) as archive:
        await archive.sync(client)
        before = (database.calls(), database.events())
        await sim.clock.advance(300)  # type: ignore[attr-defined]
        result = await archive.sync(client)
    assert (result.new_calls, result.updated_calls, result.new_events) == (0, 0, 0)
    assert result.requests == 1  # the overlap re-read, one page
    assert (database.calls(), database.events()) == before


async def test_a_late_call_inside_the_overlap_is_picked_up_and_its_log_archived(
    database: Database,
):
    sim = simulator()
    async with sim.client() as client, Archive.open(database.url) as archive:
        await archive.sync(client)
        # Listed only now, though it started ten minutes before the last run's end.
        late = Call(
            dest="6177123000",
            src="6175550000",
            start=datetime.fromtimestamp(NOW - 600, UTC),
            end=datetime.fromtimestamp(NOW - 60, UTC),
            session_id="999999;001;" + str(NOW - 700),
            type=CallType.INBOUND,
            log=True,
        )
        sim.dataset.insert_call(late)
        await sim.clock.advance(900)  # type: ignore[attr-defined]
        result = await archive.sync(client)
    assert result.new_calls == 1
    assert result.archived_details == 1
    assert database.calls()[late.session_id] == call_row(late, "archived")
    assert database.count("plum_calls") == SIZE + 1


async def test_a_changed_call_is_updated_in_place_not_doubled(database: Database):
    sim = simulator(start=NOW - SIZE * SPACING)  # the last call starts in the last 15 minutes
    async with sim.client() as client, Archive.open(database.url) as archive:
        await archive.sync(client, details=False)
        last = served(sim)[-1]
        changed = Call(
            last.dest,
            last.src,
            last.start,
            last.end + timedelta(seconds=5),
            last.session_id,
            last.type,
            last.log,
        )
        sim.dataset.delete_call(last.session_id)
        sim.dataset.insert_call(changed)
        result = await archive.sync(client, details=False)
    assert (result.new_calls, result.updated_calls) == (0, 1)
    assert database.count("plum_calls") == SIZE
    assert database.calls()[last.session_id] == call_row(changed, "pending")


async def test_a_call_changed_after_its_log_was_archived_has_its_log_read_again(
    database: Database,
):
    """Its log may have changed with it (the simulator's hang-up line moves with the end): the
    new log replaces the old one, line for line. (Found by the kill -9 churn test, which failed
    1 run in 8: the old log stayed.)"""
    sim = simulator(start=NOW - SIZE * SPACING)  # the last call starts in the last 15 minutes
    async with sim.client() as client, Archive.open(database.url) as archive:
        await archive.sync(client)
        last = served(sim)[-1]
        assert last.log
        before = sim.dataset.details(last.session_id)
        changed = attrs.evolve(last, end=last.end + timedelta(seconds=7))
        sim.dataset.delete_call(last.session_id)
        sim.dataset.insert_call(changed)
        after = sim.dataset.details(last.session_id)
        assert after != before  # else this test proves nothing
        result = await archive.sync(client)
    assert (result.new_calls, result.updated_calls, result.archived_details) == (0, 1, 1)
    assert database.calls()[last.session_id] == call_row(changed, "archived")
    assert database.events()[last.session_id] == event_rows(after or [])


async def test_logs_past_five_days_are_marked_expired_counted_and_never_asked_again(
    database: Database,
):
    sim = simulator()
    async with sim.client() as client, Archive.open(database.url) as archive:
        await archive.sync(client, details=False)
        await sim.clock.advance(2 * DAY)  # type: ignore[attr-defined]
        cutoff = NOW + 2 * DAY - DETAILS_RETENTION_SECONDS + 60
        old = {c.session_id for c in served(sim) if c.start.timestamp() <= cutoff}
        assert 0 < len(old) < SIZE
        first = await archive.sync(client)
        sim.requests.clear()
        second = await archive.sync(client)
    assert first.expired_details == len(old)
    assert first.archived_details == SIZE - len(old)
    statuses = database.calls()
    assert {key for key, row in statuses.items() if row[-1] == "expired"} == old
    assert {key for key, row in statuses.items() if row[-1] == "archived"} == (
        {c.session_id for c in served(sim)} - old
    )
    assert set(database.events()) <= statuses.keys() - old
    # The second run asks for no log at all: expired ones are never asked for again.
    assert second.expired_details == 0
    assert paths(sim, "all_logs") == []


async def test_pending_logs_go_oldest_first_by_ranges(database: Database):
    sim = simulator()
    async with sim.client() as client, Archive.open(database.url) as archive:
        await archive.sync(client, details=False)
        sim.requests.clear()
        await archive.sync(client, page_size=100)
    ranges = paths(sim, "all_logs")
    assert ranges  # one range (the calls are 15 minutes apart), three pages of it
    starts = [int(segments[0].partition("?")[0]) for segments in ranges]
    assert starts == sorted(starts)
    assert starts[0] == int(served(sim)[0].start.timestamp())
    assert len(ranges) == 3


async def test_a_cancelled_sync_resumes_from_its_checkpoint_and_loses_nothing(
    database: Database,
):
    sim = simulator()
    with anyio.CancelScope() as scope:
        pages = 0

        def cancel_on_third_page(offset: int, limit: int) -> None:
            nonlocal pages
            pages += 1
            if pages == 3:
                scope.cancel()

        sim.on_page = cancel_on_third_page
        async with sim.client() as client, Archive.open(database.url) as archive:
            await archive.sync(client, page_size=50, details=False)
    assert scope.cancelled_caught
    # The pages stored are exactly those the checkpoint says (the third one may have made it:
    # a store, once begun, commits), and the rerun's first request starts there.
    stored = database.count("plum_calls")
    assert stored in (100, 150)
    (state,) = database.query("SELECT value FROM plum_sync_state WHERE key <> ?", "schema_version")
    assert json.loads(state[0])["walk"]["offset"] == stored
    offsets: list[int] = []
    sim.on_page = lambda offset, limit: offsets.append(offset)
    async with sim.client() as client, Archive.open(database.url) as archive:
        result = await archive.sync(client, page_size=50, details=False)
    assert stored - 1 <= offsets[0] <= stored  # (one row back: the walk checks its place)
    assert result.new_calls == SIZE - stored
    assert database.count("plum_calls") == SIZE
    assert database.calls() == {c.session_id: call_row(c, "pending") for c in served(sim)}


async def test_a_newer_schema_is_refused_and_nothing_is_written(database: Database):
    sim = simulator()
    async with Archive.open(database.url):
        pass
    database.execute("UPDATE plum_sync_state SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(SchemaVersionError, match="version 99, newer"):
        async with sim.client() as client, Archive.open(database.url) as archive:
            await archive.sync(client)
    assert database.query("SELECT key, value FROM plum_sync_state") == [("schema_version", "99")]
    assert database.count("plum_calls") == 0
    assert sim.requests == []


async def test_an_unknown_scheme_is_refused_without_its_password():
    with pytest.raises(InvalidParameterError, match="url") as caught:
        Archive.open("mysql://me:hunter2@db.example.com/plum")
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(Archive.open("postgresql://me:hunter2@localhost/plum"))


async def test_sqlite_in_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ArchiveError, match="no folder"):
        async with Archive.open(f"sqlite:///{tmp_path}/missing/plum.db"):
            pass


async def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(ArchiveError, match="not a database"):
        async with Archive.open(f"sqlite:///{path}"):
            pass
    assert path.read_bytes().startswith(b"these are my notes")


async def test_an_unreachable_postgres_is_unavailable():
    with pytest.raises(ArchiveUnavailableError, match="cannot reach") as caught:
        async with Archive.open("postgresql://me:hunter2@127.0.0.1:1/plum"):
            pass
    assert "hunter2" not in str(caught.value)


async def test_a_postgres_role_without_permission_gets_a_clear_error_and_no_tables(
    postgres_server,
):
    url = postgres_server.new_database()
    schema = url.rpartition("%3D")[2]
    postgres_server.execute(f"CREATE ROLE reader_{schema} LOGIN PASSWORD 'reader-secret'")
    reader = postgres_server.new_database(user=f"reader_{schema}", password="reader-secret")
    # It may look into its schema (USAGE) but not create tables there (no CREATE).
    postgres_server.execute(
        f"GRANT USAGE ON SCHEMA {reader.rpartition('%3D')[2]} TO reader_{schema}"
    )
    with pytest.raises(ArchiveError, match="no permission") as caught:
        async with Archive.open(reader):
            pass
    assert "reader-secret" not in str(caught.value)
    tables = Database(url).query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
        reader.rpartition("%3D")[2],
    )
    assert tables == []


async def test_sync_outside_async_with_is_refused():
    sim = simulator()
    async with sim.client() as client:
        with pytest.raises(RuntimeError, match="not open"):
            await Archive.open("sqlite:///unused.db").sync(client)


BAD_ARGUMENTS = [
    ("overlap", -1),
    ("max_gap", "1"),
    ("page_size", 0),
    ("page_size", 10_001),
    ("number", "12-34"),
    ("account", ""),
    ("account", "a\x00b"),  # stored as-is in plum_calls, it would fail there every run
    ("since", datetime(2026, 1, 1)),
    ("since", NOW + 1),  # the future: it would read nothing, silently
    ("since", date(2099, 1, 1)),
    ("since", date(1969, 12, 31)),  # was sent on as a negative start
]


async def test_bad_arguments_are_refused_before_any_request(database):
    sim = simulator()
    async with sim.client() as client, Archive.open(database.url) as archive:
        for argument, value in BAD_ARGUMENTS:
            with pytest.raises(InvalidParameterError, match=argument):
                await archive.sync(client, **{argument: value})
    assert sim.requests == []
    assert database.count("plum_calls") == 0


async def test_a_page_whose_checkpoint_fails_is_rolled_back_with_it(database: Database):
    """Rows and checkpoint are one transaction: when writing the third page's checkpoint
    fails (NULL in a NOT NULL column), that page's rows are not stored either."""
    sim = simulator()
    async with sim.client() as client, Archive.open(database.url) as archive:
        store = archive._store
        assert store is not None
        real = store.store_calls
        pages = 0

        def third_checkpoint_fails(account, calls, key, value):
            nonlocal pages
            pages += 1
            return real(account, calls, key, None if pages == 3 else value)

        store.store_calls = third_checkpoint_fails  # type: ignore[method-assign]
        with pytest.raises(ArchiveError):
            await archive.sync(client, page_size=50, details=False)
        assert database.count("plum_calls") == 100
        store.store_calls = real  # type: ignore[method-assign]
        result = await archive.sync(client, page_size=50, details=False)
    assert result.new_calls == SIZE - 100
    assert database.calls() == {c.session_id: call_row(c, "pending") for c in served(sim)}


async def test_a_resumed_walk_whose_last_call_is_gone_reads_its_range_again(database: Database):
    """The checkpoint's last call was deleted at Plum, so the walk cannot verify its place
    (``PagingError``): the range is read again from its start, and nothing is lost."""
    sim = simulator()
    async with sim.client() as client, Archive.open(database.url) as archive:
        store = archive._store
        assert store is not None
        real = store.store_calls

        def fail_third(account, calls, key, value):
            fail_third.pages += 1  # type: ignore[attr-defined]
            return real(account, calls, key, None if fail_third.pages == 3 else value)  # type: ignore[attr-defined]

        fail_third.pages = 0  # type: ignore[attr-defined]
        store.store_calls = fail_third  # type: ignore[method-assign]
        with pytest.raises(ArchiveError):
            await archive.sync(client, page_size=50, details=False)
        store.store_calls = real  # type: ignore[method-assign]
    (state,) = database.query("SELECT value FROM plum_sync_state WHERE key <> ?", "schema_version")
    gone = json.loads(state[0])["walk"]["after"]
    before = database.calls()
    sim.dataset.delete_call(gone)
    async with sim.client() as client, Archive.open(database.url) as archive:
        result = await archive.sync(client, page_size=50, details=False)
    assert result.new_calls == SIZE - 100
    assert database.calls() == {
        **{c.session_id: call_row(c, "pending") for c in served(sim)},
        gone: before[gone],
    }
