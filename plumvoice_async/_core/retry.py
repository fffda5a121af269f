"""Which failed attempts are retried, and after how long: numbers in, numbers out.

Transport errors and 5xx answers are transient: they are retried ``max_retries`` times with
jittered exponential backoff. 4xx answers are not: the same request would fail the same way.
A 429 is not decided here at all: quota exhaustion is not a fault, so the governor holds the
request until the window resets and it does not spend a retry (governor.md rule 4).
"""

from __future__ import annotations

__all__ = ["BACKOFF_BASE", "BACKOFF_CAP", "backoff_delay", "should_retry"]

BACKOFF_BASE = 0.5
"""Seconds before the first retry, before jitter."""
BACKOFF_CAP = 30.0
"""The longest pause between two attempts, before jitter."""


def should_retry(*, status: int | None, attempt: int, max_retries: int) -> bool:
    """Whether attempt number ``attempt`` (0 for the first) may be followed by another.

    ``status`` is the answer's HTTP status, or ``None`` when no answer arrived (a
    connection error, a timeout, a dropped connection).
    """
    if attempt >= max_retries:
        return False
    return status is None or status >= 500


def backoff_delay(attempt: int, *, jitter: float) -> float:
    """Seconds to wait after failed attempt ``attempt``: "equal jitter" exponential backoff.

    ``ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt)`` and the pause is
    ``ceiling / 2 + jitter * ceiling / 2`` for ``jitter`` drawn uniformly from [0, 1): never
    less than half the ceiling (so retries do back off), spread over the other half (so many
    clients failing together do not retry together).
    """
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter must be in [0, 1), got {jitter!r}")
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0**attempt)
    return ceiling / 2.0 + jitter * ceiling / 2.0
