"""The ``X-RateLimit-*``, ``Date`` and ``Retry-After`` headers of one response, as plain values.

plum-api.md 1.3: every VoiceTrends response carries ``X-RateLimit-Limit``, ``-Remaining``
(after counting this request) and ``-Reset`` (absolute UNIX seconds on the server's clock, the
end of a clock-aligned window). ``Date`` is the server's clock at 1-second resolution.

A server that lies must not poison a bucket (issue 11): values that are not finite, negative or
beyond ``MAX_HEADER_COUNT`` are read as absent here; a ``Reset`` too far from its ``Date`` is
read as absent by the bucket, which knows the window (``RateLimit.plausible``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime

import attrs

__all__ = [
    "DELTA_RESET_THRESHOLD",
    "MAX_HEADER_COUNT",
    "MAX_RESET_WINDOWS",
    "MAX_RETRY_AFTER",
    "RateLimit",
    "header_values",
    "latest_date",
    "parse_http_date",
    "parse_retry_after",
]

DELTA_RESET_THRESHOLD = 1_000_000_000
"""A ``Reset`` below this (2001-09-09 as an epoch) is read as seconds from now (plum-api.md 6.1)."""

MAX_HEADER_COUNT = 10**6
"""A ``Limit`` or ``Remaining`` above this is implausible (the documented limit is 150): absent."""

MAX_RESET_WINDOWS = 4
"""A ``Reset`` more than this many windows after the answer's ``Date`` (or, with no ``Date``,
after now), or a delta ``Reset`` longer than this many windows, is implausible: absent."""

MAX_RETRY_AFTER = 86_400.0
"""A ``Retry-After`` longer than a day is implausible: absent (the transport's cap; the bucket
also ignores one longer than ``MAX_RESET_WINDOWS`` windows)."""

Headers = Mapping[str, str] | Iterable[tuple[str, str]]
"""Response headers as a mapping, or as (name, value) pairs keeping repeated names apart
(``httpx.Headers.multi_items()``: its ``get`` and ``items`` join repeats with ``", "``)."""

_JOINED_DATES = re.compile(r"(?<=GMT)\s*,\s*", re.IGNORECASE)
"""Where two HTTP dates joined by ``", "`` meet (each contains a comma of its own)."""


@attrs.frozen
class RateLimit:
    """What one response said about its quota window. Never reads a clock."""

    limit: int
    remaining: int
    reset: float
    server_date: float | None = None

    @classmethod
    def from_headers(cls, headers: Headers) -> RateLimit | None:
        """Parse the headers; ``None`` when a quota header is absent, malformed or absurd.

        A repeated quota header counts only when every copy says the same; of several ``Date``
        headers (uvicorn adds its own beside an app's, proxies do the same) the latest counts.
        """
        values = header_values(headers)
        try:
            limit = _single_int(values.get("x-ratelimit-limit"))
            remaining = _single_int(values.get("x-ratelimit-remaining"))
            reset = _single_float(values.get("x-ratelimit-reset"))
        except ValueError:
            return None
        if not 0 < limit <= MAX_HEADER_COUNT or not 0 <= remaining <= MAX_HEADER_COUNT:
            return None
        if not math.isfinite(reset) or reset < 0:
            return None
        return cls(limit, remaining, reset, latest_date(values.get("date", ())))

    @property
    def reset_is_delta(self) -> bool:
        return self.reset < DELTA_RESET_THRESHOLD

    def seconds_to_reset(self, local_wall_time: float) -> float:
        """Seconds from this response until its window ends, measured on the server's clock.

        ``Reset - Date`` uses two readings of the same (server) clock, so it is immune to skew
        between the client's and the server's clocks; only without a ``Date`` header does the
        local wall clock (``local_wall_time``) stand in.
        """
        if self.reset_is_delta:
            return max(0.0, self.reset)
        now = self.server_date if self.server_date is not None else local_wall_time
        return max(0.0, self.reset - now)

    def plausible(self, window: float, server_now: float) -> bool:
        """Whether a bucket of ``window`` seconds may believe these values (issue 11, rule 4).

        ``server_now`` is the server's clock as the bucket estimates it, used when the answer
        has no ``Date``. A value built by hand (not by ``from_headers``) is checked in full.
        """
        if not (0 < self.limit <= MAX_HEADER_COUNT and 0 <= self.remaining <= MAX_HEADER_COUNT):
            return False
        if not math.isfinite(self.reset) or self.reset < 0:
            return False
        horizon = MAX_RESET_WINDOWS * window
        if self.reset_is_delta:
            return self.reset <= horizon
        date = self.server_date if self.server_date is not None else server_now
        return math.isfinite(date) and self.reset - date <= horizon


def header_values(headers: Headers) -> dict[str, list[str]]:
    """Every value of every header, by lower-cased name, repeats kept in order."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name.lower(), []).append(value)
    return values


def _single_int(values: list[str] | None) -> int:
    texts = {value.strip() for value in values or ()}
    if len(texts) != 1:
        raise ValueError("absent or contradictory")
    return int(texts.pop())


def _single_float(values: list[str] | None) -> float:
    texts = {value.strip() for value in values or ()}
    if len(texts) != 1:
        raise ValueError("absent or contradictory")
    return float(texts.pop())


def latest_date(values: Iterable[str]) -> float | None:
    """The latest readable HTTP date among ``values`` (each may hold several joined by ", ")."""
    dates = [
        parsed
        for value in values
        for part in _JOINED_DATES.split(value)
        if (parsed := parse_http_date(part)) is not None
    ]
    return max(dates, default=None)


def parse_http_date(value: str | None) -> float | None:
    """An HTTP ``Date`` header as UNIX seconds, or ``None`` when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # RFC 7231 dates are GMT; an obsolete form may lack the zone
        return None
    return parsed.timestamp()


def parse_retry_after(headers: Headers, local_wall_time: float) -> float | None:
    """``Retry-After`` as seconds from the answer's receipt, or ``None`` (absent or absurd).

    RFC 9110 10.2.3: delay seconds, or an HTTP date, read against the answer's own ``Date``
    (one clock, the server's) and the local wall clock only without one. A date in the past
    means now (0); a value not finite, unreadable or longer than ``MAX_RETRY_AFTER`` is absent.
    """
    values = header_values(headers)
    texts = {value.strip() for value in values.get("retry-after", ())}
    if len(texts) != 1:
        return None
    text = texts.pop()
    try:
        seconds = float(text)
    except ValueError:
        when = parse_http_date(text)
        if when is None:
            return None
        now = latest_date(values.get("date", ()))
        seconds = when - (local_wall_time if now is None else now)
    if not math.isfinite(seconds) or seconds > MAX_RETRY_AFTER:
        return None
    return max(0.0, seconds)
