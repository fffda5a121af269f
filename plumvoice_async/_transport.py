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

import base64
import copy
import functools
import random
import urllib.parse
import zlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TypeVar, cast

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx

from ._clock import Clock
from ._core.decode import decode_response
from ._core.ratelimit import MAX_RETRY_AFTER, RateLimit, parse_retry_after
from ._core.requests import Api, RequestSpec
from ._core.retry import retry_delay, should_retry
from ._credentials import Credentials, CredentialsProvider
from ._errors import APIError, AuthenticationError, DecodeError, RateLimitError, TransportError
from ._events import Answered, Hooks, QuotaWaited, RateLimited, Retrying
from ._governor import Governor, Permit, QuotaKey
from ._logging import logger
from ._raw import RateLimitInfo, RawResponse
from ._telemetry import STATUS, OpenTelemetry

__all__ = ["Credentials", "Lifetime", "Transport"]

T = TypeVar("T")

_ACCEPT = {"json": "application/json", "xml": "application/xml"}
# The encodings this module decompresses itself, piece by piece (``_Inflater``); brotli and
# zstd would be decompressed by httpx in one call per chunk, whatever it expands to.
_ACCEPT_ENCODING = "gzip, deflate"
_BOUNDED_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate"})
_PIECE_BYTES = 1024 * 1024  # the most one decompression step may produce
_DECODE_ON_LOOP_BYTES = 64 * 1024
"""Larger bodies are decoded in a worker thread (XML decodes at a few MiB/s: README)."""


class Lifetime:
    """Strictly private: whether a client is closed, or the client it was derived from.

    ``with_options`` clients share their parent's connection pool: once the parent closes it,
    they are closed too, and say so before sending rather than fail inside httpx.
    """

    __slots__ = ("_closed", "_parent")

    def __init__(self, parent: Lifetime | None = None) -> None:
        self._closed = False
        self._parent = parent

    @property
    def closed(self) -> bool:
        return self._closed or (self._parent is not None and self._parent.closed)

    def close(self) -> None:
        self._closed = True


class Transport:
    """Strictly private: sends ``RequestSpec``s for one ``PlumClient``."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        governor: Governor,
        credentials: Mapping[Api, CredentialsProvider | None],
        format: str,
        timeout: float | httpx.Timeout,
        max_retries: int,
        max_wait: float | None,
        priority: str = "interactive",
        clock: Clock,
        max_response_bytes: int,
        hooks: Hooks | None = None,
        telemetry: OpenTelemetry | None = None,
    ) -> None:
        self._http = http
        self.governor = governor
        self._credentials = dict(credentials)
        self._accept = _ACCEPT[format]
        self._timeout = timeout
        self._max_retries = max_retries
        self._max_wait = max_wait
        self._priority = priority
        self._max_response_bytes = max_response_bytes
        self.clock = clock
        self._jitter = random.Random()  # noqa: S311 - backoff jitter, not cryptography
        self.lifetime = Lifetime()
        self._raw = False
        self._telemetry = telemetry
        self._hooks = (hooks or Hooks()) + Hooks(() if telemetry is None else (telemetry,))

    @property
    def timeout(self) -> float | httpx.Timeout:
        return self._timeout

    @property
    def max_retries(self) -> int:
        return self._max_retries

    @property
    def max_wait(self) -> float | None:
        return self._max_wait

    @property
    def priority(self) -> str:
        return self._priority

    def with_settings(
        self,
        *,
        timeout: float | httpx.Timeout,
        max_retries: int,
        max_wait: float | None,
        priority: str,
    ) -> Transport:
        """A transport sharing this one's pool, governor and credentials, with these settings;
        closed when this one is (``PlumClient.with_options``)."""
        twin = copy.copy(self)
        twin._timeout, twin._max_retries, twin._max_wait = timeout, max_retries, max_wait
        twin._priority = priority
        twin.lifetime = Lifetime(parent=self.lifetime)
        return twin

    def raw(self) -> Transport:
        """This transport, answering a ``RawResponse`` where it decoded the model (successes
        only: an error status still raises), for ``with_raw_response``."""
        twin = copy.copy(self)
        twin._raw = True
        return twin

    async def request(self, spec: RequestSpec, model: type[T]) -> T:
        """Send ``spec`` until it succeeds or fails for good, and decode the answer as ``model``.

        Raises:
            AuthenticationError: the API's credentials were not configured (nothing sent),
                or the server answered 401 (twice, when the provider could renew its pair).
            RateLimitError: the wait for quota would exceed ``max_wait`` (nothing sent), or a
                429's ``Retry-After`` does, or another task's minting outlasts it.
            APIError: any other error status, after the retries for 5xx.
            DecodeError: a success whose body is not the documented shape.
            TransportError: the network failed on every attempt.
            RuntimeError: the client is closed, or was closed while the request waited for
                quota (nothing sent, the token given back).
        """
        self._check_open()
        if self._telemetry is None:
            return await self._request(spec, model)
        with self._telemetry.span(spec.operation, spec.group.value) as span:
            try:
                answer = await self._request(spec, model)
            except (APIError, DecodeError) as exc:
                # The status of an answer: an error raised with none sent (a quota wait beyond
                # max_wait, no credentials) carries its class's status, not the server's.
                if isinstance(exc, DecodeError) or exc.response is not None:
                    span.set_attribute(STATUS, exc.status_code)
                raise  # the span records the exception and an error status
            span.set_attribute(STATUS, 200)
            return answer

    def _check_open(self) -> None:
        if self.lifetime.closed:
            raise RuntimeError("this PlumClient is closed (or the client it was derived from is)")

    async def _request(self, spec: RequestSpec, model: type[T]) -> T:
        provider = self._credentials.get(spec.group.api)
        if provider is None:
            raise AuthenticationError(
                f"no {spec.group.api.value} credentials configured for this client",
                status_code=401,
            )
        credentials = await provider.current(self)
        try:
            return await self._answer(
                spec, model, account=provider.account, credentials=credentials, raw=self._raw
            )
        except AuthenticationError as exc:
            if exc.response is None or not await provider.rejected(credentials):
                raise
        logger.debug("401 for %s: retrying once with renewed credentials", spec.group.value)
        credentials = await provider.current(self)
        return await self._answer(
            spec, model, account=provider.account, credentials=credentials, raw=self._raw
        )

    async def exchange(
        self, spec: RequestSpec, model: type[T], *, account: str, credentials: Credentials | None
    ) -> T:
        """The request loop: send ``spec`` until it succeeds or fails for good, then decode.

        ``account`` names the quota bucket; ``credentials`` go out as HTTP Basic, and ``None``
        sends no ``Authorization`` at all (minting credentials, plum-api.md 1.2). Raises as
        ``request`` does, without renewing anything on a 401. It decodes on a raw transport
        too: minting the pair of a ``with_raw_response`` request needs the pair itself.
        """
        return await self._answer(spec, model, account=account, credentials=credentials, raw=False)

    async def _answer(
        self,
        spec: RequestSpec,
        model: type[T],
        *,
        account: str,
        credentials: Credentials | None,
        raw: bool,
    ) -> T:
        """The decoded answer, or with ``raw`` the ``RawResponse`` of a 2xx one (any other
        status raises its error as it would decoded).

        The secrets the request carries are cut out of any error raised on the way: a server
        may echo them (a 401 page quoting the ``Authorization`` header, a form echoed back, a
        malformed answer quoted by httpx), and errors end up in logs and in spans.
        """
        secrets = _Secrets(spec, credentials)
        try:
            response = await self._loop(spec, account, credentials)
            if raw and 200 <= response.status_code < 300:
                return cast(T, self._raw_response(response, model, secrets))
            return await self._decode(response, model)
        except (APIError, DecodeError, TransportError) as exc:
            _redact(exc, secrets)
            raise

    async def _loop(
        self, spec: RequestSpec, account: str, credentials: Credentials | None
    ) -> httpx.Response:
        """Send ``spec`` until an answer ends the loop (a success or a final error status)."""
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
            outcome = await self._attempt(request, auth, key, spec.operation, requeue=requeue)
            status = outcome.status_code if isinstance(outcome, httpx.Response) else None
            response = outcome if isinstance(outcome, httpx.Response) else None
            retry_after = None if response is None else self._retry_after(response)
            requeue = status == 429
            if requeue:
                assert response is not None
                max_wait = self._max_wait
                if self._hooks:
                    self._hooks.emit(
                        RateLimited(
                            spec.operation,
                            key.group,
                            reset_at=self._reset_at(
                                RateLimit.from_headers(response.headers.multi_items())
                            ),
                            retry_after=retry_after,
                        )
                    )
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
                if self._hooks:
                    reason = str(status) if status is not None else type(outcome).__name__
                    self._hooks.emit(Retrying(spec.operation, key.group, attempt, delay, reason))
                await self.clock.sleep(delay)
                continue
            if not isinstance(outcome, httpx.Response):
                raise TransportError(
                    f"{request.method} {request.url.host}{request.url.path} failed "
                    f"after {attempt + 1} attempts: {type(outcome).__name__}"
                ) from outcome
            return outcome

    async def _attempt(
        self,
        request: httpx.Request,
        auth: httpx.BasicAuth | None,
        key: QuotaKey,
        operation: str,
        *,
        requeue: bool,
    ) -> httpx.Response | httpx.TransportError:
        """One permit, one send, one settle: the answer, or the error that stood for it."""
        asked_at = self.clock.monotonic()
        permit = await self.governor.acquire(
            key, max_wait=self._max_wait, retry=requeue, priority=self._priority
        )
        try:
            if self._hooks:
                waited = self.clock.monotonic() - asked_at
                self._hooks.emit(QuotaWaited(operation, key.group, waited, self._priority))
            await anyio.lowlevel.checkpoint_if_cancelled()
            self._check_open()  # closed while this request waited for quota
        except BaseException:  # cancelled, closed, a hook's KeyboardInterrupt: nothing sent
            with anyio.CancelScope(shield=True):
                await self.governor.release(permit)
            raise
        try:
            response = await self._send(request, auth)
        except httpx.TransportError as exc:
            # The request may or may not have reached the server: count it as spent.
            logger.debug("%s %s: %s", request.method, request.url.path, type(exc).__name__)
            await self._settle(permit, status=None, rate_limit=None)
            if self._hooks:
                self._hooks.emit(Answered(operation, key.group, None, type(exc).__name__))
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
        if self._hooks:
            remaining = None if rate_limit is None else rate_limit.remaining
            self._hooks.emit(
                Answered(operation, key.group, response.status_code, remaining=remaining)
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

    def _raw_response(
        self, response: httpx.Response, model: type[T], secrets: _Secrets
    ) -> RawResponse[T]:
        rate_limit = RateLimit.from_headers(response.headers.multi_items())
        reset_at = self._reset_at(rate_limit)
        info = (
            None
            if rate_limit is None or reset_at is None
            else RateLimitInfo(rate_limit.limit, rate_limit.remaining, reset_at)
        )
        return RawResponse(
            response,
            info,
            decode=functools.partial(_decode_redacted, response, model, secrets),
        )

    def _reset_at(self, rate_limit: RateLimit | None) -> datetime | None:
        """When an answer's window ends, by its ``Reset - Date`` on our wall clock; ``None``
        when it had no quota headers or names a reset more than a day away."""
        if rate_limit is None:
            return None
        now = self.clock.time()
        seconds = rate_limit.seconds_to_reset(now)
        if not seconds <= MAX_RETRY_AFTER:  # absurd (or nan): unknown, never an overflow
            return None
        return datetime.fromtimestamp(now + seconds, tz=UTC)

    def _retry_after_error(self, response: httpx.Response, retry_after: float) -> RateLimitError:
        """A 429 whose ``Retry-After`` is beyond ``max_wait``: fail now, not after the wait."""
        return RateLimitError(
            f"quota spent: the server asks to retry after {retry_after:.1f} s, beyond "
            f"max_wait ({self._max_wait} s)",
            reset_at=datetime.fromtimestamp(self.clock.time() + retry_after, tz=UTC),
            status_code=429,
            response=response,
        )

    async def _send(self, request: httpx.Request, auth: httpx.BasicAuth | None) -> httpx.Response:
        """Send, then read the body: at most ``max_response_bytes`` of it once decompressed.

        The body is streamed, decompressed here and counted, so a gzip bomb stops at the cap
        instead of filling the memory. The response is returned read (``.content`` set).

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


class _Inflater:
    """Decompresses a body piece by piece, never more than ``_PIECE_BYTES`` per call.

    zlib's ``max_length`` bounds each piece whatever one raw chunk expands to (a transport
    may hand over the whole body as one chunk), so a gzip bomb is stopped by the caller's
    count after at most one piece past the cap. ``deflate`` is tried as zlib data first, then
    as a raw stream, as httpx does (servers send both).
    """

    def __init__(self, encoding: str | None) -> None:
        self._encoding = encoding
        gzip = encoding in ("gzip", "x-gzip")
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        self._first = encoding == "deflate"

    def pieces(self, data: bytes) -> Iterator[bytes]:
        if self._encoding is None:
            yield data
            return
        while data:
            try:
                piece = self._zlib.decompress(data, _PIECE_BYTES)
            except zlib.error:
                if not self._first:
                    raise
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                piece = self._zlib.decompress(data, _PIECE_BYTES)
            self._first = False
            data = self._zlib.unconsumed_tail
            yield piece


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    """The decompressed body, or ``DecodeError`` past ``cap`` bytes or for a bad encoding."""
    encodings = [
        name
        for value in response.headers.get_list("content-encoding", split_commas=True)
        if (name := value.strip().lower()) not in ("", "identity")
    ]
    if len(encodings) > 1 or not _BOUNDED_ENCODINGS.issuperset(encodings):
        raise _body_error(response, b"", f"unsupported Content-Encoding {', '.join(encodings)!r}")
    inflater = _Inflater(encodings[0] if encodings else None)
    if not isinstance(response.stream, httpx.AsyncByteStream):  # pragma: no cover - httpx's own
        raise TypeError("an AsyncClient's response has an async stream")
    parts: list[bytes] = []
    size = 0
    chunks = response.stream.__aiter__()
    try:
        async for chunk in chunks:
            for part in inflater.pieces(chunk):
                size += len(part)
                if size > cap:
                    reason = f"the body exceeds max_response_bytes={cap:,} once decompressed"
                    raise _body_error(response, parts[0] if parts else part, reason)
                parts.append(part)
    except zlib.error as exc:
        start = parts[0] if parts else b""
        raise _body_error(response, start, f"not valid {encodings[0]} data: {exc}") from exc
    finally:
        # Leaving early must close the stream's generator now, not in a finalizer.
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    return b"".join(parts)


def _decode_redacted(response: httpx.Response, model: type[T], secrets: _Secrets) -> T:
    """``RawResponse.parse``: decode, with the request's secrets cut out of a ``DecodeError``."""
    try:
        return decode_response(response.status_code, response.headers, response.content, model)
    except DecodeError as exc:
        _redact(exc, secrets)
        raise


_REDACTED = "<redacted>"


class _Secrets:
    """Strictly private: what a request carries that no error may show, worked out only when
    an error needs it (``_redact``), and never shown itself (a ``RawResponse`` keeps one)."""

    __slots__ = ("_credentials", "_form")

    def __init__(self, spec: RequestSpec, credentials: Credentials | None) -> None:
        self._form = spec.form
        self._credentials = credentials

    def __repr__(self) -> str:
        return _REDACTED

    def values(self) -> tuple[str, ...]:
        """Longest first, as sent and as echoed: the HTTP Basic pair, each part and the
        header's base64 token; and the form's values: the only form sent is minting's, which
        carries the tool account's login and password (and the tool's public name, ``dev``...,
        kept: cut out, it would garble every "developer")."""
        found = {value for name, value in self._form if name != "tool"}
        credentials = self._credentials
        if credentials is not None:
            found |= {credentials.login, credentials.password}
            pair = f"{credentials.login}:{credentials.password}".encode()
            found.add(base64.b64encode(pair).decode("ascii"))
        found |= {urllib.parse.quote_plus(value) for value in found}  # as an echoed form
        return tuple(sorted((value for value in found if value), key=len, reverse=True))


def _redact(exc: APIError | DecodeError | TransportError, secrets: _Secrets) -> None:
    """Cut ``secrets`` out of ``exc``'s message (and drop a cause that shows one, such as an
    httpx protocol error quoting a malformed answer), in place, so the error raised keeps its
    type, fields and traceback. A ``TransportError``'s own message is ours: host and path."""
    values = secrets.values()

    def clean(text: str) -> str:
        for secret in values:
            text = text.replace(secret, _REDACTED)
        return text

    if isinstance(exc, DecodeError):
        DecodeError.__init__(
            exc,
            clean(exc.reason),
            status_code=exc.status_code,
            content_type=clean(exc.content_type),
            excerpt=clean(exc.excerpt),
        )
    elif isinstance(exc, APIError):
        APIError.__init__(
            exc, clean(exc.message), status_code=exc.status_code, response=exc.response
        )
    cause = exc.__cause__
    if cause is not None and clean(str(cause)) != str(cause):
        exc.__cause__ = None
        exc.__suppress_context__ = True


def _body_error(response: httpx.Response, start: bytes, reason: str) -> DecodeError:
    return DecodeError(
        reason,
        status_code=response.status_code,
        content_type=response.headers.get("content-type", ""),
        excerpt=start[:200].decode("utf-8", errors="replace"),
    )
