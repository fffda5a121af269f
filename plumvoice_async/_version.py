"""The installed distribution's version, read from its metadata when first asked for.

``importlib.metadata`` costs tens of milliseconds to import, more than most of the package:
``plumvoice_async.__version__`` and the telemetry's instrumentation scope ask here, lazily.
"""

from __future__ import annotations

import functools

__all__ = ["version"]


@functools.cache
def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("plumvoice-async")
    except PackageNotFoundError:  # pragma: no cover - a source tree without install
        return "0+unknown"
