"""The request loop: the governor's verbs in order, retries, error mapping, the wire's shape."""

from __future__ import annotations

import base64
import functools
import gzip
import json
import struct
import threading
import time
import tracemalloc
import zlib
from typing import Any

import anyio
import httpx
import pytest
import respx

from plumvoice_async import (
    APIError,
    AuthenticationError,
    BadRequestError,
    DecodeError,
    InvalidParameterError,
    NotFoundError,
    PlumClient,
    RateLimitError,
    ServerError,
    TransportError,
)
from plumvoice_async import _transport as transport_module
from plumvoice_async._core.decode import decode_response
from plumvoice_async._core.ratelimit import RateLimit
from plumvoice_async._core.retry import backoff_delay
from plumvoice_async._governor import account_hash
from tests.doubles import InstantClock, RecordingGovernor, json_response, scripted
from tests.samples import wire_call

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

        async def acquire(self, key, *, max_wait=None, retry=False, priority="interactive"):
            permit = await super().acquire(key, max_wait=max_wait, retry=retry, priority=priority)
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


# --- the body cap (issue 12, item 2) -------------------------------------------------------------

MIB = 2**20


@functools.cache
def gzip_bomb(prefix: bytes, mib: int) -> bytes:
    """A valid gzip body of ``prefix`` and ``mib`` MiB of zeros: about 1 KiB per MiB.

    Each MiB is compressed once and its block repeated (a full flush makes the blocks alike),
    so the bomb is built in a fraction of a second instead of compressing a gibibyte.
    """
    zeros = bytes(MIB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    final_block = compressor.flush()[:-8]  # without the trailer of what it compressed
    crc = zlib.crc32(prefix)
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    size = (len(prefix) + mib * MIB) & 0xFFFFFFFF
    return head + block * mib + final_block + struct.pack("<II", crc, size)


class OneChunk(httpx.AsyncByteStream):
    """The whole raw body in one chunk: what a transport may hand over (the worst case).

    An iterator object rather than an async generator, so that a read stopped early leaves
    no generator for trio to finalize.
    """

    def __init__(self, body: bytes) -> None:
        self.chunks = [body]

    def __aiter__(self) -> OneChunk:  # type: ignore[override]
        return self

    async def __anext__(self) -> bytes:
        if not self.chunks:
            raise StopAsyncIteration
        return self.chunks.pop()


def raw_response(status: int, body: bytes, **headers: str) -> httpx.Response:
    # httpx.Response(content=...) would decompress in its constructor: hand over the raw stream.
    return httpx.Response(status, headers=headers, stream=OneChunk(body))


@pytest.mark.parametrize(
    ("format", "content_type", "prefix"),
    [
        ("json", "application/json", b'{"calls": [{"dest": "'),
        ("xml", "application/xml", b"<result><calls><item><dest>"),
    ],
)
async def test_a_gzip_bomb_stops_at_the_cap(format: str, content_type: str, prefix: bytes) -> None:
    bomb = gzip_bomb(prefix, 1100)  # 1.1 MB on the wire, 1.07 GiB decompressed
    assert len(bomb) < 1.2e6
    governor = RecordingGovernor()
    transport, seen = scripted(
        raw_response(200, bomb, **{"Content-Encoding": "gzip", "Content-Type": content_type})
    )
    async with make_client(transport, governor=governor, format=format) as client:
        started = time.process_time()
        tracemalloc.start()
        try:
            with pytest.raises(DecodeError) as caught:
                await client.calls.page(1, 2)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        elapsed = time.process_time() - started
    assert "the body exceeds max_response_bytes=67,108,864 once decompressed" in str(caught.value)
    assert caught.value.excerpt.startswith(prefix.decode())
    assert caught.value.content_type == content_type
    assert elapsed < 1.0
    assert peak < 64 * MIB + 32 * MIB  # the cap, one slice past it, and change: not 1 GiB
    assert len(seen) == 1  # not retried
    assert governor.verbs() == ["acquire", "settle"]


@pytest.mark.parametrize("encoding", ["", "gzip", "deflate"])
async def test_a_body_at_the_cap_is_read_and_one_byte_more_is_refused(encoding: str) -> None:
    page = json.dumps(PAGE).encode()
    cap = len(page) + 100

    def encoded(body: bytes) -> bytes:
        if encoding == "gzip":
            return gzip.compress(body)
        return zlib.compress(body) if encoding == "deflate" else body

    headers = {"Content-Encoding": encoding} if encoding else {}
    transport, _ = scripted(
        raw_response(200, encoded(page + b" " * 100), **headers),
        raw_response(200, encoded(page + b" " * 101), **headers),
    )
    async with make_client(transport, max_response_bytes=cap) as client:
        assert (await client.calls.page(1, 2)).total_calls == 0
        with pytest.raises(DecodeError, match=f"max_response_bytes={cap:,}"):
            await client.calls.page(1, 2)


async def test_only_bounded_encodings_are_asked_for() -> None:
    transport, seen = scripted(json_response(200, PAGE))
    async with make_client(transport) as client:
        await client.calls.page(1, 2)
    assert seen[0].headers["Accept-Encoding"] == "gzip, deflate"


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, gzip", "gzip, deflate", "compress"])
async def test_other_encodings_are_refused_before_decompressing(encoding: str) -> None:
    # A brotli or zstd bomb, or gzip inside gzip, expands without a bound per input byte.
    transport, _ = scripted(raw_response(200, b"\x00" * 64, **{"Content-Encoding": encoding}))
    async with make_client(transport) as client:
        with pytest.raises(DecodeError, match="unsupported Content-Encoding"):
            await client.calls.page(1, 2)


async def test_an_error_answer_keeps_its_decompressed_body() -> None:
    body = json.dumps({"error": "call log not found"}).encode()
    transport, _ = scripted(raw_response(404, gzip.compress(body), **{"Content-Encoding": "gzip"}))
    async with make_client(transport) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.calls.page(1, 2)
    assert caught.value.message == "call log not found"
    assert caught.value.response is not None
    assert caught.value.response.content == body
    assert caught.value.response.json() == {"error": "call log not found"}


async def test_a_large_body_is_decoded_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []

    def recording_decode(*args: Any) -> Any:
        threads.append(threading.get_ident())
        return decode_response(*args)

    monkeypatch.setattr(transport_module, "decode_response", recording_decode)
    call = wire_call()
    small = {"calls": [call], "total_calls": 1}
    large = {"calls": [call] * 1000, "total_calls": 1000}  # 160 KB
    transport, _ = scripted(json_response(200, small), json_response(200, large))
    async with make_client(transport) as client:
        assert len((await client.calls.page(1, 2)).calls) == 1
        assert len((await client.calls.page(1, 2)).calls) == 1000
    loop_thread = threading.get_ident()
    assert threads[0] == loop_thread
    assert threads[1] != loop_thread


@pytest.mark.parametrize("value", [0, -1, 1.5, float("nan"), True, "1024", None, 2**20 + 0.0])
def test_max_response_bytes_must_be_a_positive_int(value: object) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        PlumClient(fuse_auth=FUSE, max_response_bytes=value)  # type: ignore[arg-type]
    assert caught.value.parameter == "max_response_bytes"


async def test_a_raw_deflate_body_is_read_like_a_zlib_one() -> None:
    # Servers send "deflate" both ways; httpx reads both, and so does the capped reader.
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw = compressor.compress(json.dumps(PAGE).encode()) + compressor.flush()
    transport, _ = scripted(raw_response(200, raw, **{"Content-Encoding": "deflate"}))
    async with make_client(transport) as client:
        assert (await client.calls.page(1, 2)).total_calls == 0


async def test_a_corrupt_gzip_body_is_a_decode_error() -> None:
    # httpx raised its own DecodingError here, which escaped the public API unwrapped.
    body = b"this is not gzip at all"
    transport, seen = scripted(raw_response(200, body, **{"Content-Encoding": "gzip"}))
    async with make_client(transport) as client:
        with pytest.raises(DecodeError, match="not valid gzip data"):
            await client.calls.page(1, 2)
    assert len(seen) == 1


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
