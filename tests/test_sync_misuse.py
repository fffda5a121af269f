"""SyncPlumClient under misuse and stress: Ctrl-C, forks, closed clients, threads, churn.

The promise tried here is "a clear error or a right answer, never a hang and never a leak".
Ctrl-C is a real SIGINT sent to the main thread (where pytest runs the test) at a chosen
moment: from the simulator's side, while the request it interrupts is in the loop.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import select
import signal
import threading
import traceback
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from plumvoice_async import (
    DecodeError,
    LocalGovernor,
    NotFoundError,
    PlumError,
    RateLimitError,
    ResumePoint,
    ServerError,
    SyncPlumClient,
    TransportError,
)
from plumvoice_async.testing import CallDataset, PlumSimulator, serve

ALL = (0, 2**31 - 1)
ROOMY = 100_000  # a quota no test here reaches, where spending it is not the point


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def data_requests(simulator: PlumSimulator) -> list[int]:
    """The status of each request for calls (pages or logs), in order."""
    return [request.status for request in simulator.requests if "/calls/" in request.path]


def in_process(
    simulator: PlumSimulator, transport: httpx.AsyncBaseTransport | None = None, **settings: Any
) -> SyncPlumClient:
    """A client of ``simulator`` in process (through ``transport``, if given, to it)."""
    settings.setdefault("governor", LocalGovernor(ROOMY))
    return SyncPlumClient(
        fuse_auth=simulator.fuse_auth,
        fuse_url=simulator.BASE_URL,
        http_client=httpx.AsyncClient(transport=transport or simulator.transport()),
        **settings,
    )


class Interrupting(httpx.AsyncBaseTransport):
    """The simulator in process; its ``at``-th request sends SIGINT to the main thread.

    That request then either waits (``wait=True``: until cancelled, which ``cancelled``
    records; 20 s at most, so that a run without the cancellation fails instead of hanging)
    or is answered at once, racing the interrupt.
    """

    def __init__(self, simulator: PlumSimulator, *, at: int, wait: bool) -> None:
        self._inner = simulator.transport()
        self._at = at
        self._wait = wait
        self.sent = 0
        self.cancelled = threading.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        if self.sent == self._at:
            main = threading.main_thread().ident
            assert main is not None
            signal.pthread_kill(main, signal.SIGINT)
            if self._wait:
                try:
                    with anyio.move_on_after(20):
                        await anyio.sleep_forever()
                except anyio.get_cancelled_exc_class():
                    self.cancelled.set()
                    raise
        return await self._inner.handle_async_request(request)


@pytest.fixture
def simulator() -> PlumSimulator:
    return PlumSimulator(CallDataset(size=50), limit=ROOMY)


@pytest.fixture
def sigint() -> Iterator[None]:
    """Python's own SIGINT handler (KeyboardInterrupt), in the main thread that gets it."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("SIGINT reaches the main thread only")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_while_a_call_waits_cancels_it_in_the_loop_too(simulator, sigint):
    transport = Interrupting(simulator, at=1, wait=True)
    with in_process(simulator, transport, max_retries=0) as client:
        with pytest.raises(KeyboardInterrupt):
            client.calls.page(*ALL, limit=1)
        # Not left running in the background to spend quota for nobody.
        assert transport.cancelled.wait(10)
        assert client.calls.page(*ALL, limit=3).calls == simulator.dataset.page(
            *ALL, offset=0, limit=3
        )
        assert transport.sent == 2


@pytest.mark.parametrize("then", ["go-on", "resume"])
@pytest.mark.parametrize("wait", [True, False], ids=["while-fetching", "as-it-answers"])
def test_ctrl_c_in_a_walk_then_each_row_once(simulator, sigint, wait, then):
    # "as-it-answers": the page arrives as the interrupt does, and the step usually finishes
    # before the thread hears of it (100 of 100 runs of a probe): its row must not be lost.
    transport = Interrupting(simulator, at=3, wait=wait)
    expected = [call.session_id for call in simulator.dataset.page(*ALL, offset=0, limit=100)]
    with in_process(simulator, transport, max_retries=0) as client:
        walk = client.calls.iterate(*ALL, page_size=10)
        seen: list[str] = []
        with pytest.raises(KeyboardInterrupt):
            seen.extend(call.session_id for call in walk)  # interrupted in the third page
        if wait:
            assert transport.cancelled.wait(10)
        assert walk.offset == len(seen)
        assert walk.last_key == seen[-1]
        if then == "go-on":
            seen.extend(call.session_id for call in walk)
            assert walk.offset == 50
        else:  # what a script does on Ctrl-C: save the checkpoint, resume in another run
            checkpoint = walk.checkpoint.to_dict()
            resumed = client.calls.iterate(
                *ALL, page_size=10, resume=ResumePoint.from_dict(checkpoint)
            )
            seen.extend(call.session_id for call in resumed)
        assert seen == expected


@pytest.mark.slow
def test_a_forked_child_gets_a_clear_error_never_a_hang(simulator):
    client = in_process(simulator)
    try:
        assert client.calls.page(*ALL, limit=1).total_calls == 50
        read, write = os.pipe()
        client._closing.acquire()  # as if another thread of the parent were closing it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            answers = []
            # The client, and one derived from it in the child: both the parent's loop.
            for facade in (client, client.with_options(max_retries=0)):
                try:
                    facade.calls.page(*ALL, limit=1)
                    answers.append("answered")
                except BaseException as exc:
                    answers.append(f"{type(exc).__name__}: {exc}")
                facade.close()  # the parent's loop: nothing to close here, and no hang
            os.write(write, "\n".join([*answers, "closed"]).encode())
            os._exit(0)
        client._closing.release()
        os.close(write)
        try:
            ready, _, _ = select.select([read], [], [], 30)
            if not ready:
                os.kill(pid, signal.SIGKILL)
            answer = os.read(read, 4096).decode() if ready else "hung"
        finally:
            os.close(read)
            os.waitpid(pid, 0)
        *answers, closed = answer.split("\n")
        assert closed == "closed", answer
        assert len(answers) == 2, answer
        for one in answers:
            assert one.startswith("RuntimeError: "), answer
            assert "another process" in one, answer
        # The parent's client is untouched by its child.
        assert client.calls.page(*ALL, limit=1).total_calls == 50
    finally:
        client.close()


def test_closing_a_derived_client_after_its_parent_closes_nothing_more(simulator):
    threads = threading.active_count()
    parent = in_process(simulator)
    child = parent.with_options(max_retries=0)
    grandchild = child.with_options(max_wait=0)
    parent.close()
    child.close()
    grandchild.close()
    grandchild.close()
    with pytest.raises(RuntimeError, match="closed"):
        grandchild.calls.page(*ALL, limit=1)
    assert threading.active_count() == threads


def test_a_closed_client_and_its_walks_say_so_every_time(simulator):
    client = in_process(simulator)
    walk = client.calls.iterate(*ALL, page_size=10)
    next(walk)
    with client:
        pass
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.calls.page(*ALL, limit=1)
    with pytest.raises(RuntimeError, match="closed"):
        next(walk)
    with pytest.raises(RuntimeError, match="closed"), client:  # re-entered: still closed
        client.calls.page(*ALL, limit=1)
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: _record(outcome, lambda: next(walk)))
    worker.start()
    worker.join(30)
    assert len(outcome) == 1, outcome
    assert isinstance(outcome[0], RuntimeError), outcome


def _record(outcome: list[BaseException], call: Any) -> None:
    try:
        call()
    except BaseException as exc:
        outcome.append(exc)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_called_from_inside_a_running_event_loop_it_answers(simulator, backend):
    # It blocks that loop while it waits, as any blocking client does, but it does not hang:
    # its own loop runs in its own thread.
    with in_process(simulator) as client:

        async def main() -> int:
            return client.calls.page(*ALL, limit=1).total_calls

        assert anyio.run(main, backend=backend) == 50
        assert asyncio.run(main()) == 50


def test_called_from_its_own_loop_thread_it_refuses_clearly(simulator):
    refusals: list[BaseException] = []
    client: SyncPlumClient

    def hook(event: object) -> None:  # event hooks run in the client's loop thread
        if not refusals:
            try:
                client.calls.page(*ALL, limit=1)
            except RuntimeError as exc:
                refusals.append(exc)

    client = in_process(simulator, event_hooks=[hook])
    with client:
        assert client.calls.page(*ALL, limit=2).total_calls == 50
        assert len(refusals) == 1
        assert "event loop thread" in str(refusals[0])
        assert client.calls.page(*ALL, limit=1).total_calls == 50


def test_exceptions_keep_their_type_and_name_the_callers_line(simulator):
    with in_process(simulator) as client:
        with pytest.raises(NotFoundError) as caught:
            client.call_details.get("1;2;3")
        assert isinstance(caught.value, PlumError)
        frames = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
        assert frames[0] == "test_exceptions_keep_their_type_and_name_the_callers_line"


def test_sixteen_threads_share_one_quota_and_never_overspend_it():
    # 800 calls from 16 threads against a quota of 300: with max_wait=0 the governor must
    # admit exactly 300 and refuse the rest before sending, and the server sees no 429.
    simulator = PlumSimulator(CallDataset(size=50), limit=300)
    expected = simulator.dataset.page(*ALL, offset=0, limit=50)
    with in_process(simulator, governor=LocalGovernor(300), max_wait=0, max_retries=0) as client:

        def fifty(thread: int) -> tuple[int, int]:
            answered = refused = 0
            for call in range(50):
                offset = (thread * 50 + call) % 45
                try:
                    page = client.calls.page(*ALL, limit=5, offset=offset)
                except RateLimitError:
                    refused += 1
                    continue
                assert page.calls == expected[offset : offset + 5]
                answered += 1
            return answered, refused

        threads = threading.active_count()
        with ThreadPoolExecutor(max_workers=16) as pool:
            outcomes = list(pool.map(fifty, range(16)))
    assert sum(answered for answered, _ in outcomes) == 300
    assert sum(refused for _, refused in outcomes) == 500
    statuses = data_requests(simulator)
    assert len(statuses) == 300
    assert set(statuses) == {200}
    assert threading.active_count() == threads - 1  # the client's loop thread is gone


class Abandon(Exception):
    """The loop body's own failure."""


def fail_in_the_body(walk: Iterator[object], failure: BaseException) -> None:
    for _ in walk:
        raise failure


@pytest.mark.slow
def test_two_hundred_abandoned_walks_leak_nothing_and_send_nothing_more():
    simulator = PlumSimulator(CallDataset(size=50), limit=ROOMY)
    with (
        serve(simulator) as url,
        SyncPlumClient(
            fuse_auth=simulator.fuse_auth, fuse_url=url, governor=LocalGovernor(ROOMY)
        ) as client,
    ):
        client.calls.page(*ALL, limit=1)  # the pool's connection is open
        threads, fds = threading.active_count(), open_fds()
        before = len(data_requests(simulator))
        for index in range(200):
            walk = client.calls.iterate(*ALL, page_size=10)
            way = index % 4
            if way == 0:
                for row, _ in enumerate(walk):
                    if row == 3:
                        break
            elif way == 1:
                with pytest.raises(Abandon), walk:
                    fail_in_the_body(walk, Abandon())
            elif way == 2:
                next(walk)
                del walk  # garbage, never closed
            else:
                with pytest.raises(KeyboardInterrupt):
                    fail_in_the_body(walk, KeyboardInterrupt())
        gc.collect()
        # Each walk sent its first page only, and nothing after it was abandoned.
        assert len(data_requests(simulator)) - before == 200
        assert threading.active_count() == threads
        assert open_fds() == fds
        assert client.calls.page(*ALL, limit=2).total_calls == 50


def test_five_hundred_clients_in_a_row_leak_no_thread_or_fd(simulator):
    threads, fds = threading.active_count(), open_fds()
    for _ in range(500):
        with in_process(simulator) as client:
            client.calls.page(*ALL, limit=1)
    assert threading.active_count() == threads
    assert open_fds() == fds


class Acquiring(LocalGovernor):
    """A ``LocalGovernor`` that says when an ``acquire`` has begun (to wait, maybe)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquires = 0
        self.second = threading.Event()

    async def acquire(self, *args: Any, **kwargs: Any) -> Any:
        self.acquires += 1
        if self.acquires == 2:
            self.second.set()
        return await super().acquire(*args, **kwargs)


def test_close_cancels_a_call_waiting_for_quota_in_another_thread():
    # One request per 20 s window: the second call waits for the next window, and close()
    # must not wait with it (a real window is 15 minutes).
    simulator = PlumSimulator(CallDataset(size=50), limit=1, window=20)
    threads = threading.active_count()
    governor = Acquiring(1, window=20)
    client = in_process(simulator, governor=governor, max_retries=0)
    client.calls.page(*ALL, limit=1)
    outcome: list[BaseException] = []
    worker = threading.Thread(
        target=_record, args=(outcome, lambda: client.calls.page(*ALL, limit=1))
    )
    worker.start()
    assert governor.second.wait(10)
    client.close()
    worker.join(10)
    assert not worker.is_alive()
    assert len(outcome) == 1, outcome
    assert isinstance(outcome[0], RuntimeError), outcome
    assert "closed" in str(outcome[0])
    assert len(data_requests(simulator)) == 1
    assert threading.active_count() == threads


def close_at_once(
    client: SyncPlumClient, start: threading.Barrier, outcome: list[BaseException]
) -> None:
    start.wait()
    _record(outcome, client.close)


def test_close_from_many_threads_at_once_closes_once():
    simulator = PlumSimulator(CallDataset(size=50), limit=ROOMY)
    threads = threading.active_count()
    for _ in range(20):
        client = in_process(simulator)
        client.calls.page(*ALL, limit=1)
        start = threading.Barrier(8)
        outcome: list[BaseException] = []
        close = functools.partial(close_at_once, client, start, outcome)
        closers = [threading.Thread(target=close) for _ in range(8)]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join(30)
        assert outcome == []
    assert threading.active_count() == threads


def test_close_from_its_own_loop_thread_refuses_and_closes_nothing(simulator):
    threads = threading.active_count()
    refusals: list[BaseException] = []
    client: SyncPlumClient

    def hook(event: object) -> None:  # event hooks run in the client's loop thread
        if not refusals:
            _record(refusals, client.close)

    client = in_process(simulator, event_hooks=[hook])
    assert client.calls.page(*ALL, limit=1).total_calls == 50
    assert len(refusals) == 1
    assert isinstance(refusals[0], RuntimeError)
    assert client.calls.page(*ALL, limit=1).total_calls == 50  # still open
    client.close()  # and it can still be closed, its thread with it
    assert threading.active_count() == threads


def test_one_walk_shared_by_four_threads_yields_each_row_once(simulator):
    # Not a documented use, but not a corruption either: the steps run one at a time.
    with in_process(simulator) as client:
        walk = client.calls.iterate(*ALL, page_size=7)
        taken: list[list[str]] = [[] for _ in range(4)]

        def drain(mine: list[str]) -> None:
            mine.extend(call.session_id for call in walk)

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(drain, taken))
        expected = [call.session_id for call in simulator.dataset.page(*ALL, offset=0, limit=50)]
        assert sorted(row for mine in taken for row in mine) == sorted(expected)
        for mine in taken:  # each thread saw its rows in walk order
            assert mine == sorted(mine, key=expected.index)


class InterruptingAcquire(Acquiring):
    """Its second ``acquire`` sends SIGINT to the main thread, then waits for quota."""

    async def acquire(self, *args: Any, **kwargs: Any) -> Any:
        if self.acquires == 1:
            main = threading.main_thread().ident
            assert main is not None
            signal.pthread_kill(main, signal.SIGINT)
        return await super().acquire(*args, **kwargs)


def test_ctrl_c_while_waiting_for_quota_leaves_no_waiter_behind(sigint):
    simulator = PlumSimulator(CallDataset(size=50), limit=1, window=20)
    governor = InterruptingAcquire(1, window=20)
    with in_process(simulator, governor=governor, max_retries=0) as client:
        client.calls.page(*ALL, limit=1)
        with pytest.raises(KeyboardInterrupt):
            client.calls.page(*ALL, limit=1)  # waits for the next window
        key = client.quota_key("fuse")
        assert key is not None

        async def settled() -> int:
            for _ in range(100):  # the cancelled task runs when the loop gets to it
                snapshot = await governor.snapshot(key)
                if snapshot.waiting == 0:
                    break
                await anyio.lowlevel.checkpoint()
            return snapshot.waiting

        assert client._portal.call(settled) == 0
        assert len(data_requests(simulator)) == 1
        with pytest.raises(RateLimitError):  # usable: it still knows the window is spent
            client.with_options(max_wait=0).calls.page(*ALL, limit=1)


def test_what_a_temporary_client_hands_out_keeps_its_loop(simulator):
    # The facade that owns the loop is garbage as soon as these expressions have read it;
    # collecting it used to stop the loop under what it handed out ("portal not running").
    threads = threading.active_count()
    bulk = in_process(simulator).with_options(priority="bulk")
    assert bulk.calls.page(*ALL, limit=2).total_calls == 50
    assert in_process(simulator).calls.page(*ALL, limit=2).total_calls == 50
    calls = in_process(simulator).calls
    gc.collect()
    assert len(list(calls.iterate(*ALL, page_size=20))) == 50
    # Once nothing can call it any more, its loop stops with the last of them.
    del bulk, calls
    gc.collect()
    assert threading.active_count() == threads


def test_threads_calling_through_a_close_answer_or_say_closed(simulator):
    threads = threading.active_count()
    for _ in range(10):
        client = in_process(simulator)
        answered = threading.Semaphore(0)
        failures: list[BaseException] = []

        def hammer(
            client: SyncPlumClient = client,
            answered: threading.Semaphore = answered,
            failures: list[BaseException] = failures,
        ) -> None:
            while True:
                try:
                    page = client.calls.page(*ALL, limit=1)
                except BaseException as exc:
                    failures.append(exc)
                    return
                assert page.total_calls == 50
                answered.release()

        workers = [threading.Thread(target=hammer) for _ in range(8)]
        for worker in workers:
            worker.start()
        for _ in range(16):  # calls are flowing from several threads
            answered.acquire(timeout=10)
        client.close()
        for worker in workers:
            worker.join(10)
        assert not any(worker.is_alive() for worker in workers)
        assert len(failures) == 8
        for failure in failures:
            assert isinstance(failure, RuntimeError), failure
            assert "closed" in str(failure), failure
    assert threading.active_count() == threads


def test_a_walk_that_failed_goes_on_each_row_once(simulator):
    expected = [call.session_id for call in simulator.dataset.page(*ALL, offset=0, limit=50)]
    with in_process(simulator, max_retries=0) as client:
        walk = client.calls.iterate(*ALL, page_size=10)
        seen = [next(walk).session_id for _ in range(15)]
        failures: list[type[BaseException]] = []
        simulator.faults.status(503)
        simulator.faults.drop()
        simulator.faults.malformed("truncated")
        while True:
            try:
                call = next(walk, None)
            except PlumError as exc:  # the server's trouble, in its own type, in this thread
                failures.append(type(exc))
                continue
            if call is None:
                break
            seen.append(call.session_id)
        assert failures == [ServerError, TransportError, DecodeError]
        assert seen == expected
