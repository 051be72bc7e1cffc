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
reads hold a shared one when that file exists (a read never creates a file).
The lock is on a separate file because clear, conversion and array writes replace the
history file with ``os.replace``: a lock on the replaced inode would protect nothing.

Crashes. Complete lines are never rewritten in place, so a crash cannot damage a stored
message. A SIGKILL during an append can leave a torn last line (no newline, not JSON),
possibly after whole lines of the same batch: before each append the writer notes in
the lock file where it begins (and clears the note once written), so reads skip the
whole interrupted batch with a warning (a turn is stored whole or not at all), and the
next append cuts it off under the lock before writing. Whole-file rewrites go through a
temporary file in the same directory, fsynced before ``os.replace`` (and the directory
after it), and noted in the lock file until the rename: the next use of the history
(opening it, even to read) removes what a rewrite killed before its rename left.

Durability. Appends are not fsynced unless ``fsync=True``: written data sits in the page
cache, which survives the death of the process (SIGKILL, OOM kill); only a power loss or
a kernel crash can lose the latest appends, and what survives still reads cleanly.

Bad data. A message that cannot be read raises :class:`DamagedMessageError` (a
:class:`HistoryFileError` and a :class:`MessageFormatError`) naming the file, the line
and the message's position; ``skip_invalid=True`` reads the others instead. A write
never touches a file it cannot read whole: it raises that same error and leaves the
bytes as they were; :func:`~threadline.stores.file.repair_history_file` keeps the
readable messages and sets the damaged ones aside.

Ids. Appends are idempotent for messages with an ``id``: one whose id the file already
holds is not stored again, nor an id repeated in one batch (a retried append stores
nothing twice), as in every threadline store.

Appends stay O(1): the process remembers, per file, how far it is known to be readable
and the ids in that part (:mod:`._cache`); an append reads only what other writers added
since. The first write to a file this process has not read yet reads it whole, once.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from threadline._concurrency import run_sync
from threadline._errors import HistoryFileError, InputError, MessageFormatError
from threadline.core._history import BaseChatMessageHistory, refuse_langchain_reader
from threadline.messages._convert import check_messages
from threadline.messages._serialization import message_from_dict, message_to_dict
from threadline.messages._values import BaseMessage
from threadline.stores.file import _cache
from threadline.stores.file._cache import CHECKED as _CHECKED  # noqa: F401  (benchmarks)
from threadline.stores.file._files import (
    count_newlines,
    flocked,
    fsync_dir,
    interrupted_write,
    leftover,
    note_done,
    note_rewrite,
    note_write,
    noted_rewrite,
    open_lock,
    pread_all,
    read_head,
    read_last_slots,
    replace_file,
    write_all,
)
from threadline.stores.file._format import (
    BLANK,
    CHUNK,
    EXPECTED,
    Slot,
    decode_slots,
    encode_lines,
    file_kind,
    split_array,
    split_lines,
)

__all__ = ["Conversion", "FileChatMessageHistory", "Written"]

_FORMATS = (None, "jsonl", "json")
Format = Literal["jsonl", "json"]


class Conversion(NamedTuple):
    """What :meth:`FileChatMessageHistory.convert` did: ``source`` → ``target`` formats."""

    source: Format
    target: Format
    messages: int

    @property
    def changed(self) -> bool:
        return self.source != self.target


class Written(NamedTuple):
    """What one write did: messages ``added`` (ids already held are not), the
    ``messages`` the file holds now, and its ``size`` and inode right after."""

    added: int
    messages: int
    size: int
    ino: int


def _fresh(batch: Sequence[BaseMessage], known: Callable[[str], bool]) -> list[BaseMessage]:
    """``batch`` without the messages whose id is ``known`` or came earlier in it."""
    fresh: list[BaseMessage] = []
    seen: set[str] = set()
    for message in batch:
        mid = message.id
        if isinstance(mid, str):
            if mid in seen or known(mid):
                continue
            seen.add(mid)
        fresh.append(message)
    return fresh


def _ids(messages: Sequence[BaseMessage]) -> set[str]:
    return {m.id for m in messages if isinstance(m.id, str)}


class FileChatMessageHistory(BaseChatMessageHistory):
    """A chat history in a local file, in JSON Lines or LangChain's JSON array.

    A drop-in for LangChain's ``FileChatMessageHistory``: it reads the array files that
    one writes and, by default, keeps them arrays, so LangChain can still read them.
    ``format``: ``None`` (default) keeps the file's format and creates new files as JSON
    Lines, whose appends are O(1); ``"jsonl"`` turns an array file into JSON Lines on the
    first write; ``"json"`` always writes the array (each write rewrites the file).
    Concurrent processes are serialised with ``flock`` on ``<file>.lock`` (POSIX only),
    and a crash never damages a stored message. ``fsync=True`` makes each append durable
    against power loss as well, at the cost of a disk flush. Appends are idempotent for
    messages with an ``id`` (as in every threadline store).

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
        self._opened = False  # whether this object has looked for a killed rewrite's file

    def __repr__(self) -> str:
        # No I/O here: a repr cannot say which format the file has, only what writes do.
        fmt = (f"None (keep the file's; new: {self._new_files})" if self.format is None
               else repr(self.format))
        return f"FileChatMessageHistory({str(self.file_path)!r}, format={fmt})"

    # --- reading ------------------------------------------------------------------------

    def get_messages(self, last: int | None = None, *,
                     skip_invalid: bool = False) -> list[BaseMessage]:
        """The messages, oldest first; only the newest ``last`` if given (read from the
        end of the file). A message that cannot be read raises
        :class:`~threadline.stores.file.DamagedMessageError`; ``skip_invalid=True``
        leaves it out instead, with a :class:`~threadline.SkippedMessageWarning`."""
        return self._get(last, skip_invalid=skip_invalid)

    async def aget_messages(self, last: int | None = None, *,
                            skip_invalid: bool = False) -> list[BaseMessage]:
        refuse_langchain_reader(self)
        return await run_sync(self._get, last, skip_invalid=skip_invalid)

    def _get(self, last: int | None, *, skip_invalid: bool = False,
             session_id: str | None = None) -> list[BaseMessage]:
        if last is not None:
            if not isinstance(last, int) or isinstance(last, bool):
                raise InputError(f"last must be an int or None, got {type(last).__name__}")
            if last <= 0:
                return []
        with self._shared_lock() as lock_fd:
            try:
                fd = os.open(self.file_path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return []
            except OSError as exc:
                raise self._os_error("cannot read", exc) from exc
            try:
                return self._read(fd, lock_fd, last, skip_invalid, session_id)
            except OSError as exc:  # e.g. the path is a directory
                raise self._os_error("cannot read", exc) from exc
            finally:
                os.close(fd)

    def _read(self, fd: int, lock_fd: int | None, last: int | None, skip_invalid: bool,
              session_id: str | None) -> list[BaseMessage]:
        st = os.fstat(fd)
        head = read_head(fd, st.st_size)
        kind = file_kind(head)
        if kind == "empty":
            return []
        if kind == "unknown":
            raise self._not_history(head)
        if kind == "json":
            return self._read_array(pread_all(fd, st.st_size), last, skip_invalid,
                                    session_id)
        limit = self._limit(lock_fd, fd, st)
        if last is not None and limit > CHUNK:
            slots, end, torn = read_last_slots(fd, limit, last, self.encoding)
            self._warn_torn("skipped", torn, st.st_size - limit, 4)
            return decode_slots(slots, encoding=self.encoding, where=self._where,
                                session_id=session_id, from_end=True,
                                skip_invalid=skip_invalid,
                                line_of=lambda offset: count_newlines(fd, offset) + 1)
        data = pread_all(fd, limit)
        slots, end, torn = split_lines(data, 0, self.encoding)
        self._warn_torn("skipped", torn, st.st_size - limit, 4)
        window = slots if last is None else slots[-last:]
        messages = decode_slots(window, encoding=self.encoding, where=self._where,
                                session_id=session_id, first=len(slots) - len(window),
                                from_end=last is not None, skip_invalid=skip_invalid,
                                line_of=lambda offset: data.count(b"\n", 0, offset) + 1)
        if last is None and not torn and limit == st.st_size and len(messages) == len(slots):
            # Remember it readable (with its ids) so that appends need not read it again.
            body = len(slots) - (1 if slots and slots[-1].offset >= end else 0)
            _cache.put(st.st_dev, st.st_ino, end, data.count(b"\n", 0, end), body,
                       _ids(messages[:body]), data[:end])
        return messages

    def _read_array(self, data: bytes, last: int | None, skip_invalid: bool,
                    session_id: str | None) -> list[BaseMessage]:
        fast = self._array_fast(data)
        if fast is not None:
            return fast[1] if last is None else fast[1][-last:]
        slots = self._array_slots(data)
        window = slots if last is None else slots[-last:]
        return decode_slots(window, encoding=self.encoding, where=self._where,
                            session_id=session_id, first=len(slots) - len(window),
                            from_end=last is not None, skip_invalid=skip_invalid)

    def _array_fast(self, data: bytes) -> tuple[list[Any], list[BaseMessage]] | None:
        """The items and messages of a well-formed array file in one parse, or None."""
        try:
            items = json.loads(data.decode(self.encoding))
            if isinstance(items, list):
                return items, [message_from_dict(item) for item in items]
        except (ValueError, RecursionError, MessageFormatError):
            pass
        return None

    def _array_slots(self, data: bytes) -> list[Slot]:
        items, rest = split_array(data, self.encoding)
        return [*items, rest] if rest is not None and rest.raw else items

    @staticmethod
    def _limit(lock_fd: int | None, fd: int, st: os.stat_result) -> int:
        """Where the stored messages end: where an append that did not finish began
        (whatever it wrote is not a message, even whole lines: the question of a turn
        whose answer was cut off), else the file's end."""
        start = interrupted_write(lock_fd, fd, st)
        return st.st_size if start is None else start

    def _warn_torn(self, what: str, torn: bool, interrupted: int, depth: int) -> None:
        if interrupted:
            text = f"a torn last write ({interrupted} bytes left by an interrupted append)"
        elif torn:
            text = "a torn last line (left by an interrupted write)"
        else:
            return
        warnings.warn(f"{self._where}: {what} {text}", RuntimeWarning, stacklevel=depth + 1)

    def _count(self) -> int:
        """How many messages the file holds (readable or not), without decoding them."""
        with self._shared_lock() as lock_fd:
            try:
                fd = os.open(self.file_path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return 0
            try:
                st = os.fstat(fd)
                checked = _cache.get(st)
                if checked is not None and checked.end == st.st_size:
                    return checked.messages
                data = pread_all(fd, st.st_size)
                kind = file_kind(data)
                if kind == "json":
                    return len(self._array_slots(data))
                if kind != "jsonl":
                    return 0
                limit = self._limit(lock_fd, fd, st)
                return len(split_lines(data[:limit], 0, self.encoding)[0])
            except OSError:
                return 0
            finally:
                os.close(fd)

    # --- writing ------------------------------------------------------------------------

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        self._add(check_messages(messages))

    def _add(self, batch: Sequence[BaseMessage], session_id: str | None = None
             ) -> Written | None:
        """Store ``batch`` (checked messages); what was done, None for an empty batch."""
        if not batch:
            return None
        with self._exclusive_lock() as lock_fd:
            fd = self._open(os.O_RDWR | os.O_APPEND | os.O_CREAT)
            try:
                st = os.fstat(fd)
                if self._writes_array(fd, st.st_size):
                    return self._rewrite_array(fd, lock_fd, st, batch, session_id)
                return self._append(fd, lock_fd, st, batch, session_id)
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

    def _append(self, fd: int, lock_fd: int, st: os.stat_result, batch: Sequence[BaseMessage],
                session_id: str | None) -> Written:
        size, checked = st.st_size, _cache.get(st)
        if (checked is None or checked.end > size
                or os.pread(fd, len(checked.tail), checked.end - len(checked.tail))
                != checked.tail):
            # Unknown here, or another program rewrote it in place (LangChain does).
            head = read_head(fd, size)
            kind = file_kind(head)
            if kind == "unknown":
                raise self._not_history(head)
            if kind == "json":
                return self._migrate(fd, lock_fd, st, batch, session_id)
            checked = None
        # Where a writer killed inside its append began (none if nothing was added since
        # our own last append, the usual case).
        limit = size if checked is not None and checked.end == size else self._limit(
            lock_fd, fd, st)
        if checked is not None and limit < checked.end:
            checked = None  # an interrupted write inside what we knew: check it all
        start = checked.end if checked is not None else 0
        lines = checked.lines if checked is not None else 0
        count = checked.messages if checked is not None else 0
        known = checked.ids if checked is not None else set()
        # Check what was added since (by anyone) before appending to it: a file that
        # cannot be read is not written, with the error a read gives.
        region = pread_all(fd, limit - start, start)
        slots, end, torn = split_lines(region, start, self.encoding)
        whole_tail = bool(slots) and slots[-1].offset >= end  # a last line without "\n"
        cut = limit if whole_tail else end  # drops a torn line, an interrupted write
        messages = decode_slots(
            slots, encoding=self.encoding, where=self._where, session_id=session_id,
            first=count,
            line_of=lambda offset: lines + region.count(b"\n", 0, offset - start) + 1)
        added_ids = _ids(messages)
        fresh = _fresh(batch, lambda mid: mid in known or mid in added_ids)
        total = count + len(slots)
        if not fresh:
            return Written(0, total, size, st.st_ino)
        self._warn_torn("cut off", torn, size - limit, 4)
        if cut < size:
            os.ftruncate(fd, cut)
        prefix = b"\n" if whole_tail else b""
        data = prefix + encode_lines([message_to_dict(m) for m in fresh], self.encoding,
                                     self.ensure_ascii)
        note_write(lock_fd, st.st_ino, cut, data)
        try:
            write_all(fd, data)
        except BaseException:
            # Leave no partial line behind (disk full, interrupt): the file stays clean.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, cut)
            raise
        note_done(lock_fd, st.st_ino, cut + len(data))
        if self.fsync:
            os.fsync(fd)
            if size == 0:  # the file may be new: make its directory entry durable too
                fsync_dir(self.file_path.parent)
        new_end = cut + len(data)
        known |= added_ids
        known |= _ids(fresh)
        newlines = region.count(b"\n", 0, end - start) + data.count(b"\n")
        _cache.put(st.st_dev, st.st_ino, new_end, lines + newlines, total + len(fresh),
                   known, data)
        return Written(len(fresh), total + len(fresh), new_end, st.st_ino)

    def _migrate(self, fd: int, lock_fd: int, st: os.stat_result,
                 batch: Sequence[BaseMessage], session_id: str | None) -> Written:
        """Turn a LangChain array file into JSON Lines holding its messages and ``batch``."""
        _, items, messages = self._load(fd, lock_fd, st, 6, session_id)
        held = _ids(messages)
        fresh = _fresh(batch, held.__contains__)
        new = self._write_lines([*items, *(message_to_dict(m) for m in fresh)], st.st_mode,
                                lock_fd)
        return Written(len(fresh), len(items) + len(fresh), new.st_size, new.st_ino)

    def _rewrite_array(self, fd: int, lock_fd: int, st: os.stat_result,
                       batch: Sequence[BaseMessage], session_id: str | None) -> Written:
        source, items, messages = self._load(fd, lock_fd, st, 5, session_id)
        held = _ids(messages)
        fresh = _fresh(batch, held.__contains__)
        if not fresh and source == "json":
            return Written(0, len(items), st.st_size, st.st_ino)
        new = self._write_array([*items, *(message_to_dict(m) for m in fresh)], st.st_mode,
                                lock_fd)
        return Written(len(fresh), len(items) + len(fresh), new.st_size, new.st_ino)

    def _load(self, fd: int, lock_fd: int | None, st: os.stat_result, depth: int,
              session_id: str | None = None) -> tuple[Format, list[Any], list[BaseMessage]]:
        """The file's format, message dicts and messages, all checked; for rewrites."""
        data = pread_all(fd, st.st_size)
        kind = file_kind(data)
        if kind == "unknown":
            raise self._not_history(data[:16])
        if kind == "json":
            fast = self._array_fast(data)
            if fast is not None:
                return "json", fast[0], fast[1]
            slots = self._array_slots(data)
            messages = decode_slots(slots, encoding=self.encoding, where=self._where,
                                    session_id=session_id)
            return "json", self._items(slots), messages
        limit = self._limit(lock_fd, fd, st)
        slots, _, torn = split_lines(data[:limit], 0, self.encoding)
        self._warn_torn("dropped", torn, st.st_size - limit, depth)
        messages = decode_slots(slots, encoding=self.encoding, where=self._where,
                                session_id=session_id,
                                line_of=lambda offset: data.count(b"\n", 0, offset) + 1)
        return "jsonl", self._items(slots), messages

    def _items(self, slots: Sequence[Slot]) -> list[Any]:
        """The JSON values of slots known to be readable, as stored."""
        if not slots:
            return []
        items: list[Any] = json.loads(
            (b"[" + b",".join(s.raw for s in slots) + b"]").decode(self.encoding))
        return items

    def _write_lines(self, items: list[Any], mode: int, lock_fd: int) -> os.stat_result:
        data = encode_lines(items, self.encoding, self.ensure_ascii)
        st = self._replace(data, mode, lock_fd)
        ids = {item["data"]["id"] for item in items
               if isinstance(item.get("data"), dict) and isinstance(item["data"].get("id"), str)}
        _cache.put(st.st_dev, st.st_ino, len(data), len(items), len(items), ids, data)
        return st

    def _write_array(self, items: list[Any], mode: int, lock_fd: int) -> os.stat_result:
        # json.dumps' default separators: byte for byte what LangChain writes.
        text = json.dumps(items, ensure_ascii=self.ensure_ascii)
        return self._replace(text.encode(self.encoding), mode, lock_fd)

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
        with self._exclusive_lock() as lock_fd:
            fd = self._open(os.O_RDONLY)
            try:
                st = os.fstat(fd)
                source, items, _ = self._load(fd, lock_fd, st, 3)
                if source != to:
                    if to == "json":
                        self._write_array(items, st.st_mode, lock_fd)
                    else:
                        self._write_lines(items, st.st_mode, lock_fd)
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
        with self._exclusive_lock() as lock_fd:
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
                new = self._replace(b"[]" if array else b"", st.st_mode, lock_fd)
            except OSError as exc:
                raise self._os_error("cannot clear", exc) from exc
            finally:
                os.close(fd)
        if not array:
            _cache.put(new.st_dev, new.st_ino, 0, 0, 0, set(), b"")

    def _real_path(self) -> Path:
        # Through a symlink, replace its target, not the link (as an in-place write would).
        return Path(os.path.realpath(self.file_path))

    def _replace(self, data: bytes, mode: int, lock_fd: int) -> os.stat_result:
        """Atomically make ``data`` the file's content; the new file's stat. Called
        under the write lock (``lock_fd``), where the temporary file is noted until the
        rename: a rewrite killed before it leaves a note for the next user."""
        return replace_file(self._real_path(), data, mode=mode, lock_fd=lock_fd)

    # --- files and locks ----------------------------------------------------------------

    def _open(self, flags: int) -> int:
        try:
            return os.open(self.file_path, flags | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise self._os_error("cannot open", exc) from exc

    def _remove_leftover(self, lock_fd: int, *, exclusive: bool) -> None:
        """On the first use of this object (opening the history): remove the temporary
        file of a rewrite killed before its rename, noted in the lock file (one read, no
        directory scan). Holding the lock, shared or exclusive, proves its writer gone."""
        if self._opened:
            return
        self._opened = True
        name = noted_rewrite(lock_fd)
        if name is None:
            return
        path = leftover(name, self._real_path())
        if path is not None:
            with contextlib.suppress(OSError):  # gone already, or a read-only directory
                path.unlink()
        if exclusive:
            note_rewrite(lock_fd, None)

    @contextlib.contextmanager
    def _exclusive_lock(self) -> Iterator[int]:
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
            self._remove_leftover(fd, exclusive=True)
            yield fd

    @contextlib.contextmanager
    def _shared_lock(self) -> Iterator[int | None]:
        # Without a lock file no threadline writer has written here yet: read unlocked
        # rather than create a file on a read (the directory may be read-only, too).
        try:
            fd: int | None = os.open(self._lock_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            fd = None
        if fd is None:
            yield None
        else:
            with flocked(fd, exclusive=False):
                self._remove_leftover(fd, exclusive=False)
                yield fd

    def _os_error(self, what: str, exc: OSError) -> HistoryFileError:
        return HistoryFileError(f"{what} {self._where}: {exc.strerror or exc}")

    def _not_history(self, head: bytes) -> HistoryFileError:
        start = head.lstrip(BLANK)[:16]
        return HistoryFileError(f"{self._where} is not a chat history (it starts with "
                                f"{start!r}); {EXPECTED}")
