"""``PageIterator``: concurrency, bounded memory, cancellation and resumes, on asyncio and trio."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import anyio
import attrs
import pytest
from anyio.lowlevel import checkpoint
from hypothesis import given, settings
from hypothesis import strategies as st

from plumvoice_async import Call
from plumvoice_async._errors import InvalidParameterError, TransportError
from plumvoice_async._pagination import PageIterator, ResumePoint
from plumvoice_async.testing import CallDataset, FakeClock, PlumSimulator

pytestmark = pytest.mark.anyio


@attrs.frozen
class Row:
    session_id: str


def rows(n: int, prefix: str = "c") -> list[Row]:
    return [Row(f"{prefix}{i:05d}") for i in range(n)]


def ids(items: Sequence[Row]) -> list[str]:
    return [row.session_id for row in items]


class Flaky(Exception):
    """A transport fault the caller's retry loop absorbs."""


class FakeServer:
    """An ordered list of rows behind ``fetch(offset, limit)``.

    ``on_page`` runs inside each request, after a checkpoint (so concurrent requests interleave)
    and before the slice is taken: tests mutate the list there. ``fail_once`` names offsets whose
    first request raises ``Flaky``. ``gate``, when set, holds every request until it is set.
    """

    def __init__(self, data: list[Row]) -> None:
        self.data = data
        self.requests: list[tuple[int, int]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.cancelled = 0
        self.on_page: Callable[[FakeServer, int], None] | None = None
        self.fail_once: set[int] = set()
        self.gate: anyio.Event | None = None
        self.started = anyio.Event()

    async def fetch(self, offset: int, limit: int) -> tuple[list[Row], int]:
        self.requests.append((offset, limit))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.started.set()
        try:
            await checkpoint()
            if self.gate is not None:
                await self.gate.wait()
            if offset in self.fail_once:
                self.fail_once.discard(offset)
                raise Flaky(offset)
            if self.on_page is not None:
                self.on_page(self, offset)
            return self.data[offset : offset + limit], len(self.data)
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1


def retrying(
    fetch: Callable[[int, int], Awaitable[tuple[list[Row], int]]],
) -> Callable[[int, int], Awaitable[tuple[list[Row], int]]]:
    """What the client's transport does for a page: retry a transport fault."""

    async def fetch_with_retries(offset: int, limit: int) -> tuple[list[Row], int]:
        for _ in range(3):
            try:
                return await fetch(offset, limit)
            except Flaky:
                continue
        raise TransportError("gave up")

    return fetch_with_retries


def iterate(server: FakeServer, *, retry: bool = True, **kwargs: Any) -> PageIterator[Row, str]:
    fetch = retrying(server.fetch) if retry else server.fetch
    return PageIterator(fetch, key=lambda row: row.session_id, **kwargs)


async def collect(iterator: PageIterator[Row, str]) -> list[str]:
    return [row.session_id async for row in iterator]


async def drain(iterator: PageIterator[Row, str], seen: list[str], *, read_ahead: bool) -> None:
    """Append every row to ``seen``, in the plain or the read-ahead mode."""
    if read_ahead:
        async with iterator:
            await drain(iterator, seen, read_ahead=False)
    else:
        async for row in iterator:
            seen.append(row.session_id)


async def raise_at(iterator: PageIterator[Row, str], session_id: str, *, read_ahead: bool) -> None:
    """A loop body that fails at one row."""
    if read_ahead:
        async with iterator:
            await raise_at(iterator, session_id, read_ahead=False)
    else:
        async for row in iterator:
            if row.session_id == session_id:
                raise KeyError(session_id)


@pytest.mark.parametrize("concurrency", [1, 2, 4])
async def test_every_row_once_in_order(concurrency: int) -> None:
    server = FakeServer(rows(95))
    iterator = iterate(server, page_size=10, concurrency=concurrency)

    assert await collect(iterator) == ids(rows(95))
    assert iterator.offset == 95
    assert iterator.total == 95
    assert iterator.last_key == "c00094"
    assert len(server.requests) == math.ceil(95 / 10)  # the overlap costs rows, not requests
    assert server.most_in_flight == min(concurrency, len(server.requests) - 1)


async def test_at_most_concurrency_pages_are_buffered() -> None:
    server = FakeServer(rows(500))
    iterator = iterate(server, page_size=7, concurrency=3)
    most_buffered = 0
    async for _ in iterator:
        most_buffered = max(most_buffered, iterator.buffered)
    assert most_buffered == 3 * 7 - 1  # one row is being yielded
    assert server.most_in_flight == 3


async def test_pages_yield_the_new_rows_of_each_page_and_keep_the_offset() -> None:
    server = FakeServer(rows(23))
    iterator = iterate(server, page_size=5, concurrency=2)
    first = await iterator.__anext__()  # items and pages share one walk
    pages = [ids(page) async for page in iterator.pages()]
    assert [first.session_id, *(key for page in pages for key in page)] == ids(rows(23))
    assert [len(page) for page in pages] == [4, 5, 5, 5, 3]
    assert iterator.offset == 23


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("concurrency", 0),
        ("concurrency", True),
        ("concurrency", 2.5),
        ("page_size", 0),
        ("page_size", 20_000),
        ("page_size", True),
        ("start_offset", -3),
    ],
)
async def test_parameters_are_checked_before_any_request(name: str, value: object) -> None:
    server = FakeServer(rows(5))
    arguments: dict[str, Any] = {name: value}
    with pytest.raises(InvalidParameterError) as raised:
        iterate(server, **arguments)
    assert raised.value.parameter == name
    assert server.requests == []


async def test_a_retried_page_and_moving_data_still_give_each_row_once() -> None:
    server = FakeServer(rows(60))
    server.fail_once = {9, 29}

    def churn(server: FakeServer, offset: int) -> None:
        if offset == 19:
            server.data[0:0] = rows(4, prefix="n")  # inserted behind the place
        if offset == 39:
            del server.data[2:9]  # expired behind the place

    server.on_page = churn
    out = await collect(iterate(server, page_size=10, concurrency=3))
    assert out == ids(rows(60))
    assert server.fail_once == set()


async def test_breaking_out_leaves_nothing_in_flight_and_sends_nothing_more() -> None:
    server = FakeServer(rows(100))
    iterator = iterate(server, page_size=10, concurrency=4)
    async for row in iterator:
        if row.session_id == "c00012":
            break
    sent = len(server.requests)
    assert server.in_flight == 0
    await checkpoint()
    assert len(server.requests) == sent
    assert iterator.offset == 13
    assert iterator.last_key == "c00012"


@pytest.mark.parametrize("read_ahead", [False, True])
async def test_an_exception_in_the_loop_body_propagates_as_raised(read_ahead: bool) -> None:
    server = FakeServer(rows(50))
    iterator = iterate(server, page_size=10, concurrency=4)
    with pytest.raises(KeyError, match="c00003"):  # not wrapped in an exception group
        await raise_at(iterator, "c00003", read_ahead=read_ahead)
    assert server.in_flight == 0


async def test_a_deadline_around_the_loop_cancels_the_pages_in_flight() -> None:
    server = FakeServer(rows(100))
    iterator = iterate(server, page_size=10, concurrency=4)
    seen: list[str] = []
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(expire_when_in_flight, server, scope, 4)
            async for row in iterator:
                seen.append(row.session_id)
                if len(seen) == 10:
                    server.gate = anyio.Event()  # the next pages hang until cancelled
    assert scope.cancelled_caught
    assert server.cancelled == 4
    assert server.in_flight == 0
    assert seen == ids(rows(10))
    server.gate = None  # the cancelled pages are asked for again when the walk goes on
    assert seen + await collect(iterator) == ids(rows(100))


async def expire_when_in_flight(server: FakeServer, scope: anyio.CancelScope, n: int) -> None:
    while server.in_flight < n:
        await checkpoint()
    scope.deadline = anyio.current_time()  # the deadline passes while the pages hang


async def test_a_failed_page_fails_the_walk_cleanly_and_the_walk_can_go_on() -> None:
    server = FakeServer(rows(40))
    server.fail_once = {19}
    iterator = iterate(server, retry=False, page_size=10, concurrency=4)
    seen: list[str] = []
    with pytest.raises(Flaky):  # as raised by fetch, not wrapped in an exception group
        await drain(iterator, seen, read_ahead=False)
    assert server.in_flight == 0
    assert seen + await collect(iterator) == ids(rows(40))


async def test_a_resume_from_the_offset_with_after_gives_exactly_the_rest() -> None:
    server = FakeServer(rows(80))
    first = iterate(server, page_size=9, concurrency=2)
    seen = []
    async for row in first:
        seen.append(row.session_id)
        if len(seen) == 31:
            break
    offset, after = first.offset, first.last_key
    del server.data[0:12]  # rows expire while the job is down
    server.data[10:10] = rows(3, prefix="n")  # and new ones land behind the checkpoint

    rest = await collect(
        iterate(server, page_size=9, concurrency=2, start_offset=offset, after=after)
    )
    assert seen + rest == ids(rows(80))


@pytest.mark.parametrize("read_ahead", [False, True])
async def test_a_resume_from_the_checkpoint_repeats_no_row_pushed_ahead_by_inserts(
    read_ahead: bool,
) -> None:
    # Issue 12: at the request from offset 5, four rows land after c00004 and four after them
    # leave. The walk finds its place at c00004 again and c00005, which it yielded, is ahead
    # of it now. Stopped inside the next page, a resume from offset and last_key yielded c00005
    # again; the checkpoint also names it.
    server = FakeServer(rows(40))
    data = server.data

    def churn(server: FakeServer, offset: int) -> None:
        if offset == 5 and data[5].session_id == "c00005":
            del data[6:10]
            data[5:5] = rows(4, prefix="n")

    server.on_page = churn
    first = iterate(server, page_size=3)  # one page at a time: the same on asyncio and trio
    seen: list[str] = []
    async for row in first:
        seen.append(row.session_id)
        if row.session_id == "n00002":
            break
    checkpoint = first.checkpoint
    assert (checkpoint.offset, checkpoint.last_key) == (first.offset, first.last_key)
    assert checkpoint.ahead == ("c00005",)
    resume = ResumePoint.from_dict(json.loads(json.dumps(checkpoint.to_dict())))

    rest: list[str] = []
    await drain(
        iterate(server, page_size=3, concurrency=2, resume=resume), rest, read_ahead=read_ahead
    )
    assert len(seen + rest) == len(set(seen + rest))
    assert [key for key in seen + rest if key.startswith("c")] == [
        key for key in ids(rows(40)) if key not in ids(rows(10))[6:10]
    ]
    old_style = iterate(
        server, page_size=3, concurrency=2, start_offset=first.offset, after="n00002"
    )
    assert "c00005" in await collect(old_style)  # what the offset and last key alone gave


async def test_resume_excludes_start_offset_and_after() -> None:
    server = FakeServer(rows(5))
    with pytest.raises(InvalidParameterError) as raised:
        iterate(server, resume=ResumePoint(3, "c00002"), start_offset=3)
    assert raised.value.parameter == "resume"
    assert server.requests == []


@pytest.mark.parametrize("concurrency", [2, 4])
async def test_read_ahead_fetches_while_the_loop_body_works(concurrency: int) -> None:
    server = FakeServer(rows(100))
    iterator = iterate(server, page_size=10, concurrency=concurrency)
    out: list[str] = []
    async with iterator:
        async for row in iterator:
            out.append(row.session_id)
            if row.session_id == "c00000":
                # The page being read counts against the bound: the other slots are in flight
                # while the body works, and no more.
                server.gate = anyio.Event()
                while server.in_flight < concurrency - 1:
                    await checkpoint()
                assert iterator.buffered == 9
                server.gate.set()
            assert iterator.buffered + 10 * server.in_flight <= concurrency * 10
    assert out == ids(rows(100))
    assert server.most_in_flight <= concurrency


async def test_read_ahead_stops_its_fetches_when_the_block_is_left() -> None:
    server = FakeServer(rows(100))
    iterator = iterate(server, page_size=10, concurrency=4)
    async with iterator:
        async for row in iterator:
            if row.session_id == "c00000":
                server.gate = anyio.Event()  # later pages hang
                while server.in_flight < 3:
                    await checkpoint()
                break
    assert server.in_flight == 0
    assert server.cancelled >= 3
    sent = len(server.requests)
    await checkpoint()
    assert len(server.requests) == sent


async def test_read_ahead_hands_a_failure_over_at_its_place_in_the_walk() -> None:
    server = FakeServer(rows(40))
    server.fail_once = {19}
    iterator = iterate(server, retry=False, page_size=10, concurrency=3)
    seen: list[str] = []
    with pytest.raises(Flaky):
        await drain(iterator, seen, read_ahead=True)
    assert seen == ids(rows(20))  # every row before the failed page, none after
    assert server.in_flight == 0


# -- randomized: the async shell under random churn, on both backends ------------------------

cases = st.fixed_dictionaries(
    {
        "backend": st.sampled_from(["asyncio", "trio"]),
        "read_ahead": st.booleans(),
        "size": st.integers(0, 30),
        "page_size": st.integers(1, 5),
        "concurrency": st.integers(1, 4),
        "seed": st.integers(0, 2**32 - 1),
        "churn": st.integers(0, 15),
        "faults": st.integers(0, 3),
    }
)


@settings(max_examples=1000, deadline=None)
@given(cases)
def test_randomized_churn_through_the_shell(case: dict[str, Any]) -> None:
    anyio.run(churned_walk, case, backend=case["backend"])


async def churned_walk(case: dict[str, Any]) -> None:
    rng = random.Random(case["seed"])
    page_size, concurrency = case["page_size"], case["concurrency"]
    server = FakeServer(rows(case["size"]))
    stable = set(ids(server.data))
    churn = case["churn"]
    inserted = 0

    def mutate(server: FakeServer, offset: int) -> None:
        nonlocal churn, inserted
        if churn <= 0 or rng.random() < 0.5:
            return
        churn -= 1
        for _ in range(rng.randint(1, 3)):
            if server.data and rng.random() < 0.5:
                stable.discard(server.data.pop(rng.randrange(len(server.data))).session_id)
            else:
                server.data.insert(rng.randint(0, len(server.data)), Row(f"n{inserted:04d}"))
                inserted += 1

    server.on_page = mutate
    server.fail_once = {rng.randrange(40) for _ in range(case["faults"])}
    iterator = iterate(server, page_size=page_size, concurrency=concurrency)
    out: list[str] = []

    async def consume() -> None:
        async for row in iterator:
            out.append(row.session_id)
            assert iterator.buffered < concurrency * page_size
            if rng.random() < 0.3:
                await checkpoint()

    if case["read_ahead"]:
        async with iterator:
            await consume()
    else:
        await consume()

    assert server.in_flight == 0
    assert server.most_in_flight <= concurrency
    assert len(out) == len(set(out)), "a row was yielded twice"
    assert [key for key in out if key in stable] == [r for r in ids(server.data) if r in stable]


# -- end to end: PlumClient.calls.iterate against the simulator, in process -------------------


def simulated(size: int) -> tuple[PlumSimulator, FakeClock]:
    clock = FakeClock()
    return PlumSimulator(CallDataset(size=size), clock=clock), clock


async def with_fake_time(clock: FakeClock, work: Callable[[], Awaitable[None]]) -> None:
    """Run ``work`` while time moves on, so the client's retry backoff passes at once."""
    async with anyio.create_task_group() as group:

        async def run() -> None:
            await work()
            group.cancel_scope.cancel()

        group.start_soon(run)
        while True:
            await clock.advance(1.0)


def new_call(template: Call, n: int, start: datetime) -> Call:
    return attrs.evolve(
        template, session_id=f"9;{n};1", start=start, end=start + timedelta(seconds=5)
    )


@pytest.mark.parametrize("read_ahead", [False, True])
async def test_the_client_walk_gives_every_stable_call_once_under_churn_and_faults(
    read_ahead: bool,
) -> None:
    sim, clock = simulated(400)
    start, end = 0, 2**31 - 1
    initial = sim.dataset.page(start, end, offset=0, limit=400)
    stable = [call.session_id for call in initial]
    inserted = 0

    def churn(offset: int, limit: int) -> None:
        # Between page requests: the oldest calls expire (a shift left), calls land behind the
        # walk's place (a shift right) and past the old end (a growing total).
        nonlocal inserted
        if offset == 0 or inserted >= 20:
            return
        oldest = sim.dataset.page(start, end, offset=0, limit=15)
        sim.dataset.delete_calls(call.session_id for call in oldest)
        stable[:] = [key for key in stable if key not in {call.session_id for call in oldest}]
        count = sim.dataset.count(start, end)
        behind = sim.dataset.page(start, end, offset=min(max(0, offset - 30), count - 1), limit=1)
        last = sim.dataset.page(start, end, offset=count - 1, limit=1)
        for when in (behind[0].start, last[0].start + timedelta(seconds=30)):
            sim.dataset.insert_call(new_call(last[0], inserted, when))
            inserted += 1

    sim.on_page = churn
    sim.faults.status(503, times=2, path_prefix="/api/calls/")  # retried by the client
    sim.faults.drop(times=1, path_prefix="/api/calls/")
    seen: list[str] = []

    async def walk() -> None:
        async with sim.client() as client:
            calls = client.calls.iterate(start, end, page_size=40, concurrency=4)
            await drain_calls(calls, seen, read_ahead=read_ahead)

    await with_fake_time(clock, walk)
    assert len(seen) == len(set(seen)), "a call was yielded twice"
    assert [key for key in seen if key in set(stable)] == stable
    assert all(fault.hits for fault in sim.faults)
    assert inserted == 20


async def drain_calls(calls: PageIterator[Call, str], seen: list[str], *, read_ahead: bool) -> None:
    if read_ahead:
        async with calls:
            await drain_calls(calls, seen, read_ahead=False)
    else:
        seen.extend([call.session_id async for call in calls])


async def test_the_client_walk_resumes_from_a_checkpoint_against_the_simulator() -> None:
    sim, clock = simulated(300)
    start, end = 0, 2**31 - 1
    expected = [call.session_id for call in sim.dataset.page(start, end, offset=0, limit=300)]
    seen: list[str] = []

    async def walk() -> None:
        async with sim.client() as client:
            first = client.calls.iterate(start, end, page_size=50, concurrency=2)
            async for page in first.pages():
                seen.extend(call.session_id for call in page)
                if len(seen) >= 120:
                    break
            offset, after = first.offset, first.last_key
            # While the job is down, the oldest calls expire.
            sim.dataset.delete_calls(expected[:40])
            rest = client.calls.iterate(
                start, end, page_size=50, concurrency=2, start_offset=offset, after=after
            )
            seen.extend([call.session_id async for call in rest])

    await with_fake_time(clock, walk)
    assert seen == expected


@pytest.mark.parametrize(
    ("size", "cap", "page_size"),
    [(2_500, 1_000, 10_000), (2_500, 10_000, 1_000), (2_000, 10_000, 1_000), (0, 10, 10)],
)
async def test_without_a_total_a_capped_server_is_walked_to_its_end(size, cap, page_size):
    """all_logs may leave ``total_calls`` out (plum-api.md 2.3): a page the server cut short
    is not the end; only a page with nothing new is."""
    rows = [f"{i};0;0" for i in range(size)]
    asked: list[int] = []

    async def fetch(offset: int, limit: int) -> tuple[list[str], None]:
        asked.append(offset)
        return rows[offset : offset + min(limit, cap)], None

    walk = PageIterator(fetch, key=lambda row: row, page_size=page_size)
    assert [row async for row in walk] == rows
    assert walk.requests == len(asked) <= -(-size // min(cap, page_size)) + 2
