"""The typed results of the Plum APIs: frozen, slotted attrs classes with no wire knowledge.

Everything the wire does oddly (timestamps as strings, ``"true"`` for booleans, one-item XML
lists, ``[]`` for an empty series, the ``class`` key) is absorbed by the converter in
``_core/convert.py``; these classes only say what the data is.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import attrs

__all__ = [
    "Call",
    "CallEvent",
    "CallPage",
    "CallType",
    "DetailedCall",
    "DetailedCallPage",
    "EventReport",
    "Period",
    "Series",
]

Series = Mapping[datetime, float]
"""A report series: period start (UTC-aware) -> value, in time order.

Counts arrive as ``int`` and averages as ``float``; both satisfy ``float`` for type checkers.
"""


class CallType(StrEnum):
    """How a call reached the deployment. A value Plum adds later is kept, not refused."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    TRANSFER = "transfer"

    @classmethod
    def _missing_(cls, value: object) -> CallType | None:
        # An unknown type is a pseudo-member: equal to its text, never fatal to a bulk export.
        if not isinstance(value, str) or not value:
            return None
        member = str.__new__(cls, value)
        member._name_ = value.upper()
        member._value_ = value
        return member


class Period(StrEnum):
    """The grouping of a VoiceTrends report."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@attrs.frozen
class Call:
    """One completed call from ``calls``; ``start``/``end`` are UTC-aware."""

    dest: str
    src: str
    start: datetime
    end: datetime
    session_id: str
    type: CallType
    log: bool

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@attrs.frozen
class CallPage:
    """One ``limit``/``offset`` page; ``total_calls`` counts the whole matching set."""

    calls: list[Call]
    total_calls: int


@attrs.frozen
class CallEvent:
    """One line of a detailed call log.

    ``data`` is kept as the server sent it: Plum guarantees only ``module_type`` and
    ``result_variable`` there (plum-api.md 2.4). From XML its values are text, since XML
    carries no types.
    """

    line: str
    data: dict[str, Any]
    event_class: str
    timestamp: datetime


@attrs.frozen
class DetailedCall(Call):
    """A call from ``all_logs``: the ``Call`` fields plus its detailed log."""

    detail: list[CallEvent]


@attrs.frozen
class DetailedCallPage:
    """One page of ``all_logs``."""

    calls: list[DetailedCall]
    total_calls: int


@attrs.frozen
class EventReport:
    """The Event Tracker report: each series maps a period's start to its number.

    The docs mark every series "not always present" (plum-api.md 1.4): an absent one is
    empty. ``extra`` keeps series the docs do not list, so a new server field is never fatal.
    """

    calls: Series = attrs.field(factory=dict)
    log_events: Series = attrs.field(factory=dict)
    loops_per_call: Series = attrs.field(factory=dict)
    form_items: Series = attrs.field(factory=dict)
    loops: Series = attrs.field(factory=dict)
    average_form_items: Series = attrs.field(factory=dict)
    extra: Mapping[str, Series] = attrs.field(factory=dict)
