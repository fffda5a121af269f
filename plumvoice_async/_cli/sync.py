"""``plumvoice sync --db URL``: keep a database up to date with the account's calls and logs.

One run is ``Archive.sync``; ``--follow`` repeats it every ``--every`` seconds and says each
time how many detailed logs will expire within the hour if they are not fetched (they will be,
oldest first, unless the quota runs out). A summary line per run goes to standard output.

The database URL is never printed with its password (PostgreSQL also reads ``PGPASSWORD``, so
the URL need not carry one). Failures of the database exit 2 (no permission, a newer schema, a
file that is not a database, an unknown scheme) or 4 (the server cannot be reached), before
anything is written.
"""

from __future__ import annotations

import argparse
import sys

import anyio

from ..archive import Archive, ArchiveError, ArchiveUnavailableError, SyncResult
from ..archive._url import redact_url
from .args import add_connection_options, report_day
from .exits import EXIT_NETWORK, EXIT_USAGE, CliError, make_client

__all__ = ["add_sync_arguments", "run_sync_command", "summary"]


def _every(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds > 0")
    return value


def add_sync_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        required=True,
        metavar="URL",
        help="sqlite:///PATH (a file, no server) or postgresql://user@host:port/database "
        "(the postgres extra; put the password in PGPASSWORD rather than the URL)",
    )
    parser.add_argument(
        "--since",
        type=report_day,
        metavar="DAY",
        help="oldest day to archive, YYYY-MM-DD (default: since the last run; the last 5 days "
        "on a first run); an older day than before backfills",
    )
    parser.add_argument(
        "--details",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also archive the detailed logs while Plum keeps them (5 days; default: yes)",
    )
    parser.add_argument("--number", help="only calls to this deployment number (digits)")
    parser.add_argument(
        "--account",
        metavar="NAME",
        help="the name rows are stored under (default: a hash of the Fuse login)",
    )
    parser.add_argument(
        "--follow", action="store_true", help="keep running: sync again every --every seconds"
    )
    parser.add_argument(
        "--every",
        type=_every,
        metavar="SECONDS",
        help="seconds between runs with --follow (default 300)",
    )
    parser.add_argument(
        "--page-size",
        type=int,
        default=10_000,
        metavar="N",
        help="calls per request, 1..10000 (default 10000: each page spends one request)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary lines")
    add_connection_options(parser, api="fuse", priority="bulk")


def summary(result: SyncResult, *, follow: bool) -> str:
    """The line printed after a run."""
    line = (
        f"{result.new_calls:,} new calls, {result.updated_calls:,} updated, "
        f"{result.archived_details:,} detailed logs ({result.new_events:,} lines), "
        f"{result.expired_details:,} expired before archiving, {result.requests:,} requests"
    )
    if follow:
        line += f"; {result.expiring_soon:,} logs expire within the hour"
    return line


async def run_sync_command(args: argparse.Namespace) -> None:
    """Run ``plumvoice sync``; expected failures leave as ``CliError``."""

    if args.every is not None and not args.follow:
        raise CliError("argument --every: only with --follow", EXIT_USAGE)
    every = 300.0 if args.every is None else args.every
    # Runs as "bulk" priority once the client has priorities (api-contract.md); not yet.
    try:
        archive = Archive.open(args.db)
    except ValueError as exc:  # InvalidParameterError: its message never shows a password
        raise CliError(f"argument --db: {exc}", EXIT_USAGE) from None
    try:
        async with make_client(args) as client, archive:
            while True:
                result = await archive.sync(
                    client,
                    since=args.since,
                    details=args.details,
                    number=args.number,
                    account=args.account,
                    page_size=args.page_size,
                )
                if not args.quiet:
                    print(summary(result, follow=args.follow), flush=True)
                if not args.follow:
                    return
                await anyio.sleep(every)
    except ArchiveUnavailableError as exc:
        raise CliError(f"database {redact_url(args.db)}: {exc}", EXIT_NETWORK) from None
    except ArchiveError as exc:
        raise CliError(f"database {redact_url(args.db)}: {exc}", EXIT_USAGE) from None
    finally:
        sys.stdout.flush()
