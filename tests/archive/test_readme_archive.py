"""Every example of the README's "Archive every call" section runs: the command, the cron line
and the systemd unit's command parse (the first runs), the Python block runs, and both SQL
queries run on an archive in SQLite and in PostgreSQL."""

from __future__ import annotations

import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from plumvoice_async._cli.main import build_parser
from plumvoice_async.archive import Archive
from plumvoice_async.testing import CallDataset, PlumSimulator, serve

from ..cli_support import plum_env
from .databases import Database

README = Path(__file__).resolve().parents[2] / "README.md"


def section_blocks() -> list[str]:
    """The indented code blocks of the section, in order."""
    text = README.read_text()
    start = text.index("## Archive every call")
    section = text[start : text.index("\n## ", start + 1)]
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in section.splitlines():
        if line.startswith("    "):
            if current is None:
                current = []
                blocks.append(current)
            current.append(line[4:])
        elif line.strip() == "" and current is not None:
            current.append("")
        else:
            current = None
    return ["\n".join(block).strip() for block in blocks]


BLOCKS = section_blocks()
QUERIES = [block for block in BLOCKS if block.startswith("SELECT")]
PYTHON = [block for block in BLOCKS if block.startswith("from plumvoice_async")]


def small_simulator() -> PlumSimulator:
    """500 calls over the last four days: all with their logs still at Plum."""
    today = int(time.time()) // 86_400 * 86_400
    dataset = CallDataset(size=500, start=today - 4 * 86_400, spacing=600)
    return PlumSimulator(dataset, limit=100_000)


def sync_arguments(block: str) -> list[str]:
    """The ``plumvoice sync ...`` arguments of a command line, a cron line or a unit."""
    for line in block.splitlines():
        words = shlex.split(line.removeprefix("ExecStart="))
        for index, word in enumerate(words):
            if Path(word).name == "plumvoice":
                return words[index + 1 :]
    raise AssertionError(f"no plumvoice command in {block!r}")


def test_the_section_has_every_kind_of_example():
    commands = [block for block in BLOCKS if "plumvoice sync" in block]
    assert len(commands) == 3  # the command, cron, systemd
    assert len(QUERIES) == 2
    assert len(PYTHON) == 1
    assert len(commands) + len(QUERIES) + len(PYTHON) == len(BLOCKS)


def test_the_command_lines_parse_and_the_first_runs(tmp_path):
    commands = [block for block in BLOCKS if "plumvoice sync" in block]
    for block in commands:
        args = build_parser().parse_args(sync_arguments(block))
        assert args.command == "sync"
    sim = small_simulator()
    with serve(sim) as url:
        done = subprocess.run(
            [sys.executable, "-m", "plumvoice_async._cli", *sync_arguments(commands[0])],
            env=plum_env(sim, url),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{len(sim.dataset):,} new calls")
    assert (tmp_path / "plum.db").exists()


@pytest.mark.anyio
async def test_the_python_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (code,) = PYTHON
    namespace: dict[str, object] = {}
    wrapped = "async def example(client):\n" + textwrap.indent(code, "    ")
    exec(compile(wrapped, str(README), "exec"), namespace)
    sim = small_simulator()
    async with sim.client() as client:
        await namespace["example"](client)  # type: ignore[operator]
    events = Database(f"sqlite:///{tmp_path / 'plum.db'}").count("plum_call_events")
    # new calls, updated, new log lines, expired, requests (one page of calls, one of logs)
    assert capsys.readouterr().out.split() == [str(len(sim.dataset)), "0", str(events), "0", "2"]


@pytest.mark.anyio
async def test_the_queries_run_on_sqlite_and_postgresql(database: Database):
    sim = small_simulator()
    async with sim.client() as client, Archive.open(database.url) as archive:
        await archive.sync(client)
    by_number = database.query(QUERIES[0])
    assert sum(count for _, count in by_number) == len(sim.dataset)
    counts = [count for _, count in by_number]
    assert counts == sorted(counts, reverse=True)
    assert database.query(QUERIES[1]) == []  # the simulator's logs have no error lines


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # these examples are not about the backend; the archive's tests run both
