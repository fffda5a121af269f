"""A FastAPI backend over one shared ``PlumClient``: spent quota becomes a 429, never a hang.

Run it with the ``PLUM_*`` variables of ``PlumClient.from_env`` set::

    uvicorn --app-dir examples fastapi_app:app

The client is created once, in the lifespan, and every handler shares it, and so its one quota
governor: all concurrent requests of the process draw on the account's one quota, and none can
push it past the limit. ``max_wait`` bounds how long a handler waits for quota. Past it the
client raises ``RateLimitError`` at once, without sending anything, and the handler answers
429 with ``Retry-After`` (from the error's ``reset_at``) instead of holding the connection
for up to 15 minutes.

``create_app(client_factory)`` takes the client's maker, so a test (or a second deployment)
can point the app at a ``PlumSimulator`` without touching the environment.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any

import attrs
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from plumvoice_async import (
    EventReport,
    InvalidParameterError,
    Period,
    PlumClient,
    PlumError,
    RateLimitError,
)

MAX_WAIT = 5.0
"""Seconds a handler may wait for quota before answering 429."""
UNKNOWN_RESET = 900
"""Retry-After when the server gave no reset time: Plum's whole window (plum-api.md 1.3)."""


def client_from_env() -> PlumClient:
    return PlumClient.from_env(max_wait=MAX_WAIT)


def plum(request: Request) -> PlumClient:
    """The app's one client (a FastAPI dependency)."""
    client: PlumClient = request.app.state.plum
    return client


Plum = Annotated[PlumClient, Depends(plum)]


def retry_after(error: RateLimitError, now: datetime) -> int:
    """Whole seconds until the quota window resets, at least 1."""
    if error.reset_at is None:
        return UNKNOWN_RESET
    return max(1, math.ceil((error.reset_at - now).total_seconds()))


def create_app(client_factory: Callable[[], PlumClient] = client_from_env) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with client_factory() as client:
            app.state.plum = client
            yield

    app = FastAPI(title="Plum call logs", lifespan=lifespan)

    @app.exception_handler(RateLimitError)
    async def quota_spent(request: Request, error: RateLimitError) -> JSONResponse:
        # The client's clock, not the wall clock: reset_at was computed on it.
        now = datetime.fromtimestamp(plum(request).clock.time(), UTC)
        seconds = retry_after(error, now)
        return JSONResponse(
            {"detail": f"the Plum quota is spent; retry in {seconds} s"},
            status_code=429,
            headers={"Retry-After": str(seconds)},
        )

    @app.exception_handler(InvalidParameterError)
    async def bad_parameter(request: Request, error: InvalidParameterError) -> JSONResponse:
        return JSONResponse({"detail": str(error), "parameter": error.parameter}, status_code=422)

    @app.exception_handler(PlumError)
    async def upstream_failed(request: Request, error: PlumError) -> JSONResponse:
        # Messages never carry credentials, so they can be shown.
        return JSONResponse({"detail": f"Plum API: {error}"}, status_code=502)

    @app.get("/calls")
    async def calls(
        client: Plum,
        *,
        start: int,
        end: int,
        number: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        """One page of completed calls (``start``/``end`` are UNIX timestamps)."""
        page = await client.calls.page(start, end, number=number, limit=limit, offset=offset)
        return {"total_calls": page.total_calls, "calls": [attrs.asdict(c) for c in page.calls]}

    @app.get("/events")
    async def events(
        client: Plum, *, start: date, end: date, period: Period = Period.DAY, phone: str = "ALL"
    ) -> dict[str, dict[str, float]]:
        """The Event Tracker series (those the docs list, then any new ones), by period start."""
        report = await client.events.fetch(start, end, period=period, phone=phone)
        series = {
            field.name: getattr(report, field.name)
            for field in attrs.fields(EventReport)
            if field.name != "extra"
        } | dict(report.extra)
        return {
            name: {moment.isoformat(): value for moment, value in values.items()}
            for name, values in series.items()
        }

    return app


app = create_app()
