"""``plumvoice report KIND``: every VoiceTrends report as rows, checked against the library.

The expected rows come from the same report fetched with ``PlumClient`` in process, so these
tests check the command's plumbing and row shapes; the reports' own decoding is tested in
test_reports.py.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import anyio
import pytest

from plumvoice_async import DiagnosticFlow, FlowNode, GeographicProfile
from plumvoice_async._cli.main import REPORTS
from plumvoice_async._cli.output import flow_rows, geographic_rows
from plumvoice_async.testing import PlumSimulator

from .cli_support import (
    MODULE,
    base_url,
    env_in_process,
    first_day,
    jsonl,
    plum_env,
    run,
    run_main,
    simulator,
    utc_text,
)

__all__ = ["base_url", "env_in_process", "simulator"]  # fixtures, imported for pytest

PERIOD_SERIES = {
    "events": [
        "calls",
        "log_events",
        "loops_per_call",
        "form_items",
        "loops",
        "average_form_items",
    ],
    "volume": ["calls", "call_minutes", "transfers", "transfer_minutes"],
    "performance": [
        "calls",
        "js_errors",
        "js_errors_per_call",
        "fetch_errors",
        "fetch_errors_per_call",
        "average_page_load",
    ],
    "caller-profile": ["calls", "callers"],
}


def days(simulator: PlumSimulator, length: int) -> tuple[date, date]:
    first = datetime.fromtimestamp(first_day(simulator), UTC).date()
    return first, first + timedelta(days=length - 1)


def fetched(simulator: PlumSimulator, kind: str, start: date, end: date, **query: Any) -> Any:
    """The report as the library returns it, fetched in process."""

    async def fetch() -> Any:
        async with simulator.client() as client:
            endpoint = getattr(client, REPORTS[kind].attribute)
            return await endpoint.fetch(start, end, **query)

    return anyio.run(fetch)


def test_every_kind_is_a_client_report():
    assert set(REPORTS) == {*PERIOD_SERIES, "diagnostic-flow", "geographic"}
    assert {kind for kind, report in REPORTS.items() if report.has_period} == set(PERIOD_SERIES)


@pytest.mark.parametrize("kind", PERIOD_SERIES)
def test_period_reports_one_row_per_period(kind, simulator, env_in_process, capsys):
    start, end = days(simulator, 3)
    status, out, err = run_main(["report", kind, str(start), str(end)], capsys)
    assert (status, err) == (0, "")
    report = fetched(simulator, kind, start, end, period="day", phone="ALL")
    rows = jsonl(out.encode())
    assert [row["period_start"] for row in rows] == [utc_text(moment) for moment in report.calls]
    assert len(rows) == 3
    for row, moment in zip(rows, report.calls, strict=True):
        assert list(row) == ["period_start", *PERIOD_SERIES[kind]]
        for series in PERIOD_SERIES[kind]:
            assert row[series] == getattr(report, series)[moment]


def test_report_events_writes_what_events_writes(simulator, env_in_process, capsys):
    start, end = days(simulator, 14)
    outputs = []
    for command in (["events"], ["report", "events"]):
        argv = [*command, str(start), str(end), "--period", "week", "--phone", "6177123000"]
        status, out, err = run_main(argv, capsys)
        assert (status, err) == (0, "")
        outputs.append(out)
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) >= 2


def test_diagnostic_flow_one_row_per_form_item_through_the_console_script(simulator, base_url):
    start, end = days(simulator, 2)
    result = run(
        ["report", "diagnostic-flow", str(start), str(end), "--format", "csv"],
        plum_env(simulator, base_url),
        command=MODULE,
    )
    assert result.returncode == 0, result.stderr
    report = fetched(simulator, "diagnostic-flow", start, end, phone="ALL")
    rows = list(csv.DictReader(io.StringIO(result.stdout.decode())))
    expected = [
        (application, node) for application, nodes in report.applications.items() for node in nodes
    ]
    assert expected
    assert len(rows) == len(expected)
    for row, (application, node) in zip(rows, expected, strict=True):
        assert row["application"] == application
        assert (row["page"], row["form"], row["item"]) == (node.page, node.form, node.item)
        assert int(row["visits"]) == node.visits
        assert int(row["disconnect"]) == node.disconnect


def test_geographic_one_row_per_place(simulator, env_in_process, capsys):
    start, end = days(simulator, 4)
    status, out, err = run_main(["report", "geographic", str(start), str(end)], capsys)
    assert (status, err) == (0, "")
    report = fetched(simulator, "geographic", start, end, phone="ALL")
    rows = jsonl(out.encode())
    assert {(row["place"], row["calls"]) for row in rows if row["group"] == "us"} == set(
        report.us.items()
    )
    assert {row["group"] for row in rows} <= {"us", "non_us"}
    assert sum(row["calls"] for row in rows) == sum(report.us.values()) + sum(
        report.non_us.values()
    )


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["report", "geographic", "2024-01-01", "2024-01-02", "--period", "day"], "--period"),
        (["report", "diagnostic-flow", "2024-01-01", "2024-01-02", "--period", "week"], "--period"),
        (["report", "volume", "2024-01-02", "2024-01-01"], "END"),
        (["report", "caller-profile", "2024-01-01", "2024-01-02", "--phone", "61/7"], "--phone"),
        (["report", "volume", "2024-01-01", "2024-01-01", "--period", "year"], "--period"),
        (["report", "heatmap", "2024-01-01", "2024-01-02"], "KIND"),
        (["report", "caller_profile", "2024-01-01", "2024-01-02"], "KIND"),
    ],
)
def test_bad_report_arguments_exit_2_naming_the_parameter_and_send_nothing(
    argv, named, simulator, env_in_process, capsys
):
    before = len(simulator.requests)
    status, out, err = run_main(argv, capsys)
    assert (status, out) == (2, "")
    assert f"argument {named}" in err
    assert "Traceback" not in err
    assert len(simulator.requests) == before


def test_flow_rows_keep_the_applications_and_their_order():
    node = FlowNode("p1", "f1", "i1", 5, 1, 1, 1, 1, 1)
    later = FlowNode("p2", "f2", "i2", 2, 2, 0, 0, 0, 0)
    report = DiagnosticFlow(applications={"https://b/app": [later, node], "https://a/app": [node]})
    columns, rows = flow_rows(report)
    assert columns == [
        "application",
        "page",
        "form",
        "item",
        "visits",
        "filled",
        "nomatch",
        "noinput",
        "transfer",
        "disconnect",
    ]
    assert [(row["application"], row["item"]) for row in rows] == [
        ("https://b/app", "i2"),
        ("https://b/app", "i1"),
        ("https://a/app", "i1"),
    ]
    assert rows[1]["visits"] == 5


def test_geographic_rows_take_the_unlisted_groups_too():
    report = GeographicProfile(
        us={"MA": 3, "US Toll-Free": 1}, non_us={"Canada": 2}, extra={"territories": {"PR": 4}}
    )
    columns, rows = geographic_rows(report)
    assert columns == ["group", "place", "calls"]
    assert rows == [
        {"group": "us", "place": "MA", "calls": 3},
        {"group": "us", "place": "US Toll-Free", "calls": 1},
        {"group": "non_us", "place": "Canada", "calls": 2},
        {"group": "territories", "place": "PR", "calls": 4},
    ]
