"""``client.calls.export`` and ``call_details.export``: exactly once, through kills and cancels.

The library-level tests of the checkpointed export: a real process running the export is
killed with SIGKILL at random moments and the export resumed each time; a cancellation lands
between pages; refusals come before anything is sent or written. (``tests/test_cli.py`` runs
the same through the ``plumvoice`` command once, end to end.)
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plumvoice_async import ExportError, ExportResult, InvalidParameterError
from plumvoice_async._encoding import (
    CALL_COLUMNS,
    DETAILED_CALL_COLUMNS,
    CsvEncoder,
    JsonLinesEncoder,
    call_row,
    detailed_call_row,
)
from plumvoice_async._export import read_checkpoint, write_checkpoint
from plumvoice_async._models import CallEvent, CallType, DetailedCall
from plumvoice_async.testing import CallDataset, PlumSimulator, serve

from .cli_support import plum_env

DAY = 86_400


def recent(size: int) -> CallDataset:
    """Calls from four days before today's UTC midnight: inside the 5 days of detailed logs."""
    return CallDataset(size=size, start=(int(time.time()) // DAY - 4) * DAY)


def session_ids(path: Path) -> list[str]:
    return [json.loads(line)["session_id"] for line in path.read_bytes().splitlines()]


def expected_ids(simulator: PlumSimulator, start: int, end: int) -> list[str]:
    return [call.session_id for call in simulator.dataset.page(start, end, limit=10_000)]


@pytest.mark.anyio
async def test_an_export_writes_every_call_once_and_says_what_it_spent(tmp_path: Path):
    simulator = PlumSimulator(recent(1_000))
    start, end = simulator.dataset.start, simulator.dataset.start + 4 * DAY
    out = tmp_path / "calls.jsonl"
    seen: list[tuple[int, int | None]] = []
    async with simulator.client() as client:
        result = await client.calls.export(
            start, end, out, page_size=300, progress=lambda rows, total: seen.append((rows, total))
        )
        again = await client.calls.export(start, end, out, page_size=300, resume=True)
    assert session_ids(out) == expected_ids(simulator, start, end)
    assert result == ExportResult(rows=1_000, pages=4, requests=4, path=out)
    assert seen[0] == (0, None)
    assert seen[-1] == (1_000, 1_000)
    # Complete: resuming spends nothing and writes nothing.
    assert again == ExportResult(rows=1_000, pages=0, requests=0, path=out, already_complete=True)
    assert len(simulator.requests) == 4


@pytest.mark.anyio
async def test_detailed_calls_export_as_csv(tmp_path: Path):
    simulator = PlumSimulator(recent(40))
    start, end = simulator.dataset.start, simulator.dataset.start + 4 * DAY
    out = tmp_path / "details.csv"
    async with simulator.client() as client:
        result = await client.call_details.export(start, end, out, format="csv", page_size=15)
    lines = out.read_text().splitlines()
    assert lines[0] == "session_id,dest,src,start,end,type,log,detail"
    assert len(lines) == 1 + result.rows == 41


@pytest.mark.anyio
async def test_a_cancelled_export_resumes_exactly_once(tmp_path: Path):
    simulator = PlumSimulator(recent(2_000))
    start, end = simulator.dataset.start, simulator.dataset.start + 4 * DAY
    out = tmp_path / "calls.jsonl"
    async with simulator.client() as client:
        with anyio.CancelScope() as scope:

            def cancel_after_two_pages(rows: int, total: int | None) -> None:
                if rows >= 2 * 250:
                    scope.cancel()

            await client.calls.export(
                start, end, out, page_size=250, concurrency=3, progress=cancel_after_two_pages
            )
        assert scope.cancelled_caught
        stopped = read_checkpoint(out.with_name("calls.jsonl.checkpoint"))
        assert stopped is not None
        assert not stopped.complete
        assert stopped.rows == len(session_ids(out)) < 2_000
        result = await client.calls.export(start, end, out, page_size=250, resume=True)
    assert session_ids(out) == expected_ids(simulator, start, end)
    assert result.rows == 2_000


@pytest.mark.anyio
async def test_refusals_come_before_anything_is_sent_or_written(tmp_path: Path):
    simulator = PlumSimulator(recent(100))
    start, end = simulator.dataset.start, simulator.dataset.start + DAY
    out = tmp_path / "calls.jsonl"
    async with simulator.client() as client:
        with pytest.raises(InvalidParameterError, match="format"):
            await client.calls.export(start, end, out, format="xml")  # type: ignore[arg-type]
        with pytest.raises(InvalidParameterError, match="page_size"):
            await client.calls.export(start, end, out, page_size=0)
        with pytest.raises(InvalidParameterError, match="path"):
            await client.calls.export(start, end, tmp_path / "missing" / "calls.jsonl")
        with pytest.raises(InvalidParameterError, match="end"):
            await client.calls.export(end, start, out)
        assert simulator.requests == []
        assert not out.exists()
        # An unfinished export is not overwritten, and is resumed only by the same query.
        await client.calls.export(start, end, out, page_size=10)
        checkpoint = out.with_name("calls.jsonl.checkpoint")
        state = read_checkpoint(checkpoint)
        assert state is not None
        write_checkpoint(checkpoint, attrs.evolve(state, complete=False))  # as a kill leaves it
        sent = len(simulator.requests)
        with pytest.raises(ExportError, match="unfinished export"):
            await client.calls.export(start, end, out, page_size=10)
        with pytest.raises(ExportError, match="another export"):
            await client.calls.export(start, end + 1, out, page_size=10, resume=True)
        assert len(simulator.requests) == sent


EXPORT_SCRIPT = """
import sys, anyio
from plumvoice_async import PlumClient

async def main():
    start, end, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    async with PlumClient.from_env() as client:
        await client.calls.export(start, end, out, page_size=100, concurrency=2, resume=True)

anyio.run(main)
"""


def test_sigkill_at_random_moments_then_resume_loses_and_doubles_nothing(tmp_path: Path):
    simulator = PlumSimulator(recent(3_000), limit=100_000)
    simulator.faults.latency(0.02)  # every page takes a moment, so kills land mid-export
    start, end = simulator.dataset.start, simulator.dataset.start + 4 * DAY
    out = tmp_path / "calls.jsonl"
    script = tmp_path / "export.py"
    script.write_text(EXPORT_SCRIPT)
    rng = random.Random(20261201)
    kills = 0
    with serve(simulator) as url:
        env = plum_env(simulator, url)
        for _ in range(8):
            process = subprocess.Popen(
                [sys.executable, str(script), str(start), str(end), str(out)],
                env=env,
                stderr=subprocess.PIPE,
            )
            time.sleep(rng.uniform(0.3, 1.2))  # a real process, killed at a random moment
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.communicate(timeout=60)
            if process.returncode == 0:
                break
        else:  # still not done: one last run to the end
            final = subprocess.run(
                [sys.executable, str(script), str(start), str(end), str(out)],
                env=env,
                capture_output=True,
                timeout=120,
                check=False,
            )
            assert final.returncode == 0, final.stderr
    assert kills >= 1
    assert session_ids(out) == expected_ids(simulator, start, end)
    state = read_checkpoint(out.with_name("calls.jsonl.checkpoint"))
    assert state is not None
    assert state.complete
    assert state.size == os.path.getsize(out)


def test_the_sync_client_exports_too(tmp_path: Path):
    from plumvoice_async import SyncPlumClient

    simulator = PlumSimulator(recent(500))
    start, end = simulator.dataset.start, simulator.dataset.start + 4 * DAY
    out = tmp_path / "calls.jsonl"
    with (
        serve(simulator) as url,
        SyncPlumClient(fuse_auth=simulator.fuse_auth, fuse_url=url) as client,
    ):
        result = client.calls.export(start, end, out, page_size=200)
    assert result.rows == 500
    assert session_ids(out) == expected_ids(simulator, start, end)


# --- Rows read back exactly -------------------------------------------------------------------

HOSTILE = st.text(
    st.characters(blacklist_categories=()) | st.sampled_from('\r\n",\x00\u2028\x85😀\ud800'),
    max_size=30,
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | HOSTILE,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(HOSTILE, inner, max_size=3),
    max_leaves=8,
)
INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=0))
CALLS = st.builds(
    DetailedCall,
    dest=HOSTILE,
    src=HOSTILE,
    start=INSTANTS,
    end=INSTANTS,
    session_id=HOSTILE,
    type=HOSTILE.filter(bool).map(CallType),
    log=st.booleans(),
    detail=st.lists(
        st.builds(
            CallEvent,
            line=HOSTILE,
            data=st.dictionaries(HOSTILE, JSON_VALUES, max_size=4),
            event_class=HOSTILE,
            timestamp=INSTANTS,
        ),
        max_size=3,
    ),
)


def without_surrogates(value: Any) -> Any:
    """What a CSV cell that is not JSON holds: UTF-8 cannot hold a lone surrogate."""
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)


@settings(max_examples=300, deadline=None)
@given(calls=st.lists(CALLS, max_size=4), long=st.integers(0, 200_000))
def test_jsonl_and_csv_rows_read_back_as_their_to_dict(calls: list[DetailedCall], long: int):
    """Newlines, a CR alone, quotes, commas, NULs, non-BMP text, lone surrogates, nested data and
    a very long field: each row reads back with ``json`` / ``csv`` as the model's ``to_dict()``.
    (Before: a CR alone was written bare in CSV, so ``csv.reader`` split the record; a lone
    surrogate raised ``UnicodeEncodeError`` at the same row on every resume.)"""
    if calls:
        calls[0] = attrs.evolve(calls[0], src="x\r" * (long // 2))
    rows = [detailed_call_row(call) for call in calls]
    jsonl = b"".join(JsonLinesEncoder().row(row) for row in rows)
    assert [json.loads(line) for line in jsonl.decode().split("\n")[:-1]] == [
        call.to_dict() for call in calls
    ]
    encoder = CsvEncoder(DETAILED_CALL_COLUMNS)
    data = encoder.header() + b"".join(encoder.row(row) for row in rows)
    csv.field_size_limit(1 << 30)
    header, *records = csv.reader(io.StringIO(data.decode(), newline=""))
    assert tuple(header) == DETAILED_CALL_COLUMNS
    assert len(records) == len(calls)
    for record, call in zip(records, calls, strict=True):
        expected = call.to_dict()
        read = dict(zip(header, record, strict=True))
        assert json.loads(read.pop("detail")) == expected.pop("detail")
        assert read.pop("log") == ("true" if expected.pop("log") else "false")
        assert read == {column: without_surrogates(value) for column, value in expected.items()}


# --- Output path hazards -------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_second_export_to_the_same_file_at_once_is_refused(tmp_path: Path):
    """Before: the second (resume=True) read the first's checkpoint and wrote beside it, and
    the file held calls twice. Now the output is locked (``flock``) while an export writes it."""
    simulator = PlumSimulator(recent(1_000))
    start, end = simulator.dataset.start, simulator.dataset.start + 4 * DAY
    out = tmp_path / "calls.jsonl"
    first_page = anyio.Event()
    refused: list[ExportError] = []
    async with simulator.client() as client:

        async def first() -> None:
            def pause(rows: int, total: int | None) -> None:
                if rows:
                    first_page.set()

            await client.calls.export(start, end, out, page_size=100, progress=pause)

        async def second() -> None:
            await first_page.wait()
            with pytest.raises(ExportError, match="another export is writing") as caught:
                await client.calls.export(start, end, out, page_size=100, resume=True)
            refused.append(caught.value)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(first)
            tasks.start_soon(second)
        assert refused
        # Once the first is through, the file is free again.
        again = await client.calls.export(start, end, out, page_size=100, resume=True)
    assert again.already_complete
    assert session_ids(out) == expected_ids(simulator, start, end)


@pytest.mark.anyio
async def test_an_existing_file_without_a_checkpoint_is_never_overwritten(tmp_path: Path):
    """Before: both resume=False and resume=True truncated it to nothing, silently."""
    simulator = PlumSimulator(recent(100))
    start, end = simulator.dataset.start, simulator.dataset.start + 4 * DAY
    out = tmp_path / "calls.jsonl"
    out.write_bytes(b"someone's precious data\n")
    async with simulator.client() as client:
        for resume in (False, True):
            with pytest.raises(ExportError, match="no checkpoint"):
                await client.calls.export(start, end, out, resume=resume)
        assert out.read_bytes() == b"someone's precious data\n"
        assert not out.with_name("calls.jsonl.checkpoint").exists()
        assert simulator.requests == []
        out.write_bytes(b"")  # an empty file (mktemp's) is fine to write
        result = await client.calls.export(start, end, out)
    assert result.rows == 100


@pytest.mark.anyio
async def test_a_directory_as_the_output_is_refused_naming_the_path(tmp_path: Path):
    """Before: an IsADirectoryError after a stray ``folder.checkpoint`` had been written."""
    simulator = PlumSimulator(recent(10))
    start, end = simulator.dataset.start, simulator.dataset.start + 4 * DAY
    folder = tmp_path / "calls"
    folder.mkdir()
    link = tmp_path / "link"
    link.symlink_to(folder)
    async with simulator.client() as client:
        for out in (folder, link):
            with pytest.raises(InvalidParameterError, match=r"path.*directory"):
                await client.calls.export(start, end, out)
    assert sorted(os.listdir(tmp_path)) == ["calls", "link"]
    assert simulator.requests == []


@pytest.mark.anyio
async def test_a_symlink_to_a_file_exports_into_its_target(tmp_path: Path):
    simulator = PlumSimulator(recent(50))
    start, end = simulator.dataset.start, simulator.dataset.start + 4 * DAY
    target = tmp_path / "target.jsonl"
    link = tmp_path / "calls.jsonl"
    link.symlink_to(target)
    async with simulator.client() as client:
        await client.calls.export(start, end, link, page_size=20)
        again = await client.calls.export(start, end, link, page_size=20, resume=True)
    assert again.already_complete
    assert link.is_symlink()
    assert session_ids(target) == expected_ids(simulator, start, end)
    assert link.with_name("calls.jsonl.checkpoint").exists()


# --- Checkpoints and outputs changed behind the export's back ---------------------------------


async def unfinished_export(client: Any, simulator: PlumSimulator, out: Path, fmt: str) -> None:
    """An export of the simulator's calls stopped after 3 pages of 10, as a kill leaves it."""
    start, end = simulator.dataset.start, simulator.dataset.start + 4 * DAY
    with anyio.CancelScope() as scope:

        def stop(rows: int, total: int | None) -> None:
            if rows >= 30:
                scope.cancel()

        await client.calls.export(start, end, out, page_size=10, format=fmt, progress=stop)
    assert scope.cancelled_caught


def edits(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Hand edits of a checkpoint, each a plausible value of the wrong thing."""
    query = document["query"]
    return [
        ("offset back", {**document, "offset": document["offset"] - 10}),
        ("offset on", {**document, "offset": document["offset"] + 10}),
        ("rows", {**document, "rows": 3}),
        ("size", {**document, "size": document["size"] - 1}),
        ("last_key", {**document, "last_key": "1;2;3"}),
        ("recent", {**document, "recent": []}),
        ("complete", {**document, "complete": True}),
        ("start", {**document, "query": {**query, "start": query["start"] + 1}}),
    ]


def broken(document: dict[str, Any]) -> list[tuple[str, Any]]:
    """Checkpoints no version of the export writes (without a checksum, as older files)."""
    older = {key: value for key, value in document.items() if key not in ("checksum", "sha256")}
    query = older["query"]
    return [
        ("size negative", {**older, "size": -1}),
        ("offset text", {**older, "offset": "30"}),
        ("rows float", {**older, "rows": 30.0}),
        ("version true", {**older, "version": True}),
        ("another version", {**older, "version": 2}),
        ("no version", {key: value for key, value in older.items() if key != "version"}),
        ("recent a string", {**older, "recent": "1;2;3"}),
        ("complete text", {**older, "complete": "no"}),
        ("unknown field", {**older, "page": 3}),
        ("format", {**older, "query": {**query, "format": "xml"}}),
        ("command", {**older, "query": {**query, "command": "events"}}),
        ("query missing a field", {**older, "query": {"command": "calls"}}),
        ("query a list", {**older, "query": [1]}),
        ("checksum dropped", {key: value for key, value in document.items() if key != "checksum"}),
        ("a list", [older]),
        ("null", None),
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_a_damaged_or_hand_edited_checkpoint_is_refused_and_changes_nothing(
    tmp_path: Path, fmt: str
):
    """Before: a hand-edited offset or ``recent`` resumed at the wrong place (rows doubled or
    skipped), ``size: -1`` raised ``OSError`` from ``truncate``, ``"recent": "1;2;3"`` became
    five one-character ids, ``version: true`` passed for 1."""
    simulator = PlumSimulator(recent(100))
    start, end = simulator.dataset.start, simulator.dataset.start + 4 * DAY
    out = tmp_path / f"calls.{fmt}"
    checkpoint = out.with_name(out.name + ".checkpoint")
    async with simulator.client() as client:
        await unfinished_export(client, simulator, out, fmt)
        good, written = checkpoint.read_bytes(), out.read_bytes()
        document = json.loads(good)
        cases: list[tuple[str, bytes]] = [
            *((f"edited {name}", json.dumps(doc).encode()) for name, doc in edits(document)),
            *((f"broken: {name}", json.dumps(doc).encode()) for name, doc in broken(document)),
            *((f"cut at {cut}", good[:cut]) for cut in range(0, len(good) - 1, 7)),
            ("not UTF-8", b"\xff" + good[1:]),
        ]
        sent = len(simulator.requests)
        for name, damaged in cases:
            checkpoint.write_bytes(damaged)
            with pytest.raises(ExportError, match=r"checkpoint|changed since") as caught:
                await client.calls.export(start, end, out, format=fmt, page_size=10, resume=True)
            assert str(out) in str(caught.value) or str(checkpoint) in str(caught.value), name
            assert (out.read_bytes(), checkpoint.read_bytes()) == (written, damaged), name
        assert len(simulator.requests) == sent
        checkpoint.write_bytes(good)  # put back, it resumes to the end
        await client.calls.export(start, end, out, format=fmt, page_size=10, resume=True)
    ids = expected_ids(simulator, start, end)
    if fmt == "jsonl":
        assert session_ids(out) == ids
    else:
        assert [row["session_id"] for row in csv.DictReader(io.StringIO(out.read_text()))] == ids


@pytest.mark.anyio
async def test_an_output_edited_behind_its_checkpoint_is_not_resumed(tmp_path: Path):
    """Before: only a shorter output was noticed; one edited in place (same length) or
    swapped for another file as long was truncated and resumed as if it were the export's."""
    simulator = PlumSimulator(recent(100))
    start, end = simulator.dataset.start, simulator.dataset.start + 4 * DAY
    out = tmp_path / "calls.jsonl"
    async with simulator.client() as client:
        await unfinished_export(client, simulator, out, "jsonl")
        written = out.read_bytes()
        lines = written.splitlines(keepends=True)
        other_call = lines[1].replace(lines[1][16:23], b"9999999")  # one id changed, same length
        for name, changed in [
            ("a row edited in place", lines[0] + other_call + b"".join(lines[2:])),
            ("a byte flipped", written[:-2] + b"X\n"),
            ("rows swapped", lines[1] + lines[0] + b"".join(lines[2:])),
            ("another file, longer", b"x" * (len(written) + 100)),
            ("deleted", b""),
            ("one byte short", written[:-1]),
        ]:
            out.write_bytes(changed)
            with pytest.raises(ExportError, match="changed since"):
                await client.calls.export(start, end, out, page_size=10, resume=True)
            assert out.read_bytes() == changed, name
        out.write_bytes(written + b'{"session_id": "half a r')  # a torn write: resumed
        await client.calls.export(start, end, out, page_size=10, resume=True)
    assert session_ids(out) == expected_ids(simulator, start, end)


# --- SIGKILL at the exact instants that matter ------------------------------------------------

KILLING_SCRIPT = """
import os, signal, sys, anyio
from plumvoice_async import PlumClient, _export

command, fmt, out, start, end, point, at = sys.argv[1:]
at, events = int(at), [0]

def killed_at_event():
    events[0] += 1
    return events[0] == at

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if point == "after the rows, before their checkpoint":
    write_checkpoint = _export.write_checkpoint
    def patched(path, checkpoint):
        if killed_at_event():
            die()
        write_checkpoint(path, checkpoint)
    _export.write_checkpoint = patched
elif point == "half a page written":
    append = _export.CheckpointedFile.append
    def patched(self, data, **kwargs):
        if killed_at_event() and data:
            self._file.write(data[: len(data) // 2])
            self._file.flush()
            os.fsync(self._file.fileno())
            die()
        append(self, data, **kwargs)
    _export.CheckpointedFile.append = patched
elif point == "checkpoint written, not yet renamed":
    replace = os.replace
    def patched(source, target):
        if killed_at_event():
            die()
        replace(source, target)
    os.replace = patched

async def main():
    async with PlumClient.from_env() as client:
        resource = client.call_details if command == "details" else client.calls
        await resource.export(
            int(start), int(end), out, format=fmt, page_size=20, concurrency=2, resume=True
        )

anyio.run(main)
"""

KILL_POINTS = (
    "after the rows, before their checkpoint",
    "half a page written",
    "checkpoint written, not yet renamed",
)


@pytest.mark.parametrize(
    ("command", "fmt"), [("calls", "csv"), ("details", "jsonl"), ("details", "csv")]
)
def test_sigkill_at_each_write_step_then_resume_writes_each_row_once(
    tmp_path: Path, command: str, fmt: str
):
    """A real process SIGKILLed at the instants the design orders (rows fsynced but not yet
    checkpointed; half a page on disk; a new checkpoint written but not renamed), 6 times at
    random pages, then resumed to the end: the file is byte for byte the export of every row
    once (no half line, no row twice or lost), for CSV and for detailed calls."""
    simulator = PlumSimulator(recent(240), limit=100_000)
    start, end = simulator.dataset.start, simulator.dataset.start + 4 * DAY
    out = tmp_path / f"{command}.{fmt}"
    script = tmp_path / "export.py"
    script.write_text(KILLING_SCRIPT)
    rng = random.Random(f"{command}-{fmt}")
    export = [sys.executable, str(script), command, fmt, str(out), str(start), str(end)]
    with serve(simulator) as url:
        env = plum_env(simulator, url)
        for _ in range(6):
            point, at = rng.choice(KILL_POINTS), rng.randint(1, 4)
            killed = subprocess.run(
                [*export, point, str(at)],
                env=env,
                capture_output=True,
                timeout=60,
                check=False,
            )
            assert killed.returncode == -signal.SIGKILL, (point, at, killed.stderr)
        last = subprocess.run(
            [*export, "none", "0"],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert last.returncode == 0, last.stderr
    if command == "details":
        calls: list[Any] = simulator.dataset.detailed_page(start, end, limit=10_000)
        to_row, columns = detailed_call_row, DETAILED_CALL_COLUMNS
    else:
        calls = simulator.dataset.page(start, end, limit=10_000)
        to_row, columns = call_row, CALL_COLUMNS
    encoder = CsvEncoder(columns) if fmt == "csv" else JsonLinesEncoder()
    assert len(calls) == 240
    assert out.read_bytes() == encoder.header() + b"".join(
        encoder.row(to_row(call)) for call in calls
    )


# --- Cancellation at every await ---------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_cancelled_at_any_await_it_resumes_exactly_once_and_counts_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
):
    """Cancelled at its k-th await (a worker thread: the folder check, the plan, the open, a
    page's append, the completion; a page request in flight; a progress call), at random k
    until it finishes: each time the checkpoint covers exactly bytes on disk, the next
    resume's first progress call counts the rows the checkpoint holds, and the file ends as
    every row once."""
    simulator = PlumSimulator(recent(300))
    start, end = simulator.dataset.start, simulator.dataset.start + 4 * DAY
    out = tmp_path / f"calls.{fmt}"
    checkpoint = out.with_name(out.name + ".checkpoint")
    rng = random.Random(fmt)
    scope = anyio.CancelScope()
    events = [0, 0]  # seen, cancel at

    def event() -> None:
        events[0] += 1
        if events[0] == events[1]:
            scope.cancel()

    run_sync = anyio.to_thread.run_sync

    async def counted(function: Any, *args: Any, **kwargs: Any) -> Any:
        event()
        return await run_sync(function, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    simulator.faults.latency(0.0, predicate=lambda request: bool(event()))
    cancels, progress = 0, []
    async with simulator.client() as client:
        for _ in range(200):
            scope = anyio.CancelScope()
            events[:] = [0, rng.randint(1, 12)]
            before = read_checkpoint(checkpoint)
            progress.clear()

            def shown(rows: int, total: int | None) -> None:
                progress.append((rows, total))
                event()

            with scope:
                result = await client.calls.export(
                    start,
                    end,
                    out,
                    format=fmt,
                    page_size=25,
                    concurrency=2,
                    progress=shown,
                    resume=True,
                )
            if progress:
                assert progress[0] == (0 if before is None else before.rows, None)
            if not scope.cancelled_caught:
                break
            cancels += 1
            state = read_checkpoint(checkpoint)
            if state is not None:
                written = out.read_bytes()
                assert state.size <= len(written)
                assert hashlib.sha256(written[: state.size]).hexdigest() == state.sha256
        else:
            pytest.fail("the export never finished")
    assert cancels >= 10
    # The last page's total, or none when the walk had no page left (cancelled at the end).
    assert progress[-1] in ((300, 300), (300, None))
    assert result.rows == 300
    encoder = CsvEncoder(CALL_COLUMNS) if fmt == "csv" else JsonLinesEncoder()
    calls = simulator.dataset.page(start, end, limit=10_000)
    assert out.read_bytes() == encoder.header() + b"".join(
        encoder.row(call_row(call)) for call in calls
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"format": "JSONL"}, "format"),
        ({"format": None}, "format"),
        ({"page_size": -1}, "page_size"),
        ({"page_size": 10.5}, "page_size"),
        ({"page_size": True}, "page_size"),
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": "2"}, "concurrency"),
        ({"number": "+1 617"}, "number"),
        ({"number": 6175551234}, "number"),
        ({"resume": "yes"}, "resume"),
        ({"resume": None}, "resume"),
        ({"path": 7}, "path"),
        ({"path": b"calls.jsonl"}, "path"),
        ({"progress": "print"}, "progress"),
        ({"start": "2026-01-01"}, "start"),
        ({"start": float("nan")}, "start"),
        ({"end": -5}, "end"),
        ({"start": datetime(2026, 1, 1)}, "start"),  # naive
    ],
)
async def test_every_bad_argument_is_named_before_anything_is_sent_or_written(
    tmp_path: Path, changes: dict[str, Any], named: str
):
    simulator = PlumSimulator(recent(10))
    arguments: dict[str, Any] = {
        "start": simulator.dataset.start,
        "end": simulator.dataset.start + DAY,
        "path": tmp_path / "calls.jsonl",
        **changes,
    }
    async with simulator.client() as client:
        for resource in (client.calls, client.call_details):
            with pytest.raises(InvalidParameterError) as caught:
                await resource.export(**arguments)
            assert caught.value.parameter == named
    assert simulator.requests == []
    assert os.listdir(tmp_path) == []


@pytest.mark.anyio
async def test_a_complete_export_whose_output_changed_is_not_called_complete(tmp_path: Path):
    """Before: resume=True answered "already complete (100 rows)" for an output since
    truncated, deleted or edited. Now the output is checked against its checkpoint first."""
    simulator = PlumSimulator(recent(100))
    start, end = simulator.dataset.start, simulator.dataset.start + 4 * DAY
    out = tmp_path / "calls.jsonl"
    other = tmp_path / "other.jsonl"
    async with simulator.client() as client:
        await client.calls.export(start, end, out, page_size=30)
        await client.calls.export(start, end + 1, other, page_size=30)
        written = out.read_bytes()
        checkpoint = out.with_name("calls.jsonl.checkpoint").read_bytes()
        sent = len(simulator.requests)
        for name, changed in [
            ("truncated", written[:-40]),
            ("emptied", b""),
            ("a byte changed", written[:-2] + b"X\n"),
            ("a row appended", written + written[-100:]),
        ]:
            out.write_bytes(changed)
            with pytest.raises(ExportError, match="changed since"):
                await client.calls.export(start, end, out, page_size=30, resume=True)
            assert out.read_bytes() == changed, name
        out.unlink()
        with pytest.raises(ExportError, match="changed since"):
            await client.calls.export(start, end, out, page_size=30, resume=True)
        # Another output's checkpoint copied beside this one: its bytes are not this file's.
        out.write_bytes(written)
        out.with_name("calls.jsonl.checkpoint").write_bytes(
            other.with_name("other.jsonl.checkpoint").read_bytes()
        )
        with pytest.raises(ExportError, match="another export"):
            await client.calls.export(start, end, out, page_size=30, resume=True)
        out.with_name("calls.jsonl.checkpoint").write_bytes(checkpoint)
        again = await client.calls.export(start, end, out, page_size=30, resume=True)
        assert len(simulator.requests) == sent
    assert again.already_complete
    assert out.read_bytes() == written


@pytest.mark.anyio
async def test_a_full_disk_at_any_fsync_names_the_file_claims_nothing_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """ENOSPC from the k-th ``fsync`` (the output's or the checkpoint's, its folder's), at
    random k until the export finishes: an ``OSError`` naming the output or its checkpoint, a
    checkpoint that covers only bytes on disk, and, once there is room, every row once."""
    simulator = PlumSimulator(recent(200))
    start, end = simulator.dataset.start, simulator.dataset.start + 4 * DAY
    out = tmp_path / "details.csv"
    checkpoint = out.with_name("details.csv.checkpoint")
    rng = random.Random(7)
    fsync, fsyncs = os.fsync, [0, 0]

    def full(descriptor: int) -> None:
        fsyncs[0] += 1
        if fsyncs[0] == fsyncs[1]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fsync(descriptor)

    monkeypatch.setattr(os, "fsync", full)
    failures: list[OSError] = []
    async with simulator.client() as client:
        for _ in range(100):
            fsyncs[:] = [0, rng.randint(1, 12)]
            try:
                result = await client.call_details.export(
                    start, end, out, format="csv", page_size=30, resume=True
                )
                break
            except OSError as exc:
                failures.append(exc)
            state = read_checkpoint(checkpoint)
            if state is not None:
                written = out.read_bytes()
                assert state.size <= len(written)
                assert hashlib.sha256(written[: state.size]).hexdigest() == state.sha256
        else:
            pytest.fail("the export never finished")
    assert len(failures) >= 5
    assert {(exc.errno, exc.filename in (str(out), str(checkpoint))) for exc in failures} == {
        (errno.ENOSPC, True)
    }
    assert result.rows == 200
    encoder = CsvEncoder(DETAILED_CALL_COLUMNS)
    calls = simulator.dataset.detailed_page(start, end, limit=10_000)
    assert out.read_bytes() == encoder.header() + b"".join(
        encoder.row(detailed_call_row(call)) for call in calls
    )
