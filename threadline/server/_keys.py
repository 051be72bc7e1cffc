"""API keys: each belongs to a user; stored hashed in the store the server serves.

A key reads ``tl-<key id>-<secret>``: the key id (12 hex digits) names its record, so
checking a key is one record read, never a scan; the secret (32 random bytes,
URL-safe base64) is stored only as its SHA-256 (a random 256-bit secret needs no slow
hash: there is nothing to guess), compared in constant time. The records live in the
reserved session :data:`KEYS_SESSION`, so every server process on one store sees the
same keys: ``threadline keys create alice`` on one machine works on all of them.

Verified keys are remembered for :data:`CACHE_SECONDS` per process, so a revoked key
stops working within that time on every process, without a store read per request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass

from threadline._errors import InputError
from threadline.stores import Store

__all__ = ["CACHE_SECONDS", "KEYS_SESSION", "RESERVED_PREFIX", "ApiKey", "KeyRing",
           "validate_user"]

#: Session ids starting with this are the server's own, never a conversation.
RESERVED_PREFIX = "_threadline"
KEYS_SESSION = "_threadline_keys"
CACHE_SECONDS = 5.0
_RECORD_PREFIX = "key:"
_KEY = re.compile(r"tl-([0-9a-f]{12})-([A-Za-z0-9_\-]{43})")
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+\-]{0,127}")


def validate_user(user: object) -> str:
    """A user name: 1-128 letters, digits and ``_.@+-``, starting with a letter or digit."""
    if not isinstance(user, str) or not _USER.fullmatch(user):
        raise InputError(f"a user name is 1 to 128 letters, digits and _.@+- (starting with "
                         f"a letter or digit), got {user!r:.80}")
    return user


@dataclass(frozen=True)
class ApiKey:
    """What is stored of a key: never the key itself."""

    key_id: str
    user: str
    created_at: float
    digest: str

    def to_bytes(self) -> bytes:
        return json.dumps({"user": self.user, "created_at": self.created_at,
                           "sha256": self.digest}).encode()

    @classmethod
    def from_bytes(cls, key_id: str, raw: bytes) -> ApiKey | None:
        try:
            data = json.loads(raw)
            return cls(key_id, validate_user(data["user"]), float(data["created_at"]),
                       str(data["sha256"]))
        except (ValueError, KeyError, TypeError, InputError):
            return None  # a damaged record grants nothing


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


class KeyRing:
    """The keys of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._verified: dict[str, tuple[str, float]] = {}
        self._any: tuple[bool, float] | None = None

    # -- administration (the command line; sync) ------------------------------------------

    def create(self, user: str) -> tuple[ApiKey, str]:
        """A new key for ``user``: what is stored, and the key (shown once, never stored)."""
        validate_user(user)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(key_id, user, time.time(), _digest(secret))
        self.store.put_records(KEYS_SESSION, {_RECORD_PREFIX + key_id: key.to_bytes()})
        return key, f"tl-{key_id}-{secret}"

    def list(self, user: str | None = None) -> list[ApiKey]:
        keys = [ApiKey.from_bytes(name[len(_RECORD_PREFIX):], raw)
                for name, raw in self.store.scan_records(KEYS_SESSION, _RECORD_PREFIX)]
        return sorted((k for k in keys if k is not None and (user is None or k.user == user)),
                      key=lambda k: (k.user, k.created_at))

    def revoke(self, key_id: str) -> bool:
        """Remove a key (its id, or the whole key); ``True`` if it existed."""
        match = _KEY.fullmatch(key_id)
        key_id = match.group(1) if match else key_id
        if not re.fullmatch(r"[0-9a-f]{12}", key_id):
            raise InputError(f"not a key id (12 hex digits, as `threadline keys list` shows): "
                             f"{key_id!r:.40}")
        name = _RECORD_PREFIX + key_id
        if not self.store.get_records(KEYS_SESSION, [name]):
            return False
        self.store.delete_records(KEYS_SESSION, [name])
        return True

    # -- requests (async) -----------------------------------------------------------------

    async def any(self) -> bool:
        """Whether the store holds any key (then every request needs one)."""
        now = time.monotonic()
        if self._any is not None and now - self._any[1] < CACHE_SECONDS:
            return self._any[0]
        found = bool(await self.store.ascan_records(KEYS_SESSION, _RECORD_PREFIX, limit=1,
                                                    keys_only=True))
        self._any = (found, now)
        return found

    async def user_of(self, token: str) -> str | None:
        """The user a presented key belongs to, or ``None`` for a wrong or revoked key."""
        match = _KEY.fullmatch(token)
        if match is None:
            return None
        now = time.monotonic()
        cached = self._verified.get(token)
        if cached is not None and now - cached[1] < CACHE_SECONDS:
            return cached[0]
        key_id, secret = match.groups()
        raw = (await self.store.aget_records(KEYS_SESSION, [_RECORD_PREFIX + key_id])).get(
            _RECORD_PREFIX + key_id)
        key = ApiKey.from_bytes(key_id, raw) if raw is not None else None
        if key is None or not hmac.compare_digest(key.digest, _digest(secret)):
            self._verified.pop(token, None)
            return None
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[token] = (key.user, now)
        return key.user
