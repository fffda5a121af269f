"""Raw responses: ``client.calls.with_raw_response.page(...)`` and its siblings.

Every resource has ``with_raw_response``, a view whose methods take the same arguments and
return a ``RawResponse`` instead of the model: the ``httpx.Response`` itself (its headers,
timing, request), its quota headers read into ``rate_limit``, and ``parse()`` for the model.
The request goes through the same loop (governor, retries, 429s); an error status still
raises its ``APIError``. Only the decoding of a success is left to ``parse()``.

The view is typed from the resource's own methods (a ``ParamSpec``), so its signatures are the
resource's, returning ``RawResponse[Model]``: nothing is written twice.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

import attrs
import httpx

__all__ = ["RateLimitInfo", "RawResponse", "RawView", "raw"]

P = ParamSpec("P")
T = TypeVar("T")
ResourceT = TypeVar("ResourceT", bound="_Resource")


@attrs.frozen
class RateLimitInfo:
    """An answer's ``X-RateLimit-*`` headers: the window's ``limit``, what ``remaining`` after
    this request, and ``reset_at``, the window's end read as ``Reset - Date`` (the server's
    clock) from the local clock at receipt."""

    limit: int
    remaining: int
    reset_at: datetime


@attrs.define(eq=False)
class RawResponse(Generic[T]):
    """A successful answer, before decoding.

    Attributes:
        http_response: the ``httpx.Response`` (headers, status, ``elapsed``, ``request``).
        rate_limit: its quota headers, or ``None`` when it had none (or absurd ones).
    """

    http_response: httpx.Response
    rate_limit: RateLimitInfo | None
    _decode: Callable[[], T] = attrs.field(alias="decode", repr=False)
    _parsed: list[T] = attrs.field(factory=list, init=False, repr=False)

    def parse(self) -> T:
        """The model, decoded on first call in the calling thread (then kept).

        Raises:
            DecodeError: the body is not the documented shape.
        """
        if not self._parsed:
            self._parsed.append(self._decode())
        return self._parsed[0]


class _Resource(Protocol):
    _transport: Any


class RawView(Generic[ResourceT]):
    """Strictly private: a resource whose requests answer ``RawResponse``s (``raw`` methods)."""

    __slots__ = ("_resource",)

    def __init__(self, resource: ResourceT) -> None:
        twin = copy.copy(resource)
        twin._transport = resource._transport.raw()
        self._resource = twin

    def __repr__(self) -> str:
        return f"<with_raw_response {self._resource!r}>"


class raw(Generic[ResourceT, P, T]):
    """Strictly private: a resource's method, answering ``RawResponse[T]`` instead of ``T``."""

    __slots__ = ("_name",)

    def __init__(self, method: Callable[Concatenate[ResourceT, P], Coroutine[Any, Any, T]]) -> None:
        self._name = method.__name__

    @overload
    def __get__(
        self, view: None, owner: type
    ) -> Callable[Concatenate[RawView[ResourceT], P], Coroutine[Any, Any, RawResponse[T]]]: ...
    @overload
    def __get__(
        self, view: RawView[ResourceT], owner: type
    ) -> Callable[P, Coroutine[Any, Any, RawResponse[T]]]: ...
    def __get__(self, view: RawView[ResourceT] | None, owner: type) -> Callable[..., Any]:
        name = self._name
        if view is None:  # on the class: a plain function of the view, as a method would be

            def unbound(view: RawView[ResourceT], *args: Any, **kwargs: Any) -> Any:
                return getattr(view._resource, name)(*args, **kwargs)

            unbound.__name__ = name
            return unbound
        # The same method, on a twin whose transport answers RawResponse[T] where it gave T.
        method: Callable[..., Any] = getattr(view._resource, name)
        return method
