"""Every code block in the README runs: the quick start against a served simulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from plumvoice_async.testing import PlumSimulator, serve

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)


def blocks(language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall(README.read_text()) if lang == language]


def test_the_readme_has_the_test_command_marked_for_ci():
    text = README.read_text()
    marker = text.index("<!-- test-command")
    command = BLOCK.search(text, marker)
    assert command is not None
    assert "pip install -e '.[dev]'" in command.group(2)
    assert "pytest" in command.group(2)


SCRIPTS = [code for code in blocks("python") if "async def test_" not in code]
TESTS = [code for code in blocks("python") if "async def test_" in code]


@pytest.mark.parametrize("code", SCRIPTS)
def test_script_blocks_run_against_the_simulator(code: str, tmp_path: Path):
    simulator = PlumSimulator()
    env = {
        **os.environ,
        "PLUM_FUSE_EMAIL": simulator.fuse_auth[0],
        "PLUM_FUSE_DEVELOPER_KEY": simulator.fuse_auth[1],
        "PLUM_VOICETRENDS_LOGIN": simulator.voicetrends_auth[0],
        "PLUM_VOICETRENDS_PASSWORD": simulator.voicetrends_auth[1],
    }
    script = tmp_path / "block.py"
    script.write_text(code)
    with serve(simulator) as url:
        env["PLUM_FUSE_URL"] = env["PLUM_VOICETRENDS_URL"] = url
        result = subprocess.run(
            [sys.executable, str(script)],
            env=env,
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
