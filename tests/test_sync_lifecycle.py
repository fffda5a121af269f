"""SyncPlumClient's lifecycle as generated sequences: clients derived and closed, walks
started, advanced and dropped, calls in between, in any order.

The promise: every call answers right or raises ``RuntimeError`` saying the client is closed,
and nothing hangs or leaks; each walk yields its rows exactly once and in order, up to the
point where it (or its client) stopped. A Hypothesis state machine finds the order that
breaks it, if there is one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import httpx
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, rule

from plumvoice_async import LocalGovernor, SyncPageIterator, SyncPlumClient
from plumvoice_async.testing import CallDataset, PlumSimulator

ALL = (0, 2**31 - 1)
SIMULATOR = PlumSimulator(CallDataset(size=30), limit=1_000_000)
IDS = [call.session_id for call in SIMULATOR.dataset.page(*ALL, offset=0, limit=30)]


@dataclass
class Client:
    facade: SyncPlumClient
    parent: Client | None = None
    closed: bool = False

    @property
    def dead(self) -> bool:
        return self.closed or (self.parent is not None and self.parent.dead)


@dataclass
class Walk:
    iterator: SyncPageIterator[object, str]
    client: Client
    seen: list[str] = field(default_factory=list)
    stopped: bool = False  # ended, or closed by its user


class Lifecycle(RuleBasedStateMachine):
    clients = Bundle("clients")
    walks = Bundle("walks")

    def __init__(self) -> None:
        super().__init__()
        self.threads = threading.active_count()
        root = SyncPlumClient(
            fuse_auth=SIMULATOR.fuse_auth,
            fuse_url=SIMULATOR.BASE_URL,
            http_client=httpx.AsyncClient(transport=SIMULATOR.transport()),
            governor=LocalGovernor(1_000_000),
        )
        self.root = Client(root)
        self.all: list[Client] = [self.root]

    @rule(target=clients)
    def root_client(self) -> Client:
        return self.root

    @rule(target=clients, parent=clients, retries=st.integers(0, 2))
    def derive(self, parent: Client, retries: int) -> Client:
        child = Client(parent.facade.with_options(max_retries=retries), parent)
        self.all.append(child)
        return child

    @rule(client=clients)
    def close(self, client: Client) -> None:
        client.facade.close()
        client.closed = True

    @rule(client=clients, offset=st.integers(0, 35), limit=st.integers(1, 10))
    def page(self, client: Client, offset: int, limit: int) -> None:
        if client.dead:
            with pytest.raises(RuntimeError, match="closed"):
                client.facade.calls.page(*ALL, offset=offset, limit=limit)
            return
        page = client.facade.calls.page(*ALL, offset=offset, limit=limit)
        assert [call.session_id for call in page.calls] == IDS[offset : offset + limit]

    @rule(target=walks, client=clients, page_size=st.integers(1, 12))
    def walk(self, client: Client, page_size: int) -> Walk:
        return Walk(client.facade.calls.iterate(*ALL, page_size=page_size), client)

    @rule(walk=walks, steps=st.integers(1, 15))
    def advance(self, walk: Walk, steps: int) -> None:
        for _ in range(steps):
            if walk.client.dead and not walk.stopped:
                with pytest.raises(RuntimeError, match="closed"):
                    next(walk.iterator)
                return
            row = next(walk.iterator, None)
            if row is None:
                walk.stopped = True
                assert walk.seen == IDS  # it ended: every row, once
                return
            walk.seen.append(row.session_id)  # type: ignore[attr-defined]
            assert walk.seen == IDS[: len(walk.seen)]
            assert walk.iterator.offset == len(walk.seen)

    @rule(walk=consumes(walks))
    def stop(self, walk: Walk) -> None:
        walk.iterator.close()
        with pytest.raises(StopIteration):
            next(walk.iterator)

    @rule(walk=consumes(walks))
    def drop(self, walk: Walk) -> None:
        del walk  # never closed: garbage

    def teardown(self) -> None:
        for client in reversed(self.all):
            client.facade.close()
        assert threading.active_count() == self.threads


TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
