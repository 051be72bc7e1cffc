"""Moving sessions between stores and files: export, import, copy.

The exchange format is JSON Lines with one message per line: LangChain's message dict
plus the session id, ``{"session_id": "s1", "type": "human", "data": {...}}``. A session's
lines are in order; sessions follow one another.

:func:`copy_sessions` is the tool for migrations because it is idempotent: for each
session it appends only what the destination lacks (the destination's messages must equal
the start of the source's), and reports, without touching it, a destination session that
diverged. Re-running an interrupted copy finishes it. :func:`file_source` turns an export,
a LangChain JSON-array history file or a threadline JSON Lines history file into a source
for it. :func:`import_sessions` appends blindly (fast, for empty destinations) after
checking the whole file, so a bad line imports nothing.

:func:`export_sessions` to a path never leaves a half-written file where the export goes:
it writes a temporary file beside it (created exclusively, private while it is written),
fsyncs it and renames it over the target only once every session was read; a read that
fails part-way (a row that cannot be decoded, a store that drops) leaves the target as it
was and removes the temporary file. A new export is private (0600: it holds whole
conversations); one that replaces an earlier file keeps that file's mode. Reads take
``skip_invalid`` like the stores do.

Memory stays flat in a session's length: export and copy read each session with
``iter_messages`` (a page at a time) and write as they go; import reads its file twice,
once to check every line (keeping only a count per session), then to append it in
chunks of :data:`CHUNK` messages. Export lines escape, the JSON way, the characters a
terminal would act on that JSON leaves raw (C1 controls, DEL, bidirectional overrides)
and lone surrogates, which UTF-8 cannot hold: the values read back the same.

>>> src, dst = open_store("memory://"), open_store("memory://")
>>> src.append("s1", [HumanMessage("hi"), AIMessage("hello")])
>>> copy_sessions(src, dst).messages
2
>>> copy_sessions(src, dst).messages  # nothing left to copy
0
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import uuid
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any, Protocol

from threadline._errors import InputError, MessageFormatError
from threadline.messages._serialization import message_from_dict, message_to_dict
from threadline.messages._values import BaseMessage
from threadline.stores._base import Store, validate_session_id

__all__ = [
    "CopyReport",
    "SessionSource",
    "copy_sessions",
    "export_line",
    "export_sessions",
    "file_source",
    "import_sessions",
]

Progress = Callable[[int, int], object]
#: Messages appended per call when copying or importing a long session, and read per
#: page when exporting or copying one.
CHUNK = 1000


class SessionSource(Protocol):
    """What :func:`copy_sessions` and :func:`export_sessions` read: any store fits. A
    source without ``iter_messages`` is read with ``get_messages``, whole sessions at a
    time."""

    def iter_sessions(self, prefix: str = "", *, page_size: int = 500) -> Iterator[str]: ...

    def get_messages(self, session_id: str, *, last: int | None = None,
                     skip_invalid: bool = False) -> list[BaseMessage]: ...

    def iter_messages(self, session_id: str, *, page_size: int = 1000,
                      skip_invalid: bool = False) -> Iterator[BaseMessage]: ...


@dataclass
class CopyReport:
    """What :func:`copy_sessions` did."""

    #: Sessions looked at.
    sessions: int = 0
    #: Sessions that received messages.
    copied: int = 0
    #: Messages appended to the destination.
    messages: int = 0
    #: Sessions the destination already had in full.
    up_to_date: int = 0
    #: Sessions whose destination messages are not a prefix of the source's (left alone).
    conflicts: list[str] = field(default_factory=list)


def _session_ids(source: SessionSource, session_ids: Iterable[str] | None) -> list[str]:
    if session_ids is None:
        return list(source.iter_sessions())
    if isinstance(session_ids, str):
        raise InputError("session_ids must be a list of session ids, not one str")
    return [validate_session_id(sid) for sid in session_ids]


@contextmanager
def _opened(fp: IO[str] | str | os.PathLike[str], mode: str) -> Iterator[IO[str]]:
    if isinstance(fp, str | os.PathLike):
        with open(fp, mode, encoding="utf-8", newline="") as handle:
            yield handle
    else:
        yield fp


def _read(source: SessionSource, session_id: str, skip_invalid: bool
          ) -> Generator[BaseMessage, None, None]:
    """A session's messages, a page at a time when the source can page (closing the
    generator closes the source's read)."""
    paged = getattr(source, "iter_messages", None)
    if paged is not None:
        yield from paged(session_id, page_size=CHUNK, skip_invalid=skip_invalid)
    elif skip_invalid:
        yield from source.get_messages(session_id, skip_invalid=True)
    else:  # the keyword only when asked for: a source that predates it still works
        yield from source.get_messages(session_id)


def _chunks(messages: Iterator[BaseMessage]) -> Iterator[list[BaseMessage]]:
    while chunk := list(islice(messages, CHUNK)):
        yield chunk


# One encoder for every line (json.dumps with options builds one per call). JSON escapes
# C0 controls itself; these it would leave raw.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_RAW = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def export_line(session_id: str, message: BaseMessage) -> str:
    """One line of an export: the message's dict with its ``session_id``, ASCII-safe."""
    text = _ENCODER.encode({"session_id": session_id, **message_to_dict(message)})
    return _RAW.sub(lambda match: f"\\u{ord(match[0]):04x}", text) + "\n"


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # a platform (Windows) that cannot open a directory
        return
    try:
        with suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _replacing(path: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """A text file that becomes ``path`` only if the ``with`` block completes.

    The temporary file sits beside the target (same directory, so the rename is atomic),
    has a unique name and is created with ``O_EXCL``; it is private (0600) while being
    written, and stays so unless it replaces a file, whose mode it takes just before the
    rename. A target that is not a regular file (``/dev/stdout``, a FIFO) is written in
    place: it cannot be replaced, and holds no earlier content to keep.
    """
    target = Path(path)
    if target.is_symlink():
        target = target.resolve()  # replace the file the link names, keep the link
    try:
        existing = os.stat(target)
    except FileNotFoundError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with open(target, "w", encoding="utf-8", newline="") as handle:
            yield handle
        return
    directory = target.parent
    for _ in range(100):
        temporary = directory / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                         | getattr(os, "O_CLOEXEC", 0), 0o600)
            break
        except FileExistsError:
            continue
        except OSError as exc:  # name the file asked for, not the temporary one
            raise type(exc)(exc.errno, exc.strerror, str(target)) from exc
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(f"cannot create a temporary file beside {str(target)!r}")
    try:
        # A new export is private whatever the umask; a replaced one keeps its mode.
        mode = stat.S_IMODE(existing.st_mode) if existing is not None else 0o600
        os.fchmod(fd, 0o600)  # a umask such as 0o277 may have taken the owner's bits
        handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
    except BaseException:
        os.close(fd)
        os.unlink(temporary)
        raise
    try:
        with handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def export_sessions(store: SessionSource, fp: IO[str] | str | os.PathLike[str],
                    session_ids: Iterable[str] | None = None,
                    progress: Progress | None = None, *, skip_invalid: bool = False) -> int:
    """Write sessions as JSON Lines to a text file (or a path); the number of messages.

    ``progress(done, total)`` is called after each session. Given a path, the export
    replaces the file atomically when it is complete; if reading a session fails, the file
    is left as it was (nothing half-written). A new file is created 0600. Sessions are
    read a page at a time (``iter_messages``) and written as they are read. A stored
    message that cannot be decoded raises :class:`MessageFormatError`; with
    ``skip_invalid=True`` it is left out and reported by a
    :class:`~threadline.SkippedMessageWarning`.

    >>> import io
    >>> store = open_store("memory://")
    >>> store.append("s1", [HumanMessage("hi")])
    >>> out = io.StringIO()
    >>> export_sessions(store, out)
    1
    >>> out.getvalue()[:40]
    '{"session_id":"s1","type":"human","data"'
    """
    ids = _session_ids(store, session_ids)
    written = 0
    opened = _replacing(fp) if isinstance(fp, str | os.PathLike) else _opened(fp, "w")
    with opened as out:
        for done, sid in enumerate(ids, 1):
            with closing(_read(store, sid, skip_invalid)) as messages:
                for chunk in _chunks(messages):
                    out.write("".join([export_line(sid, message) for message in chunk]))
                    written += len(chunk)
            if progress is not None:
                progress(done, len(ids))
    return written


def _parse_line(line: str, number: int, where: str) -> tuple[str, BaseMessage] | None:
    """The session id and message of one line of an export (``None`` if blank); an
    error names the line."""
    if not line.strip():
        return None
    torn = not line.endswith("\n")
    try:
        item = json.loads(line)
        if not isinstance(item, dict):
            raise ValueError(f"a JSON {type(item).__name__}, not an object")
        sid = item.pop("session_id", None)
        if not isinstance(sid, str):
            raise ValueError('no "session_id" string')
        validate_session_id(sid)
        return sid, message_from_dict(item)
    except RecursionError as exc:
        raise MessageFormatError(f"{where}, line {number}: JSON nested too deeply to "
                                 "read") from exc
    except (ValueError, MessageFormatError) as exc:
        hint = " (the last line has no newline: the file looks truncated)" if torn else ""
        raise MessageFormatError(
            f"{where}, line {number}: {exc}{hint}; expected one "
            '{"session_id": ..., "type": ..., "data": {...}} object per line'
        ) from exc


def _items(lines: Iterable[str], where: str) -> Iterator[tuple[str, BaseMessage]]:
    for number, line in enumerate(lines, 1):
        item = _parse_line(line, number, where)
        if item is not None:
            yield item


def _parse_export(lines: Iterable[str], where: str) -> dict[str, list[BaseMessage]]:
    """Sessions of an export, in first-seen order; errors name the line."""
    sessions: dict[str, list[BaseMessage]] = {}
    for sid, message in _items(lines, where):
        sessions.setdefault(sid, []).append(message)
    return sessions


def _start(handle: IO[str]) -> int | None:
    """Where ``handle`` can be read again from, or ``None`` if it cannot seek back."""
    try:
        return handle.tell() if handle.seekable() else None
    except (OSError, ValueError, AttributeError):  # a pipe; tell() after next(); closed
        return None


@contextmanager
def _twice(handle: IO[str]) -> Iterator[tuple[Iterable[str], Callable[[], IO[str]]]]:
    """The lines of ``handle`` for a first pass, and a function that gives them again:
    by seeking back, or for a stream that cannot (a pipe) from a private temporary copy
    made during the first pass (disk, not memory)."""
    start = _start(handle)
    if start is not None:
        def rewound() -> IO[str]:
            handle.seek(start)
            return handle

        yield handle, rewound
        return
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as spool:
        def copied() -> Iterator[str]:
            for line in handle:
                spool.write(line)
                yield line

        def replayed() -> IO[str]:
            spool.seek(0)
            return spool

        yield copied(), replayed


def _check_export(lines: Iterable[str], where: str) -> tuple[dict[str, int], int]:
    """Every line parsed, nothing kept: the message count per session (first-seen order)
    and the number of lines read. Warnings wait for the second pass, which says them."""
    counts: dict[str, int] = {}
    read = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for read, line in enumerate(lines, 1):
            item = _parse_line(line, read, where)
            if item is not None:
                counts[item[0]] = counts.get(item[0], 0) + 1
    return counts, read


def _append_items(store: Store, items: Iterable[tuple[str, BaseMessage]],
                  counts: dict[str, int], progress: Progress | None) -> int:
    """Append runs of one session's messages, :data:`CHUNK` at a time; ``progress``
    after a session's last message."""
    appended = dict.fromkeys(counts, 0)
    total = done = 0
    chunk: list[BaseMessage] = []
    current = ""

    def flush() -> None:
        nonlocal total, done
        if not chunk:
            return
        store.append(current, chunk)
        total += len(chunk)
        appended[current] = appended.get(current, 0) + len(chunk)
        if appended[current] == counts.get(current):
            done += 1
            if progress is not None:
                progress(done, len(counts))
        chunk.clear()

    for sid, message in items:
        if sid != current or len(chunk) >= CHUNK:
            flush()
            current = sid
        chunk.append(message)
    flush()
    return total


def import_sessions(store: Store, fp: IO[str] | str | os.PathLike[str],
                    progress: Progress | None = None) -> int:
    """Append the sessions of an export file to ``store``; the number of messages.

    The whole file is checked first: a bad or truncated line raises
    :class:`MessageFormatError` naming its line, and nothing is imported. Then it is read
    again and appended :data:`CHUNK` messages at a time, so memory does not grow with the
    file (a stream that cannot seek back, such as a pipe, is copied to a private
    temporary file during the check). Messages are appended, not merged: to resume or
    repeat an import, use ``copy_sessions(file_source(path), store)`` instead.
    """
    where = f"export file {str(fp)!r}" if isinstance(fp, str | os.PathLike) else "export"
    with _opened(fp, "r") as handle, _twice(handle) as (lines, again):
        counts, read = _check_export(lines, where)
        # Only the lines checked: a file that grew since is not read past them.
        return _append_items(store, _items(islice(again(), read), where), counts, progress)


def _copy_session(src: SessionSource, dst: Store, session_id: str,
                  skip_invalid: bool) -> int | None:
    """Append to ``dst`` what it lacks of the source's session: the number of messages,
    or ``None`` if the destination's messages are not the start of the source's."""
    with closing(_read(src, session_id, skip_invalid)) as source:
        with closing(_read(dst, session_id, False)) as present:
            for message in present:
                if next(source, None) != message:
                    return None
        appended = 0
        for chunk in _chunks(source):
            dst.append(session_id, chunk)
            appended += len(chunk)
        return appended


def copy_sessions(src: SessionSource, dst: Store, session_ids: Iterable[str] | None = None,
                  progress: Progress | None = None, *,
                  skip_invalid: bool = False) -> CopyReport:
    """Copy sessions from any store (or :func:`file_source`) to any store, idempotently.

    For each session the destination gets only the messages it does not have yet; a
    destination session whose messages are not the start of the source's is a conflict:
    reported in ``CopyReport.conflicts`` and left as it is. Expiry times are not copied
    (the destination's own TTL applies). ``skip_invalid=True`` leaves out source messages
    that cannot be decoded (each reported by a :class:`~threadline.SkippedMessageWarning`);
    the destination is always read strictly.

    Both sides are read a page at a time and the missing messages appended
    :data:`CHUNK` at a time, so memory does not grow with a session's length. A copy
    that stops part-way (a source message that cannot be read, Ctrl-C) may leave the
    start of a session's missing messages appended: running it again appends the rest.
    """
    ids = _session_ids(src, session_ids)
    report = CopyReport()
    for done, sid in enumerate(ids, 1):
        report.sessions += 1
        appended = _copy_session(src, dst, sid, skip_invalid)
        if appended is None:
            report.conflicts.append(sid)
        elif appended == 0:
            report.up_to_date += 1
        else:
            report.copied += 1
            report.messages += appended
        if progress is not None:
            progress(done, len(ids))
    return report


def file_source(path: str | os.PathLike[str], *, session_id: str | None = None) -> Store:
    """A read-only-use store holding the sessions of a file, for :func:`copy_sessions`.

    The file is an export (JSON Lines with ``session_id`` on each line), or one history:
    LangChain's JSON array or threadline's JSON Lines (``FileChatMessageHistory``), whose
    session is named ``session_id`` (default: the file name without its extension).

    >>> copy_sessions(file_source("chat.json", session_id="s1"), store)  # doctest: +SKIP
    """
    from threadline.stores._memory import MemoryStore
    from threadline.stores.file._history import FileChatMessageHistory

    file_path = Path(path)
    store = MemoryStore("memory://")
    if _is_export(file_path):
        if session_id is not None:
            raise InputError(f"{str(file_path)!r} is an export of several sessions; "
                             "do not pass session_id")
        with _opened(file_path, "r") as handle:
            sessions = _parse_export(handle, f"export file {str(file_path)!r}")
        for sid, messages in sessions.items():
            store.append(sid, messages)
        return store
    sid = validate_session_id(session_id if session_id is not None else file_path.stem)
    store.append(sid, FileChatMessageHistory(file_path).get_messages())
    return store


def _is_export(path: Path) -> bool:
    """Whether the file's first non-blank line is an object with a session id."""
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    try:
                        item: Any = json.loads(line)
                    except (ValueError, RecursionError):
                        return '"session_id"' in line  # a damaged export, or not one
                    return isinstance(item, dict) and "session_id" in item
    except FileNotFoundError as exc:
        raise InputError(f"no such file: {str(path)!r}") from exc
    except UnicodeDecodeError:
        return False
    return False
