"""Test doubles for code that uses plumvoice-async: a Plum API simulator and a fake clock.

``PlumSimulator`` is an ASGI app; use it through ``simulator.transport()`` in-process or
``serve(simulator)`` on loopback. The ``plum_simulator`` and ``plum_simulator_url`` pytest
fixtures are registered automatically when plumvoice-async is installed.
"""

from ._clock import FakeClock
from ._dataset import CallDataset
from ._faults import Fault, FaultPlan, SimRequest, SimulatedConnectionDrop
from ._server import serve
from ._simulator import LoggedRequest, PlumSimulator, Quota

__all__ = [
    "CallDataset",
    "FakeClock",
    "Fault",
    "FaultPlan",
    "LoggedRequest",
    "PlumSimulator",
    "Quota",
    "SimRequest",
    "SimulatedConnectionDrop",
    "serve",
]
