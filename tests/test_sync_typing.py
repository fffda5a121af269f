"""SyncPlumClient keeps the async methods' signatures for a type checker (mypy --strict)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

USAGE = Path(__file__).with_name("sync_typed_usage.py")
EXPECTED = re.compile(r"# error: ([a-z-]+)$")
REPORTED = re.compile(r"^[^:]+:(\d+): error: .*\[([a-z-]+)\]$")


def test_mypy_strict_sees_the_async_signatures_through_the_facade():
    expected = {
        (number, match.group(1))
        for number, line in enumerate(USAGE.read_text().splitlines(), start=1)
        if (match := EXPECTED.search(line))
    }
    assert len(expected) == 5
    stdout, stderr, _ = mypy_api.run(["--strict", "--no-error-summary", str(USAGE)])
    reported = {
        (int(match.group(1)), match.group(2))
        for line in stdout.splitlines()
        if (match := REPORTED.match(line))
    }
    assert reported == expected, stdout + stderr
