"""``SyncPlumClient``: the async client behind a blocking facade, for scripts, notebooks, WSGI.

One event loop runs in a background thread (anyio's blocking portal) and owns one
``PlumClient``; every method call is handed to that loop and the calling thread blocks until
its answer. Nothing is written twice: each resource method of the facade is the async method
itself, wrapped by ``_blocking`` (its signature, typed through a ``ParamSpec``, is the async
one minus ``async``), so the facade cannot drift from the client. The portal is thread-safe,
so many threads may share one ``SyncPlumClient``: their requests meet in the one loop, and so
in the one governor, exactly as tasks of one ``PlumClient`` do.

A walk (``iterate``) is a plain iterator that runs one step of the async walk per ``next``.
The plain async walk keeps nothing in flight between two steps, so an abandoned iterator
leaves no request, task or quota token behind; ``close()`` (or leaving its ``with`` block)
says so explicitly.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import CancelledError, Future
from contextlib import AbstractContextManager, suppress
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

import anyio
import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._client import DEFAULT_MAX_RESPONSE_BYTES, UNSET, Format, PlumClient, _Unset
from ._clock import Clock
from ._core.paging import ResumePoint
from ._core.requests import DEFAULT_FUSE_URL, DEFAULT_VOICETRENDS_URL, QuotaGroup
from ._credentials import VoiceTrendsLogin
from ._endpoints.call_details import CallDetails, RawCallDetails
from ._endpoints.calls import Calls, RawCalls
from ._endpoints.events import Events, RawEvents
from ._endpoints.reports import (
    DEFAULT_GEOGRAPHIC_RESOURCE,
    PeriodReport,
    RangeReport,
    RawPeriodReport,
    RawRangeReport,
)
from ._events import EventHook
from ._governor import Governor, QuotaKey
from ._models import (
    CallerProfile,
    DiagnosticFlow,
    GeographicProfile,
    PerformanceReport,
    VolumeReport,
)
from ._pagination import PageIterator
from ._raw import RawView
from ._transport import Lifetime

__all__ = [
    "SyncCallDetails",
    "SyncCalls",
    "SyncEvents",
    "SyncPageIterator",
    "SyncPeriodReport",
    "SyncPlumClient",
    "SyncRangeReport",
]

P = ParamSpec("P")
T = TypeVar("T")
ResourceT = TypeVar("ResourceT")
ReportT = TypeVar("ReportT")
RowT = TypeVar("RowT")
KeyT = TypeVar("KeyT")


class _Loop:
    """Strictly private: the client's event loop, as the facade's calls reach it.

    ``lifetime`` is the async client's: once it (or its parent) is closed, a call says so
    here instead of failing on a portal whose loop has stopped. ``pid`` is the process that
    started the loop: a forked child has the client's objects but not its loop thread, so a
    call there would wait forever for an answer; it is refused instead.

    ``keepalive`` is the owning facade's portal context, held and never used: collecting it
    stops the loop (its generator is closed), so everything that can call the loop (derived
    clients, resources, walks) holds it, and the loop runs as long as one of them is alive.
    ``SyncPlumClient.from_env().with_options(...)`` or ``.calls.iterate(...)`` would
    otherwise lose their loop as soon as the temporary parent was collected.
    """

    __slots__ = ("keepalive", "lifetime", "pid", "portal")

    def __init__(
        self, portal: BlockingPortal, lifetime: Lifetime, keepalive: object, pid: int
    ) -> None:
        self.portal = portal
        self.lifetime = lifetime
        self.keepalive = keepalive
        self.pid = pid

    @property
    def forked(self) -> bool:
        """This process is a fork of the one whose thread runs the loop."""
        return os.getpid() != self.pid

    def call(self, function: Callable[[], Coroutine[Any, Any, T]]) -> T:
        if self.forked:
            raise RuntimeError(
                "this SyncPlumClient was created in another process (before a fork): "
                "its event loop does not run here; create a client in this process"
            )
        if self.lifetime.closed:
            raise RuntimeError("this SyncPlumClient is closed (or the one it was derived from)")
        call = _Call(function)
        future: Future[T] | None = None
        try:
            future = self.portal.start_task_soon(call.run)
            return future.result()
        except CancelledError:
            # Cancelled in the loop, not here: ``close()`` stops the calls still running.
            raise RuntimeError("this SyncPlumClient was closed while the call ran") from None
        except BaseException:
            if future is None or not future.done():
                # This thread stopped waiting (Ctrl-C's KeyboardInterrupt), maybe even before
                # the portal handed it the task's future: stop the task too, so that no
                # request or quota wait outlives the call that asked for it.
                with suppress(RuntimeError):  # the loop stopped meanwhile: nothing runs
                    self.portal.call(call.cancel)
            raise


class _Call(Generic[T]):
    """Strictly private: one call run in the loop, which its caller's thread may cancel.

    The portal's own future cannot be relied on for that: the task may start, and Ctrl-C
    arrive, before ``start_task_soon`` has returned it.
    """

    __slots__ = ("_cancelled", "_function", "_scope")

    def __init__(self, function: Callable[[], Coroutine[Any, Any, T]]) -> None:
        self._function = function
        self._scope: anyio.CancelScope | None = None
        self._cancelled = False

    async def run(self) -> T:
        with anyio.CancelScope() as scope:
            self._scope = scope
            if self._cancelled:
                scope.cancel()
            return await self._function()
        raise RuntimeError("cancelled: the thread waiting for this call was interrupted")

    def cancel(self) -> None:
        """In the loop: cancel the call, whether it has started, is running or is done."""
        self._cancelled = True
        if self._scope is not None:
            self._scope.cancel()


class _Facade(Generic[ResourceT]):
    """Strictly private: one async resource and the loop its calls go through."""

    __slots__ = ("_loop", "_resource")

    def __init__(self, resource: ResourceT, loop: _Loop) -> None:
        self._resource = resource
        self._loop = loop

    def __repr__(self) -> str:
        return f"<sync {self._resource!r}>"


class _blocking(Generic[ResourceT, P, T]):
    """Strictly private: a resource's async method, called through the portal and awaited there."""

    __slots__ = ("_name",)

    def __init__(self, method: Callable[Concatenate[ResourceT, P], Coroutine[Any, Any, T]]) -> None:
        self._name = method.__name__

    @overload
    def __get__(self, facade: None, owner: type) -> Self: ...
    @overload
    def __get__(self, facade: _Facade[ResourceT], owner: type) -> Callable[P, T]: ...
    def __get__(self, facade: _Facade[ResourceT] | None, owner: type) -> Self | Callable[P, T]:
        if facade is None:
            return self
        method: Callable[P, Coroutine[Any, Any, T]] = getattr(facade._resource, self._name)
        loop = facade._loop

        @functools.wraps(method)
        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            return loop.call(functools.partial(method, *args, **kwargs))

        return call


class _walking(Generic[ResourceT, P, RowT, KeyT]):
    """Strictly private: a resource's ``iterate``, returning a ``SyncPageIterator``."""

    __slots__ = ("_name",)

    def __init__(
        self, method: Callable[Concatenate[ResourceT, P], PageIterator[RowT, KeyT]]
    ) -> None:
        self._name = method.__name__

    @overload
    def __get__(self, facade: None, owner: type) -> Self: ...
    @overload
    def __get__(
        self, facade: _Facade[ResourceT], owner: type
    ) -> Callable[P, SyncPageIterator[RowT, KeyT]]: ...
    def __get__(
        self, facade: _Facade[ResourceT] | None, owner: type
    ) -> Self | Callable[P, SyncPageIterator[RowT, KeyT]]:
        if facade is None:
            return self
        method: Callable[P, PageIterator[RowT, KeyT]] = getattr(facade._resource, self._name)
        loop = facade._loop

        @functools.wraps(method)
        def walk(*args: P.args, **kwargs: P.kwargs) -> SyncPageIterator[RowT, KeyT]:
            # Built in the caller's thread: it validates its parameters and sends nothing.
            return SyncPageIterator(method(*args, **kwargs), loop)

        return walk


class SyncPageIterator(Generic[RowT, KeyT]):
    """A walk of ``SyncPlumClient``: ``for call in client.calls.iterate(...)``.

    Each ``next`` runs the async walk (``PageIterator``) one row further in the client's loop,
    fetching pages when its buffer runs dry; between two calls nothing is in flight. ``offset``,
    ``last_key`` and ``total`` are the async walk's, for checkpoints. Use it in a ``with``
    block, or call ``close()``, to say you are done: later ``next`` calls then stop at once.

    A ``next`` interrupted in its thread (Ctrl-C) cancels its step in the loop. The steps run
    one at a time there, and a row that a step took just as it was interrupted is kept and
    yielded by the next ``next``: the walk goes on, each row still once. Until then ``offset``,
    ``last_key`` and ``checkpoint`` stand before that row, so that a walk resumed from the
    checkpoint saved on Ctrl-C yields it too.
    """

    __slots__ = ("_before", "_closed", "_ended", "_lock", "_loop", "_rows", "_walk")

    def __init__(self, walk: PageIterator[RowT, KeyT], loop: _Loop) -> None:
        self._walk = walk
        self._loop = loop
        self._closed = False
        # Filled in the loop, emptied in the caller's thread (a deque is safe for that).
        self._rows: deque[RowT] = deque()
        self._ended = False
        self._lock: anyio.Lock | None = None  # made in the loop, by the first step
        # The walk's checkpoint before the row in ``_rows`` (meaningful while there is one).
        self._before: ResumePoint[KeyT] = walk.checkpoint

    @property
    def offset(self) -> int:
        """The server offset just past the last row yielded (see ``PageIterator.offset``)."""
        return self._before.offset if self._rows else self._walk.offset

    @property
    def last_key(self) -> KeyT | None:
        """The key of the last row yielded (see ``PageIterator.last_key``)."""
        return self._before.last_key if self._rows else self._walk.last_key

    @property
    def checkpoint(self) -> ResumePoint[KeyT]:
        """Where the walk is, to resume it with ``resume=`` (see ``PageIterator.checkpoint``)."""
        return self._before if self._rows else self._walk.checkpoint

    @property
    def total(self) -> int | None:
        """The latest ``total_calls`` the server answered; ``None`` before the first page."""
        return self._walk.total

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> RowT:
        while not self._closed:
            try:
                return self._rows.popleft()  # atomic: one thread gets each row
            except IndexError:
                pass
            if self._ended:
                self._closed = True
                break
            # Another thread sharing the walk may take the row this step adds: then step again.
            self._loop.call(self._step)
        raise StopIteration

    async def _step(self) -> None:
        """In the loop: one more row into ``_rows``, or ``_ended`` (a flag, not an exception).

        One step at a time: an interrupted step may still be winding down when the next one
        starts, and the async walk takes one ``__anext__`` at a time. A step that finds a row
        already there (taken by a step whose caller was interrupted) has nothing to do.
        """
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self._rows or self._ended:
                return
            before = self._walk.checkpoint  # ~2% of a step: what to save if its caller is gone
            try:
                row = await self._walk.__anext__()
            except StopAsyncIteration:
                self._ended = True
                return
            self._before = before
            self._rows.append(row)

    def close(self) -> None:
        """Stop the walk: no further page is fetched."""
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class SyncCalls(_Facade[Calls]):
    """``client.calls`` of ``SyncPlumClient``: the methods of ``Calls``, blocking."""

    page = _blocking(Calls.page)
    iterate = _walking(Calls.iterate)
    export = _blocking(Calls.export)

    @property
    def with_raw_response(self) -> SyncRawCalls:
        """``page`` answering a ``RawResponse``, blocking."""
        return SyncRawCalls(self._resource.with_raw_response, self._loop)


class SyncRawCalls(_Facade[RawView[Calls]]):
    """``client.calls.with_raw_response`` of ``SyncPlumClient``."""

    page = _blocking(RawCalls.page)


class SyncCallDetails(_Facade[CallDetails]):
    """``client.call_details`` of ``SyncPlumClient``: the methods of ``CallDetails``, blocking."""

    page = _blocking(CallDetails.page)
    iterate = _walking(CallDetails.iterate)
    export = _blocking(CallDetails.export)
    get = _blocking(CallDetails.get)

    @property
    def with_raw_response(self) -> SyncRawCallDetails:
        """``page`` and ``get`` answering a ``RawResponse``, blocking."""
        return SyncRawCallDetails(self._resource.with_raw_response, self._loop)


class SyncRawCallDetails(_Facade[RawView[CallDetails]]):
    """``client.call_details.with_raw_response`` of ``SyncPlumClient``."""

    page = _blocking(RawCallDetails.page)
    get = _blocking(RawCallDetails.get)


class SyncEvents(_Facade[Events]):
    """``client.events`` of ``SyncPlumClient``."""

    fetch = _blocking(Events.fetch)

    @property
    def with_raw_response(self) -> SyncRawEvents:
        """``fetch`` answering a ``RawResponse``, blocking."""
        return SyncRawEvents(self._resource.with_raw_response, self._loop)


class SyncRawEvents(_Facade[RawView[Events]]):
    """``client.events.with_raw_response`` of ``SyncPlumClient``."""

    fetch = _blocking(RawEvents.fetch)


class SyncPeriodReport(_Facade[PeriodReport[ReportT]]):
    """A report grouped by period, of ``SyncPlumClient``."""

    fetch = _blocking(PeriodReport[ReportT].fetch)

    @property
    def with_raw_response(self) -> SyncRawPeriodReport[ReportT]:
        """``fetch`` answering a ``RawResponse``, blocking."""
        return SyncRawPeriodReport(self._resource.with_raw_response, self._loop)


class SyncRawPeriodReport(_Facade[RawView[PeriodReport[ReportT]]]):
    """A period report's ``with_raw_response`` of ``SyncPlumClient``."""

    fetch = _blocking(RawPeriodReport[ReportT].fetch)  # type: ignore[misc]  # a generic view's descriptor


class SyncRangeReport(_Facade[RangeReport[ReportT]]):
    """A report over the whole range, of ``SyncPlumClient``."""

    fetch = _blocking(RangeReport[ReportT].fetch)

    @property
    def with_raw_response(self) -> SyncRawRangeReport[ReportT]:
        """``fetch`` answering a ``RawResponse``, blocking."""
        return SyncRawRangeReport(self._resource.with_raw_response, self._loop)


class SyncRawRangeReport(_Facade[RawView[RangeReport[ReportT]]]):
    """A whole-range report's ``with_raw_response`` of ``SyncPlumClient``."""

    fetch = _blocking(RawRangeReport[ReportT].fetch)  # type: ignore[misc]  # a generic view's descriptor


class SyncPlumClient:
    """``PlumClient`` for code that does not ``await``: scripts, notebooks, WSGI apps.

    The same settings, ``from_env``, resources and arguments as ``PlumClient``; each method
    blocks until its answer instead of returning an awaitable, and ``iterate`` returns a plain
    iterator. One event loop runs in a background thread for the life of the client; close the
    client (``with SyncPlumClient.from_env() as client:`` or ``client.close()``) to stop it.
    Any number of threads may call one client at once: their requests share its connection
    pool and its governor, so they stay inside the quota together.

    Raises:
        InvalidParameterError, ValueError: as ``PlumClient`` does, from the constructor.
    """

    events: SyncEvents
    volume: SyncPeriodReport[VolumeReport]
    performance: SyncPeriodReport[PerformanceReport]
    caller_profile: SyncPeriodReport[CallerProfile]
    diagnostic_flow: SyncRangeReport[DiagnosticFlow]
    geographic: SyncRangeReport[GeographicProfile]
    calls: SyncCalls
    call_details: SyncCallDetails

    def __init__(
        self,
        *,
        fuse_auth: tuple[str, str] | None = None,
        voicetrends_auth: tuple[str, str] | None = None,
        voicetrends_login: VoiceTrendsLogin | None = None,
        fuse_url: str = DEFAULT_FUSE_URL,
        voicetrends_url: str = DEFAULT_VOICETRENDS_URL,
        format: Format = "json",
        governor: Governor | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float | httpx.Timeout = 30.0,
        max_retries: int = 3,
        max_wait: float | None = None,
        priority: str = "interactive",
        clock: Clock | None = None,
        geographic_resource: str = DEFAULT_GEOGRAPHIC_RESOURCE,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        event_hooks: Sequence[EventHook] = (),
    ) -> None:
        build = functools.partial(
            PlumClient,
            fuse_auth=fuse_auth,
            voicetrends_auth=voicetrends_auth,
            voicetrends_login=voicetrends_login,
            fuse_url=fuse_url,
            voicetrends_url=voicetrends_url,
            format=format,
            governor=governor,
            http_client=http_client,
            timeout=timeout,
            max_retries=max_retries,
            max_wait=max_wait,
            priority=priority,
            clock=clock,
            geographic_resource=geographic_resource,
            max_response_bytes=max_response_bytes,
            event_hooks=event_hooks,
        )
        self._start(build)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Self:
        """``PlumClient.from_env``, blocking: the ``PLUM_*`` variables, then ``overrides``."""
        client = cls.__new__(cls)
        client._start(functools.partial(PlumClient.from_env, environ, **overrides))
        return client

    def _start(self, build: Callable[[], PlumClient]) -> None:
        context: AbstractContextManager[BlockingPortal] = start_blocking_portal()
        portal = context.__enter__()
        try:
            # Built in the loop's own thread, where everything it creates will run.
            client = portal.call(build)
        except BaseException:
            context.__exit__(None, None, None)
            raise
        self._bind(client, portal, context)

    def _bind(
        self,
        client: PlumClient,
        portal: BlockingPortal,
        context: AbstractContextManager[BlockingPortal] | None,
        parent: _Loop | None = None,
    ) -> None:
        """Serve ``client`` through ``portal``; ``context``: the loop, if this facade owns it,
        else ``parent``: the loop of the facade it was derived from."""
        self._portal_context = context
        self._portal = portal
        self._client = client
        self._closed = False
        self._closing = threading.Lock()
        lifetime = client._transport.lifetime
        if parent is None:
            loop = _Loop(portal, lifetime, context, os.getpid())
        else:  # the parent's loop, in the parent's process (a fork's child derives here too)
            loop = _Loop(portal, lifetime, parent.keepalive, parent.pid)
        self._loop = loop
        self.events = SyncEvents(client.events, loop)
        self.volume = SyncPeriodReport(client.volume, loop)
        self.performance = SyncPeriodReport(client.performance, loop)
        self.caller_profile = SyncPeriodReport(client.caller_profile, loop)
        self.diagnostic_flow = SyncRangeReport(client.diagnostic_flow, loop)
        self.geographic = SyncRangeReport(client.geographic, loop)
        self.calls = SyncCalls(client.calls, loop)
        self.call_details = SyncCallDetails(client.call_details, loop)

    def with_options(
        self,
        *,
        max_wait: float | _Unset | None = UNSET,
        timeout: float | httpx.Timeout | _Unset = UNSET,
        max_retries: int | _Unset = UNSET,
        priority: str | _Unset = UNSET,
    ) -> SyncPlumClient:
        """``PlumClient.with_options``, blocking: the same loop, pool, governor and credentials.

        Closing this client closes the new one; closing the new one closes nothing it shares.
        """
        child = type(self).__new__(type(self))
        options = self._client.with_options(
            max_wait=max_wait, timeout=timeout, max_retries=max_retries, priority=priority
        )
        child._bind(options, self._portal, None, self._loop)
        return child

    @property
    def governor(self) -> Governor:
        """The client's quota governor (its methods are async: call them from async code)."""
        return self._client.governor

    def quota_key(self, group: QuotaGroup | str) -> QuotaKey | None:
        """``PlumClient.quota_key``: this client's bucket for ``group``."""
        return self._client.quota_key(group)

    def close(self) -> None:
        """Close the client (as ``PlumClient.aclose``), then stop its loop and thread.

        Idempotent, and safe from several threads at once. Calls still running in other
        threads (through this client or the ones derived from it) are cancelled: they raise
        ``RuntimeError``, as a quota wait of minutes must not hold up a shutdown. Closing a
        derived client stops no loop: its calls still running finish or fail. Closing one
        after its parent, or a client in a forked child process (whose loop is the parent's),
        closes nothing more. From the loop's own thread (an event hook) it raises
        ``RuntimeError`` and closes nothing.
        """
        loop = self._loop
        if loop.forked:
            # The loop runs in the parent process: nothing of it is here (and the lock may
            # have been copied held, by a thread of the parent that was closing).
            self._closed = True
            return
        with self._closing:
            if self._closed:
                return
            try:
                if not loop.lifetime.closed:  # else the parent closed it, pool and loop
                    self._portal.call(self._client.aclose)
            finally:
                # ``aclose`` closes the lifetime first thing; not closed: the call was
                # refused before it ran (from the loop's own thread), so nothing is closed.
                if loop.lifetime.closed:
                    self._closed = True
                    self._stop_loop()

    def _stop_loop(self) -> None:
        """Stop the loop and join its thread, if this facade owns them (not a derived one)."""
        if self._portal_context is None:
            return
        try:
            with suppress(RuntimeError):  # stopped already
                self._portal.call(self._portal.stop, True)  # cancel the calls still running
        finally:
            self._portal_context.__exit__(None, None, None)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Sync{self._client!r}"
