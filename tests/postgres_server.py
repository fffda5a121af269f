"""A real PostgreSQL server for the archive's tests, from Debian's ``postgresql`` package.

``running_postgres_server`` runs ``initdb`` in a temporary directory and starts the server on
a free loopback port (its unix socket in that directory too, never the system's), and on exit
stops it and removes the directory. PostgreSQL refuses to run as root, so when the tests run as
root the server runs as the ``postgres`` system user (``runuser``), owning the directory.

The superuser ``postgres`` logs in over TCP with a password (SCRAM), so the tests can check that
no password ever reaches the output. Without PostgreSQL the tests fail, they do not skip: CI
installs it (``apt-get install -y postgresql``).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import pytest

_INSTALL = "apt-get install -y postgresql"


class PostgresMissing(RuntimeError):
    """PostgreSQL's server programs are not installed, or the server did not start."""


@attrs.frozen
class PostgresServer:
    """A running server: its port and superuser password; ``url(db)`` for one database."""

    port: int
    password: str

    def url(
        self, database: str = "postgres", *, user: str = "postgres", password: str | None = None
    ) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{user}:{secret}@127.0.0.1:{self.port}/{database}"

    def execute(self, *statements: str, database: str = "postgres") -> None:
        """Run ``statements`` as the superuser, each in autocommit."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement)  # type: ignore[arg-type]

    def new_database(self, *, user: str = "postgres", password: str | None = None) -> str:
        """A fresh, empty schema of the ``postgres`` database, as the URL of a database whose
        tables go there (its ``search_path``): milliseconds, where ``CREATE DATABASE`` takes
        a second. ``user``/``password``: log in as that role instead of the superuser."""
        name = f"archive_{secrets.token_hex(6)}"
        self.execute(f"CREATE SCHEMA {name}")
        return f"{self.url(user=user, password=password)}?options=-csearch_path%3D{name}"


def _bin_dir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise PostgresMissing(
            "PostgreSQL is not installed: the archive's tests need a real server "
            f"(no /usr/lib/postgresql/*/bin/initdb; {_INSTALL})"
        )
    return Path(initdb).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_postgres_server() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL server on a free loopback port, stopped and removed on exit.

    Shared with ``benchmarks/archive.py``.
    """
    bin_dir = _bin_dir()
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    folder = Path(tempfile.mkdtemp(prefix="plumvoice-postgres-"))
    data = folder / "data"
    password = secrets.token_urlsafe(16)
    try:
        (folder / "password").write_text(password)
        if as_root:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresMissing(
                    f"no 'postgres' system user to run PostgreSQL as ({_INSTALL} creates it)"
                ) from None
            for path in (folder, folder / "password"):
                os.chown(path, owner.pw_uid, owner.pw_gid)

        def run(*command: str) -> None:
            done = subprocess.run(
                [*prefix, *command], capture_output=True, text=True, timeout=60, check=False
            )
            if done.returncode != 0:
                raise PostgresMissing(f"{Path(command[0]).name} failed: {done.stderr.strip()}")

        run(
            str(bin_dir / "initdb"),
            "-D", str(data),
            "-U", "postgres",
            f"--pwfile={folder / 'password'}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        port = _free_port()
        options = f"-p {port} -h 127.0.0.1 -k {folder} -F -c max_connections=50"
        run(
            str(bin_dir / "pg_ctl"),
            "-D", str(data),
            "-l", str(folder / "server.log"),
            "-o", options,
            "-w", "-t", "30",
            "start",
        )  # fmt: skip
        try:
            yield PostgresServer(port, password)
        finally:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole session; without one the tests fail."""
    try:
        with running_postgres_server() as server:
            yield server
    except PostgresMissing as exc:
        pytest.fail(str(exc))
