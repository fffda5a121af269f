"""The bulk export behind ``plumvoice calls|details``: pages to bytes, and a checkpoint to resume.

An export to ``--out FILE`` keeps ``FILE.checkpoint`` beside it, a small JSON document naming
the query (command, start, end, number, output format), the walk's place (its
``checkpoint``: ``offset``, the last ``session_id``, the ids of the rows written just before it,
and of rows written that inserts pushed ahead of the place), the rows written and the output's
byte length. The order of writes is the whole design:

1. a page's rows are appended to the output, flushed and fsynced;
2. only then the checkpoint is rewritten, atomically (a temporary file, fsynced, then
   ``os.replace``), so it never claims bytes that are not on disk;
3. on ``--resume`` the output is first truncated to the checkpoint's length, which drops
   whatever a killed process appended after its last checkpoint (even half a row), and the
   walk restarts at the checkpoint's offset, checked against its last ``session_id`` (or one
   of the ids before it, if that one was deleted meanwhile), skipping the rows it already wrote.

So a SIGKILL at any instant loses at most the rows after the last checkpoint, and the resumed
export writes each of those exactly once. Ctrl-C is gentler still: writing a page and its
checkpoint has no ``await`` in it, so the cancellation lands between pages. A finished export
marks its checkpoint complete rather than deleting it: ``--resume`` then has nothing to do and
spends no quota, which makes "run with ``--resume`` until it exits 0" a safe retry loop.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

import attrs

from .._client import PlumClient
from .._pagination import PageIterator, ResumePoint
from .output import (
    CALL_COLUMNS,
    DETAILED_CALL_COLUMNS,
    OutputFormat,
    Progress,
    Row,
    RowEncoder,
    call_row,
    detailed_call_row,
    encoder_for,
)

__all__ = [
    "CallExport",
    "Checkpoint",
    "CheckpointedFile",
    "ExportRefused",
    "ExportResult",
    "Query",
    "Sink",
    "StreamSink",
    "checkpoint_path",
    "export_walk",
    "plan_export",
    "read_checkpoint",
    "run_export",
    "write_checkpoint",
]

RowT = TypeVar("RowT")

_VERSION = 1


class ExportRefused(Exception):
    """An export that cannot start or resume safely; the message says what to do instead."""


@attrs.frozen
class Query:
    """What an export asks for: a resume must ask for exactly the same."""

    command: str
    start: int
    end: int
    number: str | None
    format: str

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

    Raises:
        ExportRefused: the file is not a checkpoint this version wrote.
    """
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ExportRefused(f"cannot read the checkpoint {path}: {exc}") from None
    if not isinstance(document, dict) or document.pop("version", None) != _VERSION:
        raise ExportRefused(f"{path} is not a checkpoint of this version of plumvoice")
    try:
        return Checkpoint(query=Query(**document.pop("query")), **document)
    except (KeyError, TypeError) as exc:
        raise ExportRefused(f"{path} is not a valid checkpoint ({exc})") from None


def write_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Replace the checkpoint atomically: readers see the old one or the new one, never half."""
    document: dict[str, Any] = {"version": _VERSION, **attrs.asdict(checkpoint)}
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as file:
        file.write(json.dumps(document, indent=1).encode() + b"\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    _fsync_directory(path.parent)


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
        ExportRefused: the checkpoint is of another query, or an unfinished export would be
            overwritten, or the checkpoint is unreadable.
    """
    path = checkpoint_path(out)
    existing = read_checkpoint(path)
    if existing is None:
        return Checkpoint(query)
    if resume:
        if existing.query != query:
            raise ExportRefused(
                f"--resume: {path} is for another query ({existing.query.describe()}), "
                f"not this one ({query.describe()}); repeat that query to resume it, or delete "
                "the checkpoint to start over"
            )
        return existing
    if not existing.complete:
        raise ExportRefused(
            f"{out} holds an unfinished export ({existing.rows:,} rows, {path}): pass --resume "
            "to continue it, or delete the checkpoint to start over"
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

    Use as a context manager; ``open`` performs step 3 (truncate to the checkpoint) and writes
    the header when the output is empty.

    Raises:
        ExportRefused: (``open``) the output is shorter than its checkpoint says: it was
            changed by something else, so resuming would leave a gap.
    """

    def __init__(self, out: Path, checkpoint: Checkpoint) -> None:
        self.out = out
        self.checkpoint = checkpoint
        self._path = checkpoint_path(out)
        self._file: BinaryIO | None = None

    @property
    def rows(self) -> int:
        return self.checkpoint.rows

    def open(self, header: bytes) -> CheckpointedFile:
        checkpoint = self.checkpoint
        length = self.out.stat().st_size if self.out.exists() else 0
        if length < checkpoint.size:
            raise ExportRefused(
                f"{self.out} has {length:,} bytes but its checkpoint covers {checkpoint.size:,}: "
                "it was changed since, so it cannot be resumed; delete both to start over"
            )
        # The checkpoint first: a fresh start's says 0 bytes, so a kill right after it, before
        # the output is emptied, still resumes correctly (from an empty file).
        write_checkpoint(self._path, checkpoint)
        file = self._file = self.out.open("ab+")
        file.truncate(checkpoint.size)
        if checkpoint.size == 0 and header:
            self.append(header, place=ResumePoint(), rows=0)
        return self

    def append(self, data: bytes, *, place: ResumePoint[str], rows: int) -> None:
        assert self._file is not None, "open() first"
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())
        self.checkpoint = attrs.evolve(
            self.checkpoint,
            offset=place.offset,
            last_key=place.last_key,
            recent=place.recent,
            ahead=place.ahead,
            since_start=place.since_start,
            size=self._file.tell(),
            rows=self.checkpoint.rows + rows,
        )
        write_checkpoint(self._path, self.checkpoint)

    def complete(self) -> None:
        self.checkpoint = attrs.evolve(self.checkpoint, complete=True)
        write_checkpoint(self._path, self.checkpoint)

    def __enter__(self) -> CheckpointedFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()


async def export_walk(
    walk: PageIterator[RowT, str],
    to_row: Callable[[RowT], Row],
    encoder: RowEncoder,
    sink: Sink,
    progress: Progress,
) -> int:
    """Write every row of ``walk`` to ``sink``, page by page; return the pages written.

    The walk reads ahead (``async with``): the next pages are in flight while this one is
    encoded and written. Each page is appended, with its checkpoint, in one step.
    """
    pages = 0
    async with walk:
        async for page in walk.pages():
            data = b"".join(encoder.row(to_row(row)) for row in page)
            sink.append(data, place=walk.checkpoint, rows=len(page))
            pages += 1
            progress.update(sink.rows, walk.total)
    sink.complete()
    return pages


@attrs.frozen
class CallExport:
    """One ``calls`` or ``details`` export: the query, how to walk it, where to write it."""

    command: str
    start: int
    end: int
    number: str | None = None
    format: OutputFormat = "jsonl"
    page_size: int = 10_000
    concurrency: int = 2
    out: Path | None = None
    resume: bool = False

    @property
    def query(self) -> Query:
        return Query(self.command, self.start, self.end, self.number, self.format)


@attrs.frozen
class ExportResult:
    """What an export wrote: all its rows (a resumed one's included) and this run's pages."""

    rows: int
    pages: int
    already_complete: bool = False


async def run_export(job: CallExport, client: PlumClient, progress: Progress) -> ExportResult:
    """Run ``job`` with ``client``, showing ``progress``.

    Everything that may be refused (the checkpoint, every parameter) is checked before the
    output is touched.

    Raises:
        ExportRefused: see ``plan_export`` and ``CheckpointedFile``.
        InvalidParameterError: a parameter is invalid (nothing sent, nothing written).
        PlumError: the API failed; the output and its checkpoint stay resumable.
    """
    if job.out is not None:
        plan = plan_export(job.out, job.query, resume=job.resume)
    else:
        plan = Checkpoint(job.query)
    if plan.complete:
        return ExportResult(plan.rows, 0, already_complete=True)
    walk_settings: dict[str, Any] = {
        "number": job.number,
        "page_size": job.page_size,
        "concurrency": job.concurrency,
        "resume": plan.resume,
    }
    if job.command == "details":
        walk = client.call_details.iterate(job.start, job.end, **walk_settings)
        return await _write(
            job,
            plan,
            walk=walk,
            to_row=detailed_call_row,
            columns=DETAILED_CALL_COLUMNS,
            progress=progress,
        )
    return await _write(
        job,
        plan,
        walk=client.calls.iterate(job.start, job.end, **walk_settings),
        to_row=call_row,
        columns=CALL_COLUMNS,
        progress=progress,
    )


async def _write(
    job: CallExport,
    plan: Checkpoint,
    *,
    walk: PageIterator[RowT, str],
    to_row: Callable[[RowT], Row],
    columns: tuple[str, ...],
    progress: Progress,
) -> ExportResult:
    encoder = encoder_for(job.format, columns)
    with _sink(job.out, plan, encoder.header()) as sink:
        progress.start(sink.rows)
        pages = await progress.run(lambda: export_walk(walk, to_row, encoder, sink, progress))
        return ExportResult(sink.rows, pages)


@contextmanager
def _sink(out: Path | None, plan: Checkpoint, header: bytes) -> Iterator[Sink]:
    if out is None:
        yield StreamSink(sys.stdout.buffer, header)
        return
    with CheckpointedFile(out, plan) as file:
        yield file.open(header)
