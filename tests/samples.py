"""Load the documented response samples of ``tests/samples/`` (see its README)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).parent / "samples"


def load_sample(name: str) -> tuple[int, dict[str, str], bytes]:
    """``load_sample("events/200.json")`` -> ``(status, headers, body)`` as the docs print them."""
    raw = (SAMPLES / f"{name}.http").read_bytes()
    head, _, body = raw.partition(b"\n\n")
    status_line, *header_lines = head.decode("ascii").split("\n")
    _version, status, _reason = status_line.split(" ", 2)
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status), headers, body


def wire_call(**changes: Any) -> dict[str, Any]:
    """The documented ``/api/calls`` row (plum-api.md 2.2) as the wire sends it, with changes."""
    return {
        "dest": "8009957586",
        "src": "2125551234",
        "start": 1529552691,
        "end": 1529552697,
        "session_id": "300060;001;1529552581",
        "type": "inbound",
        "log": True,
        **changes,
    }
