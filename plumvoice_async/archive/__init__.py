"""Keep a database up to date with every call and its detailed log, before Plum forgets it.

```python
from plumvoice_async.archive import Archive

async with Archive.open("sqlite:///plum.db") as archive:     # or "postgresql://..."
    result = await archive.sync(client, since=date(2026, 11, 1), details=True)
```

Plum keeps detailed call logs for 5 days only (plum-api.md 2.3); ``sync`` stores the calls
(``plum_calls``) and their logs (``plum_call_events``) incrementally, idempotently and
crash-safely. SQLite is the embedded default; PostgreSQL needs the ``postgres`` extra. The
command line is ``plumvoice sync --db URL``.
"""

from ._archive import Archive
from ._errors import ArchiveError, ArchiveUnavailableError, SchemaVersionError
from ._sync import SyncResult

__all__ = ["Archive", "ArchiveError", "ArchiveUnavailableError", "SchemaVersionError", "SyncResult"]
