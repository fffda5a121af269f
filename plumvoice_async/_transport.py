"""One logical request: a permit from the governor, the HTTP exchange, retries, decoding.

This is the only module that sends. The order of events per attempt is the quota contract:
take a permit; if cancelled before sending, give it back; send; settle the permit with the
answer's ``X-RateLimit-*`` headers (or with no answer); then decide. A 429 re-queues the same
request at the front of the governor's queue without spending a retry; transport errors and
5xx are retried with backoff; everything else is decoded into the model or its typed error.

Credentials come from the API's provider (``_credentials.py``). When the server answers 401
and the provider can renew its pair (minted VoiceTrends credentials), the request goes through
the loop once more with the new pair; a second 401 is final.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from typing import TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx

from ._clock import Clock
from ._core.decode import decode_response
from ._core.ratelimit import RateLimit
from ._core.requests import Api, RequestSpec
from ._core.retry import backoff_delay, should_retry
from ._credentials import Credentials, CredentialsProvider
from ._errors import APIError, AuthenticationError, DecodeError, TransportError
from ._governor import Governor, Permit, QuotaKey
from ._logging import logger

__all__ = ["Credentials", "Transport"]

T = TypeVar("T")

_ACCEPT = {"json": "application/json", "xml": "application/xml"}
# Only encodings whose expansion is bounded per input byte (deflate: about 1,032 to 1), so
# that decompressing one slice of the raw body can never allocate much more than the cap.
_ACCEPT_ENCODING = "gzip, deflate"
_BOUNDED_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate"})
_RAW_SLICE_BYTES = 8 * 1024  # decompresses to at most ~8.3 MiB
_DECODE_ON_LOOP_BYTES = 64 * 1024
"""Larger bodies are decoded in a worker thread (XML decodes at a few MiB/s: README)."""


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
        max_response_bytes: int,
    ) -> None:
        self._http = http
        self.governor = governor
        self._credentials = dict(credentials)
        self._accept = _ACCEPT[format]
        self._timeout = timeout
        self._max_retries = max_retries
        self._max_wait = max_wait
        self._max_response_bytes = max_response_bytes
        self.clock = clock
        self._jitter = random.Random()  # noqa: S311 - backoff jitter, not cryptography

    async def request(self, spec: RequestSpec, model: type[T]) -> T:
        """Send ``spec`` until it succeeds or fails for good, and decode the answer as ``model``.

        Raises:
            AuthenticationError: the API's credentials were not configured (nothing sent),
                or the server answered 401 (twice, when the provider could renew its pair).
            RateLimitError: the wait for quota would exceed ``max_wait`` (nothing sent).
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
            headers={"Accept": self._accept, "Accept-Encoding": _ACCEPT_ENCODING},
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
            requeue = status == 429
            if requeue:
                logger.debug("429 for %s %s: waiting for the reset", key, request.url.path)
                continue
            if should_retry(status=status, attempt=attempt, max_retries=self._max_retries):
                delay = backoff_delay(attempt, jitter=self._jitter.random())
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
            return await self._decode(outcome, model)

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
            response = await self._send(request, auth)
        except httpx.TransportError as exc:
            # The request may or may not have reached the server: count it as spent.
            logger.debug("%s %s: %s", request.method, request.url.path, type(exc).__name__)
            await self._settle(permit, status=None, rate_limit=None)
            return exc
        except BaseException:
            await self._settle(permit, status=None, rate_limit=None)
            raise
        rate_limit = RateLimit.from_headers(response.headers)
        await self._settle(permit, status=response.status_code, rate_limit=rate_limit)
        logger.debug(
            "%s %s -> %d (quota %s)",
            request.method,
            request.url.path,
            response.status_code,
            "unknown" if rate_limit is None else f"{rate_limit.remaining}/{rate_limit.limit}",
        )
        return response

    async def _settle(
        self, permit: Permit, *, status: int | None, rate_limit: RateLimit | None
    ) -> None:
        with anyio.CancelScope(shield=True):
            await self.governor.settle(permit, status=status, rate_limit=rate_limit)

    async def _send(self, request: httpx.Request, auth: httpx.BasicAuth | None) -> httpx.Response:
        """Send, then read the body: at most ``max_response_bytes`` of it once decompressed.

        The body is streamed and counted as it is decompressed, so a gzip bomb stops at the
        cap instead of filling the memory. The response is returned read (``.content`` set).

        Raises:
            DecodeError: the body is larger than the cap, or compressed by an encoding that
                is not in ``_BOUNDED_ENCODINGS``.
        """
        response = await self._http.send(request, auth=auth, follow_redirects=False, stream=True)
        try:
            body = await _read_capped(response, self._max_response_bytes)
        finally:
            await response.aclose()
        # What ``Response.aread`` does with the body it read; ours stopped at the cap.
        response._content = body
        return response

    async def _decode(self, response: httpx.Response, model: type[T]) -> T:
        body = response.content
        try:
            if len(body) <= _DECODE_ON_LOOP_BYTES:
                return decode_response(response.status_code, response.headers, body, model)
            # Decoding holds the GIL, but the event loop still gets it every switch interval
            # (5 ms) instead of waiting for the whole body.
            return await anyio.to_thread.run_sync(
                decode_response, response.status_code, response.headers, body, model
            )
        except APIError as exc:
            exc.response = response
            raise


class _SlicedStream(httpx.AsyncByteStream):
    """A raw response stream re-cut into slices of at most ``_RAW_SLICE_BYTES``.

    httpx decompresses each raw chunk it gets in one call, and a transport may hand over the
    whole body as one chunk: cutting it first bounds what one call can allocate.
    """

    def __init__(self, raw: httpx.AsyncByteStream) -> None:
        self._raw = raw

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._raw:
            for start in range(0, len(chunk), _RAW_SLICE_BYTES):
                yield chunk[start : start + _RAW_SLICE_BYTES]

    async def aclose(self) -> None:
        await self._raw.aclose()


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    encodings = [
        name
        for value in response.headers.get_list("content-encoding", split_commas=True)
        if (name := value.strip().lower()) not in ("", "identity")
    ]
    if len(encodings) > 1 or not _BOUNDED_ENCODINGS.issuperset(encodings):
        raise _body_error(response, b"", f"unsupported Content-Encoding {', '.join(encodings)!r}")
    if not isinstance(response.stream, httpx.AsyncByteStream):  # pragma: no cover - httpx's own
        raise TypeError("an AsyncClient's response has an async stream")
    response.stream = _SlicedStream(response.stream)
    parts: list[bytes] = []
    size = 0
    async for part in response.aiter_bytes():
        size += len(part)
        if size > cap:
            reason = f"the body exceeds max_response_bytes={cap:,} once decompressed"
            raise _body_error(response, parts[0] if parts else part, reason)
        parts.append(part)
    return b"".join(parts)


def _body_error(response: httpx.Response, start: bytes, reason: str) -> DecodeError:
    return DecodeError(
        reason,
        status_code=response.status_code,
        content_type=response.headers.get("content-type", ""),
        excerpt=start[:200].decode("utf-8", errors="replace"),
    )
