"""Request specs: what to send for each endpoint, as plain data (method, URL, query, quota group).

Built only from validated parameters (``params.py``); path segments are percent-encoded one
by one, so no input can add, remove or climb a segment.
"""

from __future__ import annotations

from enum import StrEnum

import attrs

__all__ = ["Api", "QuotaGroup", "RequestSpec"]


class Api(StrEnum):
    """Which Plum API, and so which credentials, a request uses."""

    FUSE = "fuse"
    VOICETRENDS = "voicetrends"


class QuotaGroup(StrEnum):
    """The quota a request spends (plum-api.md 1.3): one bucket per group and account."""

    VOICETRENDS = "voicetrends"
    """The raw-data reports: 150 per 15 minutes, shared by every report."""
    VOICETRENDS_AUTH = "voicetrends-auth"
    """Minting temporary credentials: 15 per 15 minutes."""
    FUSE = "fuse"
    """The Fuse call logs: undocumented, 150 per 15 minutes by default."""

    @property
    def api(self) -> Api:
        return Api.FUSE if self is QuotaGroup.FUSE else Api.VOICETRENDS


@attrs.frozen
class RequestSpec:
    """One request, ready to send: no credentials here, the transport adds them."""

    method: str
    url: str
    group: QuotaGroup
    query: tuple[tuple[str, str], ...] = ()
    form: tuple[tuple[str, str], ...] = ()
