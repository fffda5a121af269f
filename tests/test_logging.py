"""The package logger: silent by default, ``PLUM_LOG`` sends it to stderr, no secret in it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from plumvoice_async._logging import configure_from_env, logger

SCRIPT = """
import anyio
from plumvoice_async.testing import PlumSimulator

async def main():
    simulator = PlumSimulator()
    async with simulator.client() as client:
        await client.calls.page(0, 2**31 - 1, limit=1)

anyio.run(main)
"""


def run(env_value: str | None) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name != "PLUM_LOG"}
    if env_value is not None:
        env["PLUM_LOG"] = env_value
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def restored_logger() -> Iterator[None]:
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def test_silent_without_plum_log():
    result = run(None)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_plum_log_debug_writes_the_governor_and_requests_to_stderr_without_secrets():
    from plumvoice_async.testing import PlumSimulator

    result = run("debug")
    assert result.returncode == 0, result.stderr
    assert "DEBUG plumvoice_async:" in result.stderr
    assert "GET /api/calls/" in result.stderr
    for secret in (*PlumSimulator.FUSE_AUTH, *PlumSimulator.VOICETRENDS_AUTH):
        assert secret not in result.stderr


def test_plum_log_warning_hides_debug_records():
    result = run("WARNING")
    assert result.returncode == 0, result.stderr
    assert "DEBUG" not in result.stderr


@pytest.mark.usefixtures("restored_logger")
def test_an_unknown_level_is_ignored_with_a_warning_naming_the_accepted_ones():
    with pytest.warns(RuntimeWarning, match="debug, info, warning"):
        configure_from_env({"PLUM_LOG": "verbose"})
    assert logger.level == logging.NOTSET


@pytest.mark.usefixtures("restored_logger")
def test_configuring_twice_adds_one_handler():
    configure_from_env({"PLUM_LOG": "info"})
    configure_from_env({"PLUM_LOG": "debug"})
    streams = [h for h in logger.handlers if type(h).__name__ == "_StderrHandler"]
    assert len(streams) == 1
    assert logger.level == logging.DEBUG
