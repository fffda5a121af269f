"""Which failed attempts are retried, and after how long: numbers in, numbers out.

Transport errors and 5xx answers are transient: they are retried ``max_retries`` times with
jittered exponential backoff. 4xx answers are not: the same request would fail the same way.
A 429 is not decided here at all: quota exhaustion is not a fault, so the governor holds the
request until the window resets and it does not spend a retry (governor.md rule 4).

A 503 may say when to come back (``Retry-After``): then that is the pause, not the backoff, and
a pause longer than the client's ``max_wait`` is no retry at all (``retry_delay``).
"""

from __future__ import annotations

__all__ = ["BACKOFF_BASE", "BACKOFF_CAP", "backoff_delay", "retry_delay", "should_retry"]

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


def retry_delay(
    attempt: int, *, jitter: float, retry_after: float | None, max_wait: float | None
) -> float | None:
    """Seconds to wait before retrying failed attempt ``attempt``, or ``None``: do not retry.

    ``retry_after`` is the answer's ``Retry-After`` in seconds (a 503's: the server says when it
    will serve again, so that is the pause, jitter or not); without one, ``backoff_delay``. A
    server-named pause longer than ``max_wait`` fails at once rather than sleep past it.
    """
    if retry_after is None:
        return backoff_delay(attempt, jitter=jitter)
    if max_wait is not None and retry_after > max_wait:
        return None
    return retry_after
