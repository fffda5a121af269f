"""One logical request: a permit from the governor, the HTTP exchange, retries, decoding.

This is the only module that sends. The order of events per attempt is the quota contract:
take a permit; if cancelled before sending, give it back; send; settle the permit with the
answer's ``X-RateLimit-*`` headers and ``Retry-After`` (or with no answer); then decide. A 429
re-queues the same request at the front of the governor's queue without spending a retry;
transport errors and 5xx are retried with backoff, or after a 503's ``Retry-After``; a wait the
server names beyond ``max_wait`` fails at once; everything else is decoded into the model or
its typed error.

Credentials come from the API's provider (``_credentials.py``). When the server answers 401
and the provider can renew its pair (minted VoiceTrends credentials), the request goes through
the loop once more with the new pair; a second 401 is final.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TypeVar

import anyio
import anyio.lowlevel
import httpx

from ._clock import Clock
from ._core.decode import decode_response
from ._core.ratelimit import RateLimit, parse_retry_after
from ._core.requests import Api, RequestSpec
from ._core.retry import retry_delay, should_retry
from ._credentials import Credentials, CredentialsProvider
from ._errors import APIError, AuthenticationError, RateLimitError, TransportError
from ._governor import Governor, Permit, QuotaKey
from ._logging import logger

__all__ = ["Credentials", "Transport"]

T = TypeVar("T")

_ACCEPT = {"json": "application/json", "xml": "application/xml"}


class Transport:
    """Strictly private: sends ``RequestSpec``s for one ``PlumClient``."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        governor: Governor,
        credentials: Mapping[Api, CredentialsProvider | None],
        format: str,
        timeout: float,
        max_retries: int,
        max_wait: float | None,
        clock: Clock,
    ) -> None:
        self._http = http
        self.governor = governor
        self._credentials = dict(credentials)
        self._accept = _ACCEPT[format]
        self._timeout = timeout
        self._max_retries = max_retries
        self._max_wait = max_wait
        self.clock = clock
        self._jitter = random.Random()  # noqa: S311 - backoff jitter, not cryptography

    async def request(self, spec: RequestSpec, model: type[T]) -> T:
        """Send ``spec`` until it succeeds or fails for good, and decode the answer as ``model``.

        Raises:
            AuthenticationError: the API's credentials were not configured (nothing sent),
                or the server answered 401 (twice, when the provider could renew its pair).
            RateLimitError: the wait for quota would exceed ``max_wait`` (nothing sent), or a
                429's ``Retry-After`` does.
            APIError: any other error status, after the retries for 5xx.
            DecodeError: a success whose body is not the documented shape.
            TransportError: the network failed on every attempt.
        """
        provider = self._credentials.get(spec.group.api)
        if provider is None:
            raise AuthenticationError(
                f"no {spec.group.api.value} credentials configured for this client",
                status_code=401,
            )
        credentials = await provider.current(self)
        try:
            return await self.exchange(
                spec, model, account=provider.account, credentials=credentials
            )
        except AuthenticationError as exc:
            if exc.response is None or not await provider.rejected(credentials):
                raise
        logger.debug("401 for %s: retrying once with renewed credentials", spec.group.value)
        credentials = await provider.current(self)
        return await self.exchange(spec, model, account=provider.account, credentials=credentials)

    async def exchange(
        self, spec: RequestSpec, model: type[T], *, account: str, credentials: Credentials | None
    ) -> T:
        """The request loop: send ``spec`` until it succeeds or fails for good, then decode.

        ``account`` names the quota bucket; ``credentials`` go out as HTTP Basic, and ``None``
        sends no ``Authorization`` at all (minting credentials, plum-api.md 1.2). Raises as
        ``request`` does, without renewing anything on a 401.
        """
        key = QuotaKey(spec.group.value, account)
        request = self._http.build_request(
            spec.method,
            spec.url,
            params=list(spec.query),
            data=dict(spec.form) if spec.form else None,
            headers={"Accept": self._accept},
            timeout=self._timeout,
        )
        auth = (
            None
            if credentials is None
            else httpx.BasicAuth(credentials.login, credentials.password)
        )
        attempt = 0
        requeue = False
        while True:
            outcome = await self._attempt(request, auth, key, requeue=requeue)
            status = outcome.status_code if isinstance(outcome, httpx.Response) else None
            response = outcome if isinstance(outcome, httpx.Response) else None
            retry_after = None if response is None else self._retry_after(response)
            requeue = status == 429
            if requeue:
                assert response is not None
                max_wait = self._max_wait
                if retry_after is not None and max_wait is not None and retry_after > max_wait:
                    raise self._retry_after_error(response, retry_after)
                logger.debug("429 for %s %s: waiting for the reset", key, request.url.path)
                continue
            delay = retry_delay(
                attempt,
                jitter=self._jitter.random(),
                retry_after=retry_after if status == 503 else None,
                max_wait=self._max_wait,
            )
            retrying = should_retry(status=status, attempt=attempt, max_retries=self._max_retries)
            if retrying and delay is not None:
                logger.debug(
                    "retrying %s %s after %s in %.2f s (retry %d of %d)",
                    request.method,
                    request.url.path,
                    status or type(outcome).__name__,
                    delay,
                    attempt + 1,
                    self._max_retries,
                )
                attempt += 1
                await self.clock.sleep(delay)
                continue
            if not isinstance(outcome, httpx.Response):
                raise TransportError(
                    f"{request.method} {request.url.host}{request.url.path} failed "
                    f"after {attempt + 1} attempts: {type(outcome).__name__}"
                ) from outcome
            return self._decode(outcome, model)

    async def _attempt(
        self,
        request: httpx.Request,
        auth: httpx.BasicAuth | None,
        key: QuotaKey,
        *,
        requeue: bool,
    ) -> httpx.Response | httpx.TransportError:
        """One permit, one send, one settle: the answer, or the error that stood for it."""
        permit = await self.governor.acquire(key, max_wait=self._max_wait, retry=requeue)
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.governor.release(permit)
            raise
        try:
            response = await self._http.send(request, auth=auth, follow_redirects=False)
        except httpx.TransportError as exc:
            # The request may or may not have reached the server: count it as spent.
            logger.debug("%s %s: %s", request.method, request.url.path, type(exc).__name__)
            await self._settle(permit, status=None, rate_limit=None)
            return exc
        except BaseException:
            await self._settle(permit, status=None, rate_limit=None)
            raise
        rate_limit = RateLimit.from_headers(response.headers.multi_items())
        await self._settle(
            permit,
            status=response.status_code,
            rate_limit=rate_limit,
            retry_after=self._retry_after(response),
        )
        logger.debug(
            "%s %s -> %d (quota %s)",
            request.method,
            request.url.path,
            response.status_code,
            "unknown" if rate_limit is None else f"{rate_limit.remaining}/{rate_limit.limit}",
        )
        return response

    async def _settle(
        self,
        permit: Permit,
        *,
        status: int | None,
        rate_limit: RateLimit | None,
        retry_after: float | None = None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            await self.governor.settle(
                permit, status=status, rate_limit=rate_limit, retry_after=retry_after
            )

    def _retry_after(self, response: httpx.Response) -> float | None:
        """The answer's ``Retry-After`` in seconds from now (``None``: absent or absurd)."""
        return parse_retry_after(response.headers.multi_items(), self.clock.time())

    def _retry_after_error(self, response: httpx.Response, retry_after: float) -> RateLimitError:
        """A 429 whose ``Retry-After`` is beyond ``max_wait``: fail now, not after the wait."""
        return RateLimitError(
            f"quota spent: the server asks to retry after {retry_after:.1f} s, beyond "
            f"max_wait ({self._max_wait} s)",
            reset_at=datetime.fromtimestamp(self.clock.time() + retry_after, tz=UTC),
            status_code=429,
            response=response,
        )

    def _decode(self, response: httpx.Response, model: type[T]) -> T:
        try:
            return decode_response(response.status_code, response.headers, response.content, model)
        except APIError as exc:
            exc.response = response
            raise
