"""``with_raw_response``: the httpx response, its quota headers, and the model on ``parse()``."""

from __future__ import annotations

import gzip
import inspect
import json
from datetime import UTC, date, datetime

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plumvoice_async import (
    APIError,
    CallPage,
    ClientEvent,
    DecodeError,
    NotFoundError,
    PlumClient,
    RateLimited,
    RawResponse,
    SyncPlumClient,
)
from plumvoice_async.testing import FakeClock, PlumSimulator, Quota, serve
from tests.doubles import InstantClock, RecordingGovernor, json_response, scripted
from tests.test_transport import raw_response

pytestmark = pytest.mark.anyio

ALL = (0, 2**31 - 1)
TODAY = date(2023, 11, 14)  # the FakeClock's day
FUSE = ("me@example.com", "DEVKEY-secret")


def model_methods(client: PlumClient) -> list[tuple[str, str]]:
    """Every (resource, method) of a client that answers one model: page, get, fetch."""
    found = []
    for name, resource in vars(client).items():
        if not type(resource).__module__.startswith("plumvoice_async._endpoints"):
            continue
        for method in ("page", "get", "fetch"):
            if inspect.iscoroutinefunction(getattr(resource, method, None)):
                found.append((name, method))
    return found


ARGUMENTS = {
    "page": lambda sim: ((sim.dataset.start, sim.dataset.start + 4 * 86_400), {"limit": 3}),
    "get": lambda sim: ((sim.dataset.page(*ALL, offset=0, limit=1)[0].session_id,), {}),
    "fetch": lambda sim: ((TODAY, TODAY), {"phone": "ALL"}),
}


async def test_every_model_method_has_a_raw_twin_answering_the_same_model():
    clock = FakeClock()
    simulator = PlumSimulator(clock=clock)
    async with simulator.client() as client:
        methods = model_methods(client)
        assert len(methods) == 9  # 6 reports, calls.page, call_details.page and .get
        for resource_name, method in methods:
            resource = getattr(client, resource_name)
            args, kwargs = ARGUMENTS[method](simulator)
            if method == "fetch" and resource_name not in ("diagnostic_flow", "geographic"):
                kwargs = {**kwargs, "period": "day"}
            plain = await getattr(resource, method)(*args, **kwargs)
            raw = await getattr(resource.with_raw_response, method)(*args, **kwargs)
            assert isinstance(raw, RawResponse)
            assert raw.http_response.status_code == 200
            assert raw.parse() == plain, (resource_name, method)
            assert raw.parse() is raw.parse()  # decoded once


async def test_the_quota_headers_are_read_and_none_when_absent():
    clock = FakeClock()  # 1_700_000_000: the simulator's 900 s window ends 100 s later
    simulator = PlumSimulator(clock=clock, quotas={"voicetrends": None})
    async with simulator.client() as client:
        raw = await client.calls.with_raw_response.page(*ALL, limit=1)
        quiet = await client.events.with_raw_response.fetch(TODAY, TODAY, period="day", phone="ALL")
    assert raw.rate_limit is not None
    assert (raw.rate_limit.limit, raw.rate_limit.remaining) == (150, 149)
    assert raw.rate_limit.reset_at.timestamp() == pytest.approx(1_700_000_100, abs=1)
    assert quiet.rate_limit is None
    assert isinstance(raw.parse(), CallPage)


async def test_errors_still_raise_and_a_bad_body_raises_at_parse():
    simulator = PlumSimulator(clock=FakeClock())
    # The retry's backoff sleeps on an InstantClock: the FakeClock would hold it for good.
    async with simulator.client(max_retries=1, clock=InstantClock()) as client:
        with pytest.raises(NotFoundError):
            await client.call_details.with_raw_response.get("1;2;3")
        simulator.faults.status(503, times=1)
        raw = await client.calls.with_raw_response.page(*ALL, limit=2)  # retried, then 200
        assert [entry.status for entry in simulator.requests[-2:]] == [503, 200]
        simulator.faults.malformed("truncated", times=1)
        broken = await client.calls.with_raw_response.page(*ALL, limit=2)
    assert len(raw.parse().calls) == 2
    with pytest.raises(DecodeError):
        broken.parse()


def test_the_sync_client_has_raw_responses_too():
    simulator = PlumSimulator(quotas={"fuse": Quota(limit=100, window=900)})
    with (
        serve(simulator) as url,
        SyncPlumClient(fuse_auth=simulator.fuse_auth, fuse_url=url) as client,
    ):
        raw = client.calls.with_raw_response.page(*ALL, limit=4)
    assert raw.rate_limit is not None
    assert raw.rate_limit.remaining == 99
    assert len(raw.parse().calls) == 4


# --- red team: the raw twin under minting, redirects, caps, 429s and absurd headers ---------


async def test_a_raw_request_that_mints_its_pair_first_answers_raw():
    """The first VoiceTrends request of a client with a tool login mints a pair: the raw twin
    used to mint through its raw transport, got a ``RawResponse`` for the pair and failed
    with an ``AttributeError``."""
    simulator = PlumSimulator(clock=FakeClock())
    async with simulator.client(voicetrends_login=simulator.voicetrends_login) as client:
        raw = await client.volume.with_raw_response.fetch(TODAY, TODAY, period="day", phone="ALL")
        plain = await client.volume.fetch(TODAY, TODAY, period="day", phone="ALL")
    assert raw.http_response.status_code == 200
    assert raw.parse() == plain
    assert [entry.path.endswith("/auth") for entry in simulator.requests].count(True) == 1


async def test_a_redirect_is_an_error_for_the_raw_twin_as_for_the_decoded_call():
    """A 3xx is not an answer (redirects are never followed): it used to come back as a
    "successful" ``RawResponse`` whose ``parse()`` raised later."""
    moved = httpx.Response(302, headers={"Location": "https://elsewhere.example/"})
    transport, seen = scripted(moved, moved)
    async with PlumClient(
        fuse_auth=FUSE, http_client=httpx.AsyncClient(transport=transport), clock=InstantClock()
    ) as client:
        with pytest.raises(APIError) as decoded:
            await client.calls.page(1, 2)
        with pytest.raises(APIError) as raw:
            await client.calls.with_raw_response.page(1, 2)
    assert decoded.value.status_code == raw.value.status_code == 302
    assert len(seen) == 2


@pytest.mark.parametrize("encoding", ["", "gzip"])
async def test_a_raw_body_is_capped_like_a_decoded_one(encoding):
    body = json.dumps({"calls": [], "total_calls": 0, "pad": "x" * 5000}).encode()
    headers = {"Content-Type": "application/json"}
    if encoding:
        body, headers = gzip.compress(body), {**headers, "Content-Encoding": encoding}
    transport, seen = scripted(raw_response(200, body, **headers))
    async with PlumClient(
        fuse_auth=FUSE,
        http_client=httpx.AsyncClient(transport=transport),
        clock=InstantClock(),
        max_response_bytes=1000,
    ) as client:
        with pytest.raises(DecodeError, match="max_response_bytes=1,000"):
            await client.calls.with_raw_response.page(1, 2)
    assert len(seen) == 1  # refused, not retried


async def test_a_429_then_a_success_gives_the_final_answer_and_its_quota_headers():
    clock = InstantClock(now=1_700_000_000.0)
    date_header = "Tue, 14 Nov 2023 22:13:20 GMT"  # 1_700_000_000
    limited = json_response(
        429,
        {"error": "rate limit exceeded"},
        **{"X-RateLimit-Limit": "150", "X-RateLimit-Remaining": "0"},
        **{"X-RateLimit-Reset": "1700000030", "Date": date_header, "Retry-After": "30"},
    )
    answer = json_response(
        200,
        {"calls": [], "total_calls": 7},
        **{"X-RateLimit-Limit": "150", "X-RateLimit-Remaining": "149"},
        **{"X-RateLimit-Reset": "1700000930", "Date": date_header},
    )
    transport, seen = scripted(limited, answer)
    async with PlumClient(
        fuse_auth=FUSE, http_client=httpx.AsyncClient(transport=transport), clock=clock
    ) as client:
        raw = await client.calls.with_raw_response.page(1, 2)
    assert len(seen) == 2
    assert raw.http_response.status_code == 200
    assert raw.rate_limit is not None
    assert (raw.rate_limit.limit, raw.rate_limit.remaining) == (150, 149)
    # Reset - Date of the final answer (930 s), from our clock as it came.
    assert raw.rate_limit.reset_at == datetime.fromtimestamp(clock.now + 930, UTC)
    assert raw.parse().total_calls == 7


_NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        ["", " ", "1e309", "-0", "0x10", "\uff11\uff12", "nan", "inf", "1_000", "\u0661"]
    ),
    st.text(max_size=12),
)
_DATES = st.one_of(
    st.sampled_from(
        [
            "Tue, 14 Nov 2023 22:13:20 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Mon, 01 Jan 0001 00:00:00 GMT",
            "yesterday",
            "",
        ]
    ),
    st.text(max_size=30),
)


@settings(max_examples=150, deadline=None)
@given(
    limit=st.lists(_NUMBERS, max_size=2),
    remaining=st.lists(_NUMBERS, max_size=2),
    reset=st.lists(_NUMBERS, max_size=2),
    dates=st.lists(_DATES, max_size=2),
)
def test_absurd_quota_headers_give_sane_rate_limit_info_and_events_or_none(
    limit, remaining, reset, dates
):
    headers = [
        *(("X-RateLimit-Limit", value) for value in limit),
        *(("X-RateLimit-Remaining", value) for value in remaining),
        *(("X-RateLimit-Reset", value) for value in reset),
        *(("Date", value) for value in dates),
    ]
    safe = [
        (name, value.encode("utf-8", "replace"))
        for name, value in headers
        if not any(char in value for char in "\r\n\x00")
    ]
    retry_after = [(name, value) for name, value in safe if name == "X-RateLimit-Reset"][:1]
    retry_after = [("Retry-After", value) for _, value in retry_after]
    limited = httpx.Response(429, json={"error": "rate limit exceeded"}, headers=safe + retry_after)
    response = httpx.Response(200, json={"calls": [], "total_calls": 0}, headers=safe)
    clock = InstantClock(now=1_700_000_000.0)
    events: list[ClientEvent] = []

    async def main() -> RawResponse[CallPage]:
        transport, _ = scripted(limited, response)
        async with PlumClient(
            fuse_auth=FUSE,
            http_client=httpx.AsyncClient(transport=transport),
            clock=clock,
            governor=RecordingGovernor(),
            event_hooks=[events.append],
        ) as client:
            return await client.calls.with_raw_response.page(1, 2)

    raw = anyio.run(main)
    info = raw.rate_limit
    if info is not None:
        assert info.limit > 0
        assert info.remaining >= 0
        assert clock.now <= info.reset_at.timestamp() <= clock.now + 86_400
    (limited_event,) = [event for event in events if isinstance(event, RateLimited)]
    if limited_event.reset_at is not None:
        assert 0 <= limited_event.reset_at.timestamp() - 1_700_000_000.0 <= 86_400
    if limited_event.retry_after is not None:
        assert 0 <= limited_event.retry_after <= 86_400
    assert raw.parse().total_calls == 0
