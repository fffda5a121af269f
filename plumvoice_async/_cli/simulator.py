"""``plumvoice simulator``: the built-in Plum simulator on loopback, for the CLI and your code.

It prints the ``export PLUM_...=...`` lines that point ``plumvoice`` and
``PlumClient.from_env()`` at it (the simulator's own test accounts, public in its source: no
secret of yours), then serves in the foreground until Ctrl-C (or SIGTERM), which stops it
cleanly with exit status 0: stopping a server is its normal end, not an interruption.
"""

from __future__ import annotations

import argparse
import signal
import time

import anyio

from ..testing import CallDataset, PlumSimulator, serve

__all__ = ["environment", "run_simulator"]


def environment(simulator: PlumSimulator, url: str) -> dict[str, str]:
    """The ``PLUM_*`` variables that point the CLI and ``from_env()`` at ``simulator``."""
    return {
        "PLUM_FUSE_URL": url,
        "PLUM_VOICETRENDS_URL": url,
        "PLUM_FUSE_EMAIL": simulator.fuse_auth[0],
        "PLUM_FUSE_DEVELOPER_KEY": simulator.fuse_auth[1],
        "PLUM_VOICETRENDS_LOGIN": simulator.voicetrends_auth[0],
        "PLUM_VOICETRENDS_PASSWORD": simulator.voicetrends_auth[1],
    }


async def run_simulator(args: argparse.Namespace) -> None:
    """Serve a simulator with ``args.calls`` calls and ``args.quota`` until interrupted."""
    limit, window = args.quota
    # The calls end now and go back evenly over four days: all in the 5-day detailed logs.
    spacing = max(1, 4 * 86_400 // max(args.calls, 1))
    start = int(time.time()) - args.calls * spacing
    simulator = PlumSimulator(
        CallDataset(size=args.calls, start=start, spacing=spacing), limit=limit, window=window
    )
    with serve(simulator, port=args.port) as url:
        lines = [
            f"# plumvoice simulator: {args.calls:,} calls, {limit} requests per {window} s, "
            f"serving {url}",
            "# paste these lines in another shell; Ctrl-C here stops the simulator",
            *(f"export {name}={value}" for name, value in environment(simulator, url).items()),
        ]
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            print("\n".join(lines), flush=True)
            async for _ in signals:
                break
