"""The ``plumvoice`` command line: a thin shell over the public client.

- ``main``: the argument parser, the subcommand table and the exit statuses;
- ``args``: argument groups and the parsers of instants and days;
- ``export``: the checkpointed, exactly-once export of call logs to a file;
- ``output``: JSON Lines and CSV writers, rows of the reports, the progress line;
- ``demo``: ``plumvoice demo``, a bulk export against the built-in simulator.
"""

from .main import main

__all__ = ["main"]
