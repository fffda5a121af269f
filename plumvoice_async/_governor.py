"""The governor seam: every request takes a permit before it is sent and settles it after.

A governor owns one quota bucket per ``QuotaKey`` (quota group and account). The transport
drives it with four verbs:

- ``acquire(key, priority=...)`` waits (FIFO within a priority, ``"interactive"`` before
  ``"bulk"``) for a token and returns a ``Permit``; it raises
  ``RateLimitError`` at once when the wait would exceed ``max_wait``.
- ``settle(permit, status=..., rate_limit=..., retry_after=...)`` reports the answer: its
  ``X-RateLimit-*`` headers re-synchronise the bucket, a 429 closes it until its own reset
  (or, without those headers, for its ``Retry-After``), and ``status=None`` means the request
  went out but no answer came back (it counts as spent).
- ``release(permit)`` returns the token of a request that was never sent.
- ``snapshot(key)`` shows the bucket's state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

import attrs

from ._core.ratelimit import RateLimit

__all__ = ["Governor", "Permit", "QuotaKey", "Snapshot", "account_hash"]


def account_hash(login: str) -> str:
    """The account part of a quota key: a hash, so a key never carries a credential."""
    return hashlib.sha256(login.encode()).hexdigest()[:16]


@attrs.frozen(cache_hash=True)  # hashed twice per request (acquire, settle)
class QuotaKey:
    """One bucket: a quota group (``QuotaGroup`` value) and a hashed account."""

    group: str
    account: str

    def __str__(self) -> str:
        return f"{self.group}:{self.account}"


@attrs.frozen
class Snapshot:
    """A bucket's state at one moment.

    ``remaining`` is how many more requests the governor would let go now in this window (the
    server's ``Remaining`` less the requests in flight); ``reset_at`` the window's end as the
    local clock reads it (``None`` while the window is unknown); ``phase`` what the governor
    knows of the window: ``"probing"`` (unknown: one request goes first, the rest after its
    answer), ``"server"`` (synchronised with the server's headers), ``"local"`` (the server sends
    no headers: counting locally), ``"closed"`` (a 429 said the quota is spent: nothing goes
    until the end it named, then one probe), or ``None`` when a governor does not say.
    ``reserve`` is how many tokens of each window only ``"interactive"`` requests may take;
    ``waiting_by_priority`` the waiters per priority (``waiting`` is their total; empty when a
    governor does not say).
    """

    limit: int
    remaining: int
    reset_at: datetime | None
    in_flight: int
    waiting: int
    phase: str | None = None
    reserve: int = 0
    waiting_by_priority: Mapping[str, int] = attrs.field(factory=dict)


@attrs.define(eq=False)
class Permit:
    """The right to send one request; opaque to everyone but the governor that issued it."""

    key: QuotaKey
    token: object = None


class Governor(Protocol):
    """What the transport needs from a quota governor (local or shared)."""

    async def acquire(
        self,
        key: QuotaKey,
        *,
        max_wait: float | None = None,
        retry: bool = False,
        priority: str = "interactive",
    ) -> Permit:
        """Wait for a token. ``retry=True`` re-queues a request that got a 429 at the front.

        ``priority`` (``"interactive"`` or ``"bulk"``): interactive waiters are served before
        bulk ones, and only they may take a window's last ``reserve`` tokens.
        """
        ...

    async def settle(
        self,
        permit: Permit,
        *,
        status: int | None,
        rate_limit: RateLimit | None,
        retry_after: float | None = None,
    ) -> None:
        """Report the answer to a sent request (``status=None``: sent, no answer).

        ``retry_after``: the answer's ``Retry-After`` as seconds from its receipt (the transport
        converts an HTTP date against the answer's ``Date``), or ``None``. Only a 429 without
        ``X-RateLimit-*`` headers uses it: the gate closes that long (plus the margin), then
        one probe goes.
        """
        ...

    async def release(self, permit: Permit) -> None:
        """Return the token of a request that was never sent."""
        ...

    async def snapshot(self, key: QuotaKey) -> Snapshot:
        """The bucket's state (remaining, reset_at, in_flight, waiting)."""
        ...
