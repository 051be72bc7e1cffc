"""What this process knows about the JSON Lines files it has read or written.

To keep an append O(1) a writer must not re-read the file, yet it must refuse a file
that cannot be read and skip messages whose ids the file already holds. So each file
(by device and inode) that has been read whole or written here gets a :class:`Checked`
entry: bytes ``[0, end)`` are ``lines`` lines holding ``messages`` readable messages,
whose ids are ``ids``. A later append (by any history object of the process) checks the
inode, that the file is at least ``end`` long and that the bytes just before ``end``
are still ``tail`` (a file rewritten in place would differ), then reads only what other
writers added since. Entries are hints: a failed check means a full read.

Bounded: at most :data:`MAX_FILES` entries and about :data:`MAX_IDS` ids in all (the
oldest entries go first; the newest is always kept).
"""

from __future__ import annotations

import os
import threading
from typing import NamedTuple

__all__ = ["CHECKED", "FINGERPRINT", "Checked", "forget", "get", "put"]

FINGERPRINT = 256
MAX_FILES = 4096
MAX_IDS = 200_000


class Checked(NamedTuple):
    """Bytes ``[0, end)`` of inode ``(dev, ino)``: ``lines`` lines, ``messages``
    readable messages with ids ``ids`` (``len(ids)`` was ``nids`` when stored)."""

    dev: int
    ino: int
    end: int
    lines: int
    messages: int
    ids: set[str]
    nids: int
    tail: bytes  # the bytes just before ``end``: tells a file rewritten in place


CHECKED: dict[tuple[int, int], Checked] = {}
_LOCK = threading.Lock()
_total_ids = 0


def get(st: os.stat_result) -> Checked | None:
    return CHECKED.get((st.st_dev, st.st_ino))


def put(dev: int, ino: int, end: int, lines: int, messages: int, ids: set[str],
        tail: bytes) -> None:
    global _total_ids
    entry = Checked(dev, ino, end, lines, messages, ids, len(ids), tail[-FINGERPRINT:])
    with _LOCK:
        old = CHECKED.pop((dev, ino), None)
        _total_ids += entry.nids - (old.nids if old is not None else 0)
        if len(CHECKED) >= MAX_FILES or _total_ids > MAX_IDS:
            # Recounted (cheap next to a full read): CHECKED may have been cleared.
            _total_ids = entry.nids + sum(e.nids for e in CHECKED.values())
            while CHECKED and (len(CHECKED) >= MAX_FILES or _total_ids > MAX_IDS):
                _total_ids -= CHECKED.pop(next(iter(CHECKED))).nids  # the oldest
        CHECKED[dev, ino] = entry


def forget(st: os.stat_result) -> None:
    """Drop the entry of a file about to be deleted (its inode may be reused)."""
    global _total_ids
    with _LOCK:
        old = CHECKED.pop((st.st_dev, st.st_ino), None)
        if old is not None:
            _total_ids -= old.nids
