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
was and removes the temporary file. Reads take ``skip_invalid`` like the stores do.

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
import stat
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
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
    "export_sessions",
    "file_source",
    "import_sessions",
]

Progress = Callable[[int, int], object]
#: Messages appended per call when copying or importing a long session.
CHUNK = 1000


class SessionSource(Protocol):
    """What :func:`copy_sessions` and :func:`export_sessions` read: any store fits."""

    def iter_sessions(self, prefix: str = "", *, page_size: int = 500) -> Iterator[str]: ...

    def get_messages(self, session_id: str, *, last: int | None = None,
                     skip_invalid: bool = False) -> list[BaseMessage]: ...


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


def _read(source: SessionSource, session_id: str, skip_invalid: bool) -> list[BaseMessage]:
    # The keyword only when asked for: a source written before stores took it still works.
    if skip_invalid:
        return source.get_messages(session_id, skip_invalid=True)
    return source.get_messages(session_id)


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
    written and gets the mode ``open(path, "w")`` would have given just before the
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
                         | getattr(os, "O_CLOEXEC", 0), 0o666)
            break
        except FileExistsError:
            continue
        except OSError as exc:  # name the file asked for, not the temporary one
            raise type(exc)(exc.errno, exc.strerror, str(target)) from exc
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(f"cannot create a temporary file beside {str(target)!r}")
    try:
        # The mode open(path, "w") would have left: the existing file's, else what the
        # umask gives a new file (the kernel just applied it to the temporary file).
        mode = stat.S_IMODE((existing or os.fstat(fd)).st_mode)
        os.fchmod(fd, 0o600)  # still empty: nothing was readable before this
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
    is left as it was (nothing half-written). A stored message that cannot be decoded
    raises :class:`MessageFormatError`; with ``skip_invalid=True`` it is left out and
    reported by a :class:`~threadline.SkippedMessageWarning`.

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
            lines = [
                json.dumps({"session_id": sid, **message_to_dict(message)},
                           ensure_ascii=False, separators=(",", ":")) + "\n"
                for message in _read(store, sid, skip_invalid)
            ]
            out.write("".join(lines))
            written += len(lines)
            if progress is not None:
                progress(done, len(ids))
    return written


def _parse_export(lines: Iterable[str], where: str) -> dict[str, list[BaseMessage]]:
    """Sessions of an export, in first-seen order; errors name the line."""
    sessions: dict[str, list[BaseMessage]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        torn = not line.endswith("\n")
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError(f"a JSON {type(item).__name__}, not an object")
            sid = item.pop("session_id", None)
            if not isinstance(sid, str):
                raise ValueError('no "session_id" string')
            validate_session_id(sid)
            message = message_from_dict(item)
        except RecursionError as exc:
            raise MessageFormatError(f"{where}, line {number}: JSON nested too deeply to "
                                     "read") from exc
        except (ValueError, MessageFormatError) as exc:
            hint = (" (the last line has no newline: the file looks truncated)"
                    if torn else "")
            raise MessageFormatError(
                f"{where}, line {number}: {exc}{hint}; expected one "
                '{"session_id": ..., "type": ..., "data": {...}} object per line'
            ) from exc
        sessions.setdefault(sid, []).append(message)
    return sessions


def _append_chunked(store: Store, session_id: str, messages: Sequence[BaseMessage]) -> None:
    for start in range(0, len(messages), CHUNK):
        store.append(session_id, messages[start:start + CHUNK])


def import_sessions(store: Store, fp: IO[str] | str | os.PathLike[str],
                    progress: Progress | None = None) -> int:
    """Append the sessions of an export file to ``store``; the number of messages.

    The whole file is checked first: a bad or truncated line raises
    :class:`MessageFormatError` naming its line, and nothing is imported. Messages are
    appended, not merged: to resume or repeat an import, use
    ``copy_sessions(file_source(path), store)`` instead.
    """
    where = f"export file {str(fp)!r}" if isinstance(fp, str | os.PathLike) else "export"
    with _opened(fp, "r") as handle:
        sessions = _parse_export(handle, where)
    count = 0
    for done, (sid, messages) in enumerate(sessions.items(), 1):
        _append_chunked(store, sid, messages)
        count += len(messages)
        if progress is not None:
            progress(done, len(sessions))
    return count


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
    """
    ids = _session_ids(src, session_ids)
    report = CopyReport()
    for done, sid in enumerate(ids, 1):
        report.sessions += 1
        source = _read(src, sid, skip_invalid)
        present = dst.get_messages(sid)
        if source[:len(present)] != present:
            report.conflicts.append(sid)
        elif len(present) == len(source):
            report.up_to_date += 1
        else:
            missing = source[len(present):]
            _append_chunked(dst, sid, missing)
            report.copied += 1
            report.messages += len(missing)
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
