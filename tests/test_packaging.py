"""What the distributions carry: the license, and every file the README points to."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_license_file_is_the_one_the_metadata_names():
    assert PROJECT["project"]["license"] == "MIT"
    assert PROJECT["project"]["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_the_project_urls_are_https_addresses_that_exist_today():
    urls = PROJECT["project"]["urls"]
    assert urls
    assert all(url.startswith("https://") for url in urls.values())
    assert urls["Plum API documentation"] == "https://api-docs.plumvoice.com/"  # plum-api.md's


def test_the_sdist_carries_everything_the_readme_links_to():
    included = set(PROJECT["tool"]["hatch"]["build"]["targets"]["sdist"]["include"])
    readme = (ROOT / "README.md").read_text()
    # Relative links and paths in commands: examples/x.py, docs/y.svg, benchmarks/z.py ...
    mentioned = set(re.findall(r"(?<![\w/.])((?:examples|docs|benchmarks)/[\w./-]+)", readme))
    assert mentioned
    for path in mentioned:
        assert (ROOT / path).exists(), path
        assert path.split("/")[0] in included, path
    assert {"LICENSE", "CHANGELOG.md", "README.md"} <= included


def test_the_test_command_installs_its_system_packages_first():
    command = (ROOT / "README.md").read_text().split("<!-- test-command", 1)[1]
    assert "scripts/install-test-deps && " in command.split("```")[1]
    assert "apt-get" not in (ROOT / ".ci" / "run").read_text()  # CI runs the README's command


def test_without_a_way_to_install_it_stops_at_once_naming_what_is_missing(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "id").symlink_to(shutil.which("id"))  # no redis-server, no chromium, no apt-get
    result = subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "install-test-deps")],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    message = result.stderr.strip()
    assert "\n" not in message
    assert "redis-server" in message
    assert "chromium" in message
    assert "apt-get install -y" in message
