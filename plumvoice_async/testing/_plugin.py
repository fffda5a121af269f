"""The pytest plugin of plumvoice-async (registered through the ``pytest11`` entry point).

pytest loads it in every session of every project that installs plumvoice-async, so it
imports nothing heavy up front: the simulator and uvicorn load when a fixture is first used.
The fixtures are synchronous and function-scoped, so they work the same in pytest-asyncio,
anyio and trio test suites.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._simulator import PlumSimulator

__all__ = ["plum_simulator", "plum_simulator_url"]


@pytest.fixture
def plum_simulator() -> PlumSimulator:
    """A fresh ``PlumSimulator`` with its default data set, accounts and quotas.

    Wire it in process with ``transport=plum_simulator.transport()`` and
    ``base_url=plum_simulator.BASE_URL``; its accounts are ``plum_simulator.fuse_auth`` and
    ``plum_simulator.voicetrends_auth``.
    """
    from ._simulator import PlumSimulator

    return PlumSimulator()


@pytest.fixture
def plum_simulator_url(plum_simulator: PlumSimulator) -> Iterator[str]:
    """``plum_simulator`` served by uvicorn on a free loopback port: its base URL.

    Requires uvicorn (``pip install 'plumvoice-async[demo]'``); without it the fixture fails
    with a message saying so.
    """
    from ._server import serve

    with serve(plum_simulator) as url:
        yield url
