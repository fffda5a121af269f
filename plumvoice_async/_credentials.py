"""Where a request's HTTP Basic pair comes from: a fixed pair, or one minted on demand.

The transport asks the API's provider for the ``current`` pair before a request, and tells it
when the server ``rejected`` one with a 401. A fixed pair (``Credentials``: the Fuse e-mail and
developer key, or VoiceTrends temporary credentials the user minted) is the trivial provider:
it never changes, so a 401 is final. ``MintedCredentials`` holds a ``VoiceTrendsLogin`` and
mints the temporary pair itself (plum-api.md 1.2, 6.3):

- one ``POST {voicetrends_url}auth`` with the form fields ``tool``, ``login`` and ``password``
  and no ``Authorization`` header, spending the authentication quota (15 per 15 minutes);
- the pair lives in memory only, and is shared by every request and task of the client: an
  ``anyio.Lock`` around "mint if stale" makes 50 tasks starting together mint once;
- it is stale when none was minted yet, when the server rejected it, or when it has been idle
  for ``IDLE_LIMIT``: Plum expires a pair 24 hours after its last use, and a request sent with
  a dead pair would spend data quota on a 401;
- a 401 to a data request drops the pair it was sent with (not a newer one another task has
  already minted), so the transport retries once with a fresh pair;
- when the ``auth`` resource refuses the login (400 or 401), the tasks that were queued
  behind that attempt fail with it instead of each spending another attempt of the tiny quota.

Quota keys name a stable account: every pair minted from one tool login spends the same data
bucket, ``account_hash(login)`` of the tool login, so minting anew never forgets spent quota.
"""

from __future__ import annotations

from typing import Any, Protocol

import anyio
import attrs

from ._clock import Clock
from ._core import arguments
from ._core.requests import QuotaGroup, RequestSpec, normalise_base_url
from ._errors import (
    AuthenticationError,
    BadRequestError,
    DecodeError,
    InvalidParameterError,
    RateLimitError,
)
from ._governor import account_hash
from ._logging import logger
from ._models import TemporaryCredentials

__all__ = [
    "IDLE_LIMIT",
    "TOOLS",
    "Credentials",
    "CredentialsProvider",
    "Exchange",
    "MintedCredentials",
    "VoiceTrendsLogin",
]

TOOLS = ("dev", "insight", "fuseplus")
"""The tools the ``auth`` resource accepts (plum-api.md 1.2)."""
IDLE_LIMIT = 23 * 3600.0
"""Seconds a minted pair may sit unused before it is minted anew: Plum expires it 24 hours
after its last use (plum-api.md 1.2); the hour of margin covers clocks and slow requests."""


@attrs.frozen(repr=False)
class Credentials:
    """An HTTP Basic pair, and the trivial provider of itself. Never shown in repr or str."""

    login: str
    password: str

    def __repr__(self) -> str:
        return "Credentials(<redacted>)"

    __str__ = __repr__

    @property
    def account(self) -> str:
        """The hashed account that names this pair's quota buckets."""
        return account_hash(self.login)

    async def current(self, transport: Exchange) -> Credentials:
        return self

    async def rejected(self, credentials: Credentials) -> bool:
        """A fixed pair cannot be renewed: the 401 stands."""
        return False


class Exchange(Protocol):
    """What minting a pair needs of the transport: one request, sent as the transport sends
    every request (through the governor), with the credentials given (``None``: none); and
    the transport's ``max_wait``, which bounds a wait for another task's minting too."""

    @property
    def max_wait(self) -> float | None: ...

    async def exchange(
        self,
        spec: RequestSpec,
        model: type[TemporaryCredentials],
        *,
        account: str,
        credentials: Credentials | None,
    ) -> TemporaryCredentials: ...


class CredentialsProvider(Protocol):
    """What the transport needs to authenticate one API's requests."""

    @property
    def account(self) -> str:
        """The hashed account of the quota buckets; stable however often the pair changes."""
        ...

    async def current(self, transport: Exchange) -> Credentials:
        """The pair to send now (``transport`` sends whatever obtaining one takes)."""
        ...

    async def rejected(self, credentials: Credentials) -> bool:
        """The server answered 401 to ``credentials``: whether a retry may get a new pair."""
        ...


def _tool(_: object, __: attrs.Attribute[Any], value: Any) -> None:
    if not (isinstance(value, str) and value in TOOLS):
        raise InvalidParameterError(
            "tool", value, f"unknown tool: expected one of {', '.join(TOOLS)}"
        )


def _secret(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    arguments.secret_text(value, name=attribute.name)  # never echoed: it is a credential


@attrs.frozen(repr=False)
class VoiceTrendsLogin:
    """A VoiceTrends tool account, from which ``PlumClient`` mints temporary credentials.

    ``tool`` is ``"dev"``, ``"insight"`` or ``"fuseplus"`` (plum-api.md 1.2); ``login`` and
    ``password`` are that tool's account (which Fuse secret is the ``fuseplus`` password, the
    web password or the developer key, is not documented). Neither ever appears in the repr.

    Raises:
        InvalidParameterError: ``tool`` is not one of the three, or ``login`` or ``password``
            is not a non-empty string (named, never echoed).
    """

    tool: str = attrs.field(validator=_tool)
    login: str = attrs.field(validator=_secret)
    password: str = attrs.field(validator=_secret)

    def __repr__(self) -> str:
        return f"VoiceTrendsLogin(tool={self.tool!r}, login=<redacted>, password=<redacted>)"

    __str__ = __repr__


class MintedCredentials:
    """Strictly private: temporary VoiceTrends credentials minted from a ``VoiceTrendsLogin``.

    Args:
        login: the tool account to mint from.
        base_url: the VoiceTrends base URL; the pair is minted at its ``auth`` resource.
        clock: measures how long the pair has been idle (``IDLE_LIMIT``).
    """

    def __init__(self, login: VoiceTrendsLogin, *, base_url: str, clock: Clock) -> None:
        self._login = login
        self._auth_url = normalise_base_url(base_url, name="voicetrends_url") + "auth"
        self._clock = clock
        # A semaphore, not a Lock: ``_lock_within`` takes it in a helper task for the caller.
        self._lock = anyio.Semaphore(1)
        self._pair: Credentials | None = None
        self._last_used = 0.0
        self._attempts = 0
        self._refusal: AuthenticationError | BadRequestError | None = None
        self.account = account_hash(login.login)

    def __repr__(self) -> str:
        state = "none minted" if self._pair is None else "minted"
        return f"MintedCredentials(tool={self._login.tool!r}, {state})"

    async def current(self, transport: Exchange) -> Credentials:
        """The pair in use, minted first when there is none or it has been idle too long.

        Raises:
            RateLimitError: another task is minting (it may wait for the authentication
                quota with a longer ``max_wait``, or none: an export behind a dashboard), and
                it did not finish within this request's ``max_wait``.
        """
        attempts_before = self._attempts
        await self._lock_within(transport.max_wait)
        try:
            now = self._clock.monotonic()
            if self._pair is None or now - self._last_used >= IDLE_LIMIT:
                refusal = self._refusal
                if refusal is not None and self._attempts != attempts_before:
                    # The attempt this task queued behind was refused: so would its own be.
                    raise type(refusal)(
                        refusal.message, status_code=refusal.status_code, response=refusal.response
                    ) from refusal
                self._pair = await self._mint(transport)
            self._last_used = now
            return self._pair
        finally:
            self._lock.release()

    async def _lock_within(self, max_wait: float | None) -> None:
        """Take the minting lock, waiting no longer than ``max_wait`` on this client's clock.

        Without the bound, a request with ``max_wait=2`` queued behind another task's minting
        for as long as that one waited for the authentication quota: up to its window.
        """
        try:
            self._lock.acquire_nowait()
        except anyio.WouldBlock:
            if max_wait is None:
                await self._lock.acquire()
                return
        else:
            return
        taken = False
        try:
            async with anyio.create_task_group() as race:

                async def take() -> None:
                    nonlocal taken
                    await self._lock.acquire()
                    taken = True
                    race.cancel_scope.cancel()

                async def expire() -> None:
                    await self._clock.sleep(max_wait)
                    race.cancel_scope.cancel()

                race.start_soon(take)
                race.start_soon(expire)
        except BaseException:  # the caller was cancelled: a lock taken for it is given back
            if taken:
                self._lock.release()
            raise
        if not taken:
            raise RateLimitError(
                "another request is minting VoiceTrends credentials and did not finish "
                f"within max_wait ({max_wait} s); nothing was sent",
                reset_at=None,
            )

    async def rejected(self, credentials: Credentials) -> bool:
        """Drop ``credentials`` unless a newer pair already replaced it; a retry may follow."""
        if self._pair is credentials:
            self._pair = None
        return True

    async def _mint(self, transport: Exchange) -> Credentials:
        self._refusal = None
        spec = RequestSpec(
            "POST",
            self._auth_url,
            QuotaGroup.VOICETRENDS_AUTH,
            form=(
                ("tool", self._login.tool),
                ("login", self._login.login),
                ("password", self._login.password),
            ),
            operation="auth.mint",
        )
        logger.debug("minting VoiceTrends temporary credentials (tool %s)", self._login.tool)
        try:
            minted = await transport.exchange(
                spec, TemporaryCredentials, account=self.account, credentials=None
            )
        except DecodeError as exc:
            # The body may hold a temporary pair: keep the reason, never the excerpt.
            raise DecodeError(
                exc.reason,
                status_code=exc.status_code,
                content_type=exc.content_type,
                excerpt="<redacted: an authentication answer>",
            ) from None
        except (AuthenticationError, BadRequestError) as exc:
            refusal = type(exc)(
                f"VoiceTrends refused to mint temporary credentials: {exc.message}",
                status_code=exc.status_code,
                response=exc.response,
            )
            self._refusal = refusal
            raise refusal from exc
        finally:
            # Counted once decided: a task that arrived while it was under way queued behind it.
            self._attempts += 1
        return Credentials(minted.login, minted.password)
