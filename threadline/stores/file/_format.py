"""The history file format and its I/O, shared by every file-backed history.

Format: JSON Lines, one LangChain message dict per line (``{"type": "human", "data":
{...}}``), or LangChain's JSON array; the first non-blank byte tells them apart. The pure
functions turn bytes into messages and back; the I/O helpers read with ``pread``, write
whole buffers, take ``flock`` locks on sidecar lock files, and replace a file atomically
(temporary file in the same directory, ``os.replace``, directory fsync).
:class:`~threadline.FileChatMessageHistory` (one file) and the ``file://`` store (one
file per session) both write through these, so the format, its crash rules and its
locking exist once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from threadline._errors import HistoryFileError, MessageFormatError
from threadline.messages._serialization import message_from_dict
from threadline.messages._values import BaseMessage

__all__ = [
    "BLANK",
    "CHUNK",
    "EXPECTED",
    "TORN",
    "classify_tail",
    "count_newlines",
    "encode_lines",
    "file_kind",
    "flocked",
    "fsync_dir",
    "item_message",
    "last_line_start",
    "open_lock",
    "parse_array",
    "parse_lines",
    "pread_all",
    "read_head",
    "replace_file",
    "write_all",
]

BLANK = b" \t\r\n"
CHUNK = 64 * 1024
BLOCK = 64 * 1024
#: What :func:`classify_tail` returns for a torn last line.
TORN = object()
EXPECTED = ("expected LangChain's JSON array of message dicts or JSON Lines with one "
             'message dict ({"type": "human", "data": {...}}) per line')


# --- pure core: bytes in, messages out --------------------------------------------------


def file_kind(head: bytes) -> str:
    """``"empty"``, ``"json"`` (array), ``"jsonl"`` or ``"unknown"`` from the first bytes."""
    stripped = head.lstrip(BLANK)
    if not stripped:
        return "empty"
    return {b"[": "json", b"{": "jsonl"}.get(stripped[:1], "unknown")


# Built once: json.dumps() with keyword arguments makes a new encoder per call.
_ENCODERS = {flag: json.JSONEncoder(ensure_ascii=flag, separators=(",", ":"))
             for flag in (False, True)}


def _dump(item: dict[str, Any], ensure_ascii: bool) -> str:
    # JSON escapes control characters, so a line never holds a raw newline.
    return _ENCODERS[ensure_ascii].encode(item)


def encode_lines(items: Sequence[dict[str, Any]], encoding: str, ensure_ascii: bool) -> bytes:
    return "".join(_dump(item, ensure_ascii) + "\n" for item in items).encode(encoding)


def item_message(item: object, where: str) -> BaseMessage:
    try:
        return message_from_dict(item)
    except MessageFormatError as exc:
        raise HistoryFileError(f"{where}: {exc}; {EXPECTED}") from exc


def parse_lines(
    data: bytes, encoding: str, where: str, first_line: int
) -> tuple[list[dict[str, Any]], list[BaseMessage], int, int, bytes]:
    """Items and messages of the complete lines of ``data``.

    Returns ``(items, messages, end of the last complete line, lines, tail)``; the tail
    is whatever follows the last newline, left for :func:`classify_tail`.
    """
    cut = data.rfind(b"\n") + 1
    body, tail = data[:cut], data[cut:]
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        bad = first_line + body.count(b"\n", 0, exc.start)
        raise HistoryFileError(
            f"{where}, line {bad}: not valid {encoding} text ({exc.reason} at byte "
            f"{exc.start} of the part read); {EXPECTED}"
        ) from exc
    # split("\n"), not splitlines(): with ensure_ascii=False a message may hold U+2028.
    lines = text.split("\n")
    lines.pop()  # the empty string after the final newline
    items: list[dict[str, Any]] = []
    messages: list[BaseMessage] = []
    for number, line in enumerate(lines, first_line):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise HistoryFileError(
                f"{where}, line {number}: not JSON ({exc}); {EXPECTED}"
            ) from exc
        messages.append(item_message(item, f"{where}, line {number}"))
        items.append(item)
    return items, messages, cut, len(lines), tail


def classify_tail(tail: bytes, encoding: str, where: str) -> object:
    """What follows the last newline: None (nothing), ``TORN``, or ``(item, message)``.

    A complete message without its newline is kept (a prefix of a JSON object is never
    valid JSON, so it cannot be a torn line); JSON that is not a message is an error.
    """
    if not tail.strip(BLANK):
        return None
    try:
        item = json.loads(tail.decode(encoding))
    except ValueError:  # UnicodeDecodeError included: a write cut inside a character
        return TORN
    return item, item_message(item, f"{where}, last line")


def parse_array(data: bytes, encoding: str, where: str) -> tuple[list[Any], list[BaseMessage]]:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise HistoryFileError(
            f"{where}: not valid {encoding} text ({exc.reason} at byte {exc.start}); "
            f"{EXPECTED}"
        ) from exc
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise HistoryFileError(f"{where}: not valid JSON ({exc}); {EXPECTED}") from exc
    if not isinstance(items, list):
        raise HistoryFileError(f"{where}: holds a JSON {type(items).__name__}; {EXPECTED}")
    messages = [item_message(item, f"{where}, message {i}") for i, item in enumerate(items)]
    return items, messages


# --- I/O helpers ------------------------------------------------------------------------


def pread_all(fd: int, size: int, offset: int = 0) -> bytes:
    parts: list[bytes] = []
    while size > 0:
        part = os.pread(fd, min(size, 1 << 30), offset)
        if not part:  # the file shrank under us: read what is there
            break
        parts.append(part)
        size -= len(part)
        offset += len(part)
    return b"".join(parts)


def read_head(fd: int, size: int) -> bytes:
    """The file's first bytes, up to its first non-blank one."""
    offset, head = 0, b""
    while offset < size:
        part = os.pread(fd, min(4096, size - offset), offset)
        if not part:
            break
        head += part
        offset += len(part)
        if head.lstrip(BLANK):
            break
    return head


def last_line_start(fd: int, size: int) -> int:
    """Where the file's last complete line starts (0 if it has fewer than two lines)."""
    seen = 0
    end = size
    while end > 0:
        begin = max(0, end - BLOCK)
        chunk = os.pread(fd, end - begin, begin)
        at = len(chunk)
        while (at := chunk.rfind(b"\n", 0, at)) >= 0:
            seen += 1
            if seen == 2:
                return begin + at + 1
        end = begin
    return 0


def count_newlines(fd: int, end: int) -> int:
    """Newlines in the first ``end`` bytes: line numbers for error messages. A byte
    count, not a parse: ~0.2 ms per MB."""
    count, offset = 0, 0
    while offset < end:
        chunk = os.pread(fd, min(BLOCK * 16, end - offset), offset)
        if not chunk:
            break
        count += chunk.count(b"\n")
        offset += len(chunk)
    return count


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# --- locks and atomic replacement ---------------------------------------------------------


def open_lock(path: Path) -> int:
    """Open the lock file ``path``, creating it; raises ``OSError``. Lock files are never
    deleted: unlinking one that others wait on would let two writers in at once."""
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)


@contextlib.contextmanager
def flocked(fd: int, *, exclusive: bool = True) -> Iterator[None]:
    """Hold an ``flock`` on ``fd`` for the block, then close it (which releases it)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def replace_file(target: Path, data: bytes, *, mode: int | None = None,
                 durable: bool = True) -> os.stat_result:
    """Atomically make ``data`` the content of ``target``; the new file's stat.

    Writes a temporary file beside ``target`` and renames it over ``target``, so a crash
    leaves the old file or the new one, never a mix. ``mode``: the new file's permission
    bits (``None``: those of a new file, 0o666 minus the umask). ``durable``: fsync the
    data before the rename (else a power loss could leave an empty file) and the
    directory after it (which makes the rename itself durable).
    """
    parent = target.parent
    tmp = parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        try:
            if mode is not None:
                os.fchmod(fd, mode & 0o7777)
            write_all(fd, data)
            if durable:
                os.fsync(fd)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(parent)
    return st
