"""Bad and secret-bearing database URLs: refused at open naming ``url``, never shown."""

from __future__ import annotations

import secrets
from urllib.parse import quote

import pytest

from plumvoice_async import InvalidParameterError
from plumvoice_async.archive import Archive, ArchiveError, ArchiveUnavailableError
from plumvoice_async.testing import CallDataset, FakeClock, PlumSimulator

from .account import DAY, NOW

pytestmark = pytest.mark.anyio

# --- Bad URLs: refused at open, naming the argument, never showing the password ----------

BAD_URLS = [
    None,
    5,
    b"sqlite:///plum.db",
    "",
    "sqlite:///",  # would be a temporary database, gone at close
    "sqlite:///plum.db\x00.txt",
    "sqlite:///plum.db?mode=ro",  # a file literally named "plum.db?mode=ro"
    "sqlite:///plum.db#main",
    "postgresql://me:hunter2@[::1/plum",  # not a URL at all
    "postgresql://me:p@hunter2@127.0.0.1:1/plum",  # libpq: password "p", host "hunter2@..."
    "postgresql://me:hunter/2@127.0.0.1:1/plum",  # libpq: host "me", port "hunter"
    "postgresql://me:hun%zzter2@127.0.0.1:1/plum",  # a broken %-escape
    "postgresql://me:hun?ter2@127.0.0.1:1/plum",  # the user part of libpq, not of a URL
]


@pytest.mark.parametrize("url", BAD_URLS, ids=repr)
async def test_a_malformed_url_is_refused_at_open_naming_url_without_its_password(url):
    with pytest.raises(InvalidParameterError, match="url") as caught:
        Archive.open(url)
    for piece in ("hunter", "ter2", "zzter"):
        assert piece not in str(caught.value)
        assert piece not in repr(caught.value.value)


SECRET_URLS = [
    "PostgreSQL://me:hunter2@127.0.0.1:1/plum",  # scheme case: libpq quoted the whole URL
    "POSTGRES://me:hunter2@127.0.0.1:1/plum",
    "postgresql://me:hun#ter2@127.0.0.1:1/plum",  # a '#' libpq takes as part of the password
    "postgresql://127.0.0.1:1/plum?password=hunter2",
    "postgresql://me:hun%3Fter2@127.0.0.1:1/plum?user=me@example.com&password=hunter2",
]


@pytest.mark.parametrize("url", SECRET_URLS)
async def test_no_form_of_a_postgres_url_shows_its_password(url):
    archive = Archive.open(url)
    assert "ter2" not in repr(archive)
    with pytest.raises(ArchiveError) as caught:
        async with archive:
            pass
    assert "ter2" not in str(caught.value)
    assert "cannot reach PostgreSQL" in str(caught.value)
    # Not even in the chained context a logger or error tracker would walk.
    context = caught.value.__context__
    while context is not None:
        assert "ter2" not in str(context)
        context = context.__context__


async def test_an_upper_case_sqlite_scheme_is_a_sqlite_archive(tmp_path):
    async with Archive.open(f"SQLite:///{tmp_path / 'plum.db'}"):
        pass
    assert (tmp_path / "plum.db").exists()


async def test_special_characters_percent_encoded_in_a_password_log_in(postgres_server):
    """The refusals above must not catch a correct URL: a password full of URL syntax,
    percent-encoded, logs in; an "@" in a query value is no user part."""
    password = "p@ss/w#rd?:%"
    role = f"special_{secrets.token_hex(4)}"
    postgres_server.execute(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'")
    encoded = quote(password, safe="")
    url = postgres_server.new_database(user=role, password=encoded)
    async with Archive.open(url) as archive:
        assert encoded not in repr(archive)
    Archive.open(f"postgresql://127.0.0.1:{postgres_server.port}/postgres?user=me@example.com")


@pytest.mark.parametrize("kind", ["wrong password", "no such database"])
async def test_a_refused_login_names_the_cause_never_the_password(postgres_server, kind):
    if kind == "wrong password":
        url = postgres_server.url(password="wrong-hunter2")
    else:
        url = postgres_server.url("no_such_database")
    with pytest.raises(ArchiveError) as caught:
        async with Archive.open(url):
            pass
    assert not isinstance(caught.value, ArchiveUnavailableError)  # the user's to fix: exit 2
    assert "PostgreSQL refused the connection" in str(caught.value)
    assert postgres_server.password not in str(caught.value)
    assert "hunter2" not in str(caught.value)


async def test_no_credential_reaches_any_row(database):
    sim = PlumSimulator(
        CallDataset(size=50, start=NOW - DAY, spacing=600), clock=FakeClock(start=NOW)
    )
    async with sim.client() as client, Archive.open(database.url) as archive:
        await archive.sync(client)
    rows = [
        *database.query("SELECT * FROM plum_sync_state"),
        *database.query("SELECT * FROM plum_calls"),
        *database.query("SELECT * FROM plum_call_events"),
    ]
    text = repr(rows)
    for secret in (*sim.fuse_auth, database.url.partition("@")[0].rpartition(":")[2]):
        assert secret not in text
