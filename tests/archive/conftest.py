"""The archive's tests run each case on SQLite (a file) and on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..postgres_server import PostgresServer, postgres_server
from .databases import Database

__all__ = ["postgres_server"]  # the session fixture, imported for pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh, empty database of each kind, and plain SQL to look into it."""
    if request.param == "sqlite":
        yield Database(f"sqlite:///{tmp_path / 'archive.db'}")
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        yield Database(server.new_database())
