"""The store contract every backend implements, and the per-session history view.

A :class:`Store` owns the connections (one pool per store) and holds the messages of
many sessions. Backends implement a small set of primitives — append a batch, read the
last N, list, describe, expire and delete sessions — each in one round trip where the
backend allows. Everything users touch per conversation is a :class:`StoreHistory`, a
light view (store + session id) that is a :class:`~threadline.BaseChatMessageHistory`,
so ``store.history`` can be passed straight to ``RunnableWithMessageHistory``.

Session ids are data: any non-empty string without NUL characters, up to
:data:`MAX_SESSION_ID_LENGTH` characters (:mod:`threadline.stores._checks`). Backends must
bind them as parameters (never format them into SQL or file names unescaped) and must not
truncate or fold them.

Messages are stored as LangChain message dicts encoded as compact JSON text
(:mod:`threadline.stores._codec`). What a session carries beside its messages (title,
metadata, owner, fork parent), listing orders, search, fork and retention are specified in
:mod:`threadline.stores._sessions`; this module holds the ``Store`` methods, with portable
defaults a backend replaces where it can do better.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple, ParamSpec, TypeVar

from threadline._concurrency import run_sync
from threadline._errors import (
    ConfigurationError,
    InputError,
)
from threadline.core._history import BaseChatMessageHistory, refuse_langchain_reader
from threadline.messages._convert import check_messages, with_ids
from threadline.messages._values import BaseMessage
from threadline.stores._checks import (
    MAX_LAST,
    MAX_PAGE_LIMIT,
    MAX_SESSION_ID_LENGTH,
    check_last,
    check_limit,
    check_message_size,
    session_key,
    validate_identifier,
    validate_key_prefix,
    validate_session_id,
    validate_ttl,
)
from threadline.stores._codec import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_MESSAGE_CHARS,
    decode_message,
    decode_messages,
    encode_message,
    stream_pages,
)
from threadline.stores._sessions import (
    UNSET,
    Order,
    SearchHit,
    SessionChanges,
    StoreStats,
    _Unset,
    check_fork_point,
    check_page_args,
    check_search_args,
    check_session_update,
    scan_search,
)
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

P = ParamSpec("P")
T = TypeVar("T")

_NO_METADATA: Mapping[str, str] = MappingProxyType({})


class SessionInfo(NamedTuple):
    """What a store knows about one session. Times are timezone-aware (UTC).

    ``title``, ``metadata`` and ``owner`` are set by :meth:`Store.update_session`;
    ``parent`` and ``fork_point`` by :meth:`Store.fork` (see
    :mod:`threadline.stores._sessions`)."""

    session_id: str
    message_count: int
    created_at: datetime | None
    updated_at: datetime | None
    expires_at: datetime | None = None
    title: str | None = None
    metadata: Mapping[str, str] = _NO_METADATA
    owner: str | None = None
    parent: str | None = None
    fork_point: int | None = None


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
    them in a worker thread (local backends run the short ones inline, see
    :meth:`_offload`), and backends with native async drivers override them.
    ``ttl`` (seconds) is the store's default time to live of a session, refreshed by
    every append; a session's own ``ttl`` (``store.history(sid, ttl=...)``) wins.
    """

    #: URL options every backend of this class accepts, name -> type.
    OPTIONS: ClassVar[dict[str, Any]] = {"ttl": float, "max_message_bytes": int,
                                         "max_age": float, "max_sessions": int}

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
        #: The retention policy :meth:`purge_sessions` applies by default: delete sessions
        #: idle for more than ``max_age`` seconds, and all but the ``max_sessions`` most
        #: recently active (``None``: no limit).
        self.max_age: float | None = _positive(self.options.get("max_age"), "max_age")
        self.max_sessions: int | None = _positive(self.options.get("max_sessions"),
                                                  "max_sessions")

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
    def list_sessions(self, *, order: Order = "id", owner: str | None = None,
                      prefix: str = "", metadata: Mapping[str, str] | None = None,
                      limit: int = 100, cursor: str | None = None) -> SessionPage:
        """Session ids, ``limit`` per page: by id (``order="id"``, ascending) or by most
        recent activity (``order="recent"``, newest first); only those of ``owner``,
        starting with ``prefix`` and holding every ``metadata`` pair when given.
        Backends validate with :func:`~threadline.stores._sessions.check_list_args`."""

    @abstractmethod
    def session_info(self, session_id: str) -> SessionInfo | None:
        """Message count, times, title, metadata, owner and parent of a session, or
        ``None`` if it does not exist."""

    def update_session(self, session_id: str, *, title: str | _Unset | None = UNSET,
                       metadata: Mapping[str, str] | _Unset | None = UNSET,
                       owner: str | _Unset | None = UNSET) -> None:
        """Set a session's title, metadata (replaced whole) or owner; arguments not given
        stay as they are, ``None`` clears. A session that does not exist is created,
        empty. The messages are not read. Bad values raise :class:`InputError` before
        anything is stored.

        >>> store = open_store("memory://")
        >>> store.update_session("s1", title="Trip to Oslo", metadata={"lang": "en"})
        >>> store.session_info("s1").title
        'Trip to Oslo'
        """
        validate_session_id(session_id)
        changes = check_session_update(title, metadata, owner)
        self._update_session(session_id, changes)

    def _update_session(self, session_id: str, changes: SessionChanges) -> None:
        """Store the validated ``changes.given()`` fields of a session (creating it if
        needed), in one round trip where the backend allows."""
        raise ConfigurationError(
            f"the {self.url.scheme}:// store keeps no session titles or metadata")

    def search(self, query: str, *, owner: str | None = None,
               limit: int = 20) -> list[SearchHit]:
        """Messages whose text holds every word of ``query`` (whole words, any case),
        across the store's sessions (only ``owner``'s if given): a
        :class:`~threadline.stores._sessions.SearchHit` per message, at most ``limit``.
        Backends with a full-text index use it; this default reads the most recently
        active sessions (see :mod:`threadline.stores._sessions`)."""
        terms = check_search_args(query, owner, limit)
        return scan_search(self, terms, owner, limit)

    def fork(self, session_id: str, new_session_id: str, *,
             at: int | None = None) -> SessionInfo:
        """A new session holding the first ``at`` messages (default: all) of
        ``session_id``, with its title, metadata and owner, and ``parent`` /
        ``fork_point`` naming where it came from. Records (e.g. LangGraph checkpoints)
        are not copied. :class:`InputError` if the source does not exist, the new id
        is taken, or ``at`` is more than the source holds.

        The metadata is written first, then the messages in pages: the fork is owned
        before it holds anything."""
        validate_session_id(new_session_id)
        source = self._fork_source(session_id, new_session_id, at)
        count = source.message_count if at is None else at
        self._update_session(new_session_id, _fork_changes(source, count))
        batch: list[BaseMessage] = []
        for index, message in enumerate(self.iter_messages(session_id)):
            if index >= count:
                break
            batch.append(message)
            if len(batch) == 500:
                self.append(new_session_id, batch)
                batch = []
        if batch:
            self.append(new_session_id, batch)
        info = self.session_info(new_session_id)
        assert info is not None
        return info

    def _fork_source(self, session_id: str, new_session_id: str,
                     at: int | None) -> SessionInfo:
        """Check a fork's arguments: the source's info."""
        validate_session_id(session_id)
        validate_session_id(new_session_id)
        at = check_fork_point(at)
        if session_id == new_session_id:
            raise InputError("a fork needs a new session id, not the session's own")
        source = self.session_info(session_id)
        if source is None:
            raise InputError(f"cannot fork {session_id!r:.80}: no such session")
        if at is not None and at > source.message_count:
            raise InputError(f"cannot fork {session_id!r:.80} at {at}: it holds "
                             f"{source.message_count} messages")
        if self.session_info(new_session_id) is not None:
            raise InputError(f"cannot fork into {new_session_id!r:.80}: that session "
                             "already exists")
        return source

    def stats(self) -> StoreStats:
        """How many sessions and messages the store holds (bytes where the backend knows).
        This default reads every session's info; backends count in one query."""
        sessions = messages = 0
        for session_id in self.iter_sessions():
            info = self.session_info(session_id)
            if info is not None:
                sessions += 1
                messages += info.message_count
        return StoreStats(sessions, messages)

    def purge_sessions(self, *, max_age: float | None = None,
                       max_sessions: int | None = None, owner: str | None = None,
                       dry_run: bool = False) -> list[str]:
        """Apply a retention policy: delete the sessions idle for more than ``max_age``
        seconds and all but the ``max_sessions`` most recently active (of ``owner`` if
        given); the store's ``max_age`` / ``max_sessions`` options are the defaults.
        Expired sessions are purged too. Returns the ids deleted (would be, with
        ``dry_run``)."""
        max_age = _positive(max_age, "max_age") or self.max_age
        max_sessions = _positive(max_sessions, "max_sessions") or self.max_sessions
        # the cutoff is taken as the call starts: the expiry sweep below can take a while,
        # and a cutoff taken after it would reach sessions younger than max_age
        cutoff = None if max_age is None else datetime.now(UTC) - timedelta(seconds=max_age)
        if not dry_run:
            self.purge_expired()
        if max_age is None and max_sessions is None:
            return []
        doomed: list[str] = []
        old = False
        for index, session_id in enumerate(self.iter_sessions(order="recent", owner=owner)):
            if max_sessions is not None and index >= max_sessions:
                doomed.append(session_id)
                continue
            if cutoff is not None and not old:
                info = self.session_info(session_id)
                old = info is not None and info.updated_at is not None \
                    and info.updated_at < cutoff
            if old:
                doomed.append(session_id)
        if not dry_run:
            for session_id in doomed:
                self.delete_session(session_id)
        return doomed

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

    #: The async methods do their own I/O on an event loop (a native async driver). When
    #: ``False`` each one is its sync twin, run by :meth:`_offload` (in a worker thread
    #: unless the backend runs short calls inline), so a caller that needs several calls
    #: at once saves hops by making them together in one thread.
    native_async: ClassVar[bool] = False

    async def _offload(self, func: Callable[P, T], /, *args: P.args,
                       **kwargs: P.kwargs) -> T:
        """Run the sync twin of a one-round-trip method (append, read the last N, one
        session's info or records) for its async method: in a worker thread. Local
        backends whose calls are short and never wait run them on the loop's thread
        instead (:func:`~threadline._concurrency.run_locked`). Scans (list, search, fork,
        stats, purge) always go to a worker thread."""
        return await run_sync(func, *args, **kwargs)

    async def asetup(self) -> None:
        await self._offload(self.setup)

    async def aappend(self, session_id: str, messages: Sequence[BaseMessage], *,
                      ttl: float | None = None) -> None:
        await self._offload(self.append, session_id, list(messages), ttl=ttl)

    async def aget_messages(self, session_id: str, *, last: int | None = None,
                            skip_invalid: bool = False) -> list[BaseMessage]:
        return await self._offload(self.get_messages, session_id, last=last,
                                   skip_invalid=skip_invalid)

    async def adelete_session(self, session_id: str) -> bool:
        return await self._offload(self.delete_session, session_id)

    async def alist_sessions(self, *, order: Order = "id", owner: str | None = None,
                             prefix: str = "", metadata: Mapping[str, str] | None = None,
                             limit: int = 100, cursor: str | None = None) -> SessionPage:
        return await run_sync(self.list_sessions, order=order, owner=owner, prefix=prefix,
                              metadata=metadata, limit=limit, cursor=cursor)

    async def aupdate_session(self, session_id: str, *,
                              title: str | _Unset | None = UNSET,
                              metadata: Mapping[str, str] | _Unset | None = UNSET,
                              owner: str | _Unset | None = UNSET) -> None:
        await self._offload(self.update_session, session_id, title=title,
                            metadata=metadata, owner=owner)

    async def asearch(self, query: str, *, owner: str | None = None,
                      limit: int = 20) -> list[SearchHit]:
        return await run_sync(self.search, query, owner=owner, limit=limit)

    async def afork(self, session_id: str, new_session_id: str, *,
                    at: int | None = None) -> SessionInfo:
        return await run_sync(self.fork, session_id, new_session_id, at=at)

    async def astats(self) -> StoreStats:
        return await run_sync(self.stats)

    async def apurge_sessions(self, *, max_age: float | None = None,
                              max_sessions: int | None = None, owner: str | None = None,
                              dry_run: bool = False) -> list[str]:
        return await run_sync(self.purge_sessions, max_age=max_age,
                              max_sessions=max_sessions, owner=owner, dry_run=dry_run)

    async def asession_info(self, session_id: str) -> SessionInfo | None:
        return await self._offload(self.session_info, session_id)

    async def aexpire(self, session_id: str, ttl: float | None) -> None:
        await self._offload(self.expire, session_id, ttl)

    async def apurge_expired(self) -> int:
        return await run_sync(self.purge_expired)

    async def aclose(self) -> None:
        await self._offload(self.close)

    # -- records (see threadline.stores._records) ----------------------------------------

    #: The backend keeps records beside sessions (``put_records`` and the others work).
    supports_records: ClassVar[bool] = False

    def _no_records(self) -> ConfigurationError:
        return ConfigurationError(
            f"the {self.url.scheme}:// store keeps no records (needed for LangGraph "
            "checkpoints and summaries); every built-in store keeps them")

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
        if not self.native_async:  # one call of the sync twin, not two
            await self._offload(self.append_with_records, session_id, list(messages),
                                records, ttl=ttl)
            return
        await self.aput_records(session_id, records, ttl=ttl)
        await self.aappend(session_id, messages, ttl=ttl)

    async def aput_records(self, session_id: str, records: Mapping[str, bytes], *,
                           delete: Collection[str] = (), ttl: float | None = None) -> None:
        await self._offload(self.put_records, session_id, records, delete=delete,
                            ttl=ttl)

    async def aget_records(self, session_id: str, keys: Collection[str]) -> dict[str, bytes]:
        return await self._offload(self.get_records, session_id, keys)

    async def ascan_records(self, session_id: str, prefix: str = "", *,
                            after: str | None = None, before: str | None = None,
                            limit: int | None = None, reverse: bool = False,
                            keys_only: bool = False) -> list[tuple[str, bytes]]:
        return await self._offload(self.scan_records, session_id, prefix, after=after,
                                   before=before, limit=limit, reverse=reverse,
                                   keys_only=keys_only)

    async def adelete_records(self, session_id: str, keys: Collection[str] | None = None, *,
                              prefix: str | None = None) -> None:
        await self._offload(self.delete_records, session_id, keys, prefix=prefix)

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

    def iter_sessions(self, prefix: str = "", *, order: Order = "id",
                      owner: str | None = None, metadata: Mapping[str, str] | None = None,
                      page_size: int = 500) -> Iterator[str]:
        """Every session id starting with ``prefix`` (of ``owner``, with ``metadata``), in
        ``order``, page by page."""
        cursor: str | None = None
        while True:
            page = self.list_sessions(order=order, owner=owner, prefix=prefix,
                                      metadata=metadata, limit=page_size, cursor=cursor)
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


def _positive(value: object, name: str) -> Any:
    """``None`` or a positive number (``max_age``, ``max_sessions``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InputError(f"{name} must be a positive number or None, got {value!r:.40}")
    return value


def _fork_changes(source: SessionInfo, count: int) -> SessionChanges:
    return SessionChanges(title=source.title, metadata=dict(source.metadata),
                          owner=source.owner, parent=source.session_id, fork_point=count)


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
