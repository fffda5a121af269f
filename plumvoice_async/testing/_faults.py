"""Faults a ``PlumSimulator`` injects: latency, 5xx, a dropped connection, a malformed body.

Selection is deterministic: by path prefix, by predicate, and by a probability drawn from an
RNG seeded by the simulator's ``fault_seed``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from typing import Literal

import attrs
import httpx

from .._core import arguments
from .._core.requests import QuotaGroup
from .._errors import InvalidParameterError

__all__ = ["Fault", "FaultPlan", "SimRequest", "SimulatedConnectionDrop"]


@attrs.frozen
class SimRequest:
    """What a fault's predicate sees: the request, with its account as a hash."""

    method: str
    path: str
    query: Mapping[str, str]
    group: QuotaGroup
    account: str


class SimulatedConnectionDrop(httpx.RemoteProtocolError):
    """Raised by the app to cut a response mid-body (the ``drop`` fault).

    Through ``httpx.ASGITransport`` the client sees this httpx transport error; served by
    uvicorn, the connection closes and the client sees an incomplete body.
    """


@attrs.define
class Fault:
    """One injected fault; ``times`` left (``None``: every match) and ``hits`` so far."""

    kind: Literal["latency", "status", "drop", "malformed"]
    times: int | None
    path_prefix: str | None
    predicate: Callable[[SimRequest], bool] | None
    probability: float
    seconds: float = 0.0
    status: int = 503
    body: Literal["html", "truncated"] = "html"
    hits: int = 0

    def _matches(self, request: SimRequest, rng: random.Random) -> bool:
        if self.times == 0:
            return False
        if self.path_prefix is not None and not request.path.startswith(self.path_prefix):
            return False
        if self.predicate is not None and not self.predicate(request):
            return False
        # Draw only for probabilistic faults, so adding a certain one never shifts the others.
        if self.probability < 1.0 and rng.random() >= self.probability:
            return False
        self.hits += 1
        if self.times is not None:
            self.times -= 1
        return True


class FaultPlan:
    """The faults a simulator injects into admitted requests.

    Each method adds a fault and returns it. A fault applies to requests whose path starts
    with ``path_prefix`` (the full path, such as ``"/api/calls/"``), that ``predicate``
    accepts, and then with ``probability`` drawn from an RNG seeded with ``seed``; ``times``
    bounds how often (``None``: always). Every matching latency fault delays the answer on the
    simulator's clock; then the first matching other fault, in the order added, applies.
    """

    def __init__(self, seed: int = 0) -> None:
        seed = arguments.count(seed, name="seed")
        self._faults: list[Fault] = []
        self._rng = random.Random(seed)  # noqa: S311 - deterministic test faults, not secrets

    def __repr__(self) -> str:
        return f"FaultPlan({', '.join(fault.kind for fault in self._faults)})"

    def __iter__(self) -> Iterator[Fault]:
        return iter(self._faults)

    def _add(self, fault: Fault) -> Fault:
        """Check the arguments every method takes, then add the fault."""
        if fault.times is not None:
            arguments.count(fault.times, name="times")
        if fault.path_prefix is not None:
            arguments.text(fault.path_prefix, name="path_prefix")
        if fault.predicate is not None and not callable(fault.predicate):
            raise InvalidParameterError("predicate", fault.predicate, "expected a callable")
        if not 0.0 <= arguments.finite(fault.probability, name="probability") <= 1.0:
            raise InvalidParameterError("probability", fault.probability, "must be within [0, 1]")
        self._faults.append(fault)
        return fault

    def latency(
        self,
        seconds: float,
        *,
        times: int | None = None,
        path_prefix: str | None = None,
        predicate: Callable[[SimRequest], bool] | None = None,
        probability: float = 1.0,
    ) -> Fault:
        """Delay matching answers by ``seconds`` (slept on the simulator's clock)."""
        seconds = arguments.non_negative_finite(seconds, name="seconds")
        return self._add(
            Fault("latency", times, path_prefix, predicate, probability, seconds=seconds)
        )

    def status(
        self,
        status: int = 503,
        *,
        times: int | None = 1,
        path_prefix: str | None = None,
        predicate: Callable[[SimRequest], bool] | None = None,
        probability: float = 1.0,
    ) -> Fault:
        """Answer with a 5xx and an ``error`` body in the request's format."""
        if not 500 <= arguments.count(status, name="status") <= 599:
            raise InvalidParameterError("status", status, "a status fault is a 5xx")
        return self._add(Fault("status", times, path_prefix, predicate, probability, status=status))

    def drop(
        self,
        *,
        times: int | None = 1,
        path_prefix: str | None = None,
        predicate: Callable[[SimRequest], bool] | None = None,
        probability: float = 1.0,
    ) -> Fault:
        """Cut the connection after the headers and half of the body."""
        return self._add(Fault("drop", times, path_prefix, predicate, probability))

    def malformed(
        self,
        body: Literal["html", "truncated"] = "html",
        *,
        times: int | None = 1,
        path_prefix: str | None = None,
        predicate: Callable[[SimRequest], bool] | None = None,
        probability: float = 1.0,
    ) -> Fault:
        """Answer 200 with an HTML page (``"html"``) or half of the real body (``"truncated"``)."""
        body = arguments.one_of(body, name="body", choices=("html", "truncated"))
        return self._add(Fault("malformed", times, path_prefix, predicate, probability, body=body))

    def clear(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    def _select(self, request: SimRequest) -> tuple[float, Fault | None]:
        delay = 0.0
        for fault in self._faults:
            if fault.kind == "latency" and fault._matches(request, self._rng):
                delay += fault.seconds
        for fault in self._faults:
            if fault.kind != "latency" and fault._matches(request, self._rng):
                return delay, fault
        return delay, None
