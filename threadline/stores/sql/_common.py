"""Pure helpers for SQL backends: names, prefix ranges, LIKE escaping, migrations, batches.

Nothing here touches a connection: these functions build statement text and parameters
that the SQLite, PostgreSQL and MySQL backends share. Identifiers are validated with
:func:`~threadline.stores._base.validate_identifier` before they are quoted, and every
value (session ids included) is passed as a bound parameter, never formatted in.

Streamed reads (``iter_messages``) go through :func:`~threadline.stores._base.stream_pages`
with a keyset-paging fetch on the message id.

Migrations (after simonw/llm's ``migrations.py``) are a list of functions applied in
order; the number applied is the schema version kept in the ``<table>_schema`` table, so
a newer threadline upgrades an older database, once, inside a transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from threadline._errors import InputError, StoreError
from threadline.messages._values import BaseMessage
from threadline.stores._base import (
    check_message_size,
    validate_identifier,
    validate_session_id,
)
from threadline.stores._sessions import _WORD

__all__ = [
    "DEFAULT_TABLE",
    "Migration",
    "TableNames",
    "check_text_sizes",
    "check_utf8_session_id",
    "distinct_words",
    "escape_like",
    "first_of_each_id",
    "pending_migrations",
    "prefix_upper_bound",
    "quote_ansi",
    "quote_backticks",
    "table_names",
]

DEFAULT_TABLE = "threadline_messages"

C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class TableNames:
    """The unquoted names of one store's tables, all derived from the messages table."""

    messages: str
    sessions: str
    schema: str
    #: Index names, prefixed with the table so two stores in one database never clash.
    messages_index: str
    expires_index: str
    #: The unique index on (session, message id) that makes appends idempotent.
    ids_index: str
    #: Records (:mod:`threadline.stores.sql._records_sql`): one row per session that has
    #: records, and the records themselves.
    recsets: str
    records: str
    recsets_expires_index: str
    #: Sessions by last activity (recent-first listing), by owner and last activity, and
    #: the full-text index (or FTS table) over message text.
    recent_index: str
    owner_index: str
    search_index: str


def table_names(table: str = DEFAULT_TABLE) -> TableNames:
    """The tables of a store whose messages table is ``table`` (validated).

    >>> table_names("chat").sessions
    'chat_sessions'
    """
    validate_identifier(table)
    return TableNames(
        messages=table,
        sessions=f"{table}_sessions",
        schema=f"{table}_schema",
        messages_index=f"{table}_session_idx",
        expires_index=f"{table}_expires_idx",
        ids_index=f"{table}_message_id_idx",
        recsets=f"{table}_recsets",
        records=f"{table}_records",
        recsets_expires_index=f"{table}_recsets_expires_idx",
        recent_index=f"{table}_recent_idx",
        owner_index=f"{table}_owner_idx",
        search_index=f"{table}_fts",
    )


def quote_ansi(name: str) -> str:
    """``"name"`` for SQLite and PostgreSQL; ``name`` must be a validated identifier
    (suffixes added to one, like ``_sessions``, may make it up to 72 characters)."""
    if not name.replace("_", "a").isalnum() or not name.isascii():
        raise ValueError(f"refusing to quote unvalidated identifier {name!r}")
    return f'"{name}"'


def quote_backticks(name: str) -> str:
    """```name``` for MySQL / MariaDB; ``name`` must be a validated identifier."""
    if not name.replace("_", "a").isalnum() or not name.isascii():
        raise ValueError(f"refusing to quote unvalidated identifier {name!r}")
    return f"`{name}`"


def escape_like(prefix: str, escape: str = "\\") -> str:
    """``prefix`` as a LIKE pattern matching strings that start with it.

    Use with ``LIKE ? ESCAPE '\\'``: ``escape_like("50%_off")`` is ``'50\\%\\_off%'``.
    """
    escaped = (prefix.replace(escape, escape + escape)
               .replace("%", escape + "%").replace("_", escape + "_"))
    return escaped + "%"


def prefix_upper_bound(prefix: str) -> str | None:
    """The least string greater than every string starting with ``prefix`` (by code
    point), or ``None`` when there is none (empty prefix, all U+10FFFF).

    ``low <= id < high`` with ``low = prefix`` then selects exactly the ids starting with
    ``prefix``, using the primary key's index (a binary collation is needed: code-point
    order is UTF-8 byte order). Surrogates are skipped: they cannot be encoded.

    >>> prefix_upper_bound("ab")
    'ac'
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if 0xD800 <= code <= 0xDFFF:
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


@dataclass(frozen=True, slots=True)
class Migration(Generic[C]):
    """One schema step: ``apply(connection, names)`` runs inside the setup transaction."""

    name: str
    apply: Callable[[C, TableNames], None]


def pending_migrations(migrations: Sequence[Migration[C]],
                       version: int) -> list[tuple[int, Migration[C]]]:
    """The migrations after ``version``, each with the version it brings the schema to.

    >>> [v for v, _ in pending_migrations([Migration("a", print)] * 3, 1)]
    [2, 3]
    """
    if version > len(migrations):
        raise StoreError(
            f"the database schema is version {version}, newer than this threadline "
            f"knows ({len(migrations)}); upgrade threadline"
        )
    return [(number, migration) for number, migration
            in enumerate(migrations[version:], version + 1)]


def first_of_each_id(batch: list[BaseMessage]) -> list[BaseMessage]:
    """``batch`` without the later messages of an id it already holds (the first one is
    stored, as a retry would); messages without an id are all kept.

    >>> from threadline import HumanMessage
    >>> [m.content for m in first_of_each_id(
    ...     [HumanMessage("a", id="1"), HumanMessage("b", id="1"), HumanMessage("c")])]
    ['a', 'c']
    """
    seen: set[str] = set()
    kept: list[BaseMessage] = []
    for message in batch:
        if message.id is not None:
            if message.id in seen:
                continue
            seen.add(message.id)
        kept.append(message)
    return kept if len(kept) < len(batch) else batch


#: Every ASCII character that is neither a letter nor a digit, as a space.
_ASCII_SPACES = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalnum()})


def distinct_words(text: str) -> dict[str, None]:
    """The words of ``text`` as search sees them (split and case-folded as
    :func:`~threadline.stores._sessions.search_terms` does), each once, in order.

    Each word is case-folded alone: folding the whole text first could move the word
    boundaries (``"İ"`` folds to ``"i"`` and a combining dot, which is no word character).
    ASCII text, a chat's usual case, is lowered whole (no ASCII letter folds to anything
    but its lower case) and split at every other character than a letter or a digit
    (which is what the word pattern matches in ASCII): the same words, at a fraction of
    the cost.

    >>> list(distinct_words("Snow, SNOW and snow-ploughs"))
    ['snow', 'and', 'ploughs']
    """
    if text.isascii():
        return dict.fromkeys(text.lower().translate(_ASCII_SPACES).split())
    return dict.fromkeys(word.casefold() for word in _WORD.findall(text))


def check_text_sizes(texts: Sequence[str], limit: int, what: str) -> None:
    """Refuse (:func:`~threadline.stores._base.check_message_size`) an encoded message
    of more than ``limit`` UTF-8 bytes. Cheap for the usual sizes: a character is at
    most 4 bytes, so only texts longer than ``limit / 4`` characters are measured."""
    for text in texts:
        if len(text) * 4 > limit:
            check_message_size(len(text.encode("utf-8", "surrogatepass")), limit, what)


def check_utf8_session_id(session_id: object) -> str:
    """A valid session id that UTF-8 can encode (no lone surrogates): a driver that
    sends text, not bytes, needs it."""
    sid = validate_session_id(session_id)
    try:
        sid.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError("a session id must be valid Unicode text (no lone surrogates)"
                         ) from exc
    return sid
