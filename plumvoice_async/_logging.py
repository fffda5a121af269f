"""The one logger of the package: ``plumvoice_async``, silent unless the application configures it.

Records carry quota keys (group and account hash), statuses, waits and URLs without query
credentials; never a login, password, developer key or ``Authorization`` header.
"""

from __future__ import annotations

import logging

__all__ = ["logger"]

logger = logging.getLogger("plumvoice_async")
logger.addHandler(logging.NullHandler())
