"""The one logger of the package: ``plumvoice_async``, silent unless asked to speak.

Records carry quota keys (group and account hash), statuses, waits and URLs without query
credentials; never a login, password, developer key or ``Authorization`` header.

An application configures the logger as it configures any other. For a quick look without
touching code, ``PLUM_LOG=debug|info|warning`` in the environment (read once, when the package
is imported) sends the logger's records at that level and above to stderr.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Mapping

__all__ = ["LOG_LEVELS", "configure_from_env", "logger"]

logger = logging.getLogger("plumvoice_async")
logger.addHandler(logging.NullHandler())

LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
"""The values ``PLUM_LOG`` accepts (any case)."""


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Strictly private: the handler ``PLUM_LOG`` adds, recognisable so it is added once."""


def configure_from_env(environ: Mapping[str, str] | None = None) -> None:
    """Apply ``PLUM_LOG``: log to stderr at its level; unset or empty leaves the logger alone.

    An unknown value is ignored with a ``RuntimeWarning`` naming the accepted ones: a typo in
    a debugging aid must not stop the program it is meant to explain.
    """
    value = (os.environ if environ is None else environ).get("PLUM_LOG", "").strip().lower()
    if not value:
        return
    level = LOG_LEVELS.get(value)
    if level is None:
        warnings.warn(
            f"PLUM_LOG must be one of {', '.join(LOG_LEVELS)}; got {value!r} (ignored)",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
