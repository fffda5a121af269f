"""The ``plumvoice`` command line: a thin shell over the public client.

Exports to ``--out`` are ``client.calls.export`` / ``client.call_details.export`` (``_export``).

- ``main``: the argument parser, the subcommand table and the exit statuses;
- ``args``: argument groups and the parsers of instants and days;
- ``simulator``: ``plumvoice simulator``, the built-in simulator served on loopback;
- ``output``: JSON Lines and CSV writers, rows of the reports, the progress line;
- ``demo``: ``plumvoice demo``, a bulk export against the built-in simulator.
"""

from .main import main

__all__ = ["main"]
