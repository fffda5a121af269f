"""The request loop: the governor's verbs in order, retries, error mapping, the wire's shape."""

from __future__ import annotations

import base64

import anyio
import httpx
import pytest
import respx

from plumvoice_async import (
    APIError,
    AuthenticationError,
    BadRequestError,
    DecodeError,
    NotFoundError,
    PlumClient,
    RateLimitError,
    ServerError,
    TransportError,
)
from plumvoice_async._core.ratelimit import RateLimit
from plumvoice_async._core.retry import backoff_delay
from plumvoice_async._governor import account_hash
from tests.doubles import InstantClock, RecordingGovernor, json_response, scripted

pytestmark = pytest.mark.anyio

FUSE = ("me@example.com", "DEVKEY-secret")
VT = ("temp_login", "temp-password-secret")
PAGE = {"calls": [], "total_calls": 0}
QUOTA = {
    "X-RateLimit-Limit": "150",
    "X-RateLimit-Remaining": "149",
    "X-RateLimit-Reset": "1519659900",
    "Date": "Mon, 26 Feb 2018 15:30:00 GMT",
}


def make_client(transport: httpx.AsyncBaseTransport, **settings) -> PlumClient:
    settings.setdefault("fuse_auth", FUSE)
    settings.setdefault("voicetrends_auth", VT)
    settings.setdefault("governor", RecordingGovernor())
    settings.setdefault("clock", InstantClock())
    return PlumClient(http_client=httpx.AsyncClient(transport=transport), **settings)


async def test_calls_page_wire_shape():
    with respx.mock(assert_all_called=True) as router:
        route = router.get("https://fuse.plumvoice.com/api/calls/1529550000/1529560000").mock(
            return_value=httpx.Response(200, json=PAGE)
        )
        async with PlumClient(
            fuse_auth=FUSE, governor=RecordingGovernor(), clock=InstantClock()
        ) as client:
            await client.calls.page(
                1529550000, 1529560000, number="6177123000", limit=1000, offset=0
            )
    request = route.calls.last.request
    assert request.method == "GET"
    assert request.url.query == b"number=6177123000&limit=1000&offset=0"
    assert request.headers["Accept"] == "application/json"
    expected = base64.b64encode(b"me@example.com:DEVKEY-secret").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


async def test_query_parameters_are_sent_only_when_given():
    with respx.mock(assert_all_called=True) as router:
        route = router.get("https://fuse.plumvoice.com/api/calls/1/2").mock(
            return_value=httpx.Response(200, json=PAGE)
        )
        async with PlumClient(
            fuse_auth=FUSE, governor=RecordingGovernor(), clock=InstantClock()
        ) as client:
            await client.calls.page(1, 2)
    assert route.calls.last.request.url.query == b""


async def test_events_fetch_wire_shape_in_xml():
    body = (
        b'<?xml version="1.0"?>\n'
        b'<result><calls><item timestamp="1517461200">3</item></calls></result>'
    )
    with respx.mock(assert_all_called=True) as router:
        route = router.get(
            "https://voicetrends.plumvoice.com/api/events/20180201/20180208/day/ALL"
        ).mock(
            return_value=httpx.Response(
                200, content=body, headers={"Content-Type": "application/xml"}
            )
        )
        async with PlumClient(
            voicetrends_auth=VT, format="xml", governor=RecordingGovernor(), clock=InstantClock()
        ) as client:
            report = await client.events.fetch(
                start=20180201, end=20180208, period="day", phone="ALL"
            )
    request = route.calls.last.request
    assert request.headers["Accept"] == "application/xml"
    expected = base64.b64encode(b"temp_login:temp-password-secret").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert list(report.calls.values()) == [3]


async def test_each_attempt_takes_a_permit_and_settles_it_with_the_headers():
    governor = RecordingGovernor()
    transport, _ = scripted(json_response(200, PAGE, **QUOTA))
    async with make_client(transport, governor=governor) as client:
        await client.calls.page(1, 2)
    assert governor.verbs() == ["acquire", "settle"]
    key, retry = governor.calls[0][1]
    assert (key.group, key.account, retry) == ("fuse", account_hash(FUSE[0]), False)
    assert governor.calls[1][1] == (200, RateLimit(150, 149, 1519659900.0, 1519659000.0))


async def test_missing_credentials_raise_before_any_permit_or_request():
    governor = RecordingGovernor()
    transport, seen = scripted()
    async with make_client(transport, governor=governor, fuse_auth=None) as client:
        with pytest.raises(AuthenticationError, match="no fuse credentials"):
            await client.calls.page(1, 2)
    assert seen == []
    assert governor.calls == []


async def test_server_errors_are_retried_with_backoff_then_raised():
    clock = InstantClock()
    governor = RecordingGovernor()
    transport, seen = scripted(*[json_response(503, {"error": "busy"})] * 3)
    async with make_client(transport, governor=governor, clock=clock, max_retries=2) as client:
        with pytest.raises(ServerError) as caught:
            await client.calls.page(1, 2)
    assert len(seen) == 3
    assert caught.value.status_code == 503
    assert caught.value.message == "busy"
    assert caught.value.response is not None
    assert governor.verbs() == ["acquire", "settle"] * 3
    assert len(clock.sleeps) == 2
    for attempt, slept in enumerate(clock.sleeps):
        assert backoff_delay(attempt, jitter=0.0) <= slept < backoff_delay(attempt, jitter=0.0) * 2


async def test_a_server_error_then_success_returns_the_page():
    transport, seen = scripted(
        json_response(500, {"error": "database error"}), json_response(200, PAGE)
    )
    async with make_client(transport) as client:
        page = await client.calls.page(1, 2)
    assert page.total_calls == 0
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, BadRequestError), (401, AuthenticationError), (404, NotFoundError), (418, APIError)],
)
async def test_client_errors_are_not_retried(status, error):
    transport, seen = scripted(json_response(status, {"error": "nope"}))
    async with make_client(transport) as client:
        with pytest.raises(error) as caught:
            await client.calls.page(1, 2)
    assert len(seen) == 1
    assert caught.value.status_code == status
    assert caught.value.response is not None


async def test_transport_errors_settle_as_spent_retry_and_then_raise_transport_error():
    governor = RecordingGovernor()
    failures = [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("cut"),
    ]
    transport, seen = scripted(*failures)
    async with make_client(transport, governor=governor, max_retries=2) as client:
        with pytest.raises(TransportError, match="after 3 attempts") as caught:
            await client.calls.page(1, 2)
    assert len(seen) == 3
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)
    assert [args for verb, args in governor.calls if verb == "settle"] == [(None, None)] * 3


async def test_a_429_requeues_at_the_front_without_spending_a_retry():
    governor = RecordingGovernor()
    limited = json_response(
        429, {"error": "rate limit exceeded"}, **{**QUOTA, "X-RateLimit-Remaining": "0"}
    )
    transport, seen = scripted(limited, limited, json_response(200, PAGE))
    async with make_client(transport, governor=governor, max_retries=0) as client:
        page = await client.calls.page(1, 2)
    assert page == page.__class__(calls=[], total_calls=0)
    assert len(seen) == 3
    acquires = [args[1] for verb, args in governor.calls if verb == "acquire"]
    assert acquires == [False, True, True]
    assert [args[0] for verb, args in governor.calls if verb == "settle"] == [429, 429, 200]


async def test_a_malformed_success_body_is_a_decode_error_not_a_retry():
    transport, seen = scripted(
        httpx.Response(
            200,
            content=b"<html><body>Bad gateway</body></html>",
            headers={"Content-Type": "text/html"},
        )
    )
    async with make_client(transport) as client:
        with pytest.raises(DecodeError) as caught:
            await client.calls.page(1, 2)
    assert len(seen) == 1
    assert caught.value.status_code == 200
    assert "Bad gateway" in caught.value.excerpt


async def test_cancelled_while_waiting_for_the_answer_settles_the_permit_as_spent():
    governor = RecordingGovernor()
    arrived = anyio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async with (
        make_client(httpx.MockTransport(slow), governor=governor) as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(client.calls.page, 1, 2)
        await arrived.wait()
        tg.cancel_scope.cancel()
    assert governor.verbs() == ["acquire", "settle"]
    assert governor.calls[1][1] == (None, None)


async def test_cancelled_before_sending_returns_the_permit():
    class CancellingGovernor(RecordingGovernor):
        """Hands out the permit and then cancels the caller before it can send."""

        scope: anyio.CancelScope

        async def acquire(self, key, *, max_wait=None, retry=False):
            permit = await super().acquire(key, max_wait=max_wait, retry=retry)
            self.scope.cancel()
            return permit

    governor = CancellingGovernor()
    transport, seen = scripted()
    async with make_client(transport, governor=governor) as client:
        with anyio.CancelScope() as scope:
            governor.scope = scope
            await client.calls.page(1, 2)
    assert seen == []
    assert governor.verbs() == ["acquire", "release"]


# -- Retry-After -------------------------------------------------------------------------------


async def test_a_429_without_quota_headers_passes_its_retry_after_to_the_governor():
    governor = RecordingGovernor()
    limited = json_response(429, {"error": "slow down"}, **{"Retry-After": "1"})
    transport, seen = scripted(limited, json_response(200, PAGE, **QUOTA))
    async with make_client(transport, governor=governor) as client:
        await client.calls.page(1, 2)
    assert len(seen) == 2
    assert governor.retry_afters == [1.0, None]
    assert [args[1] for verb, args in governor.calls if verb == "acquire"] == [False, True]


async def test_retry_after_as_an_http_date_is_read_against_the_answers_date():
    governor = RecordingGovernor()
    limited = json_response(
        429,
        {"error": "slow down"},
        **{"Retry-After": "Mon, 26 Feb 2018 15:30:20 GMT", "Date": QUOTA["Date"]},
    )
    transport, _ = scripted(limited, json_response(200, PAGE))
    async with make_client(transport, governor=governor) as client:  # wall clock: 2023
        await client.calls.page(1, 2)
    assert governor.retry_afters == [20.0, None]


async def test_a_429_whose_retry_after_exceeds_max_wait_raises_at_once():
    clock = InstantClock()
    governor = RecordingGovernor()
    limited = json_response(429, {"error": "slow down"}, **{"Retry-After": "100"})
    transport, seen = scripted(limited)
    async with make_client(transport, governor=governor, clock=clock, max_wait=5.0) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.calls.page(1, 2)
    assert len(seen) == 1
    assert clock.sleeps == []
    assert governor.verbs() == ["acquire", "settle"]  # the gate is closed for the others
    assert caught.value.reset_at is not None
    assert caught.value.reset_at.timestamp() == clock.time() + 100
    assert caught.value.status_code == 429
    assert "max_wait" in str(caught.value)


async def test_a_503s_retry_after_is_the_retrys_delay():
    clock = InstantClock()
    busy = json_response(503, {"error": "busy"}, **{"Retry-After": "7"})
    transport, seen = scripted(busy, json_response(200, PAGE))
    async with make_client(transport, clock=clock) as client:
        await client.calls.page(1, 2)
    assert len(seen) == 2
    assert clock.sleeps == [7.0]


async def test_a_503_whose_retry_after_exceeds_max_wait_raises_at_once():
    clock = InstantClock()
    busy = json_response(503, {"error": "busy"}, **{"Retry-After": "120"})
    transport, seen = scripted(busy)
    async with make_client(transport, clock=clock, max_wait=5.0) as client:
        with pytest.raises(ServerError) as caught:
            await client.calls.page(1, 2)
    assert len(seen) == 1
    assert clock.sleeps == []
    assert caught.value.status_code == 503


async def test_two_date_headers_on_the_wire_are_read_as_the_latest():
    governor = RecordingGovernor()
    headers = [(k, v) for k, v in QUOTA.items() if k != "Date"]
    headers += [
        ("Date", "Mon, 26 Feb 2018 15:30:00 GMT"),
        ("Date", "Mon, 26 Feb 2018 15:30:01 GMT"),
    ]
    transport, _ = scripted(httpx.Response(200, json=PAGE, headers=headers))
    async with make_client(transport, governor=governor) as client:
        await client.calls.page(1, 2)
    assert governor.calls[1][1] == (200, RateLimit(150, 149, 1519659900.0, 1519659001.0))
