"""Redis key names (pure): the layout of one store's keys and where its namespace ends.

A store's keys all start with its ``key_prefix`` ``P``, which must end with ``:``. A
session's list is ``P{session_id}`` (LangChain's name for it); the store's own keys put a
NUL after ``P`` (``P\\0sessions``, ``P\\0meta\\0{id}``...), which no session id and no
prefix holds, so nobody else can name them. A session's records are two such keys
(:meth:`Keys.records`): they are this store's alone, whatever its list's standing. The
per-owner sets (:meth:`Keys.owner_recent`, :meth:`Keys.owner_ids`) end with the owner,
which holds no NUL either (``check_owner``), after a NUL-terminated family name: no owner
can name another family's key, nor another owner's.

Only a list's name can be shared: with prefixes ``t1:`` and ``t1:admin:``, the key
``t1:admin:x`` is session ``admin:x`` of the first and session ``x`` of the second.
:meth:`Keys.rivals` lists, for a session, every other prefix a threadline store could
have (what :func:`~threadline.stores._base.validate_key_prefix` accepts, ending with
``:``) whose namespace holds the same list: the prefixes its key starts with that end at
one of its ``:``. A session with no rival (the usual case: a prefix with one ``:``, at
its end, and an id without ``:``) is this store's alone; the others are settled by the
scripts of :mod:`threadline.stores.redis._scripts` (see :mod:`threadline.stores.redis`).
"""

from __future__ import annotations

from dataclasses import dataclass

from threadline._errors import ConfigurationError, InputError
from threadline.stores._base import validate_key_prefix, validate_session_id

__all__ = ["DEFAULT_PREFIX", "Keys", "Rival", "check_prefix", "sid_bytes", "text"]

#: LangChain's default ``key_prefix``.
DEFAULT_PREFIX = "message_store:"

#: How far into a key rivals are looked for: beyond any prefix validate_key_prefix
#: accepts (at most 128 characters; a test checks it), so none is missed.
RIVAL_REACH = 256


def check_prefix(prefix: object) -> str:
    """The ``key_prefix`` option: a prefix :func:`validate_key_prefix` accepts, not
    empty and ending with ``:``; else a :class:`ConfigurationError` saying why."""
    value = validate_key_prefix(prefix)
    if not value:
        raise ConfigurationError(
            "key_prefix must not be empty: without a prefix, session ids would name any key "
            f"of the database, another application's too; use for example 'chat:' (or "
            f"LangChain's {DEFAULT_PREFIX!r})")
    if not value.endswith(":"):
        raise ConfigurationError(
            f"key_prefix must end with ':', got {value!r}: the ':' is where one store's keys "
            f"end, so stores whose prefixes start alike stay apart; use {value + ':'!r}")
    return value


def sid_bytes(session_id: str) -> bytes:
    # validate_session_id refuses lone surrogates: every id it accepts is valid UTF-8.
    return validate_session_id(session_id).encode("utf-8")


def text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


def _could_be_prefix(raw: bytes) -> bool:
    """Whether a threadline store could have ``raw`` as its key prefix."""
    try:
        return raw.isascii() and bool(check_prefix(raw.decode("ascii")))
    except (InputError, ConfigurationError):
        return False


@dataclass(frozen=True, slots=True)
class Rival:
    """Another prefix whose namespace holds a session's list: its list is this rival's
    session ``sid`` too; ``longer``: the rival's prefix is longer than ours."""

    keys: Keys
    sid: bytes
    longer: bool


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: bytes

    @property
    def index(self) -> bytes:
        return self.prefix + b"\x00sessions"

    @property
    def schema(self) -> bytes:
        return self.prefix + b"\x00schema"

    def anchor(self, sid: bytes) -> bytes:
        """The fourth key of a session's script: the index, which its ownership check
        reads when the session has rivals."""
        return self.index

    def messages(self, sid: bytes) -> bytes:
        return self.prefix + sid

    @property
    def meta_prefix(self) -> bytes:
        return self.prefix + b"\x00meta\x00"

    def meta(self, sid: bytes) -> bytes:
        return self.meta_prefix + sid

    @property
    def ids_prefix(self) -> bytes:
        return self.prefix + b"\x00ids\x00"

    def ids(self, sid: bytes) -> bytes:
        return self.ids_prefix + sid

    @property
    def recent(self) -> bytes:
        """A sorted set of session ids scored by their ``updated_at`` (epoch seconds)."""
        return self.prefix + b"\x00recent"

    @property
    def owner_heads(self) -> tuple[bytes, bytes]:
        """Where an owner's two sets start; the scripts append the owner they read."""
        return self.prefix + b"\x00orecent\x00", self.prefix + b"\x00oids\x00"

    def owner_recent(self, owner: str) -> bytes:
        """An owner's sessions scored by ``updated_at`` (as :attr:`recent`)."""
        return self.owner_heads[0] + owner.encode("utf-8")

    def owner_ids(self, owner: str) -> bytes:
        """An owner's session ids, all scored 0 (as :attr:`index`, listed by id)."""
        return self.owner_heads[1] + owner.encode("utf-8")

    def records(self, sid: bytes) -> tuple[bytes, bytes]:
        """The session's records: a hash of values by record key, and a sorted set of
        the record keys, all scored 0 (so ZRANGEBYLEX scans them in byte order)."""
        return self.prefix + b"\x00rec\x00" + sid, self.prefix + b"\x00reckeys\x00" + sid

    def session(self, sid: bytes) -> tuple[bytes, bytes, bytes]:
        """Every key of one session: list, metadata, id set."""
        return self.messages(sid), self.meta(sid), self.ids(sid)

    def rivals(self, sid: bytes) -> list[Rival]:
        """The other prefixes a threadline store could have whose namespace holds this
        session's list (shorter ones first); none for most sessions."""
        key = self.messages(sid)
        found: list[Rival] = []
        end = key.find(b":")
        while 0 <= end < min(len(key) - 1, RIVAL_REACH):  # the rival's id is not empty
            cut = end + 1
            if cut != len(self.prefix) and _could_be_prefix(key[:cut]):
                found.append(Rival(Keys(key[:cut]), key[cut:], cut > len(self.prefix)))
            end = key.find(b":", cut)
        return found
