"""The examples run: the FastAPI app through httpx, the bulk export as a script on loopback."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import anyio
import httpx
import pytest

from plumvoice_async import LocalGovernor, Period, PlumClient
from plumvoice_async._core.requests import QuotaGroup
from plumvoice_async._governor import QuotaKey, account_hash
from plumvoice_async.testing import FakeClock, PlumSimulator, Quota, serve

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.anyio
async def test_fastapi_app_shares_one_client_and_answers_429_with_retry_after():
    fastapi_app = load("fastapi_app")
    clock = FakeClock()  # the simulator's quota window ends 100 s after its start
    simulator = PlumSimulator(clock=clock, quotas={"fuse": Quota(limit=3, window=900)})
    made: list[PlumClient] = []

    def client_factory() -> PlumClient:
        made.append(simulator.client(max_wait=fastapi_app.MAX_WAIT))
        return made[-1]

    app = fastapi_app.create_app(client_factory)
    start = simulator.dataset.start
    window = {"start": start, "end": start + 3600}
    # A handler waiting for quota would hang: the FakeClock only moves when told to.
    with anyio.fail_after(10):
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://app"
            ) as http,
        ):
            pages = [
                await http.get("/calls", params={**window, "limit": 5, "offset": offset})
                for offset in (0, 5, 10)
            ]
            spent = await http.get("/calls", params={**window, "limit": 5, "offset": 15})
            refused = await http.get("/calls", params={"start": start, "end": start - 1})
            first_day = datetime.fromtimestamp(start, UTC).date()
            events = await http.get(
                "/events",
                params={"start": str(first_day), "end": str(first_day + timedelta(days=1))},
            )

    expected = simulator.dataset.page(window["start"], window["end"], offset=0, limit=15)
    assert [page.status_code for page in pages] == [200, 200, 200]
    got = [call["session_id"] for page in pages for call in page.json()["calls"]]
    assert got == [call.session_id for call in expected]
    assert datetime.fromisoformat(pages[0].json()["calls"][0]["start"]) == expected[0].start

    assert spent.status_code == 429
    assert 100 <= int(spent.headers["Retry-After"]) <= 102  # the window's end, plus a margin
    assert "quota" in spent.json()["detail"]
    assert not any(entry.status == 429 for entry in simulator.requests)  # refused before sending
    assert len(simulator.requests) == 3 + 1  # three pages and the report

    assert refused.status_code == 422
    assert refused.json()["parameter"] == "end"

    assert events.status_code == 200
    report = simulator.dataset.event_report(
        first_day, first_day + timedelta(days=1), Period.DAY, "ALL"
    )
    assert events.json()["calls"] == {
        moment.isoformat(): count for moment, count in report.calls.items()
    }
    assert len(made) == 1  # one client (and one governor) for every request


@pytest.mark.anyio
async def test_fastapi_handlers_take_the_reserve_while_a_bulk_export_waits():
    """Issue 13: the export spends what the reserve leaves; the handlers still get answers."""
    fastapi_app = load("fastapi_app")
    clock = FakeClock()  # the simulator's quota window ends 100 s after its start
    simulator = PlumSimulator(clock=clock, quotas={"fuse": Quota(limit=6, window=900)})
    governor = LocalGovernor(6, 900.0, clock=clock, reserve=2)
    app = fastapi_app.create_app(
        lambda: simulator.client(max_wait=fastapi_app.MAX_WAIT, governor=governor)
    )
    start = simulator.dataset.start
    window = {"start": start, "end": start + 3600}
    expected = simulator.dataset.page(window["start"], window["end"], offset=0, limit=10_000)
    with anyio.fail_after(10):
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://app"
            ) as http,
        ):
            job = (await http.post("/exports", params={**window, "page_size": 2})).json()
            await anyio.wait_all_tasks_blocked()
            stuck = (await http.get(f"/exports/{job['export']}")).json()
            snapshot = await governor.snapshot(
                QuotaKey(QuotaGroup.FUSE.value, account_hash(simulator.fuse_auth[0]))
            )
            pages = [
                await http.get("/calls", params={**window, "limit": 5, "offset": offset})
                for offset in (0, 5)
            ]
            spent = await http.get("/calls", params={**window, "limit": 5, "offset": 10})
            while not (await http.get(f"/exports/{job['export']}")).json()["done"]:
                await clock.advance(100.0)
            done = (await http.get(f"/exports/{job['export']}")).json()
            missing = await http.get("/exports/99")
    # The export stopped with the reserve left, queued as bulk.
    assert stuck == {"calls": 8, "done": False, "error": None}
    assert (snapshot.remaining, snapshot.reserve) == (2, 2)
    assert snapshot.waiting_by_priority == {"interactive": 0, "bulk": 1}
    assert [page.status_code for page in pages] == [200, 200]  # the reserve, at once
    assert spent.status_code == 429  # then the window is spent for everyone
    assert done == {"calls": len(expected), "done": True, "error": None}
    assert missing.status_code == 404
    assert not any(entry.status == 429 for entry in simulator.requests)


def test_bulk_export_script_writes_each_number_once(tmp_path):
    simulator = PlumSimulator()
    start = simulator.dataset.start
    end = start + 86_400
    numbers = ["6177123000", "8009957586"]
    env = {name: value for name, value in os.environ.items() if not name.startswith("PLUM_")}
    env["PLUM_FUSE_EMAIL"], env["PLUM_FUSE_DEVELOPER_KEY"] = simulator.fuse_auth
    with serve(simulator) as url:
        env["PLUM_FUSE_URL"] = url
        result = subprocess.run(
            [
                sys.executable,
                str(EXAMPLES / "bulk_export.py"),
                str(start),
                str(end),
                *numbers,
                "--out-dir",
                str(tmp_path),
                "--page-size",
                "400",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    for number in numbers:
        expected = simulator.dataset.page(start, end, number, offset=0, limit=10_000)
        lines = (tmp_path / f"calls-{number}.jsonl").read_text().splitlines()
        assert [json.loads(line)["session_id"] for line in lines] == [
            call.session_id for call in expected
        ]
        assert f"{number}: {len(expected)} calls" in result.stdout
    assert all(entry.status == 200 for entry in simulator.requests)
    assert {entry.account for entry in simulator.requests} == {
        simulator.requests[0].account
    }  # one account, one governor


def test_sync_script_counts_calls_by_type_without_async(tmp_path):
    simulator = PlumSimulator()
    start = simulator.dataset.start
    end = start + 86_400
    expected = simulator.dataset.page(start, end, offset=0, limit=10_000)
    env = {name: value for name, value in os.environ.items() if not name.startswith("PLUM_")}
    env["PLUM_FUSE_EMAIL"], env["PLUM_FUSE_DEVELOPER_KEY"] = simulator.fuse_auth
    with serve(simulator) as url:
        env["PLUM_FUSE_URL"] = url
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / "sync_script.py"), str(start), str(end)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{len(expected)} calls"
    counts: dict[str, int] = {}
    for call in expected:
        counts[call.type.value] = counts.get(call.type.value, 0) + 1
    assert lines[1:] == [f"{kind}: {count}" for kind, count in sorted(counts.items())]
