"""Load the documented response samples of ``tests/samples/`` (see its README)."""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).parent / "samples"


def load_sample(name: str) -> tuple[int, dict[str, str], bytes]:
    """``load_sample("events/200.json")`` -> ``(status, headers, body)`` as the docs print them."""
    raw = (SAMPLES / f"{name}.http").read_bytes()
    head, _, body = raw.partition(b"\n\n")
    status_line, *header_lines = head.decode("ascii").split("\n")
    _version, status, _reason = status_line.split(" ", 2)
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status), headers, body
