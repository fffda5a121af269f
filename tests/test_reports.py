"""The five other VoiceTrends reports: their wire shape, their models, their one shared quota."""

from __future__ import annotations

import base64
from datetime import date
from typing import Any

import httpx
import pytest
import respx

from plumvoice_async import (
    CallerProfile,
    DiagnosticFlow,
    GeographicProfile,
    InvalidParameterError,
    PerformanceReport,
    Period,
    PlumClient,
    VolumeReport,
)
from plumvoice_async._core import requests as rq
from plumvoice_async._core.decode import decode_response
from plumvoice_async._core.requests import DEFAULT_VOICETRENDS_URL
from plumvoice_async._governor import account_hash
from plumvoice_async.testing import CallDataset, FakeClock, PlumSimulator
from tests.bad_inputs import REPORT_BAD_INPUTS, REPORT_VALID_KWARGS, BadInput
from tests.doubles import InstantClock, RecordingGovernor
from tests.samples import load_sample

pytestmark = pytest.mark.anyio

VT = ("temp_login", "temp-password-secret")
VT_URL = "https://voicetrends.plumvoice.com/api/"
START, END = date(2018, 2, 1), date(2018, 2, 8)

# endpoint -> (the core's report, sample, model, the path after the base URL)
REPORTS: dict[str, tuple[rq.VoiceTrendsReport, str, type, str]] = {
    "volume": (rq.VOLUME, "volume", VolumeReport, "volume/20180201/20180208/week/ALL"),
    "performance": (
        rq.PERFORMANCE,
        "performance",
        PerformanceReport,
        "performance/20180201/20180208/week/ALL",
    ),
    "caller_profile": (
        rq.CALLER_PROFILE,
        "profile",
        CallerProfile,
        "profile/20180201/20180208/week/ALL",
    ),
    "diagnostic_flow": (rq.DIAGNOSTIC_FLOW, "path", DiagnosticFlow, "path/20180201/20180208/ALL"),
    # plum-api.md quirk 4: the caller profile's prefix, three segments.
    "geographic": (rq.GEOGRAPHIC, "geographic", GeographicProfile, "profile/20180201/20180208/ALL"),
}
PERIOD_REPORTS = ("volume", "performance", "caller_profile")


async def fetch(client: PlumClient, endpoint: str, phone: str = "ALL") -> Any:
    if endpoint in PERIOD_REPORTS:
        return await getattr(client, endpoint).fetch(START, END, period="week", phone=phone)
    return await getattr(client, endpoint).fetch(START, END, phone=phone)


def sample_response(name: str) -> httpx.Response:
    status, headers, body = load_sample(name)
    return httpx.Response(status, headers=headers, content=body)


# --- the wire ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("endpoint", sorted(REPORTS))
async def test_each_report_gets_its_exact_path_and_decodes_its_sample(endpoint, fmt):
    _, sample, model, path = REPORTS[endpoint]
    governor = RecordingGovernor()
    with respx.mock(assert_all_called=True) as router:
        route = router.get(VT_URL + path).mock(return_value=sample_response(f"{sample}/200.{fmt}"))
        async with PlumClient(
            voicetrends_auth=VT, format=fmt, governor=governor, clock=InstantClock()
        ) as client:
            report = await fetch(client, endpoint)
    request = route.calls.last.request
    assert request.method == "GET"
    assert request.url.raw_path.decode() == "/api/" + path
    assert request.headers["Accept"] == f"application/{fmt}"
    expected = base64.b64encode(b"temp_login:temp-password-secret").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    # The same model from either format (the exact model per sample: test_convert_reports.py).
    assert isinstance(report, model)
    assert report == decode_response(*load_sample(f"{sample}/200.json"), model)
    # Every report spends the one VoiceTrends raw-data bucket of the account (plum-api.md 1.3).
    key, retry = governor.calls[0][1]
    assert (key.group, key.account, retry) == ("voicetrends", account_hash(VT[0]), False)


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        ("geographic", "geographic/20180201/20180208/ALL"),
        ("profile/geo", "profile/geo/20180201/20180208/ALL"),
        ("v2/reports/geographic", "v2/reports/geographic/20180201/20180208/ALL"),
    ],
)
async def test_the_geographic_path_can_be_moved(resource, path):
    with respx.mock(assert_all_called=True) as router:
        route = router.get(VT_URL + path).mock(return_value=sample_response("geographic/200.json"))
        async with PlumClient(
            voicetrends_auth=VT,
            geographic_resource=resource,
            governor=RecordingGovernor(),
            clock=InstantClock(),
        ) as client:
            profile = await client.geographic.fetch(START, END, phone="ALL")
            # The caller profile keeps the documented prefix.
            assert client.caller_profile._report.resource == "profile"
    assert route.calls.last.request.url.raw_path.decode() == "/api/" + path
    assert profile.us["US Toll-Free"] == 1


@pytest.mark.parametrize(
    "resource", ["", "/geo", "geo/", "geo//x", "..", "a/../b", "geo graphic", "geo%2F", None, 5]
)
def test_a_bad_geographic_path_is_a_setting_error(resource):
    with pytest.raises(ValueError, match="geographic_resource"):
        PlumClient(voicetrends_auth=VT, geographic_resource=resource)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("row", REPORT_BAD_INPUTS, ids=[row.id for row in REPORT_BAD_INPUTS])
def test_the_core_builder_refuses_each_bad_report_input(row: BadInput):
    # tests/test_client.py runs the same rows through the client, checking nothing is sent.
    with pytest.raises(InvalidParameterError) as caught:
        rq.report_request(DEFAULT_VOICETRENDS_URL, REPORTS[row.endpoint][0], **row.kwargs)
    assert caught.value.parameter == row.parameter


@pytest.mark.parametrize("endpoint", sorted(REPORT_VALID_KWARGS))
def test_the_valid_report_kwargs_are_accepted(endpoint):
    spec = rq.report_request(
        DEFAULT_VOICETRENDS_URL, REPORTS[endpoint][0], **REPORT_VALID_KWARGS[endpoint]
    )
    assert spec.url.startswith(DEFAULT_VOICETRENDS_URL + REPORTS[endpoint][3].split("/")[0])


def test_every_report_rule_has_a_row():
    covered = {(row.endpoint, row.parameter) for row in REPORT_BAD_INPUTS}
    for endpoint in REPORTS:
        for parameter in ("start", "end", "phone", "period"):
            assert (endpoint, parameter) in covered


# --- against the simulator ---------------------------------------------------------------------

DATASET_REPORTS = {
    "volume": lambda dataset, phone: dataset.volume_report(START, END, Period.WEEK, phone),
    "performance": lambda dataset, phone: dataset.performance_report(
        START, END, Period.WEEK, phone
    ),
    "caller_profile": lambda dataset, phone: dataset.caller_profile(START, END, Period.WEEK, phone),
    "diagnostic_flow": lambda dataset, phone: dataset.diagnostic_flow(START, END, phone),
    "geographic": lambda dataset, phone: dataset.geographic_profile(START, END, phone),
}


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_every_report_from_the_simulator_equals_its_data_set(fmt):
    # Calls 2018-02-01..08, so every report has something in it.
    dataset = CallDataset(size=2_000, start=1_517_461_200, spacing=300)
    sim = PlumSimulator(dataset, clock=FakeClock())
    async with sim.client(format=fmt) as client:
        for endpoint, expected in DATASET_REPORTS.items():
            for phone in ("ALL", dataset.numbers[1]):
                report = await fetch(client, endpoint, phone=phone)
                assert report == expected(dataset, phone), (endpoint, phone)
    assert {entry.group for entry in sim.requests} == {rq.QuotaGroup.VOICETRENDS}
    assert len(sim.requests) == 10
