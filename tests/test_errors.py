from __future__ import annotations

from datetime import UTC, datetime

import pytest

from plumvoice_async import (
    APIError,
    AuthenticationError,
    BadRequestError,
    MethodNotAllowedError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from plumvoice_async._errors import api_error_for_status


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (405, MethodNotAllowedError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
        (418, APIError),
        (403, APIError),
    ],
)
def test_status_table(status, cls):
    error = api_error_for_status(status, "why")
    assert type(error) is cls
    assert error.status_code == status
    assert error.message == "why"
    assert str(error) == f"{status}: why"


def test_rate_limit_error_carries_reset_at():
    reset = datetime(2018, 2, 26, 15, 45, tzinfo=UTC)
    error = api_error_for_status(429, "rate limit exceeded", reset_at=reset)
    assert isinstance(error, RateLimitError)
    assert error.reset_at == reset
