"""Records (:mod:`threadline.stores._records`) on the ``file://`` store: one file per
session, ``<name>.records.json``, beside its history and metadata files.

Format. ``{"session_id": ..., "expires_at": seconds or null, "records": {key: base64}}``:
values are bytes, so each is base64 text; keys are printable ASCII already. The file
holds every record of the session, sorted by key.

Writes. ``put_records`` and ``delete_records`` read the file, change it and rewrite it
whole (temporary file + ``os.replace``, fsynced, then the directory), under the
session's lock, the one appends and ``update_session`` take: a batch is all or nothing,
concurrent writers serialise, and a killed or power-cut writer leaves the old file or
the new one (its temporary file is removed by the next writer, noted in the lock file).
Reads take no lock: a rename is atomic, so they see one version whole. The cost of a
write grows with the session's records (all are rewritten): fine for a conversation's
checkpoints, not for megabytes of them.

Lifetime. Records expire together, on their own deadline (``expires_at``), set by a put
with a TTL (its own or the store's) and by ``expire``; an expired file reads as empty
and is removed by ``purge_expired`` or the next write. ``delete_session`` deletes the
file, ``destroy`` too. A session with records but no messages has no metadata file, so
it is not listed.

A file that is not what this module writes (tampered with: a write never tears one) is a
:class:`StoreError` naming it, never read as empty: records are checkpoints, and
silently dropping them would restart a graph from scratch.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import stat
import time
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from threadline._errors import StoreError
from threadline.stores._base import validate_session_id, validate_ttl
from threadline.stores._records import (
    check_record_batch,
    check_record_keys,
    check_scan_args,
    scan_sorted,
    validate_record_key,
)
from threadline.stores.file._files import is_link_error, open_nofollow, pread_all, replace_file
from threadline.stores.file._meta import LOCK, RECORDS, link_error, remove_leftover
from threadline.stores.file._paths import encode_name

__all__ = ["RecordsMixin", "Space", "load", "purge", "save", "scan", "update"]


@dataclass(slots=True)
class Space:
    """One session's records and their deadline (Unix seconds)."""

    values: dict[str, bytes] = field(default_factory=dict)
    expires_at: float | None = None


def _damaged(path: Path, why: str) -> StoreError:
    return StoreError(f"the records file {str(path)!r} is damaged ({why}): it was not "
                      "written by threadline; restore it, or delete it (the session's "
                      "records are then lost)")


def _parse(path: Path, raw: bytes, session_id: str | None) -> Space:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise _damaged(path, "not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("records"), dict):
        raise _damaged(path, "not a records object")
    if session_id is not None and data.get("session_id") != session_id:
        raise _damaged(path, "it names another session")
    expires = data.get("expires_at")
    if expires is not None and (isinstance(expires, bool)
                                or not isinstance(expires, int | float)):
        raise _damaged(path, "expires_at is not a number")
    values: dict[str, bytes] = {}
    for key, text in data["records"].items():
        try:
            validate_record_key(key)
            if not isinstance(text, str):
                raise ValueError(text)
            values[key] = base64.b64decode(text, validate=True)
        except (ValueError, binascii.Error):
            raise _damaged(path, f"record {key!r:.80} is not a key and base64 text") from None
    return Space(values, None if expires is None else float(expires))


def load(path: Path, now: float, session_id: str | None = None) -> Space | None:
    """The live records in ``path`` (None: no file, or expired); a link there or a
    damaged file is a :class:`StoreError`."""
    try:
        fd = open_nofollow(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if is_link_error(exc, path):
            raise link_error(path) from exc
        raise StoreError(f"cannot read the records file {str(path)!r}: {exc}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _damaged(path, "not a regular file")
        space = _parse(path, pread_all(fd, st.st_size), session_id)
    finally:
        os.close(fd)
    if space.expires_at is not None and space.expires_at <= now:
        return None
    return space


def save(path: Path, session_id: str, space: Space | None, lock_fd: int) -> None:
    """Make ``space`` the content of ``path`` (durably), or remove it if ``space`` holds
    nothing; ``lock_fd``: the session's lock, held."""
    remove_leftover(lock_fd, path)
    if space is None or not space.values:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    records = {key: base64.b64encode(space.values[key]).decode("ascii")
               for key in sorted(space.values)}
    data = {"session_id": session_id, "expires_at": space.expires_at, "records": records}
    replace_file(path, json.dumps(data, separators=(",", ":")).encode("ascii"),
                 lock_fd=lock_fd)


def update(space: Space | None, batch: Mapping[str, bytes], delete: Collection[str],
           deadline: float | None) -> Space | None:
    """``space`` with ``batch`` upserted and ``delete`` removed, the deadline set when
    given; None when nothing is left."""
    if space is None:
        if not batch:
            return None
        space = Space()
    space.values.update(batch)
    for key in delete:
        space.values.pop(key, None)
    if deadline is not None:
        space.expires_at = deadline
    return space if space.values else None


def scan(space: Space | None, prefix: str, after: str | None, before: str | None,
         limit: int | None, reverse: bool, keys_only: bool) -> list[tuple[str, bytes]]:
    """``scan_records`` over one session's records (validated arguments): the keys are
    ASCII, so ``sorted`` is byte order."""
    if space is None:
        return []
    return scan_sorted(sorted(space.values), space.values, prefix, after, before, limit,
                       reverse, keys_only)


def purge(directory: Path, locked: Callable[[Path], AbstractContextManager[int]]) -> int:
    """Remove the expired records files of ``directory`` (each checked again under its
    session's lock, taken with ``locked``); how many. A damaged one is left alone."""
    purged = 0
    try:
        names = [entry.name for entry in os.scandir(directory)
                 if entry.name.endswith(RECORDS) and entry.name.startswith(("s_", "h_"))]
    except FileNotFoundError:
        return 0
    for name in names:
        path = directory / name
        if not _expired(path):
            continue
        with locked(directory / (name.removesuffix(RECORDS) + LOCK)) as lock_fd:
            if _expired(path):
                remove_leftover(lock_fd, path)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                purged += 1
    return purged


def _expired(path: Path) -> bool:
    try:
        return load(path, time.time()) is None and os.path.lexists(path)
    except StoreError:
        return False


class RecordsMixin:
    """The records methods of :class:`~threadline.stores.file._store.FileStore`, on the
    files above (a mixin, so the store module stays about sessions)."""

    supports_records: ClassVar[bool] = True
    directory: Path
    ttl: float | None
    max_message_bytes: int

    # The store's own (FileStore overrides them): its open check, a session's lock.
    def _check(self) -> None:
        raise NotImplementedError

    def _locked(self, lock_path: Path) -> AbstractContextManager[int]:
        raise NotImplementedError

    def _records_path(self, session_id: str) -> tuple[Path, Path]:
        """The session's records file and lock file (validating the id)."""
        stem = encode_name(validate_session_id(session_id))
        return self.directory / (stem + RECORDS), self.directory / (stem + LOCK)

    def put_records(self, session_id: str, records: Mapping[str, bytes], *,
                    delete: Collection[str] = (), ttl: float | None = None) -> None:
        path, lock = self._records_path(session_id)
        batch = check_record_batch(records, delete, self.max_message_bytes)
        ttl = validate_ttl(ttl) or self.ttl
        self._check()
        with self._locked(lock) as lock_fd:
            now = time.time()
            space = load(path, now, session_id)
            if space is None and not batch:
                return
            deadline = None if ttl is None else now + ttl
            save(path, session_id, update(space, batch, delete, deadline), lock_fd)

    def get_records(self, session_id: str, keys: Collection[str]) -> dict[str, bytes]:
        path, _ = self._records_path(session_id)
        wanted = check_record_keys(keys)
        self._check()
        space = load(path, time.time(), session_id)
        if space is None:
            return {}
        return {key: space.values[key] for key in wanted if key in space.values}

    def scan_records(self, session_id: str, prefix: str = "", *, after: str | None = None,
                     before: str | None = None, limit: int | None = None,
                     reverse: bool = False, keys_only: bool = False
                     ) -> list[tuple[str, bytes]]:
        path, _ = self._records_path(session_id)
        check_scan_args(prefix, after, before, limit)
        self._check()
        return scan(load(path, time.time(), session_id), prefix, after, before, limit,
                    reverse, keys_only)

    def delete_records(self, session_id: str, keys: Collection[str] | None = None, *,
                       prefix: str | None = None) -> None:
        path, lock = self._records_path(session_id)
        wanted = None if keys is None else check_record_keys(keys)
        if prefix is not None:
            validate_record_key(prefix)
        self._check()
        with self._locked(lock) as lock_fd:
            space = load(path, time.time(), session_id)
            if space is None:
                return
            if wanted is None and prefix is None:
                save(path, session_id, None, lock_fd)
                return
            doomed = set(wanted or ())
            if prefix is not None:
                doomed.update(key for key in space.values if key.startswith(prefix))
            save(path, session_id, update(space, {}, doomed, None), lock_fd)
