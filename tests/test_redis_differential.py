"""The Lua scripts against the Python bucket they re-state: same operations, same outcome.

``_core/bucket.py`` is the specification (its transition table, its Hypothesis state machine in
tests/core); ``_redis/lua/`` re-states it for Redis. Hypothesis generates random operation
sequences (waiters arriving, answers with headers, without, none at all, 429s naming our window,
an earlier or a later one, 429s with and without ``Retry-After``, absurd header values, tokens
given back, time passing past window ends and lease expiries, server clocks a few seconds off;
waiters of both priorities, and a reserve from none to ``limit - 1``) and feeds each to a fresh
``Bucket`` and to the scripts on a real redis-server, through the scripts' fake-clock seam
(``ARGV[10]``: now in ms) so both read one clock. After every step both must have granted the
same number of tokens to each priority's queue and agree on the phase, the limit, the
server's remaining, the requests in flight, the unreported spends, what is grantable and when
the window (or closure) ends (to the millisecond the scripts count in).

One process's view only: the scripts' turns among processes are tested in
tests/test_redis_governor.py. The scripts are called with redis-py's synchronous client, the
same text and arguments ``RedisGovernor`` sends.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plumvoice_async._core.bucket import NO_DATE_MARGIN, NO_HEADER_PROOF, PRIORITIES, Bucket
from plumvoice_async._core.ratelimit import MAX_HEADER_COUNT, MAX_RESET_WINDOWS, RateLimit
from plumvoice_async._core.requests import QuotaGroup
from plumvoice_async._governor import QuotaKey, account_hash
from plumvoice_async._redis.governor import _header_args
from plumvoice_async._redis.lane import Lane, Reply
from plumvoice_async._redis.scripts import _script_text, bucket_args

from .redis_server import redis_url

__all__ = ["redis_url"]  # the fixture, imported for pytest

LIMIT, WINDOW, MARGIN, LEASE = 5, 60.0, 1.0, 30.0
START_MS = 1_700_000_000_000 + 17_000  # 17 s into a 60 s window
KEY = QuotaKey(QuotaGroup.VOICETRENDS.value, account_hash("differential@example.com"))
_examples = itertools.count()


class Lua:
    """The four scripts on one bucket, called as ``RedisGovernor`` calls them, at ``now_ms``."""

    def __init__(self, client: redis.Redis, prefix: str, reserve: int) -> None:
        self.scripts = {
            v: client.register_script(_script_text(v))
            for v in ("admit", "settle", "release", "view")
        }
        lane = Lane(KEY, prefix)
        self.keys = lane.keys
        self.args = bucket_args(
            limit=LIMIT,
            window=WINDOW,
            margin=MARGIN,
            lease=LEASE,
            recheck=86_400.0,
            channel=lane.channel,
            origin="differential",
            reserve=reserve,
        )

    def run(
        self, verb: str, now_ms: int, want: dict[str, int], extra: tuple[Any, ...] = ()
    ) -> Reply:
        wants = [want[priority] for priority in PRIORITIES]
        raw = self.scripts[verb](keys=self.keys, args=[*self.args, now_ms, *wants, *extra])
        return Reply.parse(raw)


@pytest.fixture(scope="module")
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


# -- operations ----------------------------------------------------------------------------------

ANSWERS = (
    "ok",  # 200 with headers naming the server's current window
    "ok later",  # 200 naming the next window (a server ahead of the others)
    "ok delta",  # 200, Reset as seconds from now
    "ok no date",  # 200 without Date
    "429",  # 429 naming the current window
    "429 stale",  # 429 naming the window before (servers disagree)
    "429 later",
    "429 retry-after",  # no X-RateLimit headers, Retry-After seconds
    "429 blind",  # no X-RateLimit headers, no Retry-After
    "502",  # a proxy's error page, no headers
    "lost",  # no answer at all
    "absurd",  # a header value no server means
)
ABSURD = (
    {"reset": math.nan},
    {"reset": math.inf},
    {"reset": 1e12},
    {"reset": 1e30, "server_date": None},
    {"limit": 0},
    {"limit": MAX_HEADER_COUNT + 1},
    {"remaining": MAX_HEADER_COUNT + 1},
    {"server_date": math.inf},
)

arrive = st.tuples(st.just("arrive"), st.integers(1, 4), st.sampled_from(PRIORITIES))
answer = st.tuples(
    st.just("settle"),
    st.integers(0, 50),  # which token held
    st.sampled_from((*ANSWERS, "502", "502", "ok", "429 stale")),  # the rarer paths, twice
    st.integers(0, LIMIT),  # Remaining
    st.integers(0, len(ABSURD) - 1),
    st.sampled_from((0.0, 0.5, 3.0, 1e9, math.nan)),  # Retry-After
)
release = st.tuples(st.just("release"), st.integers(0, 50))
wait = st.tuples(
    st.just("wait"), st.sampled_from((1, 250, 999, 1_000, 2_500, 20_000, 31_000, 61_000))
)
operations = st.lists(
    st.one_of(arrive, answer, answer, answer, release, wait), min_size=15, max_size=40
)


def headers(kind: str, server_now: float, remaining: int, absurd: int) -> RateLimit | None:
    """What the server's answer says; ``server_now`` is its clock."""
    boundary = (math.floor(server_now / WINDOW) + 1) * WINDOW
    date: float | None = float(math.floor(server_now))
    if kind in ("429 retry-after", "429 blind", "502", "lost"):
        return None
    if kind.endswith("later"):
        boundary += WINDOW
    elif kind == "429 stale":
        boundary -= WINDOW
    reset = boundary
    if kind == "ok delta":
        reset = float(math.floor(boundary - server_now))
    elif kind == "ok no date":
        date = None
    if kind.startswith("429"):
        remaining = 0
    fields: dict[str, Any] = {
        "limit": LIMIT,
        "remaining": remaining,
        "reset": reset,
        "server_date": date,
    }
    if kind == "absurd":
        fields.update(ABSURD[absurd])
    return RateLimit(**fields)


# -- the test ------------------------------------------------------------------------------------


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations, skew=st.integers(-5_000, 5_000), reserve=st.integers(0, LIMIT - 1))
def test_the_lua_scripts_do_what_the_python_bucket_does(
    client: redis.Redis, ops, skew: int, reserve: int
):
    lua = Lua(client, f"differential-{next(_examples)}:", reserve)
    bucket = Bucket(LIMIT, WINDOW, margin=MARGIN, lease=LEASE, reserve=reserve)
    now_ms = START_MS
    held: list[tuple[int, int]] = []  # (Python ticket, Lua lease number), in grant order
    waiting = dict.fromkeys(PRIORITIES, 0)  # the Lua side's queues: how many tokens they want
    priority_of: dict[int, str] = {}  # the Python side's tickets

    def hand_over(granted: tuple[int, ...], reply: Reply, step: object) -> None:
        python = {p: [ticket for ticket in granted if priority_of[ticket] == p] for p in PRIORITIES}
        assert len(python["interactive"]) == len(reply.granted), (step, granted, reply)
        assert len(python["bulk"]) == len(reply.granted_bulk), (step, granted, reply)
        held.extend(zip(python["interactive"], reply.granted, strict=True))
        held.extend(zip(python["bulk"], reply.granted_bulk, strict=True))
        waiting["interactive"] -= len(reply.granted)
        waiting["bulk"] -= len(reply.granted_bulk)

    for generated in ops:
        now = now_ms / 1000
        step = generated
        if step[0] in ("settle", "release") and not held:
            step = ("arrive", 1, "interactive")  # nothing to answer: somebody asks instead
        if step[0] == "arrive":
            for _ in range(step[1]):
                priority_of[bucket.enqueue(now, priority=step[2])] = step[2]
            waiting[step[2]] += step[1]
            granted = bucket.dispatch(now, now).granted
            hand_over(granted, lua.run("admit", now_ms, waiting), step)
        elif step[0] == "settle":
            _, which, kind, remaining, absurd, retry_after = step
            ticket, number = held.pop(which % len(held))
            rate_limit = headers(kind, now + skew / 1000, remaining, absurd)
            status = None if kind == "lost" else 429 if kind.startswith("429") else 200
            if kind == "502":
                status = 502
            after = retry_after if kind == "429 retry-after" else None
            bucket.settle(ticket, now, now, status=status, rate_limit=rate_limit, retry_after=after)
            granted = bucket.dispatch(now, now).granted
            extra = [
                number,
                "" if status is None else str(status),
                *_header_args(rate_limit),
                round(NO_DATE_MARGIN * 1000),
                "" if after is None else repr(float(after)),
                MAX_RESET_WINDOWS,
                MAX_HEADER_COUNT,
                NO_HEADER_PROOF,
            ]
            hand_over(granted, lua.run("settle", now_ms, waiting, tuple(extra)), step)
        elif step[0] == "release":
            ticket, number = held.pop(step[1] % len(held))
            bucket.release(ticket)
            granted = bucket.dispatch(now, now).granted
            hand_over(granted, lua.run("release", now_ms, waiting, (number,)), step)
        else:
            now_ms += step[1]
            now = now_ms / 1000
            granted = bucket.dispatch(now, now).granted
            hand_over(granted, lua.run("admit", now_ms, waiting), step)
        assert bucket.waiting_by_priority() == waiting, step
        compare(bucket, lua.run("view", now_ms, dict.fromkeys(PRIORITIES, 0)), now, step)


def compare(bucket: Bucket, lua: Reply, now: float, step: object) -> None:
    view = bucket.view(now, now)
    python = {
        "phase": view.phase.value,
        "limit": view.limit,
        "in flight": view.in_flight,
        "unreported": len(bucket._unreported),
        "grantable": view.grantable,
    }
    redis_side = {
        "phase": lua.phase,
        "limit": lua.limit,
        "in flight": lua.in_flight,
        "unreported": lua.unreported,
        "grantable": lua.grantable,
    }
    if view.phase.value != "probing":
        python["remaining"] = bucket._remaining
        redis_side["remaining"] = lua.remaining
    assert python == redis_side, (step, python, redis_side)
    if view.window_end is None:
        assert lua.window_end_in is None, (step, lua)
    else:
        assert lua.window_end_in is not None, (step, view)
        # The scripts count whole milliseconds and reply with integers (truncated).
        assert view.window_end - now == pytest.approx(lua.window_end_in, abs=0.002), (step, view)
