"""``plumvoice_async.archive``'s surface: one door, sorted and complete, errors in the tree."""

from __future__ import annotations

import plumvoice_async
import plumvoice_async.archive as archive


def test_all_is_sorted_complete_and_names_only_existing_attributes():
    assert archive.__all__ == sorted(archive.__all__)
    assert all(hasattr(archive, name) for name in archive.__all__)
    public = {
        name
        for name, value in vars(archive).items()
        if not name.startswith("_") and not isinstance(value, type(archive))
    }
    assert public == set(archive.__all__)


def test_the_archive_errors_are_plum_errors():
    assert issubclass(archive.ArchiveError, plumvoice_async.PlumError)
    assert issubclass(archive.ArchiveUnavailableError, archive.ArchiveError)
    assert issubclass(archive.SchemaVersionError, archive.ArchiveError)
