"""``plumvoice simulator``: serves on loopback, prints the variables that reach it, stops."""

from __future__ import annotations

import signal
import subprocess
import sys

import anyio
import pytest

from plumvoice_async import PlumClient

from .cli_support import PLUMVOICE, run_main


def test_it_serves_what_its_export_lines_point_at_and_stops_on_sigterm():
    with subprocess.Popen(
        [str(PLUMVOICE), "simulator", "--calls", "50", "--quota", "20/4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        assert server.stdout is not None
        header = server.stdout.readline()
        assert "50 calls, 20 requests per 4 s" in header
        exported = {}
        for line in server.stdout:
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exported[name] = value
            if len(exported) == 6:
                break

        async def total() -> int:
            async with PlumClient.from_env(exported) as client:
                page = await client.calls.page(0, 2**31 - 1, limit=1)
            return page.total_calls

        try:
            assert anyio.run(total) == 50
        finally:
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=30) == 0


@pytest.mark.parametrize(
    ("argv", "argument"),
    [
        (["--quota", "150"], "--quota"),
        (["--quota", "0/900"], "--quota"),
        (["--quota", "150/0"], "--quota"),
        (["--quota", "a/b"], "--quota"),
        (["--port", "65536"], "--port"),
        (["--port", "-1"], "--port"),
        (["--calls", "0"], "--calls"),
    ],
)
def test_bad_arguments_exit_2_naming_them(argv, argument, capsys):
    status, out, err = run_main(["simulator", *argv], capsys)
    assert status == 2
    assert f"argument {argument}" in err
    assert out == ""


def test_without_uvicorn_it_says_how_to_get_it():
    script = (
        "import sys; sys.modules['uvicorn'] = None; "
        "from plumvoice_async._cli import main; sys.exit(main(['simulator']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "needs uvicorn" in result.stderr
    assert "Traceback" not in result.stderr
