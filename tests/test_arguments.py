"""Every public constructor and setting refuses nonsense at once, naming the argument.

Issue 12, item 9: ``LocalGovernor(limit=nan)`` hung the first request,
``PlumClient(timeout=nan)`` raised a bare ``ValueError`` from inside httpx at the first request,
``PlumClient(fuse_url=b"...")``, ``LocalGovernor(groups=[1, 2])`` and ``RedisGovernor("x")``
crashed with ``AttributeError``, and bools, floats and numeric strings were taken as counts.

``TARGETS`` is the table: for each public callable, each of its arguments with values it must
accept and values it must refuse with ``InvalidParameterError`` naming that argument (never
echoing a secret). The table is checked against the code: ``inspect.signature`` of each target
must list exactly the table's arguments (a new keyword without a row fails), and every class or
function of the public surface must be a target or exempt with a reason (a new public
constructor without rows fails). ``ENV_ROWS`` does the same for ``PlumClient.from_env``'s
variables, checked against the variables its source reads.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import plumvoice_async
import plumvoice_async.testing
from plumvoice_async import (
    InvalidParameterError,
    LocalGovernor,
    PlumClient,
    RedisGovernor,
    SyncPlumClient,
    VoiceTrendsLogin,
)
from plumvoice_async._core import arguments
from plumvoice_async._core.arguments import REDACTED
from plumvoice_async._core.requests import QuotaGroup
from plumvoice_async._redis.scripts import import_redis
from plumvoice_async.testing import CallDataset, FakeClock, FaultPlan, PlumSimulator, Quota, serve
from plumvoice_async.testing._dataset import MAX_SIZE

NAN = float("nan")
INF = float("inf")
SECRET = "SECRET-"
"""Every secret in a bad value holds this; no error message may."""

# --- the kinds of value every number is tried with --------------------------------------------

POSITIVE_SECONDS_BAD = (NAN, INF, -INF, 0, 0.0, -1, -0.5, True, False, "5", b"5", None, 10**400)
NON_NEGATIVE_SECONDS_BAD = (NAN, INF, -INF, -1, -0.001, True, "5", b"5")
COUNT_BAD = (-1, 1.0, 2.5, True, False, "3", b"3", NAN, INF, None)
POSITIVE_COUNT_BAD = (0, *COUNT_BAD)
CLOCK_BAD = ("x", 5, object(), True)
FINITE_BAD = (NAN, INF, -INF, "0", b"0", True, None, 10**400)


@dataclass(frozen=True)
class Arg:
    """One argument's row: values it accepts, values it refuses (``secret``: never echoed)."""

    good: tuple[Any, ...]
    bad: tuple[Any, ...]
    secret: bool = False


@dataclass(frozen=True)
class Target:
    """A public callable: ``call(**{**base, name: value})`` for each row's value."""

    name: str
    call: Callable[..., object]
    args: Mapping[str, Arg]
    keywords: frozenset[str]
    """The arguments the callable takes (from ``inspect.signature``): the rows must match."""
    base: Mapping[str, Any] = field(default_factory=dict)


def keywords(function: Callable[..., object], *, without: tuple[str, ...] = ()) -> frozenset[str]:
    """The public argument names of ``function``: not ``self``, ``_private``, ``*a`` or ``**k``."""
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return frozenset(
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if name not in ("self", "cls", *without)
        and not name.startswith("_")
        and parameter.kind not in variadic
    )


def make_redis() -> Any:
    """A client that never connects: constructing a governor on it sends nothing."""
    return import_redis().asyncio.Redis()


def run(method: Callable[..., Any], **kwargs: Any) -> object:
    """Run an async setting (``FakeClock.advance``) to completion."""
    return anyio.run(functools.partial(method, **kwargs))


def served(**kwargs: Any) -> None:
    with serve(**kwargs):
        pass


# --- rows shared by several targets --------------------------------------------------------------

GOVERNOR_ARGS = {
    "limit": Arg((1, 150, 10**9), POSITIVE_COUNT_BAD),
    "window": Arg((0.001, 900, 900.0), POSITIVE_SECONDS_BAD),
    "margin": Arg((0, 0.0, 1.5), (*NON_NEGATIVE_SECONDS_BAD, None)),
    "groups": Arg(
        (
            None,
            {},
            {"fuse": (10, 60.0)},
            {QuotaGroup.FUSE: (40, 300), "voicetrends-auth": (5, 900)},
        ),
        (
            [1, 2],
            "fuse",
            5,
            {"fuse": (10,)},
            {"fuse": (10, 60.0, 1)},
            {"fuse": [10, 60.0]},
            {"fuse": (0, 60.0)},
            {"fuse": (True, 60.0)},
            {"fuse": ("10", 60.0)},
            {"fuse": (10.0, 60.0)},
            {"fuse": (10, NAN)},
            {"fuse": (10, 0)},
            {"fuse": (10, "60")},
            {"nope": (10, 60.0)},
            {"FUSE": (10, 60.0)},
            {1: (10, 60.0)},
        ),
    ),
    "clock": Arg((None, FakeClock()), CLOCK_BAD),
}

RESERVE_ARG = Arg((0, 15, 149), (-1, 150, 10**9, 1.5, 15.0, True, "15", None))
"""Against the default limit (150): a reserve must leave bulk requests at least one token."""

REDIS_ARGS = {
    **GOVERNOR_ARGS,
    "lease": Arg((0.5, 120), POSITIVE_SECONDS_BAD),
    "prefix": Arg(("plumvoice:", "x"), ("", b"p:", 5, None)),
    "fallback": Arg((None, "local"), ("remote", "LOCAL", "", True, 0)),
    "fallback_share": Arg(
        (0.01, 0.25, 1, 1.0), (0, 0.0, -0.1, 1.01, 2, NAN, INF, True, "0.5", None)
    ),
    "retry_after": Arg((0.1, 5), POSITIVE_SECONDS_BAD),
    "recheck": Arg((0.1, 1), POSITIVE_SECONDS_BAD),
    "reserve": RESERVE_ARG,
}

FAULT_ARGS = {
    "times": Arg((None, 0, 3), (-1, 1.5, True, "1")),
    "path_prefix": Arg((None, "/api/calls/"), ("", b"/api/", 5)),
    "predicate": Arg((None, lambda request: True), ("x", 5)),
    "probability": Arg((0, 0.5, 1, 1.0), (-0.1, 1.1, NAN, INF, True, "0.5", None)),
}

CREDENTIAL_PAIR_BAD = (
    ("me@example.com",),
    ("me@example.com", ""),
    ("", f"{SECRET}key"),
    ("me@example.com", f"{SECRET}key", "extra"),
    ["me@example.com", f"{SECRET}key"],
    ("me@example.com", f"{SECRET}key".encode()),
    f"me@example.com:{SECRET}key",
    5,
)
URL_BAD = (
    b"https://fuse.example.com/api/",
    5,
    "",
    "fuse.example.com/api",
    "ftp://fuse.example.com/api/",
    "http://fuse.example.com/api/",
    f"https://me:{SECRET}pw@fuse.example.com/api/",
    f"https://fuse.example.com/api/?token={SECRET}x",
)
SECRET_TEXT_BAD = ("", None, f"{SECRET}me".encode(), 5, (f"{SECRET}me",))
ACCOUNTS_BAD = (
    [],
    (),
    "ab",
    5,
    None,
    [("me",)],
    [("me", "")],
    [("me", 5)],
    [["me", f"{SECRET}pw"]],
    [("me", f"{SECRET}pw", "extra")],
)

PLUM_CLIENT_ARGS = {
    "fuse_auth": Arg((None, ("me@example.com", "key")), CREDENTIAL_PAIR_BAD, secret=True),
    "voicetrends_auth": Arg((None, ("login", "pw")), CREDENTIAL_PAIR_BAD, secret=True),
    "voicetrends_login": Arg(
        (None, VoiceTrendsLogin("dev", "me", "pw")),
        (("fuseplus", "me", f"{SECRET}pw"), "x", 5),
        secret=True,
    ),
    "fuse_url": Arg(("https://fuse.example.com/api", "http://127.0.0.1:8000/api/"), URL_BAD),
    "voicetrends_url": Arg(("https://vt.example.com/api/", "http://[::1]/"), URL_BAD),
    "format": Arg(("json", "xml"), ("yaml", "JSON", "", b"json", None, 1)),
    "governor": Arg((None, LocalGovernor()), ("x", 5, object(), FakeClock())),
    "http_client": Arg((None, httpx.AsyncClient()), ("x", object(), httpx.AsyncBaseTransport())),
    "timeout": Arg((0.001, 30, 30.0, 1e9, httpx.Timeout(5.0)), POSITIVE_SECONDS_BAD),
    "max_retries": Arg((0, 3, 100), COUNT_BAD),
    "max_wait": Arg((None, 0, 0.5, 3600), NON_NEGATIVE_SECONDS_BAD),
    "priority": Arg(("interactive", "bulk"), ("urgent", "Bulk", "", b"bulk", None, 1)),
    "clock": Arg((None, FakeClock()), (*CLOCK_BAD, LocalGovernor())),
    "max_response_bytes": Arg((1, 64 * 2**20), POSITIVE_COUNT_BAD),
    "event_hooks": Arg(((), [print], (print, len)), (print, "x", [1], {"a": print}, None, 5)),
    "geographic_resource": Arg(
        ("profile", "geographic", "geo/graphic"),
        ("", "a b", "..", "../x", "profile/", "/profile", b"profile", 5, None),
    ),
}


def sync_client(**kwargs: Any) -> None:
    SyncPlumClient(**kwargs).close()  # its loop's thread stops with it


TARGETS = [
    Target("PlumClient", PlumClient, PLUM_CLIENT_ARGS, keywords(PlumClient.__init__)),
    # The same settings, checked by the same code, from the caller's thread.
    Target("SyncPlumClient", sync_client, PLUM_CLIENT_ARGS, keywords(SyncPlumClient.__init__)),
    Target(
        "LocalGovernor",
        LocalGovernor,
        {**GOVERNOR_ARGS, "reserve": RESERVE_ARG},
        keywords(LocalGovernor.__init__),
    ),
    Target(
        "RedisGovernor",
        RedisGovernor,
        {"client": Arg((make_redis(),), ("x", None, 5, object())), **REDIS_ARGS},
        keywords(RedisGovernor.__init__),
        base={"client": make_redis()},
    ),
    Target(
        "RedisGovernor.from_url",
        RedisGovernor.from_url,
        {
            "url": Arg(
                ("redis://127.0.0.1:6379/0", "rediss://redis.example.com:6380/1"),
                (
                    b"redis://127.0.0.1/0",
                    5,
                    None,
                    "",
                    "127.0.0.1:6379",
                    "http://127.0.0.1/",
                    f"redis://:{SECRET}pw@127.0.0.1:notaport/0",
                    f"http://:{SECRET}pw@127.0.0.1/",
                ),
                secret=True,
            ),
            "socket_timeout": Arg((0.1, 2), POSITIVE_SECONDS_BAD),
            **REDIS_ARGS,
        },
        # from_url passes **options on to the constructor: every one of them needs a row too.
        keywords(RedisGovernor.from_url) | keywords(RedisGovernor.__init__, without=("client",)),
        base={"url": "redis://127.0.0.1:6379/0"},
    ),
    Target(
        "VoiceTrendsLogin",
        VoiceTrendsLogin,
        {
            "tool": Arg(("dev", "insight", "fuseplus"), ("fuse", "FUSEPLUS", "", None, 3, b"dev")),
            "login": Arg(("me@example.com",), SECRET_TEXT_BAD, secret=True),
            "password": Arg(("pw",), SECRET_TEXT_BAD, secret=True),
        },
        keywords(VoiceTrendsLogin),
        base={"tool": "dev", "login": "me@example.com", "password": "pw"},
    ),
    # --- plumvoice_async.testing -----------------------------------------------------------------
    Target(
        "PlumSimulator",
        PlumSimulator,
        {
            "dataset": Arg((None, CallDataset(size=10)), ("x", 5, [])),
            "clock": Arg((None, FakeClock()), CLOCK_BAD),
            "limit": Arg((1, 150), POSITIVE_COUNT_BAD),
            "window": Arg((1, 900), (*POSITIVE_COUNT_BAD, 900.0)),
            "quotas": Arg(
                (
                    None,
                    {},
                    {"fuse": Quota(10, 60)},
                    {"fuse": None, QuotaGroup.VOICETRENDS: Quota()},
                ),
                ([Quota()], "fuse", {"fuse": (10, 60)}, {"nope": Quota()}, {1: Quota()}),
            ),
            "fuse_accounts": Arg(([("me", "pw")], (("a", "b"), ("c", "d"))), ACCOUNTS_BAD, True),
            "voicetrends_accounts": Arg(([("me", "pw")],), ACCOUNTS_BAD, secret=True),
            "voicetrends_logins": Arg(
                ([("dev", "me", "pw")],),
                (
                    [],
                    "dev",
                    [("fuse", "me", f"{SECRET}pw")],
                    [("dev", "me")],
                    [("dev", "", f"{SECRET}pw")],
                    [("dev", "me", None)],
                ),
                secret=True,
            ),
            "temporary_credentials_ttl": Arg((0.5, 86_400), POSITIVE_SECONDS_BAD),
            "fault_seed": Arg((0, 7), (-1, 1.5, True, "1", None)),
        },
        keywords(PlumSimulator.__init__),
    ),
    Target(
        "Quota",
        Quota,
        {
            "limit": Arg((1, 150), POSITIVE_COUNT_BAD),
            "window": Arg((1, 900), (*POSITIVE_COUNT_BAD, 900.0)),
            "headers": Arg((True, False), ("yes", 1, 0, None)),
        },
        keywords(Quota),
    ),
    Target(
        "FakeClock",
        FakeClock,
        {"start": Arg((0, 1.5, -5.0, 1_700_000_000.0), FINITE_BAD)},
        keywords(FakeClock.__init__),
    ),
    Target(
        "FakeClock.skewed",
        lambda **kwargs: FakeClock().skewed(**kwargs),
        {"seconds": Arg((-1800, 0, 2.5), FINITE_BAD)},
        keywords(FakeClock.skewed),
        base={"seconds": 0},
    ),
    Target(
        "FakeClock.advance",
        lambda **kwargs: run(FakeClock().advance, **kwargs),
        {"seconds": Arg((0, 1.5, 3600), (-1, *FINITE_BAD))},
        keywords(FakeClock.advance),
        base={"seconds": 0},
    ),
    Target(
        "CallDataset",
        CallDataset,
        {
            "seed": Arg((0, 7), (-1, 1.5, True, "1", None)),
            "size": Arg((0, 10, MAX_SIZE), (-1, MAX_SIZE + 1, 1.5, True, "10", None)),
            "start": Arg((0, 1_700_000_000), (-1, 1.5, 1.7e9, True, "0", None)),
            "spacing": Arg((1, 30), (0, -1, 1.5, True, "30", None)),
            "numbers": Arg(
                (("6170000001",), ["6170000001", "6170000002"]),
                (
                    (),
                    "6170000001",
                    ("1",),
                    ("6170000001", "6170000001"),
                    (6170000001,),
                    ("ALL",),
                    ("+16170000001",),
                    ("6170000001", None),
                    None,
                ),
            ),
        },
        keywords(CallDataset.__init__),
    ),
    Target(
        "FaultPlan", FaultPlan, {"seed": Arg((0, 7), (-1, 1.5, True, "1"))}, keywords(FaultPlan)
    ),
    Target(
        "FaultPlan.latency",
        lambda **kwargs: FaultPlan().latency(**kwargs),
        {"seconds": Arg((0, 0.5, 30), (-1, *FINITE_BAD)), **FAULT_ARGS},
        keywords(FaultPlan.latency),
        base={"seconds": 0.5},
    ),
    Target(
        "FaultPlan.status",
        lambda **kwargs: FaultPlan().status(**kwargs),
        {"status": Arg((500, 503, 599), (404, 600, 503.0, True, "503", None)), **FAULT_ARGS},
        keywords(FaultPlan.status),
    ),
    Target(
        "FaultPlan.drop",
        lambda **kwargs: FaultPlan().drop(**kwargs),
        FAULT_ARGS,
        keywords(FaultPlan.drop),
    ),
    Target(
        "FaultPlan.malformed",
        lambda **kwargs: FaultPlan().malformed(**kwargs),
        {"body": Arg(("html", "truncated"), ("json", "HTML", None, 5)), **FAULT_ARGS},
        keywords(FaultPlan.malformed),
    ),
    Target(
        "serve",
        served,
        {
            "app": Arg((), (None, 5, "x")),  # the good app is the base's simulator
            "host": Arg(("127.0.0.1",), ("", None, b"127.0.0.1", 5)),
            "base_path": Arg(("/", "/api/"), ("", "api/", "/api", None, 5)),
            "port": Arg((0,), (-1, 65_536, *COUNT_BAD)),
        },
        keywords(serve),
        base={"app": PlumSimulator()},
    ),
]

EXEMPT = {
    # Raised by the library, never built from a user's settings.
    **dict.fromkeys(
        (
            "APIError",
            "AuthenticationError",
            "BadRequestError",
            "DecodeError",
            "GovernorUnavailableError",
            "InvalidParameterError",
            "MethodNotAllowedError",
            "NotFoundError",
            "PagingError",
            "ExportError",
            "PlumError",
            "RateLimitError",
            "ServerError",
            "TransportError",
            "SimulatedConnectionDrop",
        ),
        "an exception",
    ),
    # Records the library builds from what a server sent or from its own state.
    **dict.fromkeys(
        (
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
            "VolumeReport",
            "QuotaKey",
            "Snapshot",
            "LoggedRequest",
            "SimRequest",
            "SyncPageIterator",
            "ResumePoint",  # a walk's checkpoint; ResumePoint.from_dict checks what it reads
            "ExportResult",
            "RawResponse",
            "RateLimitInfo",
            "Answered",
            "QuotaWaited",
            "RateLimited",
            "Retrying",
            "Fault",
        ),
        "a record the library builds",
    ),
    "Governor": "a Protocol: it has no constructor",
    "EventHook": "a type alias (any callable taking a ClientEvent)",
    "ClientEvent": "a type alias (the union of the event classes)",
}


def rows(*, good: bool) -> list[Any]:
    params = []
    for target in TARGETS:
        for name, arg in target.args.items():
            for index, value in enumerate(arg.good if good else arg.bad):
                params.append(
                    pytest.param(
                        target, name, value, arg.secret, id=f"{target.name}-{name}-{index}"
                    )
                )
    return params


def secrets_in(value: object) -> list[str]:
    """The secret strings inside a bad value (nested tuples, lists, bytes)."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return [value] if SECRET in value else []
    if isinstance(value, tuple | list):
        return [secret for part in value for secret in secrets_in(part)]
    return []


@pytest.mark.parametrize(("target", "name", "value", "secret"), rows(good=False))
def test_a_bad_value_is_refused_naming_its_argument(target, name, value, secret):
    with pytest.raises(InvalidParameterError) as caught:
        target.call(**{**target.base, name: value})
    error = caught.value
    assert error.parameter == name
    assert f"invalid {name}=" in str(error)
    assert isinstance(error, ValueError)  # code that caught ValueError still does
    for text in secrets_in(value):
        assert text not in str(error)
        assert text not in repr(error.value)
    if secret:
        assert error.value is REDACTED


@pytest.mark.parametrize(("target", "name", "value", "secret"), rows(good=True))
def test_a_good_value_is_accepted(target, name, value, secret):
    target.call(**{**target.base, name: value})


@pytest.mark.parametrize("target", TARGETS, ids=[target.name for target in TARGETS])
def test_the_defaults_construct(target):
    target.call(**target.base)


@pytest.mark.parametrize("target", TARGETS, ids=[target.name for target in TARGETS])
def test_every_argument_has_a_row(target):
    """A keyword added to a constructor without a row here fails this test."""
    assert set(target.args) == set(target.keywords)
    for name, arg in target.args.items():
        assert arg.bad, f"{target.name}({name}=...) has no bad value"


def test_every_public_callable_is_a_target_or_exempt():
    """A public class or function added without rows here (or a reason not to) fails this test."""
    covered = {target.name.split(".")[0] for target in TARGETS}
    for module in (plumvoice_async, plumvoice_async.testing):
        for name in module.__all__:
            if callable(getattr(module, name)):
                assert name in covered or name in EXEMPT, f"{module.__name__}.{name} has no rows"
    assert not covered & set(EXEMPT)


# --- the checks themselves, on any value ---------------------------------------------------------

ANYTHING = (
    st.floats()
    | st.integers(min_value=-(10**300), max_value=10**300)
    | st.booleans()
    | st.text(max_size=5)
    | st.none()
)


@given(ANYTHING)
def test_positive_finite_accepts_exactly_the_finite_numbers_above_zero(value):
    number = not isinstance(value, bool) and isinstance(value, int | float)
    if number and math.isfinite(value) and value > 0:
        assert arguments.positive_finite(value, name="x") == float(value)
    else:
        with pytest.raises(InvalidParameterError, match="invalid x="):
            arguments.positive_finite(value, name="x")


@given(ANYTHING)
def test_non_negative_finite_accepts_exactly_the_finite_numbers_from_zero(value):
    number = not isinstance(value, bool) and isinstance(value, int | float)
    if number and math.isfinite(value) and value >= 0:
        assert arguments.non_negative_finite(value, name="x") == float(value)
    else:
        with pytest.raises(InvalidParameterError, match="invalid x="):
            arguments.non_negative_finite(value, name="x")


@given(ANYTHING, st.integers(min_value=-5, max_value=5))
def test_count_accepts_exactly_the_ints_from_its_minimum(value, minimum):
    if type(value) is int and value >= minimum:
        assert arguments.count(value, name="n", minimum=minimum) == value
    else:
        with pytest.raises(InvalidParameterError, match="invalid n="):
            arguments.count(value, name="n", minimum=minimum)


def test_an_int_too_large_for_a_float_is_refused_not_an_overflow():
    with pytest.raises(InvalidParameterError, match="too large"):
        arguments.positive_finite(10**400, name="timeout")


def test_one_of_does_not_take_true_for_one_or_one_for_true():
    with pytest.raises(InvalidParameterError):
        arguments.one_of(True, name="x", choices=(1, 2))
    with pytest.raises(InvalidParameterError):
        arguments.one_of(1, name="x", choices=(True, None))
    assert arguments.one_of(None, name="x", choices=(None, "local")) is None


# --- the reproductions of the issue, one by one ----------------------------------------------


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: LocalGovernor(limit=NAN), "limit"),  # hung the first request
        (lambda: PlumClient(timeout=NAN), "timeout"),  # bare ValueError at the first request
        (lambda: PlumClient(fuse_url=b"https://fuse.example.com/api/"), "fuse_url"),
        (lambda: LocalGovernor(groups=[1, 2]), "groups"),  # AttributeError
        (lambda: RedisGovernor("x"), "client"),  # AttributeError
        (lambda: LocalGovernor(limit=True), "limit"),  # taken as 1
        (lambda: LocalGovernor(limit=150.0), "limit"),  # taken as a count
        (lambda: LocalGovernor(limit="150"), "limit"),  # taken as a count
        (lambda: PlumClient(max_retries=2.0), "max_retries"),
        (lambda: PlumSimulator(limit=True), "limit"),
        (lambda: Quota(limit=True), "limit"),
        (lambda: CallDataset(size=10.0), "size"),
    ],
)
def test_the_issue_reproductions_are_refused_at_construction(build, name):
    with pytest.raises(InvalidParameterError) as caught:
        build()
    assert caught.value.parameter == name


def test_nan_in_a_group_window_is_refused_naming_groups_and_the_group():
    with pytest.raises(InvalidParameterError, match=r"groups\['fuse'\] window") as caught:
        LocalGovernor(groups={"fuse": (10, NAN)})
    assert caught.value.parameter == "groups"


@pytest.mark.parametrize(
    "build",
    [
        lambda: LocalGovernor(limit=10, reserve=10),  # bulk would never be served
        lambda: LocalGovernor(limit=10, reserve=-1),
        lambda: LocalGovernor(reserve=20, groups={"fuse": (20, 60.0)}),  # the group's limit
    ],
)
def test_a_reserve_that_leaves_bulk_nothing_is_refused_naming_reserve(build):
    with pytest.raises(InvalidParameterError) as caught:
        build()
    assert caught.value.parameter == "reserve"


def test_the_authentication_group_keeps_no_reserve():
    """15 attempts per window: a reserve of 15 there would lock bulk clients out of logging in."""
    LocalGovernor(reserve=100)  # VOICETRENDS_AUTH's 15 per window is not checked against it


# --- PlumClient.from_env: each variable is named, a secret never shown -----------------------

ACCOUNT = {
    "PLUM_VOICETRENDS_TOOL": "fuseplus",
    "PLUM_VOICETRENDS_ACCOUNT_LOGIN": f"{SECRET}me@example.com",
    "PLUM_VOICETRENDS_ACCOUNT_PASSWORD": f"{SECRET}web-password",
}


def without(env: Mapping[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in env.items() if key != name}


ENV_ROWS: dict[str, tuple[dict[str, str], ...]] = {
    "PLUM_FUSE_EMAIL": ({"PLUM_FUSE_DEVELOPER_KEY": f"{SECRET}key"},),
    "PLUM_FUSE_DEVELOPER_KEY": ({"PLUM_FUSE_EMAIL": f"{SECRET}me@example.com"},),
    "PLUM_VOICETRENDS_LOGIN": ({"PLUM_VOICETRENDS_PASSWORD": f"{SECRET}pw"},),
    "PLUM_VOICETRENDS_PASSWORD": ({"PLUM_VOICETRENDS_LOGIN": f"{SECRET}login"},),
    "PLUM_VOICETRENDS_TOOL": (
        {**ACCOUNT, "PLUM_VOICETRENDS_TOOL": "fuse"},
        without(ACCOUNT, "PLUM_VOICETRENDS_TOOL"),
    ),
    "PLUM_VOICETRENDS_ACCOUNT_LOGIN": (without(ACCOUNT, "PLUM_VOICETRENDS_ACCOUNT_LOGIN"),),
    "PLUM_VOICETRENDS_ACCOUNT_PASSWORD": (without(ACCOUNT, "PLUM_VOICETRENDS_ACCOUNT_PASSWORD"),),
    "PLUM_FUSE_URL": (
        {"PLUM_FUSE_URL": "ftp://fuse.example.com/"},
        {"PLUM_FUSE_URL": f"http://fuse.example.com/{SECRET}token/"},
    ),
    "PLUM_VOICETRENDS_URL": ({"PLUM_VOICETRENDS_URL": f"https://u:{SECRET}pw@vt.example.com/"},),
    "PLUM_FORMAT": ({"PLUM_FORMAT": "yaml"}, {"PLUM_FORMAT": "JSON"}),
    "PLUM_REDIS_URL": (
        {"PLUM_REDIS_URL": f"http://:{SECRET}pw@127.0.0.1/"},
        {"PLUM_REDIS_URL": f"redis://:{SECRET}pw@127.0.0.1:notaport/0"},
    ),
}


@pytest.mark.parametrize(
    ("variable", "env"),
    [
        pytest.param(variable, env, id=f"{variable}-{index}")
        for variable, envs in ENV_ROWS.items()
        for index, env in enumerate(envs)
    ],
)
def test_from_env_names_the_bad_variable_and_never_shows_a_secret(variable, env):
    with pytest.raises(InvalidParameterError) as caught:
        PlumClient.from_env(env)
    assert caught.value.parameter == variable
    for value in env.values():
        if SECRET in value:
            assert value.removeprefix("http://") not in str(caught.value)
            assert SECRET not in str(caught.value)


def test_every_variable_from_env_reads_has_a_row():
    read = set(re.findall(r'"(PLUM_[A-Z_]+)"', inspect.getsource(PlumClient.from_env)))
    assert read == set(ENV_ROWS)


def test_a_keyword_overrides_a_bad_variable_instead_of_failing_on_it():
    client = PlumClient.from_env(
        {"PLUM_FORMAT": "yaml", "PLUM_FUSE_URL": "ftp://x/"},
        format="xml",
        fuse_url="https://fuse.example.com/api/",
    )
    assert client.format == "xml"
    assert client.fuse_url == "https://fuse.example.com/api/"
