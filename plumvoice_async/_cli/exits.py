"""How ``plumvoice`` ends: its exit statuses, the expected failure, and the client it builds.

``EXIT_STATUSES`` is the one table of exit statuses (``--help`` prints it; a test holds the
README's to it). A subcommand raises ``CliError`` for an expected failure: one line on stderr
and its status, never a traceback. ``make_client`` builds every subcommand's client the same
way: from the ``PLUM_*`` environment, with the connection flags on top.
"""

from __future__ import annotations

import argparse
from typing import Any

from .._client import PlumClient

__all__ = [
    "EXIT_API",
    "EXIT_BROKEN_PIPE",
    "EXIT_INTERRUPTED",
    "EXIT_NETWORK",
    "EXIT_OK",
    "EXIT_QUOTA",
    "EXIT_STATUSES",
    "EXIT_USAGE",
    "CliError",
    "make_client",
]

EXIT_OK, EXIT_API, EXIT_USAGE, EXIT_QUOTA, EXIT_NETWORK = 0, 1, 2, 3, 4
EXIT_BROKEN_PIPE, EXIT_INTERRUPTED = 141, 130
EXIT_STATUSES = {
    EXIT_OK: "success",
    EXIT_API: "the API answered with an error (a refused login names the variables to check, "
    "never their values), or a file could not be read or written",
    EXIT_USAGE: "bad arguments or configuration (the message names the argument or variable), "
    "a missing optional part, a refused --resume",
    EXIT_QUOTA: "quota exhausted: the wait would exceed --max-wait; the message gives the reset "
    "time",
    EXIT_NETWORK: "network failure after the retries, or Redis unreachable (PLUM_REDIS_URL)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); an export to --out continues with --resume",
    EXIT_BROKEN_PIPE: "standard output was closed (as a tool killed by SIGPIPE)",
}
"""The one table of exit statuses: ``--help`` prints it and a test holds the README's to it."""


class CliError(Exception):
    """An expected failure: ``message`` goes to stderr and ``status`` is the exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def make_client(args: argparse.Namespace) -> PlumClient:
    """A client from the environment, with the connection flags on top."""
    overrides: dict[str, Any] = {
        "max_wait": args.max_wait,
        "max_retries": args.max_retries,
        "priority": args.priority,
    }
    for flag, setting in (
        ("fuse_url", "fuse_url"),
        ("voicetrends_url", "voicetrends_url"),
        ("wire_format", "format"),
    ):
        if getattr(args, flag, None) is not None:  # each command offers its API's URL only
            overrides[setting] = getattr(args, flag)
    try:
        return PlumClient.from_env(**overrides)
    except ValueError as exc:  # the library's messages name variables, never their values
        raise CliError(f"configuration: {exc}", EXIT_USAGE) from None
