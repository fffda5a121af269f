"""Async client for the Plum Voice VoiceTrends and Fuse call-log APIs.

Everything public is importable from here; the modules behind it are private and may move.
"""

from importlib.metadata import PackageNotFoundError, version

from ._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    DecodeError,
    GovernorUnavailableError,
    InvalidParameterError,
    MethodNotAllowedError,
    NotFoundError,
    PlumError,
    RateLimitError,
    ServerError,
    TransportError,
)
from ._governor import Governor, QuotaKey, Snapshot
from ._models import (
    Call,
    CallEvent,
    CallPage,
    CallType,
    DetailedCall,
    DetailedCallPage,
    EventReport,
    Period,
)

try:
    __version__ = version("plumvoice-async")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "Call",
    "CallEvent",
    "CallPage",
    "CallType",
    "DecodeError",
    "DetailedCall",
    "DetailedCallPage",
    "EventReport",
    "Governor",
    "GovernorUnavailableError",
    "InvalidParameterError",
    "MethodNotAllowedError",
    "NotFoundError",
    "Period",
    "PlumError",
    "QuotaKey",
    "RateLimitError",
    "ServerError",
    "Snapshot",
    "TransportError",
    "__version__",
]
