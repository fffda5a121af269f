"""The ``plumvoice`` command: the real console script against a simulator served on loopback.

Subprocess tests check what a user sees (output, exit status, stderr, no credential anywhere);
the argument and error tables call ``main()`` in process, which is the same code, faster.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import pty
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import anyio
import attrs
import httpx
import pytest

from plumvoice_async import (
    AuthenticationError,
    EventReport,
    ExportError,
    Period,
    RateLimitError,
    TransportError,
)
from plumvoice_async._cli.args import fuse_instant, report_day
from plumvoice_async._cli.exits import make_client
from plumvoice_async._cli.main import build_parser
from plumvoice_async._cli.output import render_progress, series_rows
from plumvoice_async._encoding import CsvEncoder
from plumvoice_async._export import (
    Checkpoint,
    CheckpointedFile,
    Query,
    checkpoint_path,
    plan_export,
    read_checkpoint,
    write_checkpoint,
)
from plumvoice_async._governor import Snapshot
from plumvoice_async.testing import CallDataset, PlumSimulator, Quota, serve

from .cli_support import (
    DAY,
    MODULE,
    PLUMVOICE,
    base_url,
    env_in_process,
    expected_call,
    expected_detail,
    first_day,
    jsonl,
    plum_env,
    run,
    run_main,
    simulator,
    utc_text,
)

__all__ = ["base_url", "env_in_process", "simulator"]  # fixtures, imported for pytest


# --- Output against the data set (subprocesses) ----------------------------------------------


def test_calls_as_json_lines_on_stdout(simulator, base_url):
    start = first_day(simulator)
    day = datetime.fromtimestamp(start, UTC).date().isoformat()
    result = run(
        ["calls", day, str(start + DAY), "--page-size", "500", "--concurrency", "3"],
        plum_env(simulator, base_url),
    )
    assert result.returncode == 0, result.stderr
    expected = simulator.dataset.page(start, start + DAY, offset=0, limit=10_000)
    assert len(expected) > 2000
    assert jsonl(result.stdout) == [expected_call(call) for call in expected]
    assert result.stderr == b""  # stderr is not a terminal: no progress


def test_details_as_csv_to_a_file_then_resume_has_nothing_to_do(simulator, base_url, tmp_path):
    start, number = first_day(simulator), "6177123001"
    start_text = datetime.fromtimestamp(start, timezone(timedelta(hours=2))).isoformat()
    end_text = utc_text(datetime.fromtimestamp(start + 6 * 3600, UTC))
    out = tmp_path / "details.csv"
    args = ["details", start_text, end_text, "--number", number, "--format", "csv"]
    args += ["--page-size", "100", "--out", str(out)]
    env = plum_env(simulator, base_url)

    result = run(args, env)

    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    expected = simulator.dataset.detailed_page(
        start, start + 6 * 3600, number, offset=0, limit=10_000
    )
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [row["session_id"] for row in rows] == [call.session_id for call in expected]
    assert {row["dest"] for row in rows} == {number}
    for row, call in zip(rows, expected, strict=True):
        assert row["start"] == utc_text(call.start)
        assert row["log"] == ("true" if call.log else "false")
        assert json.loads(row["detail"]) == expected_detail(call)
    checkpoint = read_checkpoint(out.with_name("details.csv.checkpoint"))
    assert checkpoint is not None
    assert checkpoint.complete
    assert (checkpoint.rows, checkpoint.size) == (len(expected), out.stat().st_size)

    before, content = len(simulator.requests), out.read_bytes()
    again = run([*args, "--resume"], env)
    assert again.returncode == 0, again.stderr
    assert b"already complete" in again.stderr
    assert (len(simulator.requests), out.read_bytes()) == (before, content)


def test_events_one_row_per_period_with_python_dash_m(simulator, base_url):
    first = datetime.fromtimestamp(first_day(simulator), UTC).date()
    last = first + timedelta(days=13)
    result = run(
        ["events", first.isoformat(), last.strftime("%Y%m%d"), "--period", "week"],
        plum_env(simulator, base_url),
        command=MODULE,
    )
    assert result.returncode == 0, result.stderr
    report = simulator.dataset.event_report(first, last, Period.WEEK, "ALL")
    rows = jsonl(result.stdout)
    assert [row["period_start"] for row in rows] == [utc_text(start) for start in report.calls]
    for row, start in zip(rows, report.calls, strict=True):
        assert row["calls"] == report.calls[start]
        assert row["average_form_items"] == report.average_form_items[start]
        assert set(row) == {
            "period_start",
            "calls",
            "log_events",
            "loops_per_call",
            "form_items",
            "loops",
            "average_form_items",
        }


def test_xml_on_the_wire_writes_the_same_rows_as_json(simulator, env_in_process, capsys):
    start = first_day(simulator)
    argv = ["calls", str(start), str(start + 3 * 3600), "--page-size", "100", "-q"]
    outputs = []
    for wire in ("json", "xml"):
        status, out, err = run_main([*argv, "--wire-format", wire], capsys)
        assert (status, err) == (0, "")
        outputs.append(out)
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == simulator.dataset.count(start, start + 3 * 3600)


def test_events_as_csv_to_a_file(simulator, env_in_process, capsys, tmp_path):
    first = datetime.fromtimestamp(first_day(simulator), UTC).date()
    out = tmp_path / "events.csv"
    argv = ["events", str(first), str(first + timedelta(days=2)), "--phone", "6177123000"]
    status, stdout, _ = run_main([*argv, "--format", "csv", "--out", str(out)], capsys)
    assert (status, stdout) == (0, "")
    report = simulator.dataset.event_report(
        first, first + timedelta(days=2), Period.DAY, "6177123000"
    )
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [row["period_start"] for row in rows] == [utc_text(start) for start in report.calls]
    assert [float(row["loops_per_call"]) for row in rows] == list(report.loops_per_call.values())
    assert [int(row["calls"]) for row in rows] == list(report.calls.values())


# --- Errors and exit statuses ----------------------------------------------------------------


def test_refused_credentials_exit_1_naming_the_variables_not_their_values(simulator, base_url):
    wrong = "not-the-developer-key-0451"
    env = plum_env(simulator, base_url, PLUM_FUSE_DEVELOPER_KEY=wrong)
    start = first_day(simulator)
    result = run(["calls", str(start), str(start + 60)], env)
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert "PLUM_FUSE_EMAIL" in stderr
    assert "PLUM_FUSE_DEVELOPER_KEY" in stderr
    assert "401" in stderr
    assert wrong not in stderr
    assert result.stdout == b""


def test_quota_exhausted_with_max_wait_exits_3_with_the_reset_time():
    simulator = PlumSimulator(quotas={"fuse": Quota(limit=2, window=900)})
    start = first_day(simulator)
    with serve(simulator) as url:
        result = run(
            ["calls", str(start), str(start + DAY), "--page-size", "10", "--max-wait", "0"],
            plum_env(simulator, url),
        )
    assert result.returncode == 3, result.stderr
    stderr = result.stderr.decode()
    assert "quota exhausted until 20" in stderr
    assert sum(1 for entry in simulator.requests if entry.status == 429) == 0
    expected = simulator.dataset.page(start, start + DAY, offset=0, limit=100)
    rows = jsonl(result.stdout)
    assert rows
    assert rows == [expected_call(call) for call in expected[: len(rows)]]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["calls", "2024-01-31T09:00:00", "1700000000"], "argument START: '2024-01-31T09:00:00'"),
        (["calls", "20240131", "1700000000"], "argument START: '20240131' is ambiguous"),
        (["calls", "1700000000", "yesterday"], "argument END"),
        (["calls", "1700000000", "1600000000"], "argument END: invalid end=1600000000"),
        (["calls", "0", "1", "--page-size", "0"], "argument --page-size: invalid page_size=0"),
        (["calls", "0", "1", "--concurrency", "0"], "argument --concurrency"),
        (["calls", "0", "1", "--number", "+1 617"], "argument --number: invalid number="),
        (["calls", "0", "1", "--max-wait", "-1"], "argument --max-wait"),
        (["calls", "0", "1", "--resume"], "argument --resume: needs --out"),
        (["calls", "0", "1", "--out", "."], "argument --out: invalid path='.': is a directory"),
        (["details", "0", "1"], "argument START: invalid start=0"),
        (["events", "1700000000", "2024-01-01"], "argument START: '1700000000' is not a day"),
        (["events", "2024-01-01", "2024-02-30"], "argument END: '2024-02-30' is not a calendar"),
        (["events", "2024-01-01", "2024-01-07", "--period", "year"], "argument --period"),
        (["events", "2024-01-01", "2024-01-07", "--phone", "all"], "argument --phone"),
        (["calls", "0", "1", "--fuse-url", "http://example.com/api/"], "fuse_url uses plain"),
        (["calls", "0", "1", "--priority", "urgent"], "argument --priority: invalid choice"),
    ],
)
def test_bad_arguments_exit_2_naming_the_parameter(argv, named, simulator, env_in_process, capsys):
    before = len(simulator.requests)
    status, out, err = run_main(argv, capsys)
    assert status == 2
    assert named in err
    assert out == ""
    assert len(simulator.requests) == before  # refused before any request


def test_missing_credentials_exit_2_naming_the_variables(env_in_process, monkeypatch, capsys):
    monkeypatch.delenv("PLUM_VOICETRENDS_LOGIN")
    monkeypatch.delenv("PLUM_VOICETRENDS_PASSWORD")
    status, _, err = run_main(["events", "2024-01-01", "2024-01-02"], capsys)
    assert status == 2
    assert "PLUM_VOICETRENDS_LOGIN and PLUM_VOICETRENDS_PASSWORD" in err


def test_network_failure_exits_4(env_in_process, capsys):
    url = f"http://127.0.0.1:{closed_port()}/api/"
    status, _, err = run_main(["calls", "0", "1", "--fuse-url", url, "--max-retries", "0"], capsys)
    assert status == 4
    assert "failed after 1 attempts" in err


# --- Resumable export: Ctrl-C, SIGKILL, resume -----------------------------------------------


def wait_for_checkpoint(path: Path, offset: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if json.loads(path.read_bytes())["offset"] >= offset:
                return
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.02)
    raise AssertionError(f"the export never reached offset {offset}")


def test_interrupt_kill_and_resume_write_every_call_exactly_once(tmp_path, capsys):
    simulator = PlumSimulator(limit=100_000)
    hold_from: list[int | None] = [1000]
    offsets: list[int] = []

    async def gate(offset: int, limit: int) -> None:
        """Hold every page from ``hold_from`` on, so each run stops at a known place."""
        offsets.append(offset)
        # Polled: the test's thread releases it, and an anyio.Event belongs to one event loop.
        while hold_from[0] is not None and offset >= hold_from[0]:  # noqa: ASYNC110
            await anyio.sleep(0.01)

    simulator.on_page = gate
    start = first_day(simulator)
    end = start + 4000 * 30
    out = tmp_path / "calls.jsonl"
    args = ["calls", str(start), str(end), "--page-size", "250", "--out", str(out)]
    expected = [call.session_id for call in simulator.dataset.page(start, end, limit=10_000)]
    assert len(expected) > 3000

    with serve(simulator) as url:
        try:
            resume_all_the_way(simulator, hold_from, offsets, args, tmp_path, capsys, url)
        finally:
            hold_from[0] = None  # let the server finish whatever it still holds
    rows = jsonl(out.read_bytes())
    assert [row["session_id"] for row in rows] == expected
    final = read_checkpoint(tmp_path / "calls.jsonl.checkpoint")
    assert final is not None
    assert final.complete
    assert final.rows == len(expected)


def resume_all_the_way(
    simulator: PlumSimulator,
    hold_from: list[int | None],
    offsets: list[int],
    args: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    url: str,
) -> None:
    """Ctrl-C, resume and SIGKILL, refused resumes, and the last resume, in that order."""
    out, checkpoint = tmp_path / "calls.jsonl", tmp_path / "calls.jsonl.checkpoint"
    env = plum_env(simulator, url)
    # 1. Ctrl-C while pages from offset 1000 are held: output and checkpoint agree.
    first = subprocess.Popen([str(PLUMVOICE), *args], env=env, stderr=subprocess.PIPE)
    wait_for_checkpoint(checkpoint, 1000, first)
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=30)
    assert first.returncode == 130, stderr
    assert b"--resume" in stderr
    state = read_checkpoint(checkpoint)
    assert state is not None
    assert not state.complete
    assert state.size == out.stat().st_size
    # (The page just before the gate asks from offset 999, its overlap row, so it may land.)
    assert state.rows == state.offset == len(out.read_bytes().splitlines()) >= 1000

    # 2. Resume, then SIGKILL mid-export, and leave half a row behind as a torn write would.
    hold_from[0] = 2500
    resumed_at = len(offsets)
    second = subprocess.Popen([str(PLUMVOICE), *args, "--resume"], env=env)
    wait_for_checkpoint(checkpoint, 2500, second)
    second.kill()
    second.wait(timeout=30)
    assert min(offsets[resumed_at:]) >= state.offset - 1  # on from the checkpoint, not from 0
    killed = read_checkpoint(checkpoint)
    assert killed is not None
    with out.open("ab") as torn:
        torn.write(b'{"session_id": "half a r')
    torn_bytes = out.read_bytes()

    # 3. A resume of another query, or a fresh start over it, is refused; nothing changes.
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            if name.startswith("PLUM_"):
                patch.setenv(name, value)
        other = [*args[:2], str(int(args[2]) + 1), *args[3:], "--resume"]
        status, _, err = run_main(other, capsys)
        assert status == 2
        assert "is for another export" in err
        status, _, err = run_main(args, capsys)
        assert status == 2
        assert "unfinished export" in err
    assert out.read_bytes() == torn_bytes

    # 4. The last resume finishes from the SIGKILLed run's checkpoint.
    hold_from[0] = None
    resumed_at = len(offsets)
    last = run([*args, "--resume"], env)
    assert last.returncode == 0, last.stderr
    assert min(offsets[resumed_at:]) >= killed.offset - 1


def test_kill_9_after_churn_then_resume_writes_no_call_twice(tmp_path):
    """Issue 12: 4 calls inserted and 4 deleted mid-export, SIGKILL after the next checkpoint,
    --resume: a call the killed run wrote (and that inserts pushed past its place) was
    written again, because the checkpoint named only the offset and the last call."""
    simulator = PlumSimulator(limit=100_000)
    start = first_day(simulator)
    end = start + 1200
    original = simulator.dataset.page(start, end, limit=10_000)
    ids = [call.session_id for call in original]
    assert len(ids) == 40
    hold_from: list[int | None] = [8]
    churned = threading.Event()

    async def gate(offset: int, limit: int) -> None:
        if offset == 5 and not churned.is_set():
            churned.set()  # before this page is built: 4 new calls after the 5th, 4 deleted
            at = original[4].start
            simulator.dataset.insert_calls(
                attrs.evolve(
                    original[4],
                    session_id=f"9;{n};1",
                    start=at + timedelta(seconds=n + 1),
                    end=at + timedelta(seconds=n + 6),
                )
                for n in range(4)
            )
            simulator.dataset.delete_calls(ids[6:10])
        while hold_from[0] is not None and offset >= hold_from[0]:  # noqa: ASYNC110
            await anyio.sleep(0.01)

    simulator.on_page = gate
    out = tmp_path / "calls.jsonl"
    checkpoint = tmp_path / "calls.jsonl.checkpoint"
    args = ["calls", str(start), str(end), "--page-size", "3", "--concurrency", "2"]
    args += ["--out", str(out)]
    with serve(simulator) as url:
        env = plum_env(simulator, url)
        try:
            first = subprocess.Popen([str(PLUMVOICE), *args], env=env)
            wait_for_checkpoint(checkpoint, 9, first)  # the pages from offset 8 are held
            first.kill()
            first.wait(timeout=30)
            killed = read_checkpoint(checkpoint)
            assert killed is not None
            assert churned.is_set()
            # Placed at an older call after the inserts: the killed run had written a call
            # that is now past its last one; the checkpoint names it.
            assert killed.last_key == "9;3;1"
            assert killed.ahead == (ids[5],)
        finally:
            hold_from[0] = None
        last = run([*args, "--resume"], env)
    assert last.returncode == 0, last.stderr
    written = [row["session_id"] for row in jsonl(out.read_bytes())]
    assert len(written) == len(set(written)), "a call was written twice"
    stable = [key for key in ids if key not in ids[6:10]]
    assert [key for key in written if key in set(stable)] == stable


# --- The demo --------------------------------------------------------------------------------


def test_demo_runs_in_under_a_minute_with_no_429_and_shows_progress(tmp_path):
    primary, replica = pty.openpty()
    shown: list[bytes] = []

    def read_terminal() -> None:
        while True:
            try:
                data = os.read(primary, 4096)
            except OSError:  # the terminal closed with the demo
                return
            if not data:
                return
            shown.append(data)

    reader = threading.Thread(target=read_terminal)
    reader.start()
    env = {name: value for name, value in os.environ.items() if not name.startswith("PLUM_")}
    began = time.monotonic()
    try:
        result = subprocess.run(
            [str(PLUMVOICE), "demo", "--out", str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=replica,
            timeout=60,
            check=False,
        )
    finally:
        os.close(replica)
        reader.join(timeout=5)
        os.close(primary)
    elapsed = time.monotonic() - began
    summary = result.stdout.decode()
    assert result.returncode == 0, summary
    assert elapsed < 60
    assert "429 answers: 0" in summary
    assert "calls     3,000 rows" in summary
    assert "details   3,000 rows" in summary
    assert len((tmp_path / "calls.jsonl").read_bytes().splitlines()) == 3000
    assert len((tmp_path / "details.jsonl").read_bytes().splitlines()) == 3000
    assert (tmp_path / "events.jsonl").read_bytes()
    fuse = next(line for line in summary.splitlines() if "fuse" in line and "per window" in line)
    assert "limit 15" in fuse
    assert max(int(count) for count in fuse.split(": ")[1].split(" (")[0].split(", ")) <= 15
    terminal = b"".join(shown).decode()
    assert "\r" in terminal
    assert "rows/s" in terminal
    assert "quota " in terminal
    assert "waiting for quota: next window in" in terminal


def test_demo_in_process_without_a_port(tmp_path, capsys, monkeypatch):
    for name in [name for name in os.environ if name.startswith("PLUM_")]:
        monkeypatch.delenv(name)
    status, out, _ = run_main(
        ["demo", "--in-process", "--calls", "250", "--out", str(tmp_path), "-q"], capsys
    )
    assert status == 0
    assert "served in process" in out
    assert "calls     250 rows in 3 pages" in out
    assert len((tmp_path / "details.jsonl").read_bytes().splitlines()) == 250


# --- The pieces (in process) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "second"),
    [
        ("1700000000", 1_700_000_000),
        ("2023-11-14", 1_699_920_000),
        ("2023-11-14T22:13:20Z", 1_700_000_000),
        ("2023-11-15T00:13:20+02:00", 1_700_000_000),
        ("2023-11-14T22:13:20.999+00:00", 1_700_000_000),
        ("1969-12-31T23:59:59.5Z", -1),  # floored like the library; the library then refuses
    ],
)
def test_fuse_instants(text, second):
    assert fuse_instant(text) == second


NOW = datetime(2023, 11, 14, 22, 13, 20, 750_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "second"),
    [
        ("now", 1_700_000_000),
        ("today", 1_699_920_000),
        ("today-0", 1_699_920_000),
        ("today-2", 1_699_920_000 - 2 * 86_400),
    ],
)
def test_relative_instants_need_no_shell_date_arithmetic(text, second):
    assert fuse_instant(text, now=NOW) == second


def test_relative_report_days_are_utc_days():
    assert report_day("today", now=NOW) == date(2023, 11, 14)
    assert report_day("today-3", now=NOW) == date(2023, 11, 11)
    late = datetime(2023, 11, 14, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert report_day("today", now=late) == date(2023, 11, 15)  # already the 15th in UTC


@pytest.mark.parametrize(
    "text", ["2023-11-14T22:13:20", "20231114", "tomorrow", "-5", "", "today+1", "today-x"]
)
def test_fuse_instants_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match=r"ambiguous|not a UNIX|no time zone"):
        fuse_instant(text)


def test_report_days():
    assert report_day("2024-02-29") == report_day("20240229") == date(2024, 2, 29)
    with pytest.raises(argparse.ArgumentTypeError, match="not a calendar date"):
        report_day("20230229")


def test_csv_cells_round_trip_through_a_csv_reader():
    encoder = CsvEncoder(["a", "b", "c", "d", "e"])
    row = {"a": 'comma, "quote"\nnewline', "b": None, "c": True, "d": [{"x": 1}], "e": 2.5}
    data = (encoder.header() + encoder.row(row)).decode()
    parsed = list(csv.DictReader(io.StringIO(data)))
    assert parsed == [
        {"a": 'comma, "quote"\nnewline', "b": "", "c": "true", "d": '[{"x":1}]', "e": "2.5"}
    ]


def test_series_rows_take_every_period_and_the_extra_series():
    monday, tuesday = datetime(2024, 1, 1, 5, tzinfo=UTC), datetime(2024, 1, 2, 5, tzinfo=UTC)
    report = EventReport(
        calls={tuesday: 3, monday: 2}, loops={monday: 1}, extra={"new_series": {tuesday: 0.5}}
    )
    columns, rows = series_rows(report)
    assert columns[0] == "period_start"
    assert columns[-1] == "new_series"
    assert [row["period_start"] for row in rows] == ["2024-01-01T05:00:00Z", "2024-01-02T05:00:00Z"]
    assert (rows[0]["calls"], rows[0]["loops"], rows[0]["new_series"]) == (2, 1, None)
    assert (rows[1]["calls"], rows[1]["loops"], rows[1]["new_series"]) == (3, None, 0.5)


def test_progress_line_counts_down_to_the_next_window():
    now = datetime(2024, 1, 1, tzinfo=UTC)
    waiting = Snapshot(
        limit=15, remaining=0, reset_at=now + timedelta(seconds=1.25), in_flight=0, waiting=3
    )
    line = render_progress("calls", rows=1500, total=6000, rate=812.4, quota=waiting, now=now)
    assert line == (
        "calls  1,500/6,000 rows (25%)  812 rows/s  quota 0/15 left  "
        "waiting for quota: next window in 1.2 s"
    )
    flowing = Snapshot(limit=15, remaining=7, reset_at=None, in_flight=2, waiting=0)
    assert render_progress("details", rows=3, total=None, rate=0, quota=flowing, now=now) == (
        "details  3 rows  0 rows/s  quota 7/15 left"
    )


def test_a_checkpoint_that_is_not_ours_is_refused(tmp_path):
    path = tmp_path / "out.jsonl.checkpoint"
    path.write_text('{"version": 1, "offset": 3}')
    with pytest.raises(ExportError, match="not a valid checkpoint"):
        read_checkpoint(path)
    path.write_text("[1, 2]")
    with pytest.raises(ExportError, match="not a checkpoint of this version"):
        read_checkpoint(path)


def test_an_output_shorter_than_its_checkpoint_is_not_resumed(tmp_path):
    out = tmp_path / "calls.jsonl"
    query = Query("calls", 0, 1, None, "jsonl")
    write_checkpoint(checkpoint_path(out), Checkpoint(query, offset=2, last_key="1;2;3", size=99))
    out.write_bytes(b"{}\n")
    with pytest.raises(ExportError, match="has 3 bytes but its checkpoint covers 99"):
        CheckpointedFile(out, plan_export(out, query, resume=True)).open(b"")
    assert out.read_bytes() == b"{}\n"


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (
            RateLimitError("spent", reset_at=datetime(2030, 1, 1, tzinfo=UTC)),
            3,
            "quota exhausted until 2030-01-01T00:00:00Z",
        ),
        (RateLimitError("spent", reset_at=None), 3, "reset time unknown"),
        (TransportError("GET x failed"), 4, "GET x failed"),
        (
            AuthenticationError("bad", status_code=401, response=httpx.Response(401)),
            1,
            "check PLUM_FUSE_EMAIL and",
        ),
        (PermissionError(13, "Permission denied", "/root/x"), 1, "Permission denied: /root/x"),
    ],
)
def test_failures_map_to_statuses(error, status, message):
    from plumvoice_async._cli.main import SUBCOMMANDS, failure

    calls = next(command for command in SUBCOMMANDS if command.name == "calls")
    got_status, got_message = failure(error, calls)
    assert got_status == status
    assert message in got_message


def test_plum_redis_url_without_the_redis_extra_exits_2_naming_it():
    script = (
        "import sys; sys.modules['redis'] = None; sys.modules['redis.asyncio'] = None; "
        "from plumvoice_async._cli import main; sys.exit(main(['calls', 'today-1', 'now']))"
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith("PLUM_")}
    env.update(
        PLUM_REDIS_URL="redis://127.0.0.1:9/0",
        PLUM_FUSE_EMAIL="me@example.com",
        PLUM_FUSE_DEVELOPER_KEY="key",
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "pip install 'plumvoice-async[redis]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_checkpoint_round_trips_its_resume_point_and_older_ones_still_read(tmp_path):
    query = Query("calls", 0, 100, None, "jsonl")
    path = tmp_path / "out.jsonl.checkpoint"
    written = Checkpoint(query, offset=9, last_key="9;3;1", recent=("1;2;3", "4;5;6"))
    written = attrs.evolve(written, ahead=("7;8;9",), since_start=True)
    write_checkpoint(path, written)
    read = read_checkpoint(path)
    assert read == written
    assert read.resume.to_dict() == {
        "offset": 9,
        "last_key": "9;3;1",
        "recent": ["1;2;3", "4;5;6"],
        "ahead": ["7;8;9"],
        "since_start": True,
    }
    # Written before the walk's ids were kept: resumes from offset and last id, as then.
    older = {"version": 1, "query": attrs.asdict(query), "offset": 9, "last_key": "9;3;1"}
    path.write_text(json.dumps(older))
    resumed = read_checkpoint(path)
    assert resumed is not None
    assert (resumed.resume.offset, resumed.resume.last_key) == (9, "9;3;1")
    assert (resumed.recent, resumed.ahead, resumed.since_start) == ((), (), False)


# --- Quota priority (issue 13) ---------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("argv", "priority"),
    [
        (["calls", "0", "1"], "bulk"),  # exports leave a shared quota's reserve to dashboards
        (["details", "0", "1"], "bulk"),
        (["sync", "--db", "sqlite:///x.db"], "bulk"),
        (["events", "2024-01-01", "2024-01-07"], "interactive"),
        (["report", "volume", "2024-01-01", "2024-01-07"], "interactive"),
        (["calls", "0", "1", "--priority", "interactive"], "interactive"),
        (["sync", "--db", "sqlite:///x.db", "--priority", "interactive"], "interactive"),
        (["events", "2024-01-01", "2024-01-07", "--priority", "bulk"], "bulk"),
    ],
)
async def test_exports_and_sync_run_as_bulk_unless_priority_says_otherwise(
    argv, priority, env_in_process
):
    args = build_parser().parse_args(argv)
    async with make_client(args) as client:
        assert client._transport.priority == priority


# --- Disk full: a write error mid-export ------------------------------------------------------


def limited_to(size: int):
    """A child whose files cannot grow past ``size`` bytes: a write past it fails with EFBIG,
    mid-row, as a full disk fails with ENOSPC (Python ignores SIGXFSZ)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


@pytest.mark.parametrize(("command", "fmt"), [("calls", "jsonl"), ("details", "csv")])
def test_a_write_error_mid_export_is_clear_claims_nothing_and_resumes(
    command, fmt, simulator, base_url, tmp_path
):
    start = first_day(simulator)
    out = tmp_path / f"{command}.{fmt}"
    args = [command, str(start), str(start + 6 * 3600), "--format", fmt, "--page-size", "7"]
    args += ["--out", str(out), "-q"]
    env = plum_env(simulator, base_url)
    checkpoint = out.with_name(out.name + ".checkpoint")
    for size in (5_000, 23_456, 61_000):  # each run gets further, then its writes fail
        failed = subprocess.run(
            [str(PLUMVOICE), *args, *(["--resume"] if out.exists() else [])],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
            preexec_fn=limited_to(size),
        )
        assert failed.returncode == 1, failed.stderr
        assert b"Traceback" not in failed.stderr
        assert b"File too large" in failed.stderr
        assert f"File too large: {out} (run it again with --resume".encode() in failed.stderr
        state = read_checkpoint(checkpoint)
        assert state is not None
        written = out.read_bytes()
        # The checkpoint claims only bytes on disk, and exactly those it saw written.
        assert state.size <= len(written) <= size
        assert hashlib.sha256(written[: state.size]).hexdigest() == state.sha256
    last = run([*args, "--resume"], env)
    assert last.returncode == 0, last.stderr
    if command == "calls":
        expected = simulator.dataset.page(start, start + 6 * 3600, limit=10_000)
    else:
        expected = simulator.dataset.detailed_page(
            start, start + 6 * 3600, None, offset=0, limit=10_000
        )
    assert len(expected) > 100
    if fmt == "jsonl":
        ids = [row["session_id"] for row in jsonl(out.read_bytes())]
    else:
        ids = [row["session_id"] for row in csv.DictReader(io.StringIO(out.read_text()))]
    assert ids == [call.session_id for call in expected]


def test_a_second_export_of_the_same_file_exits_2_until_the_first_is_killed(tmp_path):
    """Two ``plumvoice calls --out`` processes of one file: the second is refused while the
    first holds the file's lock (before: it resumed from the first's checkpoint and both
    appended, doubling calls); a SIGKILL releases the lock and the resume finishes."""
    simulator = PlumSimulator(CallDataset(size=600), limit=100_000)
    simulator.faults.latency(0.3)  # pages take a while: the first is still writing
    start = first_day(simulator)
    out = tmp_path / "calls.jsonl"
    checkpoint = out.with_name("calls.jsonl.checkpoint")
    args = ["calls", str(start), str(start + 2 * DAY), "--page-size", "20", "--out", str(out)]
    with serve(simulator) as url:
        env = plum_env(simulator, url)
        first = subprocess.Popen([str(PLUMVOICE), *args], env=env, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while (state := read_checkpoint(checkpoint)) is None or state.rows == 0:
                assert time.monotonic() < deadline, "the first export wrote nothing"
                time.sleep(0.02)
            for second, why in [
                (args, b"holds an unfinished export"),
                ([*args, "--resume"], b"another export is writing to"),
            ]:
                refused = run(second, env)
                assert refused.returncode == 2, refused.stderr
                assert why in refused.stderr
                assert str(out).encode() in refused.stderr
            assert first.poll() is None, "the first export must still be running"
        finally:
            first.kill()
            first.communicate(timeout=60)
        simulator.faults.clear()
        last = run([*args, "--resume"], env)
        assert last.returncode == 0, last.stderr
    expected = simulator.dataset.page(start, start + 2 * DAY, limit=100_000)
    assert [row["session_id"] for row in jsonl(out.read_bytes())] == [
        call.session_id for call in expected
    ]
