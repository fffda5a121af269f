"""What the archive raises when its database, not Plum, is the trouble."""

from __future__ import annotations

from .._errors import PlumError

__all__ = ["ArchiveError", "ArchiveUnavailableError", "SchemaVersionError"]


class ArchiveError(PlumError):
    """The archive's database refused or failed: no permission, a file that is not a
    database, a lost transaction. The message names the cause, never a password."""


class ArchiveUnavailableError(ArchiveError):
    """The database server could not be reached (refused, timed out, went away)."""


class SchemaVersionError(ArchiveError):
    """The database was written by a newer plumvoice-async: nothing was written to it."""
