"""A chat history kept in one local file: cheap to append, safe against crashes.

Format. Two formats, told apart by the first non-blank byte (``[`` or ``{``) and both
always readable. JSON Lines, one LangChain message dict (``{"type": "human", "data":
{...}}``) per line: storing a turn is one ``write()`` at the end of the file, opened in
append mode, so it costs the same whatever the length of the conversation. LangChain's
JSON array, what its own ``FileChatMessageHistory`` reads and writes: every write
rewrites the whole file, through a temporary file and ``os.replace``, so a crash leaves
the old file or the new one. ``format`` says which one a write produces: ``None`` (the
default) keeps the file's own format, so a LangChain file stays readable by LangChain,
and creates a missing or empty file as JSON Lines; ``"jsonl"`` turns an array file into
JSON Lines on the first append; ``"json"`` always writes the array. The format is read
from the file under the write lock, so concurrent writers never mix the two.
:meth:`FileChatMessageHistory.convert` (``threadline sessions convert``) changes a
file's format on purpose.

Concurrency. Every write holds an exclusive ``flock`` on a sidecar ``<file>.lock``;
reads hold a shared one when that file exists (a read never creates or changes a file).
The lock is on a separate file because clear, conversion and array writes replace the
history file with ``os.replace``: a lock on the replaced inode would protect nothing.

Crashes. Complete lines are never rewritten in place, so a crash cannot damage a stored
message. A SIGKILL during an append can leave a torn last line (no newline, not JSON);
reads skip it with a warning, and the next append cuts it off under the lock before
writing, so the new line is not glued onto it. Whole-file rewrites go through a temporary
file in the same directory, fsynced before ``os.replace`` (and the directory after it).

Durability. Appends are not fsynced unless ``fsync=True``: written data sits in the page
cache, which survives the death of the process (SIGKILL, OOM kill); only a power loss or
a kernel crash can lose the latest appends, and what survives still reads cleanly.

Validation. A write never touches a file it cannot read as a history: it raises
:class:`HistoryFileError` and leaves the bytes as they were. To keep appends O(1), the
process remembers how far it has checked each file (inode, offset, line count and the
bytes just before the offset); a later write, by any history object of the process,
checks only the bytes added since, by any process. So the first write to a file that
this process has not read yet checks it whole, once. Messages come out of
:mod:`threadline.messages._serialization`: stored data never names a class to load.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from threadline._errors import HistoryFileError, InputError
from threadline.core._history import BaseChatMessageHistory
from threadline.messages._convert import check_messages
from threadline.messages._serialization import message_to_dict
from threadline.messages._values import BaseMessage
from threadline.stores.file._format import (
    BLANK,
    CHUNK,
    EXPECTED,
    TORN,
    classify_tail,
    count_newlines,
    encode_lines,
    file_kind,
    flocked,
    fsync_dir,
    item_message,
    last_line_start,
    open_lock,
    parse_array,
    parse_lines,
    pread_all,
    read_head,
    replace_file,
    write_all,
)

__all__ = ["Conversion", "FileChatMessageHistory"]

_FORMATS = (None, "jsonl", "json")
Format = Literal["jsonl", "json"]
_FINGERPRINT = 64


class Conversion(NamedTuple):
    """What :meth:`FileChatMessageHistory.convert` did: ``source`` → ``target`` formats."""

    source: Format
    target: Format
    messages: int

    @property
    def changed(self) -> bool:
        return self.source != self.target


class _Checked(NamedTuple):
    """Bytes ``[0, end)`` of inode ``(dev, ino)`` are ``lines`` lines of valid messages."""

    dev: int
    ino: int
    end: int
    lines: int
    tail: bytes  # the bytes just before ``end``: tells a file rewritten in place


# How far each file (by inode) is known to be valid, shared by the history objects of
# this process so that a fresh object per request appends in O(1) too. Entries are only
# hints: each use checks the inode, the size and the bytes before ``end``.
_CHECKED: dict[tuple[int, int], _Checked] = {}
_CHECKED_MAX = 4096  # ~1 MB at most
# A file longer than this gets an O(1) check (its last line) on a process's first append.
_FULL_CHECK_MAX = 256 * 1024
_CHECKED_LOCK = threading.Lock()


def _checked_get(st: os.stat_result) -> _Checked | None:
    return _CHECKED.get((st.st_dev, st.st_ino))


def _checked_put(checked: _Checked) -> None:
    with _CHECKED_LOCK:
        _CHECKED.pop((checked.dev, checked.ino), None)
        if len(_CHECKED) >= _CHECKED_MAX:
            del _CHECKED[next(iter(_CHECKED))]  # the oldest entry
        _CHECKED[checked.dev, checked.ino] = checked


class FileChatMessageHistory(BaseChatMessageHistory):
    """A chat history in a local file, in JSON Lines or LangChain's JSON array.

    A drop-in for LangChain's ``FileChatMessageHistory``: it reads the array files that
    one writes and, by default, keeps them arrays, so LangChain can still read them.
    ``format``: ``None`` (default) keeps the file's format and creates new files as JSON
    Lines, whose appends are O(1); ``"jsonl"`` turns an array file into JSON Lines on the
    first write; ``"json"`` always writes the array (each write rewrites the file).
    Concurrent processes are serialised with ``flock`` on ``<file>.lock`` (POSIX only),
    and a crash never damages a stored message. ``fsync=True`` makes each append durable
    against power loss as well, at the cost of a disk flush.

    >>> history = FileChatMessageHistory("chat.jsonl")  # doctest: +SKIP
    >>> history.add_messages([HumanMessage("hi"), AIMessage("hello")])  # doctest: +SKIP
    >>> history.get_messages(last=1)  # doctest: +SKIP
    [AIMessage(content='hello')]
    >>> FileChatMessageHistory("langchain.json")  # doctest: +SKIP
    FileChatMessageHistory('langchain.json', format=None (keep the file's; new: jsonl))
    """

    # The format of a file that is new or empty, when ``format`` is None. LangChain's
    # drop-in (threadline.langchain) makes LangChain's array, as LangChain's class does.
    _new_files: Format = "jsonl"

    def __init__(
        self,
        file_path: str | os.PathLike[str],
        *,
        encoding: str = "utf-8",
        ensure_ascii: bool = False,
        format: Format | None = None,
        fsync: bool = False,
    ) -> None:
        if not isinstance(file_path, str | os.PathLike):
            raise InputError(
                f"file_path must be a str or a path, got {type(file_path).__name__}"
            )
        path = Path(file_path)
        if not path.name or path.name in (".", ".."):
            raise InputError(f"file_path must name a file, got {str(file_path)!r}")
        if format not in _FORMATS:
            raise InputError(f"unknown format {format!r}; expected None (keep the file's), "
                             "'jsonl' or 'json'")
        try:
            codecs.lookup(encoding)
        except (LookupError, TypeError) as exc:
            raise InputError(f"unknown encoding {encoding!r}") from exc
        if "\n{}[]".encode(encoding) != b"\n{}[]":
            # Lines are found by their b"\n" bytes: that needs an ASCII-compatible codec.
            raise InputError(
                f"encoding {encoding!r} is not ASCII-compatible; use e.g. 'utf-8' or 'latin-1'"
            )
        self.file_path = path
        self.encoding = encoding
        self.ensure_ascii = ensure_ascii
        self.format: Format | None = format
        self.fsync = fsync
        self._lock_path = path.with_name(path.name + ".lock")
        self._where = f"chat history file {str(path)!r}"

    def __repr__(self) -> str:
        # No I/O here: a repr cannot say which format the file has, only what writes do.
        fmt = (f"None (keep the file's; new: {self._new_files})" if self.format is None
               else repr(self.format))
        return f"FileChatMessageHistory({str(self.file_path)!r}, format={fmt})"

    # --- reading ------------------------------------------------------------------------

    def get_messages(self, last: int | None = None) -> list[BaseMessage]:
        if last is not None:
            if not isinstance(last, int) or isinstance(last, bool):
                raise InputError(f"last must be an int or None, got {type(last).__name__}")
            if last <= 0:
                return []
        with self._shared_lock():
            try:
                fd = os.open(self.file_path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return []
            except OSError as exc:
                raise self._os_error("cannot read", exc) from exc
            try:
                return self._read(fd, last)
            except OSError as exc:  # e.g. the path is a directory
                raise self._os_error("cannot read", exc) from exc
            finally:
                os.close(fd)

    def _read(self, fd: int, last: int | None) -> list[BaseMessage]:
        st = os.fstat(fd)
        head = read_head(fd, st.st_size)
        kind = file_kind(head)
        if kind == "empty":
            return []
        if kind == "unknown":
            raise self._not_history(head)
        if kind == "json":
            _, messages = parse_array(pread_all(fd, st.st_size), self.encoding, self._where)
            return messages if last is None else messages[-last:]
        if last is not None and st.st_size > CHUNK:
            found = self._read_last(fd, st.st_size, last)
            if found is not None:
                return found
        data = pread_all(fd, st.st_size)
        _, messages, end, lines, tail = parse_lines(data, self.encoding, self._where, 1)
        tail_kind = classify_tail(tail, self.encoding, self._where)
        self._keep_tail(messages, tail_kind)
        if tail_kind is TORN:
            self._warn_torn("skipped", 3)
        _checked_put(_Checked(st.st_dev, st.st_ino, end, lines,
                              data[max(0, end - _FINGERPRINT):end]))
        return messages if last is None else messages[-last:]

    def _read_last(self, fd: int, size: int, last: int) -> list[BaseMessage] | None:
        """The newest ``last`` messages, parsing lines backwards from the end of the file.

        Returns None when a bad line turns up: the full read then names its line number.
        """
        pos, step, buf = size, CHUNK, b""
        while pos > 0:
            step = min(step, pos)
            pos -= step
            buf = os.pread(fd, step, pos) + buf
            step *= 2
            start = buf.find(b"\n") + 1 if pos else 0  # skip the line cut by ``pos``
            if pos and not start:
                continue
            region = buf[start:]
            cut = region.rfind(b"\n") + 1
            found: list[BaseMessage] = []
            try:
                tail_kind = classify_tail(region[cut:], self.encoding, self._where)
                self._keep_tail(found, tail_kind)
                for line in reversed(region[:cut].split(b"\n")[:-1]):
                    if len(found) >= last:
                        break
                    if line.strip(BLANK):
                        found.append(item_message(json.loads(line.decode(self.encoding)),
                                                   self._where))
            except (ValueError, HistoryFileError):
                return None
            if len(found) >= last or pos == 0:
                if tail_kind is TORN:
                    self._warn_torn("skipped", 4)
                found.reverse()
                return found[-last:]
        return None

    def _keep_tail(self, messages: list[BaseMessage], tail_kind: object) -> None:
        """Add a complete last line (one missing only its newline) to ``messages``."""
        if isinstance(tail_kind, tuple):
            messages.append(tail_kind[1])

    def _warn_torn(self, what: str, depth: int) -> None:
        warnings.warn(f"{self._where}: {what} a torn last line (left by an interrupted write)",
                      RuntimeWarning, stacklevel=depth + 1)

    # --- writing ------------------------------------------------------------------------

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        batch = check_messages(messages)
        if not batch:
            return
        items = [message_to_dict(m) for m in batch]
        with self._exclusive_lock():
            fd = self._open(os.O_RDWR | os.O_APPEND | os.O_CREAT)
            try:
                st = os.fstat(fd)
                if self._writes_array(fd, st.st_size):
                    self._rewrite_array(fd, st, items)
                else:
                    self._append(fd, st, items)
            except OSError as exc:
                raise self._os_error("cannot write", exc) from exc
            finally:
                os.close(fd)

    def _writes_array(self, fd: int, size: int) -> bool:
        """Whether this write makes the file an array; called under the write lock."""
        if self.format is not None:
            return self.format == "json"
        # Read, not remembered: under the lock every writer sees the same first byte, so
        # none appends a line to a file another has just made an array, or the reverse.
        kind = file_kind(read_head(fd, size))
        return kind == "json" or (kind == "empty" and self._new_files == "json")

    def _append(self, fd: int, st: os.stat_result, items: list[dict[str, Any]]) -> None:
        size, checked = st.st_size, _checked_get(st)
        if (checked is not None and (checked.dev, checked.ino) == (st.st_dev, st.st_ino)
                and checked.end <= size
                and os.pread(fd, len(checked.tail), checked.end - len(checked.tail))
                == checked.tail):
            start, line = checked.end, checked.lines
        else:
            start, line = 0, 0
        if start == 0:
            # Another program may have rewritten the file in place (LangChain does).
            head = read_head(fd, size)
            kind = file_kind(head)
            if kind == "unknown":
                raise self._not_history(head)
            if kind == "json":
                self._migrate(fd, size, items)
                return
            if size > _FULL_CHECK_MAX:
                # Keep the first append of a process O(1) on long files: check only the
                # last complete line and what follows it (reads still check every line).
                start = last_line_start(fd, size)
                line = count_newlines(fd, start)
        # Check what was added since (by anyone) before appending to it.
        _, _, cut, lines, tail = parse_lines(pread_all(fd, size - start, start),
                                              self.encoding, self._where, line + 1)
        end = start + cut
        tail_kind = classify_tail(tail, self.encoding, self._where)
        prefix = b""
        if isinstance(tail_kind, tuple):
            prefix, end, lines = b"\n", size, lines + 1
        elif tail:
            if tail_kind is TORN:
                self._warn_torn("cut off", 3)
            os.ftruncate(fd, end)
        data = prefix + encode_lines(items, self.encoding, self.ensure_ascii)
        try:
            write_all(fd, data)
        except BaseException:
            # Leave no partial line behind (disk full, interrupt): the file stays clean.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, end)
            raise
        if self.fsync:
            os.fsync(fd)
            if size == 0:  # the file may be new: make its directory entry durable too
                fsync_dir(self.file_path.parent)
        new_end = end + len(data)
        _checked_put(_Checked(st.st_dev, st.st_ino, new_end, line + lines + len(items),
                              data[-_FINGERPRINT:]))

    def _migrate(self, fd: int, size: int, items: list[dict[str, Any]]) -> None:
        """Turn a LangChain array file into JSON Lines holding its messages and ``items``."""
        old, _ = parse_array(pread_all(fd, size), self.encoding, self._where)
        self._write_lines([*old, *items], os.fstat(fd).st_mode)

    def _rewrite_array(self, fd: int, st: os.stat_result, items: list[dict[str, Any]]) -> None:
        _, old = self._load(fd, st, 4)
        self._write_array([*old, *items], st.st_mode)

    def _load(self, fd: int, st: os.stat_result, depth: int) -> tuple[Format, list[Any]]:
        """The file's format and every message dict in it, all checked; for rewrites."""
        data = pread_all(fd, st.st_size)
        kind = file_kind(data)
        if kind == "unknown":
            raise self._not_history(data[:16])
        if kind == "json":
            items, _ = parse_array(data, self.encoding, self._where)
            return "json", items
        items, _, _, _, tail = parse_lines(data, self.encoding, self._where, 1)
        tail_kind = classify_tail(tail, self.encoding, self._where)
        if isinstance(tail_kind, tuple):
            items.append(tail_kind[0])
        elif tail_kind is TORN:
            self._warn_torn("dropped", depth)
        return "jsonl", items

    def _write_lines(self, items: list[Any], mode: int) -> None:
        data = encode_lines(items, self.encoding, self.ensure_ascii)
        st = self._replace(data, mode)
        _checked_put(_Checked(st.st_dev, st.st_ino, len(data), len(items),
                              data[-_FINGERPRINT:]))

    def _write_array(self, items: list[Any], mode: int) -> None:
        # json.dumps' default separators: byte for byte what LangChain writes.
        text = json.dumps(items, ensure_ascii=self.ensure_ascii)
        self._replace(text.encode(self.encoding), mode)

    def convert(self, to: Format) -> Conversion:
        """Rewrite the file in format ``to``, keeping every message; what was done.

        Atomic (a temporary file renamed over the file) and under the write lock. A file
        already in that format is left as it is; an empty file counts as JSON Lines. A
        missing file, or one that is not a history, raises :class:`HistoryFileError`.

        >>> FileChatMessageHistory("langchain.json").convert("jsonl")  # doctest: +SKIP
        Conversion(source='json', target='jsonl', messages=4)
        """
        if to not in ("jsonl", "json"):
            raise InputError(f"cannot convert to {to!r}; expected 'jsonl' or 'json'")
        # A first look without the lock, so that refusing a file that is not a history
        # (or is missing) does not leave a lock file beside it.
        self._peek()
        with self._exclusive_lock():
            fd = self._open(os.O_RDONLY)
            try:
                st = os.fstat(fd)
                source, items = self._load(fd, st, 3)
                if source != to:
                    if to == "json":
                        self._write_array(items, st.st_mode)
                    else:
                        self._write_lines(items, st.st_mode)
            except OSError as exc:
                raise self._os_error("cannot convert", exc) from exc
            finally:
                os.close(fd)
        return Conversion(source, to, len(items))

    def _peek(self) -> None:
        fd = self._open(os.O_RDONLY)
        try:
            head = read_head(fd, os.fstat(fd).st_size)
        except OSError as exc:  # e.g. the path is a directory
            raise self._os_error("cannot read", exc) from exc
        finally:
            os.close(fd)
        if file_kind(head) == "unknown":
            raise self._not_history(head)

    def clear(self) -> None:
        """Delete every message: the file is atomically replaced by an empty history.

        The empty history is ``[]`` for an array file (unless ``format="jsonl"``) or with
        ``format="json"``, else an empty file. A missing file stays missing; a file that
        is not a history is left alone.
        """
        if not self.file_path.exists():
            return  # as if the clear came just before whoever creates it now
        with self._exclusive_lock():
            try:
                fd = os.open(self.file_path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise self._os_error("cannot open", exc) from exc
            try:
                st = os.fstat(fd)
                head = read_head(fd, st.st_size)
                kind = file_kind(head)
                if kind == "unknown":
                    raise self._not_history(head)
                array = self.format == "json" or (self.format is None and kind == "json")
                new = self._replace(b"[]" if array else b"", st.st_mode)
            except OSError as exc:
                raise self._os_error("cannot clear", exc) from exc
            finally:
                os.close(fd)
        if not array:
            _checked_put(_Checked(new.st_dev, new.st_ino, 0, 0, b""))

    def _replace(self, data: bytes, mode: int) -> os.stat_result:
        """Atomically make ``data`` the file's content; the new file's stat."""
        # Through a symlink, replace its target, not the link (as an in-place write would).
        return replace_file(Path(os.path.realpath(self.file_path)), data, mode=mode)

    # --- files and locks ----------------------------------------------------------------

    def _open(self, flags: int) -> int:
        try:
            return os.open(self.file_path, flags | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise self._os_error("cannot open", exc) from exc

    @contextlib.contextmanager
    def _exclusive_lock(self) -> Iterator[None]:
        try:
            fd = open_lock(self._lock_path)
        except FileNotFoundError as exc:
            raise HistoryFileError(
                f"cannot create {self._where}: its directory {str(self.file_path.parent)!r} "
                "does not exist; create it first"
            ) from exc
        except OSError as exc:
            raise self._os_error("cannot create the lock file of", exc) from exc
        with flocked(fd):
            yield

    @contextlib.contextmanager
    def _shared_lock(self) -> Iterator[None]:
        # Without a lock file no threadline writer has written here yet: read unlocked
        # rather than create a file on a read (the directory may be read-only, too).
        try:
            fd: int | None = os.open(self._lock_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            fd = None
        if fd is None:
            yield
        else:
            with flocked(fd, exclusive=False):
                yield

    def _os_error(self, what: str, exc: OSError) -> HistoryFileError:
        return HistoryFileError(f"{what} {self._where}: {exc.strerror or exc}")

    def _not_history(self, head: bytes) -> HistoryFileError:
        start = head.lstrip(BLANK)[:16]
        return HistoryFileError(f"{self._where} is not a chat history (it starts with "
                                f"{start!r}); {EXPECTED}")
