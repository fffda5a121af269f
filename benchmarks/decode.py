"""Decoding benchmark: a typed page against the bare parser of its body, in one run. By hand:

    .venv/bin/python benchmarks/decode.py             # 10,000 calls per page, median of 31
    .venv/bin/python benchmarks/decode.py --calls 1000 --runs 101

Every figure is a ratio to a baseline timed in the same run, interleaved with it (one run of
each in turn, the median of each), so the load of a shared machine moves both alike; each is
given in wall-clock time and in the CPU time of the thread:

1. ``calls`` JSON: ``decode_response(..., CallPage)`` (parse, normalise, structure into typed
   ``Call``s) against ``json.loads`` of the same body. Target: <= 2.0x.
2. ``calls`` XML: the same page as XML against ``xmltodict.parse`` of it.
3. ``all_logs`` JSON: a ``DetailedCallPage`` of the same calls with three log lines each.
4. Malformed bodies (issue 12), each until its ``DecodeError``: 100,000 ``{}`` rows, 1,000,000
   ``null`` rows, 1,000,000 ``<item/>`` XML rows, against the bare parser of the same body.

Then the throughput of the happy paths in MiB/s, which says how long one body holds the event
loop (decoding runs on it; see the README).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import statistics
import time
from collections.abc import Callable

import xmltodict

from plumvoice_async._core.decode import decode_response
from plumvoice_async._errors import DecodeError
from plumvoice_async._models import CallPage, DetailedCallPage

JSON = {"Content-Type": "application/json"}
XML = {"Content-Type": "application/xml"}
MIB = 1024 * 1024


def wire_calls(count: int, *, detail: bool = False) -> list[dict[str, object]]:
    """``count`` calls as ``/api/calls`` sends them (``all_logs``: string times, a log)."""
    calls: list[dict[str, object]] = []
    for index in range(count):
        start = 1_529_552_691 + 7 * index
        call: dict[str, object] = {
            "dest": "8009957586",
            "src": f"617555{index % 10_000:04d}",
            "start": str(start) if detail else start,  # plum-api.md 2.3: strings in all_logs
            "end": str(start + 36) if detail else start + 36,
            "session_id": f"300060;001;{start - 110}",
        }
        if detail:
            call["detail"] = wire_events(start)
        call |= {"type": "inbound", "log": True}
        calls.append(call)
    return calls


def wire_events(start: int) -> list[dict[str, object]]:
    return [
        {
            "event": {
                "line": 'Executing application "Welcome Application" version "1.0"',
                "data": {"module_type": "start", "result_variable": "start"},
            },
            "class": "info",
            "timestamp": start,
        },
        {
            "event": {
                "line": "Hello, welcome to the Plum Fuse Plus sample application.",
                "data": {"type": "static", "has_audio": False, "module_type": "prompt"},
            },
            "class": "prompt",
            "timestamp": start + 1,
        },
        {
            "event": {"line": "User input: 6 (dtmf)", "data": {"module_type": "number"}},
            "class": "event",
            "timestamp": start + 19,
        },
    ]


def xml_page(calls: list[dict[str, object]], total: int) -> bytes:
    items = "".join(
        "<item>" + "".join(f"<{k}>{str(v).lower()}</{k}>" for k, v in call.items()) + "</item>"
        for call in calls
    )
    return f'<?xml version="1.0"?><result><calls>{items}</calls>'.encode() + (
        f"<total_calls>{total}</total_calls></result>".encode()
    )


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one call (the CPU time of this thread leaves out the
    time the neighbours of a shared machine hold the core)."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.thread_time()
    with contextlib.suppress(DecodeError):
        action()
    return time.perf_counter() - wall, time.thread_time() - cpu


def compare(
    label: str, subject: Callable[[], object], baseline: Callable[[], object], runs: int
) -> float:
    """Run ``subject`` and ``baseline`` in turn; print their medians and ratios (wall, CPU).

    Returns the subject's median wall-clock seconds.
    """
    subject_times: list[tuple[float, float]] = []
    baseline_times: list[tuple[float, float]] = []
    for _ in range(runs):
        baseline_times.append(timed(baseline))
        subject_times.append(timed(subject))
    subject_wall, subject_cpu = map(statistics.median, zip(*subject_times, strict=True))
    base_wall, base_cpu = map(statistics.median, zip(*baseline_times, strict=True))
    print(
        f"{label:48s} {subject_wall * 1e3:8.2f} ms / {base_wall * 1e3:7.2f} ms"
        f"  ratio {subject_wall / base_wall:5.2f}x  (CPU time: {subject_cpu / base_cpu:5.2f}x)"
    )
    return float(subject_wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=10_000, help="calls per page")
    parser.add_argument("--runs", type=int, default=31, help="timed runs of each (median)")
    args = parser.parse_args()
    calls, runs = args.calls, args.runs

    json_body = json.dumps({"calls": wire_calls(calls), "total_calls": calls}).encode()
    xml_body = xml_page(wire_calls(calls), calls)
    all_logs = json.dumps({"calls": wire_calls(calls, detail=True), "total_calls": calls})
    all_logs_body = all_logs.encode()
    print(
        f"one page of {calls:,} calls: JSON {len(json_body) / MIB:.2f} MiB, "
        f"XML {len(xml_body) / MIB:.2f} MiB, all_logs JSON {len(all_logs_body) / MIB:.2f} MiB"
    )
    print("happy path (typed decode / bare parser):")
    json_time = compare(
        "calls JSON / json.loads",
        lambda: decode_response(200, JSON, json_body, CallPage),
        lambda: json.loads(json_body),
        runs,
    )
    xml_time = compare(
        "calls XML / xmltodict.parse",
        lambda: decode_response(200, XML, xml_body, CallPage),
        lambda: xmltodict.parse(xml_body),
        runs,
    )
    logs_time = compare(
        "all_logs JSON (3 log lines a call) / json.loads",
        lambda: decode_response(200, JSON, all_logs_body, DetailedCallPage),
        lambda: json.loads(all_logs_body),
        runs,
    )

    print("malformed bodies, until the DecodeError (decode / bare parser):")
    empty_rows = b'{"calls": [' + b",".join([b"{}"] * 100_000) + b'], "total_calls": 1}'
    null_rows = b'{"calls": [' + b",".join([b"null"] * 1_000_000) + b'], "total_calls": 1}'
    item_rows = b"<result><calls>" + b"<item/>" * 1_000_000 + b"</calls></result>"
    bad_runs = max(3, runs // 10)
    malformed: list[tuple[str, bytes, dict[str, str], Callable[[bytes], object]]] = [
        ("100,000 {} rows, JSON", empty_rows, JSON, json.loads),
        ("1,000,000 null rows, JSON", null_rows, JSON, json.loads),
        ("1,000,000 <item/> rows, XML", item_rows, XML, xmltodict.parse),
    ]
    for label, body, headers, parse in malformed:
        compare(
            f"{label} ({len(body) / MIB:.1f} MiB)",
            functools.partial(decode_response, 200, headers, body, CallPage),
            functools.partial(parse, body),
            bad_runs,
        )

    print("throughput of the typed decode (time one body holds the event loop):")
    for label, body, seconds in (
        ("calls JSON", json_body, json_time),
        ("calls XML", xml_body, xml_time),
        ("all_logs JSON", all_logs_body, logs_time),
    ):
        print(f"{label:44s} {len(body) / MIB / seconds:7.1f} MiB/s")


if __name__ == "__main__":
    main()
