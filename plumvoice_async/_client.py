"""``PlumClient``: settings, lifecycle, and the resources it exposes."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self

import httpx

from ._clock import Clock, SystemClock
from ._core import arguments
from ._core.bucket import PRIORITIES
from ._core.requests import (
    CALLER_PROFILE,
    DEFAULT_FUSE_URL,
    DEFAULT_VOICETRENDS_URL,
    DIAGNOSTIC_FLOW,
    PERFORMANCE,
    VOLUME,
    Api,
    QuotaGroup,
)
from ._credentials import Credentials, CredentialsProvider, MintedCredentials, VoiceTrendsLogin
from ._endpoints.call_details import CallDetails
from ._endpoints.calls import Calls
from ._endpoints.events import Events
from ._endpoints.reports import (
    DEFAULT_GEOGRAPHIC_RESOURCE,
    PeriodReport,
    RangeReport,
    geographic_location,
)
from ._errors import InvalidParameterError
from ._events import EventHook, Hooks
from ._governor import Governor, QuotaKey
from ._local_governor import LocalGovernor
from ._models import (
    CallerProfile,
    DiagnosticFlow,
    GeographicProfile,
    PerformanceReport,
    VolumeReport,
)
from ._telemetry import load as load_telemetry
from ._transport import Transport

if TYPE_CHECKING:  # imported when PLUM_REDIS_URL asks for it: most processes never need it
    from ._redis import RedisGovernor

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "PlumClient"]

Format = Literal["json", "xml"]

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""64 MiB: a 10,000-call page of ``all_logs`` with long logs stays far below it."""


class _Unset:
    """Strictly private: the type of ``UNSET``, an option ``with_options`` was not given."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


class PlumClient:
    """An async client for the Plum VoiceTrends and Fuse call-log APIs.

    Use it as ``async with PlumClient(...) as client:`` or call ``await client.aclose()``.
    Every request first takes a token from the ``governor`` (by default an in-process
    ``LocalGovernor`` with 150 requests per 900 s per quota group and account), so concurrent
    tasks sharing a client, or clients sharing a governor, never exceed the account's quota.

    Args:
        fuse_auth: ``(email, developer_key)`` for the Fuse call-log API (HTTP Basic).
        voicetrends_auth: ``(temporary_login, temporary_password)`` for VoiceTrends.
        voicetrends_login: a ``VoiceTrendsLogin`` (tool account) instead of
            ``voicetrends_auth``: the client mints the temporary pair itself at the first
            VoiceTrends request (one ``POST auth`` of the 15 allowed per 15 minutes), keeps it
            in memory only, shares it between tasks, and mints a new one once when a request
            answers 401 (then retries that request once).
        fuse_url: the Fuse base URL; ``https://``, or ``http://`` to loopback only.
        voicetrends_url: the VoiceTrends base URL, under the same rule.
        format: ``"json"`` or ``"xml"``: the ``Accept`` header sent and the decoder used.
        governor: the quota governor; share one between clients of the same account.
        http_client: an ``httpx.AsyncClient`` to reuse; it is not closed by this client.
        timeout: seconds for each HTTP attempt.
        max_retries: retries of transport errors and 5xx answers (429s wait for the reset
            and are retried without spending one).
        max_wait: seconds a request may wait for quota (and for another task's minting of
            VoiceTrends credentials); beyond it ``RateLimitError`` is raised at once, with no
            request sent. ``None`` waits as long as it takes.
        priority: ``"interactive"`` (a dashboard, a web handler) or ``"bulk"`` (an export):
            waiting interactive requests are served before waiting bulk ones, and only they
            may take the last ``reserve`` tokens of a window (``LocalGovernor(reserve=...)``).
            One client of each on a shared governor: ``client.with_options(priority="bulk")``.
        clock: the time source (tests inject ``plumvoice_async.testing.FakeClock``).
        geographic_resource: where the geographic report lives under ``voicetrends_url``.
            The docs say ``"profile"`` (``profile/{start}/{end}/{phone}``, the caller
            profile's prefix with one segment fewer: plum-api.md quirk 4), which may be a
            documentation error; one or more ``/``-separated segments move it.
        event_hooks: callables each called with every ``ClientEvent`` as it happens: an
            ``Answered`` attempt, a ``Retrying``, a ``QuotaWaited`` (with its length) and a
            ``RateLimited`` 429 (see ``_events``). They run in the event loop: keep them quick.
            They are called, never awaited: an ``async`` hook is refused.
        max_response_bytes: the largest body accepted, counted after decompression (64 MiB
            by default); a larger one raises ``DecodeError`` naming the cap, having read no
            more than the cap and one slice past it (a gzip bomb stops there).

    Raises:
        InvalidParameterError: a setting is invalid, named in the error (a ``ValueError``
            too): a plain-http URL to a non-loopback host, an unknown format, a credential
            pair that is not two non-empty strings (never echoed), both ``voicetrends_auth``
            and ``voicetrends_login``, a timeout that is not a finite number > 0, a count that
            is not an ``int``, a governor or clock without the protocol's methods, an
            ``async`` event hook...

    Attributes:
        events, volume, performance, caller_profile: the VoiceTrends reports grouped by
            period, each ``await x.fetch(start, end, period=..., phone=...)``.
        diagnostic_flow, geographic: the VoiceTrends reports over the whole range,
            ``await x.fetch(start, end, phone=...)``.
        calls, call_details: the Fuse call logs.
    """

    def __init__(
        self,
        *,
        fuse_auth: tuple[str, str] | None = None,
        voicetrends_auth: tuple[str, str] | None = None,
        voicetrends_login: VoiceTrendsLogin | None = None,
        fuse_url: str = DEFAULT_FUSE_URL,
        voicetrends_url: str = DEFAULT_VOICETRENDS_URL,
        format: Format = "json",
        governor: Governor | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float | httpx.Timeout = 30.0,
        max_retries: int = 3,
        max_wait: float | None = None,
        priority: str = "interactive",
        clock: Clock | None = None,
        geographic_resource: str = DEFAULT_GEOGRAPHIC_RESOURCE,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        event_hooks: Sequence[EventHook] = (),
    ) -> None:
        format = arguments.one_of(format, name="format", choices=("json", "xml"))
        timeout, max_retries, max_wait, priority = _request_settings(
            timeout, max_retries, max_wait, priority
        )
        governor = arguments.governor(governor, name="governor")
        if http_client is not None:
            arguments.instance(http_client, name="http_client", kind=httpx.AsyncClient)
        clock = arguments.clock(clock, name="clock")
        self.fuse_url = arguments.base_url(fuse_url, name="fuse_url")
        self.voicetrends_url = arguments.base_url(voicetrends_url, name="voicetrends_url")
        max_response_bytes = arguments.count(
            max_response_bytes, name="max_response_bytes", minimum=1
        )
        hooks = Hooks(arguments.callables(event_hooks, name="event_hooks"))
        self.format: Format = format
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.governor: Governor = (
            governor if governor is not None else LocalGovernor(clock=self.clock)
        )
        try:
            geographic_url, geographic = geographic_location(
                self.voicetrends_url, geographic_resource
            )
        except ValueError as exc:
            raise InvalidParameterError(
                "geographic_resource", geographic_resource, str(exc)
            ) from None
        self._credentials: dict[Api, CredentialsProvider | None] = {
            Api.FUSE: _credentials(fuse_auth, "fuse_auth"),
            Api.VOICETRENDS: self._voicetrends_credentials(voicetrends_auth, voicetrends_login),
        }
        self._owns_http = http_client is None
        self._owned_governor: RedisGovernor | None = None
        self._http = http_client if http_client is not None else httpx.AsyncClient()
        self._geographic = (geographic_url, geographic)
        self._attach(
            Transport(
                http=self._http,
                governor=self.governor,
                credentials=self._credentials,
                format=format,
                timeout=timeout,
                max_retries=max_retries,
                max_wait=max_wait,
                priority=priority,
                clock=self.clock,
                max_response_bytes=max_response_bytes,
                hooks=hooks,
                telemetry=load_telemetry(),
            )
        )

    def _attach(self, transport: Transport) -> None:
        """Bind the resources to ``transport``: every request of this client goes through it."""
        self._transport = transport
        vt_url = self.voicetrends_url
        geographic_url, geographic = self._geographic
        self.events = Events(transport, vt_url)
        self.volume = PeriodReport(transport, vt_url, VOLUME, VolumeReport)
        self.performance = PeriodReport(transport, vt_url, PERFORMANCE, PerformanceReport)
        self.caller_profile = PeriodReport(transport, vt_url, CALLER_PROFILE, CallerProfile)
        self.diagnostic_flow = RangeReport(transport, vt_url, DIAGNOSTIC_FLOW, DiagnosticFlow)
        self.geographic = RangeReport(transport, geographic_url, geographic, GeographicProfile)
        self.calls = Calls(transport, self.fuse_url)
        self.call_details = CallDetails(transport, self.fuse_url)

    def with_options(
        self,
        *,
        max_wait: float | _Unset | None = UNSET,
        timeout: float | httpx.Timeout | _Unset = UNSET,
        max_retries: int | _Unset = UNSET,
        priority: str | _Unset = UNSET,
    ) -> PlumClient:
        """This client with other per-request settings: for one call, or one part of a program.

        ``client.with_options(max_wait=2).calls.page(...)`` in a web handler,
        ``client.with_options(priority="bulk")`` in the nightly job: one process, one connection
        pool, one governor (so one quota), the same credentials. The new client differs only in
        what is given here, checked as the constructor checks it; it is closed when this one is,
        and closing it closes nothing this one uses.

        Raises:
            InvalidParameterError: a value is invalid (named in the error).
            TypeError: an option that ``with_options`` does not take.
        """
        current = self._transport
        settings = _request_settings(
            current.timeout if isinstance(timeout, _Unset) else timeout,
            current.max_retries if isinstance(max_retries, _Unset) else max_retries,
            current.max_wait if isinstance(max_wait, _Unset) else max_wait,
            current.priority if isinstance(priority, _Unset) else priority,
        )
        child = copy.copy(self)
        child._owns_http = False
        child._owned_governor = None
        timeout_, max_retries_, max_wait_, priority_ = settings
        child._attach(
            current.with_settings(
                timeout=timeout_, max_retries=max_retries_, max_wait=max_wait_, priority=priority_
            )
        )
        return child

    def _voicetrends_credentials(
        self, pair: tuple[str, str] | None, login: VoiceTrendsLogin | None
    ) -> CredentialsProvider | None:
        if login is None:
            return _credentials(pair, "voicetrends_auth")
        if pair is not None:
            raise InvalidParameterError(
                "voicetrends_login",
                arguments.REDACTED,
                "pass voicetrends_auth (a temporary pair) or voicetrends_login (to mint one), "
                "not both",
            )
        arguments.instance(login, name="voicetrends_login", kind=VoiceTrendsLogin, secret=True)
        return MintedCredentials(login, base_url=self.voicetrends_url, clock=self.clock)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> PlumClient:
        """Build a client from ``PLUM_*`` environment variables; keyword arguments override them.

        Reads ``PLUM_FUSE_EMAIL`` and ``PLUM_FUSE_DEVELOPER_KEY`` (Fuse), ``PLUM_VOICETRENDS_LOGIN``
        and ``PLUM_VOICETRENDS_PASSWORD`` (VoiceTrends temporary credentials), or instead
        ``PLUM_VOICETRENDS_TOOL``, ``PLUM_VOICETRENDS_ACCOUNT_LOGIN`` and
        ``PLUM_VOICETRENDS_ACCOUNT_PASSWORD`` (a tool account to mint them from),
        ``PLUM_FUSE_URL``, ``PLUM_VOICETRENDS_URL`` and ``PLUM_FORMAT``. A group with only some
        of its variables set is an error naming a missing one. A ``voicetrends_auth`` or
        ``voicetrends_login`` keyword replaces both VoiceTrends settings read from the
        environment. ``PLUM_REDIS_URL`` makes the governor a ``RedisGovernor`` on that Redis
        (one quota shared by every process and host using it), unless a ``governor`` keyword
        is given.

        Raises:
            InvalidParameterError: a variable is invalid (named, its value never shown when it
                may hold a secret): a half-set credential group, an unknown tool, URL or
                format; or a keyword is (as for the constructor); or both VoiceTrends groups
                are set.
            ImportError: ``PLUM_REDIS_URL`` is set but the ``redis`` extra is not installed.
        """
        env = os.environ if environ is None else environ
        settings: dict[str, object] = {
            "fuse_auth": _env_group(env, "PLUM_FUSE_EMAIL", "PLUM_FUSE_DEVELOPER_KEY"),
        }
        if "voicetrends_auth" not in overrides and "voicetrends_login" not in overrides:
            settings["voicetrends_auth"] = _env_group(
                env, "PLUM_VOICETRENDS_LOGIN", "PLUM_VOICETRENDS_PASSWORD"
            )
            account = _env_group(
                env,
                "PLUM_VOICETRENDS_TOOL",
                "PLUM_VOICETRENDS_ACCOUNT_LOGIN",
                "PLUM_VOICETRENDS_ACCOUNT_PASSWORD",
            )
            if account is not None:
                with _variable("PLUM_VOICETRENDS_TOOL"):
                    settings["voicetrends_login"] = VoiceTrendsLogin(*account)
        for variable, setting in (
            ("PLUM_FUSE_URL", "fuse_url"),
            ("PLUM_VOICETRENDS_URL", "voicetrends_url"),
        ):
            if env.get(variable) and setting not in overrides:
                settings[setting] = arguments.base_url(env[variable], name=variable)
        if env.get("PLUM_FORMAT") and "format" not in overrides:
            settings["format"] = arguments.one_of(
                env["PLUM_FORMAT"], name="PLUM_FORMAT", choices=("json", "xml")
            )
        redis_governor = None
        if env.get("PLUM_REDIS_URL") and "governor" not in overrides:
            from ._redis import RedisGovernor

            with _variable("PLUM_REDIS_URL"):
                redis_governor = RedisGovernor.from_url(env["PLUM_REDIS_URL"])
            settings["governor"] = redis_governor
        settings.update(overrides)
        client = cls(**settings)  # type: ignore[arg-type]
        if redis_governor is not None:
            client._owned_governor = redis_governor  # its connections close with the client
        return client

    def quota_key(self, group: QuotaGroup | str) -> QuotaKey | None:
        """This client's bucket for ``group`` (``"fuse"``, ``"voicetrends"``...), for
        ``governor.snapshot``; ``None`` when that API has no credentials configured."""
        quota_group = QuotaGroup(group)
        source = self._credentials[quota_group.api]
        return None if source is None else QuotaKey(quota_group.value, source.account)

    async def aclose(self) -> None:
        """Close what this client created: its HTTP client (an injected one is left open) and
        the ``RedisGovernor`` that ``from_env`` built from ``PLUM_REDIS_URL``."""
        self._transport.lifetime.close()
        if self._owns_http:
            await self._http.aclose()
        if self._owned_governor is not None:
            await self._owned_governor.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        configured = [api.value for api, source in self._credentials.items() if source is not None]
        return (
            f"PlumClient(fuse_url={self.fuse_url!r}, voicetrends_url={self.voicetrends_url!r}, "
            f"format={self.format!r}, credentials={configured!r}, governor={self.governor!r})"
        )


def _request_settings(
    timeout: object, max_retries: object, max_wait: object, priority: object
) -> tuple[float | httpx.Timeout, int, float | None, str]:
    """The per-request settings, checked: for the constructor and ``with_options`` alike."""
    if isinstance(timeout, httpx.Timeout):
        _httpx_timeout(timeout)
    else:
        timeout = arguments.positive_finite(timeout, name="timeout")
    retries = arguments.count(max_retries, name="max_retries", minimum=0)
    wait = None if max_wait is None else arguments.non_negative_finite(max_wait, name="max_wait")
    return timeout, retries, wait, arguments.one_of(priority, name="priority", choices=PRIORITIES)


def _httpx_timeout(timeout: httpx.Timeout) -> None:
    """Each phase of an ``httpx.Timeout`` is ``None`` (unbounded) or a finite number > 0: httpx
    checks none of them, and a bad one would fail every attempt after spending its quota."""
    for phase in ("connect", "read", "write", "pool"):
        value = getattr(timeout, phase)
        if value is None:
            continue
        try:
            arguments.positive_finite(value, name="timeout")
        except InvalidParameterError as exc:
            raise InvalidParameterError("timeout", timeout, f"{phase}: {exc.reason}") from None


def _credentials(pair: object, name: str) -> Credentials | None:
    if pair is None:
        return None
    login, password = arguments.secret_tuple(pair, name=name, size=2)
    return Credentials(login, password)


def _env_group(env: Mapping[str, str], *variables: str) -> tuple[str, ...] | None:
    """The values of variables that go together: all set, or none (``None``)."""
    values = tuple(env.get(variable, "") for variable in variables)
    if not any(values):
        return None
    for variable, value in zip(variables, values, strict=True):
        if not value:
            # Name the missing variable, never the values of the others: they are credentials.
            raise InvalidParameterError(variable, value, "not set, while the rest of its group is")
    return values


@contextmanager
def _variable(variable: str) -> Iterator[None]:
    """Name the environment variable, not the keyword, in an error about its value.

    The value an error carries is already redacted when it may be a secret (URLs, logins).
    """
    try:
        yield
    except InvalidParameterError as exc:
        raise InvalidParameterError(variable, exc.value, exc.reason) from None
