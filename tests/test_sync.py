"""SyncPlumClient: the blocking facade, from plain threads, against the simulator on loopback."""

from __future__ import annotations

import inspect
import json
import threading
import wsgiref.util
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from plumvoice_async import (
    Call,
    CallPage,
    EventReport,
    InvalidParameterError,
    NotFoundError,
    PlumClient,
    SyncPlumClient,
)
from plumvoice_async.testing import CallDataset, PlumSimulator, serve

ALL = (0, 2**31 - 1)


@pytest.fixture(scope="module")
def simulator() -> PlumSimulator:
    # 2,500 calls: several pages of 1,000, quick to walk twice at once.
    return PlumSimulator(CallDataset(size=2_500))


@pytest.fixture(scope="module")
def base_url(simulator: PlumSimulator) -> Iterator[str]:
    with serve(simulator) as url:
        yield url


@pytest.fixture
def client(simulator: PlumSimulator, base_url: str) -> Iterator[SyncPlumClient]:
    with SyncPlumClient(
        fuse_auth=simulator.fuse_auth,
        voicetrends_auth=simulator.voicetrends_auth,
        fuse_url=base_url,
        voicetrends_url=base_url,
    ) as sync:
        yield sync


def page_requests(simulator: PlumSimulator) -> int:
    return sum(1 for request in simulator.requests if "/calls/" in request.path)


def test_the_constructor_takes_what_plum_client_takes():
    ours = inspect.signature(SyncPlumClient.__init__).parameters
    theirs = inspect.signature(PlumClient.__init__).parameters
    assert [(p.name, p.kind, p.default) for p in ours.values()] == [
        (p.name, p.kind, p.default) for p in theirs.values()
    ]


def test_every_resource_and_method_has_its_blocking_twin(client):
    resources = {
        name: resource
        for name, resource in vars(client._client).items()
        if type(resource).__module__.startswith("plumvoice_async._endpoints")
    }
    assert {"calls", "call_details", "events", "geographic"} <= resources.keys()
    for name, resource in resources.items():
        twin = getattr(client, name)
        pairs = [(resource, twin), (resource.with_raw_response, twin.with_raw_response)]
        for theirs, ours in pairs:
            methods = {
                m
                for m in dir(type(theirs))
                if not m.startswith("_") and callable(getattr(theirs, m))
            }
            assert methods, name
            for method in methods:
                signature = inspect.signature(getattr(ours, method))
                assert signature == inspect.signature(getattr(theirs, method)), (name, method)


def test_pages_reports_and_logs_block_and_answer(client, simulator):
    page = client.calls.page(*ALL, limit=10)
    assert isinstance(page, CallPage)
    assert page.calls == simulator.dataset.page(*ALL, offset=0, limit=10)
    assert page.total_calls == len(simulator.dataset)

    first = page.calls[0]
    assert client.call_details.get(first.session_id) == simulator.dataset.details(first.session_id)
    with pytest.raises(NotFoundError):
        client.call_details.get("1;2;3")

    today = date.today()
    report = client.events.fetch(today, today, period="day", phone="ALL")
    assert isinstance(report, EventReport)
    assert client.geographic.fetch(today, today, phone="ALL").us


def test_iterate_is_a_plain_iterator_yielding_every_call_once(client, simulator):
    walk = client.calls.iterate(*ALL, page_size=1_000)
    calls = list(walk)
    assert [call.session_id for call in calls] == [
        call.session_id for call in simulator.dataset.page(*ALL, offset=0, limit=10_000)
    ]
    assert walk.offset == walk.total == len(simulator.dataset)
    assert walk.last_key == calls[-1].session_id
    with pytest.raises(StopIteration):
        next(walk)


def test_an_abandoned_walk_fetches_nothing_more(client, simulator):
    before = page_requests(simulator)
    with client.calls.iterate(*ALL, page_size=1_000) as walk:
        for index, _ in enumerate(walk):
            if index == 1_500:  # in the second page
                break
    assert page_requests(simulator) - before == 2
    with pytest.raises(StopIteration):
        next(walk)  # closed by its with block
    client.calls.page(*ALL, limit=1)  # the loop still serves, and nothing else went out
    assert page_requests(simulator) - before == 3


def test_two_threads_share_one_client_and_its_quota(client, simulator):
    results: dict[str, list[Call]] = {}
    errors: list[BaseException] = []

    def export(name: str) -> None:
        try:
            results[name] = list(client.calls.iterate(*ALL, page_size=1_000))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=export, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    expected = [call.session_id for call in simulator.dataset.page(*ALL, offset=0, limit=10_000)]
    assert [call.session_id for call in results["a"]] == expected
    assert [call.session_id for call in results["b"]] == expected
    key = client.quota_key("fuse")
    assert key is not None  # both threads drew from the one governor of the client
    assert client.governor is client._client.governor


def test_a_wsgi_app_calls_it_from_its_worker_thread(client):
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        page = client.calls.page(*ALL, limit=int(environ["QUERY_STRING"].split("=")[1]))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"total": page.total_calls, "rows": len(page.calls)}).encode()]

    environ: dict[str, Any] = {"QUERY_STRING": "limit=7"}
    wsgiref.util.setup_testing_defaults(environ)
    statuses: list[str] = []
    answer: list[bytes] = []
    worker = threading.Thread(
        target=lambda: answer.extend(app(environ, lambda status, _: statuses.append(status)))
    )
    worker.start()
    worker.join(timeout=30)
    assert statuses == ["200 OK"]
    assert json.loads(b"".join(answer)) == {"total": 2_500, "rows": 7}


def test_errors_cross_into_the_calling_thread(client, simulator):
    with pytest.raises(InvalidParameterError, match="limit"):
        client.calls.page(*ALL, limit=0)
    with pytest.raises(InvalidParameterError):
        client.calls.iterate(*ALL, page_size=0)  # validated when built, nothing sent


def test_a_refused_setting_stops_the_loop_it_started():
    threads = threading.active_count()
    with pytest.raises(ValueError, match="format"):
        SyncPlumClient(format="yaml")  # type: ignore[arg-type]
    assert threading.active_count() == threads


def test_from_env_and_close(simulator, base_url):
    environ = {
        "PLUM_FUSE_EMAIL": simulator.fuse_auth[0],
        "PLUM_FUSE_DEVELOPER_KEY": simulator.fuse_auth[1],
        "PLUM_FUSE_URL": base_url,
    }
    threads = threading.active_count()
    client = SyncPlumClient.from_env(environ, max_retries=0)
    assert client.calls.page(*ALL, limit=1).total_calls == len(simulator.dataset)
    assert simulator.fuse_auth[1] not in repr(client)
    client.close()
    client.close()  # idempotent
    assert threading.active_count() == threads


def test_with_options_shares_the_loop_and_closes_with_its_parent(simulator, base_url):
    threads = threading.active_count()
    parent = SyncPlumClient(fuse_auth=simulator.fuse_auth, fuse_url=base_url)
    child = parent.with_options(max_wait=0, max_retries=0)
    assert child.governor is parent.governor
    assert threading.active_count() == threads + 1  # one loop thread for both
    assert child.calls.page(*ALL, limit=1).total_calls == len(simulator.dataset)
    child.close()  # closes nothing the parent uses
    assert parent.calls.page(*ALL, limit=1).total_calls == len(simulator.dataset)
    other = parent.with_options(max_retries=1)
    parent.close()
    with pytest.raises(RuntimeError, match="closed"):
        other.calls.page(*ALL, limit=1)
    assert threading.active_count() == threads
