"""Checks every backend applies to what it is given: session ids, names, TTLs, sizes.

Session ids are data: any non-empty string without NUL characters, up to
:data:`MAX_SESSION_ID_LENGTH` characters, valid Unicode. Table names and key prefixes are
identifiers from a small alphabet, validated before any backend quotes them. Re-exported
by :mod:`threadline.stores._base`.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from threadline._errors import InputError

__all__ = [
    "MAX_LAST",
    "MAX_PAGE_LIMIT",
    "MAX_SESSION_ID_LENGTH",
    "check_last",
    "check_limit",
    "check_message_size",
    "session_key",
    "validate_identifier",
    "validate_key_prefix",
    "validate_session_id",
    "validate_ttl",
]

MAX_SESSION_ID_LENGTH = 16_384


def validate_session_id(session_id: object) -> str:
    """The session id if it is acceptable, else an :class:`InputError` saying why."""
    if not isinstance(session_id, str):
        raise InputError(f"a session id must be a str, got {type(session_id).__name__}")
    if not session_id:
        raise InputError("a session id must not be empty")
    if "\x00" in session_id:
        raise InputError("a session id must not contain NUL characters")
    if len(session_id) > MAX_SESSION_ID_LENGTH:
        raise InputError(
            f"a session id may be at most {MAX_SESSION_ID_LENGTH} characters, "
            f"got {len(session_id)}"
        )
    if not session_id.isascii():
        try:
            session_id.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(
                f"a session id must be valid Unicode text; it holds a lone surrogate at "
                f"position {exc.start}") from None
    return session_id


def session_key(*parts: str) -> str:
    """One session id from several keys (user id, conversation id…), without collisions.

    Each part has ``%`` and ``/`` percent-escaped, then the parts are joined with ``/``,
    so ``list_sessions(prefix=session_key(user) + "/")`` lists one user's conversations.
    """
    if not parts:
        raise InputError("a session key needs at least one part")
    for part in parts:
        validate_session_id(part)
    return "/".join(quote(part, safe="") if ("/" in part or "%" in part) else part
                    for part in parts)


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_KEY_PREFIX = re.compile(r"[A-Za-z0-9_:.\-{}]{0,128}")


def validate_identifier(name: object, what: str = "table name") -> str:
    """A SQL identifier we accept: letters, digits and ``_``, at most 63 characters."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise InputError(
            f"invalid {what} {name!r}: use letters, digits and '_' (not first), "
            "at most 63 characters"
        )
    return name


def validate_key_prefix(prefix: object) -> str:
    """A key prefix we accept: letters, digits and ``_:.-{}``, at most 128 characters."""
    if not isinstance(prefix, str) or not _KEY_PREFIX.fullmatch(prefix):
        raise InputError(
            f"invalid key prefix {prefix!r}: use letters, digits and '_:.-{{}}', "
            "at most 128 characters"
        )
    return prefix


def validate_ttl(ttl: object) -> float | None:
    """``None`` (never expires) or a positive number of seconds."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0:
        raise InputError(f"ttl must be a positive number of seconds or None, got {ttl!r}")
    return float(ttl)


def check_message_size(size: int, limit: int, what: str) -> None:
    """Refuse, before anything is sent, one stored message larger than a backend allows:
    an :class:`InputError` naming the limit and the size (``what`` names the limit,
    e.g. "DynamoDB's 400 KB item limit")."""
    if size > limit:
        raise InputError(
            f"a message of {size:,} bytes is larger than {what} ({limit:,} bytes); "
            "nothing was stored")


#: The largest ``limit`` of one page of ``list_sessions``.
MAX_PAGE_LIMIT = 10_000
#: The largest ``last`` a read accepts (more than any session holds).
MAX_LAST = 2**31 - 1


def check_limit(limit: object) -> int:
    """A page size: an int from 1 to :data:`MAX_PAGE_LIMIT`, else :class:`InputError`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_LIMIT:
        raise InputError(f"limit must be an int from 1 to {MAX_PAGE_LIMIT:,}, got {limit!r:.40}")
    return limit


def check_last(last: object) -> int | None:
    """``None`` (all) or how many of the newest messages to read: 0 to :data:`MAX_LAST`."""
    if last is None:
        return None
    if isinstance(last, bool) or not isinstance(last, int) or not 0 <= last <= MAX_LAST:
        raise InputError(f"last must be None or an int from 0 to {MAX_LAST:,}, got {last!r:.40}")
    return last
