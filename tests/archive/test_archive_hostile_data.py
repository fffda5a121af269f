"""Hostile rows from the server: quotes, NULs, huge strings, deep nesting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from plumvoice_async import CallEvent, CallType, DetailedCall
from plumvoice_async.archive import Archive

from .account import DAY, NOW, simulator
from .databases import Database

pytestmark = pytest.mark.anyio

# --- Hostile data -----------------------------------------------------------------------------


def hostile_call(session_id: str, text: str) -> DetailedCall:
    moment = datetime.fromtimestamp(NOW - 600, UTC)
    data: object = {"leaf": text}
    for _ in range(200):
        data = {"k": [data, text[:3]]}
    return DetailedCall(
        dest="6177123000",
        src=text,
        start=moment,
        end=moment,
        session_id=session_id,
        type=CallType.INBOUND,
        log=True,
        detail=[
            CallEvent(
                line=text, data={text: text, "nested": data}, event_class=text, timestamp=moment
            ),
            CallEvent(line="x" * 2_000_000, data={}, event_class="info", timestamp=moment),
        ],
    )


async def test_quotes_nuls_huge_and_deep_data_are_archived_and_do_not_block_the_archive(
    database: Database,
):
    """A NUL in a text field or a JSON string: PostgreSQL's text and jsonb cannot hold it, nor
    SQLite's JSON (the id lists), so it is stored as U+FFFD; the run goes on, and the calls after
    it are archived too (before: on PostgreSQL every run failed on that page, forever; on
    SQLite a session id with a NUL stayed pending forever)."""
    sim = simulator(size=20, start=NOW - DAY)
    hostile = hostile_call(
        "123456;001;" + str(NOW - 700), "a\x00'\"; DROP TABLE plum_calls;--\\u0000"
    )
    odd_id = hostile_call("9'9\"\x00;--;" + str(NOW - 650), "b")
    sim.dataset.insert_calls([hostile, odd_id])
    async with sim.client() as client, Archive.open(database.url) as archive:
        result = await archive.sync(client)
    assert result.new_calls == 22
    assert result.archived_details == 22
    nul = "\ufffd"
    assert database.calls()[odd_id.session_id.replace("\x00", nul)][-1] == "archived"
    row = database.calls()[hostile.session_id]
    assert row[1] == hostile.src.replace("\x00", nul)
    events = database.events()[hostile.session_id]
    first = events[0]
    expected_text = hostile.detail[0].line.replace("\x00", nul)
    assert (first[2], first[3]) == (expected_text, expected_text)
    assert first[4][expected_text] == expected_text
    assert len(events[1][3]) == 2_000_000
