"""Which chat a bare ``threadline chat`` continues: the last one the user chatted in.

A store's most recently written session is not that: ``threadline ask --session s1``
writes to ``s1`` too. So the chat keeps a small record, ``last-chat.json`` in the data
directory, of the session each store's chat was last in (chosen at start, by ``/new``,
``/switch``, ``/fork``, ``/edit``, ``/retry``, ``/undo``); ``ask`` never writes it. A
store with no record (or whose recorded session is gone) falls back to its most
recently written session.

The record is safe on a shared machine: the file is 0600 in the 0700 data directory
(:mod:`threadline.cli._files`), written whole to a temporary file and renamed (two chats
ending at once leave one valid record, never a torn one), and it holds no store URL,
which may carry a password: each store is keyed by a SHA-256 digest of its URL. Session
ids are stored as given. The record is a convenience: one that cannot be read is
ignored, and one that cannot be written is reported once and the chat goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from threadline.cli._common import most_recent_session
from threadline.cli._files import FILE_MODE, private_dir

if TYPE_CHECKING:
    from threadline.stores import Store

__all__ = ["RECORD_NAME", "chat_to_continue", "last_chat", "remember_chat"]

RECORD_NAME = "last-chat.json"
#: Stores remembered; the least recently used are forgotten beyond this.
MAX_STORES = 100


def _key(store_url: str) -> str:
    return hashlib.sha256(store_url.encode("utf-8", "surrogatepass")).hexdigest()


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    stores = data.get("stores") if isinstance(data, dict) else None
    return stores if isinstance(stores, dict) else {}


def last_chat(data_dir: Path, store_url: str) -> str | None:
    """The session the chat on ``store_url`` was last in, per the record, or ``None``."""
    entry = _read(data_dir / RECORD_NAME).get(_key(store_url))
    session = entry.get("session") if isinstance(entry, dict) else None
    return session if isinstance(session, str) and session else None


def remember_chat(data_dir: Path, store_url: str, session_id: str) -> None:
    """Record ``session_id`` as the chat of ``store_url``; raises ``OSError`` if the
    record cannot be written."""
    path = data_dir / RECORD_NAME
    stores = _read(path)
    stores.pop(_key(store_url), None)
    stores[_key(store_url)] = {"session": session_id}  # last: the most recently used
    while len(stores) > MAX_STORES:
        del stores[next(iter(stores))]
    # ASCII: any id a store holds (lone surrogates too) encodes.
    text = json.dumps({"version": 1, "stores": stores}, indent=1)
    private_dir(data_dir)
    temporary = path.with_name(f".{RECORD_NAME}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                 | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)  # whatever the umask left
            handle.write(text + "\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def chat_to_continue(store: Store, store_url: str, data_dir: Path) -> str | None:
    """The session a bare ``threadline chat`` continues: the recorded chat if the store
    still holds it, else the store's most recently written session, else ``None``."""
    recorded = last_chat(data_dir, store_url)
    if recorded is not None:
        with contextlib.suppress(ValueError):  # a hand-edited id the store refuses
            if store.session_info(recorded) is not None:
                return recorded
    return most_recent_session(store)
