"""OpenTelemetry for the client: spans and metrics through the global providers (``otel``).

With ``opentelemetry-api`` installed (the ``otel`` extra), every client records, through the
globally configured providers (the application brings the SDK and exporters; without them the
API's no-op providers make this free):

- a span per logical request, ``plumvoice <operation>`` (``plumvoice calls.page``), kind
  CLIENT, covering its waits for quota and its retries; attributes ``plumvoice.quota.group``
  and, once answered, ``http.response.status_code``; an error status when it failed;
- ``plumvoice.client.requests`` (counter): each attempt, with ``plumvoice.quota.group`` and
  ``http.response.status_code``, or ``error.type`` when no answer came;
- ``plumvoice.client.rate_limited`` (counter): each 429, with ``plumvoice.quota.group``;
- ``plumvoice.client.quota.wait`` (histogram, seconds): each wait for a token, with
  ``plumvoice.quota.group`` and ``plumvoice.priority``;
- ``plumvoice.client.quota.remaining`` (gauge): the latest ``X-RateLimit-Remaining`` per
  ``plumvoice.quota.group``.

Without the extra, ``load()`` returns ``None`` and nothing of OpenTelemetry is imported.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._events import Answered, ClientEvent, QuotaWaited, RateLimited
from ._version import version

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["OpenTelemetry", "load"]

GROUP = "plumvoice.quota.group"
PRIORITY = "plumvoice.priority"
STATUS = "http.response.status_code"
ERROR = "error.type"


def load() -> OpenTelemetry | None:
    """The recorder over the global providers, or ``None`` when the API is not installed."""
    return OpenTelemetry() if _installed() else None


@functools.cache
def _installed() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry") is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as none
        return False


class OpenTelemetry:
    """Strictly private: records events as metrics and requests as spans.

    Args:
        meter_provider, tracer_provider: the providers to record through; the global ones by
            default (tests pass the SDK's in-memory ones).
    """

    def __init__(
        self,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        from opentelemetry import metrics, trace

        meter = metrics.get_meter("plumvoice_async", version(), meter_provider)
        self._tracer = trace.get_tracer("plumvoice_async", version(), tracer_provider)
        self._requests = meter.create_counter(
            "plumvoice.client.requests", unit="{request}", description="HTTP attempts sent"
        )
        self._rate_limited = meter.create_counter(
            "plumvoice.client.rate_limited", unit="{response}", description="429 answers"
        )
        self._quota_wait = meter.create_histogram(
            "plumvoice.client.quota.wait", unit="s", description="time waited for a quota token"
        )
        self._remaining = meter.create_gauge(
            "plumvoice.client.quota.remaining",
            unit="{request}",
            description="the server's X-RateLimit-Remaining, as last answered",
        )

    def __call__(self, event: ClientEvent) -> None:
        """An event hook: the metrics each event stands for."""
        match event:
            case Answered(status=status, error=error, remaining=remaining):
                attributes: dict[str, Any] = {GROUP: event.group}
                if status is None:
                    attributes[ERROR] = error or "unknown"
                else:
                    attributes[STATUS] = status
                self._requests.add(1, attributes)
                if remaining is not None:
                    self._remaining.set(remaining, {GROUP: event.group})
            case RateLimited():
                self._rate_limited.add(1, {GROUP: event.group})
            case QuotaWaited(seconds=seconds, priority=priority):
                self._quota_wait.record(seconds, {GROUP: event.group, PRIORITY: priority})
            case _:
                pass

    @contextmanager
    def span(self, operation: str, group: str) -> Iterator[Any]:
        """The span of one logical request; the body sets its status code as it learns it."""
        from opentelemetry.trace import SpanKind

        with self._tracer.start_as_current_span(
            f"plumvoice {operation}", kind=SpanKind.CLIENT, attributes={GROUP: group}
        ) as span:
            yield span
