"""Every expected failure of ``plumvoice``: its exit status and its one message, as a table.

Each row runs the command in this process against the simulator on loopback and checks the
status, a fragment of the message, whether the usage line comes first (only for an error about
an argument, as argparse does), that nothing but that goes to stderr, and that no credential
is printed. The help text and the README's tables are held to the CLI's own tables.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import attrs
import pytest

from plumvoice_async._cli.exits import EXIT_STATUSES
from plumvoice_async._cli.main import build_parser
from plumvoice_async.testing import PlumSimulator, Quota, serve

from .cli_support import plum_env, run_main

README = Path(__file__).resolve().parent.parent / "README.md"
CLIENT_SOURCE = Path(__file__).resolve().parent.parent / "plumvoice_async" / "_client.py"


@attrs.frozen
class Case:
    name: str
    argv: list[str]
    status: int
    message: str
    usage: bool = False
    env: dict[str, str | None] = attrs.field(factory=dict)
    """Changes to the simulator's environment; ``None`` removes a variable."""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CASES = [
    Case(
        "naive START",
        ["calls", "2024-01-31T00:00:00", "now"],
        2,
        "argument START: '2024-01-31T00:00:00' has no time zone",
        usage=True,
    ),
    Case(
        "days out of order",
        ["events", "2024-01-05", "2024-01-01"],
        2,
        "argument END: invalid end=2024-01-01:",
        usage=True,
    ),
    Case(
        "unknown report",
        ["report", "weather", "today", "today"],
        2,
        "argument KIND: invalid choice: 'weather'",
        usage=True,
    ),
    Case(
        "resume without a file",
        ["calls", "today-1", "now", "--resume"],
        2,
        "argument --resume: needs --out FILE",
        usage=True,
    ),
    Case(
        "output folder missing",
        ["calls", "today-1", "now", "--out", "/nonexistent/folder/calls.jsonl"],
        2,
        "argument --out: /nonexistent/folder is not an existing directory",
        usage=True,
    ),
    Case(
        "report output folder missing",
        ["events", "today-1", "today", "--out", "/nonexistent/folder/events.csv"],
        2,
        "argument --out: /nonexistent/folder is not an existing directory",
        usage=True,
    ),
    Case(
        "a flag of the other API",
        ["calls", "today-1", "now", "--voicetrends-url", "https://x.example/api/"],
        2,
        "unrecognized arguments: --voicetrends-url",
        usage=True,
    ),
    Case(
        "no Fuse credentials",
        ["calls", "today-1", "now"],
        2,
        "no credentials configured: set PLUM_FUSE_EMAIL and PLUM_FUSE_DEVELOPER_KEY",
        env={"PLUM_FUSE_EMAIL": None, "PLUM_FUSE_DEVELOPER_KEY": None},
    ),
    Case(
        "half a credential group",
        ["calls", "today-1", "now"],
        2,
        "configuration: invalid PLUM_FUSE_DEVELOPER_KEY=''",
        env={"PLUM_FUSE_DEVELOPER_KEY": None},
    ),
    Case(
        "bad PLUM_FORMAT",
        ["events", "today-1", "today"],
        2,
        "configuration: invalid PLUM_FORMAT='yaml'",
        env={"PLUM_FORMAT": "yaml"},
    ),
    Case(
        "refused login",
        ["calls", "today-1", "now"],
        1,
        "the server refused the credentials",
        env={"PLUM_FUSE_DEVELOPER_KEY": "not-the-key"},
    ),
    Case(
        "quota exhausted",
        ["calls", "today-4", "now", "--page-size", "1", "--max-wait", "0", "-q"],
        3,
        "quota exhausted until ",
    ),
    Case(
        "network down",
        ["calls", "today-1", "now", "--max-retries", "0", "--fuse-url", "<closed>"],
        4,
        "failed after 1 attempts: ConnectError",
    ),
]


@pytest.fixture(scope="module")
def served() -> Any:
    # One request per window for Fuse: the second page of any export runs out of quota.
    simulator = PlumSimulator(quotas={"fuse": Quota(limit=1, window=900)})
    with serve(simulator) as url:
        yield simulator, url


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_failure_has_its_status_and_one_message(case: Case, served, monkeypatch, capsys):
    simulator, url = served
    simulator.quotas["fuse"] = Quota(limit=1, window=900)
    simulator._windows.clear()  # a fresh quota for each row
    env = plum_env(simulator, url)
    for name in [name for name in env if name.startswith("PLUM_")]:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**env, **case.env}.items():
        if name.startswith("PLUM_") and value is not None:
            monkeypatch.setenv(name, value)
    argv = [f"http://127.0.0.1:{closed_port()}/api/" if a == "<closed>" else a for a in case.argv]
    status, out, err = run_main(argv, capsys)
    assert status == case.status, err
    if status == 2:
        assert out == ""  # refused before anything was fetched
    lines = err.splitlines()
    message = lines[-1]
    # argparse reports an unknown flag from the top-level parser, as "plumvoice: error:".
    assert re.match(rf"plumvoice( {argv[0]})?: error: ", message), err
    assert case.message in message, err
    assert lines[0].startswith("usage: ") == case.usage, err
    if not case.usage:
        assert len(lines) == 1, err
    assert "datetime.date(" not in err
    for secret in (*PlumSimulator.FUSE_AUTH, *PlumSimulator.VOICETRENDS_AUTH, "not-the-key"):
        assert secret not in err


def test_the_table_covers_every_exit_status_but_interruptions():
    covered = {case.status for case in CASES}
    assert covered == set(EXIT_STATUSES) - {0, 130, 141}


def readme_table(header: str) -> dict[str, str]:
    text = README.read_text()
    rows = text[text.index(header) :].split("\n\n", 1)[0].splitlines()[2:]
    return {
        cells[0]: cells[1].replace("`", "")
        for cells in ([cell.strip() for cell in row.strip("|").split("|")] for row in rows)
    }


def test_the_readme_exit_table_is_the_cli_table():
    assert readme_table("| Exit | Meaning |") == {
        str(status): meaning for status, meaning in EXIT_STATUSES.items()
    }


def test_help_prints_the_exit_table_and_every_variable():
    help_text = build_parser().format_help()
    for status, meaning in EXIT_STATUSES.items():
        assert f"{status:<4} {meaning}" in help_text
    variables = set(re.findall(r"PLUM_[A-Z_]+", CLIENT_SOURCE.read_text())) | {"PLUM_LOG"}
    assert variables <= set(re.findall(r"PLUM_[A-Z_]+", help_text))
    assert variables <= set(re.findall(r"PLUM_[A-Z_]+", README.read_text()))


def test_each_command_offers_only_its_own_api_url():
    parser = build_parser()
    subparsers = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    calls = subparsers["calls"].format_help()
    events = subparsers["events"].format_help()
    assert "--fuse-url" in calls
    assert "--voicetrends-url" not in calls
    assert "--voicetrends-url" in events
    assert "--fuse-url" not in events
