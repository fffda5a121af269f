"""The sync loop: walk the ranges the planner names, store each page with its checkpoint.

Crash safety is the shape of the loop: a page of calls and the coverage that includes it (the
walk's offset and last session id) commit in one transaction, so a run killed at any moment
leaves either both or neither, and the next run resumes the walk where the database says.
Detailed logs need no checkpoint: a call's status and its events commit together, and the
next run asks the database which logs are still pending.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs

from .._client import PlumClient
from .._core.archive_plan import (
    Coverage,
    PendingLog,
    ReadRange,
    Walk,
    expires_at,
    finish_walk,
    plan_details,
    plan_reads,
)
from .._core.params import DETAILS_RETENTION_SECONDS
from .._endpoints.calls import session_id_of
from .._errors import PagingError
from .._models import Call
from .._pagination import PageIterator
from ._store import SqlStore

__all__ = ["SyncJob", "SyncResult", "run_sync"]

Runner = Callable[..., Awaitable[Any]]
"""``await run(fn, *args)``: ``fn(*args)`` on the archive's database thread."""

_PENDING_BATCH = 10_000  # pending logs planned at a time: memory stays flat however many


@attrs.frozen
class SyncResult:
    """What one ``Archive.sync`` did.

    Attributes:
        new_calls: calls stored for the first time.
        updated_calls: calls stored before whose fields changed.
        new_events: detailed-log lines stored.
        expired_details: logs given up this run: older than 5 days, never archived.
        requests: API requests made (pages of ``calls`` and ``all_logs``), retries not counted.
        archived_details: calls whose detailed log was stored this run.
        expiring_soon: logs still pending that expire within the hour (after this run).
    """

    new_calls: int = 0
    updated_calls: int = 0
    new_events: int = 0
    expired_details: int = 0
    requests: int = 0
    archived_details: int = 0
    expiring_soon: int = 0


@attrs.frozen
class SyncJob:
    """Strictly private: the validated arguments of one sync."""

    account: str
    number: str | None
    since: int | None
    details: bool
    overlap: int
    max_gap: int
    page_size: int

    @property
    def state_key(self) -> str:
        return "calls " + json.dumps([self.account, self.number])


def _encode(coverage: Coverage) -> str:
    return json.dumps(attrs.asdict(coverage))


def _decode(value: str | None) -> Coverage:
    if value is None:
        return Coverage()
    data = json.loads(value)
    walk = data.get("walk")
    return Coverage(data.get("low"), data.get("high"), None if walk is None else Walk(**walk))


class _Sync:
    """Strictly private: one sync's collaborators and running totals."""

    def __init__(self, client: PlumClient, store: SqlStore, run: Runner, job: SyncJob) -> None:
        self.client, self.store, self.run, self.job = client, store, run, job
        self.new_calls = self.updated_calls = self.new_events = 0
        self.expired = self.requests = self.archived = 0

    def now(self) -> int:
        return int(self.client.clock.time())

    async def calls(self) -> None:
        job = self.job
        coverage = _decode(await self.run(self.store.state, job.state_key))
        now = self.now()
        since = job.since
        if since is None and coverage == Coverage():
            since = now - DETAILS_RETENTION_SECONDS  # a first run: what still has its logs
        for read in plan_reads(coverage, since=since, now=now, overlap=job.overlap):
            try:
                await self.walk_calls(coverage, read)
            except PagingError:
                if read.offset == 0:
                    raise
                # The resumed walk's last stored call is gone from the server, so its place
                # cannot be verified: read the range again from its start (upserts make the
                # repeated rows harmless).
                await self.walk_calls(coverage, ReadRange(read.start, read.end))
            coverage = finish_walk(coverage, read.walk)
            await self.run(self.store.put_state, job.state_key, _encode(coverage))

    async def walk_calls(self, coverage: Coverage, read: ReadRange) -> None:
        """Walk one range of calls, each page stored with the checkpoint of the walk so far."""
        job = self.job

        async def fetch(offset: int, limit: int) -> tuple[list[Call], int]:
            self.requests += 1
            page = await self.client.calls.page(
                read.start, read.end, number=job.number, limit=limit, offset=offset
            )
            return page.calls, page.total_calls

        walk: PageIterator[Call, str] = PageIterator(
            fetch,
            key=session_id_of,
            page_size=job.page_size,
            start_offset=read.offset,
            after=read.after,
        )
        async for calls in walk.pages():
            checkpoint = Walk(read.start, read.end, walk.offset, walk.last_key)
            progress = attrs.evolve(coverage, walk=checkpoint)
            new, updated = await self.run(
                self.store.store_calls, job.account, calls, job.state_key, _encode(progress)
            )
            self.new_calls += new
            self.updated_calls += updated

    async def details(self) -> None:
        job = self.job
        after: PendingLog | None = None
        while True:
            pending: Sequence[PendingLog] = await self.run(
                self.store.pending, job.account, job.number, after, _PENDING_BATCH
            )
            if not pending:
                return
            plan = plan_details(pending, now=self.now(), max_gap=job.max_gap)
            self.expired += await self.run(self.store.expire, job.account, plan.expired)
            starts = [log.start for log in pending]  # sorted: the store's order
            for start, end in plan.ranges:
                # Judged again with the clock of this moment: the walks before it may have
                # taken minutes (quota waits), and the 5-day edge moves meanwhile.
                logs = pending[bisect_left(starts, start) : bisect_right(starts, end)]
                again = plan_details(logs, now=self.now(), max_gap=job.max_gap)
                self.expired += await self.run(self.store.expire, job.account, again.expired)
                for still_start, still_end in again.ranges:  # the same range, or its live end
                    await self.walk_details(still_start, still_end)
            if len(pending) < _PENDING_BATCH:
                return
            after = pending[-1]

    async def walk_details(self, start: int, end: int) -> None:
        """Walk one ``all_logs`` range; each page's logs commit with their calls' status.

        ``iterate`` judges the 5-day window once, when the walk begins: a range whose pages
        outlast its start's 5 days goes on (the logs that expire leave the server's set).
        """
        job = self.job
        walk = self.client.call_details.iterate(
            start, end, number=job.number, page_size=job.page_size
        )
        async for calls in walk.pages():
            archived, events = await self.run(self.store.store_details, job.account, calls)
            self.archived += archived
            self.new_events += events
        self.requests += walk.requests


async def run_sync(client: PlumClient, store: SqlStore, run: Runner, job: SyncJob) -> SyncResult:
    """Bring the archive up to date for ``job``; see ``Archive.sync``."""
    sync = _Sync(client, store, run, job)
    await sync.calls()
    if job.details:
        await sync.details()
    # Logs expiring in (now, now + 1 h] started in (now - (5 days - safety), ... + 1 h].
    first = sync.now() - expires_at(0)
    soon = await run(store.count_pending, job.account, job.number, first, first + 3_600)
    return SyncResult(
        new_calls=sync.new_calls,
        updated_calls=sync.updated_calls,
        new_events=sync.new_events,
        expired_details=sync.expired,
        requests=sync.requests,
        archived_details=sync.archived,
        expiring_soon=soon,
    )
