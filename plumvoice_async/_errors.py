"""The exceptions of plumvoice-async, and the one table that maps HTTP statuses to them.

Every failure the public API raises for bad input or server-side trouble is a ``PlumError``::

    PlumError
    ├── InvalidParameterError      (also a ValueError) bad input, raised before any request or quota
    ├── APIError                   the server answered with an error status
    │   ├── BadRequestError        400
    │   ├── AuthenticationError    401 (also: the endpoint's credentials were never configured)
    │   ├── NotFoundError          404
    │   ├── MethodNotAllowedError  405
    │   ├── RateLimitError         429, or a quota wait longer than ``max_wait``; has ``reset_at``
    │   └── ServerError            5xx
    ├── DecodeError                a body that is not the documented shape
    ├── TransportError             the network failed, after the retries
    ├── PagingError                a walk cannot go on exactly once (lost place, duplicate key)
    ├── ExportError                an export to a file cannot start or resume safely
    └── GovernorUnavailableError   the shared quota store (Redis) could not be reached

Messages never contain credentials: they are built from parameter names, statuses and the
server's own ``error`` text, never from request headers.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "DecodeError",
    "ExportError",
    "GovernorUnavailableError",
    "InvalidParameterError",
    "MethodNotAllowedError",
    "NotFoundError",
    "PagingError",
    "PlumError",
    "RateLimitError",
    "ServerError",
    "TransportError",
    "api_error_for_status",
]


class PlumError(Exception):
    """Base class of every exception raised by plumvoice-async."""


class InvalidParameterError(PlumError, ValueError):
    """A parameter failed validation; raised before any request is sent or quota spent."""

    def __init__(self, parameter: str, value: Any, reason: str) -> None:
        self.parameter = parameter
        self.value = value
        self.reason = reason
        # Days and instants as people write them: 2024-01-01, not datetime.date(2024, 1, 1).
        shown = value.isoformat() if isinstance(value, date) else repr(value)
        super().__init__(f"invalid {parameter}={shown}: {reason}")


class APIError(PlumError):
    """The server answered with an error status.

    ``message`` is the ``error`` text of the JSON or XML body when there is one, else the
    HTTP reason phrase. ``response`` is the ``httpx.Response`` when one was received.
    """

    status_code: int

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        if status_code is not None:
            self.status_code = status_code
        self.message = message
        self.response = response
        super().__init__(f"{self.status_code}: {message}")


class BadRequestError(APIError):
    status_code = 400


class AuthenticationError(APIError):
    status_code = 401


class NotFoundError(APIError):
    status_code = 404


class MethodNotAllowedError(APIError):
    status_code = 405


class RateLimitError(APIError):
    """The quota is spent: ``reset_at`` (UTC-aware) is when the server's window ends.

    Raised for a 429 that outlived the retries, and at once, with no request sent, when the
    wait for quota would exceed the client's ``max_wait``.
    """

    status_code = 429

    def __init__(
        self,
        message: str,
        *,
        reset_at: datetime | None,
        status_code: int | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        self.reset_at = reset_at
        super().__init__(message, status_code=status_code, response=response)


class ServerError(APIError):
    status_code = 500


class DecodeError(PlumError):
    """The body is not the documented shape (an HTML error page, truncated JSON, a wrong root)."""

    def __init__(self, reason: str, *, status_code: int, content_type: str, excerpt: str) -> None:
        self.reason = reason
        self.status_code = status_code
        self.content_type = content_type
        self.excerpt = excerpt
        super().__init__(
            f"{reason} (status {status_code}, content type {content_type or 'none'!r}, "
            f"body starts {excerpt!r})"
        )


class TransportError(PlumError):
    """The request could not be completed over the network, after the configured retries."""


class PagingError(PlumError):
    """A walk cannot go on exactly once, so it stops instead of guessing.

    Raised when none of the rows the walk remembers is on the server any more (it lost its
    place), when the server lists one key twice (in a page, or a passed key again later), and
    when pages keep bringing nothing new while ``total_calls`` promises more. Guessing would
    lose or repeat rows. Restart the walk, or resume from its last checkpoint.
    """


class ExportError(PlumError):
    """An export to a file cannot start or resume safely: its checkpoint is another export's,
    damaged or hand-edited; an unfinished export, or a file no export wrote, would be
    overwritten; the file changed behind the checkpoint's back; or another export is writing
    it now. Nothing was sent or written; the message says what to do instead."""


class GovernorUnavailableError(PlumError):
    """The shared quota store could not be reached, so no request was sent."""


_STATUS_CLASSES: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    405: MethodNotAllowedError,
}


def api_error_for_status(
    status_code: int, message: str, *, reset_at: datetime | None = None
) -> APIError:
    """Build the exception for an error status: the one status-to-class table."""
    if status_code == 429:
        return RateLimitError(message, reset_at=reset_at, status_code=status_code)
    if status_code >= 500:
        return ServerError(message, status_code=status_code)
    cls = _STATUS_CLASSES.get(status_code, APIError)
    return cls(message, status_code=status_code)
