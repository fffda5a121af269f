"""The simulator's data: a seeded, generated call set that is never built as a whole.

Base call ``i`` (``0 <= i < size``) is a pure function of ``(seed, i)``:

- it starts at ``start + i * spacing + jitter(i)`` with ``0 <= jitter(i) < spacing``, so start
  times strictly increase with ``i`` and a time range maps to an index range by arithmetic;
- its ``dest`` is ``numbers[i % len(numbers)]``, so one number's calls are an arithmetic
  progression of indices;
- its ``session_id`` has the documented form ``NNNNNN;NNN;<unix>`` (plum-api.md 2.4) and
  encodes ``i`` through a seeded bijection of ``[0, 10**9)``, so looking an id up is O(1).

So ``total_calls`` is O(1), and a page is O(limit), whatever the size (up to a billion calls).

Tests change the served set between requests with ``insert_call`` and ``delete_call``. The
changes live in an overlay: a sorted list of inserted calls and a sorted list of deleted base
indices. A page then costs O(limit + log n + size of the overlay): every overlay entry inside
the selection is placed by arithmetic, never by walking the base calls.

Order (the simulator's choice; Plum documents none): by start time, then by session id.
A call is selected when ``start <= call.start <= end`` (both ends inclusive, like the
VoiceTrends days of plum-api.md 1.4) and, with ``number``, when ``call.dest == number``.

The VoiceTrends reports of these calls are derived in ``_dataset_reports``.
"""

from __future__ import annotations

import bisect
import math
import zlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime

import attrs

from .._core import arguments, params
from .._core.params import PHONE_ALL
from .._errors import InvalidParameterError
from .._models import Call, CallEvent, CallType, DetailedCall
from . import _dataset_reports as reports

__all__ = ["DEFAULT_NUMBERS", "DEFAULT_START", "MAX_SIZE", "CallDataset"]

DEFAULT_NUMBERS = ("6177123000", "6177123001", "8009957586")
"""The deployment numbers calls are made to (their ``dest``), as in plum-api.md 2.2 and 2.3."""
DEFAULT_START = 1_699_654_400
"""Four days before ``FakeClock``'s default start: the default 10,000 calls, 30 s apart, end
about half a day before it, inside the 5-day window of the detailed logs (plum-api.md 2.3)."""
MAX_SIZE = 10**9
"""The session id's ``NNNNNN;NNN`` part holds nine digits, so at most 10**9 distinct calls."""

_MASK64 = (1 << 64) - 1
_ID_SPACE = 10**9
_ID_MULTIPLIER = 387_420_489  # 3**18: coprime to 10**9, so i -> i * m + b is a bijection
_ID_INVERSE = pow(_ID_MULTIPLIER, -1, _ID_SPACE)

# One salt per independent random choice about a call, so the choices do not correlate.
_SALT_JITTER, _SALT_TYPE, _SALT_SRC, _SALT_DURATION, _SALT_SETUP = 1, 2, 3, 4, 5
_SALT_DETAIL, _SALT_ID = 6, 7  # the reports' salts, in ``_dataset_reports``, go on from 8


def _mix(seed: int, index: int, salt: int) -> int:
    """A 64-bit hash of ``(seed, index, salt)`` (splitmix64's finaliser): fast and stateless."""
    z = (
        (seed & _MASK64) * 0x9E3779B97F4A7C15
        + (index & _MASK64) * 0xD1B54A32D192ED03
        + salt * 0x8CB92BA72F3D8DD7
    ) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@attrs.frozen
class _Inserted:
    """Strictly private: a call added by a test, with the detailed log it is served with."""

    start: float
    session_id: str
    call: Call
    detail: list[CallEvent]


@attrs.frozen
class _Selection:
    """Strictly private: one ``(start, end, number)`` filter, placed on the base calls.

    The base calls selected are indices ``first + j * step`` for ``0 <= j < base_count``;
    ``deleted`` holds the ``j`` of the deleted ones (sorted); ``inserted`` the selected
    inserted calls in order, and ``positions`` each one's place in the merged order.
    """

    first: int
    step: int
    base_count: int
    deleted: list[int]
    inserted: list[_Inserted]
    positions: list[int]

    @property
    def total(self) -> int:
        return self.base_count - len(self.deleted) + len(self.inserted)


def _numbers(value: object) -> tuple[str, ...]:
    """``numbers``: a non-empty sequence of distinct phone numbers, as the client sends them."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        reason = f"expected a sequence of phone numbers, got {type(value).__name__}"
        raise InvalidParameterError("numbers", value, reason)
    try:
        numbers = tuple(params.phone(number) for number in value)
    except InvalidParameterError as exc:
        raise InvalidParameterError("numbers", value, exc.reason) from None
    if not numbers or len(set(numbers)) != len(numbers) or PHONE_ALL in numbers:
        reason = "expected a non-empty sequence of distinct phone numbers (not 'ALL')"
        raise InvalidParameterError("numbers", value, reason)
    return numbers


class CallDataset:
    """A deterministic generated call set, with an overlay tests can mutate.

    Args:
        seed: the same seed gives the same calls, details and reports.
        size: how many base calls, ``0 <= size <= MAX_SIZE``; none is built until served.
        start: UNIX second of the first call's slot.
        spacing: whole seconds between call slots (``>= 1``); call ``i`` starts inside its slot.
        numbers: the deployment numbers; call ``i`` is made to ``numbers[i % len(numbers)]``.

    ``materialised`` counts the ``Call`` objects built, so a test can check that a page near
    the end of millions of calls built only that page.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        size: int = 10_000,
        start: int = DEFAULT_START,
        spacing: int = 30,
        numbers: Sequence[str] = DEFAULT_NUMBERS,
    ) -> None:
        seed = arguments.count(seed, name="seed")
        size = arguments.count(size, name="size", maximum=MAX_SIZE)
        start = arguments.count(start, name="start")
        spacing = arguments.count(spacing, name="spacing", minimum=1)
        numbers = _numbers(numbers)
        self.seed = seed
        self.size = size
        self.start = start
        self.spacing = spacing
        self.numbers = tuple(numbers)
        self.materialised = 0
        self._id_offset = _mix(seed, 0, _SALT_ID) % _ID_SPACE
        self._inserted: list[_Inserted] = []
        self._inserted_by_id: dict[str, _Inserted] = {}
        self._deleted: list[int] = []
        self._deleted_set: set[int] = set()

    def __repr__(self) -> str:
        return (
            f"CallDataset(seed={self.seed}, size={self.size}, inserted={len(self._inserted)}, "
            f"deleted={len(self._deleted)})"
        )

    def __len__(self) -> int:
        return self.size - len(self._deleted) + len(self._inserted)

    # --- Base calls: pure functions of (seed, i) -------------------------------------------

    def _start_of(self, i: int) -> int:
        return self.start + i * self.spacing + _mix(self.seed, i, _SALT_JITTER) % self.spacing

    def _session_id_of(self, i: int) -> str:
        code = (i * _ID_MULTIPLIER + self._id_offset) % _ID_SPACE
        # The trailing UNIX time is when the session began, shortly before the call started,
        # as in the documented samples (plum-api.md 2.2: session 1529552581, start 1529552691).
        began = self._start_of(i) - 5 - _mix(self.seed, i, _SALT_SETUP) % 175
        return f"{code // 1000:06d};{code % 1000:03d};{began}"

    def _index_of(self, session_id: str) -> int | None:
        parts = session_id.split(";")
        if len(parts) != 3 or len(parts[0]) != 6 or len(parts[1]) != 3:
            return None
        if not (parts[0].isdigit() and parts[1].isdigit()):
            return None
        code = int(parts[0]) * 1000 + int(parts[1])
        i = (code - self._id_offset) * _ID_INVERSE % _ID_SPACE
        if i >= self.size or self._session_id_of(i) != session_id:
            return None
        return i

    def _base_call(self, i: int) -> Call:
        self.materialised += 1
        start = self._start_of(i)
        kind = _mix(self.seed, i, _SALT_TYPE) % 10
        call_type = CallType.OUTBOUND if kind == 8 else CallType.TRANSFER if kind == 9 else None
        # plum-api.md 2.2: outbound calls show the literal "Outbound" as their source.
        src = "Outbound" if call_type is CallType.OUTBOUND else self._caller_of(i)
        return Call(
            dest=self.numbers[i % len(self.numbers)],
            src=src,
            start=_utc(start),
            end=_utc(start + 5 + _mix(self.seed, i, _SALT_DURATION) % 600),
            session_id=self._session_id_of(i),
            type=call_type or CallType.INBOUND,
            log=True,
        )

    def _caller_of(self, i: int) -> str:
        digits = _mix(self.seed, i, _SALT_SRC)
        return f"{2 + digits % 8}{digits // 8 % 10**9:09d}"

    def _first_at_or_after(self, second: float) -> int:
        """The first base index whose start is ``>= second``; ``size`` when there is none."""
        if second <= self.start:
            return 0
        whole = math.ceil(second)
        i = (whole - self.start) // self.spacing
        if i >= self.size:
            return self.size
        return i if self._start_of(i) >= whole else i + 1

    # --- Details --------------------------------------------------------------------------

    def _detail_for(self, call: Call, key: int) -> list[CallEvent]:
        """A short detailed log: start, a prompt, maybe an input and a hang-up.

        Every ``data`` value is a string, so the JSON and XML renderings decode to equal
        objects (XML carries no types, plum-api.md 2.4 and 1.6).
        """
        roll = _mix(self.seed, key, _SALT_DETAIL)
        begin = int(call.start.timestamp())
        finish = max(begin, int(call.end.timestamp()))
        events = [
            CallEvent(
                line='Executing application "Simulated Application" version "1.0"',
                data={"module_type": "start", "result_variable": "start"},
                event_class="info",
                timestamp=_utc(begin),
            ),
            CallEvent(
                line="Hello, welcome to the Plum simulator.",
                data={
                    "type": "static",
                    "prompt_id": str(roll % 1_000_000),
                    "language": "en-US",
                    "module_type": "prompt",
                    "result_variable": "welcome",
                },
                event_class="prompt",
                timestamp=_utc(begin),
            ),
        ]
        if roll >> 20 & 1:
            digit = (roll >> 24) % 10
            events.append(
                CallEvent(
                    line=f"User input: {digit} (dtmf)",
                    data={"module_type": "number", "result_variable": "choice"},
                    event_class="event",
                    timestamp=_utc(min(finish, begin + 1 + (roll >> 28) % 20)),
                )
            )
        if roll >> 21 & 1:
            events.append(
                CallEvent(
                    line="Caller hung up",
                    data={"module_type": "hangup", "result_variable": "hangup"},
                    event_class="info",
                    timestamp=_utc(finish),
                )
            )
        return events

    # --- Selections and pages -------------------------------------------------------------

    def _select(self, start: float, end: float, number: str | None) -> _Selection:
        low = self._first_at_or_after(start)
        high = max(low, self._first_at_or_after(math.floor(end) + 1))
        if number is None:
            first, step = low, 1
        elif number in self.numbers:
            step = len(self.numbers)
            first = low + (self.numbers.index(number) - low) % step
        else:
            first, step = high, 1
        base_count = max(0, -(-(high - first) // step))
        deleted = [
            (i - first) // step
            for i in self._deleted[
                bisect.bisect_left(self._deleted, first) : bisect.bisect_left(self._deleted, high)
            ]
            if (i - first) % step == 0
        ]
        inserted = [
            row
            for row in self._inserted[
                bisect.bisect_left(self._inserted, start, key=_start_key) : bisect.bisect_right(
                    self._inserted, end, key=_start_key
                )
            ]
            if number is None or row.call.dest == number
        ]
        positions = []
        for rank, row in enumerate(inserted):
            before = self._base_before(row, first, step, base_count)
            positions.append(rank + before - bisect.bisect_left(deleted, before))
        return _Selection(first, step, base_count, deleted, inserted, positions)

    def _base_before(self, row: _Inserted, first: int, step: int, base_count: int) -> int:
        """How many selected base positions ``j`` order before ``row`` (deleted ones included)."""
        before = min(base_count, max(0, -(-(self._first_at_or_after(row.start) - first) // step)))
        if before < base_count:
            i = first + before * step
            # Base starts strictly increase, so at most this one base call can tie on start.
            if self._start_of(i) == row.start and self._session_id_of(i) < row.session_id:
                before += 1
        return before

    def _walk(self, selection: _Selection, offset: int, limit: int) -> Iterator[int | _Inserted]:
        """Yield the page's entries: a base index, or an inserted call, in served order."""
        inserted_before = bisect.bisect_left(selection.positions, offset)
        j = offset - inserted_before  # the rank among surviving base calls; now make it a j
        for gone in selection.deleted:
            if gone > j:
                break
            j += 1
        deleted = set(selection.deleted)
        k = inserted_before
        taken = 0
        while taken < limit:
            while j < selection.base_count and j in deleted:
                j += 1
            has_base = j < selection.base_count
            if k < len(selection.inserted):
                row = selection.inserted[k]
                i = selection.first + j * selection.step
                if not has_base or (row.start, row.session_id) < (
                    self._start_of(i),
                    self._session_id_of(i),
                ):
                    yield row
                    k += 1
                    taken += 1
                    continue
            elif not has_base:
                return
            yield selection.first + j * selection.step
            j += 1
            taken += 1

    def count(self, start: float, end: float, number: str | None = None) -> int:
        """How many calls start in ``[start, end]`` (UNIX seconds), to ``number`` if given."""
        return self._select(start, end, number).total

    def page(
        self, start: float, end: float, number: str | None = None, *, offset: int = 0, limit: int
    ) -> list[Call]:
        """The calls at positions ``[offset, offset + limit)`` of the selection, in order."""
        selection = self._select(start, end, number)
        return [
            entry.call if isinstance(entry, _Inserted) else self._base_call(entry)
            for entry in self._walk(selection, offset, limit)
        ]

    def detailed_page(
        self, start: float, end: float, number: str | None = None, *, offset: int = 0, limit: int
    ) -> list[DetailedCall]:
        """Like ``page``, each call with its detailed log (the ``all_logs`` rows)."""
        selection = self._select(start, end, number)
        rows: list[DetailedCall] = []
        for entry in self._walk(selection, offset, limit):
            if isinstance(entry, _Inserted):
                call, detail = entry.call, entry.detail
            else:
                call = self._base_call(entry)
                detail = self._detail_for(call, entry)
            rows.append(_with_detail(call, detail))
        return rows

    def get(self, session_id: str) -> Call | None:
        """The live call with this session id, or ``None``."""
        row = self._inserted_by_id.get(session_id)
        if row is not None:
            return row.call
        i = self._index_of(session_id)
        if i is None or i in self._deleted_set:
            return None
        return self._base_call(i)

    def details(self, session_id: str) -> list[CallEvent] | None:
        """The detailed log of the live call with this session id, or ``None``."""
        row = self._inserted_by_id.get(session_id)
        if row is not None:
            return list(row.detail)
        i = self._index_of(session_id)
        if i is None or i in self._deleted_set:
            return None
        return self._detail_for(self._base_call(i), i)

    # --- Mutations ------------------------------------------------------------------------

    def insert_call(self, call: Call) -> None:
        """Add ``call`` to the served set (a ``DetailedCall`` keeps its ``detail``).

        A plain ``Call`` is served with a generated detailed log. Raises ``ValueError`` when a
        live call already has its session id, or when its times are naive.
        """
        if call.start.tzinfo is None or call.end.tzinfo is None:
            raise ValueError("a call's start and end must be timezone-aware")
        if self.get(call.session_id) is not None:
            raise ValueError(f"a call with session id {call.session_id!r} is already served")
        if isinstance(call, DetailedCall):
            plain, detail = _without_detail(call), list(call.detail)
        else:
            plain = call
            detail = self._detail_for(call, zlib.crc32(call.session_id.encode()))
        row = _Inserted(call.start.timestamp(), call.session_id, plain, detail)
        bisect.insort(self._inserted, row, key=_order_key)
        self._inserted_by_id[row.session_id] = row

    def insert_calls(self, calls: Iterable[Call]) -> None:
        """``insert_call`` each of ``calls``."""
        for call in calls:
            self.insert_call(call)

    def delete_call(self, session_id: str) -> None:
        """Remove the live call with this session id; ``KeyError`` when there is none."""
        row = self._inserted_by_id.pop(session_id, None)
        if row is not None:
            self._inserted.pop(bisect.bisect_left(self._inserted, _order_key(row), key=_order_key))
            return
        i = self._index_of(session_id)
        if i is None or i in self._deleted_set:
            raise KeyError(session_id)
        bisect.insort(self._deleted, i)
        self._deleted_set.add(i)

    def delete_calls(self, session_ids: Iterable[str]) -> None:
        """``delete_call`` each of ``session_ids``."""
        for session_id in session_ids:
            self.delete_call(session_id)

    # --- VoiceTrends reports ---------------------------------------------------------------

    def _report_roll(self, phone: str, index: int, salt: int) -> int:
        """A seeded 64-bit roll for the reports, reseeded per ``phone`` (a number or ``"ALL"``).

        It lives here, by ``_mix``, so ``_dataset_reports`` needs no import of this module,
        which imports it.
        """
        return _mix(self.seed ^ zlib.crc32(phone.encode()), index, salt)

    # Each function of ``_dataset_reports`` takes the dataset first, so it binds as a method.
    event_report = reports.event_report
    volume_report = reports.volume_report
    performance_report = reports.performance_report
    caller_profile = reports.caller_profile
    diagnostic_flow = reports.diagnostic_flow
    geographic_profile = reports.geographic_profile


def _start_key(row: _Inserted) -> float:
    return row.start


def _order_key(row: _Inserted) -> tuple[float, str]:
    return (row.start, row.session_id)


def _with_detail(call: Call, detail: list[CallEvent]) -> DetailedCall:
    return DetailedCall(**attrs.asdict(call, recurse=False), detail=detail)


def _without_detail(call: DetailedCall) -> Call:
    fields = attrs.asdict(call, recurse=False)
    del fields["detail"]
    return Call(**fields)
