from __future__ import annotations

import json
import logging
from datetime import date
from email.utils import formatdate
from xml.etree.ElementTree import Element

import anyio
import attrs
import httpx
import pytest
from defusedxml.ElementTree import fromstring

from plumvoice_async import (
    CallEvent,
    CallPage,
    DetailedCallPage,
    EventReport,
    InvalidParameterError,
    Period,
)
from plumvoice_async._core.decode import decode_response
from plumvoice_async._core.requests import QuotaGroup
from plumvoice_async._governor import account_hash
from plumvoice_async.testing import FakeClock, PlumSimulator, Quota, SimRequest
from plumvoice_async.testing._dataset import CallDataset
from plumvoice_async.testing._server import serve
from tests.samples import load_sample

pytestmark = pytest.mark.anyio

NOW = 1_700_000_000.0  # FakeClock's default start: 1_700_000_100 is the next 900 s boundary
EVERYTHING = "calls/0/99999999999"
XML = {"accept": "application/xml"}


def make_sim(**options) -> tuple[PlumSimulator, FakeClock]:
    clock = FakeClock(NOW)
    return PlumSimulator(clock=clock, **options), clock


def fuse(sim: PlumSimulator, auth: tuple[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=sim.transport(), base_url=sim.BASE_URL, auth=auth or sim.fuse_auth
    )


def voicetrends(sim: PlumSimulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=sim.transport(), base_url=sim.BASE_URL, auth=sim.voicetrends_auth
    )


def sample_json(name: str):
    return json.loads(load_sample(name)[2])


def xml_root(response: httpx.Response) -> Element:
    assert response.headers["content-type"] == "application/xml"
    root: Element = fromstring(response.content)
    return root


def child(element: Element, path: str) -> Element:
    found = element.find(path)
    assert found is not None, path
    return found


def tags(element: Element) -> list[str]:
    return [child.tag for child in element]


# --- Shapes ------------------------------------------------------------------------------------


async def test_calls_json_has_the_documented_shape_and_the_data_sets_page():
    sim, _ = make_sim()
    async with fuse(sim) as client:
        response = await client.get(EVERYTHING, params={"limit": 5, "offset": 3})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    sample = sample_json("calls/200.json")
    assert body.keys() == sample.keys()
    assert isinstance(body["total_calls"], int)
    assert body["total_calls"] == 10_000
    for call in body["calls"]:
        assert call.keys() == sample["calls"][0].keys()
        # plum-api.md 2.2: start/end are ints in calls, log a JSON boolean.
        assert {key: type(value) for key, value in call.items()} == {
            key: type(value) for key, value in sample["calls"][0].items()
        }
    expected = sim.dataset.page(0, 99_999_999_999, offset=3, limit=5)
    assert [call["session_id"] for call in body["calls"]] == [c.session_id for c in expected]
    assert [call["start"] for call in body["calls"]] == [int(c.start.timestamp()) for c in expected]


async def test_calls_xml_has_the_documented_elements():
    sim, _ = make_sim()
    async with fuse(sim) as client:
        response = await client.get(EVERYTHING, params={"limit": 2}, headers=XML)
    root = xml_root(response)
    sample = fromstring(load_sample("calls/200.xml")[2])
    assert root.tag == sample.tag == "result"
    assert tags(root) == tags(sample)
    assert tags(child(root, "calls")) == ["item", "item"]
    assert tags(child(root, "calls")[0]) == tags(child(sample, "calls")[0])
    assert root.findtext("total_calls") == "10000"
    assert child(root, "calls")[0].findtext("log") == "true"


async def test_all_logs_json_sends_string_times_and_the_detail():
    sim, _ = make_sim()
    async with fuse(sim) as client:
        response = await client.get("all_logs/0/99999999999", params={"limit": 3})
    body = response.json()
    sample = sample_json("all_logs/200.json")
    assert body.keys() == sample.keys()
    assert body["total_calls"] == 10_000
    sample_call, sample_event = sample["calls"][0], sample["calls"][0]["detail"][0]
    for call in body["calls"]:
        assert call.keys() == sample_call.keys()
        # plum-api.md 2.3 quirk: all_logs sends start and end as numeric strings.
        assert isinstance(call["start"], str)
        assert call["start"].isdigit()
        assert isinstance(call["end"], str)
        for event in call["detail"]:
            assert event.keys() == sample_event.keys()
            assert event["event"].keys() == sample_event["event"].keys()
            assert isinstance(event["timestamp"], int)
            assert {"module_type", "result_variable"} <= event["event"]["data"].keys()
            assert event["class"] in {"info", "event", "debug", "prompt", "error"}


async def test_all_logs_xml_nests_the_detail_items():
    sim, _ = make_sim()
    async with fuse(sim) as client:
        response = await client.get("all_logs/0/99999999999", params={"limit": 1}, headers=XML)
    root = xml_root(response)
    assert tags(root) == ["calls", "total_calls"]
    call = child(root, "calls")[0]
    assert {"dest", "src", "start", "end", "session_id", "detail", "type", "log"} == set(tags(call))
    first_event = child(call, "detail")[0]
    assert tags(first_event) == ["event", "class", "timestamp"]
    assert first_event.find("event/data/module_type") is not None


async def test_one_call_log_is_a_top_level_array_and_an_unknown_one_is_404():
    sim, _ = make_sim()
    session_id = sim.dataset.page(0, 99_999_999_999, limit=1)[0].session_id
    async with fuse(sim) as client:
        encoded = await client.get("call/" + session_id.replace(";", "%3B"))
        raw = await client.get("call/" + session_id)
        as_xml = await client.get("call/" + session_id, headers=XML)
        unknown = await client.get("call/123456;000;1")
        malformed = await client.get("call/not-an-id", headers=XML)
    assert encoded.status_code == raw.status_code == 200
    body = encoded.json()
    assert isinstance(body, list)
    assert body == raw.json()
    assert body[0].keys() == sample_json("call/200.json")[0].keys()
    assert tags(xml_root(as_xml)) == ["item"] * len(body)
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "call log not found"}
    assert malformed.status_code == 404
    assert xml_root(malformed).findtext("error") == "call log not found"


async def test_events_json_and_xml_carry_the_six_series():
    sim, _ = make_sim()
    async with voicetrends(sim) as client:
        response = await client.get("events/20231110/20231113/day/ALL")
        as_xml = await client.get("events/20231110/20231113/day/ALL", headers=XML)
    body = response.json()
    sample = sample_json("events/200.json")
    assert list(body) == list(sample)
    for series in body.values():
        assert len(series) == 4
        assert all(key.isdigit() for key in series)
    # 2023-11-10 is a Friday: midnight in New York is 05:00 UTC (plum-api.md 1.4).
    assert next(iter(body["calls"])) == "1699592400"
    assert all(isinstance(value, int) for value in body["calls"].values())
    assert all(isinstance(value, float) for value in body["loops_per_call"].values())
    root = xml_root(as_xml)
    assert tags(root) == tags(fromstring(load_sample("events/200.xml")[2]))
    series = child(root, "calls")
    assert [item.get("timestamp") for item in series] == list(body["calls"])
    assert [item.text for item in series] == [str(v) for v in body["calls"].values()]


@pytest.mark.parametrize("accept", ["application/json", "application/xml"])
async def test_the_client_decoder_reads_back_the_data_sets_objects(accept):
    sim, _ = make_sim()
    dataset = sim.dataset
    headers = {"accept": accept}
    async with fuse(sim) as client:
        calls = await client.get(EVERYTHING, params={"limit": 40}, headers=headers)
        details = await client.get("all_logs/0/99999999999", params={"limit": 40}, headers=headers)
        session_id = dataset.page(0, 99_999_999_999, offset=7, limit=1)[0].session_id
        one = await client.get(f"call/{session_id}", headers=headers)
    async with voicetrends(sim) as client:
        report = await client.get("events/20231105/20231120/week/6177123001", headers=headers)

    def read(response: httpx.Response, model):
        return decode_response(response.status_code, response.headers, response.content, model)

    assert read(calls, CallPage) == CallPage(dataset.page(0, 99_999_999_999, limit=40), 10_000)
    assert read(details, DetailedCallPage) == DetailedCallPage(
        dataset.detailed_page(0, 99_999_999_999, limit=40), 10_000
    )
    assert read(one, list[CallEvent]) == dataset.details(session_id)
    assert read(report, EventReport) == dataset.event_report(
        date(2023, 11, 5), date(2023, 11, 20), Period.WEEK, "6177123001"
    )


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, "application/json"),
        ("text/html", "application/json"),
        ("application/json", "application/json"),
        ("application/xml; q=0.9", "application/xml"),
        ("text/plain, application/xml", "application/xml"),
    ],
)
async def test_accept_selects_the_format(accept, content_type):
    sim, _ = make_sim()
    headers = {"accept": accept} if accept else {}
    async with fuse(sim) as client:
        ok = await client.get(EVERYTHING, params={"limit": 1}, headers=headers)
        bad = await client.get("calls/x/1", headers=headers)
    assert ok.headers["content-type"] == content_type
    assert bad.headers["content-type"] == content_type


# --- Errors ------------------------------------------------------------------------------------


async def test_missing_or_bad_credentials_get_401_and_spend_nothing():
    sim, _ = make_sim()
    login, password = sim.fuse_auth
    attempts = [
        {},
        {"authorization": "Basic !!!"},
        {"authorization": "Bearer abc"},
    ]
    async with httpx.AsyncClient(transport=sim.transport(), base_url=sim.BASE_URL) as client:
        spent = await client.get(EVERYTHING, params={"limit": 1}, auth=(login, password))
        responses = [await client.get(EVERYTHING, headers=headers) for headers in attempts]
        named = [
            await client.get(EVERYTHING, auth=(login, "wrong-key")),
            await client.get(EVERYTHING, auth=("nobody@example.com", password)),
            # Each API checks its own accounts: the Fuse pair does not open VoiceTrends.
            await client.get("events/20231110/20231110/day/ALL", auth=(login, password)),
            await client.get(EVERYTHING, auth=(login, "wrong-key"), headers=XML),
        ]
    for response in [*responses, *named]:
        assert response.status_code == 401
        assert password not in response.text
        assert "wrong-key" not in response.text
    # No login named, no account to speak of: no quota headers.
    assert all("x-ratelimit-limit" not in response.headers for response in responses)
    # plum-api.md 1.3: every answer carries them; a refused login's quota is shown, unspent.
    assert named[0].headers["x-ratelimit-remaining"] == spent.headers["x-ratelimit-remaining"]
    assert named[3].headers["x-ratelimit-reset"] == spent.headers["x-ratelimit-reset"]
    assert named[1].headers["x-ratelimit-remaining"] == named[1].headers["x-ratelimit-limit"]
    assert named[2].headers["x-ratelimit-limit"] == "150"
    assert responses[0].json() == {"error": "invalid credentials or inactive account"}
    assert xml_root(named[-1]).findtext("error") == "invalid credentials or inactive account"
    assert all(not entry.counted and entry.account is None for entry in sim.requests[1:])


async def test_wrong_method_gets_405_with_the_documented_texts():
    sim, _ = make_sim()
    async with voicetrends(sim) as client:
        report = await client.post("events/20231110/20231110/day/ALL")
    async with fuse(sim) as client:
        calls = await client.delete(EVERYTHING)
        one = await client.put("call/1;2;3", headers=XML)
    assert report.status_code == calls.status_code == one.status_code == 405
    # plum-api.md 1.4 quirk: the GET-only reports answer "only POST allowed".
    assert report.json() == {"error": "invalid HTTP method supplied (only POST allowed)"}
    assert calls.json() == {"error": "invalid HTTP method supplied (only GET allowed)"}
    assert xml_root(one).findtext("error") == "invalid HTTP method supplied (only GET allowed)"
    assert report.headers["allow"] == "GET"


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("calls/abc/100", {}, "Invalid start parameter."),
        ("calls/-1/100", {}, "Invalid start parameter."),
        ("calls/100/1e3", {}, "Invalid end parameter."),
        ("calls/100/99", {}, "Invalid end parameter."),
        ("all_logs/0/100", {"limit": "0"}, "Invalid limit parameter."),
        ("all_logs/0/100", {"limit": "10001"}, "Invalid limit parameter."),
        ("calls/0/100", {"limit": ""}, "Invalid limit parameter."),
        ("calls/0/100", {"offset": "-1"}, "Invalid offset parameter."),
        ("calls/0/100", {"number": "617-712"}, "Invalid number parameter."),
        ("calls/0/100", {"number": ""}, "Invalid number parameter."),
        ("events/2023111/20231110/day/ALL", {}, "Invalid start parameter."),
        ("events/20230231/20231110/day/ALL", {}, "Invalid start parameter."),
        ("events/20231110/20231109/day/ALL", {}, "Invalid end parameter."),
        ("events/20000101/20231109/day/ALL", {}, "Invalid end parameter."),
        ("events/20231110/20231110/year/ALL", {}, "Invalid period parameter."),
        ("events/20231110/20231110/day/all", {}, "Invalid phone parameter."),
        ("events/20231110/20231110/day/%2B16177123000", {}, "Invalid phone parameter."),
    ],
)
async def test_bad_parameters_get_400_naming_the_parameter(path, params, message):
    sim, _ = make_sim()
    auth = sim.voicetrends_auth if path.startswith("events") else sim.fuse_auth
    async with fuse(sim, auth) as client:
        response = await client.get(path, params=params)
    assert response.status_code == 400
    assert response.json() == {"error": message}
    # A 400 was admitted: it spent quota, as in the documented sample (events/400.json).
    assert response.headers["x-ratelimit-remaining"] == "149"


async def test_unknown_paths_get_404():
    sim, _ = make_sim()
    async with fuse(sim) as client:
        for path in ("nope", "calls/1", "calls/1/2/3", "call/a%2Fb/c", "/other/calls/1/2"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert response.json() == {"error": "not found"}


# --- Quota headers and 429 ---------------------------------------------------------------------


async def test_quota_headers_count_down_with_a_clock_aligned_reset_and_the_clocks_date():
    sim, clock = make_sim()
    async with fuse(sim) as client:
        responses = [await client.get(EVERYTHING, params={"limit": 1}) for _ in range(3)]
        await clock.advance(42.7)
        later = await client.get(EVERYTHING, params={"limit": 1})
    assert [r.headers["x-ratelimit-remaining"] for r in responses] == ["149", "148", "147"]
    assert {r.headers["x-ratelimit-limit"] for r in responses} == {"150"}
    reset = int(responses[0].headers["x-ratelimit-reset"])
    assert reset % 900 == 0
    assert reset == 1_700_000_100  # the first multiple of 900 after NOW
    assert responses[0].headers["date"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert later.headers["date"] == formatdate(int(NOW + 42.7), usegmt=True)
    assert later.headers["x-ratelimit-remaining"] == "146"


async def test_a_spent_window_gets_429_until_the_next_boundary():
    sim, clock = make_sim(limit=3, window=60)
    async with fuse(sim) as client:
        admitted = [await client.get(EVERYTHING, params={"limit": 1}) for _ in range(3)]
        refused = [await client.get(EVERYTHING, headers=XML) for _ in range(2)]
        reset = int(admitted[0].headers["x-ratelimit-reset"])
        assert reset == 1_700_000_040  # 60 s windows: the next multiple of 60
        await clock.advance(reset - NOW - 0.5)
        still_refused = await client.get(EVERYTHING)
        await clock.advance(0.5)
        recovered = await client.get(EVERYTHING, params={"limit": 1})
    assert [r.status_code for r in admitted] == [200, 200, 200]
    assert admitted[-1].headers["x-ratelimit-remaining"] == "0"
    for response in [*refused, still_refused]:
        assert response.status_code == 429
        assert response.headers["x-ratelimit-remaining"] == "0"
        assert response.headers["x-ratelimit-reset"] == str(reset)
    assert xml_root(refused[0]).findtext("error") == "rate limit exceeded"
    assert still_refused.json() == {"error": "rate limit exceeded"}
    assert recovered.status_code == 200
    assert recovered.headers["x-ratelimit-remaining"] == "2"
    assert recovered.headers["x-ratelimit-reset"] == str(reset + 60)
    assert [entry.counted for entry in sim.requests] == [True] * 3 + [False] * 3 + [True]


async def test_accounts_and_groups_have_independent_quotas():
    second = ("other@example.com", "other-key")
    sim, _ = make_sim(limit=2, fuse_accounts=[PlumSimulator.FUSE_AUTH, second])
    async with fuse(sim) as first_client, fuse(sim, second) as second_client:
        spent = [(await first_client.get(EVERYTHING)).status_code for _ in range(3)]
        other = await second_client.get(EVERYTHING, params={"limit": 1})
    async with voicetrends(sim) as client:
        report = await client.get("events/20231110/20231110/day/ALL")
    assert spent == [200, 200, 429]
    assert other.status_code == 200
    assert other.headers["x-ratelimit-remaining"] == "1"
    assert report.headers["x-ratelimit-remaining"] == "1"
    accounts = {entry.account for entry in sim.requests}
    assert accounts == {
        account_hash(PlumSimulator.FUSE_AUTH[0]),
        account_hash(second[0]),
        account_hash(PlumSimulator.VOICETRENDS_AUTH[0]),
    }
    assert [entry.group for entry in sim.requests][-1] is QuotaGroup.VOICETRENDS


async def test_fuse_quota_can_hide_its_headers_or_be_switched_off():
    hidden, _ = make_sim(quotas={"fuse": Quota(limit=1, window=900, headers=False)})
    async with fuse(hidden) as client:
        first, second = [await client.get(EVERYTHING, params={"limit": 1}) for _ in range(2)]
    assert (first.status_code, second.status_code) == (200, 429)
    assert not any(name.startswith("x-ratelimit") for name in first.headers)
    assert not any(name.startswith("x-ratelimit") for name in second.headers)
    assert "date" in second.headers

    unlimited, _ = make_sim(limit=1, quotas={"fuse": None})
    async with fuse(unlimited) as client:
        statuses = [
            (await client.get(EVERYTHING, params={"limit": 1})).status_code for _ in range(5)
        ]
    assert statuses == [200] * 5


def test_quota_and_accounts_are_validated_and_credentials_stay_out_of_repr():
    with pytest.raises(ValueError, match="limit"):
        Quota(limit=0)
    with pytest.raises(ValueError, match="window"):
        Quota(window=0)
    with pytest.raises(InvalidParameterError, match="window"):
        Quota(window=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="account"):
        PlumSimulator(fuse_accounts=[])
    text = repr(PlumSimulator(clock=FakeClock()))
    for secret in (*PlumSimulator.FUSE_AUTH, *PlumSimulator.VOICETRENDS_AUTH):
        assert secret not in text


# --- Faults ------------------------------------------------------------------------------------


async def test_latency_is_slept_on_the_simulators_clock():
    sim, clock = make_sim()
    fault = sim.faults.latency(30.0, times=1, path_prefix="/api/calls/")
    answers: list[httpx.Response] = []
    async with fuse(sim) as client:

        async def fetch() -> None:
            answers.append(await client.get(EVERYTHING, params={"limit": 1}))

        async with anyio.create_task_group() as group:
            group.start_soon(fetch)
            await clock.advance(29.0)
            assert answers == []
            await clock.advance(1.0)
        fast = await client.get(EVERYTHING, params={"limit": 1})
    assert answers[0].status_code == 200
    assert answers[0].headers["date"] == formatdate(NOW + 30, usegmt=True)
    assert fast.headers["date"] == answers[0].headers["date"]
    assert (fault.hits, fault.times) == (1, 0)


async def test_status_faults_answer_5xx_the_given_number_of_times():
    sim, _ = make_sim()
    sim.faults.status(503, times=2)
    async with fuse(sim) as client:
        statuses = [(await client.get(EVERYTHING, params={"limit": 1})) for _ in range(3)]
    assert [r.status_code for r in statuses] == [503, 503, 200]
    assert statuses[0].json() == {"error": "Service Unavailable"}
    assert statuses[0].headers["x-ratelimit-remaining"] == "149"
    assert [entry.fault for entry in sim.requests] == ["status", "status", None]


async def test_faults_select_by_path_prefix_and_predicate():
    sim, _ = make_sim()
    sim.faults.status(500, times=None, path_prefix="/api/all_logs/")
    sim.faults.status(502, times=None, predicate=lambda request: request.query.get("offset") == "7")
    async with fuse(sim) as client:
        details = await client.get("all_logs/0/99999999999", params={"limit": 1})
        calls = await client.get(EVERYTHING, params={"limit": 1})
        seventh = await client.get(EVERYTHING, params={"limit": 1, "offset": 7})
    assert details.status_code == 500
    assert details.json() == {"error": "unknown error"}
    assert calls.status_code == 200
    assert seventh.status_code == 502


async def test_probabilistic_faults_are_reproducible_with_a_seed():
    async def pattern(seed: int) -> list[int]:
        sim, _ = make_sim(fault_seed=seed)
        sim.faults.status(503, times=None, probability=0.5)
        async with fuse(sim) as client:
            return [
                (await client.get(EVERYTHING, params={"limit": 1})).status_code for _ in range(24)
            ]

    first = await pattern(11)
    assert first == await pattern(11)
    assert {200, 503} == set(first)
    assert first != await pattern(12)


async def test_seen_requests_reach_predicates_with_a_hashed_account():
    sim, _ = make_sim()
    seen: list[SimRequest] = []

    def never(request: SimRequest) -> bool:
        seen.append(request)
        return False

    sim.faults.drop(predicate=never)
    async with fuse(sim) as client:
        await client.get(EVERYTHING, params={"limit": "1", "number": "6177123000"})
    assert seen == [
        SimRequest(
            "GET",
            "/api/calls/0/99999999999",
            {"limit": "1", "number": "6177123000"},
            QuotaGroup.FUSE,
            account_hash(sim.fuse_auth[0]),
        )
    ]


async def test_a_drop_is_an_httpx_transport_error_in_process():
    sim, _ = make_sim()
    sim.faults.drop()
    async with fuse(sim) as client:
        with pytest.raises(httpx.TransportError):
            await client.get(EVERYTHING, params={"limit": 10})
        after = await client.get(EVERYTHING, params={"limit": 10})
    assert after.status_code == 200
    assert sim.requests[0].fault == "drop"
    assert sim.requests[0].counted


async def test_malformed_bodies_are_html_or_truncated():
    sim, _ = make_sim()
    sim.faults.malformed("html")
    sim.faults.malformed("truncated")
    async with fuse(sim) as client:
        html = await client.get(EVERYTHING, params={"limit": 3})
        truncated = await client.get(EVERYTHING, params={"limit": 3})
        whole = await client.get(EVERYTHING, params={"limit": 3})
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    assert html.text.startswith("<!DOCTYPE html>")
    assert truncated.headers["content-type"] == "application/json"
    assert truncated.content == whole.content[: len(whole.content) // 2]
    with pytest.raises(json.JSONDecodeError):
        truncated.json()


def test_fault_arguments_are_validated():
    sim = PlumSimulator(clock=FakeClock())
    with pytest.raises(ValueError, match="5xx"):
        sim.faults.status(404)
    with pytest.raises(ValueError, match="probability"):
        sim.faults.drop(probability=1.5)
    with pytest.raises(ValueError, match="times"):
        sim.faults.drop(times=-1)
    sim.faults.latency(1.0)
    sim.faults.clear()
    assert list(sim.faults) == []


# --- Paging ------------------------------------------------------------------------------------


async def test_limit_and_offset_walk_the_set_exactly_once():
    dataset = CallDataset(size=200, start=1_000_000, spacing=10)
    sim, _ = make_sim(dataset=dataset)
    number = dataset.numbers[1]
    window = "calls/1000300/1001500"
    expected = [c.session_id for c in dataset.page(1_000_300, 1_001_500, number, limit=1000)]
    seen: list[str] = []
    async with fuse(sim) as client:
        for offset in range(0, 60, 7):
            body = (
                await client.get(window, params={"number": number, "limit": 7, "offset": offset})
            ).json()
            assert body["total_calls"] == len(expected) == 40
            seen += [call["session_id"] for call in body["calls"]]
        beyond = (await client.get(window, params={"number": number, "offset": 40})).json()
    assert seen == expected
    assert beyond == {"calls": [], "total_calls": 40}


async def test_the_page_hook_can_change_the_set_between_pages():
    dataset = CallDataset(size=30, start=1_000_000, spacing=10)
    sim, _ = make_sim(dataset=dataset)
    calls = dataset.page(0, 2_000_000, limit=30)
    hooked: list[tuple[int, int]] = []

    async def on_page(offset: int, limit: int) -> None:
        hooked.append((offset, limit))
        if offset == 10:  # between the first and second page: an earlier call disappears
            dataset.delete_call(calls[0].session_id)
            dataset.insert_call(attrs.evolve(calls[29], session_id="999999;999;1"))
        await anyio.lowlevel.checkpoint()

    sim.on_page = on_page
    async with fuse(sim) as client:
        first = (await client.get("calls/0/2000000", params={"limit": 10})).json()
        second = (await client.get("calls/0/2000000", params={"limit": 10, "offset": 10})).json()
    assert hooked == [(0, 10), (10, 10)]
    assert first["total_calls"] == second["total_calls"] == 30
    assert [c["session_id"] for c in second["calls"]] == [c.session_id for c in calls[11:21]]


# --- ASGI and uvicorn ----------------------------------------------------------------------------


async def test_lifespan_is_acknowledged():
    sim = PlumSimulator(clock=FakeClock())
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    outbox: list[dict[str, str]] = []

    async def receive():
        return inbox.pop(0)

    async def send(message):
        outbox.append(message)

    await sim({"type": "lifespan"}, receive, send)
    assert outbox == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]


async def test_served_by_uvicorn_on_loopback(caplog):
    sim, _ = make_sim()
    sim.faults.drop(path_prefix="/api/all_logs/")
    with serve(sim) as url:
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/api/")
        async with httpx.AsyncClient(base_url=url, auth=sim.fuse_auth) as client:
            page = await client.get(EVERYTHING, params={"limit": 4}, headers=XML)
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get("all_logs/0/99999999999", params={"limit": 50})
            after = await client.get("all_logs/0/99999999999", params={"limit": 1})
    assert page.status_code == 200
    assert len(child(xml_root(page), "calls")) == 4
    assert page.headers.get_list("date") == ["Tue, 14 Nov 2023 22:13:20 GMT"]
    assert "server" not in page.headers
    assert after.status_code == 200
    # The drop is a fault, not a crash: uvicorn logs no traceback for it.
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
