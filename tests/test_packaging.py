"""What the distributions carry: the license, and every file the README points to."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_license_file_is_the_one_the_metadata_names():
    assert PROJECT["project"]["license"] == "MIT"
    assert PROJECT["project"]["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


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
