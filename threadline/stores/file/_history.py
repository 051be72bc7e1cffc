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

Links and modes. The history and its lock file are opened with ``O_NOFOLLOW``: a link at
either raises :class:`HistoryFileError` naming it, so a link planted beside a history
(or a ``clear()`` of one) never writes through to another file; rewrites rename over the
path itself. Files it creates are 0600 (a lock file made beside an existing history gets
the history's mode, so those who may read it may lock it); existing files keep theirs.

Sizes. A message whose line is larger than ``max_message_bytes`` (16 MiB by default) is
refused before anything is written, as by every store.

Streaming. :meth:`FileChatMessageHistory.iter_messages` reads a JSON Lines file a block
at a time and decodes a page of messages at a time, from a snapshot: the shared lock is
held only while it opens the file and finds where the stored messages end; then the open
descriptor keeps the inode that a rewrite replaces, and appends land after that end.

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
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from threadline._concurrency import run_sync
from threadline._errors import HistoryFileError, InputError, MessageFormatError, ThreadlineError
from threadline.core._history import BaseChatMessageHistory, refuse_langchain_reader
from threadline.messages._convert import check_messages
from threadline.messages._serialization import message_from_dict, message_to_dict
from threadline.messages._values import BaseMessage
from threadline.stores._base import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_MESSAGE_CHARS,
    check_limit,
    check_message_size,
)
from threadline.stores.file import _cache
from threadline.stores.file._cache import CHECKED as _CHECKED  # noqa: F401  (benchmarks)
from threadline.stores.file._files import (
    count_newlines,
    file_mode,
    flocked,
    fsync_dir,
    interrupted_write,
    is_link_error,
    iter_line_slots,
    leftover,
    note_done,
    note_rewrite,
    note_write,
    noted_rewrite,
    open_lock,
    open_nofollow,
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
    encode_texts,
    file_kind,
    join_lines,
    split_array,
    split_lines,
)

__all__ = ["Conversion", "FileChatMessageHistory", "Lines", "Written"]

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


class Lines(NamedTuple):
    """A batch ready to write: the messages and each one's line (compact JSON)."""

    messages: Sequence[BaseMessage]
    texts: list[str]


def _fresh(batch: Sequence[BaseMessage], known: Callable[[str], bool]) -> list[int]:
    """The indexes of the messages of ``batch`` whose id is not ``known`` and did not
    come earlier in it."""
    fresh: list[int] = []
    seen: set[str] = set()
    for index, message in enumerate(batch):
        mid = message.id
        if isinstance(mid, str):
            if mid in seen or known(mid):
                continue
            seen.add(mid)
        fresh.append(index)
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
    messages with an ``id`` (as in every threadline store). A message whose line would
    be larger than ``max_message_bytes`` (16 MiB by default) is refused with
    :class:`~threadline.InputError` before anything is written.

    Links are not followed: a symbolic link at ``file_path`` (or at its lock file) raises
    :class:`~threadline.HistoryFileError`, so a link planted beside a history can never
    redirect a write. Files it creates are private (0600, whatever the umask). To keep
    one file per session, name them with :func:`~threadline.stores.file.history_path`,
    never with the raw session id.

    >>> history = FileChatMessageHistory("chat.jsonl")  # doctest: +SKIP
    >>> history.add_messages([HumanMessage("hi"), AIMessage("hello")])  # doctest: +SKIP
    >>> [m.content for m in history.get_messages(last=1)]  # doctest: +SKIP
    ['hello']
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
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        if not isinstance(file_path, str | os.PathLike):
            raise InputError(
                f"file_path must be a str or a path, got {type(file_path).__name__}"
            )
        text = os.fspath(file_path)
        if not isinstance(text, str) or "\x00" in text:
            raise InputError(f"file_path must be a str path without NUL characters, "
                             f"got {text!r:.200}")
        try:
            os.fsencode(text)
        except UnicodeEncodeError as exc:
            raise InputError(f"file_path cannot be a file name here ({exc.reason} at "
                             f"character {exc.start}): {text!r:.200}") from None
        path = Path(text)
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
        if (isinstance(max_message_bytes, bool) or not isinstance(max_message_bytes, int)
                or not 1 <= max_message_bytes <= MAX_MESSAGE_CHARS):
            raise InputError(f"max_message_bytes must be an int from 1 to "
                             f"{MAX_MESSAGE_CHARS:,}, got {max_message_bytes!r:.40}")
        self.file_path = path
        self.encoding = encoding
        self.ensure_ascii = ensure_ascii
        self.format: Format | None = format
        self.fsync = fsync
        #: The largest message (bytes of its line in the file) a write accepts.
        self.max_message_bytes = max_message_bytes
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

    def iter_messages(self, *, page_size: int = 1000,
                      skip_invalid: bool = False) -> Iterator[BaseMessage]:
        """The messages, oldest first, decoded ``page_size`` at a time from a JSON Lines
        file read a block at a time, so memory stays flat however long the file is (an
        array file is read whole). What it yields is the file as it was when the
        iteration began: later writes are not seen. Bad messages as in
        :meth:`get_messages`, with their position in the file."""
        check_limit(page_size)
        return self._iter(page_size, skip_invalid=skip_invalid)

    def _iter(self, page_size: int, *, skip_invalid: bool = False,
              session_id: str | None = None) -> Iterator[BaseMessage]:
        # The lock is held only to take the snapshot: the open fd keeps the inode that
        # rewrites replace, and appends go past ``limit``, so a slow consumer never
        # blocks writers.
        with self._shared_lock() as lock_fd:
            fd = self._open_existing()
            if fd is None:
                return
            try:
                st = os.fstat(fd)
                head = read_head(fd, st.st_size)
                kind = file_kind(head)
                limit = self._limit(lock_fd, fd, st) if kind == "jsonl" else st.st_size
            except BaseException as exc:
                os.close(fd)
                if isinstance(exc, OSError):
                    raise self._os_error("cannot read", exc) from exc
                raise
        try:
            if kind == "unknown":
                raise self._not_history(head)
            if kind == "json":
                yield from self._read_array(pread_all(fd, st.st_size), None, skip_invalid,
                                            session_id)
            elif kind == "jsonl":
                torn = yield from self._iter_lines(fd, limit, page_size, skip_invalid,
                                                   session_id)
                self._warn_torn("skipped", torn, st.st_size - limit, 2)
        except OSError as exc:
            raise self._os_error("cannot read", exc) from exc
        finally:
            os.close(fd)

    def _iter_lines(self, fd: int, limit: int, page_size: int, skip_invalid: bool,
                    session_id: str | None) -> Generator[BaseMessage, None, bool]:
        """The messages of the first ``limit`` bytes, a page at a time; returns whether
        the last line is torn."""
        position, torn = 0, False
        carry: list[Slot] = []
        for block in iter_line_slots(fd, limit, self.encoding):
            slots, torn = block  # ``torn`` of the last block: the file's end
            if carry:
                slots = carry + slots
            # Whole pages now; the rest waits for the next block (or the end).
            stop = len(slots) - len(slots) % page_size
            for start in range(0, stop, page_size):
                yield from self._decode_page(fd, slots[start:start + page_size], position,
                                             skip_invalid, session_id)
                position += page_size
            carry = slots[stop:]
        if carry:
            yield from self._decode_page(fd, carry, position, skip_invalid, session_id)
        return torn

    def _decode_page(self, fd: int, page: list[Slot], first: int, skip_invalid: bool,
                     session_id: str | None) -> list[BaseMessage]:
        return decode_slots(page, encoding=self.encoding, where=self._where,
                            session_id=session_id, first=first, skip_invalid=skip_invalid,
                            line_of=lambda offset: count_newlines(fd, offset) + 1)

    def _get(self, last: int | None, *, skip_invalid: bool = False,
             session_id: str | None = None) -> list[BaseMessage]:
        if last is not None:
            if not isinstance(last, int) or isinstance(last, bool):
                raise InputError(f"last must be an int or None, got {type(last).__name__}")
            if last <= 0:
                return []
        with self._shared_lock() as lock_fd:
            fd = self._open_existing()
            if fd is None:
                return []
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
                fd = open_nofollow(self.file_path, os.O_RDONLY)
            except OSError as exc:
                if is_link_error(exc, self.file_path):
                    raise self._link_error(self.file_path) from exc
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
        lines = self._encode(check_messages(messages))
        limit = self.max_message_bytes
        for text in lines.texts:
            if len(text) * 4 > limit:  # at most 4 bytes a character: measure only these
                check_message_size(len(text.encode(self.encoding, "replace")), limit,
                                   "this history's max_message_bytes")
        self._add(lines)

    def _encode(self, batch: Sequence[BaseMessage]) -> Lines:
        """``batch`` (checked messages) ready to write."""
        return Lines(batch, encode_texts(batch, self.ensure_ascii))

    def _add(self, lines: Lines, session_id: str | None = None) -> Written | None:
        """Store a batch; what was done, None for an empty batch."""
        if not lines.messages:
            return None
        with self._exclusive_lock() as lock_fd:
            fd = self._open(os.O_RDWR | os.O_APPEND | os.O_CREAT)
            try:
                st = os.fstat(fd)
                if self._writes_array(fd, st.st_size):
                    return self._rewrite_array(fd, lock_fd, st, lines, session_id)
                return self._append(fd, lock_fd, st, lines, session_id)
            except OSError as exc:
                raise self._os_error("cannot write", exc) from exc
            except UnicodeEncodeError as exc:  # raised before anything is written
                raise InputError(
                    f"a message holds {exc.object[exc.start:exc.end]!r}, which {self._where} "
                    f"cannot hold in {self.encoding!r}; nothing was stored (ensure_ascii=True "
                    "stores any text, as ASCII escapes)") from exc
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

    def _append(self, fd: int, lock_fd: int, st: os.stat_result, batch: Lines,
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
        picked = _fresh(batch.messages, lambda mid: mid in known or mid in added_ids)
        fresh = [batch.messages[i] for i in picked]
        total = count + len(slots)
        if not fresh:
            return Written(0, total, size, st.st_ino)
        self._warn_torn("cut off", torn, size - limit, 4)
        if cut < size:
            os.ftruncate(fd, cut)
        prefix = b"\n" if whole_tail else b""
        data = prefix + join_lines([batch.texts[i] for i in picked], self.encoding)
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

    def _migrate(self, fd: int, lock_fd: int, st: os.stat_result, lines: Lines,
                 session_id: str | None) -> Written:
        """Turn a LangChain array file into JSON Lines holding its messages and ``lines``."""
        _, items, messages = self._load(fd, lock_fd, st, 6, session_id)
        held = _ids(messages)
        fresh = [lines.messages[i] for i in _fresh(lines.messages, held.__contains__)]
        new = self._write_lines([*items, *(message_to_dict(m) for m in fresh)], st.st_mode,
                                lock_fd)
        return Written(len(fresh), len(items) + len(fresh), new.st_size, new.st_ino)

    def _rewrite_array(self, fd: int, lock_fd: int, st: os.stat_result, lines: Lines,
                       session_id: str | None) -> Written:
        source, items, messages = self._load(fd, lock_fd, st, 5, session_id)
        held = _ids(messages)
        fresh = [lines.messages[i] for i in _fresh(lines.messages, held.__contains__)]
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
        is not a history is left alone, and so is a link (refused: the file it points to
        is never emptied).
        """
        if not os.path.lexists(self.file_path):
            return  # as if the clear came just before whoever creates it now
        with self._exclusive_lock() as lock_fd:
            fd = self._open_existing()
            if fd is None:
                return
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

    def _replace(self, data: bytes, mode: int, lock_fd: int) -> os.stat_result:
        """Atomically make ``data`` the file's content; the new file's stat. Called
        under the write lock (``lock_fd``), where the temporary file is noted until the
        rename: a rewrite killed before it leaves a note for the next user."""
        return replace_file(self.file_path, data, mode=mode, lock_fd=lock_fd)

    # --- files and locks ----------------------------------------------------------------

    def _open(self, flags: int) -> int:
        """The history file, opened (created 0600 with ``O_CREAT``), never through a link."""
        try:
            return open_nofollow(self.file_path, flags)
        except OSError as exc:
            raise self._open_error("cannot open", exc, self.file_path) from exc

    def _open_existing(self) -> int | None:
        """The history file opened for reading, or None if there is none."""
        try:
            return open_nofollow(self.file_path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._open_error("cannot read", exc, self.file_path) from exc

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
        path = leftover(name, self.file_path)
        if path is not None:
            with contextlib.suppress(OSError):  # gone already, or a read-only directory
                path.unlink()
        if exclusive:
            note_rewrite(lock_fd, None)

    @contextlib.contextmanager
    def _exclusive_lock(self) -> Iterator[int]:
        try:
            # New lock files are as private as the history (those who may read it must
            # be able to lock it); 0600 for a new history.
            fd = open_lock(self._lock_path, file_mode(self.file_path) & 0o666)
        except FileNotFoundError as exc:
            raise HistoryFileError(
                f"cannot create {self._where}: its directory {str(self.file_path.parent)!r} "
                "does not exist; create it first"
            ) from exc
        except OSError as exc:
            raise self._open_error("cannot create the lock file of", exc,
                                   self._lock_path) from exc
        with flocked(fd):
            self._remove_leftover(fd, exclusive=True)
            yield fd

    @contextlib.contextmanager
    def _shared_lock(self) -> Iterator[int | None]:
        # Without a lock file no threadline writer has written here yet: read unlocked
        # rather than create a file on a read (the directory may be read-only, too).
        try:
            fd: int | None = open_nofollow(self._lock_path, os.O_RDONLY)
        except OSError as exc:
            if is_link_error(exc, self._lock_path):
                raise self._link_error(self._lock_path) from exc
            fd = None
        if fd is None:
            yield None
        else:
            with flocked(fd, exclusive=False):
                self._remove_leftover(fd, exclusive=False)
                yield fd

    def _os_error(self, what: str, exc: OSError) -> HistoryFileError:
        return HistoryFileError(f"{what} {self._where}: {exc.strerror or exc}")

    def _open_error(self, what: str, exc: OSError, path: Path) -> ThreadlineError:
        """The error for ``exc``, from opening ``path`` (the file or its lock file)."""
        if is_link_error(exc, path):
            return self._link_error(path)
        return self._os_error(what, exc)

    def _link_error(self, path: Path) -> ThreadlineError:
        which = (self._where if path == self.file_path
                 else f"the lock file {str(path)!r} of {self._where}")
        return HistoryFileError(
            f"{which} is a symbolic link: history files and their lock files are never "
            "opened through links (a link planted there could redirect writes to any "
            "file); use the real file's path, or remove the link")

    def _not_history(self, head: bytes) -> HistoryFileError:
        start = head.lstrip(BLANK)[:16]
        return HistoryFileError(f"{self._where} is not a chat history (it starts with "
                                f"{start!r}); {EXPECTED}")
