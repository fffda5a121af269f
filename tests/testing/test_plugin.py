from __future__ import annotations

pytest_plugins = ["pytester"]

USER_SUITE = """
import httpx
import pytest


@pytest.mark.asyncio
async def test_fetch_calls_in_process(plum_simulator):
    async with httpx.AsyncClient(
        transport=plum_simulator.transport(),
        base_url=plum_simulator.BASE_URL,
        auth=plum_simulator.fuse_auth,
    ) as client:
        response = await client.get("calls/0/99999999999", params={"limit": 3})
    assert response.status_code == 200
    body = response.json()
    assert len(body["calls"]) == 3
    assert body["total_calls"] == 10_000


@pytest.mark.asyncio
async def test_fetch_calls_over_loopback(plum_simulator, plum_simulator_url):
    async with httpx.AsyncClient(base_url=plum_simulator_url) as client:
        anonymous = await client.get("calls/0/99999999999")
        report = await client.get(
            "events/20230101/20230107/week/ALL", auth=plum_simulator.voicetrends_auth
        )
    assert anonymous.status_code == 401
    assert report.status_code == 200
    assert report.headers["x-ratelimit-remaining"] == "149"


@pytest.mark.asyncio
async def test_each_test_gets_a_fresh_simulator(plum_simulator):
    assert plum_simulator.requests == []
"""


def test_a_pytest_asyncio_suite_uses_the_fixtures(pytester):
    # A user's project: its own configuration, not ours (which passes -p no:asyncio).
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_user_suite=USER_SUITE)
    # pytest-asyncio loads by its entry point, as in any user's run. (An explicit "-p asyncio"
    # works too, but pytest then warns that it cannot rewrite the stdlib module of that name.)
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        ["plugins:*asyncio-*plumvoice-async-*", "asyncio: mode=Mode.STRICT*"]
    )
    result.assert_outcomes(passed=3, warnings=0)


def test_the_url_fixture_without_uvicorn_fails_saying_how_to_get_it(pytester):
    pytester.makeconftest("import sys\nsys.modules['uvicorn'] = None  # as if not installed\n")
    pytester.makepyfile(test_user_suite="def test_served(plum_simulator_url):\n    pass\n")
    result = pytester.runpytest("-p", "no:asyncio")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs uvicorn*pip install 'plumvoice-async[[]demo[]]'*"])
    result.stdout.no_fnmatch_line("*No module named*")
