"""Where histories live: file names from session ids, and store directories others
cannot tamper with.

Names. :func:`encode_name` is the ``file://`` store's name for a session (``s_`` plus the
id percent-encoded, or ``h_`` plus its SHA-256 when that is too long): no id can name a
file outside its directory, a hidden file or a reserved one. :func:`history_path` gives
the same name to histories addressed by session id outside a store, so
``FileChatMessageHistory(history_path("sessions", session_id))`` is safe whatever the id
(``f"sessions/{session_id}.jsonl"`` is not: ``../../x`` escapes).

Directories. A store directory is created private (0700, missing parents too, whatever
the umask) and refused when other users may write to it and it is not ours: whoever can
create files there can plant links or fake sessions. Links planted anyway are refused
where files are opened (``O_NOFOLLOW``, see :mod:`._files`).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path
from urllib.parse import unquote

from threadline._errors import InputError, StoreError
from threadline.stores._base import validate_session_id

__all__ = ["MAX_ENCODED", "decode_name", "encode_name", "history_path", "prepare_directory"]

#: Longest percent-encoded name kept readable; longer ids are hashed (255-byte limits).
MAX_ENCODED = 150
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_-")
_SUFFIX = re.compile(r"(?:\.[A-Za-z0-9_-]{1,16}){0,4}")


def encode_name(session_id: str) -> str:
    """The file name stem of a session: reversible and safe on every file system.

    >>> encode_name("Alice/../x")
    's_%41lice%2F%2E%2E%2Fx'
    """
    try:
        raw = session_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError("a session id must be valid Unicode text (no lone surrogates)"
                         ) from exc
    encoded = "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in raw)
    if len(encoded) > MAX_ENCODED:
        return "h_" + hashlib.sha256(raw).hexdigest()
    return "s_" + encoded


def decode_name(stem: str) -> str | None:
    """The session id of an ``s_`` stem; ``None`` for hashed (``h_``) stems."""
    return unquote(stem[2:], errors="strict") if stem.startswith("s_") else None


def history_path(directory: str | os.PathLike[str], session_id: str, *,
                 suffix: str = ".jsonl") -> Path:
    """The file of session ``session_id`` in ``directory``: the ``file://`` store's name
    for it, so no id reaches outside ``directory`` (``..``, ``/``, NUL are encoded).

    >>> history_path("sessions", "../../etc/passwd")
    PosixPath('sessions/s_%2E%2E%2F%2E%2E%2Fetc%2Fpasswd.jsonl')
    >>> FileChatMessageHistory(history_path("sessions", session_id))  # doctest: +SKIP
    """
    if not isinstance(directory, str | os.PathLike):
        raise InputError(f"directory must be a str or a path, got {type(directory).__name__}")
    if "\x00" in os.fspath(directory):
        raise InputError("directory must not contain NUL characters")
    if not isinstance(suffix, str) or not _SUFFIX.fullmatch(suffix):
        raise InputError(f"suffix must be like '.jsonl' or '.json' (dot-separated letters, "
                         f"digits, '_' and '-'), got {suffix!r:.40}")
    return Path(directory) / (encode_name(validate_session_id(session_id)) + suffix)


def _make_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents, each 0700 whatever the umask."""
    missing: list[Path] = []
    path = directory
    while not os.path.lexists(path) and path != path.parent:
        missing.append(path)
        path = path.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue  # made meanwhile by someone else: checked below like any other
        os.chmod(path, 0o700)  # ours, just made: the umask cannot widen or narrow it


def prepare_directory(directory: Path) -> None:
    """Create a store directory (private), or check an existing one is safe to use.

    Refused (:class:`StoreError` saying what to do): a directory other users may write
    to (group- or world-writable) that is not owned by the current user, such as the
    shared temporary folder or a directory in it another user made.
    """
    try:
        _make_dirs(directory)
        st = os.stat(directory)
    except OSError as exc:
        raise StoreError(f"cannot create store directory {str(directory)!r}: "
                         f"{exc.strerror or exc}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError(f"store directory {str(directory)!r} is not a directory")
    if st.st_mode & 0o022 and st.st_uid != os.geteuid():
        raise StoreError(
            f"store directory {str(directory)!r} is writable by other users (mode "
            f"{stat.S_IMODE(st.st_mode):04o}) and owned by another user (uid {st.st_uid}): "
            "they could plant links or sessions in it. Use a directory of your own that "
            "others cannot write to (its owner can run 'chmod 700' on it), or choose "
            "another directory")
