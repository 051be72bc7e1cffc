"""The store contract every backend implements, and the per-session history view.

A :class:`Store` owns the connections (one pool per store) and holds the messages of
many sessions. Backends implement a small set of primitives — append a batch, read the
last N, list, describe, expire and delete sessions — each in one round trip where the
backend allows. Everything users touch per conversation is a :class:`StoreHistory`, a
light view (store + session id) that is a :class:`~threadline.BaseChatMessageHistory`,
so ``store.history`` can be passed straight to ``RunnableWithMessageHistory``.

Session ids are data: any non-empty string without NUL characters, up to
:data:`MAX_SESSION_ID_LENGTH` characters. Backends must bind them as parameters (never
format them into SQL or file names unescaped) and must not truncate or fold them.

Messages are stored as LangChain message dicts encoded as compact JSON text
(:func:`encode_message` / :func:`decode_message`).
"""

from __future__ import annotations

import json
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, NamedTuple
from urllib.parse import quote

from threadline._concurrency import run_sync
from threadline._errors import (
    ConfigurationError,
    InputError,
    MessageFormatError,
    SkippedMessageWarning,
)
from threadline.core._history import BaseChatMessageHistory, refuse_langchain_reader
from threadline.messages._convert import check_messages, not_a_message, with_ids
from threadline.messages._serialization import message_from_dict, message_to_dict
from threadline.messages._values import BaseMessage
from threadline.stores._url import StoreURL, parse_options

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MAX_LAST",
    "MAX_MESSAGE_CHARS",
    "MAX_PAGE_LIMIT",
    "MAX_SESSION_ID_LENGTH",
    "SessionInfo",
    "SessionPage",
    "Store",
    "StoreHistory",
    "check_last",
    "check_limit",
    "check_message_size",
    "check_messages",
    "check_page_args",
    "decode_message",
    "decode_messages",
    "encode_message",
    "session_key",
    "stream_pages",
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


def check_page_args(prefix: object, limit: object, cursor: object) -> None:
    """Validate ``list_sessions`` arguments the same way in every backend."""
    if not isinstance(prefix, str) or "\x00" in prefix:
        raise InputError(f"prefix must be a str without NUL characters, got {prefix!r:.80}")
    check_limit(limit)
    if cursor is not None and not isinstance(cursor, str):
        raise InputError(f"cursor must be a str from a previous page or None, got {cursor!r:.80}")


#: The longest message (in characters, as JSON) threadline stores and decodes.
MAX_MESSAGE_CHARS = 64 * 1024 * 1024
#: The largest message an append accepts by default (UTF-8 bytes of its JSON); a store's
#: ``max_message_bytes`` option changes it (up to MAX_MESSAGE_CHARS).
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

# One encoder for all: json.dumps() with keyword arguments builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_message(message: BaseMessage) -> str:
    """Compact JSON text of the message's LangChain dict. A message longer than
    :data:`MAX_MESSAGE_CHARS` once encoded (it could not be read back) is refused."""
    if not isinstance(message, BaseMessage):
        raise not_a_message(message)
    text = _ENCODER.encode(message_to_dict(message))
    if len(text) > MAX_MESSAGE_CHARS:
        raise InputError(
            f"a message of {len(text):,} characters (as JSON) is longer than the "
            f"{MAX_MESSAGE_CHARS:,} threadline stores and reads back; nothing was stored")
    return text


def decode_message(text: str | bytes) -> BaseMessage:
    """The message stored as ``text`` by :func:`encode_message` (or by LangChain).

    Raises :class:`MessageFormatError` (never another error) for anything else: text
    that is not JSON, JSON nested deeper than the parser's recursion limit, a row longer
    than :data:`MAX_MESSAGE_CHARS`, a dict that is not a message.
    """
    if not isinstance(text, str | bytes):
        raise MessageFormatError(f"a stored message must be text, got {type(text).__name__}")
    if len(text) > MAX_MESSAGE_CHARS:
        raise MessageFormatError(
            f"a stored message is {len(text):,} characters long, more than the "
            f"{MAX_MESSAGE_CHARS:,} threadline reads")
    try:
        data = json.loads(text)
    except RecursionError as exc:
        raise MessageFormatError("a stored message is JSON nested too deeply to read") from exc
    except ValueError as exc:  # also UnicodeDecodeError
        raise MessageFormatError(f"a stored message is not valid JSON: {exc}") from exc
    return message_from_dict(data)


def decode_messages(texts: Sequence[str | bytes], *, session_id: str | None = None,
                    skip_invalid: bool = False, from_end: bool = False,
                    start: int = 0) -> list[BaseMessage]:
    """Many stored messages at once, oldest first: one ``json.loads`` over the rows joined
    into an array (half the cost of parsing row by row); row by row when that fails.

    A bad row raises :class:`MessageFormatError` naming ``session_id`` and the row's
    position (counted back from the newest if ``from_end``: a read of the last N; else
    from ``start``, the session index of the first row, for a page of a longer read). With
    ``skip_invalid=True`` bad rows are left out instead, each reported by a
    :class:`SkippedMessageWarning`.
    """
    if not texts:
        return []
    joined: str | bytes | None = None
    if all(type(t) is str for t in texts):
        joined = "[" + ",".join(texts) + "]"  # type: ignore[arg-type]
    elif all(type(t) is bytes for t in texts):
        joined = b"[" + b",".join(texts) + b"]"  # type: ignore[arg-type]
    if joined is not None and len(joined) <= MAX_MESSAGE_CHARS:
        try:
            items = json.loads(joined)
        except (ValueError, RecursionError):
            items = None
        if isinstance(items, list) and len(items) == len(texts):
            try:
                return [message_from_dict(item) for item in items]
            except MessageFormatError:
                pass  # decoded again below, row by row, to name the bad one
    return _decode_rows(texts, session_id, skip_invalid, from_end, start)


def _decode_rows(texts: Sequence[str | bytes], session_id: str | None, skip_invalid: bool,
                 from_end: bool, start: int) -> list[BaseMessage]:
    messages: list[BaseMessage] = []
    for index, text in enumerate(texts):
        try:
            messages.append(decode_message(text))
        except MessageFormatError as exc:
            error = exc.located(session_id, index - len(texts) if from_end else start + index)
            if not skip_invalid:
                raise error from exc
            warnings.warn(SkippedMessageWarning(error), stacklevel=3)
    return messages


#: ``fetch(cursor)``: the stored texts of one page and the cursor of the next page
#: (``None``: that page was the last); the first call gets ``None``.
PageFetcher = Callable[[Any], tuple[Sequence[str | bytes], Any]]


def stream_pages(fetch: PageFetcher, *, session_id: str,
                 skip_invalid: bool) -> Iterator[BaseMessage]:
    """A session's messages read page by page with ``fetch``, oldest first (how backends
    implement :meth:`Store.iter_messages`): only one page is held (its texts and
    messages) at a time, nothing is read before the first message is asked for, and a bad
    row is named by its index in the session."""
    cursor: Any = None
    start = 0
    while True:
        texts, cursor = fetch(cursor)
        page = decode_messages(texts, session_id=session_id, skip_invalid=skip_invalid,
                               start=start)
        start += len(texts)
        del texts  # the rows are not kept while their messages are handed out
        yield from page
        if cursor is None:
            return


class SessionInfo(NamedTuple):
    """What a store knows about one session. Times are timezone-aware (UTC)."""

    session_id: str
    message_count: int
    created_at: datetime | None
    updated_at: datetime | None
    expires_at: datetime | None = None


class SessionPage:
    """One page of session ids, sorted; pass ``next_cursor`` to get the next page.

    Iterating a page yields its session ids, so ``for sid in store.list_sessions()``
    does the obvious thing (on the first page; :meth:`Store.iter_sessions` walks them all).

    >>> page = SessionPage(["a", "b"], "b")
    >>> list(page), len(page), page.next_cursor
    (['a', 'b'], 2, 'b')
    """

    __slots__ = ("next_cursor", "session_ids")

    def __init__(self, session_ids: list[str], next_cursor: str | None) -> None:
        self.session_ids = session_ids
        self.next_cursor = next_cursor

    def __iter__(self) -> Iterator[str]:
        return iter(self.session_ids)

    def __len__(self) -> int:
        return len(self.session_ids)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self.session_ids

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SessionPage):
            return NotImplemented
        return (self.session_ids, self.next_cursor) == (other.session_ids, other.next_cursor)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SessionPage(session_ids={self.session_ids!r}, next_cursor={self.next_cursor!r})"


class Store(ABC):
    """Base class of store backends.

    A backend implements the abstract sync primitives; the async ones default to running
    them in a worker thread, and backends with native async drivers override them.
    ``ttl`` (seconds) is the store's default time to live of a session, refreshed by
    every append; a session's own ``ttl`` (``store.history(sid, ttl=...)``) wins.
    """

    #: URL options every backend of this class accepts, name -> type.
    OPTIONS: ClassVar[dict[str, Any]] = {"ttl": float, "max_message_bytes": int}

    url: StoreURL
    ttl: float | None
    options: dict[str, Any]

    def __init__(self, url: StoreURL | str, **options: Any) -> None:
        """Parse the URL and options against :attr:`OPTIONS`; backends call this first
        and connect lazily (opening a store must not block on the server)."""
        self.url = StoreURL.parse(url)
        self.options = parse_options(self.url, options, self.OPTIONS)
        self.ttl = validate_ttl(self.options.get("ttl"))
        limit = self.options.get("max_message_bytes")
        if limit is not None and not 1 <= limit <= MAX_MESSAGE_CHARS:
            raise ConfigurationError(
                f"max_message_bytes must be from 1 to {MAX_MESSAGE_CHARS:,}, got {limit}")
        #: The largest message (UTF-8 bytes of its JSON) an append accepts.
        self.max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES if limit is None else limit

    def check_sizes(self, encoded: Sequence[str]) -> None:
        """Refuse (:class:`InputError`, before anything is sent) a batch holding a message
        whose JSON is larger than :attr:`max_message_bytes`. Costs a length check per
        message; only messages near the limit are measured in bytes."""
        limit = self.max_message_bytes
        for text in encoded:
            if len(text) * 4 > limit:  # at most 4 UTF-8 bytes per character
                check_message_size(len(text.encode("utf-8", "surrogatepass")), limit,
                                   "the store's max_message_bytes")

    # -- the backend contract ------------------------------------------------------------

    @abstractmethod
    def setup(self) -> None:
        """Create or migrate the schema; idempotent. Backends also run it once per
        process lazily before first use, never once per history object."""

    @abstractmethod
    def append(self, session_id: str, messages: Sequence[BaseMessage], *,
               ttl: float | None = None) -> None:
        """Append messages to a session in one round trip / transaction, in order: all of
        them or none. ``ttl`` overrides the store's default; the expiry is refreshed on
        each append.

        Idempotent for messages with an ``id``: a message whose id the session already
        holds is not stored again (so retrying an append whose answer was lost stores
        nothing twice). A message too large for the backend raises :class:`InputError`
        naming the limit before anything is sent."""

    @abstractmethod
    def get_messages(self, session_id: str, *, last: int | None = None,
                     skip_invalid: bool = False) -> list[BaseMessage]:
        """The session's messages, oldest first; only the newest ``last`` if given (done
        by the backend: LIMIT / LRANGE, not a full read). Unknown session: ``[]``.

        A stored message that cannot be decoded raises :class:`MessageFormatError`
        naming the session and its position; with ``skip_invalid=True`` it is left out
        and reported by a :class:`SkippedMessageWarning` (see :func:`decode_messages`)."""

    @abstractmethod
    def delete_session(self, session_id: str) -> bool:
        """Delete a session, its messages and its records; ``True`` if it existed."""

    @abstractmethod
    def list_sessions(self, *, prefix: str = "", limit: int = 100,
                      cursor: str | None = None) -> SessionPage:
        """Session ids starting with ``prefix``, sorted, ``limit`` per page."""

    @abstractmethod
    def session_info(self, session_id: str) -> SessionInfo | None:
        """Message count and times of a session, or ``None`` if it does not exist."""

    @abstractmethod
    def expire(self, session_id: str, ttl: float | None) -> None:
        """Set (seconds from now) or clear (``None``) a session's expiry."""

    @abstractmethod
    def purge_expired(self) -> int:
        """Delete expired sessions now; the number deleted (backends whose server
        expires keys by itself return 0)."""

    @abstractmethod
    def close(self) -> None:
        """Close the connections; the store cannot be used afterwards."""

    # -- async twins ---------------------------------------------------------------------

    async def asetup(self) -> None:
        await run_sync(self.setup)

    async def aappend(self, session_id: str, messages: Sequence[BaseMessage], *,
                      ttl: float | None = None) -> None:
        await run_sync(self.append, session_id, list(messages), ttl=ttl)

    async def aget_messages(self, session_id: str, *, last: int | None = None,
                            skip_invalid: bool = False) -> list[BaseMessage]:
        return await run_sync(self.get_messages, session_id, last=last,
                              skip_invalid=skip_invalid)

    async def adelete_session(self, session_id: str) -> bool:
        return await run_sync(self.delete_session, session_id)

    async def alist_sessions(self, *, prefix: str = "", limit: int = 100,
                             cursor: str | None = None) -> SessionPage:
        return await run_sync(self.list_sessions, prefix=prefix, limit=limit, cursor=cursor)

    async def asession_info(self, session_id: str) -> SessionInfo | None:
        return await run_sync(self.session_info, session_id)

    async def aexpire(self, session_id: str, ttl: float | None) -> None:
        await run_sync(self.expire, session_id, ttl)

    async def apurge_expired(self) -> int:
        return await run_sync(self.purge_expired)

    async def aclose(self) -> None:
        await run_sync(self.close)

    # -- records (see threadline.stores._records) ----------------------------------------

    #: The backend keeps records beside sessions (``put_records`` and the others work).
    supports_records: ClassVar[bool] = False

    def _no_records(self) -> ConfigurationError:
        return ConfigurationError(
            f"the {self.url.scheme}:// store keeps no records (needed for LangGraph "
            "checkpoints); use sqlite, postgresql, mysql, redis, dynamodb, cosmos or memory")

    def put_records(self, session_id: str, records: Mapping[str, bytes], *,
                    delete: Collection[str] = (), ttl: float | None = None) -> None:
        """Upsert ``records`` and delete the ``delete`` keys of a session's records, in one
        transaction where the backend has one; see :mod:`threadline.stores._records`."""
        raise self._no_records()

    def get_records(self, session_id: str, keys: Collection[str]) -> dict[str, bytes]:
        """The values of those ``keys`` the session's records hold."""
        raise self._no_records()

    def scan_records(self, session_id: str, prefix: str = "", *, after: str | None = None,
                     before: str | None = None, limit: int | None = None,
                     reverse: bool = False, keys_only: bool = False
                     ) -> list[tuple[str, bytes]]:
        """``(key, value)`` of the session's records whose key starts with ``prefix`` and
        lies strictly between ``after`` and ``before``, in byte order (descending with
        ``reverse``), at most ``limit``; values are ``b""`` with ``keys_only``."""
        raise self._no_records()

    def delete_records(self, session_id: str, keys: Collection[str] | None = None, *,
                       prefix: str | None = None) -> None:
        """Delete those keys, or every key starting with ``prefix``, or (neither given) all
        of the session's records. Its messages stay."""
        raise self._no_records()

    def append_with_records(self, session_id: str, messages: Sequence[BaseMessage],
                            records: Mapping[str, bytes], *, ttl: float | None = None
                            ) -> None:
        """``put_records(session_id, records)`` then ``append(session_id, messages)``, in
        that order (in one round trip where the backend can: PostgreSQL pipelines them),
        so a crash between them leaves the records without the messages (appends are
        idempotent: the caller appends them again), never the reverse."""
        self.put_records(session_id, records, ttl=ttl)
        self.append(session_id, messages, ttl=ttl)

    async def aappend_with_records(self, session_id: str, messages: Sequence[BaseMessage],
                                   records: Mapping[str, bytes], *,
                                   ttl: float | None = None) -> None:
        await self.aput_records(session_id, records, ttl=ttl)
        await self.aappend(session_id, messages, ttl=ttl)

    async def aput_records(self, session_id: str, records: Mapping[str, bytes], *,
                           delete: Collection[str] = (), ttl: float | None = None) -> None:
        await run_sync(self.put_records, session_id, records, delete=delete, ttl=ttl)

    async def aget_records(self, session_id: str, keys: Collection[str]) -> dict[str, bytes]:
        return await run_sync(self.get_records, session_id, keys)

    async def ascan_records(self, session_id: str, prefix: str = "", *,
                            after: str | None = None, before: str | None = None,
                            limit: int | None = None, reverse: bool = False,
                            keys_only: bool = False) -> list[tuple[str, bytes]]:
        return await run_sync(self.scan_records, session_id, prefix, after=after,
                              before=before, limit=limit, reverse=reverse,
                              keys_only=keys_only)

    async def adelete_records(self, session_id: str, keys: Collection[str] | None = None, *,
                              prefix: str | None = None) -> None:
        await run_sync(self.delete_records, session_id, keys, prefix=prefix)

    # -- built on the contract -----------------------------------------------------------

    def history(self, session_id: str | None = None, /, *, ttl: float | None = None,
                **keys: str) -> StoreHistory:
        """The history of one session: ``store.history("abc")``, or with several keys
        ``store.history(user_id="u1", conversation_id="c1")`` (see :func:`session_key`).
        Pass ``store.history`` as ``get_session_history`` to RunnableWithMessageHistory."""
        if session_id is not None and keys:
            raise InputError("give a session id or keyword keys, not both")
        if session_id is None:
            if not keys:
                raise InputError("store.history() needs a session id")
            session_id = session_key(*keys.values())
        return StoreHistory(self, session_id, ttl=ttl)

    def iter_messages(self, session_id: str, *, page_size: int = 1000,
                      skip_invalid: bool = False) -> Iterator[BaseMessage]:
        """The session's messages, oldest first, read ``page_size`` at a time, so memory
        stays flat however long the session is (exports use it). Backends read pages
        with their own cursors; this default reads the whole session at once."""
        check_limit(page_size)
        if skip_invalid:
            yield from self.get_messages(session_id, skip_invalid=True)
        else:  # a store written before skip_invalid existed still works
            yield from self.get_messages(session_id)

    def ping(self) -> None:
        """Check the store is reachable; raises StoreConnectionError (within the connect
        timeout) if not. Backends with a cheaper check override it."""
        self.list_sessions(limit=1)

    def iter_sessions(self, prefix: str = "", *, page_size: int = 500) -> Iterator[str]:
        """Every session id starting with ``prefix``, page by page."""
        cursor: str | None = None
        while True:
            page = self.list_sessions(prefix=prefix, limit=page_size, cursor=cursor)
            yield from page.session_ids
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url.render()!r})"


class StoreHistory(BaseChatMessageHistory):
    """One session of a store, as a chat message history. Cheap to create.

    Every message it writes gets an id (a copy with a UUID4 ``id`` when it has none),
    so what RunnableWithMessageHistory, the memories and the chat store through it can
    be retried without duplicates (appends are idempotent for ids). The LangChain-shaped
    subclasses (``SQLChatMessageHistory``…) store messages as given, as LangChain's do.
    """

    #: Give id-less messages an id before writing them.
    stamp_ids: bool = True

    def __init__(self, store: Store, session_id: str, *, ttl: float | None = None) -> None:
        self.store = store
        self.session_id = validate_session_id(session_id)
        self.ttl = validate_ttl(ttl)

    def get_messages(self, last: int | None = None, *,
                     skip_invalid: bool = False) -> list[BaseMessage]:
        return self.store.get_messages(self.session_id, last=last, skip_invalid=skip_invalid)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        batch = check_messages(messages)
        self.store.append(self.session_id, with_ids(batch) if self.stamp_ids else batch,
                          ttl=self.ttl)

    def clear(self) -> None:
        self.store.delete_session(self.session_id)

    async def aget_messages(self, last: int | None = None, *,
                            skip_invalid: bool = False) -> list[BaseMessage]:
        refuse_langchain_reader(self)
        return await self.store.aget_messages(self.session_id, last=last,
                                              skip_invalid=skip_invalid)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        batch = check_messages(messages)
        await self.store.aappend(self.session_id, with_ids(batch) if self.stamp_ids else batch,
                                 ttl=self.ttl)

    async def aclear(self) -> None:
        await self.store.adelete_session(self.session_id)

    def __repr__(self) -> str:
        return f"StoreHistory({self.store!r}, session_id={self.session_id!r})"
