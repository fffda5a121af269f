"""What a client tells its observers: each answer, retry, wait for quota and 429.

``PlumClient(event_hooks=[hook, ...])`` calls each hook with one event object at the moment it
happens, in the client's event loop, so a hook must be quick and must not block (count, log,
put in a queue). The same events feed OpenTelemetry when the ``otel`` extra is installed
(``_telemetry``). A hook that raises an ``Exception`` is logged at WARNING and skipped:
watching a request must never break it, nor send it twice. Anything else it raises
(``KeyboardInterrupt``...) goes through, as it would from the request itself, after the
request gave back the quota token it held. Hooks are called, never awaited: an ``async def``
hook is refused when the client is built, and an awaitable a hook returns anyway is closed
and logged at WARNING.

Every event names the ``operation`` the user called (``calls.page``, ``events.fetch``...) and
its quota ``group`` (``fuse``, ``voicetrends``, ``voicetrends-auth``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeAlias

import attrs

from ._errors import InvalidParameterError
from ._logging import logger

__all__ = [
    "Answered",
    "ClientEvent",
    "EventHook",
    "Hooks",
    "QuotaWaited",
    "RateLimited",
    "Retrying",
]


@attrs.frozen
class Answered:
    """One attempt ended: ``status`` of the answer, or ``error`` (the exception's type name)
    when none came; ``remaining`` is the answer's ``X-RateLimit-Remaining``, if it had one."""

    operation: str
    group: str
    status: int | None
    error: str | None = None
    remaining: int | None = None


@attrs.frozen
class Retrying:
    """An attempt failed with ``reason`` (a status or an error type); retry ``attempt`` (1 for
    the first retry) follows after ``delay`` seconds."""

    operation: str
    group: str
    attempt: int
    delay: float
    reason: str


@attrs.frozen
class QuotaWaited:
    """A request took its token from the governor after waiting ``seconds`` (0.0: at once)."""

    operation: str
    group: str
    seconds: float
    priority: str = "interactive"


@attrs.frozen
class RateLimited:
    """The server answered 429; the request waits for ``reset_at`` (when known) and goes again,
    without spending a retry. ``retry_after`` is the answer's ``Retry-After`` in seconds."""

    operation: str
    group: str
    reset_at: datetime | None = None
    retry_after: float | None = None


ClientEvent: TypeAlias = Answered | Retrying | QuotaWaited | RateLimited
"""Every event a client reports: match on its class (``case Retrying(delay=delay): ...``)."""
EventHook: TypeAlias = Callable[[ClientEvent], object]
"""An observer: called with each ``ClientEvent``, in the client's event loop, never awaited;
its result is ignored and its exceptions are logged, never raised into the request."""


class Hooks:
    """Strictly private: the hooks of one client, called in order for each event."""

    __slots__ = ("_hooks",)

    def __init__(self, hooks: Iterable[EventHook] = ()) -> None:
        """Raises ``InvalidParameterError`` (``event_hooks``) for an ``async`` hook: its
        coroutines would never run, so it would see nothing and say nothing."""
        self._hooks = tuple(hooks)
        for hook in self._hooks:
            if inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(
                getattr(hook, "__call__", None)  # noqa: B004 - an async __call__, not callable()
            ):
                raise InvalidParameterError(
                    "event_hooks",
                    _Named(hook),
                    "an async hook would never be awaited: hooks are called in the event loop "
                    "and must be plain functions (put the event in a queue to await on it)",
                )

    def __bool__(self) -> bool:
        return bool(self._hooks)

    def emit(self, event: ClientEvent) -> None:
        for hook in self._hooks:
            try:
                result = hook(event)
            except Exception:  # an observer's bug must not fail the request
                logger.warning("event hook %s raised on %r", _Named(hook), event, exc_info=True)
                continue
            if result is not None and inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()  # never awaited: without a "never awaited" warning later
                logger.warning(
                    "event hook %s returned an awaitable on %r: hooks are called, never awaited",
                    _Named(hook),
                    event,
                )

    def __add__(self, other: Hooks) -> Hooks:
        return Hooks((*self._hooks, *other._hooks))


class _Named:
    """Strictly private: a hook as logs and errors show it, by its qualified name only.

    Its repr could carry what the application bound into it (``functools.partial(send,
    api_key=...)``, an object whose repr shows its settings): never shown.
    """

    __slots__ = ("_hook",)

    def __init__(self, hook: object) -> None:
        self._hook = hook

    def __repr__(self) -> str:
        hook = self._hook
        while isinstance(hook, functools.partial):
            hook = hook.func
        name = getattr(hook, "__qualname__", None)
        return f"<{name if isinstance(name, str) else type(hook).__qualname__}>"

    __str__ = __repr__
