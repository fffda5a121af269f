"""Temporary VoiceTrends credentials minted by the client: the wire, the sharing, the renewal."""

from __future__ import annotations

import base64
import logging
from datetime import date
from urllib.parse import parse_qsl

import anyio
import anyio.lowlevel
import httpx
import pytest
import respx

from plumvoice_async import (
    AuthenticationError,
    BadRequestError,
    DecodeError,
    InvalidParameterError,
    PlumClient,
    VoiceTrendsLogin,
)
from plumvoice_async._core.requests import Api
from plumvoice_async._credentials import IDLE_LIMIT, MintedCredentials
from plumvoice_async._governor import account_hash
from plumvoice_async._local_governor import LocalGovernor
from plumvoice_async.testing import FakeClock, PlumSimulator, serve
from tests.doubles import InstantClock, RecordingGovernor

pytestmark = pytest.mark.anyio

VT_URL = "https://voicetrends.plumvoice.com/api/"
AUTH_URL = VT_URL + "auth"
VOLUME_URL = VT_URL + "volume/20180201/20180208/day/ALL"
LOGIN = VoiceTrendsLogin(tool="fuseplus", login="me@example.com", password="web-password-secret")
PAIRS = [
    {"login": "57b264aa1b794ff89d4effaafdf5e4b0", "password": "25d421b1ee6c44daa2d34808e9466f5c"},
    {"login": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "password": "aaaabbbbccccddddeeeeffff00001111"},
]
SECRETS = ("me@example.com", "web-password-secret", *PAIRS[0].values(), *PAIRS[1].values())
REPORT = {"calls": {"1517461200": 3}}


def basic(pair: dict[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{pair['login']}:{pair['password']}".encode()).decode()


def vt_client(**settings) -> PlumClient:
    settings.setdefault("voicetrends_login", LOGIN)
    settings.setdefault("governor", RecordingGovernor())
    settings.setdefault("clock", InstantClock())
    return PlumClient(**settings)


async def volume(client: PlumClient):
    return await client.volume.fetch(20180201, 20180208, period="day", phone="ALL")


# --- the login and the settings ----------------------------------------------------------------


@pytest.mark.parametrize("tool", ["fuse", "FUSEPLUS", "", None, 3])
def test_an_unknown_tool_is_an_invalid_parameter(tool):
    with pytest.raises(InvalidParameterError) as caught:
        VoiceTrendsLogin(tool=tool, login="me@example.com", password="web-password-secret")
    assert caught.value.parameter == "tool"
    assert "web-password-secret" not in str(caught.value)


@pytest.mark.parametrize("tool", ["dev", "insight", "fuseplus"])
def test_the_three_documented_tools_are_accepted(tool):
    assert VoiceTrendsLogin(tool=tool, login="a", password="b").tool == tool


@pytest.mark.parametrize(
    ("login", "password", "bad"),
    [
        ("", "web-password-secret", "login"),
        ("me@example.com", "", "password"),
        ("me@example.com", None, "password"),
        (b"me", "web-password-secret", "login"),
    ],
)
def test_an_empty_login_or_password_is_refused_without_echoing_the_other(login, password, bad):
    with pytest.raises(InvalidParameterError, match=f"invalid {bad}=<redacted>") as caught:
        VoiceTrendsLogin(tool="dev", login=login, password=password)
    assert caught.value.parameter == bad
    assert "web-password-secret" not in str(caught.value)
    assert "me@example.com" not in str(caught.value)


def test_no_repr_shows_the_login_or_a_minted_pair():
    client = vt_client()
    provider = client._credentials[Api.VOICETRENDS]
    assert isinstance(provider, MintedCredentials)
    for text in (repr(LOGIN), str(LOGIN), repr(client), repr(client._credentials), repr(provider)):
        for secret in SECRETS:
            assert secret not in text
    assert "fuseplus" in repr(LOGIN)


def test_a_login_and_a_temporary_pair_are_mutually_exclusive():
    with pytest.raises(ValueError, match="not both"):
        PlumClient(voicetrends_auth=("temp", "pair"), voicetrends_login=LOGIN)
    with pytest.raises(ValueError, match="VoiceTrendsLogin"):
        PlumClient(voicetrends_login=("fuseplus", "me", "pw"))  # type: ignore[arg-type]


ACCOUNT_ENV = {
    "PLUM_VOICETRENDS_TOOL": "fuseplus",
    "PLUM_VOICETRENDS_ACCOUNT_LOGIN": "me@example.com",
    "PLUM_VOICETRENDS_ACCOUNT_PASSWORD": "web-password-secret",
}


def test_from_env_reads_the_tool_account():
    client = PlumClient.from_env(ACCOUNT_ENV)
    provider = client._credentials[Api.VOICETRENDS]
    assert isinstance(provider, MintedCredentials)
    assert provider.account == account_hash("me@example.com")


@pytest.mark.parametrize("missing", sorted(ACCOUNT_ENV))
def test_from_env_names_a_missing_account_variable_and_no_value(missing):
    env = {name: value for name, value in ACCOUNT_ENV.items() if name != missing}
    with pytest.raises(ValueError, match=missing) as caught:
        PlumClient.from_env(env)
    for value in ACCOUNT_ENV.values():
        assert value not in str(caught.value)


def test_from_env_refuses_both_voicetrends_groups_and_a_bad_tool():
    both = {**ACCOUNT_ENV, "PLUM_VOICETRENDS_LOGIN": "t", "PLUM_VOICETRENDS_PASSWORD": "p"}
    with pytest.raises(ValueError, match="not both"):
        PlumClient.from_env(both)
    with pytest.raises(InvalidParameterError, match="tool"):
        PlumClient.from_env({**ACCOUNT_ENV, "PLUM_VOICETRENDS_TOOL": "fuse"})


def test_a_voicetrends_keyword_replaces_both_groups_read_from_the_environment():
    client = PlumClient.from_env(ACCOUNT_ENV, voicetrends_auth=("temp", "pair"))
    provider = client._credentials[Api.VOICETRENDS]
    assert not isinstance(provider, MintedCredentials)
    assert provider is not None
    assert provider.account == account_hash("temp")


# --- the wire (respx) --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_minting_posts_the_form_without_basic_then_reports_use_the_pair(fmt):
    governor = RecordingGovernor()
    minted = PAIRS[0]
    body = (
        f"<result><login>{minted['login']}</login><password>{minted['password']}</password>"
        "</result>"
        if fmt == "xml"
        else None
    )
    auth_answer = (
        httpx.Response(200, content=body.encode(), headers={"Content-Type": "application/xml"})
        if body
        else httpx.Response(200, json=minted)
    )
    with respx.mock(assert_all_called=True) as router:
        auth = router.post(AUTH_URL).mock(return_value=auth_answer)
        data = router.get(VOLUME_URL).mock(return_value=httpx.Response(200, json=REPORT))
        async with vt_client(governor=governor, format=fmt) as client:
            first = await volume(client)
            await volume(client)
    assert first.calls != {}
    (post,) = [call.request for call in auth.calls]
    assert post.method == "POST"
    assert post.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qsl(post.content.decode()) == [
        ("tool", "fuseplus"),
        ("login", "me@example.com"),
        ("password", "web-password-secret"),
    ]
    assert "authorization" not in post.headers  # plum-api.md 1.2: the form is the credential
    assert post.headers["accept"] == f"application/{fmt}"
    assert [call.request.headers["authorization"] for call in data.calls] == [basic(minted)] * 2
    keys = [args[0] for verb, args in governor.calls if verb == "acquire"]
    tool_account = account_hash("me@example.com")
    assert [(key.group, key.account) for key in keys] == [
        ("voicetrends-auth", tool_account),
        ("voicetrends", tool_account),
        ("voicetrends", tool_account),
    ]


async def test_a_401_mints_once_more_and_retries_the_request_once():
    with respx.mock(assert_all_called=True) as router:
        auth = router.post(AUTH_URL).mock(
            side_effect=[httpx.Response(200, json=pair) for pair in PAIRS]
        )
        data = router.get(VOLUME_URL).mock(
            side_effect=[
                httpx.Response(200, json=REPORT),
                httpx.Response(401, json={"error": "expired credentials"}),
                httpx.Response(200, json=REPORT),
            ]
        )
        async with vt_client() as client:
            await volume(client)
            report = await volume(client)
    assert report.calls != {}
    assert len(auth.calls) == 2
    assert [call.request.headers["authorization"] for call in data.calls] == [
        basic(PAIRS[0]),
        basic(PAIRS[0]),
        basic(PAIRS[1]),
    ]


async def test_a_second_401_is_an_authentication_error(caplog):
    caplog.set_level(logging.DEBUG, logger="plumvoice_async")
    with respx.mock(assert_all_called=True) as router:
        auth = router.post(AUTH_URL).mock(
            side_effect=[httpx.Response(200, json=pair) for pair in PAIRS]
        )
        data = router.get(VOLUME_URL).mock(
            return_value=httpx.Response(401, json={"error": "inactive account"})
        )
        async with vt_client() as client:
            with pytest.raises(AuthenticationError, match="inactive account") as caught:
                await volume(client)
    assert (len(auth.calls), len(data.calls)) == (2, 2)
    assert caught.value.status_code == 401
    for secret in SECRETS:
        assert secret not in str(caught.value)
        assert secret not in caplog.text


async def test_a_fixed_temporary_pair_is_not_renewed_on_a_401():
    with respx.mock(assert_all_called=True) as router:
        data = router.get(VOLUME_URL).mock(return_value=httpx.Response(401, json={"error": "no"}))
        async with vt_client(voicetrends_login=None, voicetrends_auth=("t", "p")) as client:
            with pytest.raises(AuthenticationError):
                await volume(client)
    assert len(data.calls) == 1


@pytest.mark.parametrize(("status", "error"), [(401, AuthenticationError), (400, BadRequestError)])
async def test_a_refused_mint_says_so_and_sends_no_report(status, error):
    with respx.mock(assert_all_called=False) as router:
        router.post(AUTH_URL).mock(return_value=httpx.Response(status, json={"error": "bad login"}))
        data = router.get(VOLUME_URL).mock(return_value=httpx.Response(200, json=REPORT))
        async with vt_client() as client:
            with pytest.raises(error, match="refused to mint temporary credentials: bad login"):
                await volume(client)
    assert not data.called


async def test_a_malformed_mint_answer_is_a_decode_error_that_shows_no_credential():
    leaked = b'{"login": "57b264aa1b794ff89d4effaafdf5e4b0"}'
    with respx.mock(assert_all_called=True) as router:
        router.post(AUTH_URL).mock(return_value=httpx.Response(200, content=leaked))
        async with vt_client() as client:
            with pytest.raises(DecodeError, match="temporary password is missing") as caught:
                await volume(client)
    assert PAIRS[0]["login"] not in str(caught.value)
    assert PAIRS[0]["login"] not in caught.value.excerpt
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


async def test_a_pair_idle_for_a_day_is_minted_anew_before_it_is_sent():
    # plum-api.md 1.2: a pair expires 24 hours after its last use; sending a dead one would
    # spend data quota on a 401.
    clock = InstantClock()
    with respx.mock(assert_all_called=True) as router:
        auth = router.post(AUTH_URL).mock(
            side_effect=[httpx.Response(200, json=pair) for pair in PAIRS]
        )
        data = router.get(VOLUME_URL).mock(return_value=httpx.Response(200, json=REPORT))
        async with vt_client(clock=clock) as client:
            await volume(client)
            clock.now += IDLE_LIMIT - 1
            await volume(client)  # still fresh: its last use was under IDLE_LIMIT ago
            clock.now += IDLE_LIMIT
            await volume(client)
    assert len(auth.calls) == 2
    assert [call.request.headers["authorization"] for call in data.calls] == [
        basic(PAIRS[0]),
        basic(PAIRS[0]),
        basic(PAIRS[1]),
    ]


# --- the provider on its own --------------------------------------------------------------------


class MintingTransport:
    """Stands in for the transport: each exchange mints the next pair, after a checkpoint."""

    max_wait = None

    def __init__(self) -> None:
        self.mints = 0

    async def exchange(self, spec, model, *, account, credentials):
        await anyio.lowlevel.checkpoint()
        self.mints += 1
        return model(f"login-{self.mints}", f"password-{self.mints}")


async def test_a_late_401_for_an_old_pair_does_not_drop_the_new_one():
    transport = MintingTransport()
    provider = MintedCredentials(LOGIN, base_url=VT_URL, clock=InstantClock())
    first = await provider.current(transport)
    assert await provider.rejected(first)
    second = await provider.current(transport)
    assert (first.login, second.login) == ("login-1", "login-2")
    # Another task's request, sent with the first pair, is answered 401 only now.
    assert await provider.rejected(first)
    assert await provider.current(transport) is second
    assert transport.mints == 2


# --- behaviour against the simulator -----------------------------------------------------------


class Delayed(httpx.AsyncBaseTransport):
    """Holds each request for ``seconds`` of the fake clock before sending it on.

    In process, an exchange with the simulator never yields, so tasks would take turns; the
    delay makes them overlap as they do over a network.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, clock: FakeClock, seconds: float):
        self._inner = inner
        self._clock = clock
        self._seconds = seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._clock.sleep(self._seconds)
        return await self._inner.handle_async_request(request)


def simulated() -> tuple[PlumSimulator, FakeClock, httpx.AsyncClient]:
    clock = FakeClock()
    sim = PlumSimulator(clock=clock)
    return sim, clock, httpx.AsyncClient(transport=Delayed(sim.transport(), clock, 1.0))


def minted_requests(sim: PlumSimulator) -> list[int]:
    return [entry.status for entry in sim.requests if entry.path == "/api/auth"]


def report_statuses(sim: PlumSimulator) -> list[int]:
    return [entry.status for entry in sim.requests if entry.path != "/api/auth"]


async def fetch_report(client: PlumClient, results: list[object]) -> None:
    start, end = date(2023, 11, 10), date(2023, 11, 12)
    results.append(await client.performance.fetch(start, end, period="day", phone="ALL"))


async def run_tasks(clock: FakeClock, count: int, task, *args) -> None:
    # A real-time guard: a regression fails here instead of hanging on the fake clock.
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for _ in range(count):
                group.start_soon(task, *args)
            await clock.advance(60)


async def test_fifty_tasks_starting_at_once_mint_one_pair():
    sim, clock, http = simulated()
    results: list[object] = []
    async with (
        http,
        sim.client(voicetrends_login=sim.voicetrends_login, http_client=http) as client,
    ):
        await run_tasks(clock, 50, fetch_report, client, results)
    assert minted_requests(sim) == [200]
    assert report_statuses(sim) == [200] * 50
    assert len(results) == 50
    assert all(result == results[0] for result in results)


async def test_an_expired_pair_is_minted_anew_once_for_all_the_tasks_it_failed():
    sim, clock, http = simulated()
    results: list[object] = []
    async with (
        http,
        sim.client(voicetrends_login=sim.voicetrends_login, http_client=http) as client,
    ):
        await run_tasks(clock, 1, fetch_report, client, results)
        sim.expire_temporary_credentials()
        await run_tasks(clock, 20, fetch_report, client, results)
    assert minted_requests(sim) == [200, 200]
    # All twenty were sent with the expired pair, answered 401, and retried with the new one.
    assert report_statuses(sim) == [200] + [401] * 20 + [200] * 20
    assert len(results) == 21
    # Every pair spends the tool account's one data bucket (plum-api.md 1.3), never a new one.
    tool_account = account_hash(sim.voicetrends_login.login)
    data = [entry for entry in sim.requests if entry.path != "/api/auth"]
    assert {entry.account for entry in data if entry.status == 200} == {tool_account}


async def test_a_refused_login_is_tried_once_for_fifty_waiting_tasks():
    sim, clock, http = simulated()
    wrong = VoiceTrendsLogin(tool="fuseplus", login=sim.voicetrends_login.login, password="nope")
    failures: list[BaseException] = []

    async def attempt(client: PlumClient) -> None:
        try:
            await fetch_report(client, [])
        except AuthenticationError as exc:
            failures.append(exc)

    async with http, sim.client(voicetrends_login=wrong, http_client=http) as client:
        await run_tasks(clock, 50, attempt, client)
    # plum-api.md 6.2: 15 attempts per 15 minutes; fifty would lock the account out for an hour.
    assert minted_requests(sim) == [401]
    assert report_statuses(sim) == []
    assert len(failures) == 50
    assert all("refused to mint" in str(failure) for failure in failures)


async def test_clients_sharing_a_governor_share_the_auth_budget_of_fifteen():
    clock = FakeClock()
    sim = PlumSimulator(clock=clock)
    governor = LocalGovernor(clock=clock)
    results: list[object] = []
    clients = [
        sim.client(voicetrends_login=sim.voicetrends_login, governor=governor) for _ in range(16)
    ]
    async with anyio.create_task_group() as group:
        for client in clients:
            group.start_soon(fetch_report, client, results)
        await clock.advance(10)
        assert len(results) == 15  # the sixteenth waits for the window: no 429 is needed
        await clock.advance(200)
    for client in clients:
        await client.aclose()
    assert len(results) == 16
    assert minted_requests(sim) == [200] * 16


async def test_a_429_from_auth_is_held_by_the_governor_until_the_reset():
    clock = FakeClock()
    sim = PlumSimulator(clock=clock)
    login = sim.voicetrends_login
    # Another process spends the tool login's whole auth window first (plum-api.md 1.3).
    async with httpx.AsyncClient(transport=sim.transport(), base_url=sim.BASE_URL) as other:
        form = {"tool": login.tool, "login": login.login, "password": login.password}
        for _ in range(15):
            assert (await other.post("auth", data=form)).status_code == 200
    results: list[object] = []
    async with sim.client(voicetrends_login=login) as client, anyio.create_task_group() as group:
        group.start_soon(fetch_report, client, results)
        await clock.advance(50)
        assert results == []
        assert minted_requests(sim)[15:] == [429]  # one probe, then the bucket is closed
        await clock.advance(60)
    assert len(results) == 1
    assert minted_requests(sim)[15:] == [429, 200]


async def test_an_injected_http_clients_own_auth_never_reaches_the_auth_resource():
    with respx.mock(assert_all_called=True) as router:
        auth = router.post(AUTH_URL).mock(return_value=httpx.Response(200, json=PAIRS[0]))
        router.get(VOLUME_URL).mock(return_value=httpx.Response(200, json=REPORT))
        async with (
            httpx.AsyncClient(auth=("app-default", "app-secret")) as http,
            vt_client(http_client=http) as client,
        ):
            await volume(client)
    assert "authorization" not in auth.calls.last.request.headers


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_minting_and_reports_over_loopback(fmt):
    sim = PlumSimulator()
    with serve(sim) as url:
        async with PlumClient(
            voicetrends_login=sim.voicetrends_login, voicetrends_url=url, format=fmt
        ) as client:
            day = sim.dataset.page(0, 2**31, offset=0, limit=1)[0].start.date()
            flow = await client.diagnostic_flow.fetch(day, day, phone="ALL")
            profile = await client.geographic.fetch(day, day, phone="ALL")
    assert flow == sim.dataset.diagnostic_flow(day, day, "ALL")
    assert profile == sim.dataset.geographic_profile(day, day, "ALL")
    assert minted_requests(sim) == [200]
    assert report_statuses(sim) == [200, 200]
