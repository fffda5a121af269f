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
from .._core.data import iso_utc
from .._core.requests import QuotaGroup
from .._encoding import (
    CALL_COLUMNS,
    DETAILED_CALL_COLUMNS,
    Row,
    call_row,
    detailed_call_row,
    encoder_for,
)
from .._errors import (
    AuthenticationError,
    ExportError,
    GovernorUnavailableError,
    InvalidParameterError,
    PlumError,
    RateLimitError,
    TransportError,
)
from .._export import ProgressHook, StreamSink, export_walk
from .._pagination import PageIterator
from .args import (
    add_call_log_arguments,
    add_demo_arguments,
    add_report_arguments,
    add_simulator_arguments,
)
from .exits import (
    EXIT_API,
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_QUOTA,
    EXIT_STATUSES,
    EXIT_USAGE,
    CliError,
    make_client,
)
from .output import (
    Progress,
    flow_rows,
    geographic_rows,
    quota_probe,
    series_rows,
    shows_progress,
    write_table,
)
from .sync import add_sync_arguments, run_sync_command

__all__ = [
    "REPORTS",
    "SUBCOMMANDS",
    "ReportKind",
    "Subcommand",
    "build_parser",
    "failure",
    "main",
]


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
    "path": "--out",
    "since": "--since",
    "account": "--account",
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


@attrs.frozen
class Subcommand:
    """One ``plumvoice`` subcommand; ``credentials`` names the variables to check on a 401."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Awaitable[None]]
    credentials: str = "the PLUM_* credential variables"


# --- Running ---------------------------------------------------------------------------------


async def _check_output(args: argparse.Namespace) -> None:
    """Refuse an ``--out`` whose folder does not exist, naming the user's path, before any
    request: found later it would name the export's internal files and waste the quota."""
    if args.out is None:
        return
    folder = anyio.Path(args.out).parent
    if not await folder.is_dir():
        raise CliError(f"argument --out: {folder} is not an existing directory", EXIT_USAGE)


async def _run_call_log(args: argparse.Namespace) -> None:
    if args.resume and args.out is None:
        raise CliError(
            "argument --resume: needs --out FILE (standard output has no checkpoint)", EXIT_USAGE
        )
    await _check_output(args)
    async with make_client(args) as client:
        progress = Progress(
            args.command,
            sys.stderr,
            enabled=shows_progress(args),
            quota=quota_probe(client, QuotaGroup.FUSE),
        )
        resource = client.call_details if args.command == "details" else client.calls
        walk_settings = {
            "number": args.number,
            "page_size": args.page_size,
            "concurrency": args.concurrency,
        }

        def shown(rows: int, total: int | None) -> None:
            if total is None:  # before the first page: a resumed export's rows so far
                progress.start(rows)
            progress.update(rows, total)

        if args.out is None:
            walk = resource.iterate(args.start, args.end, **walk_settings)
            await progress.run(lambda: _stream(args, walk, shown))
            return
        result = await progress.run(
            lambda: resource.export(
                args.start,
                args.end,
                args.out,
                format=args.format,
                resume=args.resume,
                progress=shown,
                **walk_settings,
            )
        )
    if result.already_complete and not args.quiet:
        print(
            f"{args.out}: already complete ({result.rows:,} rows), nothing to do", file=sys.stderr
        )


async def _stream(
    args: argparse.Namespace, walk: PageIterator[Any, str], progress: ProgressHook
) -> int:
    """Standard output: written and flushed page by page; no checkpoint, nothing to resume."""
    detailed = args.command == "details"
    encoder = encoder_for(args.format, DETAILED_CALL_COLUMNS if detailed else CALL_COLUMNS)
    sink = StreamSink(sys.stdout.buffer, encoder.header())
    to_row = detailed_call_row if detailed else call_row
    return await export_walk(walk, to_row, encoder, sink, progress)


async def _run_report(args: argparse.Namespace) -> None:
    await _check_output(args)
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


async def _run_simulator(args: argparse.Namespace) -> None:
    from .simulator import run_simulator  # the simulator is loaded only when it is served

    await run_simulator(args)


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
    Subcommand(
        "simulator",
        "serve the built-in simulator on loopback and print the PLUM_* lines pointing at it",
        add_simulator_arguments,
        _run_simulator,
    ),
)

_EPILOG = """\
credentials (environment variables only, never flags):
  calls, details   PLUM_FUSE_EMAIL, PLUM_FUSE_DEVELOPER_KEY
  sync             the same; a PostgreSQL password in PGPASSWORD rather than in --db
  events, report   PLUM_VOICETRENDS_LOGIN, PLUM_VOICETRENDS_PASSWORD, or to mint them:
                   PLUM_VOICETRENDS_TOOL, PLUM_VOICETRENDS_ACCOUNT_LOGIN,
                   PLUM_VOICETRENDS_ACCOUNT_PASSWORD
  optional         PLUM_FUSE_URL, PLUM_VOICETRENDS_URL, PLUM_FORMAT,
                   PLUM_REDIS_URL (one quota for every process: a RedisGovernor),
                   PLUM_LOG (debug, info or warning: the library's log on stderr)

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
        # Its usage line, printed above an argument's error found after parsing.
        subparser.set_defaults(subcommand=subcommand, usage=subparser.format_usage())
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
        case ExportError():
            status, message = EXIT_USAGE, str(exc)
        case AuthenticationError() if exc.response is None:
            status, message = EXIT_USAGE, f"no credentials configured: set {variables}"
        case AuthenticationError():
            status = EXIT_API
            message = f"the server refused the credentials ({exc}): check {variables}"
        case RateLimitError():
            status, message = EXIT_QUOTA, _quota_message(exc)
        case ImportError():  # an optional part not installed; the message says which
            status, message = EXIT_USAGE, str(exc)
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
    resumable = getattr(args, "resume", None) is not None and args.out is not None
    hint = " (run it again with --resume to continue)" if resumable else ""
    try:
        anyio.run(subcommand.run, args)
    except KeyboardInterrupt:
        after_progress = "\n" if sys.stderr.isatty() else ""  # past the "^C" the terminal echoed
        print(f"{after_progress}{prefix} interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whoever read standard output has gone (``| head``): silence the final flush too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        status, message = failure(exc, subcommand)
        if isinstance(exc, OSError):  # a full disk, say: once it is fixed, the export resumes
            message += hint
        # Like argparse: the usage line above an error about an argument, not about the rest.
        usage = args.usage if message.startswith("argument ") else ""
        print(f"{usage}{prefix} {message}", file=sys.stderr)
        return status
    return EXIT_OK
