"""Sessions as objects: titles, metadata, owners, recent-first listing, search and forks.

Pure helpers every backend shares (validation, cursors, search terms and snippets) and
the portable implementations :class:`~threadline.stores._base.Store` falls back on.

What a session carries beside its messages (``store.update_session`` sets them, without
touching the messages; ``store.session_info`` returns them in a ``SessionInfo``):

- ``title``: text of at most :data:`MAX_TITLE_LENGTH` characters, no control characters.
- ``metadata``: at most :data:`MAX_METADATA_KEYS` pairs of strings (keys of at most
  :data:`MAX_METADATA_KEY_LENGTH` characters, values of at most
  :data:`MAX_METADATA_VALUE_LENGTH`), as OpenAI's conversation metadata; anything else
  (nesting, numbers, huge values) is an :class:`InputError` and nothing is stored.
- ``owner``: who the session belongs to (the server's per-user isolation); listings and
  searches can be scoped to one owner.
- ``parent`` / ``fork_point``: set by ``store.fork``, the session it was forked from and
  how many of its messages were copied.

``update_session`` on a session that does not exist creates it, empty (an OpenAI
conversation can be created before it has items). ``updated_at`` is the time of the last
append (or of the creation): renaming a session does not move it in the recent order.

Listing (``list_sessions``) has two orders: ``"id"`` (ascending session id, the cursor is
the last id of the page) and ``"recent"`` (most recent activity first: descending
``updated_at``, ties by descending id; the cursor is opaque, see :func:`recent_cursor`).
Both take ``owner``, ``prefix`` and ``metadata`` (every pair must match) filters.

Search (``store.search(query, owner=, limit=)``): the query's words
(:func:`search_terms`: runs of letters and digits, case-folded, at most
:data:`MAX_SEARCH_TERMS`) must all appear, as whole words, in one message's text. A
backend's full-text index finds candidates; :func:`message_matches` checks each, so every
backend answers the same way, and :func:`make_snippet` cuts the snippet. Without an index
(:func:`scan_search`) the most recently active :data:`SEARCH_SCAN_SESSIONS` sessions are
read, newest first: a documented bound, not a silent cut (``SearchResult.complete``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

from threadline._errors import InputError

if TYPE_CHECKING:
    from threadline.messages._values import BaseMessage
    from threadline.stores._base import Store

__all__ = [
    "MAX_METADATA_KEYS",
    "MAX_METADATA_KEY_LENGTH",
    "MAX_METADATA_VALUE_LENGTH",
    "MAX_OWNER_LENGTH",
    "MAX_SEARCH_LIMIT",
    "MAX_SEARCH_QUERY_LENGTH",
    "MAX_SEARCH_TERMS",
    "MAX_TITLE_LENGTH",
    "ORDERS",
    "SEARCH_SCAN_SESSIONS",
    "UNSET",
    "ListQuery",
    "Order",
    "SearchHit",
    "SessionChanges",
    "StoreStats",
    "check_fork_point",
    "check_list_args",
    "check_metadata",
    "check_owner",
    "check_page_args",
    "check_search_args",
    "check_session_update",
    "check_title",
    "decode_recent_cursor",
    "make_snippet",
    "message_matches",
    "message_text",
    "metadata_matches",
    "recent_cursor",
    "scan_search",
    "search_terms",
]

MAX_TITLE_LENGTH: Final = 512
MAX_METADATA_KEYS: Final = 16
MAX_METADATA_KEY_LENGTH: Final = 64
MAX_METADATA_VALUE_LENGTH: Final = 512
MAX_OWNER_LENGTH: Final = 256
MAX_SEARCH_QUERY_LENGTH: Final = 1_000
MAX_SEARCH_TERMS: Final = 16
MAX_SEARCH_LIMIT: Final = 1_000
_MAX_PAGE_LIMIT: Final = 10_000  # = stores._base.MAX_PAGE_LIMIT
#: How many of the most recently active sessions a search without an index reads.
SEARCH_SCAN_SESSIONS: Final = 1_000

Order = Literal["id", "recent"]
ORDERS: Final = ("id", "recent")


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


#: "Leave this field as it is" (the default of ``update_session``'s arguments).
UNSET: Final = _Unset()


def _control(text: str) -> int:
    """The index of the first control character (or lone surrogate), else -1."""
    for index, char in enumerate(text):
        if unicodedata.category(char) in ("Cc", "Cs"):
            return index
    return -1


def check_title(title: object) -> str | None:
    """``None`` (no title) or one line of text of at most :data:`MAX_TITLE_LENGTH`."""
    if title is None:
        return None
    if not isinstance(title, str):
        raise InputError(f"a title must be a str or None, got {type(title).__name__}")
    if len(title) > MAX_TITLE_LENGTH:
        raise InputError(f"a title may be at most {MAX_TITLE_LENGTH} characters, "
                         f"got {len(title):,}")
    if (index := _control(title)) >= 0:
        raise InputError(f"a title must not hold control characters "
                         f"({title[index]!r} at position {index})")
    return title


def _check_text(value: object, what: str, limit: int, *, empty: bool) -> str:
    if not isinstance(value, str):
        raise InputError(f"{what} must be a str, got {type(value).__name__}")
    if not value and not empty:
        raise InputError(f"{what} must not be empty")
    if len(value) > limit:
        raise InputError(f"{what} may be at most {limit} characters, got {len(value):,}")
    if "\x00" in value:
        raise InputError(f"{what} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{what} must be valid Unicode text (it holds a lone "
                         "surrogate)") from None
    return value


def check_metadata(metadata: object) -> dict[str, str] | None:
    """``None`` (none) or a copy of a small mapping of strings to strings; anything
    else is an :class:`InputError` that says what is accepted."""
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise InputError(f"metadata must be a mapping of str to str or None, "
                         f"got {type(metadata).__name__}")
    if len(metadata) > MAX_METADATA_KEYS:
        raise InputError(f"metadata may hold at most {MAX_METADATA_KEYS} keys, "
                         f"got {len(metadata):,}")
    checked: dict[str, str] = {}
    for key, value in metadata.items():
        _check_text(key, "a metadata key", MAX_METADATA_KEY_LENGTH, empty=False)
        if not isinstance(value, str):
            raise InputError(f"metadata values must be str (nothing nested), got "
                             f"{type(value).__name__} for key {key!r:.80}")
        _check_text(value, f"the metadata value of {key!r:.80}", MAX_METADATA_VALUE_LENGTH,
                    empty=True)
        checked[key] = value
    return checked


def check_owner(owner: object) -> str | None:
    """``None`` (no owner) or a non-empty owner id of at most :data:`MAX_OWNER_LENGTH`."""
    if owner is None:
        return None
    return _check_text(owner, "an owner", MAX_OWNER_LENGTH, empty=False)


def check_fork_point(at: object) -> int | None:
    """``None`` (copy every message) or how many of the first messages to copy."""
    if at is None:
        return None
    if isinstance(at, bool) or not isinstance(at, int) or at < 0:
        raise InputError(f"at must be None or an int of at least 0, got {at!r:.40}")
    return at


class SessionChanges(NamedTuple):
    """The fields an ``update_session`` sets; :data:`UNSET` ones stay as they are.
    ``metadata=None`` and ``{}`` both mean "no metadata"."""

    title: str | _Unset | None = UNSET
    metadata: dict[str, str] | _Unset | None = UNSET
    owner: str | _Unset | None = UNSET
    parent: str | _Unset | None = UNSET
    fork_point: int | _Unset | None = UNSET

    def given(self) -> dict[str, Any]:
        """The fields to set, by name (metadata ``None`` as ``{}``)."""
        fields = {name: value for name, value in self._asdict().items()
                  if not isinstance(value, _Unset)}
        if "metadata" in fields and fields["metadata"] is None:
            fields["metadata"] = {}
        return fields


def check_session_update(title: object = UNSET, metadata: object = UNSET,
                         owner: object = UNSET) -> SessionChanges:
    """Validate ``update_session``'s arguments (all of them, before anything is stored)."""
    return SessionChanges(
        title=title if isinstance(title, _Unset) else check_title(title),
        metadata=metadata if isinstance(metadata, _Unset) else check_metadata(metadata),
        owner=owner if isinstance(owner, _Unset) else check_owner(owner),
    )


def check_page_args(prefix: object, limit: object, cursor: object) -> None:
    """Validate ``list_sessions`` arguments the same way in every backend."""
    if not isinstance(prefix, str) or "\x00" in prefix:
        raise InputError(f"prefix must be a str without NUL characters, got {prefix!r:.80}")
    if not prefix.isascii():
        try:
            prefix.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no session id holds one
            raise InputError(f"prefix must be valid Unicode text (a lone surrogate is not), "
                             f"got {prefix!r:.80}") from None
    if (isinstance(limit, bool) or not isinstance(limit, int)
            or not 1 <= limit <= _MAX_PAGE_LIMIT):
        raise InputError(f"limit must be an int from 1 to {_MAX_PAGE_LIMIT:,}, "
                         f"got {limit!r:.40}")
    if cursor is not None and not isinstance(cursor, str):
        raise InputError(f"cursor must be a str from a previous page or None, got {cursor!r:.80}")


@dataclass(frozen=True, slots=True)
class ListQuery:
    """Validated ``list_sessions`` arguments."""

    order: Order
    owner: str | None
    prefix: str
    metadata: dict[str, str] | None
    limit: int
    cursor: str | None


def check_list_args(order: object = "id", owner: object = None, prefix: object = "",
                    metadata: object = None, limit: object = 100,
                    cursor: object = None) -> ListQuery:
    """Validate ``list_sessions`` arguments the same way in every backend."""
    check_page_args(prefix, limit, cursor)
    if order not in ORDERS:
        raise InputError(f"order must be 'id' or 'recent', got {order!r:.40}")
    checked = check_metadata(metadata)
    return ListQuery(order, check_owner(owner), prefix,  # type: ignore[arg-type]
                     checked or None, limit, cursor)  # type: ignore[arg-type]


def metadata_matches(stored: Mapping[str, str], wanted: Mapping[str, str] | None) -> bool:
    """Every wanted pair is in ``stored``."""
    return not wanted or all(stored.get(key) == value for key, value in wanted.items())


_CURSOR_TAG = "r1."


def recent_cursor(updated: float | int | str, session_id: str) -> str:
    """The opaque cursor of a recent-first page that ended at this session: its
    ``updated`` sort value (a backend's own: a float, an int, a string) and its id."""
    raw = json.dumps([updated, session_id], ensure_ascii=False, separators=(",", ":"))
    return _CURSOR_TAG + base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii")


def decode_recent_cursor(cursor: str) -> tuple[float | int | str, str]:
    """The ``(updated, session_id)`` of a cursor made by :func:`recent_cursor`; any other
    text is an :class:`InputError` (a cursor is never trusted)."""
    bad = InputError(f"not a cursor of a recent-first listing: {cursor!r:.80}")
    if not cursor.startswith(_CURSOR_TAG) or len(cursor) > 40_000:
        raise bad
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor[len(_CURSOR_TAG):]))
    except (ValueError, binascii.Error):
        raise bad from None
    if (not isinstance(data, list) or len(data) != 2 or isinstance(data[0], bool)
            or not isinstance(data[0], int | float | str) or not isinstance(data[1], str)):
        raise bad
    return data[0], data[1]


# -- search -------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")


class SearchHit(NamedTuple):
    """One message that matched a search: its session, its position in the session
    (0 is the first message) and a snippet of its text around the first match."""

    session_id: str
    position: int
    snippet: str


def search_terms(query: str) -> list[str]:
    """The words of a query, case-folded, in order, without repeats: runs of letters,
    digits and ``_``. Every backend builds its own full-text query from these (so no
    operator of any query language passes through)."""
    return list(dict.fromkeys(word.casefold() for word in _WORD.findall(query)))


def check_search_args(query: object, owner: object, limit: object) -> list[str]:
    """The search terms of a valid ``search`` call, else an :class:`InputError`."""
    text = _check_text(query, "a search query", MAX_SEARCH_QUERY_LENGTH, empty=False)
    check_owner(owner)
    if (isinstance(limit, bool) or not isinstance(limit, int)
            or not 1 <= limit <= MAX_SEARCH_LIMIT):
        raise InputError(f"limit must be an int from 1 to {MAX_SEARCH_LIMIT:,}, "
                         f"got {limit!r:.40}")
    terms = search_terms(text)
    if not terms:
        raise InputError(f"a search query needs at least one word (letters or digits), "
                         f"got {text!r:.80}")
    if len(terms) > MAX_SEARCH_TERMS:
        raise InputError(f"a search query may hold at most {MAX_SEARCH_TERMS} words, "
                         f"got {len(terms)}")
    return terms


def message_text(message: BaseMessage) -> str:
    """The searchable text of a message: its text, plus the names and arguments of the
    tools it calls."""
    text = message.text
    calls = getattr(message, "tool_calls", None)
    if calls:
        extra = " ".join(f"{call.get('name', '')} "
                         f"{json.dumps(call.get('args', {}), ensure_ascii=False, default=str)}"
                         for call in calls if isinstance(call, Mapping))
        text = f"{text} {extra}" if text else extra
    return text


def message_matches(text: str, terms: Iterable[str]) -> bool:
    """Every term is a whole word of ``text`` (case-folded)."""
    words = {word.casefold() for word in _WORD.findall(text)}
    return all(term in words for term in terms)


def make_snippet(text: str, terms: Iterable[str], width: int = 160) -> str:
    """About ``width`` characters of ``text`` around the first matching word, on one line,
    ``…`` where it was cut."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    wanted = set(terms)
    start = 0
    for match in _WORD.finditer(flat):
        if match.group().casefold() in wanted:
            start = max(0, match.start() - width // 3)
            break
    end = min(len(flat), start + width)
    start = max(0, end - width)
    return ("…" if start else "") + flat[start:end].strip() + ("…" if end < len(flat) else "")


def scan_search(store: Store, terms: list[str], owner: str | None, limit: int,
                sessions: int = SEARCH_SCAN_SESSIONS) -> list[SearchHit]:
    """Search without an index: the ``sessions`` most recently active sessions (of
    ``owner``), newest first, each read page by page; hits newest first."""
    hits: list[SearchHit] = []
    for session_id in _recent_ids(store, owner, sessions):
        found: list[SearchHit] = []
        for position, message in enumerate(store.iter_messages(session_id,
                                                                skip_invalid=True)):
            text = message_text(message)
            if message_matches(text, terms):
                found.append(SearchHit(session_id, position, make_snippet(text, terms)))
        hits.extend(reversed(found))
        if len(hits) >= limit:
            break
    return hits[:limit]


def _recent_ids(store: Store, owner: str | None, count: int) -> Iterator[str]:
    cursor: str | None = None
    seen = 0
    while seen < count:
        page = store.list_sessions(order="recent", owner=owner, cursor=cursor,
                                   limit=min(500, count - seen))
        for session_id in page:
            seen += 1
            yield session_id
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


class StoreStats(NamedTuple):
    """The size of a store: sessions, messages, and bytes where the backend knows."""

    sessions: int
    messages: int
    bytes: int | None = None
