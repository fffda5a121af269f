"""``plumvoice sync`` end to end: a real process, the simulator on loopback, SQLite and a real
PostgreSQL; ``kill -9`` at random moments and a rerun lose and double nothing."""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from plumvoice_async import Call, CallType
from plumvoice_async.testing import CallDataset, PlumSimulator, serve

from ..cli_support import plum_env
from .databases import Database, call_row, event_rows

pytestmark = pytest.mark.slow

DAY = 86_400
SYNC = [sys.executable, "-m", "plumvoice_async._cli", "sync"]
CALLS = 2_000
PAGE = 100  # 20 pages of calls, 20 of logs: 40 transactions to be killed in


@pytest.fixture(scope="module")
def simulator() -> PlumSimulator:
    today = math.floor(time.time() / DAY) * DAY
    dataset = CallDataset(size=CALLS, start=today - 3 * DAY, spacing=120)
    return PlumSimulator(dataset, limit=100_000)


@pytest.fixture(scope="module")
def base_url(simulator: PlumSimulator) -> Iterator[str]:
    with serve(simulator) as url:
        yield url


def secrets_of(database: Database) -> list[str]:
    password = database.url.partition("://")[2].partition("@")[0].partition(":")[2]
    return [*PlumSimulator.FUSE_AUTH, *([password] if password else [])]


def sync(database: Database, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*SYNC, "--db", database.url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for secret in secrets_of(database):
        assert secret not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done


class KilledSyncs:
    """``plumvoice sync`` runs, each killed (SIGKILL) a random few milliseconds after the
    server sees its k-th page request, k random per run: the kill lands between or inside
    transactions. Install ``on_page`` as the simulator's hook; ``churn`` (if given) runs on
    every third page request and before each run, under the same lock."""

    def __init__(
        self, rng: random.Random, pages: int, churn: Callable[[], None] | None = None
    ) -> None:
        self.rng, self.pages, self.churn = rng, pages, churn
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.seen = self.kill_at = 0

    def on_page(self, offset: int, limit: int) -> None:
        with self.lock:
            self.seen += 1
            if self.churn is not None and self.seen % 3 == 0:
                self.churn()
            if self.process is not None and self.seen == self.kill_at:
                threading.Timer(self.rng.uniform(0, 0.05), self._kill, (self.process,)).start()

    @staticmethod
    def _kill(victim: subprocess.Popen[bytes]) -> None:
        if victim.poll() is None:
            os.kill(victim.pid, signal.SIGKILL)

    def run(self, database: Database, env: dict[str, str]) -> bool:
        """One run to its end or its kill; whether it was killed."""
        with self.lock:
            self.seen, self.kill_at = 0, self.rng.randint(1, self.pages)
            if self.churn is not None:
                self.churn()
        self.process = subprocess.Popen(
            [*SYNC, "--db", database.url, "--page-size", str(PAGE)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            return self.process.wait(timeout=120) == -signal.SIGKILL
        finally:
            self.process = None


def test_kill_9_at_random_moments_then_a_rerun_loses_and_doubles_nothing(
    database: Database, simulator: PlumSimulator, base_url: str
):
    """Each attempt is killed when the server sees its k-th page request (k random), after a
    random few milliseconds more, so the kill lands between or inside transactions."""
    env = plum_env(simulator, base_url)
    seed = random.randrange(2**32)
    runs = KilledSyncs(random.Random(seed), pages=2 * CALLS // PAGE)
    simulator.on_page = runs.on_page
    try:
        killed = sum(runs.run(database, env) for _ in range(3))
    finally:
        simulator.on_page = None
    assert killed >= 1, f"no attempt was killed (seed {seed})"
    final = sync(database, env, "--page-size", str(PAGE))
    assert final.returncode == 0, final.stderr
    calls = simulator.dataset.page(0, 2**40, offset=0, limit=CALLS)
    assert database.calls() == {c.session_id: call_row(c, "archived") for c in calls}, seed
    expected = {
        c.session_id: event_rows(simulator.dataset.details(c.session_id) or []) for c in calls
    }
    assert database.events() == {key: rows for key, rows in expected.items() if rows}, seed


def test_follow_says_how_many_logs_expire_within_the_hour(tmp_path):
    now = int(time.time())
    # Twenty calls 10 to 30 minutes past the 5-day limit: each expires within the hour.
    sim = PlumSimulator(CallDataset(size=20, start=now - 5 * DAY + 600, spacing=60))
    database = Database(f"sqlite:///{tmp_path / 'archive.db'}")
    with serve(sim) as url:
        process = subprocess.Popen(
            [*SYNC, "--db", database.url, "--no-details", "--follow", "--every", "0.1"],
            env=plum_env(sim, url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        watchdog = threading.Timer(60, process.kill)
        watchdog.start()
        try:
            assert process.stdout is not None
            first, second = process.stdout.readline(), process.stdout.readline()
        finally:
            watchdog.cancel()
            process.kill()
            process.communicate()
    assert first.startswith("20 new calls"), first
    assert first.rstrip().endswith("; 20 logs expire within the hour"), first
    assert second.startswith("0 new calls"), second
    assert second.rstrip().endswith("; 20 logs expire within the hour"), second


def test_an_unknown_scheme_exits_2_without_the_password(tmp_path, simulator, base_url):
    database = Database("mysql://me:hunter2@db.example.com/plum")
    done = sync(database, plum_env(simulator, base_url))
    assert done.returncode == 2
    assert "argument --db: invalid url='mysql://me:***@db.example.com/plum'" in done.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://me:hunter2@[::1/plum",  # no URL at all: was a traceback
        "PostgreSQL://me:hunter2@127.0.0.1:1/plum",  # was libpq quoting the whole URL
        "postgresql://me:zq9@hunter2@127.0.0.1:1/plum",  # libpq's host "hunter2@127.0.0.1"
    ],
)
def test_a_malformed_postgres_url_exits_2_or_4_without_the_password(url, simulator, base_url):
    done = sync(Database(url), plum_env(simulator, base_url))
    assert done.returncode in (2, 4), done.stderr
    assert "hunter" not in done.stderr + done.stdout


def test_an_unreachable_postgres_exits_4_before_any_request(simulator, base_url):
    before = len(simulator.requests)
    done = sync(Database("postgresql://me:hunter2@127.0.0.1:1/plum"), plum_env(simulator, base_url))
    assert done.returncode == 4
    assert "cannot reach PostgreSQL" in done.stderr
    assert len(simulator.requests) == before


def test_a_newer_schema_exits_2_and_nothing_is_written(tmp_path, simulator, base_url):
    database = Database(f"sqlite:///{tmp_path / 'archive.db'}")
    assert sync(database, plum_env(simulator, base_url), "--no-details").returncode == 0
    database.execute("UPDATE plum_sync_state SET value = '7' WHERE key = 'schema_version'")
    before = database.query("SELECT key, value FROM plum_sync_state ORDER BY key")
    done = sync(database, plum_env(simulator, base_url))
    assert done.returncode == 2
    assert "schema is version 7, newer than this plumvoice-async knows" in done.stderr
    assert database.query("SELECT key, value FROM plum_sync_state ORDER BY key") == before


def test_a_since_in_the_future_exits_2_naming_the_option(tmp_path, simulator, base_url):
    database = Database(f"sqlite:///{tmp_path / 'archive.db'}")
    done = sync(database, plum_env(simulator, base_url), "--since", "2099-01-01")
    assert done.returncode == 2
    assert "argument --since: invalid since=2099-01-01: in the future" in done.stderr


def test_a_postgres_role_without_permission_exits_2(postgres_server, simulator, base_url):
    role = f"noperm_{random.randrange(10**9)}"
    postgres_server.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'noperm-secret'")
    url = postgres_server.new_database(user=role, password="noperm-secret")
    postgres_server.execute(f"GRANT USAGE ON SCHEMA {url.rpartition('%3D')[2]} TO {role}")
    done = sync(Database(url), plum_env(simulator, base_url))
    assert done.returncode == 2, done.stderr
    assert "no permission" in done.stderr


def recent_call(session_number: int, start: int, *, end_after: int = 30) -> Call:
    return Call(
        dest="6177123000",
        src="6175550000",
        start=datetime.fromtimestamp(start, UTC),
        end=datetime.fromtimestamp(start + end_after, UTC),
        session_id=f"{900_000 + session_number};001;{start - 5}",
        type=CallType.INBOUND,
        log=True,
    )


def test_kill_9_amid_churn_then_a_rerun_stores_what_the_server_serves(database: Database):
    """As above, and the server's calls change under the runs: calls listed late (inside the
    overlap), deleted and changed, between runs and during them (from the page hook)."""
    now = int(time.time())
    sim = PlumSimulator(CallDataset(size=1_000, start=now - 3 * DAY, spacing=200), limit=100_000)
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    inserted = 0
    deleted: set[str] = set()

    def churn() -> None:  # on the server's thread, or between runs: never both at once
        nonlocal inserted
        inserted += 1
        sim.dataset.insert_call(recent_call(inserted, int(time.time()) - rng.randint(60, 1_800)))
        live = sim.dataset.page(0, 2**40, offset=0, limit=len(sim.dataset))
        victim = rng.choice(live)
        sim.dataset.delete_call(victim.session_id)
        deleted.add(victim.session_id)
        if victim.start.timestamp() > time.time() - 1_800:  # a recent one: changed instead
            changed = Call(
                victim.dest,
                victim.src,
                victim.start,
                victim.end + timedelta(seconds=7),
                victim.session_id,
                victim.type,
                victim.log,
            )
            sim.dataset.insert_call(changed)
            deleted.discard(victim.session_id)

    runs = KilledSyncs(rng, pages=2 * 1_000 // PAGE, churn=churn)
    with serve(sim) as url:
        env = plum_env(sim, url)
        sim.on_page = runs.on_page
        killed = sum(runs.run(database, env) for _ in range(4))
        sim.on_page = None
        final = sync(database, env, "--page-size", str(PAGE))
    assert killed >= 1, f"no attempt was killed (seed {seed})"
    assert final.returncode == 0, final.stderr
    live = sim.dataset.page(0, 2**40, offset=0, limit=len(sim.dataset))
    stored = database.calls()
    assert {c.session_id: stored.get(c.session_id) for c in live} == {
        c.session_id: call_row(c, "archived") for c in live
    }, seed
    assert stored.keys() - {c.session_id for c in live} <= deleted, seed
    events = database.events()
    for call in live:
        assert events.get(call.session_id, []) == event_rows(
            sim.dataset.details(call.session_id) or []
        ), seed


def test_two_syncs_started_together_on_one_database_both_succeed_and_store_once(
    database: Database, simulator: PlumSimulator, base_url: str
):
    """Two processes, one account, one database, at the same time: they cooperate."""
    env = plum_env(simulator, base_url)
    both = [
        subprocess.Popen(
            [*SYNC, "--db", database.url, "--page-size", str(PAGE)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in both:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "Traceback" not in err
    calls = simulator.dataset.page(0, 2**40, offset=0, limit=CALLS)
    assert database.calls() == {c.session_id: call_row(c, "archived") for c in calls}
    expected = {
        c.session_id: event_rows(simulator.dataset.details(c.session_id) or []) for c in calls
    }
    assert database.events() == {key: rows for key, rows in expected.items() if rows}


@pytest.mark.parametrize("kind", ["wrong password", "no such database"])
def test_a_refused_login_exits_2_not_4(postgres_server, simulator, base_url, kind):
    """Not "cannot reach" (exit 4, retry later): the URL is the user's to fix."""
    if kind == "wrong password":
        url = postgres_server.url(password="wrong-zq9")
    else:
        url = postgres_server.url("no_such_database")
    done = sync(Database(url), plum_env(simulator, base_url))
    assert done.returncode == 2, done.stderr
    assert "PostgreSQL refused the connection" in done.stderr
