"""The paths ``PlumSimulator`` serves: what each names, its API, quota group and method.

One table, apart from the simulator, so the served surface reads in one place and matches the
docs line by line. From one app (their paths differ):

- the VoiceTrends reports (plum-api.md 1.4, 1.5): ``GET /api/{events,volume,performance,
  profile}/{start}/{end}/{period}/{phone}`` and, without a period,
  ``GET /api/{path,profile}/{start}/{end}/{phone}`` (diagnostic flow, and the geographic report
  under the caller profile's prefix with one segment fewer, as documented: quirk 4);
- ``POST /api/auth`` (plum-api.md 1.2), which mints a temporary VoiceTrends pair;
- the Fuse call logs (``GET /api/calls/{start}/{end}``, ``GET /api/all_logs/{start}/{end}``,
  ``GET /api/call/{session_id}``, plum-api.md 2.2-2.4).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import attrs

from .._core.requests import Api, QuotaGroup
from .._models import Period
from ._dataset import CallDataset

__all__ = ["PERIOD_REPORTS", "RANGE_REPORTS", "ROUTES", "WRONG_METHOD", "Route"]


@attrs.frozen
class Route:
    """What a path names (``kind``), its API, quota group and method."""

    kind: str
    api: Api
    group: QuotaGroup
    method: str = "GET"


_REPORT = (Api.VOICETRENDS, QuotaGroup.VOICETRENDS)
_FUSE = (Api.FUSE, QuotaGroup.FUSE)
# Keyed by resource and number of path arguments: ``profile`` is two reports (quirk 4).
ROUTES = {
    ("auth", 0): Route("auth", Api.VOICETRENDS, QuotaGroup.VOICETRENDS_AUTH, "POST"),
    ("events", 4): Route("events", *_REPORT),
    ("volume", 4): Route("volume", *_REPORT),
    ("performance", 4): Route("performance", *_REPORT),
    ("profile", 4): Route("caller_profile", *_REPORT),
    ("path", 3): Route("diagnostic_flow", *_REPORT),
    ("profile", 3): Route("geographic", *_REPORT),
    ("calls", 2): Route("calls", *_FUSE),
    ("all_logs", 2): Route("all_logs", *_FUSE),
    ("call", 1): Route("call", *_FUSE),
}
PERIOD_REPORTS: dict[str, Callable[[CallDataset, date, date, Period, str], Any]] = {
    "events": CallDataset.event_report,
    "volume": CallDataset.volume_report,
    "performance": CallDataset.performance_report,
    "caller_profile": CallDataset.caller_profile,
}
RANGE_REPORTS: dict[str, Callable[[CallDataset, date, date, str], Any]] = {
    "diagnostic_flow": CallDataset.diagnostic_flow,
    "geographic": CallDataset.geographic_profile,
}
# plum-api.md 1.4 quirk: the VoiceTrends reports are GET, but their 405 text says POST.
WRONG_METHOD = {
    Api.VOICETRENDS: "invalid HTTP method supplied (only POST allowed)",
    Api.FUSE: "invalid HTTP method supplied (only GET allowed)",
}
