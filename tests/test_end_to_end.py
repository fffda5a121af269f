"""PlumClient against the simulator served by a real uvicorn on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from plumvoice_async import (
    AuthenticationError,
    CallPage,
    CallType,
    DetailedCall,
    NotFoundError,
    PlumClient,
    ServerError,
    TransportError,
)
from plumvoice_async.testing import PlumSimulator, serve

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def simulator() -> PlumSimulator:
    return PlumSimulator()


@pytest.fixture(scope="module")
def base_url(simulator: PlumSimulator) -> Iterator[str]:
    with serve(simulator) as url:
        yield url


def window(simulator: PlumSimulator) -> tuple[int, int]:
    first = simulator.dataset.page(0, 2**31, offset=0, limit=1)[0]
    return int(first.start.timestamp()), int(first.start.timestamp()) + 86_400


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_calls_details_and_events_over_loopback(simulator, base_url, fmt):
    start, end = window(simulator)
    expected = CallPage(
        calls=simulator.dataset.page(start, end, offset=0, limit=50),
        total_calls=simulator.dataset.count(start, end),
    )
    async with PlumClient(
        fuse_auth=simulator.fuse_auth,
        voicetrends_auth=simulator.voicetrends_auth,
        fuse_url=base_url,
        voicetrends_url=base_url,
        format=fmt,
    ) as client:
        page = await client.calls.page(start, end, limit=50, offset=0)
        assert page == expected
        assert all(isinstance(call.type, CallType) for call in page.calls)

        details = await client.call_details.page(start, end, limit=5)
        assert [call.session_id for call in details.calls] == [
            call.session_id for call in expected.calls[:5]
        ]
        assert all(isinstance(call, DetailedCall) and call.detail for call in details.calls)

        log = await client.call_details.get(details.calls[0].session_id)
        if fmt == "json":  # XML carries no types, so `data` values come back as text
            assert log == details.calls[0].detail
        else:
            assert [event.line for event in log] == [e.line for e in details.calls[0].detail]

        day = page.calls[0].start.date()
        report = await client.events.fetch(
            start=day, end=day + timedelta(days=6), period="day", phone="ALL"
        )
        assert len(report.calls) == 7
        assert list(report.calls) == sorted(report.calls)


async def test_errors_over_loopback(simulator, base_url):
    start, end = window(simulator)
    async with PlumClient(
        fuse_auth=("nobody@example.com", "wrong-key"), fuse_url=base_url, max_retries=1
    ) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.calls.page(start, end)
        assert "wrong-key" not in str(caught.value)
    async with PlumClient(
        fuse_auth=simulator.fuse_auth, fuse_url=base_url, max_retries=0
    ) as client:
        with pytest.raises(NotFoundError):
            await client.call_details.get("1;2;3")
        simulator.faults.status(503, times=1)
        with pytest.raises(ServerError):
            await client.calls.page(start, end)
        simulator.faults.drop(times=1)
        with pytest.raises(TransportError):
            await client.calls.page(start, end)


async def test_closed_port_is_a_transport_error_after_retries():
    async with PlumClient(
        fuse_auth=("a@example.com", "k"), fuse_url="http://127.0.0.1:9/api/", max_retries=0
    ) as client:
        with pytest.raises(TransportError):
            await client.calls.page(0, 10)


async def test_iterate_walks_every_call_once_over_loopback(simulator, base_url):
    start, end = 0, 2**31 - 1
    expected = [call.session_id for call in simulator.dataset.page(start, end, limit=10**6)]
    async with PlumClient(fuse_auth=simulator.fuse_auth, fuse_url=base_url) as client:
        walk = client.calls.iterate(start, end, page_size=1000, concurrency=3)
        seen = [call.session_id async for call in walk]
    assert seen == expected
    assert walk.total == len(expected)
    assert walk.offset == len(expected)
