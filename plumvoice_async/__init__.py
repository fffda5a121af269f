"""Async client for the Plum Voice VoiceTrends and Fuse call-log APIs.

Everything public is importable from here; the modules behind it are private and may move.
Some names load on first use, since most programs never touch them and importing them costs
as much as the rest of the package: ``RedisGovernor`` (the ``redis`` extra's governor), the
blocking facade (``SyncPlumClient``, which starts threads through ``anyio.from_thread``) and
``__version__`` (read from the installed metadata).
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from ._client import PlumClient
from ._core.paging import ResumePoint
from ._credentials import VoiceTrendsLogin
from ._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    DecodeError,
    ExportError,
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
from ._events import Answered, ClientEvent, EventHook, QuotaWaited, RateLimited, Retrying
from ._export import ExportResult
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
from ._raw import RateLimitInfo, RawResponse
from ._version import version as _installed_version

if _TYPE_CHECKING:
    from ._redis import RedisGovernor
    from ._sync import SyncPageIterator, SyncPlumClient

    __version__: str

_LAZY = {
    "RedisGovernor": "._redis",
    "SyncPageIterator": "._sync",
    "SyncPlumClient": "._sync",
}

_configure_logging()  # PLUM_LOG


def __getattr__(name: str) -> _Any:
    """The lazy names (see the module docstring), loaded once, when first asked for."""
    if name in _LAZY:
        value: _Any = getattr(_importlib.import_module(_LAZY[name], __name__), name)
    elif name == "__version__":
        value = _installed_version()
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = [
    "APIError",
    "Answered",
    "AuthenticationError",
    "BadRequestError",
    "Call",
    "CallEvent",
    "CallPage",
    "CallType",
    "CallerProfile",
    "ClientEvent",
    "DecodeError",
    "DetailedCall",
    "DetailedCallPage",
    "DiagnosticFlow",
    "EventHook",
    "EventReport",
    "ExportError",
    "ExportResult",
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
    "QuotaWaited",
    "RateLimitError",
    "RateLimitInfo",
    "RateLimited",
    "RawResponse",
    "RedisGovernor",
    "ResumePoint",
    "Retrying",
    "ServerError",
    "Snapshot",
    "SyncPageIterator",
    "SyncPlumClient",
    "TransportError",
    "VoiceTrendsLogin",
    "VolumeReport",
    "__version__",
]


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "__version__"})
