"""The arguments of ``plumvoice``: START/END parsing and the option groups subcommands share.

START and END of the call logs are instants: a UNIX timestamp, an ISO date (its UTC
midnight), an ISO datetime with its zone, ``now``, ``today`` (UTC midnight) or ``today-N``
(N days before it); a naive datetime is refused, as the library refuses it, since its instant
depends on a zone nobody stated. Reports are by day, so their START and END are days
(``YYYY-MM-DD``, ``today`` or ``today-N``, today by the UTC calendar). The relative forms
spare scripts the shell's ``date`` arithmetic, whose options differ between GNU and BSD.
Every refusal is an ``argparse`` error: exit status 2, naming the argument.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, date, datetime, timedelta

from .._core.bucket import PRIORITIES
from .._models import Period

__all__ = [
    "add_call_log_arguments",
    "add_connection_options",
    "add_demo_arguments",
    "add_output_options",
    "add_report_arguments",
    "add_simulator_arguments",
    "fuse_instant",
    "report_day",
]

_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_BASIC_DAY = re.compile(r"[0-9]{8}")
_DIGITS = re.compile(r"[0-9]+")
_RELATIVE_DAY = re.compile(r"today(?:-([0-9]{1,5}))?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _relative_day(text: str, now: datetime | None) -> date | None:
    """``today`` or ``today-N`` as a UTC day, or ``None`` when ``text`` is neither."""
    match = _RELATIVE_DAY.fullmatch(text)
    if match is None:
        return None
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    return today - timedelta(days=int(match.group(1) or 0))


def fuse_instant(text: str, *, now: datetime | None = None) -> int:
    """A calls/details START or END as a UNIX second.

    A UNIX timestamp is taken as is; an ISO date means its UTC midnight; an ISO datetime must
    carry its zone (``Z`` or ``+HH:MM``) and is floored to the second, as the library does.
    ``now`` is the current second, ``today`` and ``today-N`` UTC midnights (``now`` is
    injectable for tests). A naive datetime is refused, as in the library: its instant depends
    on a zone nobody stated. Eight digits are refused too: ``20240131`` reads as a 1970
    timestamp, but was almost certainly meant as a day.
    """
    if text == "now":
        return ((now or datetime.now(UTC)) - _EPOCH) // timedelta(seconds=1)
    day = _relative_day(text, now)
    if day is not None:
        return int((day - _EPOCH.date()).total_seconds())
    if _BASIC_DAY.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is ambiguous: write a day as YYYY-MM-DD, or a 10-digit UNIX timestamp"
        )
    if _DIGITS.fullmatch(text):
        return int(text)
    if _ISO_DAY.fullmatch(text):
        return int((_iso_day(text) - _EPOCH.date()).total_seconds())
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a UNIX timestamp, an ISO date (YYYY-MM-DD), an ISO datetime "
            "with a zone (2024-01-31T09:00:00Z), now, today or today-N"
        ) from None
    if moment.utcoffset() is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone, so its instant is ambiguous: add Z (UTC) or +HH:MM"
        )
    return (moment - _EPOCH) // timedelta(seconds=1)


def report_day(text: str, *, now: datetime | None = None) -> date:
    """A report's START or END: a day, ``YYYY-MM-DD``, the wire's ``YYYYMMDD``, ``today`` or
    ``today-N`` (by the UTC calendar; ``now`` is injectable for tests)."""
    day = _relative_day(text, now)
    if day is not None:
        return day
    if _BASIC_DAY.fullmatch(text):
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    if not _ISO_DAY.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a day: reports are by day, written YYYY-MM-DD (or YYYYMMDD), "
            "today or today-N"
        )
    return _iso_day(text)


def _iso_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a calendar date") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def _count(text: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def _positive(text: str) -> int:
    if not _DIGITS.fullmatch(text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


# --- Arguments -------------------------------------------------------------------------------


def add_connection_options(
    parser: argparse.ArgumentParser, *, api: str, priority: str = "interactive"
) -> None:
    """The connection options; ``api`` (``"fuse"`` or ``"voicetrends"``) is the one the command
    talks to, whose base URL alone is offered (a flag the command would ignore is not).

    ``priority``: the command's default quota priority. Exports and ``sync`` run as ``"bulk"``
    so that a dashboard on the same account (a shared governor) is served first.
    """
    group = parser.add_argument_group("connection (credentials come from PLUM_* variables)")
    if api == "fuse":
        group.add_argument("--fuse-url", metavar="URL", help="Fuse base URL (env PLUM_FUSE_URL)")
    else:
        group.add_argument(
            "--voicetrends-url",
            metavar="URL",
            help="VoiceTrends base URL (env PLUM_VOICETRENDS_URL)",
        )
    group.add_argument(
        "--wire-format", choices=("json", "xml"), help="format asked of the API (env PLUM_FORMAT)"
    )
    group.add_argument(
        "--max-wait",
        type=_seconds,
        metavar="SECONDS",
        help="longest wait for quota; beyond it, exit 3 with the reset time (default: wait)",
    )
    group.add_argument(
        "--max-retries",
        type=_count,
        default=3,
        metavar="N",
        help="retries of network errors and 5xx answers (default: 3)",
    )
    group.add_argument(
        "--priority",
        choices=PRIORITIES,
        default=priority,
        help=f"quota priority: interactive requests are served before bulk ones on a shared "
        f"governor (default: {priority})",
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="default: jsonl")
    group.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def add_call_log_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "start",
        metavar="START",
        type=fuse_instant,
        help="UNIX timestamp, YYYY-MM-DD (UTC midnight), ISO datetime with a zone, now, today "
        "or today-N",
    )
    parser.add_argument("end", metavar="END", type=fuse_instant, help="as START; inclusive")
    parser.add_argument("--number", help="only calls to this deployment number (digits)")
    parser.add_argument(
        "--page-size",
        type=int,
        default=10_000,
        metavar="N",
        help="calls per request, 1..10000 (default 10000: each page spends one request)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=2, metavar="N", help="pages in flight (default 2)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted export to --out (the same query) from its checkpoint",
    )
    add_output_options(parser)
    add_connection_options(parser, api="fuse", priority="bulk")


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """START, END, ``--period`` and ``--phone``: what every VoiceTrends report takes.

    ``--period`` has no default here: the period reports read a missing one as ``day``, and
    the two reports without periods refuse one rather than ignore it.
    """
    parser.add_argument(
        "start",
        metavar="START",
        type=report_day,
        help="first day, YYYY-MM-DD, today or today-N (Plum's report days are US Eastern)",
    )
    parser.add_argument("end", metavar="END", type=report_day, help="last day, inclusive")
    parser.add_argument(
        "--period",
        choices=[period.value for period in Period],
        help="default: day (diagnostic-flow and geographic have none)",
    )
    parser.add_argument("--phone", default="ALL", help="a number of digits, or ALL (default)")
    add_output_options(parser)
    add_connection_options(parser, api="voicetrends")


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    # Here rather than beside the demo: building the parser must not load the simulator.
    parser.add_argument(
        "--out",
        metavar="DIR",
        default="plumvoice-demo",
        help="write the export here (default: ./plumvoice-demo, replaced at each run)",
    )
    parser.add_argument(
        "--calls", type=_positive, default=3000, metavar="N", help="simulated calls (default 3000)"
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="serve the simulator through an in-memory transport instead of a loopback port "
        "(the default when uvicorn is not installed)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def add_simulator_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=_port, default=0, metavar="N", help="loopback port (default: a free one)"
    )
    parser.add_argument(
        "--calls",
        type=_positive,
        default=10_000,
        metavar="N",
        help="simulated calls, over the last four days (default 10000)",
    )
    parser.add_argument(
        "--quota",
        type=_quota,
        default=(150, 900),
        metavar="LIMIT/WINDOW",
        help="requests per window of seconds, per account and group (default: Plum's 150/900)",
    )


def _port(text: str) -> int:
    if not _DIGITS.fullmatch(text) or int(text) > 65_535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0..65535)")
    return int(text)


def _quota(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"([0-9]+)/([0-9]+)", text)
    if match is None or int(match[1]) < 1 or int(match[2]) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not LIMIT/WINDOW: two whole numbers >= 1, such as 150/900"
        )
    return int(match[1]), int(match[2])
