"""``PlumClient``: settings, lifecycle, and the resources it exposes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Literal, Self

import httpx

from ._clock import Clock, SystemClock
from ._core.requests import (
    CALLER_PROFILE,
    DEFAULT_FUSE_URL,
    DEFAULT_VOICETRENDS_URL,
    DIAGNOSTIC_FLOW,
    PERFORMANCE,
    VOLUME,
    Api,
    QuotaGroup,
    normalise_base_url,
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
from ._governor import Governor, QuotaKey
from ._local_governor import LocalGovernor
from ._models import (
    CallerProfile,
    DiagnosticFlow,
    GeographicProfile,
    PerformanceReport,
    VolumeReport,
)
from ._redis import RedisGovernor
from ._transport import Transport

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "PlumClient"]

Format = Literal["json", "xml"]

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""64 MiB: a 10,000-call page of ``all_logs`` with long logs stays far below it."""


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
        fuse_url, voicetrends_url: base URLs; ``https://``, or ``http://`` to loopback only.
        format: ``"json"`` or ``"xml"``: the ``Accept`` header sent and the decoder used.
        governor: the quota governor; share one between clients of the same account.
        http_client: an ``httpx.AsyncClient`` to reuse; it is not closed by this client.
        timeout: seconds for each HTTP attempt.
        max_retries: retries of transport errors and 5xx answers (429s wait for the reset
            and are retried without spending one).
        max_wait: seconds a request may wait for quota; beyond it ``RateLimitError`` is
            raised at once, with no request sent. ``None`` waits as long as it takes.
        clock: the time source (tests inject ``plumvoice_async.testing.FakeClock``).
        geographic_resource: where the geographic report lives under ``voicetrends_url``.
            The docs say ``"profile"`` (``profile/{start}/{end}/{phone}``, the caller
            profile's prefix with one segment fewer: plum-api.md quirk 4), which may be a
            documentation error; one or more ``/``-separated segments move it.
        max_response_bytes: the largest body accepted, counted after decompression (64 MiB
            by default); a larger one raises ``DecodeError`` naming the cap, having read no
            more than the cap and one slice past it (a gzip bomb stops there).

    Raises:
        ValueError: a setting is invalid (a plain-http URL to a non-loopback host, an unknown
            format, a credential pair that is not two non-empty strings, both
            ``voicetrends_auth`` and ``voicetrends_login``...).

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
        timeout: float = 30.0,
        max_retries: int = 3,
        max_wait: float | None = None,
        clock: Clock | None = None,
        geographic_resource: str = DEFAULT_GEOGRAPHIC_RESOURCE,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if format not in ("json", "xml"):
            raise ValueError(f"format must be 'json' or 'xml', got {format!r}")
        if not _is_number(timeout) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if not _is_int(max_retries) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if max_wait is not None and (not _is_number(max_wait) or max_wait < 0):
            raise ValueError(f"max_wait must be None or seconds >= 0, got {max_wait!r}")
        if not _is_int(max_response_bytes) or max_response_bytes < 1:
            raise InvalidParameterError(
                "max_response_bytes", max_response_bytes, "must be a positive int (bytes)"
            )
        self.fuse_url = normalise_base_url(fuse_url, name="fuse_url")
        self.voicetrends_url = normalise_base_url(voicetrends_url, name="voicetrends_url")
        self.format: Format = format
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.governor: Governor = (
            governor if governor is not None else LocalGovernor(clock=self.clock)
        )
        geographic_url, geographic = geographic_location(self.voicetrends_url, geographic_resource)
        self._credentials: dict[Api, CredentialsProvider | None] = {
            Api.FUSE: _credentials(fuse_auth, "fuse_auth"),
            Api.VOICETRENDS: self._voicetrends_credentials(voicetrends_auth, voicetrends_login),
        }
        self._owns_http = http_client is None
        self._owned_governor: RedisGovernor | None = None
        self._http = http_client if http_client is not None else httpx.AsyncClient()
        transport = Transport(
            http=self._http,
            governor=self.governor,
            credentials=self._credentials,
            format=format,
            timeout=float(timeout),
            max_retries=max_retries,
            max_wait=max_wait,
            clock=self.clock,
            max_response_bytes=max_response_bytes,
        )
        vt_url = self.voicetrends_url
        self.events = Events(transport, vt_url)
        self.volume = PeriodReport(transport, vt_url, VOLUME, VolumeReport)
        self.performance = PeriodReport(transport, vt_url, PERFORMANCE, PerformanceReport)
        self.caller_profile = PeriodReport(transport, vt_url, CALLER_PROFILE, CallerProfile)
        self.diagnostic_flow = RangeReport(transport, vt_url, DIAGNOSTIC_FLOW, DiagnosticFlow)
        self.geographic = RangeReport(transport, geographic_url, geographic, GeographicProfile)
        self.calls = Calls(transport, self.fuse_url)
        self.call_details = CallDetails(transport, self.fuse_url)

    def _voicetrends_credentials(
        self, pair: tuple[str, str] | None, login: VoiceTrendsLogin | None
    ) -> CredentialsProvider | None:
        if login is None:
            return _credentials(pair, "voicetrends_auth")
        if pair is not None:
            raise ValueError(
                "pass voicetrends_auth (a temporary pair) or voicetrends_login (to mint one), "
                "not both"
            )
        if not isinstance(login, VoiceTrendsLogin):
            # A ValueError, as for every other setting, rather than a TypeError.
            raise ValueError("voicetrends_login must be a VoiceTrendsLogin")  # noqa: TRY004
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
            InvalidParameterError: ``PLUM_VOICETRENDS_TOOL`` is not a known tool.
            ValueError: a half-set credential group, both VoiceTrends groups set, an invalid
                URL or format.
            ImportError: ``PLUM_REDIS_URL`` is set but the ``redis`` extra is not installed.
        """
        env = os.environ if environ is None else environ
        settings: dict[str, object] = {
            "fuse_auth": _env_group(env, "PLUM_FUSE_EMAIL", "PLUM_FUSE_DEVELOPER_KEY"),
        }
        redis_governor = None
        if env.get("PLUM_REDIS_URL") and "governor" not in overrides:
            redis_governor = settings["governor"] = RedisGovernor.from_url(env["PLUM_REDIS_URL"])
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
                settings["voicetrends_login"] = VoiceTrendsLogin(*account)
        for variable, setting in (
            ("PLUM_FUSE_URL", "fuse_url"),
            ("PLUM_VOICETRENDS_URL", "voicetrends_url"),
            ("PLUM_FORMAT", "format"),
        ):
            if env.get(variable):
                settings[setting] = env[variable]
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


def _is_number(value: object) -> bool:
    """Settings arrive untyped at run time; ``True`` is an int to Python but not a duration."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _credentials(pair: object, name: str) -> Credentials | None:
    if pair is None:
        return None
    if not (
        isinstance(pair, tuple)
        and len(pair) == 2
        and all(isinstance(half, str) and half for half in pair)
    ):
        # The value itself is never echoed: it is a credential.
        raise ValueError(f"{name} must be a tuple of two non-empty strings")
    return Credentials(pair[0], pair[1])


def _env_group(env: Mapping[str, str], *variables: str) -> tuple[str, ...] | None:
    """The values of variables that go together: all set, or none (``None``)."""
    values = tuple(env.get(variable, "") for variable in variables)
    if not any(values):
        return None
    for variable, value in zip(variables, values, strict=True):
        if not value:
            # Name the missing variable, never the values of the others: they are credentials.
            raise ValueError(f"{variable} is not set (the others of its group are)")
    return values
