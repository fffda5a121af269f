"""``plumvoice``: export Plum call logs and reports as JSON Lines or CSV from the shell.

Each subcommand is one entry of ``SUBCOMMANDS``: a name, a function adding its arguments and
an async function running it. They share the argument groups of ``args``, the writers of
``output`` and, for the call logs, the checkpointed export of ``export``. The
VoiceTrends reports are one subcommand, ``report KIND``, over the table ``REPORTS`` (which
client attribute fetches a kind, whether it has periods, how it becomes rows); ``events`` is
``report events`` under its own name. Credentials come from the ``PLUM_*`` environment
variables of ``PlumClient.from_env`` only, never from flags (which end up in shell history
and ``ps``), and no message ever prints them.

Expected failures end with one line on stderr and an exit status (``EXIT_STATUSES``), never a
traceback; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import attrs

from .. import __version__
from .._client import PlumClient
from .._core.data import iso_utc
from .._core.requests import QuotaGroup
from .._errors import (
    AuthenticationError,
    GovernorUnavailableError,
    InvalidParameterError,
    PlumError,
    RateLimitError,
    TransportError,
)
from .._governor import Snapshot
from .args import add_call_log_arguments, add_demo_arguments, add_report_arguments
from .export import CallExport, ExportRefused, run_export
from .output import (
    Progress,
    Row,
    flow_rows,
    geographic_rows,
    series_rows,
    write_table,
)
from .sync import add_sync_arguments, run_sync_command

__all__ = [
    "EXIT_STATUSES",
    "REPORTS",
    "SUBCOMMANDS",
    "CliError",
    "ReportKind",
    "Subcommand",
    "build_parser",
    "failure",
    "main",
    "make_client",
    "quota_probe",
    "shows_progress",
]

EXIT_OK, EXIT_API, EXIT_USAGE, EXIT_QUOTA, EXIT_NETWORK = 0, 1, 2, 3, 4
EXIT_BROKEN_PIPE, EXIT_INTERRUPTED = 141, 130
EXIT_STATUSES = {
    EXIT_OK: "success",
    EXIT_API: "the API answered with an error (including a refused login), or a file error",
    EXIT_USAGE: "bad arguments or configuration, a refused --resume",
    EXIT_QUOTA: "quota exhausted: the wait for the next window exceeds --max-wait",
    EXIT_NETWORK: "network failure after the retries",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); an export to --out resumes with --resume",
    EXIT_BROKEN_PIPE: "standard output was closed (as a tool killed by SIGPIPE)",
}

FUSE_LOGIN = "PLUM_FUSE_EMAIL"
FUSE_VARIABLES = f"{FUSE_LOGIN} and PLUM_FUSE_DEVELOPER_KEY"
VOICETRENDS_VARIABLES = (
    "PLUM_VOICETRENDS_LOGIN and PLUM_VOICETRENDS_PASSWORD (or PLUM_VOICETRENDS_TOOL, "
    "PLUM_VOICETRENDS_ACCOUNT_LOGIN and PLUM_VOICETRENDS_ACCOUNT_PASSWORD)"
)

# InvalidParameterError names the library's parameter; the user typed the CLI's.
_OPTION_NAMES = {
    "start": "START",
    "end": "END",
    "number": "--number",
    "page_size": "--page-size",
    "concurrency": "--concurrency",
    "period": "--period",
    "phone": "--phone",
}


@attrs.frozen
class ReportKind:
    """A VoiceTrends report of ``plumvoice report``: the client attribute that fetches it,
    whether it is grouped by period, and how it becomes rows."""

    attribute: str
    has_period: bool
    rows: Callable[[Any], tuple[list[str], list[Row]]]


REPORTS = {
    "events": ReportKind("events", True, series_rows),
    "volume": ReportKind("volume", True, series_rows),
    "performance": ReportKind("performance", True, series_rows),
    "caller-profile": ReportKind("caller_profile", True, series_rows),
    "diagnostic-flow": ReportKind("diagnostic_flow", False, flow_rows),
    "geographic": ReportKind("geographic", False, geographic_rows),
}


class CliError(Exception):
    """An expected failure: ``message`` goes to stderr and ``status`` is the exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@attrs.frozen
class Subcommand:
    """One ``plumvoice`` subcommand; ``credentials`` names the variables to check on a 401."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Awaitable[None]]
    credentials: str = "the PLUM_* credential variables"


# --- Running ---------------------------------------------------------------------------------


def make_client(args: argparse.Namespace) -> PlumClient:
    """A client from the environment, with the connection flags on top."""
    overrides: dict[str, Any] = {"max_wait": args.max_wait, "max_retries": args.max_retries}
    for flag, setting in (
        ("fuse_url", "fuse_url"),
        ("voicetrends_url", "voicetrends_url"),
        ("wire_format", "format"),
    ):
        if getattr(args, flag) is not None:
            overrides[setting] = getattr(args, flag)
    try:
        return PlumClient.from_env(**overrides)
    except ValueError as exc:  # the library's messages name variables, never their values
        raise CliError(f"configuration: {exc}", EXIT_USAGE) from None


def quota_probe(client: PlumClient, group: QuotaGroup) -> Callable[[], Awaitable[Snapshot]] | None:
    """What the progress line shows of the quota: the client's bucket of ``group``."""
    key = client.quota_key(group)
    if key is None:
        return None
    return lambda: client.governor.snapshot(key)


def shows_progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


async def _run_call_log(args: argparse.Namespace) -> None:
    if args.resume and args.out is None:
        raise CliError(
            "argument --resume: needs --out FILE (standard output has no checkpoint)", EXIT_USAGE
        )
    async with make_client(args) as client:
        progress = Progress(
            args.command,
            sys.stderr,
            enabled=shows_progress(args),
            quota=quota_probe(client, QuotaGroup.FUSE),
        )
        job = CallExport(
            args.command,
            args.start,
            args.end,
            number=args.number,
            format=args.format,
            page_size=args.page_size,
            concurrency=args.concurrency,
            out=None if args.out is None else Path(args.out),
            resume=args.resume,
        )
        result = await run_export(job, client, progress)
    if result.already_complete and not args.quiet:
        print(
            f"{args.out}: already complete ({result.rows:,} rows), nothing to do", file=sys.stderr
        )


async def _run_report(args: argparse.Namespace) -> None:
    kind = REPORTS[args.kind]
    period = args.period
    if kind.has_period and period is None:
        period = "day"
    async with make_client(args) as client:
        endpoint = getattr(client, kind.attribute)
        # A period given to a report without one reaches the library, which refuses it by name.
        report = await endpoint.fetch(args.start, args.end, period=period, phone=args.phone)
    columns, rows = kind.rows(report)
    write_table(None if args.out is None else Path(args.out), args.format, columns, rows)


def _add_report_kind_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", metavar="KIND", choices=REPORTS, help=", ".join(REPORTS))
    add_report_arguments(parser)


def _add_events_arguments(parser: argparse.ArgumentParser) -> None:
    add_report_arguments(parser)
    parser.set_defaults(kind="events")


async def _run_demo(args: argparse.Namespace) -> None:
    from .demo import run_demo  # the simulator is loaded only for the demo

    await run_demo(args)


SUBCOMMANDS = (
    Subcommand(
        "calls",
        "export the Fuse call logs of a time range",
        add_call_log_arguments,
        _run_call_log,
        FUSE_VARIABLES,
    ),
    Subcommand(
        "details",
        "export the Fuse call logs with their detailed logs (the last 5 days only)",
        add_call_log_arguments,
        _run_call_log,
        FUSE_VARIABLES,
    ),
    Subcommand(
        "events",
        "fetch the VoiceTrends Event Tracker report: one row per period (report events)",
        _add_events_arguments,
        _run_report,
        VOICETRENDS_VARIABLES,
    ),
    Subcommand(
        "report",
        "fetch a VoiceTrends report: one row per period, form item (diagnostic-flow) or "
        "place (geographic)",
        _add_report_kind_arguments,
        _run_report,
        VOICETRENDS_VARIABLES,
    ),
    Subcommand(
        "sync",
        "keep a database (SQLite or PostgreSQL) up to date with every call and detailed log",
        add_sync_arguments,
        run_sync_command,
        FUSE_VARIABLES,
    ),
    Subcommand(
        "demo",
        "run a bulk export against a built-in simulator (no credentials, no network)",
        add_demo_arguments,
        _run_demo,
    ),
)

_EPILOG = """\
credentials (environment variables only, never flags):
  calls, details   PLUM_FUSE_EMAIL, PLUM_FUSE_DEVELOPER_KEY
  sync             the same; a PostgreSQL password in PGPASSWORD rather than in --db
  events, report   PLUM_VOICETRENDS_LOGIN, PLUM_VOICETRENDS_PASSWORD, or to mint them:
                   PLUM_VOICETRENDS_TOOL, PLUM_VOICETRENDS_ACCOUNT_LOGIN,
                   PLUM_VOICETRENDS_ACCOUNT_PASSWORD
  optional         PLUM_FUSE_URL, PLUM_VOICETRENDS_URL, PLUM_FORMAT

exit statuses:
""" + "\n".join(f"  {status:<4} {meaning}" for status, meaning in EXIT_STATUSES.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plumvoice",
        description="Export Plum Voice call logs and reports as JSON Lines or CSV.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for subcommand in SUBCOMMANDS:
        subparser = subparsers.add_parser(
            subcommand.name,
            help=subcommand.help,
            description=subcommand.help,
            epilog=_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        subcommand.add_arguments(subparser)
        subparser.set_defaults(subcommand=subcommand)
    return parser


def failure(exc: Exception, subcommand: Subcommand) -> tuple[int, str]:
    """The exit status and the one-line message of an expected failure."""
    variables = subcommand.credentials
    match exc:
        case CliError():
            status, message = exc.status, str(exc)
        case InvalidParameterError():
            option = _OPTION_NAMES.get(exc.parameter, exc.parameter)
            status, message = EXIT_USAGE, f"argument {option}: {exc}"
        case ExportRefused():
            status, message = EXIT_USAGE, str(exc)
        case AuthenticationError() if exc.response is None:
            status, message = EXIT_USAGE, f"no credentials configured: set {variables}"
        case AuthenticationError():
            status = EXIT_API
            message = f"the server refused the credentials ({exc}): check {variables}"
        case RateLimitError():
            status, message = EXIT_QUOTA, _quota_message(exc)
        case TransportError() | GovernorUnavailableError():
            status, message = EXIT_NETWORK, str(exc)
        case PlumError():
            status, message = EXIT_API, str(exc)
        case OSError():
            status, message = EXIT_API, f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
        case _:
            raise exc  # not an expected failure: a bug, so its traceback is wanted
    return status, message


def _quota_message(exc: RateLimitError) -> str:
    if exc.reset_at is None:
        return f"quota exhausted, reset time unknown ({exc})"
    wait = max(0.0, (exc.reset_at - datetime.now(UTC)).total_seconds())
    return f"quota exhausted until {iso_utc(exc.reset_at)} (in {wait:.0f} s): {exc}"


def main(argv: Sequence[str] | None = None) -> int:
    """The ``plumvoice`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    subcommand: Subcommand = args.subcommand
    prefix = f"{parser.prog} {subcommand.name}: error:"
    try:
        anyio.run(subcommand.run, args)
    except KeyboardInterrupt:
        resumable = getattr(args, "resume", None) is not None and args.out is not None
        hint = " (run it again with --resume to continue)" if resumable else ""
        after_progress = "\n" if sys.stderr.isatty() else ""  # past the "^C" the terminal echoed
        print(f"{after_progress}{prefix} interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whoever read standard output has gone (``| head``): silence the final flush too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        status, message = failure(exc, subcommand)
        print(f"{prefix} {message}", file=sys.stderr)
        return status
    return EXIT_OK
