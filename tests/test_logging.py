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


HOSTILE = """
import base64, sys, urllib.parse
import anyio, httpx
from datetime import date
from plumvoice_async import PlumClient, PlumError, VoiceTrendsLogin

def echo(request):
    said = [request.headers.get("authorization", ""), request.content.decode()]
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme == "Basic":
        said.append(base64.b64decode(token).decode())
    said += [v for _, v in urllib.parse.parse_qsl(request.content.decode())]
    text = "; ".join(said)
    if request.url.path.endswith("/auth"):
        if "minted" not in sys.argv:
            sys.argv.append("minted")
            return httpx.Response(200, json={"login": "mint-l0gin", "password": "mint-passw0rd"})
        return httpx.Response(400, json={"error": text})
    return httpx.Response(401, json={"error": text, "message": text})

DAY = date(2023, 11, 14)

def hook(event):
    raise RuntimeError("observer bug")

async def main():
    client = PlumClient(
        fuse_auth=("me@example.com", "DEVKEY-secret"),
        voicetrends_login=VoiceTrendsLogin("dev", "tool.owner@example.com", "p@ss w0rd"),
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(echo)),
        event_hooks=[hook],
    )
    async with client:
        for call in (
            lambda: client.calls.page(1, 2),
            lambda: client.events.fetch(DAY, DAY, period="day", phone="ALL"),
            lambda: client.calls.with_raw_response.page(1, 2),
        ):
            try:
                await call()
            except PlumError as exc:
                print(exc, file=sys.stderr)  # what an application's error log would show
                import logging
                logging.getLogger("plumvoice_async").warning("failed: %s", exc, exc_info=True)

anyio.run(main)
"""
HOSTILE_SECRETS = (
    "me@example.com",
    "DEVKEY-secret",
    "bWVAZXhhbXBsZS5jb206REVWS0VZLXNlY3JldA==",
    "tool.owner@example.com",
    "tool.owner%40example.com",
    "p@ss w0rd",
    "p%40ss+w0rd",
    "mint-l0gin",
    "mint-passw0rd",
)


@pytest.mark.parametrize("level", ["debug", "info", "warning"])
def test_no_secret_in_any_log_line_when_the_server_echoes_the_request(level):
    """Every PLUM_LOG level, a server answering 401/400 with the request's credentials, the
    ``auth`` form and the minted pair, a hook that raises, and the errors logged by the
    application with their tracebacks: no credential in any line."""
    env = {name: value for name, value in os.environ.items() if name != "PLUM_LOG"}
    env["PLUM_LOG"] = level
    result = subprocess.run(
        [sys.executable, "-c", HOSTILE],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "observer bug" in result.stderr  # the hook's WARNING, at every level
    assert "401: " in result.stderr
    assert [secret for secret in HOSTILE_SECRETS if secret in result.stderr] == []
