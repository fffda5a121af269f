"""The typed results of the Plum APIs: frozen, slotted attrs classes with no wire knowledge.

Everything the wire does oddly (timestamps as strings, ``"true"`` for booleans, one-item XML
lists, ``[]`` for an empty series, the ``class`` key) is absorbed by the converter in
``_core/convert.py``; these classes only say what the data is.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Self

import attrs

from ._core.data import from_data, to_data

__all__ = [
    "Call",
    "CallEvent",
    "CallPage",
    "CallType",
    "CallerProfile",
    "DetailedCall",
    "DetailedCallPage",
    "DiagnosticFlow",
    "EventReport",
    "FlowNode",
    "GeographicProfile",
    "PerformanceReport",
    "Period",
    "Series",
    "TemporaryCredentials",
    "VolumeReport",
]

Series = Mapping[datetime, float]
"""A report series: period start (UTC-aware) -> value, in time order.

Plum's report days are US Eastern days (plum-api.md 1.4: the documented keys are midnights in
America/New_York), so a day's key reads ``05:00`` UTC in winter and ``04:00`` in summer.

Counts arrive as ``int`` and averages as ``float``; both satisfy ``float`` for type checkers.
"""


class _Data:
    """Strictly private: ``to_dict`` and ``from_dict`` of every model (see ``_core/data``)."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """This model as JSON-ready builtins: ``json.dumps(model.to_dict())`` always works.

        Field names are the model's; instants are ISO 8601 UTC strings ending in ``Z``, enums
        their values. ``type(model).from_dict(model.to_dict()) == model``.
        """
        return to_data(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The model that ``to_dict`` made ``data`` from.

        Raises:
            InvalidParameterError: ``data`` does not have this model's shape (the message
                names the first bad field).
        """
        return from_data(data, cls)


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
class Call(_Data):
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
class CallPage(_Data):
    """One ``limit``/``offset`` page; ``total_calls`` counts the whole matching set."""

    calls: list[Call]
    total_calls: int


@attrs.frozen
class CallEvent(_Data):
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
class DetailedCallPage(_Data):
    """One page of ``all_logs``.

    ``total_calls`` is ``None`` when the server leaves it out: plum-api.md 2.3 cannot confirm
    that ``all_logs`` sends it. A walk without a total pages until a short page.
    """

    calls: list[DetailedCall]
    total_calls: int | None = None


@attrs.frozen
class EventReport(_Data):
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


@attrs.frozen
class VolumeReport(_Data):
    """The Call Volume report (plum-api.md 1.5): each series maps a period's start to its number.

    The docs' field table is cut off after ``transfer_minutes``, and no sample was published:
    the shape is inferred from the sibling reports. Minutes may be fractional. Absent series
    are empty; series the docs do not list are kept in ``extra``.
    """

    calls: Series = attrs.field(factory=dict)
    call_minutes: Series = attrs.field(factory=dict)
    transfers: Series = attrs.field(factory=dict)
    transfer_minutes: Series = attrs.field(factory=dict)
    extra: Mapping[str, Series] = attrs.field(factory=dict)


@attrs.frozen
class PerformanceReport(_Data):
    """The Performance report (plum-api.md 1.5): JavaScript and fetch errors, page loads.

    The unit of ``average_page_load`` is not documented. Absent series are empty; series the
    docs do not list are kept in ``extra``.
    """

    calls: Series = attrs.field(factory=dict)
    js_errors: Series = attrs.field(factory=dict)
    js_errors_per_call: Series = attrs.field(factory=dict)
    fetch_errors: Series = attrs.field(factory=dict)
    fetch_errors_per_call: Series = attrs.field(factory=dict)
    average_page_load: Series = attrs.field(factory=dict)
    extra: Mapping[str, Series] = attrs.field(factory=dict)


@attrs.frozen
class CallerProfile(_Data):
    """The Caller Profile report (plum-api.md 1.5): calls and unique callers per period.

    ``callers`` counts distinct calling numbers. Absent series are empty; series the docs do
    not list are kept in ``extra``.
    """

    calls: Series = attrs.field(factory=dict)
    callers: Series = attrs.field(factory=dict)
    extra: Mapping[str, Series] = attrs.field(factory=dict)


@attrs.frozen
class FlowNode(_Data):
    """One form item of an application's call flow, and how its visits ended.

    In the documented sample ``visits`` is the sum of the five outcomes (plum-api.md 1.5).
    """

    page: str
    form: str
    item: str
    visits: int
    filled: int
    nomatch: int
    noinput: int
    transfer: int
    disconnect: int


@attrs.frozen
class DiagnosticFlow(_Data):
    """The Diagnostic Flow report (plum-api.md 1.5): the whole range, not grouped by period.

    ``applications`` maps each application's start URL to its form items, in the order sent.
    """

    applications: Mapping[str, list[FlowNode]] = attrs.field(factory=dict)


@attrs.frozen
class GeographicProfile(_Data):
    """The Geographic report (plum-api.md 1.5): where calls came from, over the whole range.

    ``us`` maps a state code (50 states and ``DC``) and the key ``"US Toll-Free"`` to a call
    count; ``non_us`` maps a country to a count (empty when the server sends ``[]``; its
    non-empty shape is undocumented and read as the same kind of mapping). ``extra`` keeps
    count mappings the docs do not list.
    """

    us: Mapping[str, int] = attrs.field(factory=dict)
    non_us: Mapping[str, int] = attrs.field(factory=dict)
    extra: Mapping[str, Mapping[str, int]] = attrs.field(factory=dict)


@attrs.frozen(repr=False)
class TemporaryCredentials:
    """The pair the VoiceTrends ``auth`` resource mints (plum-api.md 1.2). Never shown.

    Both halves are secrets for as long as the pair lives (24 hours after its last use), so
    neither appears in the repr or str.
    """

    login: str
    password: str

    def __repr__(self) -> str:
        return "TemporaryCredentials(<redacted>)"

    __str__ = __repr__
