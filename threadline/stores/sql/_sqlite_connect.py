"""SQLite connections for :mod:`threadline.stores.sql._sqlite`: one per thread, and the
event loop's own, with which short async calls run without a thread hop.

File databases get one connection per thread (closed with the store; those of finished
threads are closed as new ones open); each write is one ``BEGIN IMMEDIATE`` transaction,
which takes the write lock up front so concurrent writers (threads or processes) queue on
``busy_timeout`` instead of failing on a lock upgrade. An in-memory database is one
connection shared by every thread behind a lock.

Async without a thread hop: a hop costs more than a turn's SQLite work (~0.15 ms against
~0.1 ms), so the async methods of the short calls run on the event loop's own thread when
they cannot wait (:meth:`SQLiteConnections._arun`). Each loop thread gets a connection of
its own with a busy timeout of 0: reads in WAL mode never wait for writers, and a write's
``BEGIN IMMEDIATE`` either takes the free write lock at once or fails with SQLITE_BUSY
before anything is written; then the call runs in a worker thread on that thread's
connection, waiting up to ``timeout`` as the sync methods do. Checkpoints do disk syncs,
so that connection never checkpoints (``wal_autocheckpoint = 0``): every
:data:`CHECKPOINT_EVERY`-th inline write first has a worker thread run a passive one. An
in-memory database runs the short calls inline when its lock is free.

Privacy: a database file the store creates is made 0600 (owner only) before SQLite opens
it, whatever the umask (:func:`create_private`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from threadline._concurrency import run_locked, run_sync
from threadline._errors import StoreConnectionError, StoreError
from threadline.stores._base import Store

__all__ = ["CHECKPOINT_EVERY", "SQLiteConnections"]

T = TypeVar("T")

#: Inline writes between the passive checkpoints run in a worker thread.
CHECKPOINT_EVERY = 100


def create_private(path: Path) -> None:
    """Create ``path`` as an empty file only its owner may read and write (0600 whatever
    the umask), unless it exists: SQLite then uses it as a new database, and creates its
    journal, WAL and shared-memory files with the same permissions."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                     0o600)
    except FileExistsError:
        return  # made meanwhile by another connection or process (or a link: not ours)
    try:
        if hasattr(os, "fchmod"):  # the umask may have taken bits off 0600
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _use_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch a database to WAL once. The switch needs the database to itself and SQLite
    does not wait for it (no busy handler): when several connections open a new database
    at once, the losers retry until one of them has switched it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal":
                return
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


class SQLiteConnections(Store):
    """The connections of a :class:`~threadline.stores.sql._sqlite.SQLiteStore` and the
    ``_run`` / ``_arun`` every statement goes through."""

    memory: bool
    path: Path | None
    timeout: float
    _lock: threading.RLock
    _conns: dict[int, tuple[threading.Thread, sqlite3.Connection]]
    _nowait: dict[int, tuple[threading.Thread, sqlite3.Connection]]
    _inline_writes: int
    _shared: sqlite3.Connection | None
    _ready: bool
    _closed: bool

    def _connect(self) -> sqlite3.Connection:
        target = ":memory:" if self.memory else str(self.path)
        if self.path is not None and not self.path.parent.is_dir():
            raise StoreConnectionError(
                f"cannot open SQLite database {target!r}: directory "
                f"{str(self.path.parent)!r} does not exist"
            )
        try:
            if self.path is not None and not os.path.lexists(self.path):
                create_private(self.path)
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves.
            conn = sqlite3.connect(target, timeout=self.timeout, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            if not self.memory:
                _use_wal(conn, self.timeout)
                # WAL + NORMAL: a crash never corrupts; a power loss may lose the last commits.
                conn.execute("PRAGMA synchronous = NORMAL")
        except (sqlite3.Error, OSError) as exc:
            raise StoreConnectionError(f"cannot open SQLite database {target!r}: {exc}"
                                       ) from exc
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        if self.memory:
            with self._lock:
                if self._shared is None:
                    self._shared = self._connect()
                yield self._shared
            return
        me = threading.current_thread()
        entry = self._conns.get(me.ident or 0)
        if entry is None or entry[0] is not me:
            conn = self._connect()
            with self._lock:
                for ident, (thread, old) in list(self._conns.items()):
                    if not thread.is_alive():
                        old.close()
                        del self._conns[ident]
                self._conns[me.ident or 0] = (me, conn)
        else:
            conn = entry[1]
        yield conn

    def _run(self, work: Callable[[sqlite3.Connection], T], *, write: bool = False) -> T:
        """Run ``work`` on this thread's connection (in one write transaction if asked),
        after the lazy once-per-process setup; sqlite errors become StoreErrors."""
        if not self._ready:
            self.setup()
        if self.memory:
            with self._connection() as conn:
                return self._work(conn, work, write)
        # The common case without the context manager: this runs twice per turn.
        entry = self._conns.get(threading.get_ident())
        if entry is not None and entry[0] is threading.current_thread() and not self._closed:
            return self._work(entry[1], work, write)
        with self._connection() as conn:
            return self._work(conn, work, write)

    def _work(self, conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T],
              write: bool) -> T:
        try:
            if not write:
                return work(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite error on {self.url.render()!r}: {exc}") from exc

    # -- async: on the event loop's thread when nothing waits ---------------------------------

    async def _arun(self, work: Callable[[sqlite3.Connection], T], *,
                    write: bool = False) -> T:
        """``_run`` on the event loop's thread if it cannot wait, else in a worker thread."""
        if self.memory:
            return await run_locked(self._lock, self._run, work, write=write)
        if write:
            self._inline_writes += 1
            if self._inline_writes % CHECKPOINT_EVERY == 0:
                # Before the write, so that a failure fails a call that wrote nothing.
                await run_sync(self._run, _checkpoint)
        thread = threading.current_thread()
        entry = self._nowait.get(thread.ident or 0)
        if entry is None or entry[0] is not thread:
            await run_sync(self._open_nowait, thread)  # once per loop thread
            entry = self._nowait.get(thread.ident or 0)
        if entry is None or self._closed:  # closed meanwhile
            raise StoreError(f"{self!r} is closed")
        conn = entry[1]
        try:
            return self._work(conn, work, write)
        except StoreError as exc:
            if not _busy(exc.__cause__):
                raise
            if conn.in_transaction:  # a refused COMMIT leaves it open: nothing was written
                conn.execute("ROLLBACK")
        return await run_sync(self._run, work, write=write)

    def _open_nowait(self, thread: threading.Thread) -> None:
        """Set up the store if needed and open ``thread``'s no-wait connection (in a worker
        thread: opening may wait for a lock)."""
        if not self._ready:
            self.setup()
        conn = self._connect()
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        with self._lock:
            if self._closed:
                conn.close()
                raise StoreError(f"{self!r} is closed")
            for ident, (other, old) in list(self._nowait.items()):
                if not other.is_alive():
                    old.close()
                    del self._nowait[ident]
            self._nowait[thread.ident or 0] = (thread, conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = [conn for _, conn in [*self._conns.values(), *self._nowait.values()]]
            self._conns.clear()
            self._nowait.clear()
            if self._shared is not None:
                conns.append(self._shared)
                self._shared = None
        for conn in conns:
            conn.close()


def _busy(exc: BaseException | None) -> bool:
    """Whether SQLite refused because the database is locked (nothing was done)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _checkpoint(conn: sqlite3.Connection) -> None:
    # PASSIVE: copies what no reader still needs; never waits for readers or writers.
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
