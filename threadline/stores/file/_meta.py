"""A ``file://`` session's metadata file (``<name>.meta.json``): its format, read as
untrusted input, and its atomic rewrite.

Format. One JSON object: ``session_id`` (the full id, which a hashed ``h_`` name cannot
give back), ``created_at`` / ``updated_at`` / ``expires_at`` (Unix seconds),
``message_count`` with the ``size`` and ``inode`` of the history file it counted, and
the fields ``update_session`` sets: ``title``, ``metadata`` (str -> str), ``owner``, and
``parent`` / ``fork_point`` from a fork. A field that is not set is absent. Other keys
are dropped on read (nothing but these fields is ever written back).

Untrusted on read. Whoever can write to the directory could leave anything in a
metadata file, and a power loss can leave one empty, so :func:`read_meta` reads at most
:data:`MAX_META_BYTES`, parses with :mod:`json` only (nothing else is ever
deserialised), and :func:`clean_meta` checks every known field by type (the session
fields with the validators ``update_session`` uses): a field of the wrong type is
dropped, as if absent, so one bad file never crashes a listing nor puts a non-str in a
``SessionInfo``. A file too large, not JSON or not an object is treated as lost: the
session is described from its history file, and its next write rebuilds the file.

Durability. Every rewrite is atomic (temporary file + ``os.replace``, under the
session's lock, noted in the lock file so a killed writer's temporary file is removed):
a killed process leaves the old file or the new one, and concurrent writers serialise
on the lock, each rewriting what the previous one wrote, so no field is lost. Counts
and times can be rebuilt from the history file, the session fields cannot: so a file
holding them is fsynced before its rename (a power loss then leaves the old file or the
new one, never an empty one), and ``update_session`` also fsyncs the directory (the
change is durable when it returns). A session without them pays no fsync.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from threadline._errors import InputError, StoreError
from threadline.stores._base import validate_session_id
from threadline.stores._sessions import (
    ListQuery,
    check_metadata,
    check_owner,
    check_title,
    metadata_matches,
)
from threadline.stores.file._files import (
    is_link_error,
    leftover,
    noted_rewrite,
    open_nofollow,
    pread_all,
    replace_file,
)

__all__ = [
    "DATA",
    "FIELDS",
    "LOCK",
    "MAX_META_BYTES",
    "META",
    "RECORDS",
    "apply_changes",
    "clean_meta",
    "expired",
    "has_fields",
    "link_error",
    "lstat",
    "read_meta",
    "remove_leftover",
    "session_fields",
    "times",
    "utc",
    "wanted",
    "write_meta",
]

#: A session's files: ``<name>`` plus these.
DATA: Final = ".jsonl"
META: Final = ".meta.json"
LOCK: Final = ".session.lock"
RECORDS: Final = ".records.json"

#: The largest metadata file read. A real one is far smaller: two session ids (16,384
#: characters, 6 bytes each at worst as JSON) and the bounded title, metadata and owner.
MAX_META_BYTES: Final = 1024 * 1024

#: The fields ``update_session`` and ``fork`` set, kept in the metadata file.
FIELDS: Final = ("title", "metadata", "owner", "parent", "fork_point")


def utc(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


def link_error(path: Path) -> StoreError:
    return StoreError(
        f"{str(path)!r} is a symbolic link: a file store never opens files through links "
        "(one planted in its directory could redirect writes to any file); remove it")


def lstat(path: Path) -> os.stat_result | None:
    """The file's own stat (not a link's target's), None if missing; a link raises."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise link_error(path)
    return st


# -- the format --------------------------------------------------------------------------


def _time(value: object) -> float | None:
    """A finite number of seconds (``NaN`` and ``Infinity`` are JSON to Python, not
    times: they would break the recent order), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    # Before 5138 (datetime reaches 9999), and not before 1970: every platform converts it.
    return number if math.isfinite(number) and 0 <= number < 1e11 else None


def _count(value: object) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _checked(check: Any, value: object) -> Any:
    """``check(value)``, or None where it refuses the value."""
    try:
        return check(value)
    except InputError:
        return None


#: Each known field's check: its value if acceptable, else None.
_CHECKS: Final[dict[str, Any]] = {
    "session_id": lambda v: v if isinstance(v, str) else None,
    "created_at": _time, "updated_at": _time, "expires_at": _time,
    "message_count": _count, "size": _count, "inode": _count, "fork_point": _count,
    "title": lambda v: _checked(check_title, v),
    # check_metadata takes any mapping; what JSON gives is a dict or not a mapping.
    "metadata": lambda v: _checked(check_metadata, v) or None,
    "owner": lambda v: _checked(check_owner, v),
    "parent": lambda v: _checked(validate_session_id, v),
}


def clean_meta(data: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``data`` this version knows, each of the right type and within
    bounds; the others are dropped."""
    cleaned: dict[str, Any] = {}
    for key, value in data.items():
        check = _CHECKS.get(key)
        if check is not None and (value := check(value)) is not None:
            cleaned[key] = value
    if "expires_at" in data and data["expires_at"] is None:
        cleaned["expires_at"] = None
    return cleaned


def has_fields(meta: dict[str, Any]) -> bool:
    """Whether the file holds what only it knows (see Durability above)."""
    return any(name in meta for name in FIELDS)


def apply_changes(meta: dict[str, Any], given: dict[str, Any]) -> None:
    """Set the validated ``SessionChanges.given()`` fields; None / ``{}`` removes one."""
    for name, value in given.items():
        if value is None or value == {}:
            meta.pop(name, None)
        else:
            meta[name] = dict(value) if name == "metadata" else value


def session_fields(meta: dict[str, Any] | None) -> dict[str, Any]:
    """The ``SessionInfo`` keyword arguments of the session fields."""
    if meta is None:
        return {}
    fields: dict[str, Any] = {name: meta[name] for name in FIELDS if name in meta}
    if "metadata" in fields:
        fields["metadata"] = dict(fields["metadata"])
    return fields


def times(meta: dict[str, Any] | None, st: os.stat_result | None
          ) -> tuple[float | None, float | None]:
    """``(created, updated)`` of a session: the metadata's (one standing for the other
    if it was lost), else its history file's modification time; None where unknown."""
    fields = meta or {}
    updated = fields.get("updated_at", fields.get("created_at"))
    if updated is None and st is not None:
        updated = st.st_mtime
    return fields.get("created_at", updated), updated


def expired(meta: dict[str, Any] | None, now: float) -> bool:
    expires = meta.get("expires_at") if meta else None
    return expires is not None and expires <= now


def wanted(meta: dict[str, Any] | None, query: ListQuery) -> bool:
    """Whether a session passes a listing's owner and metadata filters."""
    if query.owner is None and query.metadata is None:
        return True
    if meta is None:
        return False
    return ((query.owner is None or meta.get("owner") == query.owner)
            and metadata_matches(meta.get("metadata") or {}, query.metadata))


# -- reading and writing -----------------------------------------------------------------


def read_meta(path: Path) -> dict[str, Any] | None:
    """The cleaned metadata file at ``path``, None if it is missing or lost (too large,
    not a JSON object: see above); a link there raises :class:`StoreError`."""
    try:
        # O_NONBLOCK: a FIFO planted there must not hang the read (it is refused below).
        fd = open_nofollow(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if is_link_error(exc, path):
            raise link_error(path) from exc
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_META_BYTES:
            return None
        data = json.loads(pread_all(fd, st.st_size))
    except (OSError, ValueError, RecursionError):
        return None  # torn by a crash: treated as missing, rebuilt by the next write
    finally:
        os.close(fd)
    return clean_meta(data) if isinstance(data, dict) else None


def remove_leftover(lock_fd: int, path: Path) -> None:
    """Remove the temporary file that a killed rewrite of this session's metadata or
    records file (``path`` is either) noted in the session's lock file, held."""
    name = noted_rewrite(lock_fd)
    if name is None:
        return
    stem = path.name.removesuffix(META).removesuffix(RECORDS)
    for target in (stem + META, stem + RECORDS):
        stale = leftover(name, path.with_name(target))
        if stale is not None:
            with contextlib.suppress(OSError):
                stale.unlink()


def write_meta(path: Path, meta: dict[str, Any], lock_fd: int, *,
               sync_dir: bool = False) -> None:
    """Replace the metadata file; ``lock_fd``: the session's lock, held, where the
    temporary file is noted, so the next write removes it if this one is killed.
    Fsynced when it holds session fields (see Durability above); ``sync_dir`` also
    makes the rename durable."""
    remove_leftover(lock_fd, path)
    # A new file is private; an existing one keeps its mode.
    replace_file(path, json.dumps(meta, ensure_ascii=False).encode("utf-8"),
                 durable=has_fields(meta), sync_dir=sync_dir, lock_fd=lock_fd)
