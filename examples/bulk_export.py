"""Export the calls of several numbers at once, sharing one client and so one quota governor.

Run it with the ``PLUM_*`` variables of ``PlumClient.from_env`` set::

    python examples/bulk_export.py 2024-01-31T00:00:00Z 2024-02-01T00:00:00Z \\
        6177123000 6177123001 --out-dir exports

One task per number (an anyio task group), each walking its own ``client.calls.iterate``.
The walks share the one client, hence its one governor, so together they stay within the
account's quota however many numbers there are: they take turns, first come first served,
instead of each believing it has the whole quota. Each number's calls go to
``calls-<number>.jsonl``, a page at a time. START and END are UNIX timestamps or ISO
datetimes with a zone.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from pathlib import Path

import anyio

from plumvoice_async import PlumClient, PlumError

PAGE_SIZE = 10_000  # the largest page: each one spends a request of the quota


async def export_number(
    client: PlumClient,
    number: str,
    *,
    start: int | datetime,
    end: int | datetime,
    out_dir: Path,
    page_size: int,
    counts: dict[str, int],
) -> None:
    """Write every call to ``number`` to ``calls-<number>.jsonl``; count them in ``counts``."""
    walk = client.calls.iterate(start, end, number=number, page_size=page_size)
    counts[number] = 0
    async with await anyio.open_file(out_dir / f"calls-{number}.jsonl", "w") as file:
        async for page in walk.pages():
            await file.write("".join(json.dumps(call.to_dict()) + "\n" for call in page))
            counts[number] += len(page)


async def export_numbers(
    numbers: Sequence[str],
    *,
    start: int | datetime,
    end: int | datetime,
    out_dir: Path,
    page_size: int = PAGE_SIZE,
) -> dict[str, int]:
    """Export each number's calls concurrently through one client; return the calls per number."""
    counts: dict[str, int] = {}
    async with PlumClient.from_env() as client, anyio.create_task_group() as group:
        for number in numbers:
            walk = partial(
                export_number,
                client,
                number,
                start=start,
                end=end,
                out_dir=out_dir,
                page_size=page_size,
                counts=counts,
            )
            group.start_soon(walk)
    return counts


def instant(text: str) -> int | datetime:
    """A UNIX timestamp, or an ISO datetime (the client refuses one with no zone)."""
    return int(text) if text.isdigit() else datetime.fromisoformat(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export the calls of several numbers at once.")
    parser.add_argument("start", type=instant, help="UNIX timestamp or ISO datetime with a zone")
    parser.add_argument("end", type=instant, help="as start; inclusive")
    parser.add_argument("numbers", nargs="+", metavar="NUMBER", help="deployment numbers")
    parser.add_argument("--out-dir", type=Path, default=Path(), help="default: here")
    parser.add_argument("--page-size", type=int, default=PAGE_SIZE)
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    export = partial(
        export_numbers,
        args.numbers,
        start=args.start,
        end=args.end,
        out_dir=args.out_dir,
        page_size=args.page_size,
    )
    counts: dict[str, int] = {}
    failures: list[Exception] = []
    try:
        counts = anyio.run(export)
    except* PlumError as group:  # one failed walk cancels the others: report each failure
        failures.extend(group.exceptions)
    for error in failures:
        print(f"export failed: {error}", file=sys.stderr)
    if failures:
        return 1
    for number, count in counts.items():
        print(f"{number}: {count} calls -> {args.out_dir / f'calls-{number}.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
