"""A FastAPI backend over one shared ``PlumClient``: spent quota becomes a 429, never a hang.

Run it with the ``PLUM_*`` variables of ``PlumClient.from_env`` set::

    uvicorn --app-dir examples fastapi_app:app

The client is created once, in the lifespan, and every handler shares it, and so its one quota
governor: all concurrent requests of the process draw on the account's one quota, and none can
push it past the limit. ``max_wait`` bounds how long a handler waits for quota. Past it the
client raises ``RateLimitError`` at once, without sending anything, and the handler answers
429 with ``Retry-After`` (from the error's ``reset_at``) instead of holding the connection
for up to 15 minutes.

Beside the handlers, ``POST /exports`` starts a bulk job on the same account: a copy of the
client with ``priority="bulk"`` (the same pool, governor and quota). The governor serves every
waiting handler request before any waiting export request, and keeps the last ``RESERVE``
requests of each window for the handlers: an export that would spend every window's quota
never makes a dashboard wait for the next window. ``GET /exports/{job}`` shows its progress.

``create_app(client_factory)`` takes the client's maker, so a test (or a second deployment)
can point the app at a ``PlumSimulator`` without touching the environment.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any

import anyio
import attrs
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from plumvoice_async import (
    EventReport,
    InvalidParameterError,
    LocalGovernor,
    Period,
    PlumClient,
    PlumError,
    RateLimitError,
)

MAX_WAIT = 5.0
"""Seconds a handler may wait for quota before answering 429."""
RESERVE = 15
"""Requests of each window (of 150) only the handlers may take; an export leaves them."""
UNKNOWN_RESET = 900
"""Retry-After when the server gave no reset time: Plum's whole window (plum-api.md 1.3)."""


def client_from_env() -> PlumClient:
    # With several processes, RedisGovernor.from_url(url, reserve=RESERVE) instead.
    return PlumClient.from_env(max_wait=MAX_WAIT, governor=LocalGovernor(reserve=RESERVE))


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
        async with client_factory() as client, anyio.create_task_group() as jobs:
            app.state.plum = client
            app.state.jobs = jobs
            app.state.exports = {}
            yield
            jobs.cancel_scope.cancel()  # the server stops: so do the exports

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

    @app.post("/exports", status_code=202)
    async def start_export(
        request: Request, client: Plum, *, start: int, end: int, page_size: int = 10_000
    ) -> dict[str, int]:
        """Count the calls of a range in the background, as a bulk job."""
        # Bulk: behind every handler's request, never taking the reserve; no max_wait, since a
        # job may well wait for the next window.
        bulk = client.with_options(priority="bulk", max_wait=None)
        exports: dict[int, dict[str, Any]] = request.app.state.exports
        job = len(exports) + 1
        progress = exports[job] = {"calls": 0, "done": False, "error": None}

        async def run() -> None:
            try:
                async for _ in bulk.calls.iterate(start, end, page_size=page_size):
                    progress["calls"] += 1
            except PlumError as error:
                progress["error"] = str(error)
            progress["done"] = True

        request.app.state.jobs.start_soon(run)
        return {"export": job}

    @app.get("/exports/{job}")
    async def export_progress(request: Request, job: int) -> dict[str, Any]:
        exports: dict[int, dict[str, Any]] = request.app.state.exports
        if job not in exports:
            raise HTTPException(404, f"no export {job}")
        return exports[job]

    return app


app = create_app()
