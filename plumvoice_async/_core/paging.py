"""The page planner: exactly-once walks over ``limit``/``offset`` pages while the data moves.

Offset paging is positional, and the server's ordered set changes under a long walk (new calls
arrive, detailed logs expire after 5 days: plum-api.md 2.3, 13 and 14). An insert before the
walk's place shifts rows right (the next page repeats rows); a delete shifts them left (the next
page starts past rows never seen); both together can leave ``total_calls`` unchanged. So the
planner never trusts a position, only rows it has seen (``paging.md``):

- Pages overlap by one row: each request starts at the last row already passed, so an
  undisturbed answer begins with it.
- Every answer is placed by one rule: find the *last* row in it whose key the walk remembers;
  the rows after it are new, everything up to it is behind the walk. A remembered row ``Q`` is
  a row already passed, so every stable row before ``Q`` has been passed (the walk passes rows in
  the server's order), and an answer is a contiguous slice, so the rows after ``Q`` are exactly
  the rows that follow it now. The usual case is the overlap row at index 0; a row found
  further in means inserts shifted the page right, and it is placed the same way.
- An answer that should overlap but holds no remembered row means the rows shifted left past
  the page (or the overlap row was deleted): the walk has lost its place and *searches*: first
  where ``total_calls`` moved (rows deleted before the walk's place lower the total by as much),
  then pages stepping back towards offset 0 with no gap between them, then forward to the
  total. The first answer holding a remembered row places the walk again, by the same rule.
  Probes in flight together can all miss a row that moves from one's range into another's
  already answered, so a sweep that found nothing while the total moved (or a probe came back
  short) is swept again, up to ``MAX_SEARCHES`` times.
- Keys are unique in the server's set: an answer naming one key twice, or listing a row passed
  before the walk's last row *after* it with unseen rows in between, raises ``PagingError``
  naming the key (yielding it again, or skipping to it, would break the guarantee).
- The server may send fewer rows than asked (a page size cap of its own). The first short
  answer that is not the last teaches the planner that size: the pages after it are planned at
  it (still asked for in full, so a cap that goes away is noticed), not discarded and re-asked.
- The memory (the *ledger*) is bounded: the keys of the last ``max(LEDGER_FLOOR, window +
  largest shift seen)`` rows passed, in the order passed (a shift to the right, by inserts,
  brings rows passed that long ago back into an answer), plus the rows the walk knows to be
  ahead of it. When the walk re-finds its place at an older row ``Q``, the rows it passed after
  ``Q`` and that this answer does not show are *held*: they are still ahead (or deleted), and
  they must be recognised when the walk reaches them, however many inserted rows come first.
  Held rows leave when an answer shows them; they never count against the ledger's capacity
  (they are themselves capped at that capacity).

Guarantee (what "exactly once" means when the data changes under the walk). Call a row
*stable* when it is in the server's set, at its place in the server's order, from the walk's
first request to its last; a row that moves counts as deleted and inserted. Provided each answer
is a contiguous slice of the server's ordered set with the ``total_calls`` of the same moment:

1. every stable row is yielded exactly once, and the stable rows come out in the server's order;
2. a row inserted or deleted during the walk is yielded at most once (zero times when it
   appears behind the walk's place);
3. no row is yielded twice.

This holds whatever the server does while the walk has forgotten nothing: a walk from offset 0
that has passed fewer rows than the ledger holds (1,024 at least; with 10,000-row pages, more
than 10,000). When none of the rows it remembers is on the server any more, such a walk starts
again from offset 0 and skips every row it remembers, which keeps the guarantee. A longer walk
forgets the oldest rows, so it needs the ledger to cover the churn: fewer rows than the ledger
holds inserted or deleted around the walk's place between two of its requests. When it finds
none of its remembered rows it raises ``PagingError`` rather than guess; churn heavier than
the ledger covers but short of that can go unnoticed.

Resuming. A walk resumed from a ``ResumePoint`` (``PageIterator.checkpoint``) keeps the
guarantee across the two walks, counting from the first walk's first request: the point names
the last row yielded, the ``RECENT_KEYS`` rows yielded before it (the resumed walk is placed by
them as by its ledger) and the rows yielded that the server lists after it (*held* rows as of
the answer that row came from: the resumed walk holds them again, so it skips them). A resumed
walk has forgotten everything else, so when none of the rows it remembers is on the server any
more it raises ``PagingError``; unless the point names every row yielded since offset 0
(``since_start``, a walk stopped within its first ``RECENT_KEYS`` rows): then it starts again
from 0 as a walk from 0 does. A resume with
``start_offset`` and ``after`` only is the same without ``recent`` and ``ahead``: it repeats a
row that inserts pushed ahead of the first walk's place; with ``start_offset`` alone it trusts
the position of its first page.

The walk ends when an answer places the walk at or past that answer's ``total_calls`` (a total
that grows extends the walk, one that shrinks ends it sooner). Answers that bring nothing past
the walk's place while the total promises more rows (a glitch, or a total that overstates) are
asked for again, and after ``MAX_EMPTY_PAGES`` in a row the walk raises ``PagingError``: it never
ends below the total in silence, nor loops forever. When the total is unknown (``None``) the
first short page ends the walk.

Theory of operation. ``plan(n)`` hands out up to ``n`` requests beyond those in flight; the
shell fetches them (concurrently) and passes each answer back to ``accept`` *in plan order*.
``accept`` returns the index of the answer's first new row. When an answer changes the plan (a
short page, a lost place, a found place) the planner drops the requests still out: their
answers, if any arrive, are ignored (``accept`` returns ``len(keys)``). ``abandon()`` drops
them too, after the shell cancelled them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Mapping, Sequence
from itertools import islice
from typing import Any, Generic, TypeVar

import attrs

from .._errors import InvalidParameterError, PagingError

__all__ = [
    "LEDGER_FLOOR",
    "RECENT_KEYS",
    "PagePlanner",
    "PageRequest",
    "ResumePoint",
    "validate_count",
]

K = TypeVar("K", bound=Hashable)

LEDGER_FLOOR = 1024
"""The fewest row keys the ledger remembers: small walks then forget nothing at all."""

MAX_EMPTY_PAGES = 4
"""Answers in a row that bring no new row while ``total_calls`` promises more: the walk asks
again until this many, then raises ``PagingError`` rather than end short."""

MAX_SEARCHES = 4
"""Sweeps of a search for a lost place while the data moves under it, before giving up."""


def validate_count(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    """An int parameter in ``[minimum, maximum]``; bools are refused (``True`` is not a size)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterError(name, value, "must be an int")
    if value < minimum:
        raise InvalidParameterError(name, value, f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise InvalidParameterError(name, value, f"must be at most {maximum}")
    return value


@attrs.frozen(eq=False)  # each request is its own page in flight, even at the same offset
class PageRequest:
    """One page to fetch: ``limit`` rows from ``offset``.

    ``anchored``: the answer must hold a row the walk already passed, else the walk is lost.
    ``probe``: a request of the search for a lost place. ``generation`` ties the request to the
    plan it was made under; a changed plan ignores its answer. ``expected``: the rows the plan
    counts on (``limit``, or less once the server showed that it sends fewer): the next
    request starts at this one's last expected row.
    """

    offset: int
    limit: int
    anchored: bool
    probe: bool
    generation: int
    expected: int


@attrs.frozen
class ResumePoint(Generic[K]):
    """Where a walk stopped, enough for another walk to go on with no row twice.

    Take it from ``PageIterator.checkpoint`` and pass it as ``resume=``. Every field is plain
    data (an int and keys), so it can be written down (``to_dict``) and read back
    (``from_dict``) by a process that was killed in between.

    ``offset``: the server offset just past the last row yielded. ``last_key``: that row's
    key. ``recent``: the keys of up to ``RECENT_KEYS`` rows yielded just before it, oldest first:
    if ``last_key`` itself is deleted while the walk is down, the resumed walk finds its place
    at one of them instead of giving up. ``ahead``: rows yielded earlier that the server now
    lists *after* ``last_key`` (inserts pushed them there while the walk was placed at an older
    row): the resumed walk must recognise them, not yield them again. ``since_start``: these
    keys name every row yielded since offset 0 (a short walk), so a resumed walk that finds
    none of them on the server may start again from 0, as a walk from 0 does, instead of
    raising ``PagingError``.
    """

    offset: int = 0
    last_key: K | None = None
    recent: tuple[K, ...] = ()
    ahead: tuple[K, ...] = ()
    since_start: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready builtins when the keys are (``session_id`` strings are)."""
        return {
            "offset": self.offset,
            "last_key": self.last_key,
            "recent": list(self.recent),
            "ahead": list(self.ahead),
            "since_start": self.since_start,
        }

    @classmethod
    def at(
        cls, offset: int, yielded: Sequence[K], ahead: Sequence[K], *, since_start: bool
    ) -> ResumePoint[K]:
        """The point after ``yielded`` (the keys of the last rows yielded, oldest first).

        ``ahead``: the planner's ``ahead`` as of the answer the last of them came from.
        ``since_start``: ``yielded`` holds every row yielded since offset 0.
        """
        if not yielded:
            return cls(offset, since_start=since_start)
        *before, last = yielded
        skip = set(ahead)
        behind = [key for key in before if key not in skip]
        since_start = since_start and len(behind) <= RECENT_KEYS
        return cls(offset, last, tuple(behind[-RECENT_KEYS:]), tuple(ahead), since_start)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResumePoint[Any]:
        """The inverse of ``to_dict``; all but ``offset`` may be absent (older files).

        Raises:
            InvalidParameterError: a field has the wrong type.
        """
        offset = validate_count("offset", data.get("offset", 0), minimum=0)
        recent, ahead = data.get("recent", ()), data.get("ahead", ())
        for name, value in (("recent", recent), ("ahead", ahead)):
            if not isinstance(value, list | tuple):
                raise InvalidParameterError(name, value, "must be a list of keys")
        since_start = data.get("since_start", False)
        if not isinstance(since_start, bool):
            raise InvalidParameterError("since_start", since_start, "must be a bool")
        return cls(offset, data.get("last_key"), tuple(recent), tuple(ahead), since_start)


RECENT_KEYS = 32
"""Rows yielded just before a checkpoint's last one that the checkpoint names (``recent``)."""


@attrs.define
class _Search:
    """Strictly private: where the search for a lost place looks next.

    ``hint`` first, then pages stepping left from ``origin`` down to offset 0, then right from
    ``origin`` up to the total. Consecutive pages overlap by one row, so no offset is skipped
    while the data holds still; ``moved`` records that it did not (a total changed, or a probe
    came back short), so a sweep that found nothing may have missed a row that moved.
    """

    origin: int
    step: int
    hint: int | None
    left: int
    right: int
    total: int | None
    left_done: bool = False
    moved: bool = False

    def next_offset(self, total: int | None) -> int | None:
        if self.hint is not None:
            hint, self.hint = self.hint, None
            return hint
        if not self.left_done:
            self.left = max(0, self.left - self.step)
            self.left_done = self.left == 0
            return self.left
        self.right += self.step
        if total is None or self.right >= total:
            return None
        return self.right

    def saw(self, request: PageRequest, count: int, total: int | None) -> None:
        """A probe's answer: note whether the ground moved under the sweep."""
        end = request.offset + count
        short = count < request.limit and (total is None or end < total)
        self.moved = self.moved or total != self.total or short
        self.total = total


class PagePlanner(Generic[K]):
    """Plans the page requests of one walk and places each answer. Pure; see the module doc.

    Args:
        page_size: new rows per page at most; a request asks for one more (the overlap row),
            capped at ``max_limit``.
        max_limit: the endpoint's largest ``limit``.
        start_offset: the server offset to start from (a checkpoint's ``offset``).
        after: the key of the last row yielded before that checkpoint; the first page then
            verifies it instead of trusting the offset.
        recent: keys yielded just before ``after``, oldest first (a ``ResumePoint``'s).
        ahead: keys yielded earlier that the server lists after ``after`` (likewise).
        since_start: ``after``, ``recent`` and ``ahead`` are every row yielded since offset 0:
            the walk may start again from 0 if none of them is on the server any more.
        ledger_floor: the fewest keys the ledger keeps (see ``LEDGER_FLOOR``).

    Raises:
        InvalidParameterError: a parameter is out of range (``page_size`` 1..``max_limit``,
            ``start_offset`` >= 0, and >= 1 with ``after``; ``recent`` and ``ahead`` only with
            ``after``).
    """

    def __init__(
        self,
        page_size: int,
        *,
        max_limit: int,
        start_offset: int = 0,
        after: K | None = None,
        recent: Sequence[K] = (),
        ahead: Sequence[K] = (),
        since_start: bool = False,
        ledger_floor: int = LEDGER_FLOOR,
    ) -> None:
        # One row of overlap proves the place, so a page needs room for it and one more row.
        validate_count("max_limit", max_limit, minimum=2)
        self._page_size = validate_count("page_size", page_size, minimum=1, maximum=max_limit)
        validate_count("start_offset", start_offset, minimum=0)
        if after is not None and start_offset == 0:
            raise InvalidParameterError(
                "start_offset", start_offset, "must be at least 1 with after (the row before it)"
            )
        if after is None and (recent or ahead):
            raise InvalidParameterError(
                "after", after, "is needed with recent or ahead keys (the row they lead to)"
            )
        self._ledger_floor = validate_count("ledger_floor", ledger_floor, minimum=1)
        self._max_limit = max_limit
        self._window = min(page_size + 1, max_limit)
        self._cap: int | None = None  # the most rows the server was seen to send per page
        self._position = start_offset  # the server offset just past the last row passed
        self._anchored = after is not None
        # key -> its offset when passed, oldest first (a dict keeps insertion order; re-passing a
        # key deletes and re-inserts it, so it moves to the end)
        self._ledger: dict[K, int] = {}
        # passed rows believed to be still ahead, in the server's order
        self._held: dict[K, int] = dict.fromkeys(ahead, start_offset)
        if after is not None:
            behind = [key for key in recent if key not in self._held and key != after]
            for back, key in enumerate(reversed(behind), start=2):
                self._ledger[key] = start_offset - back
            self._ledger = dict(reversed(self._ledger.items()))
            self._ledger[after] = start_offset - 1
        # Only a walk from the very start that never forgot a key may start again from 0.
        self._complete = since_start or (start_offset == 0 and after is None)
        self._max_shift = 0
        self._total: int | None = None
        self._total_known = False
        self._total_at_place: int | None = None  # the total when the walk was last placed
        self._outstanding: deque[PageRequest] = deque()
        self._generation = 0
        self._next_offset = self._replan_offset()
        self._search: _Search | None = None
        self._searches = 0  # sweeps of the current search that found nothing
        self._empty_pages = 0
        self._done = False

    @property
    def done(self) -> bool:
        """The walk is over: ``plan`` returns nothing more."""
        return self._done

    @property
    def total(self) -> int | None:
        """The latest ``total_calls`` answered; ``None`` before the first answer or if unknown."""
        return self._total

    @property
    def position(self) -> int:
        """The server offset just past the last row the walk passed (yielded or skipped)."""
        return self._position

    @property
    def in_flight(self) -> int:
        """Requests handed out and not yet answered."""
        return len(self._outstanding)

    @property
    def ledger_size(self) -> int:
        """Row keys remembered now (ledger and held rows): bounded, never the whole walk."""
        return len(self._ledger) + len(self._held)

    @property
    def capacity(self) -> int:
        """How many passed keys the ledger keeps: the floor, or a window plus the largest shift."""
        return max(self._ledger_floor, self._window + self._max_shift)

    @property
    def ahead(self) -> tuple[K, ...]:
        """Rows passed that the server lists after the walk's place now (``ResumePoint.ahead``).

        Snapshot it with each placed answer: a checkpoint taken at that answer's rows needs it.
        """
        return tuple(self._held)

    @property
    def page_limit(self) -> int:
        """The rows per answer the plan counts on: the request's, or the server's smaller cap."""
        return self._window if self._cap is None else min(self._window, self._cap)

    def plan(self, slots: int) -> list[PageRequest]:
        """Up to ``slots`` more requests to send now, beyond those in flight, in order.

        Raises:
            PagingError: the walk lost its place and searched everywhere for a row it remembers.
        """
        planned: list[PageRequest] = []
        while len(planned) < slots and not self._done:
            request = self._search_request() if self._search is not None else self._walk_request()
            if request is None:
                break
            planned.append(request)
            self._outstanding.append(request)
        return planned

    def abandon(self) -> None:
        """Forget the requests in flight (the shell cancelled them); the next plan resends."""
        self._replan()
        if self._search is not None:
            # Probes already handed out were never answered: look there again.
            self._search = self._new_search(self._search.origin, hint=None)

    def accept(self, request: PageRequest, keys: Sequence[K], total: int | None) -> int:
        """Place one answer: the index of its first new row (``len(keys)`` when none is new).

        ``keys`` are the answer's row keys in order, ``total`` its ``total_calls`` (``None`` when
        the endpoint has none). Answers must come in plan order.

        Raises:
            PagingError: the answer names one key twice, or a key the walk passed comes back
                where the walk already was (a duplicate: yielding it again, or skipping to it,
                would break exactly-once); or pages keep bringing nothing while the total
                promises more rows.
        """
        if request.generation != self._generation:
            return len(keys)  # planned under a plan that has since changed
        if not self._outstanding or self._outstanding[0] is not request:
            raise RuntimeError("page answers must be accepted in the order they were planned")
        self._outstanding.popleft()
        self._total, self._total_known = total, True
        found = self._last_remembered(keys)
        if found < 0 and request.anchored:
            if request.probe:
                assert self._search is not None
                self._search.saw(request, len(keys), total)
                if total is not None and request.offset + len(keys) < total:  # not the end
                    self._learn_limit(request, len(keys))
            elif not keys and total is not None and request.offset < total:
                # Nothing at all where the total says rows are: not a contiguous slice of the
                # set, so a glitch. Ask again, a bounded number of times.
                self._count_empty(request)
                self._replan()
            else:
                self._lose_place(request)
            return len(keys)
        return self._place(request, keys, found)

    # -- planning --------------------------------------------------------------------------

    def _replan_offset(self) -> int:
        return self._position - 1 if self._anchored else self._position

    def _walk_request(self) -> PageRequest | None:
        if not self._total_known and self._outstanding:
            return None  # one page first: the total says how many more are worth asking for
        offset = self._next_offset
        anchored = self._anchored or bool(self._outstanding)
        skip = 1 if anchored else 0
        if self._outstanding and self._total is not None and offset + skip >= self._total:
            return None  # nothing new expected past the total; a later answer may extend it
        limit = min(self._page_size + skip, self._max_limit)
        # Ask for the full page (a server that stops capping is noticed), plan on its cap.
        expected = limit if self._cap is None else min(limit, self._cap)
        self._next_offset = offset + expected - 1  # the next page starts at this one's last row
        return PageRequest(
            offset, limit, anchored, probe=False, generation=self._generation, expected=expected
        )

    def _search_request(self) -> PageRequest | None:
        assert self._search is not None
        offset = self._search.next_offset(self._total)
        if offset is None:
            if self._outstanding:
                return None  # the last probes are still out
            if self._search_exhausted():
                return self._search_request()
            return self._walk_request()
        return PageRequest(
            offset,
            self._window,
            True,
            probe=True,
            generation=self._generation,
            expected=self.page_limit,
        )

    def _new_search(self, origin: int, hint: int | None) -> _Search:
        step = max(1, self.page_limit - 1)
        return _Search(
            origin=origin,
            step=step,
            hint=hint,
            left=origin,
            right=origin,
            total=self._total,
            left_done=origin == 0,
        )

    def _replan(self) -> None:
        self._outstanding.clear()
        self._generation += 1
        self._next_offset = self._replan_offset()

    # -- placing answers -------------------------------------------------------------------

    def _last_remembered(self, keys: Sequence[K]) -> int:
        ledger, held = self._ledger, self._held
        # The usual answer remembers its first row only: check that with set operations (C
        # loops) before looking row by row. (Its new rows are checked for a key twice as they
        # enter the ledger, in ``_remember``.)
        rest = keys[1:]
        if ledger.keys().isdisjoint(rest) and (not held or held.keys().isdisjoint(rest)):
            return 0 if keys and (keys[0] in ledger or keys[0] in held) else -1
        if len(set(keys)) != len(keys):
            self._twice(keys)
        remembered = [index for index, key in enumerate(keys) if key in ledger or key in held]
        found = remembered[-1]
        self._check_not_passed_twice(keys, remembered, found)
        return found

    @staticmethod
    def _twice(keys: Sequence[K]) -> None:
        seen: set[K] = set()
        for key in keys:
            if key in seen:
                raise PagingError(f"the server sent the key {key!r} twice in one page")
            seen.add(key)

    def _check_not_passed_twice(self, keys: Sequence[K], remembered: list[int], found: int) -> None:
        """Rows the walk would skip must not lie between its last row and a row passed before.

        The newest key of the ledger is the last row passed, and the ledger's other rows were
        passed before it, in the server's order (inserts and deletes never reorder the rows
        that stay). An answer listing one of them *after* the last row, with rows the walk
        never saw in between, shows a key twice: placing the walk there would skip those rows
        silently, and yielding it would repeat it. (Held rows are passed rows that inserts
        pushed ahead: they may come after the last row, by design.)
        """
        ledger = self._ledger
        key = keys[found]
        if key not in ledger:
            return
        newest = next(reversed(ledger))
        at = next((index for index in remembered if keys[index] == newest), found)
        between = found - at - 1  # rows between the last row passed and this one
        if between > sum(at < index < found for index in remembered):  # some never seen
            raise PagingError(
                f"the key {key!r} came back after rows the walk passed after it: the server "
                "lists it twice"
            )

    def _count_empty(self, request: PageRequest) -> None:
        self._empty_pages += 1
        if self._empty_pages >= MAX_EMPTY_PAGES:
            raise PagingError(
                f"{self._empty_pages} pages in a row brought no new row at offset "
                f"{request.offset} although total_calls is {self._total}: the walk would end "
                f"short at {self._position}; retry later"
            )

    def _learn_limit(self, request: PageRequest, count: int) -> None:
        """Learn the server's own page size from an answer; the plan then counts on it."""
        if count >= request.limit:
            self._cap = None  # sent all that was asked: no cap below it
        elif (self._cap is not None and count > self._cap) or (
            count < request.expected and count >= 2
        ):
            self._cap = count
        if self._search is not None:
            self._search.step = min(self._search.step, max(1, self.page_limit - 1))

    def _lose_place(self, request: PageRequest) -> None:
        # Rows deleted before the walk's place lower the total by as many as they shift it
        # left, so the first probe looks where the total says the place went.
        hint = None
        if self._total_at_place is not None and self._total is not None:
            moved = self._total_at_place - self._total
            if moved:
                hint = max(0, request.offset - moved)
        self._searches = 0
        self._search = self._new_search(request.offset, hint)
        self._replan()

    def _search_exhausted(self) -> bool:
        """A sweep found nothing: sweep again (``True``), start again from 0, or raise."""
        assert self._search is not None
        self._searches += 1
        if self._search.moved and self._searches < MAX_SEARCHES:
            # Rows moved while probes were out, and concurrent probes can pass a row that moves
            # from one's range into another's already answered: sweep again.
            self._search = self._new_search(self._search.origin, hint=None)
            return True
        if not self._complete:
            raise PagingError(
                "the walk lost its place: none of the rows it remembers is on the server any "
                f"more (around offset {self._position}); restart the walk"
            )
        # Every row ever passed is remembered, so from offset 0 the rows not remembered are
        # exactly the rows not yet passed. All of them are ahead now: hold them, so that
        # walking over the rows before them never evicts one.
        self._held = {**self._ledger, **self._held}
        self._ledger.clear()
        self._search = None
        self._position, self._anchored = 0, False
        self._replan()
        return False

    def _place(self, request: PageRequest, keys: Sequence[K], found: int) -> int:
        if found >= 0:
            self._note_found(request, keys, found)
        self._remember(request.offset, keys, found)
        advanced = request.offset + len(keys) > self._position
        self._position = request.offset + len(keys)
        self._anchored = self._anchored or bool(keys)
        self._total_at_place = self._total
        if request.probe:
            self._search = None
            self._replan()
        if found + 1 < len(keys):
            self._empty_pages = 0
        elif not advanced and not request.probe and not self._at_end():
            self._count_empty(request)  # nothing past the place: an empty page
        self._check_end(request, len(keys), new=len(keys) - (found + 1))
        return found + 1

    def _note_found(self, request: PageRequest, keys: Sequence[K], found: int) -> None:
        key = keys[found]
        in_ledger = key in self._ledger
        passed_at = self._ledger[key] if in_ledger else self._held[key]
        # Inserts before the place push remembered rows right, back into later answers: the
        # ledger grows to remember that much more. (Deletes shift left; more memory is no help.)
        self._max_shift = max(self._max_shift, request.offset + found - passed_at)
        if in_ledger and next(reversed(self._ledger)) != key:
            # Placed at an older row: the rows passed after it (none of which this answer shows,
            # or it would be placed there) are ahead of the walk now, or deleted, and before
            # the rows already held. Hold them so they are recognised later.
            ahead: dict[K, int] = {}
            for later in reversed(self._ledger):
                if later == key:
                    break
                ahead[later] = self._ledger[later]
            for later in ahead:
                del self._ledger[later]
            self._held = {**dict(reversed(ahead.items())), **self._held}

    def _remember(self, offset: int, keys: Sequence[K], found: int) -> None:
        """Append the whole answer to the ledger, in order, and forget the oldest rows."""
        ledger, held = self._ledger, self._held
        for index in range(found + 1):  # rows up to the place: passed before, or skipped now
            key = keys[index]
            ledger.pop(key, None)
            ledger[key] = offset + index
            held.pop(key, None)
        # The rows after the place are remembered nowhere yet (that is what placed it there).
        new = keys[found + 1 :]
        capacity = self.capacity
        excess = len(ledger) + len(new) - capacity
        if excess > 0:
            self._complete = False
            # Forget the oldest keys before the new ones go in: copying the survivors is one C
            # loop (popping the oldest one by one is a Python loop), and with pages about the
            # size of the ledger few survive, so no page of keys is copied twice.
            ledger = self._ledger = dict(islice(ledger.items(), excess, None))
        before = len(ledger)
        ledger.update(zip(new, range(offset + found + 1, offset + len(keys)), strict=True))
        if len(ledger) != before + len(new):  # none of them was remembered: one came twice
            self._twice(new)
        if len(held) > capacity:
            self._complete = False
            while len(held) > capacity:
                del held[next(reversed(held))]  # the farthest ahead: the last to be reached

    def _at_end(self) -> bool:
        return self._total is not None and self._position >= self._total

    def _check_end(self, request: PageRequest, count: int, *, new: int) -> None:
        short = count < request.expected
        if self._total is None:
            # No total to go by (all_logs may leave it out, plum-api.md 2.3): a short page may
            # be the server's own cap, so only a page with nothing new ends the walk. It costs
            # one request more than a total would; ending at a capped page would lose rows.
            self._done = new == 0
        else:
            # The total of the same answer, not the first one: a growing total extends the
            # walk, a shrinking one ends it sooner.
            self._done = self._at_end()
        if not self._done:
            self._learn_limit(request, count)
        if short and not self._done:
            self._replan()  # the pages planned after this one assumed it was full
