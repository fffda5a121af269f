"""Every code block in the README runs.

Python scripts run in a subprocess with ``PLUM_*`` pointing at a simulator served on loopback
(and, for the blocks that read it, ``PLUM_REDIS_URL`` at the session's real redis-server);
pytest-style blocks run with a fresh simulator on both backends; the shell blocks run with
bash, the demo's and the CLI's commands in this environment (their install prefix is the one
``.ci/run`` executes verbatim for the test command on a fresh clone).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from plumvoice_async.testing import PlumSimulator, serve

from .redis_server import redis_url

__all__ = ["redis_url"]  # the fixture, imported for pytest
pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)


def blocks(language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall(README.read_text()) if lang == language]


def marked_block(marker: str) -> str:
    text = README.read_text()
    block = BLOCK.search(text, text.index(f"<!-- {marker}"))
    assert block is not None
    return block.group(2)


def test_the_readme_has_the_test_command_marked_for_ci():
    command = marked_block("test-command")
    assert "pip install -e '.[dev]'" in command
    assert "pytest" in command


def simulator_env(simulator: PlumSimulator, url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PLUM_FUSE_EMAIL": simulator.fuse_auth[0],
        "PLUM_FUSE_DEVELOPER_KEY": simulator.fuse_auth[1],
        "PLUM_VOICETRENDS_LOGIN": simulator.voicetrends_auth[0],
        "PLUM_VOICETRENDS_PASSWORD": simulator.voicetrends_auth[1],
        "PLUM_FUSE_URL": url,
        "PLUM_VOICETRENDS_URL": url,
    }


def test_the_demo_command_runs(tmp_path: Path):
    command = marked_block("demo-command").strip()
    assert "pip install -e '.[demo]'" in command
    demo = command.rsplit("&&", 1)[1].strip()
    assert demo == "plumvoice demo"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    before = {p.name for p in Path(tempfile.gettempdir()).iterdir()}
    result = subprocess.run(
        ["bash", "-c", demo],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "429 answers: 0" in result.stdout
    # Its files land where the summary says, in the working directory, and nowhere else.
    assert f"-> {Path('plumvoice-demo') / 'calls.jsonl'}" in result.stdout
    assert (tmp_path / "plumvoice-demo" / "calls.jsonl").stat().st_size > 0
    after = {p.name for p in Path(tempfile.gettempdir()).iterdir()}
    assert not [name for name in after - before if name.startswith("plumvoice-demo")]


SIMULATOR_BLOCK = next(code for code in blocks("sh") if code.startswith("plumvoice simulator"))
CLI_BLOCKS = [
    code
    for code in blocks("sh")
    if code.lstrip().startswith("plumvoice ") and code != SIMULATOR_BLOCK
]


@pytest.fixture(scope="module")
def simulator_command() -> Iterator[dict[str, str]]:
    """The README's ``plumvoice simulator`` running; the variables its export lines set."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {name: value for name, value in os.environ.items() if not name.startswith("PLUM_")}
    env["PATH"] = path
    with subprocess.Popen(
        ["bash", "-c", f"exec {SIMULATOR_BLOCK.strip()}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        assert server.stdout is not None
        exported: dict[str, str] = {}
        try:
            for line in server.stdout:
                if line.startswith("export "):
                    name, _, value = line.removeprefix("export ").strip().partition("=")
                    exported[name] = value
                    if len(exported) == 6:
                        break
            assert len(exported) == 6
            yield {**env, **exported}
        finally:
            server.send_signal(signal.SIGINT)
            assert server.wait(timeout=30) == 0  # Ctrl-C is the simulator's normal end


@pytest.mark.parametrize("code", CLI_BLOCKS)
def test_cli_blocks_run_against_the_readme_simulator(
    code: str, tmp_path: Path, simulator_command: dict[str, str]
):
    for line in code.strip().splitlines():
        result = subprocess.run(
            ["bash", "-c", line],
            env=simulator_command,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, (line, result.stderr)
    assert (tmp_path / "calls.csv").read_text().count("\n") > 1
    assert (tmp_path / "details.jsonl").read_text().count("\n") > 1


def test_every_block_is_covered():
    # + the simulator, the test and the demo commands
    covered = len(SCRIPTS) + len(TESTS) + len(CLI_BLOCKS) + 3
    assert covered == len(BLOCK.findall(README.read_text()))


SCRIPTS = [code for code in blocks("python") if "async def test_" not in code]
TESTS = [code for code in blocks("python") if "async def test_" in code]


@pytest.mark.parametrize("code", SCRIPTS)
def test_script_blocks_run_against_the_simulator(code: str, tmp_path: Path, redis_url: str):
    simulator = PlumSimulator()
    env = {
        **os.environ,
        "PLUM_FUSE_EMAIL": simulator.fuse_auth[0],
        "PLUM_FUSE_DEVELOPER_KEY": simulator.fuse_auth[1],
        "PLUM_VOICETRENDS_LOGIN": simulator.voicetrends_auth[0],
        "PLUM_VOICETRENDS_PASSWORD": simulator.voicetrends_auth[1],
    }
    if "PLUM_REDIS_URL" in code:  # the Redis section's blocks get a real one
        env["PLUM_REDIS_URL"] = redis_url
    script = tmp_path / "block.py"
    script.write_text(code)
    with serve(simulator) as url:
        env["PLUM_FUSE_URL"] = env["PLUM_VOICETRENDS_URL"] = url
        result = subprocess.run(
            [sys.executable, str(script)],
            env=env,
            cwd=tmp_path,  # what a block writes lands in the test's folder
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert sum(1 for entry in simulator.requests if entry.status == 200) >= 1


@pytest.mark.parametrize("code", TESTS)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_pytest_blocks_pass_with_a_fresh_simulator(code: str, backend: str):
    namespace: dict[str, object] = {}
    exec(compile(code, str(README), "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert tests
    for test in tests:
        anyio.run(test, PlumSimulator(), backend=backend)  # type: ignore[arg-type]


@pytest.mark.parametrize("code", TESTS)
def test_pytest_blocks_pass_copied_into_a_suite_with_no_configuration(
    code: str, pytester: pytest.Pytester
):
    pytester.makepyfile(test_copied=code)
    # A user's suite: no ini file, no conftest, only the plugins that come installed.
    result = pytester.runpytest_subprocess("-p", "no:asyncio")  # pytest-asyncio: ours, not theirs
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 1, result.stdout.str()
    assert not {"failed", "errors", "skipped", "xfailed"} & outcomes.keys(), outcomes
