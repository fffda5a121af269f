"""Serve an ASGI app (the simulator) with a real uvicorn on loopback, from a background thread.

The server runs its own event loop in its own thread, so the tests that talk to it may run on
asyncio or trio alike. uvicorn is a test-time dependency only, imported when ``serve`` runs.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from .._core import arguments
from .._errors import InvalidParameterError
from ._faults import SimulatedConnectionDrop

__all__ = ["serve"]

_STARTUP_TIMEOUT = 10.0


class _HideSimulatedDrops(logging.Filter):
    """Strictly private: keep uvicorn from logging a ``drop`` fault as an application crash."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, SimulatedConnectionDrop)


@contextlib.contextmanager
def serve(
    app: Any, host: str = "127.0.0.1", *, base_path: str = "/api/", port: int = 0
) -> Iterator[str]:
    """Serve ``app`` on ``port`` of ``host`` (0: a free one); yield its base URL,
    ``http://host:port/api/``.

    The socket is bound and listening before the server thread starts, and the URL is yielded
    only once uvicorn has started, so the first request never races the startup. On exit the
    server stops and the thread is joined. uvicorn's access log is off, and its own ``Date``
    and ``Server`` headers too: the app's ``Date`` (the simulator's clock) is the only one.
    The app runs on the server thread's event loop: a simulator served this way may use a
    ``FakeClock`` for its quotas and ``Date``, but its latency faults need the system clock.

    Raises:
        ModuleNotFoundError: uvicorn is not installed (the message says how to get it).
        OSError: ``port`` is taken or not allowed.
        RuntimeError: when uvicorn does not start within 10 seconds.
    """
    if not callable(app):
        raise InvalidParameterError("app", app, "expected an ASGI app (a callable)")
    arguments.text(host, name="host")
    base_path = arguments.text(base_path, name="base_path")
    if not (base_path.startswith("/") and base_path.endswith("/")):
        raise InvalidParameterError("base_path", base_path, "expected a str path like '/api/'")
    port = arguments.count(port, name="port", minimum=0, maximum=65_535)
    try:
        import uvicorn
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "serving the simulator on loopback needs uvicorn, which is not installed: "
            "pip install 'plumvoice-async[demo]' (or pip install uvicorn); "
            "in process, use simulator.transport() or simulator.client() instead",
            name="uvicorn",
        ) from exc

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    # Inherited by every accepted connection: uvicorn writes an answer's head and body apart,
    # and Nagle's algorithm held the body for the client's delayed ACK, ~40 ms a request.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind((host, port))
    listener.listen()
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="off",
        http="h11",
        ws="none",
        loop="asyncio",
        log_config=None,
        access_log=False,
        date_header=False,
        server_header=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name=f"uvicorn:{port}", daemon=True
    )
    error_log = logging.getLogger("uvicorn.error")
    hide_drops = _HideSimulatedDrops()
    error_log.addFilter(hide_drops)
    thread.start()
    try:
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {host}:{port}")
            time.sleep(0.005)
        url_host = f"[{host}]" if family == socket.AF_INET6 else host
        yield f"http://{url_host}:{port}{base_path}"
    finally:
        server.should_exit = True
        thread.join()
        listener.close()
        error_log.removeFilter(hide_drops)
