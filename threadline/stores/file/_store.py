"""``file://`` — one JSON Lines file per session in a directory; no server, no driver.

URLs: ``file:///var/lib/app/sessions`` (absolute) or ``file://./sessions`` (relative to the
working directory). Options: ``ttl``, ``max_message_bytes``.

Safety. The directory is created on first use, private (0700, and 0600 files, whatever
the umask); an existing one that other users may write to and that is not ours is
refused (see :func:`~threadline.stores.file._paths.prepare_directory`). Nothing in it is
opened through a symbolic link: a link planted where a session's file, metadata or lock
file goes raises :class:`~threadline.StoreError` naming it.

Files. Session ``sid`` lives in ``<name>.jsonl``, a
:class:`~threadline.FileChatMessageHistory` file (LangChain message dicts, one per line,
O(1) appends, torn-write safe), next to ``<name>.meta.json`` (the full session id,
created/updated/expiry times, message count, and the title, metadata, owner, parent and
fork point ``update_session`` and ``fork`` set: see :mod:`._meta`, which also says how
it is read as untrusted input and when it is fsynced) and lock files. A session created
by ``update_session`` has only its metadata file until its first append. ``<name>`` is
``s_`` plus the id percent-encoded (everything but ``a-z 0-9 _ -`` — capitals too, so
ids differing only in case never collide on case-insensitive file systems; the ``s_``
prefix keeps ``CON`` or ``.`` from naming a reserved or hidden file), or, when that
would be longer than :data:`MAX_ENCODED` characters, ``h_`` plus the SHA-256 of the id,
whose full text the metadata file keeps. No id can reach outside the directory: ``/``,
``.``, ``\\`` and NUL are always encoded.

Concurrency. A write (append, update_session, expire, delete, repair) holds an exclusive
``flock`` on ``<name>.session.lock`` while it checks the expiry, appends through the
history file (which takes its own lock) and rewrites the metadata atomically (temporary
file + ``os.replace``), so threads and processes can share a directory. Reads take no
store lock: the history file's own shared lock gives them whole lines, and whole turns
(a turn killed mid-write is skipped whole). Lock files are never deleted (unlinking a
lock file others wait on would let two writers in at once).

Counts. ``message_count`` is what the history file reported after the append (it counts
the file, so an append that stores nothing new, ids already held, adds nothing), stored
with the file's size and inode at that moment. ``session_info`` trusts it only while the
file still has that size and inode: a process killed between its append and the metadata
update, a torn write, a repair or another writer makes it count the file again, so the
count never drifts from the file's content.

Records (LangGraph checkpoints, summaries) are ``<name>.records.json``, one file per
session rewritten whole under the session's lock (see :mod:`._records`); deleted with the
session, expiring with it; a session with records only is not listed.

Leftovers. A metadata, records or history rewrite notes its temporary file in the lock
file it holds, so the next writer of that session removes what a killed one left;
opening the store (its first use) also scans the directory once for such files (stale:
their process is gone), each removed under its session's locks.

Listing scans the directory (``os.scandir``), decodes names, reads the metadata files
(owner and metadata filters; ``updated_at`` for the recent order) and sorts: O(sessions)
per page, which suits the thousands of sessions a local directory holds; use SQLite for
more (see :mod:`._sessions`). Search is the base's portable scan of the 1,000 most
recently active sessions (no index here); ``stats`` counts the files.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from threadline._errors import ConfigurationError, InputError, StoreError, ThreadlineError
from threadline.messages._values import BaseMessage
from threadline.stores._base import (
    SessionInfo,
    SessionPage,
    Store,
    check_last,
    check_limit,
    check_messages,
    validate_session_id,
    validate_ttl,
)
from threadline.stores._sessions import (
    Order,
    SessionChanges,
    StoreStats,
    check_list_args,
)
from threadline.stores._url import StoreURL
from threadline.stores.file import _cache
from threadline.stores.file import _records as record_files
from threadline.stores.file._files import (
    flocked,
    is_link_error,
    is_stale,
    open_lock,
    temp_owner,
    try_flock,
)
from threadline.stores.file._history import FileChatMessageHistory, Written
from threadline.stores.file._meta import (
    DATA,
    LOCK,
    META,
    RECORDS,
    apply_changes,
    expired,
    link_error,
    lstat,
    read_meta,
    session_fields,
    times,
    utc,
    write_meta,
)
from threadline.stores.file._paths import (
    MAX_ENCODED,
    decode_name,
    encode_name,
    prepare_directory,
)
from threadline.stores.file._records import RecordsMixin
from threadline.stores.file._repair import RepairReport, repair_history
from threadline.stores.file._sessions import list_page, store_stats

__all__ = ["MAX_ENCODED", "FileStore", "decode_name", "encode_name"]

_DATA, _META, _LOCK = DATA, META, LOCK


class _SessionFile(FileChatMessageHistory):
    """A session's history file: always JSON Lines (O(1) appends), whatever the default
    for files found elsewhere; a link there is a :class:`StoreError`."""

    def _link_error(self, path: Path) -> ThreadlineError:
        return link_error(path)


class FileStore(RecordsMixin, Store):
    """Sessions as files in a directory: ``open_store("file:///srv/chat/sessions")``."""

    OPTIONS: ClassVar[dict[str, Any]] = {**Store.OPTIONS}

    def __init__(self, url: StoreURL | str, **options: Any) -> None:
        super().__init__(url, **options)
        if self.url.host not in (None, ".", "localhost") or self.url.port or self.url.username:
            raise ConfigurationError(
                f"a file URL names a directory: file:///absolute/dir or file://./relative/dir, "
                f"got {self.url.render()!r}"
            )
        path = self.url.path
        if self.url.host == ".":
            path = "." + path
        if not path or path == "/":
            raise ConfigurationError(
                f"a file URL must name a directory, got {self.url.render()!r}")
        self.directory = Path(path)
        self._ready = False
        self._closed = False

    # -- paths and files ---------------------------------------------------------------------

    def _paths(self, session_id: str) -> tuple[Path, Path, Path]:
        stem = encode_name(validate_session_id(session_id))
        base = self.directory / stem
        return (base.with_name(stem + _DATA), base.with_name(stem + _META),
                base.with_name(stem + _LOCK))

    @staticmethod
    def _history(data: Path) -> _SessionFile:
        return _SessionFile(data, format="jsonl")

    def _check(self) -> None:
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        if not self._ready:
            self.setup()

    @contextlib.contextmanager
    def _locked(self, lock_path: Path) -> Iterator[int]:
        try:
            fd = open_lock(lock_path)
        except OSError as exc:
            if is_link_error(exc, lock_path):
                raise link_error(lock_path) from exc
            raise StoreError(f"cannot lock session file {str(lock_path)!r}: {exc}") from exc
        with flocked(fd):
            yield fd

    # The metadata file's format and I/O live in ._meta (read as untrusted input).
    _read_meta = staticmethod(read_meta)
    _write_meta = staticmethod(write_meta)
    _expired = staticmethod(expired)

    @staticmethod
    def _stamp(meta: dict[str, Any], written: Written) -> None:
        """Record the count with the size and inode of the file it describes."""
        meta.update(message_count=written.messages, size=written.size, inode=written.ino)

    def _count(self, meta: dict[str, Any], data: Path) -> int:
        """The session's message count: the metadata's while the file is as it describes
        it, else counted from the file."""
        st = lstat(data)
        if st is None:
            return 0
        count = meta.get("message_count")
        if (isinstance(count, int) and meta.get("size") == st.st_size
                and meta.get("inode") == st.st_ino):
            return count
        return self._history(data)._count()

    def _remove(self, data: Path, meta: Path) -> None:
        with contextlib.suppress(OSError):
            _cache.forget(os.lstat(data))  # a new file may get its inode
        for path in (data, meta):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _sweep(self) -> None:
        """Remove the temporary files of killed rewrites, each under its session's lock
        (and its history file's, for a history file's), taken only if free."""
        now = time.time()
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return
        for entry in entries:
            owner = temp_owner(entry.name)
            if owner is None or not owner[0].startswith(("s_", "h_")):
                continue
            target, pid = owner
            stem = next((target[:-len(end)] for end in (_DATA, _META, RECORDS)
                         if target.endswith(end)),
                        None)
            if stem is None or not is_stale(entry.path, pid, now):
                continue
            locks = [self.directory / (stem + _LOCK)]
            if target.endswith(_DATA):
                locks.append(self.directory / (target + ".lock"))
            held = [fd for fd in map(try_flock, locks) if fd is not None]
            try:
                if len(held) == len(locks):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
            finally:
                for fd in held:
                    os.close(fd)

    # -- the contract --------------------------------------------------------------------------

    def setup(self) -> None:
        """Create the directory (idempotent; private: 0700) and remove what killed
        rewrites left in it. A directory others may write to and that is not ours is
        refused with a :class:`StoreError` saying what to do."""
        prepare_directory(self.directory)
        self._sweep()
        self._ready = True

    def append(self, session_id: str, messages: Sequence[BaseMessage], *,
               ttl: float | None = None) -> None:
        data, meta_path, lock = self._paths(session_id)
        batch = check_messages(messages)
        ttl = validate_ttl(ttl) or self.ttl
        if not batch:
            return
        history = self._history(data)
        lines = history._encode(batch)
        self.check_sizes(lines.texts)
        self._check()
        with self._locked(lock) as lock_fd:
            now = time.time()
            meta = self._read_meta(meta_path)
            if meta is not None and self._expired(meta, now):
                # An expired session that is written again starts afresh.
                self._remove(data, meta_path)
                meta = None
            if meta is None:
                # New, or its metadata lost in a crash (then rebuilt from the file). A link
                # is refused before anything is written.
                st = lstat(data)
                created = now if st is None else st.st_mtime
                meta = {"session_id": session_id, "created_at": created, "updated_at": now,
                        "expires_at": None, "message_count": 0}
                # Written first, so a session is listed even if the append is interrupted.
                self._write_meta(meta_path, meta, lock_fd)
            written = history._add(lines, session_id)
            meta["updated_at"] = now
            if written is not None:  # None only for an empty batch
                self._stamp(meta, written)
            if ttl is not None:
                meta["expires_at"] = now + ttl
            self._write_meta(meta_path, meta, lock_fd)

    def get_messages(self, session_id: str, *, last: int | None = None,
                     skip_invalid: bool = False) -> list[BaseMessage]:
        data, meta_path, _ = self._paths(session_id)
        check_last(last)
        self._check()
        if self._expired(self._read_meta(meta_path), time.time()):
            return []
        return self._history(data)._get(last, skip_invalid=skip_invalid,
                                        session_id=session_id)

    def iter_messages(self, session_id: str, *, page_size: int = 1000,
                      skip_invalid: bool = False) -> Iterator[BaseMessage]:
        """The session's messages, oldest first, decoded ``page_size`` at a time from its
        file read a block at a time: memory stays flat in the session's length. It
        yields the session as it was when the iteration began."""
        data, meta_path, _ = self._paths(session_id)
        check_limit(page_size)
        self._check()
        if self._expired(self._read_meta(meta_path), time.time()):
            return iter(())
        return self._history(data)._iter(page_size, skip_invalid=skip_invalid,
                                         session_id=session_id)

    def repair(self, session_id: str) -> RepairReport:
        """Rewrite a session's file with only its readable messages, keeping the
        damaged lines in a side file beside it (see
        :func:`~threadline.stores.file.repair_history_file`); the count follows.

        >>> store.repair("s1")  # doctest: +SKIP
        RepairReport(kept=41, damaged=1, side_file=PosixPath('.../s_s1.jsonl.damaged-...'))
        """
        data, meta_path, lock = self._paths(session_id)
        self._check()
        with self._locked(lock) as lock_fd:
            if lstat(data) is None:
                return RepairReport(0, 0, None)
            history = self._history(data)
            report = repair_history(history)
            meta = self._read_meta(meta_path)
            st = os.lstat(data)
            if meta is None:
                meta = {"session_id": session_id, "created_at": st.st_mtime,
                        "updated_at": time.time(), "expires_at": None}
            self._stamp(meta, Written(0, history._count(), st.st_size, st.st_ino))
            self._write_meta(meta_path, meta, lock_fd)
        return report

    def delete_session(self, session_id: str) -> bool:
        data, meta_path, lock = self._paths(session_id)
        records_path, _ = self._records_path(session_id)
        self._check()
        with self._locked(lock) as lock_fd:
            now = time.time()
            meta = self._read_meta(meta_path)
            existed = (meta is not None or os.path.lexists(data)) and not self._expired(
                meta, now)
            try:
                existed = record_files.load(records_path, now, session_id) is not None or existed
            except StoreError:  # a damaged records file: deleted with the session
                existed = True
            self._remove(data, meta_path)
            record_files.save(records_path, session_id, None, lock_fd)
        return existed

    def _scan(self) -> dict[str, str]:
        """Session id -> file stem, for every session with a metadata file."""
        found: dict[str, str] = {}
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return found
        for entry in entries:
            name = entry.name
            if not name.endswith(_META) or name.startswith("."):
                continue
            stem = name[: -len(_META)]
            try:
                sid = decode_name(stem)
            except UnicodeDecodeError:
                continue
            if sid is None:
                meta = self._read_meta(self.directory / name)
                sid = meta.get("session_id") if meta else None
                if sid is None:
                    continue
            # Only the name the id is stored under: a planted file names no other session.
            with contextlib.suppress(InputError):
                if encode_name(sid) == stem:
                    found[sid] = stem
        return found

    def list_sessions(self, *, order: Order = "id", owner: str | None = None,
                      prefix: str = "", metadata: Mapping[str, str] | None = None,
                      limit: int = 100, cursor: str | None = None) -> SessionPage:
        """Scans the directory and reads the metadata files (see
        :mod:`~threadline.stores.file._sessions` for the cost)."""
        query = check_list_args(order, owner, prefix, metadata, limit, cursor)
        self._check()
        return list_page(self, query)

    def session_info(self, session_id: str) -> SessionInfo | None:
        data, meta_path, _ = self._paths(session_id)
        self._check()
        meta = self._read_meta(meta_path)
        if self._expired(meta, time.time()):
            return None
        st = lstat(data)
        if meta is None:
            if st is None:
                return None
            # Metadata lost (a crash): describe the session from its file.
            count = self._history(data)._count()
        else:
            count = self._count(meta, data)
        created, updated = times(meta, st)
        return SessionInfo(session_id, count, utc(created), utc(updated),
                           utc((meta or {}).get("expires_at")), **session_fields(meta))

    def _update_session(self, session_id: str, changes: SessionChanges) -> None:
        """Rewrite the metadata file under the session's lock (creating the session,
        empty, if it does not exist: the metadata file alone lists it); the messages are
        not read and ``updated_at`` stays. Durable when it returns (see :mod:`._meta`)."""
        data, meta_path, lock = self._paths(session_id)
        given = changes.given()
        self._check()
        with self._locked(lock) as lock_fd:
            now = time.time()
            meta = self._read_meta(meta_path)
            if meta is not None and self._expired(meta, now):
                self._remove(data, meta_path)  # expired: it is created afresh
                meta = None
            if meta is None:
                # New, or its metadata lost in a crash (then its times from the file).
                st = lstat(data)
                since = now if st is None else st.st_mtime
                meta = {"session_id": session_id, "created_at": since, "updated_at": since,
                        "expires_at": None if self.ttl is None else now + self.ttl,
                        "message_count": 0}
            apply_changes(meta, given)
            self._write_meta(meta_path, meta, lock_fd, sync_dir=True)

    def stats(self) -> StoreStats:
        """Counted from the directory (see :func:`._sessions.store_stats`); ``bytes`` is
        the total size of the history files."""
        self._check()
        return store_stats(self)

    def expire(self, session_id: str, ttl: float | None) -> None:
        _, meta_path, lock = self._paths(session_id)
        ttl = validate_ttl(ttl)
        self._check()
        records_path, _ = self._records_path(session_id)
        with self._locked(lock) as lock_fd:
            now = time.time()
            deadline = None if ttl is None else now + ttl
            space = record_files.load(records_path, now, session_id)
            if space is not None:  # records expire with their session
                space.expires_at = deadline
                record_files.save(records_path, session_id, space, lock_fd)
            meta = self._read_meta(meta_path)
            if meta is None or self._expired(meta, now):
                return
            meta["expires_at"] = deadline
            self._write_meta(meta_path, meta, lock_fd)

    def purge_expired(self) -> int:
        self._check()
        purged = 0
        for stem in self._scan().values():
            meta_path = self.directory / (stem + _META)
            if not self._expired(self._read_meta(meta_path), time.time()):
                continue
            with self._locked(self.directory / (stem + _LOCK)):
                # Checked again under the lock: a writer may have just renewed it.
                if self._expired(self._read_meta(meta_path), time.time()):
                    self._remove(self.directory / (stem + _DATA), meta_path)
                    purged += 1
        record_files.purge(self.directory, self._locked)  # records-only sessions too
        return purged

    def close(self) -> None:
        self._closed = True

    def destroy(self) -> None:
        """Delete this store's files, and the directory if nothing else is in it."""
        if not self.directory.is_dir():
            return
        for entry in os.scandir(self.directory):
            name = entry.name.lstrip(".")
            if name.startswith(("s_", "h_")) and (entry.is_symlink() or entry.is_file()):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
        with contextlib.suppress(OSError):
            self.directory.rmdir()
