"""What the CLI tests share: a simulator served on loopback, the environment pointing at it,
and runners that check no credential and no traceback ever reaches the user."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from plumvoice_async import Call, DetailedCall
from plumvoice_async._cli.main import main
from plumvoice_async.testing import PlumSimulator, serve

__all__ = [
    "DAY",
    "MODULE",
    "PLUMVOICE",
    "base_url",
    "env_in_process",
    "expected_call",
    "expected_detail",
    "first_day",
    "jsonl",
    "plum_env",
    "run",
    "run_main",
    "simulator",
    "utc_text",
]

PLUMVOICE = Path(sys.executable).with_name("plumvoice")
MODULE = [sys.executable, "-m", "plumvoice_async._cli"]
DAY = 86_400


@pytest.fixture(scope="module")
def simulator() -> PlumSimulator:
    return PlumSimulator(limit=100_000)  # quota is not what these tests are about


@pytest.fixture(scope="module")
def base_url(simulator: PlumSimulator) -> Iterator[str]:
    with serve(simulator) as url:
        yield url


def plum_env(simulator: PlumSimulator, url: str, **overrides: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PLUM_")}
    env.update(
        PLUM_FUSE_EMAIL=simulator.fuse_auth[0],
        PLUM_FUSE_DEVELOPER_KEY=simulator.fuse_auth[1],
        PLUM_VOICETRENDS_LOGIN=simulator.voicetrends_auth[0],
        PLUM_VOICETRENDS_PASSWORD=simulator.voicetrends_auth[1],
        PLUM_FUSE_URL=url,
        PLUM_VOICETRENDS_URL=url,
    )
    env.update(overrides)
    return env


@pytest.fixture
def env_in_process(simulator, base_url, monkeypatch) -> dict[str, str]:
    """The same variables for ``main()`` called in this process."""
    env = plum_env(simulator, base_url)
    for name in [name for name in os.environ if name.startswith("PLUM_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("PLUM_"):
            monkeypatch.setenv(name, value)
    return env


def run(args: list[str], env: dict[str, str], *, command: list[str] | None = None):
    result = subprocess.run(
        [*(command or [str(PLUMVOICE)]), *args],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    for secret in (*PlumSimulator.FUSE_AUTH, *PlumSimulator.VOICETRENDS_AUTH):
        assert secret.encode() not in result.stdout + result.stderr
    assert b"Traceback" not in result.stderr
    return result


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's own refusals
        status = int(exit_.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expected_call(call: Call) -> dict[str, object]:
    return {
        "session_id": call.session_id,
        "dest": call.dest,
        "src": call.src,
        "start": utc_text(call.start),
        "end": utc_text(call.end),
        "type": call.type.value,
        "log": call.log,
    }


def expected_detail(call: DetailedCall) -> list[dict[str, object]]:
    return [
        {
            "line": event.line,
            "event_class": event.event_class,
            "timestamp": utc_text(event.timestamp),
            "data": event.data,
        }
        for event in call.detail
    ]


def jsonl(data: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def first_day(simulator: PlumSimulator) -> int:
    """The data set starts at a UTC midnight (four days before today)."""
    return simulator.dataset.start
