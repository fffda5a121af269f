"""The VoiceTrends reports of a ``CallDataset``: its calls summarised per period or per range.

Apart from ``_dataset``, which generates and pages the calls: the reports only read them,
through the dataset's ``count``, ``numbers`` and seeded ``_report_roll``, so they can change
without touching the calls' arithmetic. Each function takes the dataset first, and
``CallDataset`` binds them as its report methods (``dataset.event_report(...)``).

In the series reports, ``calls`` counts the selected calls of each period (periods start at
midnight America/New_York, plum-api.md 1.4 [INFER]; weeks start on Sunday, the US convention,
and months on the 1st; a period that begins before ``start`` is keyed by its own first day but
counts only the requested days); the other series are seeded per period start, phone and
report, and kept plausible: no more transfers or unique callers than calls, ratios that are the
ratio of the series they divide. The two reports over the whole range split the range's calls:
the diagnostic flow gives each deployment number an application whose form items' outcomes add
up to their visits (as in the documented sample, plum-api.md 1.5); the geographic report shares
the calls out between the states, ``"US Toll-Free"`` and a few countries, the parts adding up
to the whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import attrs

from .._models import (
    CallerProfile,
    DiagnosticFlow,
    EventReport,
    FlowNode,
    GeographicProfile,
    PerformanceReport,
    Period,
    VolumeReport,
)

__all__ = [
    "US_REGIONS",
    "CallDataset",
    "caller_profile",
    "diagnostic_flow",
    "event_report",
    "geographic_profile",
    "performance_report",
    "volume_report",
]

_EASTERN = ZoneInfo("America/New_York")


class CallDataset(Protocol):
    """What the reports read of a ``_dataset.CallDataset``: its numbers, its counts and its
    seeded rolls. A protocol, not an import: that module binds these functions as its methods."""

    @property
    def numbers(self) -> tuple[str, ...]: ...

    def count(self, start: float, end: float, number: str | None = None) -> int: ...

    def _report_roll(self, phone: str, index: int, salt: int) -> int: ...


# One salt per independent random choice about a report, so the choices do not correlate
# (they go on from the salts of the calls' choices in ``_dataset``, which end at 7).
_SALT_REPORT = 8
_SALT_VOLUME, _SALT_PERFORMANCE, _SALT_PROFILE, _SALT_FLOW, _SALT_GEOGRAPHIC = 9, 10, 11, 12, 13
_SALT_US_WEIGHTS, _SALT_ABROAD_WEIGHTS = 14, 15

# plum-api.md 1.5, the geographic sample's keys in its order: 50 states, DC, then toll-free.
US_REGIONS = (
    "AL",
    "AK",
    "AZ",
    "AR",
    "CA",
    "CO",
    "CT",
    "DC",
    "DE",
    "FL",
    "GA",
    "HI",
    "ID",
    "IL",
    "IN",
    "IA",
    "KS",
    "KY",
    "LA",
    "ME",
    "MD",
    "MA",
    "MI",
    "MN",
    "MS",
    "MO",
    "MT",
    "NE",
    "NV",
    "NH",
    "NJ",
    "NM",
    "NY",
    "NC",
    "ND",
    "OH",
    "OK",
    "OR",
    "PA",
    "RI",
    "SC",
    "SD",
    "TN",
    "TX",
    "UT",
    "VT",
    "VA",
    "WA",
    "WV",
    "WI",
    "WY",
    "US Toll-Free",
)
_COUNTRIES = ("CA", "MX", "GB", "DE", "IN")
# One application per deployment number: its form items (page, form, item).
_FLOW_ITEMS = (
    ("main.php", "main_menu", "selection"),
    ("sales.php", "product_menu", "selection"),
    ("support.php", "account_lookup", "account_number"),
)


def _period_rolls(
    dataset: CallDataset, start: date, end: date, period: Period, phone: str, *, salt: int
) -> Iterator[tuple[datetime, int, int]]:
    """Each period of ``start..end``: its key, its call count, and a seeded 64-bit roll.

    ``phone`` is a number or ``"ALL"`` (plum-api.md 1.4); a number with no calls gets
    zeros, as an account's idle number would.
    """
    number = None if phone == "ALL" else phone
    for first_day, counted_from, counted_until in _periods(start, end, period):
        key = _eastern_midnight(first_day)
        count = dataset.count(
            _eastern_midnight(counted_from).timestamp(),
            _eastern_midnight(counted_until).timestamp() - 1,
            number,
        )
        yield key, count, dataset._report_roll(phone, int(key.timestamp()), salt)


def _range_count(dataset: CallDataset, start: date, end: date, number: str | None) -> int:
    until = _eastern_midnight(end + timedelta(days=1)).timestamp() - 1
    return dataset.count(_eastern_midnight(start).timestamp(), until, number)


def event_report(
    dataset: CallDataset, start: date, end: date, period: Period, phone: str
) -> EventReport:
    """The Event Tracker series for the days ``start..end`` (inclusive) of ``phone``."""
    series = _empty_series(EventReport)
    for key, count, roll in _period_rolls(dataset, start, end, period, phone, salt=_SALT_REPORT):
        items = count * (2 + roll % 3) + (roll >> 4) % (count + 1)
        looped = (roll >> 8) % (count + 1)
        # Counts are ints, averages floats unless whole (plum-api.md 1.4's samples).
        series["calls"][key] = count
        series["log_events"][key] = count * (1 + (roll >> 16) % 4)
        series["loops_per_call"][key] = _ratio(looped, count)
        series["form_items"][key] = items
        series["loops"][key] = looped
        series["average_form_items"][key] = _ratio(items, count)
    return EventReport(**series)


def volume_report(
    dataset: CallDataset, start: date, end: date, period: Period, phone: str
) -> VolumeReport:
    """The Call Volume series; minutes to one decimal, as the UI shows (plum-api.md 1.5)."""
    series = _empty_series(VolumeReport)
    for key, count, roll in _period_rolls(dataset, start, end, period, phone, salt=_SALT_VOLUME):
        transfers = (roll >> 8) % (count // 5 + 1)
        series["calls"][key] = count
        series["call_minutes"][key] = _number(count * (0.5 + roll % 60 / 10), 1)
        series["transfers"][key] = transfers
        series["transfer_minutes"][key] = _number(transfers * (1 + (roll >> 16) % 50 / 10), 1)
    return VolumeReport(**series)


def performance_report(
    dataset: CallDataset, start: date, end: date, period: Period, phone: str
) -> PerformanceReport:
    """The Performance series; ``average_page_load`` in milliseconds (unit [INFER])."""
    series = _empty_series(PerformanceReport)
    for key, count, roll in _period_rolls(
        dataset, start, end, period, phone, salt=_SALT_PERFORMANCE
    ):
        js_errors = roll % (count // 10 + 1)
        fetch_errors = (roll >> 12) % (count // 20 + 1)
        load = 80 + (roll >> 24) % 400 + (roll >> 40) % 100 / 100 if count else 0
        series["calls"][key] = count
        series["js_errors"][key] = js_errors
        series["js_errors_per_call"][key] = _ratio(js_errors, count)
        series["fetch_errors"][key] = fetch_errors
        series["fetch_errors_per_call"][key] = _ratio(fetch_errors, count)
        series["average_page_load"][key] = _number(load, 2)
    return PerformanceReport(**series)


def caller_profile(
    dataset: CallDataset, start: date, end: date, period: Period, phone: str
) -> CallerProfile:
    """The Caller Profile series: some callers call more than once, so callers <= calls."""
    series = _empty_series(CallerProfile)
    for key, count, roll in _period_rolls(dataset, start, end, period, phone, salt=_SALT_PROFILE):
        series["calls"][key] = count
        series["callers"][key] = count - roll % (count // 4 + 1)
    return CallerProfile(**series)


def diagnostic_flow(dataset: CallDataset, start: date, end: date, phone: str) -> DiagnosticFlow:
    """The Diagnostic Flow of ``start..end``: one application per number that had calls."""
    numbers = dataset.numbers if phone == "ALL" else [n for n in dataset.numbers if n == phone]
    applications: dict[str, list[FlowNode]] = {}
    for number in numbers:
        calls = _range_count(dataset, start, end, number)
        if calls == 0:
            continue
        base = _range_index(start, end) * len(_FLOW_ITEMS)
        rolls = [
            dataset._report_roll(number, base + index, _SALT_FLOW)
            for index in range(len(_FLOW_ITEMS))
        ]
        menu, sales, support = _FLOW_ITEMS
        # Every call reaches the main menu; a filled choice leads to sales or to support.
        main = _flow_node(*menu, calls, rolls[0])
        to_sales = main.filled * (30 + rolls[0] % 30) // 100
        nodes = [
            main,
            _flow_node(*sales, to_sales, rolls[1]),
            _flow_node(*support, main.filled - to_sales, rolls[2]),
        ]
        applications[f"https://ivr.example.com/vxml/{number}/start.php"] = nodes
    return DiagnosticFlow(applications=applications)


def geographic_profile(
    dataset: CallDataset, start: date, end: date, phone: str
) -> GeographicProfile:
    """Where the calls of ``start..end`` came from: the parts add up to the range's calls."""
    calls = _range_count(dataset, start, end, None if phone == "ALL" else phone)
    roll = dataset._report_roll(phone, _range_index(start, end), _SALT_GEOGRAPHIC)
    abroad = roll % (calls // 25 + 1)
    non_us = {
        country: share
        for country, share in zip(
            _COUNTRIES,
            _shares(abroad, _weights(dataset, phone, len(_COUNTRIES), _SALT_ABROAD_WEIGHTS)),
            strict=True,
        )
        if share
    }
    us = dict(
        zip(
            US_REGIONS,
            _shares(calls - abroad, _weights(dataset, phone, len(US_REGIONS), _SALT_US_WEIGHTS)),
            strict=True,
        )
    )
    return GeographicProfile(us=us, non_us=non_us)


def _range_index(start: date, end: date) -> int:
    """One number per range of days, to seed what a report over the whole range shows."""
    return start.toordinal() << 20 | end.toordinal()


def _empty_series(report: type) -> dict[str, Any]:
    """A dict per documented series of ``report``, to fill and then pass to its constructor."""
    return {field.name: {} for field in attrs.fields(report) if field.name != "extra"}


def _ratio(part: int, whole: int) -> float:
    return _number(part / whole if whole else 0, 2)


def _number(value: float, digits: int) -> float:
    """``value`` rounded to ``digits``, and whole numbers as ints: the documented samples
    send ``0`` and ``1``, never ``0.0`` (plum-api.md 1.4)."""
    rounded = round(value, digits)
    return int(rounded) if float(rounded).is_integer() else rounded


def _flow_node(page: str, form: str, item: str, visits: int, roll: int) -> FlowNode:
    """A form item whose outcomes add up to its visits, as in the documented sample."""
    nomatch = roll % (visits // 25 + 1)
    noinput = (roll >> 12) % (visits // 50 + 1)
    transfer = (roll >> 24) % (visits // 40 + 1)
    disconnect = (roll >> 36) % (visits // 30 + 1)
    filled = visits - nomatch - noinput - transfer - disconnect
    return FlowNode(page, form, item, visits, filled, nomatch, noinput, transfer, disconnect)


def _weights(dataset: CallDataset, phone: str, count: int, salt: int) -> list[int]:
    return [1 + dataset._report_roll(phone, index, salt) % 20 for index in range(count)]


def _shares(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights``; the remainder goes one each from the first."""
    whole = sum(weights)
    shares = [total * weight // whole for weight in weights]
    for index in range(total - sum(shares)):
        shares[index] += 1
    return shares


def _eastern_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=_EASTERN).astimezone(UTC)


def _periods(start: date, end: date, period: Period) -> Iterator[tuple[date, date, date]]:
    """The periods touching ``start..end``: first day, and the days counted ``[from, until)``."""
    if period is Period.DAY:
        first = start
    elif period is Period.WEEK:
        first = start - timedelta(days=(start.weekday() + 1) % 7)  # back to Sunday
    else:
        first = start.replace(day=1)
    while first <= end:
        if period is Period.DAY:
            following = first + timedelta(days=1)
        elif period is Period.WEEK:
            following = first + timedelta(days=7)
        else:
            following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        yield first, max(first, start), min(following, end + timedelta(days=1))
        first = following
