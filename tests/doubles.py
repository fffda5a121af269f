"""Test doubles for the transport's collaborators: a recording governor, an instant clock."""

from __future__ import annotations

from collections.abc import Callable

import anyio.lowlevel
import httpx

from plumvoice_async._core.ratelimit import RateLimit
from plumvoice_async._governor import Permit, QuotaKey, Snapshot


class RecordingGovernor:
    """Hands out permits at once and records every verb the transport calls, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.retry_afters: list[float | None] = []
        self.priorities: list[str] = []
        """The ``priority`` of each acquire, in order."""
        """The ``retry_after`` of each settle, in order."""

    async def acquire(
        self,
        key: QuotaKey,
        *,
        max_wait: float | None = None,
        retry: bool = False,
        priority: str = "interactive",
    ) -> Permit:
        await anyio.lowlevel.checkpoint()
        self.calls.append(("acquire", (key, retry)))
        self.priorities.append(priority)
        return Permit(key)

    async def settle(
        self,
        permit: Permit,
        *,
        status: int | None,
        rate_limit: RateLimit | None,
        retry_after: float | None = None,
    ) -> None:
        self.calls.append(("settle", (status, rate_limit)))
        self.retry_afters.append(retry_after)

    async def release(self, permit: Permit) -> None:
        self.calls.append(("release", permit.key))

    async def snapshot(self, key: QuotaKey) -> Snapshot:
        return Snapshot(limit=0, remaining=0, reset_at=None, in_flight=0, waiting=0)

    def verbs(self) -> list[str]:
        return [verb for verb, _ in self.calls]


class InstantClock:
    """A clock whose sleeps return at once and are recorded, for asserting backoff."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await anyio.lowlevel.checkpoint()


def scripted(
    *answers: httpx.Response | Exception,
) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A MockTransport giving ``answers`` in order (raising the exceptions), logging requests."""
    seen: list[httpx.Request] = []
    pending = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = pending.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handler), seen


def json_response(status: int, body: object, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def handler_counting(
    respond: Callable[[httpx.Request], httpx.Response],
) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A MockTransport around ``respond`` that logs every request it receives."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return respond(request)

    return httpx.MockTransport(handler), seen
