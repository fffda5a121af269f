"""The ``plumvoice`` command line: a thin shell over the public client.

Exports to ``--out`` are ``client.calls.export`` / ``client.call_details.export`` (``_export``).

- ``main``: the argument parser, the subcommand table and the failure-to-status table;
- ``exits``: the exit statuses, ``CliError`` and the client every subcommand builds;
- ``args``: argument groups and the parsers of instants and days;
- ``simulator``: ``plumvoice simulator``, the built-in simulator served on loopback;
- ``sync``: ``plumvoice sync``, the archive (``plumvoice_async.archive``) kept up to date;
- ``output``: rows of the reports, whole tables to a file, the progress line;
- ``demo``: ``plumvoice demo``, a bulk export against the built-in simulator.
"""

from .main import main

__all__ = ["main"]
