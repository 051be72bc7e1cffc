"""Recovering the readable messages of a damaged history file, losing nothing.

A history file with a damaged line (hand-edited, written by another program, a disk
error) cannot be read whole or appended to. :func:`repair_history_file` rewrites it,
atomically and under its write lock, with only the messages that can be read, in the
format it had, and first copies what it leaves out, byte for byte, into a new side file
beside it (``<name>.damaged-<UTC time>``): damaged lines or array items, and what an
interrupted append left (a torn last line and the whole lines written with it). Nothing
is ever deleted and no existing file is overwritten; a file with nothing damaged is left
untouched.

>>> repair_history_file("chat.jsonl")  # doctest: +SKIP
RepairReport(kept=41, damaged=1, side_file=PosixPath('chat.jsonl.damaged-20260101T120000Z'))
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from threadline.stores.file import _cache
from threadline.stores.file._files import fsync_dir, open_nofollow, pread_all, write_all
from threadline.stores.file._format import Slot, bad_slots, file_kind, split_lines
from threadline.stores.file._history import FileChatMessageHistory

__all__ = ["RepairReport", "repair_history", "repair_history_file"]


class RepairReport(NamedTuple):
    """What a repair did: messages ``kept``, lines or items set aside as ``damaged``, and
    the side file holding those (None when nothing was damaged: the file is untouched)."""

    kept: int
    damaged: int
    side_file: Path | None


def repair_history_file(path: str | os.PathLike[str], *,
                        encoding: str = "utf-8") -> RepairReport:
    """Rewrite the history file ``path`` with only its readable messages, keeping the
    rest in a side file beside it; see the module docstring. A missing file, or one that
    is not a chat history at all, raises :class:`~threadline.HistoryFileError`."""
    return repair_history(FileChatMessageHistory(path, encoding=encoding))


def repair_history(history: FileChatMessageHistory) -> RepairReport:
    """:func:`repair_history_file` on the file of ``history`` (its encoding and lock)."""
    history._peek()  # missing, or not a history: raised before a lock file is made
    with history._exclusive_lock() as lock_fd:
        fd = history._open(os.O_RDONLY)
        try:
            st = os.fstat(fd)
            data = pread_all(fd, st.st_size)
            kind = file_kind(data)
            if kind == "unknown":
                raise history._not_history(data[:16])
            if kind == "empty":
                return RepairReport(0, 0, None)
            if kind == "json":
                slots = history._array_slots(data)
                bad = bad_slots(slots, history.encoding)
                kept = _without(slots, bad)
                set_aside = [slots[i].raw for i in bad]
            else:
                # What an interrupted append left (whole lines too) is set aside whole.
                limit = history._limit(lock_fd, fd, st)
                slots, end, torn = split_lines(data[:limit], 0, history.encoding)
                bad = bad_slots(slots, history.encoding)
                kept = _without(slots, bad)
                set_aside = [slots[i].raw for i in bad]
                if torn:
                    set_aside.append(data[end:limit])
                set_aside += [line for line in data[limit:].split(b"\n") if line.strip()]
            if not set_aside:
                return RepairReport(len(kept), 0, None)
            target = history.file_path
            side = _write_side_file(target, set_aside, st.st_mode)
            if kind == "json":
                history._write_array(_values(kept, history.encoding), st.st_mode, lock_fd)
            else:
                history._replace(b"".join(s.raw + b"\n" for s in kept), st.st_mode, lock_fd)
            _cache.forget(st)
            return RepairReport(len(kept), len(set_aside), side)
        except OSError as exc:
            raise history._os_error("cannot repair", exc) from exc
        finally:
            os.close(fd)


def _without(slots: list[Slot], bad: list[int]) -> list[Slot]:
    drop = set(bad)
    return [s for i, s in enumerate(slots) if i not in drop]


def _values(slots: list[Slot], encoding: str) -> list[Any]:
    return [json.loads(s.raw.decode(encoding)) for s in slots]


def _write_side_file(target: Path, parts: list[bytes], mode: int) -> Path:
    """A new file beside ``target`` holding ``parts``, one per line, made durable."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        side = target.with_name(f"{target.name}.damaged-{stamp}" + (f"-{n}" if n > 1 else ""))
        try:
            fd = open_nofollow(side, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            continue
        try:
            os.fchmod(fd, mode & 0o777)
            write_all(fd, b"".join(part + b"\n" for part in parts))
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(target.parent)
        return side
    raise FileExistsError(f"too many side files beside {str(target)!r}")
