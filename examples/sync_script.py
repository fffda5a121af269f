"""Count an account's calls by type from a plain script: no ``async``, no ``await``.

Run it with the ``PLUM_*`` variables of ``PlumClient.from_env`` set::

    python examples/sync_script.py 2024-01-31T00:00:00Z 2024-02-01T00:00:00Z

``SyncPlumClient`` takes the same settings as ``PlumClient`` and blocks instead of returning
awaitables, so it fits scripts, notebooks and WSGI apps; its ``iterate`` is a plain iterator
that still yields every call exactly once and stays inside the quota. START and END are ISO
datetimes with a zone, or UNIX timestamps.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from plumvoice_async import CallPage, PlumError, SyncPlumClient


def instant(text: str) -> int | datetime:
    return int(text) if text.isdigit() else datetime.fromisoformat(text)


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 2:
        print("usage: sync_script.py START END", file=sys.stderr)
        return 2
    start, end = instant(args[0]), instant(args[1])
    try:
        with SyncPlumClient.from_env() as client:
            first: CallPage = client.calls.page(start, end, limit=1)
            by_type = Counter(call.type.value for call in client.calls.iterate(start, end))
    except PlumError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{first.total_calls} calls")
    for kind, count in sorted(by_type.items()):
        print(f"{kind}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
