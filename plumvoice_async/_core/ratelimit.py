"""The ``X-RateLimit-*`` and ``Date`` headers of one response, as one small value object.

plum-api.md 1.3: every VoiceTrends response carries ``X-RateLimit-Limit``, ``-Remaining``
(after counting this request) and ``-Reset`` (absolute UNIX seconds on the server's clock, the
end of a clock-aligned window). ``Date`` is the server's clock at 1-second resolution.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import attrs

__all__ = ["DELTA_RESET_THRESHOLD", "RateLimit"]

DELTA_RESET_THRESHOLD = 1_000_000_000
"""A ``Reset`` below this (2001-09-09 as an epoch) is read as seconds from now (plum-api.md 6.1)."""


@attrs.frozen
class RateLimit:
    """What one response said about its quota window. Never reads a clock."""

    limit: int
    remaining: int
    reset: float
    server_date: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit | None:
        """Parse the headers; ``None`` when a quota header is absent or malformed."""
        lowered = {name.lower(): value for name, value in headers.items()}
        try:
            limit = int(lowered["x-ratelimit-limit"].strip())
            remaining = int(lowered["x-ratelimit-remaining"].strip())
            reset = float(lowered["x-ratelimit-reset"].strip())
        except (KeyError, ValueError):
            return None
        if limit < 0 or remaining < 0 or reset < 0:
            return None
        return cls(limit, remaining, reset, parse_http_date(lowered.get("date")))

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


def parse_http_date(value: str | None) -> float | None:
    """An HTTP ``Date`` header as UNIX seconds, or ``None`` when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # RFC 7231 dates are GMT; an obsolete form may lack the zone
        return None
    return parsed.timestamp()
