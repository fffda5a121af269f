from __future__ import annotations

import pytest

from plumvoice_async._core.retry import BACKOFF_CAP, backoff_delay, retry_delay, should_retry


@pytest.mark.parametrize(
    ("status", "attempt", "max_retries", "expected"),
    [
        (None, 0, 3, True),  # connection error: transient
        (500, 0, 3, True),
        (502, 2, 3, True),
        (503, 3, 3, False),  # retries spent
        (None, 3, 3, False),
        (500, 0, 0, False),  # retries disabled
        (400, 0, 3, False),  # the same request fails the same way
        (401, 0, 3, False),
        (404, 0, 3, False),
        (405, 0, 3, False),
        (429, 0, 3, False),  # the governor's business, never a retry here
        (200, 0, 3, False),
    ],
)
def test_should_retry(status, attempt, max_retries, expected):
    assert should_retry(status=status, attempt=attempt, max_retries=max_retries) is expected


@pytest.mark.parametrize(
    ("attempt", "jitter", "expected"),
    [
        (0, 0.0, 0.25),
        (0, 0.5, 0.375),
        (1, 0.0, 0.5),
        (2, 0.0, 1.0),
        (2, 0.999, 1.999),
        (10, 0.0, BACKOFF_CAP / 2),  # capped
        (60, 0.5, BACKOFF_CAP * 0.75),  # no overflow for absurd attempts
    ],
)
def test_backoff_delay(attempt, jitter, expected):
    assert backoff_delay(attempt, jitter=jitter) == pytest.approx(expected)


@pytest.mark.parametrize("jitter", [-0.1, 1.0, 2.0])
def test_backoff_delay_refuses_jitter_outside_unit_interval(jitter):
    with pytest.raises(ValueError, match="jitter"):
        backoff_delay(0, jitter=jitter)


@pytest.mark.parametrize(
    ("attempt", "retry_after", "max_wait", "expected"),
    [
        (0, None, None, backoff_delay(0, jitter=0.5)),  # no Retry-After: the backoff
        (3, None, 1.0, backoff_delay(3, jitter=0.5)),  # (the backoff is ours: max_wait aside)
        (0, 7.0, None, 7.0),  # the server's word, not the backoff
        (4, 0.0, None, 0.0),
        (0, 7.0, 10.0, 7.0),
        (0, 10.0, 10.0, 10.0),
        (0, 11.0, 10.0, None),  # beyond max_wait: no retry, fail now
    ],
)
def test_retry_delay(attempt, retry_after, max_wait, expected):
    delay = retry_delay(attempt, jitter=0.5, retry_after=retry_after, max_wait=max_wait)
    assert delay == expected
