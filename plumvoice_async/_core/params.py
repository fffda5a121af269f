"""Validate what a user passed and normalise it to what the wire carries.

Every function takes the raw value (typed ``object``: checking it is the point), returns its
normalised form, or raises ``InvalidParameterError`` naming the parameter and the value. Path
and query text comes back as the exact wire text; numbers (UNIX instants, ``limit``,
``offset``) come back as ``int``, whose ``str()`` is the wire text. Nothing reads a clock: the
5-day window of the detailed logs takes ``now`` as an argument.

``bool`` is a subclass of ``int`` and ``datetime`` a subclass of ``date``; every check below
tests for the subclass first, so ``limit=True`` or a ``datetime`` report day is refused rather
than silently read as ``1`` or as a day in some zone.

Choices the docs leave open, made the strict way (a refusal can be relaxed later, an
acceptance cannot be withdrawn):

- Phone numbers (``phone``, ``number``) are 3 to 15 ASCII digits, as in every sample of
  plum-api.md 1.4 and 2.2. A leading ``+``, spaces, dashes and ``int`` values (which lose
  leading zeros) are refused; so is ``"all"``: the docs name the upper-case literal ``ALL``,
  and only the VoiceTrends ``phone`` accepts it (Fuse's ``number`` documents no such literal).
- Report days have four-digit years, since the wire's integer ``YYYYMMDD`` cannot carry others.
- Fuse instants are floored to whole seconds (the second that contains the instant). The
  order ``start <= end`` is checked on the exact instants first: flooring would hide an end a
  fraction of a second before its start.
- When ``end`` is before ``start``, the error names ``end``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from .._errors import InvalidParameterError
from .._models import Period

__all__ = [
    "DETAILS_RETENTION_SECONDS",
    "LIMIT_MAX",
    "PHONE_ALL",
    "FuseTime",
    "PeriodLike",
    "ReportDate",
    "check_details_window",
    "count",
    "fuse_range",
    "fuse_time",
    "limit",
    "number",
    "offset",
    "period",
    "phone",
    "report_date",
    "report_range",
    "session_id",
]

ReportDate = date | str | int
"""What a VoiceTrends ``start``/``end`` may be: a ``date``, ``"YYYYMMDD"`` or int ``YYYYMMDD``."""
FuseTime = datetime | int
"""What a Fuse ``start``/``end`` may be: a timezone-aware ``datetime`` or int UNIX seconds."""
PeriodLike = Period | str
"""A ``Period`` member or its value, ``"day" | "week" | "month"``."""

PHONE_ALL = "ALL"
"""The VoiceTrends literal that merges every number of the account (plum-api.md 1.4)."""
LIMIT_MAX = 10_000
"""The largest documented page (plum-api.md 2.3, all_logs; calls documents none, same assumed)."""
DETAILS_RETENTION_SECONDS = 5 * 86_400
"""Detailed call logs exist only for the last 5 days (plum-api.md 2.3 and 2.4)."""

# [0-9], not \d: \d also matches non-ASCII digits such as "٣", which the server would not read.
_PHONE_DIGITS = re.compile(r"[0-9]{3,15}")
_YYYYMMDD = re.compile(r"[0-9]{8}")
# plum-api.md 2.4: the documented form is "300060;001;1529552581".
_SESSION_ID = re.compile(r"[0-9]{1,20};[0-9]{1,20};[0-9]{1,20}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_UNIX_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z, the last instant a datetime can name
_ONE_SECOND = timedelta(seconds=1)


def _kind(value: object) -> str:
    return type(value).__name__


# --- VoiceTrends report days (plum-api.md 1.4: integer YYYYMMDD, both ends inclusive) --------


def report_date(value: object, *, name: str) -> str:
    """Return the day ``value`` names as the wire's ``YYYYMMDD`` text.

    A ``datetime`` is refused even though it is a ``date``: which day it falls on depends on
    the zone, and guessing the zone would shift reports by a day without a word.
    """
    if isinstance(value, datetime):
        raise InvalidParameterError(
            name,
            value,
            "a datetime's time zone makes the day ambiguous; pass a date "
            "(for example value.date() in the zone you mean)",
        )
    if isinstance(value, date):
        day = value
    elif isinstance(value, bool):
        raise InvalidParameterError(name, value, "a bool is not a day; pass a date")
    elif isinstance(value, int):
        day = _parse_yyyymmdd(str(int(value)), name=name, value=value)
    elif isinstance(value, str):
        day = _parse_yyyymmdd(value, name=name, value=value)
    else:
        raise InvalidParameterError(
            name,
            value,
            f"expected a date, a 'YYYYMMDD' string or an int YYYYMMDD, got {_kind(value)}",
        )
    if day.year < 1000:
        raise InvalidParameterError(name, value, "the wire's YYYYMMDD needs a four-digit year")
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def _parse_yyyymmdd(text: str, *, name: str, value: object) -> date:
    if not _YYYYMMDD.fullmatch(text):
        raise InvalidParameterError(
            name, value, "expected exactly 8 digits YYYYMMDD, such as 20180201"
        )
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise InvalidParameterError(name, value, "not a calendar date") from None


def report_range(start: object, end: object) -> tuple[str, str]:
    """Validate a report's ``start``/``end`` pair: both days are inclusive, so end >= start."""
    start_text = report_date(start, name="start")
    end_text = report_date(end, name="end")
    # Fixed-width YYYYMMDD with four-digit years sorts as text exactly as it sorts as days.
    if end_text < start_text:
        raise InvalidParameterError(
            "end", end, f"end {end_text} is before start {start_text}; end must not precede start"
        )
    return start_text, end_text


_PERIOD_VALUES = frozenset(member.value for member in Period)


def period(value: object) -> str:
    """Return the wire text of a report ``period``: ``day``, ``week`` or ``month``."""
    if isinstance(value, str) and value in _PERIOD_VALUES:
        return Period(value).value
    raise InvalidParameterError(
        "period", value, "expected a Period or exactly one of 'day', 'week', 'month'"
    )


# --- Phone numbers ---------------------------------------------------------------------------


def phone(value: object) -> str:
    """Return a VoiceTrends ``phone``: a number of digits, or the literal ``ALL``."""
    if isinstance(value, str) and value == PHONE_ALL:
        return PHONE_ALL
    if isinstance(value, str) and value.upper() == PHONE_ALL:
        raise InvalidParameterError("phone", value, "the literal is upper-case 'ALL'")
    return _digits(value, name="phone", alternative=" or the literal 'ALL'")


def number(value: object) -> str | None:
    """Return the Fuse ``number`` query value, or ``None`` (not sent) when ``value`` is None."""
    if value is None:
        return None
    return _digits(value, name="number", alternative="")


def _digits(value: object, *, name: str, alternative: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        raise InvalidParameterError(
            name, value, "pass the number as a string of digits: an int loses leading zeros"
        )
    if not isinstance(value, str):
        raise InvalidParameterError(
            name, value, f"expected a string of digits{alternative}, got {_kind(value)}"
        )
    match = _PHONE_DIGITS.fullmatch(value)
    if match is None:
        raise InvalidParameterError(
            name,
            value,
            f"expected 3 to 15 digits with no '+', spaces or punctuation{alternative}",
        )
    return match.group()


# --- Fuse instants (plum-api.md 2.2: UNIX timestamps, as path strings) ----------------------


def fuse_time(value: object, *, name: str) -> int:
    """Return the UNIX second of a Fuse ``start``/``end``.

    An aware ``datetime`` is floored to the whole second that contains it (exact integer
    arithmetic, no float rounding); a naive one is refused, since which instant it names depends
    on a zone nobody stated.
    """
    return _instant(value, name=name) // _ONE_SECOND


def _instant(value: object, *, name: str) -> timedelta:
    """The exact instant of a Fuse ``start``/``end``, as its (microsecond) offset from 1970."""
    if isinstance(value, bool):
        raise InvalidParameterError(name, value, "a bool is not a timestamp")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, datetime):
        if value.utcoffset() is None:
            raise InvalidParameterError(
                name,
                value,
                "a naive datetime's instant is ambiguous; attach a time zone "
                "(for example tzinfo=datetime.UTC)",
            )
        seconds = (value - _EPOCH) // _ONE_SECOND
    elif isinstance(value, date):
        raise InvalidParameterError(
            name, value, "a date has no time of day; pass a timezone-aware datetime"
        )
    else:
        raise InvalidParameterError(
            name,
            value,
            f"expected an int UNIX timestamp or a timezone-aware datetime, got {_kind(value)}",
        )
    if seconds < 0:
        raise InvalidParameterError(name, value, "before 1970-01-01T00:00:00Z")
    if seconds > _LAST_UNIX_SECOND:
        raise InvalidParameterError(
            name, value, "after the year 9999: milliseconds instead of seconds?"
        )
    return value - _EPOCH if isinstance(value, datetime) else timedelta(seconds=seconds)


def fuse_range(start: object, end: object) -> tuple[int, int]:
    """Validate a Fuse ``start``/``end`` pair, returning UNIX seconds with end >= start.

    The order is checked on the exact instants, before flooring: an end 0.3 s before its start
    within the same second floors to the same second, yet is still a reversed range.
    """
    start_instant = _instant(start, name="start")
    end_instant = _instant(end, name="end")
    if end_instant < start_instant:
        raise InvalidParameterError(
            "end",
            end,
            f"end {_unix(end_instant)} is before start {_unix(start_instant)}; "
            "end must not precede start",
        )
    return start_instant // _ONE_SECOND, end_instant // _ONE_SECOND


def _unix(instant: timedelta) -> str:
    """UNIX seconds as text: whole seconds bare (``5``), others with their microseconds."""
    seconds, rest = divmod(instant, _ONE_SECOND)
    return str(seconds) if not rest else f"{seconds}.{rest.microseconds:06d}"


def check_details_window(start: int, *, now: float) -> None:
    """Refuse a detailed-log ``start`` more than 5 days before ``now`` (wall UNIX seconds).

    plum-api.md 2.3: detailed logs exist only for the last 5 days, and the server's answer for
    older ones is undocumented; refusing here spends no quota and says why. A start exactly
    5 days old is still accepted.
    """
    if start < now - DETAILS_RETENTION_SECONDS:
        age_days = (now - start) / 86_400
        start_iso = datetime.fromtimestamp(start, UTC).isoformat()
        raise InvalidParameterError(
            "start",
            start,
            f"{start_iso} is {age_days:.1f} days ago; detailed call logs exist only for the "
            "last 5 days (use calls for older ranges)",
        )


# --- Paging ---------------------------------------------------------------------------------


def limit(value: object) -> int | None:
    """Return a page's ``limit`` (1..10000, plum-api.md 2.3), or ``None`` when not given."""
    return None if value is None else count(value, name="limit", minimum=1, maximum=LIMIT_MAX)


def offset(value: object) -> int | None:
    """Return a page's ``offset`` (0 or more), or ``None`` when not given."""
    return None if value is None else count(value, name="offset", minimum=0)


def count(value: object, *, name: str, minimum: int = 0, maximum: int | None = None) -> int:
    """An ``int`` in ``[minimum, maximum]``; ``bool`` and ``float`` (even ``2.0``) are refused.

    The one check of every count the library takes, here and in ``arguments``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterError(name, value, f"expected an int, got {_kind(value)}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise InvalidParameterError(name, value, f"must be {bounds}")
    return int(value)


# --- Single call log (plum-api.md 2.4) -------------------------------------------------------


def session_id(value: object) -> str:
    """Return a session id of the documented form: three ``;``-separated digit groups."""
    match = _SESSION_ID.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidParameterError(
            "session_id",
            value,
            "expected three ';'-separated groups of digits, such as '300060;001;1529552581'",
        )
    return match.group()
