"""SyncPlumClient as a type checker sees it: read by mypy (tests/test_sync_typing.py), not run.

Each ``assert_type`` holds only if the facade kept the async method's return type; each line
marked ``# error:`` must be an error, as it is for the async method (wrong type, unknown or
missing keyword). Any other error, or one of these missing, fails the test.
"""

from __future__ import annotations

from datetime import date
from typing import assert_type

from plumvoice_async import (
    Call,
    CallerProfile,
    CallEvent,
    CallPage,
    DiagnosticFlow,
    EventReport,
    ExportResult,
    GeographicProfile,
    PerformanceReport,
    RawResponse,
    ResumePoint,
    SyncPageIterator,
    SyncPlumClient,
    VolumeReport,
)


def use(client: SyncPlumClient, today: date) -> None:
    assert_type(client.calls.page(0, 1, limit=10), CallPage)
    walk = client.calls.iterate(0, 1, page_size=10)
    assert_type(walk, SyncPageIterator[Call, str])
    for call in walk:
        assert_type(call, Call)
    assert_type(walk.checkpoint, ResumePoint[str])
    assert_type(walk.last_key, str | None)
    assert_type(walk.total, int | None)
    assert_type(client.calls.with_raw_response.page(0, 1), RawResponse[CallPage])
    assert_type(client.calls.export(0, 1, "calls.jsonl"), ExportResult)
    assert_type(client.call_details.get("1;2;3"), list[CallEvent])
    assert_type(client.call_details.with_raw_response.get("1;2;3"), RawResponse[list[CallEvent]])
    assert_type(client.events.fetch(today, today, period="day", phone="ALL"), EventReport)
    assert_type(client.volume.fetch(today, today, period="day", phone="ALL"), VolumeReport)
    assert_type(
        client.performance.fetch(today, today, period="day", phone="ALL"), PerformanceReport
    )
    assert_type(client.caller_profile.fetch(today, today, period="day", phone="ALL"), CallerProfile)
    assert_type(client.diagnostic_flow.fetch(today, today, phone="ALL"), DiagnosticFlow)
    assert_type(client.geographic.fetch(today, today, phone="ALL"), GeographicProfile)
    assert_type(
        client.volume.with_raw_response.fetch(today, today, period="day", phone="ALL"),
        RawResponse[VolumeReport],
    )
    assert_type(
        client.geographic.with_raw_response.fetch(today, today, phone="ALL"),
        RawResponse[GeographicProfile],
    )
    assert_type(client.with_options(max_wait=0).calls.page(0, 1), CallPage)
    client.calls.page(0, 1, limit="10")  # error: arg-type
    client.calls.page(0, 1, limitt=10)  # error: call-arg
    client.calls.iterate(0, 1, page_size=None)  # error: arg-type
    client.volume.fetch(today, today, phone="ALL")  # error: call-arg
    client.volume.with_raw_response.fetch(today, today, phone="ALL")  # error: call-arg
