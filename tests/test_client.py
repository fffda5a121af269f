"""PlumClient's settings, lifecycle and secrecy; every bad input refused before the wire."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import anyio
import httpx
import pytest

from plumvoice_async import AuthenticationError, InvalidParameterError, PlumClient
from plumvoice_async._governor import account_hash
from plumvoice_async._local_governor import LocalGovernor
from plumvoice_async._redis.governor import RedisGovernor
from tests.bad_inputs import BAD_INPUTS, NOW, REPORT_BAD_INPUTS, BadInput
from tests.doubles import InstantClock, RecordingGovernor, handler_counting, json_response

pytestmark = pytest.mark.anyio

FUSE = ("me@example.com", "DEVKEY-secret")
VT = ("temp_login", "temp-password-secret")
SECRETS = ("me@example.com", "DEVKEY-secret", "temp_login", "temp-password-secret")


def test_repr_and_str_show_hosts_and_format_but_no_credential():
    client = PlumClient(fuse_auth=FUSE, voicetrends_auth=VT)
    for text in (repr(client), str(client), repr(client._credentials)):
        for secret in SECRETS:
            assert secret not in text
    assert "fuse.plumvoice.com" in repr(client)
    assert "'json'" in repr(client)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/api/",
        "http://127.9.9.9/api",
        "http://localhost:1234/api/",
        "http://[::1]:8080/api/",
        "https://fuse.example.com/api/",
    ],
)
def test_https_or_loopback_http_base_urls_are_accepted(url):
    client = PlumClient(fuse_url=url)
    assert client.fuse_url.endswith("/api/")


@pytest.mark.parametrize(
    "url", ["http://fuse.plumvoice.com/api/", "http://10.0.0.1/api/", "ftp://x/"]
)
def test_plain_http_to_a_non_loopback_host_is_refused(url):
    with pytest.raises(ValueError, match="fuse_url"):
        PlumClient(fuse_url=url)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"format": "yaml"}, "format"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_wait": -1}, "max_wait"),
        ({"fuse_auth": ("only-login",)}, "fuse_auth"),
        ({"voicetrends_auth": ("login", "")}, "voicetrends_auth"),
    ],
)
def test_invalid_settings_are_refused(settings, match):
    with pytest.raises(ValueError, match=match):
        PlumClient(**settings)


def test_a_bad_credential_pair_is_not_echoed_in_the_error():
    with pytest.raises(ValueError, match="fuse_auth") as caught:
        PlumClient(fuse_auth=("me@example.com", "DEVKEY-secret", "extra"))  # type: ignore[arg-type]
    assert "DEVKEY-secret" not in str(caught.value)


def test_from_env_reads_the_documented_variables():
    client = PlumClient.from_env(
        {
            "PLUM_FUSE_EMAIL": "me@example.com",
            "PLUM_FUSE_DEVELOPER_KEY": "DEVKEY-secret",
            "PLUM_VOICETRENDS_LOGIN": "temp_login",
            "PLUM_VOICETRENDS_PASSWORD": "temp-password-secret",
            "PLUM_FUSE_URL": "http://127.0.0.1:9000/api",
            "PLUM_VOICETRENDS_URL": "https://vt.example.com/api/",
            "PLUM_FORMAT": "xml",
        }
    )
    assert client.fuse_url == "http://127.0.0.1:9000/api/"
    assert client.voicetrends_url == "https://vt.example.com/api/"
    assert client.format == "xml"
    assert client._credentials[client._credentials.__iter__().__next__()] is not None
    assert all(pair is not None for pair in client._credentials.values())


def test_from_env_overrides_win_and_empty_env_means_no_credentials():
    client = PlumClient.from_env({}, format="xml")
    assert client.format == "xml"
    assert all(pair is None for pair in client._credentials.values())


def test_from_env_names_the_missing_half_of_a_pair_without_the_other_value():
    with pytest.raises(ValueError, match="PLUM_FUSE_DEVELOPER_KEY") as caught:
        PlumClient.from_env({"PLUM_FUSE_EMAIL": "me@example.com"})
    assert "me@example.com" not in str(caught.value)


def test_from_env_builds_a_redis_governor_from_plum_redis_url():
    client = PlumClient.from_env({"PLUM_REDIS_URL": "redis://:s3cret@127.0.0.1:6379/0"})
    assert isinstance(client.governor, RedisGovernor)
    assert "s3cret" not in repr(client)
    explicit = LocalGovernor()
    chosen = PlumClient.from_env({"PLUM_REDIS_URL": "redis://127.0.0.1:6379/0"}, governor=explicit)
    assert chosen.governor is explicit


def test_only_the_redis_governor_built_from_the_environment_closes_with_the_client(monkeypatch):
    closed: list[object] = []

    async def record_close(self: RedisGovernor) -> None:
        closed.append(self)

    monkeypatch.setattr(RedisGovernor, "aclose", record_close)
    built = PlumClient.from_env({"PLUM_REDIS_URL": "redis://127.0.0.1:6379/0"})
    shared = RedisGovernor.from_url("redis://127.0.0.1:6379/0")
    given = PlumClient.from_env({"PLUM_REDIS_URL": "redis://127.0.0.1:6379/0"}, governor=shared)
    anyio.run(built.aclose)
    anyio.run(given.aclose)
    assert closed == [built.governor]


def test_default_governor_is_a_local_governor():
    assert isinstance(PlumClient().governor, LocalGovernor)


async def test_an_injected_http_client_is_left_open_and_an_own_one_is_closed():
    injected = httpx.AsyncClient()
    async with PlumClient(http_client=injected):
        pass
    assert not injected.is_closed
    await injected.aclose()

    client = PlumClient()
    await client.aclose()
    assert client._http.is_closed


async def test_an_endpoint_without_its_credentials_raises_authentication_error():
    transport, seen = handler_counting(lambda request: json_response(200, {}))
    async with PlumClient(
        fuse_auth=FUSE, http_client=httpx.AsyncClient(transport=transport)
    ) as client:
        with pytest.raises(AuthenticationError, match="voicetrends"):
            await client.events.fetch(start=20180201, end=20180208, period="day", phone="ALL")
    assert seen == []


async def _call(client: PlumClient, case: BadInput) -> object:
    if case.endpoint == "events":
        return await client.events.fetch(**case.kwargs)
    if case.endpoint == "calls":
        return await client.calls.page(**case.kwargs)
    if case.endpoint == "call_details":
        return await client.call_details.page(**case.kwargs)
    if case.endpoint == "call_log":
        return await client.call_details.get(**case.kwargs)
    if case.endpoint in REPORT_ENDPOINTS:
        return await getattr(client, case.endpoint).fetch(**case.kwargs)
    raise AssertionError(f"unknown endpoint {case.endpoint}")


REPORT_ENDPOINTS = ("volume", "performance", "caller_profile", "diagnostic_flow", "geographic")
CLIENT_CASES = [*BAD_INPUTS, *REPORT_BAD_INPUTS]


@pytest.mark.parametrize("case", CLIENT_CASES, ids=[case.id for case in CLIENT_CASES])
async def test_bad_input_is_refused_before_any_quota_or_request(case: BadInput, caplog):
    governor = RecordingGovernor()
    transport, seen = handler_counting(lambda request: json_response(200, {}))
    caplog.set_level(logging.DEBUG, logger="plumvoice_async")
    async with PlumClient(
        fuse_auth=FUSE,
        voicetrends_auth=VT,
        governor=governor,
        clock=InstantClock(NOW),
        http_client=httpx.AsyncClient(transport=transport),
    ) as client:
        with pytest.raises(InvalidParameterError) as caught:
            await _call(client, case)
    assert caught.value.parameter == case.parameter
    assert case.parameter in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert seen == []
    assert governor.calls == []


def test_the_bad_input_table_is_big_enough():
    assert len(CLIENT_CASES) >= 30


async def test_details_five_day_window_uses_the_injected_clock():
    governor = RecordingGovernor()
    transport, seen = handler_counting(
        lambda request: json_response(200, {"calls": [], "total_calls": 0})
    )
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()
    async with PlumClient(
        fuse_auth=FUSE,
        governor=governor,
        clock=InstantClock(now),
        http_client=httpx.AsyncClient(transport=transport),
    ) as client:
        recent = int(now) - 4 * 86400
        page = await client.call_details.page(recent, int(now))
        assert page.total_calls == 0
        with pytest.raises(InvalidParameterError, match="start"):
            await client.call_details.page(int(now) - 6 * 86400, int(now))
    assert len(seen) == 1


def test_quota_key_names_the_clients_bucket_by_a_hash_never_the_login():
    client = PlumClient(fuse_auth=FUSE)
    key = client.quota_key("fuse")
    assert key is not None
    assert (key.group, key.account) == ("fuse", account_hash(FUSE[0]))
    assert FUSE[0] not in str(key)
    assert client.quota_key("voicetrends") is None
    with pytest.raises(ValueError, match="nonsense"):
        client.quota_key("nonsense")
