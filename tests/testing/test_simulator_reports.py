"""The simulator's other VoiceTrends reports and its ``auth`` resource, seen through plain httpx."""

from __future__ import annotations

import json
import re
from datetime import date
from xml.etree.ElementTree import Element

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from plumvoice_async import (
    CallerProfile,
    DiagnosticFlow,
    GeographicProfile,
    PerformanceReport,
    Period,
    VolumeReport,
)
from plumvoice_async._core.decode import decode_response
from plumvoice_async._core.requests import QuotaGroup
from plumvoice_async._governor import account_hash
from plumvoice_async.testing import CallDataset, FakeClock, PlumSimulator, Quota
from tests.samples import load_sample

pytestmark = pytest.mark.anyio

NOW = 1_700_000_000.0  # FakeClock's default start; 1_700_000_100 is the next 900 s boundary
XML = {"accept": "application/xml"}
RANGE = "20231110/20231113"
HEX32 = re.compile(r"[0-9a-f]{32}")
TOOL, LOGIN, PASSWORD = PlumSimulator.VOICETRENDS_LOGIN
FORM = {"tool": TOOL, "login": LOGIN, "password": PASSWORD}


def make_sim(**options) -> tuple[PlumSimulator, FakeClock]:
    clock = FakeClock(NOW)
    return PlumSimulator(clock=clock, **options), clock


def http(sim: PlumSimulator, auth: tuple[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=sim.transport(), base_url=sim.BASE_URL, auth=auth)


def xml_root(response: httpx.Response) -> Element:
    assert response.headers["content-type"] == "application/xml"
    root: Element = fromstring(response.content)
    return root


def sample_json(name: str):
    return json.loads(load_sample(name)[2])


def read(response: httpx.Response, model):
    return decode_response(response.status_code, response.headers, response.content, model)


# --- the reports -------------------------------------------------------------------------------

PERIOD_PATHS = {
    "volume": ("volume", VolumeReport),
    "performance": ("performance", PerformanceReport),
    "profile": ("caller_profile", CallerProfile),
}


@pytest.mark.parametrize("resource", sorted(PERIOD_PATHS))
async def test_period_reports_send_the_sample_keys_counts_as_ints_and_ratios_as_floats(resource):
    sim, _ = make_sim()
    async with http(sim, sim.voicetrends_auth) as client:
        response = await client.get(f"{resource}/{RANGE}/day/ALL")
        as_xml = await client.get(f"{resource}/{RANGE}/day/ALL", headers=XML)
    body = response.json()
    assert list(body) == list(sample_json(f"{resource}/200.json"))
    for series in body.values():
        assert len(series) == 4
    # 2023-11-10 is a Friday: its New York midnight is 05:00 UTC (plum-api.md 1.4).
    assert next(iter(body["calls"])) == "1699592400"
    assert all(isinstance(value, int) for value in body["calls"].values())
    root = xml_root(as_xml)
    assert [child.tag for child in root] == list(body)
    assert [item.get("timestamp") for item in root.findall("calls/item")] == list(body["calls"])
    _, model = PERIOD_PATHS[resource]
    assert read(response, model) == read(as_xml, model)


async def test_period_series_are_plausible():
    sim, _ = make_sim()
    async with http(sim, sim.voicetrends_auth) as client:
        volume = (await client.get(f"volume/{RANGE}/day/ALL")).json()
        performance = (await client.get(f"performance/{RANGE}/day/ALL")).json()
        profile = (await client.get(f"profile/{RANGE}/day/6177123000")).json()
    for day, calls in volume["calls"].items():
        assert 0 <= volume["transfers"][day] <= calls
        assert isinstance(volume["call_minutes"][day], int | float)
        assert performance["calls"][day] == calls  # the same calls behind every report
        errors, per_call = performance["js_errors"][day], performance["js_errors_per_call"][day]
        assert per_call == (round(errors / calls, 2) if calls else 0)
    # Whole numbers are sent as the documented samples send them: 0, never 0.0.
    for body in (volume, performance):
        for series in body.values():
            for value in series.values():
                assert not (isinstance(value, float) and value.is_integer()), value
    for day, calls in profile["calls"].items():
        assert 0 <= profile["callers"][day] <= calls
    assert sum(profile["calls"].values()) < sum(volume["calls"].values())  # one number of 3


async def test_diagnostic_flow_has_the_sample_shape_and_outcomes_that_add_up():
    sim, _ = make_sim()
    async with http(sim, sim.voicetrends_auth) as client:
        response = await client.get(f"path/{RANGE}/ALL")
        as_xml = await client.get(f"path/{RANGE}/ALL", headers=XML)
        one = await client.get(f"path/{RANGE}/6177123001")
        idle = await client.get(f"path/{RANGE}/5550001111")
    assert b"https:\\/\\/" in response.content  # PHP's escaped slashes, as in the sample
    body = response.json()
    sample = sample_json("path/200.json")
    assert body.keys() == sample.keys()
    node_keys = next(iter(sample["applications"].values()))[0].keys()
    applications = body["applications"]
    assert len(applications) == len(sim.dataset.numbers)
    for nodes in applications.values():
        for node in nodes:
            assert node.keys() == node_keys
            outcomes = ("filled", "nomatch", "noinput", "transfer", "disconnect")
            assert node["visits"] == sum(node[name] for name in outcomes)
    assert list(one.json()["applications"]) == ["https://ivr.example.com/vxml/6177123001/start.php"]
    assert idle.json() == {"applications": []}
    root = xml_root(as_xml)
    assert [item.get("url") for item in root.findall("applications/item")] == list(applications)
    assert read(response, DiagnosticFlow) == read(as_xml, DiagnosticFlow)


async def test_geographic_lives_under_profile_with_three_segments_and_adds_up():
    sim, _ = make_sim()
    async with http(sim, sim.voicetrends_auth) as client:
        response = await client.get(f"profile/{RANGE}/ALL")
        as_xml = await client.get(f"profile/{RANGE}/ALL", headers=XML)
        idle = await client.get("profile/20200101/20200102/ALL")
    body = response.json()
    sample = sample_json("geographic/200.json")
    assert list(body) == list(sample)
    assert list(body["US"]) == list(sample["US"])  # the 51 codes and "US Toll-Free", in order
    calls = sim.dataset.count(1_699_592_400, 1_699_938_000 - 1)  # the four New York days
    assert sum(body["US"].values()) + sum(body["NON_US"].values()) == calls
    # A range with no calls: zeros everywhere and NON_US as PHP's empty array, like the sample.
    assert idle.json() == {"US": dict.fromkeys(sample["US"], 0), "NON_US": []}
    root = xml_root(as_xml)
    assert root.find("US/item[@key='US Toll-Free']") is not None
    assert read(response, GeographicProfile) == read(as_xml, GeographicProfile)


async def test_the_reports_are_the_data_sets():
    dataset = CallDataset(size=500, start=1_699_592_400, spacing=600)
    sim, _ = make_sim(dataset=dataset)
    days = (date(2023, 11, 10), date(2023, 11, 13))
    async with http(sim, sim.voicetrends_auth) as client:
        week = await client.get(f"performance/{RANGE}/week/ALL", headers=XML)
        flow = await client.get(f"path/{RANGE}/6177123000")
        geo = await client.get(f"profile/{RANGE}/8009957586", headers=XML)
    assert read(week, PerformanceReport) == dataset.performance_report(*days, Period.WEEK, "ALL")
    assert read(flow, DiagnosticFlow) == dataset.diagnostic_flow(*days, "6177123000")
    assert read(geo, GeographicProfile) == dataset.geographic_profile(*days, "8009957586")
    assert read(geo, GeographicProfile) != dataset.geographic_profile(*days, "ALL")


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        (f"volume/{RANGE}/hour/ALL", 400, "Invalid period parameter."),
        ("performance/2023111/20231113/day/ALL", 400, "Invalid start parameter."),
        ("profile/20231113/20231110/day/ALL", 400, "Invalid end parameter."),
        ("profile/20231110/20231113/all", 400, "Invalid phone parameter."),
        ("path/20231110/20231131/ALL", 400, "Invalid end parameter."),
        (f"path/{RANGE}/day/ALL", 404, "not found"),
        (f"profile/{RANGE}/day/ALL/x", 404, "not found"),
        (f"volume/{RANGE}/ALL", 404, "not found"),
    ],
)
async def test_bad_report_paths(path, status, message):
    sim, _ = make_sim()
    async with http(sim, sim.voicetrends_auth) as client:
        response = await client.get(path)
    assert response.status_code == status
    assert response.json() == {"error": message}


# --- auth: minting -----------------------------------------------------------------------------


async def test_auth_mints_distinct_32_char_hex_pairs_that_open_the_reports():
    sim, _ = make_sim()
    async with http(sim) as client:
        first = await client.post("auth", data=FORM)
        second = await client.post("auth", data=FORM, headers=XML)
    assert first.status_code == second.status_code == 200
    assert first.headers["x-ratelimit-limit"] == "15"
    assert [first.headers["x-ratelimit-remaining"], second.headers["x-ratelimit-remaining"]] == [
        "14",
        "13",
    ]
    pair = first.json()
    assert list(pair) == ["login", "password"]
    root = xml_root(second)
    other = {"login": root.findtext("login"), "password": root.findtext("password")}
    for half in (*pair.values(), *other.values()):
        assert HEX32.fullmatch(half)
    assert pair != other
    for minted in (pair, other):
        async with http(sim, (minted["login"], minted["password"])) as client:
            report = await client.get(f"volume/{RANGE}/day/ALL")
        assert report.status_code == 200
    # Both pairs spend the tool login's one data bucket (plum-api.md 1.3): 149, then 148.
    data = [entry for entry in sim.requests if entry.group is QuotaGroup.VOICETRENDS]
    assert {entry.account for entry in data} == {account_hash(LOGIN)}
    assert report.headers["x-ratelimit-remaining"] == "148"


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({**FORM, "tool": "fuse"}, 400, "Invalid tool parameter."),
        ({"login": LOGIN, "password": PASSWORD}, 400, "Invalid tool parameter."),
        ({**FORM, "login": ""}, 400, "Invalid login parameter."),
        ({"tool": TOOL, "login": LOGIN}, 400, "Invalid password parameter."),
        ({**FORM, "password": "wrong"}, 401, "invalid credentials or inactive account"),
        ({**FORM, "tool": "dev"}, 401, "invalid credentials or inactive account"),
        ({**FORM, "login": "nobody@example.com"}, 401, "invalid credentials or inactive account"),
    ],
)
async def test_auth_refusals(form, status, message):
    sim, _ = make_sim()
    async with http(sim) as client:
        response = await client.post("auth", data=form)
    assert response.status_code == status
    assert response.json() == {"error": message}
    assert PASSWORD not in response.text
    assert response.headers["x-ratelimit-limit"] == "15"  # refused attempts spend the budget


async def test_auth_wants_a_form_body_and_post():
    sim, _ = make_sim()
    async with http(sim) as client:
        as_json = await client.post("auth", json=FORM)
        as_query = await client.post("auth", params=FORM)
        as_get = await client.get("auth", params=FORM)
    assert as_json.status_code == as_query.status_code == 400
    assert "application/x-www-form-urlencoded" in as_json.json()["error"]
    assert as_get.status_code == 405
    assert as_get.headers["allow"] == "POST"
    assert as_get.json() == {"error": "invalid HTTP method supplied (only POST allowed)"}


async def test_auth_has_fifteen_attempts_per_window_per_tool_login():
    other_login = ("dev", "dev@example.com", "dev-password")
    sim, clock = make_sim(voicetrends_logins=[PlumSimulator.VOICETRENDS_LOGIN, other_login])
    async with http(sim) as client:
        statuses = [(await client.post("auth", data=FORM)).status_code for _ in range(16)]
        refused = sim.requests[-1]
        other = await client.post(
            "auth", data=dict(zip(("tool", "login", "password"), other_login, strict=True))
        )
        await clock.advance(100)  # the next 900 s boundary
        again = await client.post("auth", data=FORM)
    assert statuses == [200] * 15 + [429]
    assert (refused.status, refused.counted, refused.group) == (
        429,
        False,
        QuotaGroup.VOICETRENDS_AUTH,
    )
    assert refused.account == account_hash(LOGIN)
    assert other.status_code == 200
    assert again.status_code == 200
    assert again.headers["x-ratelimit-remaining"] == "14"


# --- auth: the minted pairs' life --------------------------------------------------------------


async def test_a_minted_pair_lives_until_idle_for_the_ttl_and_opens_no_fuse_resource():
    sim, clock = make_sim(temporary_credentials_ttl=100.0)
    async with http(sim) as client:
        pair = (await client.post("auth", data=FORM)).json()
    auth = (pair["login"], pair["password"])
    statuses = []
    async with http(sim, auth) as client:
        for pause in (0, 90, 90, 99, 100):  # each use restarts the 100 s (plum-api.md 1.2)
            await clock.advance(pause)
            statuses.append((await client.get(f"volume/{RANGE}/day/ALL")).status_code)
        fuse = await client.get("calls/0/100")
    assert statuses == [200, 200, 200, 200, 401]
    assert fuse.status_code == 401


async def test_expire_temporary_credentials_ends_every_pair_but_not_the_fixed_account():
    sim, _ = make_sim()
    async with http(sim) as client:
        pair = (await client.post("auth", data=FORM)).json()
    sim.expire_temporary_credentials()
    async with http(sim, (pair["login"], pair["password"])) as client:
        expired = await client.get(f"volume/{RANGE}/day/ALL")
    async with http(sim, sim.voicetrends_auth) as client:
        fixed = await client.get(f"volume/{RANGE}/day/ALL")
    assert expired.status_code == 401
    assert fixed.status_code == 200


def test_the_tool_accounts_are_validated_and_stay_out_of_repr():
    with pytest.raises(ValueError, match="tool"):
        PlumSimulator(clock=FakeClock(), voicetrends_logins=[("fuse", "a", "b")])
    sim = PlumSimulator(clock=FakeClock())
    assert sim.voicetrends_login.tool == "fuseplus"
    assert PASSWORD not in repr(sim)
    assert PASSWORD not in repr(sim.voicetrends_login)


async def test_the_auth_quota_can_be_overridden():
    sim, _ = make_sim(quotas={"voicetrends-auth": Quota(limit=2, window=60)})
    async with http(sim) as client:
        statuses = [(await client.post("auth", data=FORM)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
