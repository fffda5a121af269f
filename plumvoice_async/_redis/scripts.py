"""The bucket's Lua scripts (``lua/``) as Python calls: loading, arguments, errors, replies.

The one place that knows the scripts' calling convention (the ``KEYS`` and ``ARGV`` layout
``bucket.lua`` documents), so the governor deals in lanes and replies, not in argument lists.
Each verb's script is ``bucket.lua`` followed by the verb's body, registered once and called by
SHA (redis-py's ``Script`` loads it again after ``NOSCRIPT``). Connection and socket failures
become ``GovernorUnavailableError``: the governor decides what an outage means.
"""

from __future__ import annotations

import importlib.resources
import math
from typing import Any

import anyio

from .._clock import Clock
from .._core.bucket import PRIORITIES
from .._errors import GovernorUnavailableError
from .lane import Lane, Reply

__all__ = ["Scripts", "bucket_args", "import_redis"]

_VERBS = ("admit", "settle", "release", "view")


def import_redis() -> Any:
    try:
        import redis.asyncio
    except ImportError as exc:
        raise ImportError(
            "RedisGovernor needs the redis client: pip install 'plumvoice-async[redis]'"
        ) from exc
    return redis


def _script_text(verb: str) -> str:
    folder = importlib.resources.files("plumvoice_async._redis") / "lua"
    return (folder / "bucket.lua").read_text() + "\n" + (folder / f"{verb}.lua").read_text()


def bucket_args(
    *,
    limit: int,
    window: float,
    margin: float,
    lease: float,
    recheck: float,
    channel: str,
    origin: str,
    reserve: int = 0,
) -> list[Any]:
    """``ARGV[1..9]`` of every call on one bucket (``bucket.lua``), the same for every verb."""
    ttl = 2 * window + lease  # idle keys outlive two windows and a lease, then expire
    return [
        limit,
        round(window * 1000),
        round(margin * 1000),
        round(lease * 1000),
        math.ceil(ttl * 1000),
        channel,
        math.ceil(2 * recheck * 1000),  # a waiting mark outlives one re-check
        origin,
        reserve,
    ]


class Scripts:
    """Strictly private: the four scripts registered on one client.

    ``time_from_clock`` is the governor's test seam: the scripts read ``clock.time()``, sent as
    ``ARGV[10]``, instead of Redis ``TIME``.
    """

    __slots__ = ("_clock", "_registered", "_time_from_clock", "_unreachable")

    def __init__(self, client: Any, clock: Clock, *, time_from_clock: bool) -> None:
        self._registered = {verb: client.register_script(_script_text(verb)) for verb in _VERBS}
        self._clock = clock
        self._time_from_clock = time_from_clock
        errors = import_redis().exceptions
        self._unreachable = (errors.ConnectionError, errors.TimeoutError, OSError)

    async def run(self, lane: Lane, verb: str, extra: list[Any] | None = None) -> Reply:
        """One script, one round trip; every verb but ``view`` asks for ``lane``'s queues.

        Shielded whenever it may grant: a token granted while the caller was cancelled would
        stay leased, unused, until its lease expired.
        """
        script = self._registered[verb]
        now = math.floor(self._clock.time() * 1000) if self._time_from_clock else ""
        wants = [0, 0] if verb == "view" else [lane.wanting(p) for p in PRIORITIES]
        args = [*lane.args, now, *wants, *(extra or [])]
        try:
            if any(wants) or verb == "admit":
                with anyio.CancelScope(shield=True):
                    raw = await script(keys=lane.keys, args=args)
            else:
                raw = await script(keys=lane.keys, args=args)
        except self._unreachable as exc:
            raise GovernorUnavailableError(
                f"the quota store (Redis) is unreachable: {type(exc).__name__}"
            ) from exc
        return Reply.parse(raw)
