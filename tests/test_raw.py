"""``with_raw_response``: the httpx response, its quota headers, and the model on ``parse()``."""

from __future__ import annotations

import inspect
from datetime import date

import pytest

from plumvoice_async import (
    CallPage,
    DecodeError,
    NotFoundError,
    PlumClient,
    RawResponse,
    SyncPlumClient,
)
from plumvoice_async.testing import FakeClock, PlumSimulator, Quota, serve
from tests.doubles import InstantClock

pytestmark = pytest.mark.anyio

ALL = (0, 2**31 - 1)
TODAY = date(2023, 11, 14)  # the FakeClock's day


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
