"""The sync loop: walk the ranges the planner names, store each page with its checkpoint.

Crash safety is the shape of the loop: a page of calls and the coverage that includes it (the
walk's offset and last session id) commit in one transaction, so a run killed at any moment
leaves either both or neither, and the next run resumes the walk where the database says.
Detailed logs need no checkpoint: a call's status and its events commit together, and the
next run asks the database which logs are still pending.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs

from .._client import PlumClient
from .._core.archive_plan import (
    Coverage,
    PendingLog,
    Walk,
    expires_at,
    finish_walk,
    plan_details,
    plan_reads,
)
from .._core.params import DETAILS_RETENTION_SECONDS
from .._endpoints.calls import session_id_of
from .._models import Call, DetailedCall
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


class _Counts:
    """Strictly private: the running totals of one sync."""

    def __init__(self) -> None:
        self.new_calls = self.updated_calls = self.new_events = 0
        self.expired = self.requests = self.archived = 0


async def run_sync(client: PlumClient, store: SqlStore, run: Runner, job: SyncJob) -> SyncResult:
    """Bring the archive up to date for ``job``; see ``Archive.sync``."""
    counts = _Counts()
    await _sync_calls(client, store, run, job, counts)
    if job.details:
        await _sync_details(client, store, run, job, counts)
    now = int(client.clock.time())
    # Logs expiring in (now, now + 1 h]: started in (expires_at^-1(now), ... + 1 h].
    first = now - expires_at(0)
    soon = await run(store.count_pending, job.account, job.number, first, first + 3_600)
    return SyncResult(
        new_calls=counts.new_calls,
        updated_calls=counts.updated_calls,
        new_events=counts.new_events,
        expired_details=counts.expired,
        requests=counts.requests,
        archived_details=counts.archived,
        expiring_soon=soon,
    )


async def _sync_calls(
    client: PlumClient, store: SqlStore, run: Runner, job: SyncJob, counts: _Counts
) -> None:
    coverage = _decode(await run(store.state, job.state_key))
    now = int(client.clock.time())
    since = job.since
    if since is None and coverage == Coverage():
        since = now - DETAILS_RETENTION_SECONDS  # a first run: what still has its logs
    for read in plan_reads(coverage, since=since, now=now, overlap=job.overlap):

        async def fetch(
            offset: int, limit: int, read_start: int = read.start, read_end: int = read.end
        ) -> tuple[list[Call], int]:
            counts.requests += 1
            page = await client.calls.page(
                read_start, read_end, number=job.number, limit=limit, offset=offset
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
            new, updated = await run(
                store.store_calls, job.account, calls, job.state_key, _encode(progress)
            )
            counts.new_calls += new
            counts.updated_calls += updated
        coverage = finish_walk(coverage, read.walk)
        await run(store.put_state, job.state_key, _encode(coverage))


async def _sync_details(
    client: PlumClient, store: SqlStore, run: Runner, job: SyncJob, counts: _Counts
) -> None:
    after: PendingLog | None = None
    while True:
        pending: Sequence[PendingLog] = await run(
            store.pending, job.account, job.number, after, _PENDING_BATCH
        )
        if not pending:
            return
        plan = plan_details(pending, now=int(client.clock.time()), max_gap=job.max_gap)
        counts.expired += await run(store.expire, job.account, plan.expired)
        for start, end in plan.ranges:

            async def fetch(
                offset: int, limit: int, range_start: int = start, range_end: int = end
            ) -> tuple[list[DetailedCall], int]:
                counts.requests += 1
                page = await client.call_details.page(
                    range_start, range_end, number=job.number, limit=limit, offset=offset
                )
                return page.calls, page.total_calls

            walk: PageIterator[DetailedCall, str] = PageIterator(
                fetch, key=session_id_of, page_size=job.page_size
            )
            async for calls in walk.pages():
                archived, events = await run(store.store_details, job.account, calls)
                counts.archived += archived
                counts.new_events += events
        if len(pending) < _PENDING_BATCH:
            return
        after = pending[-1]
