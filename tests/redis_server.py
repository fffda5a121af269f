"""A real ``redis-server`` for the Redis governor's tests, and the worker process they start.

``redis_url`` is a session-scoped fixture: ``running_redis_server`` starts ``redis-server`` on a
free loopback port (no persistence, in a temporary directory), waits until it answers ``PING``
and stops it after the session. Without ``redis-server`` on the PATH the tests fail, they do
not skip: CI installs it (``apt-get install -y redis-server``).

``python -m tests.redis_server REDIS_URL PREFIX SIMULATOR_URL LIMIT WINDOW TASKS REQUESTS`` is
one worker process of the multi-process test: ``TASKS`` tasks share one ``PlumClient`` and its
``RedisGovernor`` and make ``REQUESTS`` requests between them, then the worker prints how many
succeeded. It prints ``ready`` and waits for a line on stdin first, so a test can start every
worker before any request goes.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

_STARTUP_TIMEOUT = 10.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServerMissing(RuntimeError):
    """``redis-server`` is not on the PATH, or did not start."""


@contextmanager
def running_redis_server() -> Iterator[str]:
    """A fresh, empty ``redis-server`` on a free loopback port, stopped on exit; its URL.

    Shared with ``benchmarks/redis_quota.py``.
    """
    executable = shutil.which("redis-server")
    if executable is None:
        raise RedisServerMissing(
            "redis-server is not installed: the Redis governor needs a real one "
            "(apt-get install -y redis-server)"
        )
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="plumvoice-redis-") as folder:
        server = subprocess.Popen(
            [
                executable,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                folder,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + _STARTUP_TIMEOUT
            while not _ping(port):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RedisServerMissing(f"redis-server did not answer PING on port {port}")
                time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.terminate()
            server.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a fresh, empty ``redis-server`` on loopback, for the whole session.

    Without one the tests fail, they do not skip: CI installs it.
    """
    try:
        with running_redis_server() as url:
            yield url
    except RedisServerMissing as exc:
        pytest.fail(str(exc))


def _worker(argv: list[str]) -> None:
    import anyio

    from plumvoice_async import PlumError, RedisGovernor
    from plumvoice_async.testing import PlumSimulator

    redis_url, prefix, simulator_url = argv[:3]
    limit, window, tasks, requests = (int(value) for value in argv[3:])

    async def main() -> None:
        governor = RedisGovernor.from_url(
            redis_url, limit=limit, window=float(window), prefix=prefix, margin=0.2, lease=5.0
        )
        day = datetime.now(UTC).date() - timedelta(days=4)  # the simulator's first day
        done = 0
        left = requests
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        from plumvoice_async import PlumClient

        async with PlumClient(
            voicetrends_auth=PlumSimulator.VOICETRENDS_AUTH,
            voicetrends_url=simulator_url,
            fuse_url=simulator_url,
            governor=governor,
            max_retries=0,
        ) as client:

            async def fetch() -> None:
                nonlocal done, left
                while left > 0:
                    left -= 1
                    try:
                        await client.events.fetch(
                            day, day + timedelta(days=1), period="day", phone="ALL"
                        )
                    except PlumError as exc:
                        print(f"error {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                    else:
                        done += 1

            async with anyio.create_task_group() as group:
                for _ in range(tasks):
                    group.start_soon(fetch)
        await governor.aclose()
        print(f"done {done}", flush=True)

    anyio.run(main)


if __name__ == "__main__":
    _worker(sys.argv[1:])
