"""Async client for the Plum Voice VoiceTrends and Fuse call-log APIs.

Everything public is importable from here; the modules behind it are private and may move.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from ._client import PlumClient
from ._credentials import VoiceTrendsLogin
from ._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    DecodeError,
    GovernorUnavailableError,
    InvalidParameterError,
    MethodNotAllowedError,
    NotFoundError,
    PagingError,
    PlumError,
    RateLimitError,
    ServerError,
    TransportError,
)
from ._governor import Governor, QuotaKey, Snapshot
from ._local_governor import LocalGovernor
from ._logging import configure_from_env as _configure_logging
from ._models import (
    Call,
    CallerProfile,
    CallEvent,
    CallPage,
    CallType,
    DetailedCall,
    DetailedCallPage,
    DiagnosticFlow,
    EventReport,
    FlowNode,
    GeographicProfile,
    PerformanceReport,
    Period,
    VolumeReport,
)
from ._redis import RedisGovernor
from ._sync import SyncPageIterator, SyncPlumClient

try:
    __version__ = _version("plumvoice-async")
except _PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

_configure_logging()  # PLUM_LOG

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "Call",
    "CallEvent",
    "CallPage",
    "CallType",
    "CallerProfile",
    "DecodeError",
    "DetailedCall",
    "DetailedCallPage",
    "DiagnosticFlow",
    "EventReport",
    "FlowNode",
    "GeographicProfile",
    "Governor",
    "GovernorUnavailableError",
    "InvalidParameterError",
    "LocalGovernor",
    "MethodNotAllowedError",
    "NotFoundError",
    "PagingError",
    "PerformanceReport",
    "Period",
    "PlumClient",
    "PlumError",
    "QuotaKey",
    "RateLimitError",
    "RedisGovernor",
    "ServerError",
    "Snapshot",
    "SyncPageIterator",
    "SyncPlumClient",
    "TransportError",
    "VoiceTrendsLogin",
    "VolumeReport",
    "__version__",
]
