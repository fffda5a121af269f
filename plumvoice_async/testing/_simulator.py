"""``PlumSimulator``: an in-process fake of the Plum APIs, as a plain ASGI app.

It serves the paths of ``_routes`` from a ``CallDataset``, in JSON or XML by ``Accept``
(``application/xml`` selects XML, anything else JSON; plum-api.md 1.1, 2.1), reading requests
with ``_request_parsing``. At ``POST /api/auth`` (plum-api.md 1.2), a form-encoded ``tool``,
``login`` and ``password`` of a tool account mints a temporary pair, two 32-character lowercase
hex strings, accepted by the reports until it has been idle for ``temporary_credentials_ttl``
seconds (24 hours, as documented) or ``expire_temporary_credentials()`` is called.

Each request passes these checks in order (the order is the simulator's choice):

1. route and method: an unknown path is 404; a wrong method is 405 with the documented text
   (VoiceTrends says "only POST allowed" although its reports are GET: quirk 1, plum-api.md 5);
2. HTTP Basic against the API's accounts, or a live minted pair for VoiceTrends: 401
   otherwise, with no quota headers, since the account is unknown. ``auth`` takes no Basic
   header: its account is the form's tool ``login``;
3. the quota of ``(group, account)``: windows are aligned to the epoch, so
   ``X-RateLimit-Reset`` is the next multiple of the window (plum-api.md 1.3 [INFER]); once the
   window is spent the answer is 429, which does not count further. A minted pair spends the
   quota of the tool login it was minted from ("per authenticated account", plum-api.md 1.3),
   so minting anew does not refill it; ``auth`` has its own quota per tool login, 15 per 900 s;
4. faults, on admitted requests only (so a faulted request was counted, like any request the
   server received);
5. the parameters (400 ``{"error": "Invalid start parameter."}`` and the like; for ``auth``,
   a body that is not form-encoded or a bad ``tool`` is 400 and a wrong login 401), then the
   answer.

Every answer carries a ``Date`` from the simulator's clock; every admitted one and every 429
also carries the ``X-RateLimit-*`` headers of its quota, unless that quota is configured
without headers (or with no quota at all, as Fuse documents none: plum-api.md 2.1).
"""

from __future__ import annotations

import inspect
import math
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from email.utils import formatdate
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import attrs
import httpx

from .._client import PlumClient
from .._clock import Clock, SystemClock
from .._core import arguments
from .._core.requests import Api, QuotaGroup
from .._credentials import TOOLS, VoiceTrendsLogin
from .._errors import InvalidParameterError
from .._governor import account_hash
from .._models import CallPage, DetailedCallPage, TemporaryCredentials
from . import _request_parsing as parsing
from ._dataset import CallDataset
from ._faults import FaultPlan, SimRequest, SimulatedConnectionDrop
from ._render import MEDIA_TYPES, render, render_error
from ._request_parsing import Format, Message, Receive, Rejected, Scope
from ._routes import PERIOD_REPORTS, RANGE_REPORTS, ROUTES, WRONG_METHOD, Route

__all__ = ["LoggedRequest", "PlumSimulator", "Quota"]

Send = Callable[[Message], Awaitable[None]]
PageHook = Callable[[int, int], Awaitable[None] | None]

_HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Service Unavailable</title></head>"
    b"<body><h1>Down for maintenance</h1><p>Please try again later.</p></body></html>"
)


@attrs.frozen
class Quota:
    """One quota group's rule: ``limit`` requests per clock-aligned ``window`` seconds.

    ``headers=False`` keeps counting and answering 429 but sends no ``X-RateLimit-*``
    headers, to exercise a client's path for a server that sends none.
    """

    limit: int = attrs.field(default=150, validator=lambda _, a, v: _positive_count(a, v))
    window: int = attrs.field(default=900, validator=lambda _, a, v: _positive_count(a, v))
    headers: bool = attrs.field(
        default=True, validator=lambda _, a, v: arguments.instance(v, name=a.name, kind=bool)
    )


def _positive_count(attribute: attrs.Attribute[Any], value: object) -> None:
    arguments.count(value, name=attribute.name, minimum=1)


@attrs.frozen
class LoggedRequest:
    """One request as the simulator saw it; ``account`` is ``account_hash(login)``.

    ``counted`` says whether it spent quota (everything authenticated and admitted, whatever
    its status); ``fault`` names the fault applied to it, if any.
    """

    time: float
    method: str
    path: str
    status: int
    group: QuotaGroup | None
    account: str | None
    counted: bool
    fault: str | None = None


@attrs.define
class _Response:
    """Strictly private: an answer, and whether to cut it mid-body."""

    status: int
    body: bytes
    content_type: str
    headers: list[tuple[str, str]] = attrs.field(factory=list)
    drop: bool = False

    async def send(self, send: Send) -> None:
        headers = [
            (b"content-type", self.content_type.encode()),
            (b"content-length", str(len(self.body)).encode()),
            *((name.encode(), value.encode()) for name, value in self.headers),
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        if self.drop:
            await send(
                {
                    "type": "http.response.body",
                    "body": self.body[: len(self.body) // 2],
                    "more_body": True,
                }
            )
            raise SimulatedConnectionDrop("simulated fault: connection dropped mid-response")
        await send({"type": "http.response.body", "body": self.body})


@attrs.define
class _Minted:
    """Strictly private: a live temporary pair, the tool login it spends, and its last use."""

    password: str
    owner: str
    last_used: float


def _quotas(value: object) -> dict[str, Quota | None]:
    """``quotas``: a mapping of ``QuotaGroup`` value to a ``Quota`` or ``None``."""
    known = tuple(group.value for group in QuotaGroup)
    if not isinstance(value, Mapping):
        raise InvalidParameterError(
            "quotas", value, f"expected a mapping, got {type(value).__name__}"
        )
    for group, quota in value.items():
        if not (isinstance(group, str) and group in known):
            raise InvalidParameterError(
                "quotas", value, f"unknown group {group!r}: expected one of {', '.join(known)}"
            )
        if quota is not None and not isinstance(quota, Quota):
            raise InvalidParameterError(
                "quotas", value, f"quotas[{group!r}] must be a Quota or None"
            )
    return dict(value)


def _accounts(value: object, *, name: str, size: int) -> list[Any]:
    """At least one tuple of ``size`` non-empty strings (accounts: never echoed), as a list:
    an iterator is read once, here."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        reason = f"expected an iterable of {size}-tuples, got {type(value).__name__}"
        raise InvalidParameterError(name, arguments.REDACTED, reason)
    accounts = [arguments.secret_tuple(item, name=name, size=size) for item in value]
    if not accounts:
        raise InvalidParameterError(name, arguments.REDACTED, "each API needs at least one account")
    return accounts


class PlumSimulator:
    """An ASGI app faking the Plum VoiceTrends and Fuse APIs, for tests.

    Use it in process with ``httpx.AsyncClient(transport=sim.transport(),
    base_url=sim.BASE_URL)``, or on loopback with ``plumvoice_async.testing.serve(sim)``.

    Args:
        dataset: the calls served. By default, seed 0 and 10,000 calls 30 s apart from
            four days before the clock's current UTC day, so they all lie in the last 5 days.
        clock: ``time()`` stamps quotas, ``Date`` and the request log; ``sleep`` serves latency
            faults. A ``FakeClock`` makes both deterministic; the system clock by default.
        limit: requests per window of the data groups (150 by default); ``auth`` keeps its
            documented 15 per 900 s unless ``quotas`` says otherwise.
        window: the data groups' window in seconds (900 by default).
        quotas: per-group overrides by group name (``"voicetrends"``, ``"fuse"``,
            ``"voicetrends-auth"``), such as ``{"fuse": Quota(limit=10, window=60)}``;
            ``None`` means no quota and no headers for that group (Fuse documents none,
            plum-api.md 2.1).
        fuse_accounts: the accepted Fuse ``(login, password)`` pairs; each login has its own
            quotas.
        voicetrends_accounts: the accepted VoiceTrends ``(login, password)`` pairs, likewise.
        voicetrends_logins: the tool accounts ``auth`` mints pairs for, as
            ``(tool, login, password)``.
        temporary_credentials_ttl: seconds a minted pair lives after its last use.
        fault_seed: seeds the RNG of probabilistic faults, and of the minted pairs.

    Attributes:
        requests: the ``LoggedRequest`` of every request, in arrival order.
        faults: the ``FaultPlan``.
        on_page: called with ``(offset, limit)`` before each calls/all_logs page is built (it
            may be async), so a test can mutate ``dataset`` at an exact moment.
    """

    FUSE_AUTH = ("sim@example.com", "sim-developer-key")
    VOICETRENDS_AUTH = ("sim-temp-login", "sim-temp-password")
    VOICETRENDS_LOGIN = ("fuseplus", "sim@example.com", "sim-web-password")
    BASE_URL = "http://127.0.0.1/api/"
    """A base URL for ``transport()``: the host is never contacted, and loopback ``http``
    passes ``PlumClient``'s https rule."""

    def __init__(
        self,
        dataset: CallDataset | None = None,
        *,
        clock: Clock | None = None,
        limit: int = 150,
        window: int = 900,
        quotas: Mapping[str, Quota | None] | None = None,
        fuse_accounts: Iterable[tuple[str, str]] = (FUSE_AUTH,),
        voicetrends_accounts: Iterable[tuple[str, str]] = (VOICETRENDS_AUTH,),
        voicetrends_logins: Iterable[tuple[str, str, str]] = (VOICETRENDS_LOGIN,),
        temporary_credentials_ttl: float = 86_400.0,
        fault_seed: int = 0,
    ) -> None:
        if dataset is not None:
            arguments.instance(dataset, name="dataset", kind=CallDataset)
        clock = arguments.clock(clock, name="clock")
        limit = arguments.count(limit, name="limit", minimum=1)
        window = arguments.count(window, name="window", minimum=1)
        quotas = None if quotas is None else _quotas(quotas)
        fuse_accounts = _accounts(fuse_accounts, name="fuse_accounts", size=2)
        voicetrends_accounts = _accounts(voicetrends_accounts, name="voicetrends_accounts", size=2)
        voicetrends_logins = _accounts(voicetrends_logins, name="voicetrends_logins", size=3)
        if any(tool not in TOOLS for tool, _, _ in voicetrends_logins):
            reason = f"a VoiceTrends login's tool must be one of {', '.join(TOOLS)}"
            raise InvalidParameterError("voicetrends_logins", arguments.REDACTED, reason)
        temporary_credentials_ttl = arguments.positive_finite(
            temporary_credentials_ttl, name="temporary_credentials_ttl"
        )
        fault_seed = arguments.count(fault_seed, name="fault_seed")
        self.clock: Clock = clock if clock is not None else SystemClock()
        if dataset is None:
            # Four days before the clock's UTC midnight: every default call is in the 5-day
            # window of the detailed logs (plum-api.md 2.3), by the real clock or a FakeClock.
            today = math.floor(self.clock.time() / 86_400) * 86_400
            dataset = CallDataset(start=today - 4 * 86_400)
        self.dataset = dataset
        default = Quota(limit, window)
        self.quotas: dict[str, Quota | None] = {
            QuotaGroup.VOICETRENDS: default,
            QuotaGroup.FUSE: default,
            QuotaGroup.VOICETRENDS_AUTH: Quota(15, 900),  # plum-api.md 1.2
            **(quotas or {}),
        }
        self._accounts = {
            Api.FUSE: dict(fuse_accounts),
            Api.VOICETRENDS: dict(voicetrends_accounts),
        }
        self._logins = {(tool, login): password for tool, login, password in voicetrends_logins}
        self.temporary_credentials_ttl = temporary_credentials_ttl
        self._minted: dict[str, _Minted] = {}
        # Deterministic pairs for reproducible tests; nothing here guards a real secret.
        self._mint_rng = random.Random(f"temporary-credentials-{fault_seed}")  # noqa: S311
        self._windows: dict[tuple[QuotaGroup, str], tuple[int, int]] = {}
        self.requests: list[LoggedRequest] = []
        self.faults = FaultPlan(fault_seed)
        self.on_page: PageHook | None = None

    def __repr__(self) -> str:
        return (
            f"PlumSimulator({self.dataset!r}, requests={len(self.requests)}, "
            f"faults={len(list(self.faults))})"
        )

    @property
    def fuse_auth(self) -> tuple[str, str]:
        """The first Fuse account, ready for ``PlumClient(fuse_auth=...)``."""
        return next(iter(self._accounts[Api.FUSE].items()))

    @property
    def voicetrends_auth(self) -> tuple[str, str]:
        """The first VoiceTrends account, ready for ``PlumClient(voicetrends_auth=...)``."""
        return next(iter(self._accounts[Api.VOICETRENDS].items()))

    @property
    def voicetrends_login(self) -> VoiceTrendsLogin:
        """The first tool account, ready for ``PlumClient(voicetrends_login=...)``."""
        (tool, login), password = next(iter(self._logins.items()))
        return VoiceTrendsLogin(tool=tool, login=login, password=password)

    def expire_temporary_credentials(self) -> None:
        """Forget every minted pair, as if each had been idle for 24 hours (plum-api.md 1.2)."""
        self._minted.clear()

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport that sends requests to this app in process."""
        return httpx.ASGITransport(app=self)

    def client(self, **settings: Any) -> PlumClient:
        """A ``PlumClient`` wired to this simulator in process; ``settings`` override.

        It uses the simulator's accounts, base URL and clock (so a ``FakeClock`` drives both
        sides), and closes its in-process HTTP client when it is closed. With
        ``voicetrends_login=sim.voicetrends_login`` it mints its VoiceTrends pair at ``auth``
        instead of using the fixed ``voicetrends_auth``.
        """
        settings.setdefault("fuse_auth", self.fuse_auth)
        if "voicetrends_login" not in settings:
            settings.setdefault("voicetrends_auth", self.voicetrends_auth)
        settings.setdefault("fuse_url", self.BASE_URL)
        settings.setdefault("voicetrends_url", self.BASE_URL)
        settings.setdefault("clock", self.clock)
        owns_http = "http_client" not in settings
        settings.setdefault("http_client", httpx.AsyncClient(transport=self.transport()))
        client = PlumClient(**settings)
        client._owns_http = owns_http  # the HTTP client made here is the PlumClient's to close
        return client

    # --- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"the simulator serves HTTP only, not {scope['type']!r}")
        response, entry = await self._answer(scope, receive)
        self.requests.append(entry)
        # RFC 7231 Date, from the simulator's clock at answer time: a FakeClock sets it.
        response.headers.append(("date", formatdate(math.floor(self.clock.time()), usegmt=True)))
        await response.send(send)

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[_Response, LoggedRequest]:
        method = str(scope["method"]).upper()
        path = str(scope["path"])
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", [])
        }
        fmt = parsing.negotiate(headers.get("accept", ""))
        now = self.clock.time()

        def log(status: int, **fields: Any) -> LoggedRequest:
            return LoggedRequest(now, method, path, status, **fields)

        resource, arguments = parsing.split_path(scope)
        route = ROUTES.get((resource, len(arguments)))
        if route is None:
            response = self._error(404, "not found", fmt)
            return response, log(404, group=None, account=None, counted=False)
        if method != route.method:
            allow = [("allow", route.method)]
            response = self._error(405, WRONG_METHOD[route.api], fmt, allow)
            return response, log(405, group=route.group, account=None, counted=False)
        form: Mapping[str, str] | None = None
        if route.kind == "auth":
            # plum-api.md 1.2: no Basic header; the quota is the form's tool login's.
            form = await parsing.read_form(receive, headers.get("content-type", ""))
            login: str | None = (form or {}).get("login", "")
        else:
            login = self._authenticate(route.api, headers.get("authorization"), now)
        if login is None:
            # plum-api.md 1.3: every answer carries the quota headers. A refused login spends
            # nothing; the headers show the quota of the login it named, if it named one.
            claimed = parsing.basic_credentials(headers.get("authorization"))
            shown = (
                []
                if claimed is None
                else self._quota_headers(route.group, account_hash(claimed[0]), now)
            )
            response = self._error(401, "invalid credentials or inactive account", fmt, shown)
            return response, log(401, group=route.group, account=None, counted=False)
        account = account_hash(login)
        admitted, quota_headers = self._admit(route.group, account, now)
        if not admitted:
            response = self._error(429, "rate limit exceeded", fmt, quota_headers)
            return response, log(429, group=route.group, account=account, counted=False)

        pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        query = dict(reversed(pairs))  # a repeated parameter: the first one counts
        delay, fault = self.faults._select(SimRequest(method, path, query, route.group, account))
        if delay > 0:
            await self.clock.sleep(delay)
        if fault is not None and fault.kind == "status":
            message = "unknown error" if fault.status == 500 else HTTPStatus(fault.status).phrase
            response = self._error(fault.status, message, fmt, quota_headers)
        elif fault is not None and fault.kind == "malformed" and fault.body == "html":
            response = _Response(200, _HTML_PAGE, "text/html; charset=utf-8", [*quota_headers])
        else:
            response = await self._resource(route, arguments, query, form, now=now, fmt=fmt)
            response.headers += quota_headers
            if fault is not None and fault.kind == "drop":
                response.drop = True
            elif fault is not None:  # a truncated body: a complete message, a broken document
                response.body = response.body[: len(response.body) // 2]
        entry = log(
            response.status,
            group=route.group,
            account=account,
            counted=True,
            fault=None if fault is None else fault.kind,
        )
        return response, entry

    def _error(
        self, status: int, message: str, fmt: Format, headers: Iterable[tuple[str, str]] = ()
    ) -> _Response:
        return _Response(status, render_error(message, fmt), MEDIA_TYPES[fmt], [*headers])

    def _authenticate(self, api: Api, header: str | None, now: float) -> str | None:
        """The login whose quota valid HTTP Basic credentials for ``api`` spend, else ``None``.

        A live minted pair spends its tool login's quota, and its use keeps it alive for
        another ``temporary_credentials_ttl`` (plum-api.md 1.2: expiry 24 h after last use).
        """
        pair = parsing.basic_credentials(header)
        if pair is None:
            return None
        login, password = pair
        expected = self._accounts[api].get(login)
        if expected is not None:
            return login if parsing.same(password, expected) else None
        minted = self._minted.get(login) if api is Api.VOICETRENDS else None
        if minted is None or not parsing.same(password, minted.password):
            return None
        if now - minted.last_used >= self.temporary_credentials_ttl:
            del self._minted[login]
            return None
        minted.last_used = now
        return minted.owner

    def _admit(
        self, group: QuotaGroup, account: str, now: float
    ) -> tuple[bool, list[tuple[str, str]]]:
        """Count a request against its quota: whether it is admitted, and the quota headers."""
        quota = self.quotas.get(group)
        if quota is None:
            return True, []
        window = math.floor(now / quota.window)
        current, used = self._windows.get((group, account), (window, 0))
        if current != window:
            used = 0
        admitted = used < quota.limit
        if admitted:
            used += 1
            self._windows[group, account] = (window, used)
        return admitted, self._quota_headers(group, account, now)

    def _quota_headers(self, group: QuotaGroup, account: str, now: float) -> list[tuple[str, str]]:
        """The ``X-RateLimit-*`` headers of ``account``'s quota of ``group`` as it stands."""
        quota = self.quotas.get(group)
        if quota is None or not quota.headers:
            return []
        window = math.floor(now / quota.window)
        current, used = self._windows.get((group, account), (window, 0))
        if current != window:
            used = 0
        return [
            ("x-ratelimit-limit", str(quota.limit)),
            ("x-ratelimit-remaining", str(quota.limit - used)),
            ("x-ratelimit-reset", str((window + 1) * quota.window)),
        ]

    # --- Resources ------------------------------------------------------------------------

    async def _resource(
        self,
        route: Route,
        arguments: list[str],
        query: Mapping[str, str],
        form: Mapping[str, str] | None,
        *,
        now: float,
        fmt: Format,
    ) -> _Response:
        try:
            document = await self._document(route, arguments, query, form, now)
        except Rejected as rejected:
            return self._error(rejected.status, rejected.message, fmt)
        return _Response(200, render(document, fmt), MEDIA_TYPES[fmt])

    async def _document(
        self,
        route: Route,
        arguments: list[str],
        query: Mapping[str, str],
        form: Mapping[str, str] | None,
        now: float,
    ) -> Any:
        """What the route answers, as a model for ``render``; ``Rejected`` for a 4xx."""
        if route.kind in PERIOD_REPORTS:
            start, end, period_text, phone = arguments
            first, last = parsing.report_range(start, end)
            period = parsing.report_period(period_text)
            report = PERIOD_REPORTS[route.kind]
            return report(self.dataset, first, last, period, parsing.report_phone(phone))
        if route.kind in RANGE_REPORTS:
            start, end, phone = arguments
            first, last = parsing.report_range(start, end)
            return RANGE_REPORTS[route.kind](self.dataset, first, last, parsing.report_phone(phone))
        if route.kind == "auth":
            return self._mint(form, now)
        if route.kind == "call":
            return self._call_log(arguments[0])
        return await self._page(route.kind, arguments[0], arguments[1], query)

    def _mint(self, form: Mapping[str, str] | None, now: float) -> TemporaryCredentials:
        """A new temporary pair for the form's tool account (plum-api.md 1.2)."""
        tool, login, password = parsing.auth_form(form)
        expected = self._logins.get((tool, login))
        if expected is None or not parsing.same(password, expected):
            raise Rejected(401, "invalid credentials or inactive account")
        pair = TemporaryCredentials(self._hex32(), self._hex32())
        self._minted[pair.login] = _Minted(pair.password, login, now)
        return pair

    def _hex32(self) -> str:
        # plum-api.md 1.2 [INFER]: the documented pairs are 32-character lowercase hex.
        return f"{self._mint_rng.getrandbits(128):032x}"

    def _call_log(self, session_id: str) -> Any:
        detail = self.dataset.details(session_id)
        if detail is None:
            raise Rejected(404, "call log not found")
        return detail

    async def _page(self, resource: str, start: str, end: str, query: Mapping[str, str]) -> Any:
        first, last, number, limit, offset = parsing.page_arguments(start, end, query)
        if self.on_page is not None:
            pending = self.on_page(offset, limit)
            if inspect.isawaitable(pending):
                await pending
        total = self.dataset.count(first, last, number)
        if resource == "calls":
            calls = self.dataset.page(first, last, number, offset=offset, limit=limit)
            return CallPage(calls=calls, total_calls=total)
        rows = self.dataset.detailed_page(first, last, number, offset=offset, limit=limit)
        return DetailedCallPage(calls=rows, total_calls=total)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
