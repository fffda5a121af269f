"""The documentation site builds, renders in a real browser, and its examples run.

The site is built once per session with the venv's ``mkdocs build --strict`` (a broken
cross-reference or docstring fails it), then its pages are opened in headless Chromium,
Debian's ``chromium`` package, which ``.ci/run`` installs where it is missing: a machine
without it fails here rather than skipping, so a green run always means the site was seen.

Every Python block of ``docs/`` is one of the README's (which ``test_readme`` runs) or is run
here: programs in a subprocess against a simulator served on loopback, pytest-style blocks on
asyncio and trio with a fresh simulator. The ``plumvoice`` command lines run the same way.
"""

from __future__ import annotations

import html
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

import plumvoice_async
import plumvoice_async.testing
from plumvoice_async.testing import PlumSimulator, serve

from .test_readme import README, simulator_env

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)
INSTALL_CHROMIUM = "apt-get install -y chromium"
REMOTE_ASSET = re.compile(r'<(?:link|script|img)\b[^>]*\b(?:src|href)="(https?://[^"]+)"')


def page_blocks(language: str) -> list[tuple[str, str]]:
    """``(page, code)`` of every fenced block in ``language`` on the site's pages."""
    return [
        (page.name, code)
        for page in sorted(DOCS.glob("*.md"))
        for lang, code in BLOCK.findall(page.read_text())
        if lang == language
    ]


def readme_blocks() -> set[str]:
    return {code for _, code in BLOCK.findall(README.read_text())}


def block_ids(blocks: list[tuple[str, str]]) -> list[str]:
    """``paging.md-1``: the page and the block's number among those of the list on it."""
    pages = [page for page, _ in blocks]
    return [f"{page}-{pages[:n].count(page) + 1}" for n, page in enumerate(pages)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built as CI builds it: strict, with the mkdocs of this environment."""
    out = tmp_path_factory.mktemp("site")
    mkdocs = Path(sys.executable).parent / "mkdocs"
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            f"headless Chromium is needed to check the documentation site: {INSTALL_CHROMIUM}"
        )
    return path


@pytest.fixture
def render(chromium: str, tmp_path: Path) -> Callable[[Path], str]:
    """``render(file)``: the DOM of a local page after Chromium has loaded and run it."""

    def dump_dom(page: Path) -> str:
        result = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",  # CI runs as root, where Chromium refuses its sandbox
                "--disable-gpu",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert "</html>" in result.stdout, result.stderr[-2000:]
        return result.stdout

    return dump_dom


def visible_text(dom: str) -> str:
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


def test_the_index_page_renders_its_title(site: Path, render):
    dom = render(site / "index.html")
    assert re.search(r"<title>\s*plumvoice-async\s*</title>", dom)
    assert re.search(r"<h1[^>]*>\s*plumvoice-async", dom)
    # Material's bundle, served from the site itself, ran: it marks the page as scripted and
    # adds the copy buttons to the code blocks.
    assert 'class="no-js"' not in dom
    assert "md-code__button" in dom


def test_the_api_reference_lists_every_public_name(site: Path, render):
    dom = render(site / "api" / "index.html")
    assert 'id="plumvoice_async.PlumClient"' in dom
    documented = set(re.findall(r'id="(plumvoice_async(?:\.testing)?\.\w+)"', dom))
    public = {f"plumvoice_async.{name}" for name in plumvoice_async.__all__} | {
        f"plumvoice_async.testing.{name}" for name in plumvoice_async.testing.__all__
    }
    missing = sorted(public - documented)
    assert not missing, f"add these public names to docs/api.md: {missing}"
    assert "PlumClient" in visible_text(dom)


def test_the_api_reference_shows_no_error_or_broken_reference(site: Path, render):
    text = visible_text(render(site / "api" / "index.html"))
    # A bare "Error" (a class name such as PlumError does not match) is how a failed render or
    # a docstring pasted from a traceback shows; the message shows where.
    bare = [text[max(0, m.start() - 80) : m.end() + 80] for m in re.finditer(r"\bError\b", text)]
    assert not bare, bare
    assert "Traceback" not in text
    assert "Could not" not in text
    assert ":::" not in text  # an identifier mkdocstrings did not expand
    assert not re.search(r"\]\[[\w.]+\]", text)  # an autorefs link left unresolved


def test_every_page_loads_nothing_from_the_network(site: Path):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 10
    for page in pages:
        remote = REMOTE_ASSET.findall(page.read_text())
        assert not remote, (page, remote)


def test_the_readme_links_the_site():
    assert "(docs/index.md)" in README.read_text()


NEW_PYTHON = [(page, code) for page, code in page_blocks("python") if code not in readme_blocks()]
NEW_PROGRAMS = [(page, code) for page, code in NEW_PYTHON if "async def test_" not in code]
NEW_TESTS = [(page, code) for page, code in NEW_PYTHON if "async def test_" in code]
COMMANDS = [
    (page, code)
    for page, code in page_blocks("sh")
    if code.startswith("plumvoice ") and code not in readme_blocks()
]


def test_the_site_has_examples_of_its_own_and_every_block_is_accounted_for():
    assert NEW_PROGRAMS
    assert NEW_TESTS
    assert COMMANDS
    for _, code in page_blocks("python"):
        compile(code, "<docs>", "exec")


@pytest.mark.parametrize(("page", "code"), NEW_PROGRAMS, ids=block_ids(NEW_PROGRAMS))
def test_program_blocks_run_against_the_simulator(page: str, code: str, tmp_path: Path):
    simulator = PlumSimulator()
    script = tmp_path / "block.py"
    script.write_text(code)
    with serve(simulator) as url:
        result = subprocess.run(
            [sys.executable, str(script)],
            env=simulator_env(simulator, url),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, (page, result.stderr)
    assert result.stdout.strip(), page
    assert any(entry.status == 200 for entry in simulator.requests), page


@pytest.mark.parametrize(("page", "code"), NEW_TESTS, ids=block_ids(NEW_TESTS))
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_pytest_blocks_pass_with_a_fresh_simulator(page: str, code: str, backend: str):
    namespace: dict[str, object] = {}
    exec(compile(code, str(DOCS / page), "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert tests, page
    for test in tests:
        assert callable(test)
        fixtures = [PlumSimulator() for _ in inspect.signature(test).parameters]
        anyio.run(test, *fixtures, backend=backend)


@pytest.mark.parametrize(("page", "code"), COMMANDS, ids=block_ids(COMMANDS))
def test_command_blocks_run_against_the_simulator(page: str, code: str, tmp_path: Path):
    """Each block's lines run in order, in one folder, against one simulator."""
    simulator = PlumSimulator()
    with serve(simulator) as url:
        for line in code.strip().splitlines():
            result = subprocess.run(
                ["bash", "-c", line],
                env=simulator_env(simulator, url),
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, (page, line, result.stderr)
    for export in tmp_path.glob("*.jsonl"):  # every call exported exactly once
        rows = [json.loads(row) for row in export.read_text().splitlines()]
        assert len(rows) == len({row["session_id"] for row in rows}) == len(simulator.dataset)
