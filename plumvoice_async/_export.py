"""Checkpointed, exactly-once export of call logs to a file: ``client.calls.export(...)``.

An export to ``path`` keeps ``path.checkpoint`` beside it, a small JSON document naming the
query (resource, start, end, number, output format), the walk's place (its ``checkpoint``:
``offset``, the last ``session_id``, the ids of the rows written just before it, and of rows
written that inserts pushed ahead of the place), the rows written and the output's byte
length. The order of writes is the whole design:

1. a page's rows are appended to the output, flushed and fsynced;
2. only then the checkpoint is rewritten, atomically (a temporary file, fsynced, then
   ``os.replace``), so it never claims bytes that are not on disk;
3. on ``resume=True`` the output is first truncated to the checkpoint's length, which drops
   whatever a killed process appended after its last checkpoint (even half a row), and the
   walk restarts at the checkpoint's place, skipping the rows it already wrote.

While it writes, an export holds an exclusive ``flock`` on the output, taken before step 3: a
second export of the same file (another process, or another task) is refused rather than
interleaving its pages with the first's, and a kill releases the lock with the process. An
output that exists, is not empty and has no checkpoint is not an export's: it is refused,
never overwritten. The checkpoint carries a checksum of itself and the SHA-256 of the bytes it
covers, checked on resume: a damaged or hand-edited checkpoint, or an output edited behind its
back, is refused rather than resumed at the wrong place.

So a SIGKILL at any instant loses at most the rows after the last checkpoint, and the resumed
export writes each of those exactly once. A cancellation lands between pages. A finished
export marks its checkpoint complete rather than deleting it: resuming it then has nothing to
do (once the output is checked to be what it wrote) and spends no quota, which makes "call it
with ``resume=True`` until it returns" a safe retry loop. The file work runs in worker
threads, never on the event loop.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol, TypeVar

import anyio
import anyio.to_thread
import attrs

from ._core import arguments, params
from ._core.paging import ResumePoint
from ._encoding import (
    CALL_COLUMNS,
    DETAILED_CALL_COLUMNS,
    OUTPUT_FORMATS,
    OutputFormat,
    Row,
    RowEncoder,
    call_row,
    detailed_call_row,
    encoder_for,
)
from ._errors import ExportError, InvalidParameterError
from ._pagination import PageIterator

__all__ = [
    "CallLogKind",
    "Checkpoint",
    "CheckpointedFile",
    "ExportResult",
    "ProgressHook",
    "Query",
    "Sink",
    "StreamSink",
    "checkpoint_path",
    "export_call_logs",
    "export_to_file",
    "export_walk",
    "plan_export",
    "read_checkpoint",
    "write_checkpoint",
]

RowT = TypeVar("RowT")

ProgressHook = Callable[[int, int | None], object]
"""Called with (rows written so far, the walk's latest total) before the first page and after
each one; a resumed export's first call counts the rows written before it."""

CallLogKind = Literal["calls", "details"]
"""Which call logs an export walks (the checkpoint's ``command``, as the CLI names them)."""

_VERSION = 1


@attrs.frozen
class Query:
    """What an export asks for: a resume must ask for exactly the same."""

    command: str
    start: int
    end: int
    number: str | None
    format: OutputFormat

    def describe(self) -> str:
        number = "" if self.number is None else f" --number {self.number}"
        return f"{self.command} {self.start} {self.end}{number} --format {self.format}"


def _keys(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)  # a JSON list read back


@attrs.frozen
class Checkpoint:
    """How far an export to a file got; ``size`` is the output's length covering ``rows``."""

    query: Query
    offset: int = 0
    last_key: str | None = None
    size: int = 0
    rows: int = 0
    complete: bool = False
    # ``ResumePoint.recent``, ``.ahead`` and ``.since_start`` (absent from older files)
    recent: tuple[str, ...] = attrs.field(default=(), converter=_keys)
    ahead: tuple[str, ...] = attrs.field(default=(), converter=_keys)
    since_start: bool = False
    # The SHA-256 of the output's first ``size`` bytes, hex (absent from older files)
    sha256: str | None = None

    @property
    def resume(self) -> ResumePoint[str]:
        """Where the walk goes on from."""
        return ResumePoint(
            self.offset, self.last_key, self.recent, self.ahead, since_start=self.since_start
        )


def checkpoint_path(out: Path) -> Path:
    return out.with_name(out.name + ".checkpoint")


def read_checkpoint(path: Path) -> Checkpoint | None:
    """The checkpoint at ``path``, ``None`` if there is none.

    Every field is checked (type and range) and so is the document's ``checksum``: a damaged
    or hand-edited checkpoint would resume at the wrong place, doubling or skipping rows.
    (Older files have no checksum and no ``sha256``; they are read as they are.)

    Raises:
        ExportError: the file is not a checkpoint this version wrote, or it was changed.
    """
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read the checkpoint {path}: {exc}") from None
    if not isinstance(document, dict) or not _is(document.pop("version", None), _VERSION):
        raise ExportError(f"{path} is not a checkpoint of this version of plumvoice")
    checksum = document.pop("checksum", None)
    older = checksum is None and "sha256" not in document  # as written before checksums
    if not older and checksum != _checksum(document):
        raise ExportError(
            f"{path} was changed since plumvoice wrote it (its checksum differs): it cannot be "
            "trusted to resume; delete it and the output to start over"
        )
    query = document.get("query")
    problem = _invalid(document, _FIELDS, required={"query"}) or (
        _invalid(query, _QUERY_FIELDS, required=set(_QUERY_FIELDS))
        if isinstance(query, dict)
        else "query: not an object"
    )
    if problem:
        raise ExportError(f"{path} is not a valid checkpoint ({problem})")
    return Checkpoint(query=Query(**document.pop("query")), **document)


def _is(value: object, expected: int) -> bool:
    return type(value) is int and value == expected


def _natural(value: object) -> bool:
    return type(value) is int and value >= 0


def _integer(value: object) -> bool:
    return type(value) is int


def _text_or_none(value: object) -> bool:
    return value is None or type(value) is str


def _texts(value: object) -> bool:
    return type(value) is list and all(type(item) is str for item in value)


def _flag(value: object) -> bool:
    return type(value) is bool


def _hex_digest(value: object) -> bool:
    return value is None or (
        type(value) is str and len(value) == 64 and set(value) <= set("0123456789abcdef")
    )


_FIELDS: dict[str, Callable[[object], bool]] = {
    "query": lambda value: True,  # checked on its own
    "offset": _natural,
    "last_key": _text_or_none,
    "size": _natural,
    "rows": _natural,
    "complete": _flag,
    "recent": _texts,
    "ahead": _texts,
    "since_start": _flag,
    "sha256": _hex_digest,
}
_QUERY_FIELDS: dict[str, Callable[[object], bool]] = {
    "command": lambda value: value in ("calls", "details"),
    "start": _integer,
    "end": _integer,
    "number": _text_or_none,
    "format": lambda value: value in OUTPUT_FORMATS,
}


def _invalid(
    document: dict[str, Any], fields: dict[str, Callable[[object], bool]], *, required: set[str]
) -> str | None:
    """What is wrong with ``document`` (a field unknown, missing or of a wrong value), if any."""
    missing = sorted(required - document.keys())
    if missing:
        return f"{missing[0]}: missing"
    for name, value in document.items():
        if name not in fields:
            return f"{name}: unknown"
        if not fields[name](value):
            return f"{name}: {value!r} is not valid"
    return None


def _checksum(fields: dict[str, Any]) -> str:
    """Of the fields without ``version``: JSON read back hashes the same as it was written."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def write_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Replace the checkpoint atomically: readers see the old one or the new one, never half."""
    fields = attrs.asdict(checkpoint)
    document = {"version": _VERSION, **fields, "checksum": _checksum(fields)}
    temporary = path.with_name(path.name + ".tmp")
    with _naming(path):
        with temporary.open("wb") as file:
            file.write(json.dumps(document, indent=1).encode() + b"\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        _fsync_directory(path.parent)


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """A write error names its file: a full disk's ``write`` or ``fsync`` says only "No space
    left on device", and the user must know it was the export's output (or its checkpoint)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX: a rename lives in the directory's data)."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def plan_export(out: Path, query: Query, *, resume: bool) -> Checkpoint:
    """Where an export of ``query`` to ``out`` starts; reads only, so it may be refused first.

    With ``resume``, the existing checkpoint of the same query (complete or not), or a fresh
    start when there is none. Without it, a fresh start, unless an unfinished export of ``out``
    is waiting: overwriting it would throw its quota away, so that is refused.

    Raises:
        ExportError: the checkpoint is of another query, or an unfinished export would be
            overwritten, or the checkpoint is unreadable.
    """
    path = checkpoint_path(out)
    existing = read_checkpoint(path)
    if existing is None:
        if out.exists() and out.stat().st_size > 0:
            raise ExportError(
                f"{out} exists and no checkpoint says an export wrote it ({path}): it is not "
                "overwritten; delete it or export to another path"
            )
        return Checkpoint(query)
    if resume:
        if existing.query != query:
            raise ExportError(
                f"cannot resume: {path} is for another export ({existing.query.describe()}), "
                f"not this one ({query.describe()}); repeat that export to resume it, or delete "
                "the checkpoint and the output to start over"
            )
        return existing
    if not existing.complete:
        raise ExportError(
            f"{out} holds an unfinished export ({existing.rows:,} rows, {path}): resume it "
            "(resume=True, or --resume), or delete it and its checkpoint to start over"
        )
    return Checkpoint(query)


class Sink(Protocol):
    """Where pages of encoded rows go, and what happens when the walk is through."""

    @property
    def rows(self) -> int: ...

    def append(self, data: bytes, *, place: ResumePoint[str], rows: int) -> None: ...

    def complete(self) -> None: ...


class StreamSink:
    """Standard output: written and flushed page by page; nothing to resume from."""

    def __init__(self, stream: BinaryIO, header: bytes) -> None:
        self.rows = 0
        self._stream = stream
        stream.write(header)

    def append(self, data: bytes, *, place: ResumePoint[str], rows: int) -> None:
        self._stream.write(data)
        self._stream.flush()
        self.rows += rows

    def complete(self) -> None:
        self._stream.flush()


class CheckpointedFile:
    """An output file and its checkpoint, kept consistent as described in the module docstring.

    Use as a context manager; ``open`` locks the output, performs step 3 (truncate to the
    checkpoint) and writes the header when the output is empty. The lock is the open file's
    and goes with it.

    Raises:
        ExportError: (``open``) another export is writing the output, or the output is
            shorter than its checkpoint says or its bytes differ from those the checkpoint
            covers: it was changed by something else, so resuming would double or skip rows.
    """

    def __init__(self, out: Path, checkpoint: Checkpoint) -> None:
        self.out = out
        self.checkpoint = checkpoint
        self._path = checkpoint_path(out)
        self._file: BinaryIO | None = None
        self._digest = hashlib.sha256()  # of the output's bytes the checkpoint covers

    @property
    def rows(self) -> int:
        return self.checkpoint.rows

    def open(self, header: bytes) -> CheckpointedFile:
        file = self._file = self.out.open("ab+")
        try:
            with _naming(self.out):
                self._start(file, header)
        except BaseException:
            self._file = None
            file.close()  # and with it the lock
            raise
        return self

    def _start(self, file: BinaryIO, header: bytes) -> None:
        # Imported here: ``import plumvoice_async`` must not need a POSIX module (the export
        # itself already does, for its folder's ``fsync``).
        import fcntl

        checkpoint = self.checkpoint
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ExportError(
                f"another export is writing to {self.out} now: let it finish, or stop it and resume"
            ) from None
        self._digest = verified(self.out, file, checkpoint)
        # The checkpoint first: a fresh start's says 0 bytes, so a kill right after it, before
        # the output is emptied, still resumes correctly (from an empty file).
        write_checkpoint(self._path, checkpoint)
        file.truncate(checkpoint.size)
        if checkpoint.size == 0 and header:
            self.append(header, place=ResumePoint(), rows=0)

    def append(self, data: bytes, *, place: ResumePoint[str], rows: int) -> None:
        assert self._file is not None, "open() first"
        with _naming(self.out):
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
        self._digest.update(data)
        self.checkpoint = attrs.evolve(
            self.checkpoint,
            offset=place.offset,
            last_key=place.last_key,
            recent=place.recent,
            ahead=place.ahead,
            since_start=place.since_start,
            size=self._file.tell(),
            rows=self.checkpoint.rows + rows,
            sha256=self._digest.hexdigest(),
        )
        write_checkpoint(self._path, self.checkpoint)

    def complete(self) -> None:
        self.checkpoint = attrs.evolve(self.checkpoint, complete=True)
        write_checkpoint(self._path, self.checkpoint)

    def __enter__(self) -> CheckpointedFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            with _naming(self.out):  # a failed write's bytes still buffered fail again here
                self._file.close()


def verified(out: Path, file: BinaryIO, checkpoint: Checkpoint) -> Any:
    """The SHA-256 of the bytes of ``out`` (open as ``file``) that ``checkpoint`` covers.

    Raises:
        ExportError: they are not those the export wrote: ``out`` is shorter, its bytes
            differ, or (a complete export's) it is longer.
    """
    length = os.fstat(file.fileno()).st_size
    if length < checkpoint.size or (checkpoint.complete and length > checkpoint.size):
        raise ExportError(
            f"{out} has {length:,} bytes but its checkpoint covers {checkpoint.size:,}: it was "
            "changed since, so it cannot be resumed; delete both to start over"
        )
    digest = _digest(file, checkpoint.size)
    if checkpoint.sha256 not in (None, digest.hexdigest()):
        raise ExportError(
            f"{out} was changed since its checkpoint (its first {checkpoint.size:,} bytes "
            "differ from those written), so it cannot be resumed; delete both to start over"
        )
    return digest


def _check_complete(out: Path, checkpoint: Checkpoint) -> None:
    """A complete export's output is still what it wrote, or resuming it is refused."""
    try:
        with out.open("rb") as file:
            verified(out, file, checkpoint)
    except FileNotFoundError:
        raise ExportError(
            f"{out} is gone: it was changed since its checkpoint, which says a complete export "
            "wrote it; delete the checkpoint to export again"
        ) from None


def _digest(file: BinaryIO, size: int) -> Any:
    """The SHA-256 of ``file``'s first ``size`` bytes, read in chunks."""
    digest = hashlib.sha256()
    file.seek(0)
    while size > 0:
        chunk = file.read(min(size, 1 << 20))
        if not chunk:
            break
        digest.update(chunk)
        size -= len(chunk)
    return digest


async def export_walk(
    walk: PageIterator[RowT, str],
    to_row: Callable[[RowT], Row],
    encoder: RowEncoder,
    sink: Sink,
    progress: ProgressHook | None = None,
) -> int:
    """Write every row of ``walk`` to ``sink``, page by page; return the pages written.

    The walk reads ahead (``async with``): the next pages are in flight while this one is
    encoded and written. Each page is appended, with its checkpoint, in one step, in a worker
    thread (the disk's ``fsync`` must not stall the event loop) that a cancellation waits for:
    a page and its checkpoint are written whole or not at all.
    """
    pages = 0
    if progress is not None:
        progress(sink.rows, None)
    async with walk:
        async for page in walk.pages():
            data = b"".join(encoder.row(to_row(row)) for row in page)
            place = walk.checkpoint
            await anyio.to_thread.run_sync(
                functools.partial(sink.append, data, place=place, rows=len(page))
            )
            pages += 1
            if progress is not None:
                progress(sink.rows, walk.total)
    await anyio.to_thread.run_sync(sink.complete)
    return pages


@attrs.frozen
class ExportResult:
    """What an export wrote.

    ``rows``: all rows in the file (a resumed export's earlier ones included); ``pages`` and
    ``requests``: the pages written and the page requests spent by this call (a walk may ask
    for a page again when the data moved); ``path``: the file; ``already_complete``: the
    checkpoint said the export was finished, so nothing was asked or written.
    """

    rows: int
    pages: int
    requests: int
    path: Path
    already_complete: bool = False


async def export_to_file(
    walk_from: Callable[[ResumePoint[str]], PageIterator[RowT, str]],
    query: Query,
    path: Path,
    *,
    to_row: Callable[[RowT], Row],
    columns: tuple[str, ...],
    resume: bool,
    progress: ProgressHook | None = None,
) -> ExportResult:
    """Export the walk ``walk_from(place)`` makes to ``path``, checkpointed (module docstring).

    Everything that may be refused (the checkpoint, the output's folder, an output that is a
    folder or not an export's) is checked before the output is touched and before any request;
    the lock and the output's bytes, after: they are checked again under the lock.

    Raises:
        ExportError: see ``plan_export`` and ``CheckpointedFile``.
        InvalidParameterError: ``path``'s folder does not exist, ``path`` is a folder, or a
            walk parameter is bad.
        PlumError: the API failed; the output and its checkpoint stay resumable.
    """
    if not await anyio.Path(path).parent.is_dir():
        raise InvalidParameterError("path", str(path), "its folder does not exist")
    if await anyio.Path(path).is_dir():
        raise InvalidParameterError("path", str(path), "is a directory, not a file")
    plan = await anyio.to_thread.run_sync(
        functools.partial(plan_export, path, query, resume=resume)
    )
    if plan.complete:
        await anyio.to_thread.run_sync(_check_complete, path, plan)
        return ExportResult(plan.rows, 0, 0, path, already_complete=True)
    walk = walk_from(plan.resume)
    encoder = encoder_for(query.format, columns)
    with CheckpointedFile(path, plan) as file:
        await anyio.to_thread.run_sync(file.open, encoder.header())
        pages = await export_walk(walk, to_row, encoder, file, progress)
        return ExportResult(file.rows, pages, walk.requests, path)


async def export_call_logs(
    kind: CallLogKind,
    iterate: Callable[..., PageIterator[Any, str]],
    start: int | datetime,
    end: int | datetime,
    path: str | os.PathLike[str],
    *,
    format: OutputFormat,
    resume: bool,
    number: str | None,
    page_size: int,
    concurrency: int,
    progress: ProgressHook | None,
) -> ExportResult:
    """``calls.export`` and ``call_details.export``: check, then ``export_to_file``."""
    first, last = params.fuse_range(start, end)
    fmt = arguments.one_of(format, name="format", choices=OUTPUT_FORMATS)
    resume = arguments.one_of(resume, name="resume", choices=(False, True))
    if not isinstance(path, str | os.PathLike):
        raise InvalidParameterError("path", path, "expected a file path (str or os.PathLike)")
    if progress is not None and not callable(progress):
        raise InvalidParameterError("progress", progress, "expected a callable or None")
    # Built once here, before any file is read: its parameters are checked now.
    iterate(first, last, number=number, page_size=page_size, concurrency=concurrency)

    def walk_from(place: ResumePoint[str]) -> PageIterator[Any, str]:
        return iterate(
            first, last, number=number, page_size=page_size, concurrency=concurrency, resume=place
        )

    detailed = kind == "details"
    return await export_to_file(
        walk_from,
        Query(kind, first, last, number, fmt),
        Path(path),
        to_row=detailed_call_row if detailed else call_row,
        columns=DETAILED_CALL_COLUMNS if detailed else CALL_COLUMNS,
        resume=resume,
        progress=progress,
    )
