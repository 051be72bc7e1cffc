"""File I/O shared by every file-backed history: reads, locks, atomic replacement.

Reads use ``pread`` (no shared file position between threads); writes write whole
buffers. Locks are ``flock`` on sidecar lock files, which are never deleted (unlinking a
lock file that others wait on would let two writers in at once). A file is replaced
atomically through a temporary file beside it (``.<name>.<pid>.<random>.tmp``), fsynced,
renamed with ``os.replace``, then the directory fsynced.

Links. Nothing here follows a symbolic link: files are opened with ``O_NOFOLLOW`` (a link
planted where a history, lock or metadata file goes raises ELOOP, which callers turn into
an error naming the path, see :func:`is_link_error`), created with ``O_EXCL`` where new,
and ``os.replace`` replaces a link itself, never its target. Temporary files get
``mkstemp``'s treatment (an unguessable name, ``O_CREAT | O_EXCL | O_NOFOLLOW``, mode
0600) with the name chosen before the file exists, so it is noted in the lock file first
and a writer killed at any point leaves nothing un-noted. New files are private (0600)
whatever the umask; a replaced file keeps its mode.

A lock file also holds two notes, each written in one ``pwrite`` within the first page
(so a kill never tears one) by the holder of the exclusive lock: the append in progress
(:func:`note_write`) and the temporary file of the rewrite in progress
(:func:`note_rewrite`). Whoever takes the lock next and finds a note knows its writer
died mid-write: it drops the unfinished append, and removes the temporary file, without
scanning the directory.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

from threadline.stores.file._format import BLANK, CHUNK, Slot, split_lines

__all__ = [
    "STALE_AGE",
    "count_newlines",
    "file_mode",
    "flocked",
    "fsync_dir",
    "is_stale",
    "interrupted_write",
    "is_link_error",
    "iter_line_slots",
    "note_done",
    "note_rewrite",
    "note_write",
    "noted_rewrite",
    "open_lock",
    "open_nofollow",
    "pread_all",
    "read_head",
    "read_last_slots",
    "replace_file",
    "temp_owner",
    "try_flock",
    "write_all",
]

BLOCK = 64 * 1024
#: A temporary file this old is stale even if a live process has its pid (pid reuse).
STALE_AGE = 3600.0


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


def read_last_slots(fd: int, size: int, last: int, encoding: str
                    ) -> tuple[list[Slot], int, bool]:
    """The newest ``last`` slots of the first ``size`` bytes of a JSON Lines file (fewer
    if it holds fewer), where its last newline ends and whether its end is torn (see
    :func:`split_lines`), reading backwards from the end in doubling chunks."""
    pos, step, buf = size, CHUNK, b""
    while True:
        step = min(step, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        step *= 2
        start = buf.find(b"\n") + 1 if pos else 0  # skip the line cut by ``pos``
        if pos and not start:
            continue
        slots, end, torn = split_lines(buf[start:], pos + start, encoding)
        if len(slots) >= last or pos == 0:
            return slots[-last:], end, torn


def iter_line_slots(fd: int, limit: int, encoding: str, block: int = BLOCK * 4
                    ) -> Iterator[tuple[list[Slot], bool]]:
    """The slots of the first ``limit`` bytes of a JSON Lines file, a block at a time:
    ``(slots, torn)`` per block of whole lines (memory: a block, or the longest line),
    the last with the bytes after the last newline (``torn``: see :func:`split_lines`)."""
    parts: list[bytes] = []  # the start of a line longer than what was read of it
    base = pos = 0
    while pos < limit:
        part = os.pread(fd, min(block, limit - pos), pos)
        if not part:  # the file shrank under us (a torn line cut off): what was read
            break
        pos += len(part)
        cut = part.rfind(b"\n") + 1
        if not cut:
            parts.append(part)
            continue
        data = b"".join([*parts, part[:cut]]) if parts else part[:cut]
        yield split_lines(data, base, encoding)[0], False
        base += len(data)
        parts = [part[cut:]] if cut < len(part) else []
    slots, _, torn = split_lines(b"".join(parts), base, encoding)
    yield slots, torn


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
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# --- locks and atomic replacement ---------------------------------------------------------


#: Private: the mode of the files threadline creates (made exact, whatever the umask).
PRIVATE = 0o600


def open_nofollow(path: Path, flags: int, mode: int = PRIVATE) -> int:
    """``os.open`` that never follows a link at ``path`` (ELOOP instead)."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


def is_link_error(exc: OSError, path: Path) -> bool:
    """Whether ``exc``, from :func:`open_nofollow` on ``path``, means it is a link."""
    return exc.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path)


def open_lock(path: Path, mode: int = PRIVATE) -> int:
    """Open the lock file ``path``, creating it with ``mode`` (exactly) if it is new;
    raises ``OSError`` (ELOOP for a link). Lock files are never deleted: unlinking one
    that others wait on would let two writers in at once."""
    for _ in range(100):
        try:
            return open_nofollow(path, os.O_RDWR)
        except FileNotFoundError:
            pass
        try:
            fd = open_nofollow(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            continue  # made meanwhile by another writer: open theirs
        try:
            os.fchmod(fd, mode)
        except OSError:
            os.close(fd)
            raise
        return fd
    # Only a file that keeps appearing and vanishing gets here: not a lock file of ours.
    raise FileExistsError(errno.EEXIST, "a lock file that keeps changing", str(path))


@contextlib.contextmanager
def flocked(fd: int, *, exclusive: bool = True) -> Iterator[None]:
    """Hold an ``flock`` on ``fd`` for the block, then close it (which releases it)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def try_flock(path: Path) -> int | None:
    """An exclusively locked fd of the existing lock file ``path``, or None if it is
    missing or held (close the fd to release it)."""
    try:
        fd = open_nofollow(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


# The lock file's content: the append in progress, ``(inode, offset, length, its first
# bytes)``, written under the lock (40 bytes at offset 0: one page, never torn) before
# each append and cleared (length 0) after it. Whoever then finds a note whose write is
# not all in the file knows a writer was killed inside it, where its bytes begin, and
# drops all of them: the whole lines a killed append left before its torn one are part
# of the same batch (the question of a turn whose answer was cut), not messages.
_PENDING = struct.Struct("<QQQ16s")


def note_write(lock_fd: int, ino: int, offset: int, data: bytes) -> None:
    os.pwrite(lock_fd, _PENDING.pack(ino, offset, len(data), data[:16]), 0)


def note_done(lock_fd: int, ino: int, end: int) -> None:
    os.pwrite(lock_fd, _PENDING.pack(ino, end, 0, b""), 0)


def interrupted_write(lock_fd: int | None, fd: int, st: os.stat_result) -> int | None:
    """Where the append a killed writer left unfinished in the file ``fd`` begins, from
    the note in its lock file: None if there is none (or the file has been rewritten
    since: then the bytes there are not the note's)."""
    if lock_fd is None:
        return None
    try:
        data = os.pread(lock_fd, _PENDING.size, 0)
    except OSError:
        return None
    if len(data) != _PENDING.size:
        return None
    ino, offset, length, head = _PENDING.unpack(data)
    if ino != st.st_ino or not offset < st.st_size < offset + length:
        return None
    present = os.pread(fd, min(len(head), st.st_size - offset), offset)
    return offset if head.startswith(present) else None


def _temp_path(target: Path) -> Path:
    return target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"


_TEMP = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]+)\.[0-9a-f]{12}\.tmp", re.DOTALL)
_REWRITE_AT, _NAME = 64, struct.Struct("<H")


def temp_owner(name: str) -> tuple[str, int] | None:
    """``(target name, pid)`` if ``name`` is one of :func:`replace_file`'s temporary files."""
    match = _TEMP.fullmatch(name)
    return None if match is None else (match["name"], int(match["pid"]))


def note_rewrite(lock_fd: int, temp: Path | None) -> None:
    """Note (or, None, clear) the temporary file of the rewrite in progress."""
    name = b"" if temp is None else os.fsencode(temp.name)
    os.pwrite(lock_fd, _NAME.pack(len(name)) + name, _REWRITE_AT)


def noted_rewrite(lock_fd: int) -> str | None:
    """The name of the temporary file a rewrite noted and did not clear: a killed
    writer's, if the caller holds the lock (see :func:`leftover`)."""
    try:
        data = os.pread(lock_fd, _NAME.size + 255, _REWRITE_AT)
    except OSError:
        return None
    if len(data) < _NAME.size:
        return None
    (size,) = _NAME.unpack_from(data)
    if not size or len(data) < _NAME.size + size:
        return None
    return os.fsdecode(data[_NAME.size:_NAME.size + size])


def leftover(name: str, target: Path) -> Path | None:
    """The noted temporary file ``name`` beside ``target``, if it is one of
    ``target``'s own names (a damaged note never names another file)."""
    owner = temp_owner(name)
    return target.with_name(name) if owner and owner[0] == target.name else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, as another user
        return True
    return True


def is_stale(path: str, pid: int, now: float) -> bool:
    """Whether a temporary file found in a directory scan is a dead writer's leftover:
    its pid is gone, or it is hours old. (Callers also hold its target's locks.)"""
    if pid <= 0:
        return False
    if not _alive(pid):
        return True
    try:
        return now - os.lstat(path).st_mtime > STALE_AGE
    except OSError:
        return False


def file_mode(target: Path) -> int:
    """The permission bits of the regular file ``target``, else :data:`PRIVATE`."""
    try:
        st = os.lstat(target)
    except OSError:
        return PRIVATE
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else PRIVATE


def _create_temp(target: Path, lock_fd: int | None) -> tuple[Path, int]:
    """A new temporary file beside ``target`` (mkstemp's way: unguessable name, created
    with ``O_EXCL | O_NOFOLLOW``, 0600), noted in ``lock_fd`` before it exists."""
    for _ in range(100):
        tmp = _temp_path(target)
        if lock_fd is not None:
            note_rewrite(lock_fd, tmp)
        try:
            return tmp, open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            continue  # 48 random bits taken (or planted): draw again
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(target.parent))


def replace_file(target: Path, data: bytes, *, mode: int | None = None,
                 durable: bool = True, sync_dir: bool | None = None,
                 lock_fd: int | None = None) -> os.stat_result:
    """Atomically make ``data`` the content of ``target``; the new file's stat.

    Writes a temporary file beside ``target`` and renames it over ``target``, so a crash
    leaves the old file or the new one, never a mix. ``mode``: the new file's permission
    bits (``None``: those of the file it replaces, or 0600 for a new one, whatever the
    umask). ``durable``: fsync the data before the rename (else a power loss could leave
    an empty file) and the directory after it (which makes the rename itself durable;
    ``sync_dir=False`` skips that: a power loss may then keep the old file, never an
    empty one).
    ``lock_fd``: the exclusively locked lock file of ``target``, where the temporary file
    is noted (see :func:`note_rewrite`) until it is renamed or removed. A link at
    ``target`` is replaced, never written through.
    """
    if mode is None:
        mode = file_mode(target)
    try:
        tmp, fd = _create_temp(target, lock_fd)
    except BaseException:
        if lock_fd is not None:
            note_rewrite(lock_fd, None)
        raise
    try:
        try:
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
    finally:
        if lock_fd is not None:
            note_rewrite(lock_fd, None)
    if durable and (sync_dir is None or sync_dir):
        fsync_dir(target.parent)
    return st
