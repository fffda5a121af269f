"""Checks for the arguments of public constructors and settings, one call per argument.

Each takes the value first and the argument's ``name`` as a keyword, like ``params``.

Settings arrive untyped at run time (from code, the environment, a CLI), and a bad one that
is accepted fails much later and far away: ``LocalGovernor(limit=nan)`` hung the first
request, ``PlumClient(timeout=nan)`` raised a bare ``ValueError`` from inside httpx, and
``groups=[1, 2]`` an ``AttributeError``. Each function here takes the raw value (typed
``object``: checking it is the point), returns it in its normalised type, or raises
``InvalidParameterError`` naming the argument, at construction, before anything is sent.

The same strict reading everywhere (a refusal can be relaxed later, an acceptance cannot be
withdrawn):

- a number is an ``int`` or a ``float``, finite; ``bool`` is refused (``True`` is an ``int``
  to Python, not a duration) and so is a numeric string (``"5"``);
- a count is an ``int``; a ``float`` is refused even when whole (``2.0`` is a duration):
  ``count`` is ``params.count``, the check of a page's ``limit`` and ``offset``;
- a secret is never echoed: the error carries ``REDACTED`` as its value, and names the type
  only.

Pure: no clocks, no I/O, like the rest of ``_core``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Final, TypeVar

from .._errors import InvalidParameterError
from .params import count
from .requests import QuotaGroup, normalise_base_url

__all__ = [
    "REDACTED",
    "base_url",
    "callables",
    "clock",
    "count",
    "finite",
    "fraction",
    "governor",
    "implements",
    "instance",
    "non_negative_finite",
    "one_of",
    "positive_finite",
    "quota_groups",
    "reserve",
    "secret_text",
    "secret_tuple",
    "text",
]

T = TypeVar("T")


class _Redacted:
    """The value an error carries in place of a secret; its repr says so."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<redacted>"


REDACTED: Final = _Redacted()
"""Stands in for a secret value in ``InvalidParameterError.value`` and its message."""


def _kind(value: object) -> str:
    return type(value).__name__


# --- numbers ---------------------------------------------------------------------------------


def finite(value: object, *, name: str) -> float:
    """A finite real number (``int`` or ``float``, not ``bool``), returned as ``float``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidParameterError(name, value, f"expected a number, got {_kind(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float's range
        raise InvalidParameterError(name, value, "too large to be a float") from None
    if not math.isfinite(number):
        raise InvalidParameterError(name, value, "must be a finite number")
    return number


def positive_finite(value: object, *, name: str) -> float:
    """A finite number ``> 0``: a duration that must pass (timeouts, windows, leases)."""
    number = finite(value, name=name)
    if number <= 0:
        raise InvalidParameterError(name, value, "must be > 0")
    return number


def non_negative_finite(value: object, *, name: str) -> float:
    """A finite number ``>= 0``: a duration that may be nothing (margins, waits)."""
    number = finite(value, name=name)
    if number < 0:
        raise InvalidParameterError(name, value, "must be >= 0")
    return number


def fraction(value: object, *, name: str) -> float:
    """A finite number in ``(0, 1]``: a share of something, never none of it."""
    number = finite(value, name=name)
    if not 0 < number <= 1:
        raise InvalidParameterError(name, value, "must be > 0 and <= 1")
    return number


# --- text and choices ------------------------------------------------------------------------


def text(value: object, *, name: str) -> str:
    """A non-empty ``str`` (``bytes`` are refused, not decoded)."""
    if not isinstance(value, str):
        raise InvalidParameterError(name, value, f"expected a str, got {_kind(value)}")
    if not value:
        raise InvalidParameterError(name, value, "must not be empty")
    return value


def one_of(value: object, *, name: str, choices: Iterable[T]) -> T:
    """``value`` if it is one of ``choices`` (compared by type and value: ``True != 1`` here)."""
    options = tuple(choices)
    for option in options:
        if type(value) is type(option) and value == option:
            return option
    raise InvalidParameterError(
        name, value, f"expected one of {', '.join(repr(option) for option in options)}"
    )


def reserve(value: object, *, name: str, limit: int) -> int:
    """A count of reserved tokens: an ``int`` from 0 to ``limit - 1`` (bulk keeps at least one)."""
    return count(value, name=name, minimum=0, maximum=limit - 1)


def base_url(value: object, *, name: str) -> str:
    """A configured base URL, normalised (``normalise_base_url`` says what is refused).

    The URL is never echoed: a path may hold a token.
    """
    if not isinstance(value, str):
        raise InvalidParameterError(name, REDACTED, f"expected a str URL, got {_kind(value)}")
    try:
        return normalise_base_url(value, name=name)
    except ValueError as exc:
        raise InvalidParameterError(name, REDACTED, str(exc)) from None


def callables(value: object, *, name: str) -> tuple[Any, ...]:
    """A sequence (not a str, not a mapping) of callables, as a tuple."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidParameterError(name, value, "expected a sequence of callables")
    items = tuple(value)
    for item in items:
        if not callable(item):
            raise InvalidParameterError(name, item, "expected a sequence of callables")
    return items


# --- secrets ---------------------------------------------------------------------------------


def secret_text(value: object, *, name: str) -> str:
    """A non-empty ``str`` that is a secret: the error names its type, never its value."""
    if not (isinstance(value, str) and value):
        reason = "must not be empty" if isinstance(value, str) else f"got {_kind(value)}"
        raise InvalidParameterError(name, REDACTED, f"expected a non-empty str, {reason}")
    return value


def secret_tuple(value: object, *, name: str, size: int) -> tuple[str, ...]:
    """A ``tuple`` of ``size`` non-empty strings (credentials): never echoed."""
    if not (
        isinstance(value, tuple)
        and len(value) == size
        and all(isinstance(part, str) and part for part in value)
    ):
        raise InvalidParameterError(
            name, REDACTED, f"expected a tuple of {size} non-empty strings, got {_kind(value)}"
        )
    return value


# --- objects ---------------------------------------------------------------------------------


def instance(value: object, *, name: str, kind: type[T], secret: bool = False) -> T:
    """``value`` if it is a ``kind``; the error names the type expected and the type got.

    ``secret``: a wrong value may be the secret itself in another form (a tuple for a login),
    so it is not echoed.
    """
    if not isinstance(value, kind):
        shown = REDACTED if secret else value
        reason = f"expected a {kind.__qualname__}, got {_kind(value)}"
        raise InvalidParameterError(name, shown, reason)
    return value


def implements(value: T, *, name: str, protocol: str, methods: Iterable[str]) -> T:
    """``value`` if it has every method of ``protocol`` (a duck-typed ``Clock``, ``Governor``).

    Refused here, a string passed as a governor is named at construction rather than as an
    ``AttributeError`` at the first request.
    """
    missing = [method for method in methods if not callable(getattr(value, method, None))]
    if missing:
        raise InvalidParameterError(
            name, value, f"expected a {protocol}: {_kind(value)} has no {', '.join(missing)}()"
        )
    return value


def clock(value: T | None, *, name: str) -> T | None:
    """``None`` (the default clock) or an object with the ``Clock`` methods."""
    if value is None:
        return None
    return implements(value, name=name, protocol="Clock", methods=("monotonic", "time", "sleep"))


def governor(value: T | None, *, name: str) -> T | None:
    """``None`` (the default governor) or an object with the ``Governor`` methods."""
    if value is None:
        return None
    methods = ("acquire", "settle", "release", "snapshot")
    return implements(value, name=name, protocol="Governor", methods=methods)


def quota_groups(value: object, *, name: str) -> dict[str, tuple[int, float]]:
    """Per-group ``(limit, window)`` overrides: a mapping of ``QuotaGroup`` value to a pair.

    An unknown group is refused rather than ignored: a typo would otherwise leave the group it
    meant at its default quota without a word. Messages name ``name`` and say which group.
    """
    if not isinstance(value, Mapping):
        raise InvalidParameterError(
            name, value, f"expected a mapping of quota group to (limit, window), got {_kind(value)}"
        )
    known = tuple(group.value for group in QuotaGroup)
    quotas: dict[str, tuple[int, float]] = {}
    for group, quota in value.items():
        if not (isinstance(group, str) and group in known):
            raise InvalidParameterError(
                name, value, f"unknown group {group!r}: expected one of {', '.join(known)}"
            )
        if not (isinstance(quota, tuple) and len(quota) == 2):
            raise InvalidParameterError(
                name, value, f"groups[{group!r}] must be a (limit, window) tuple"
            )
        try:
            limit = count(quota[0], name="limit", minimum=1)
            window = positive_finite(quota[1], name="window")
        except InvalidParameterError as exc:
            raise InvalidParameterError(
                name, value, f"groups[{group!r}] {exc.parameter} {exc.reason}"
            ) from None
        quotas[str(group)] = (limit, window)
    return quotas
