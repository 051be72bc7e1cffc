"""PostgreSQL statements (pure): schema migrations and one :class:`Op` per operation.

Nothing here touches a connection. Each builder returns ONE statement, so each call of
the store is one round trip and its own transaction; :mod:`threadline.stores.sql._postgres`
runs them on psycopg. Messages are TEXT (jsonb rejects ``\\u0000``); sessions are keyed by
the sha256 of the id (a btree cannot index 10 KB ids) and queries compare the id as well.

``append`` is a single statement. It first locks the session's row (``FOR UPDATE``: that
serialises the writers of one session, so each batch stays contiguous), inserts the batch
from ``unnest(...) WITH ORDINALITY`` skipping the message ids the session holds (``ON
CONFLICT DO NOTHING`` on a unique index on ``(sid, msg_key)``; ``msg_key`` is 16 bytes of
the id's sha256 as a ``uuid``, NULL without an id), then writes the sessions row ONCE,
counting only the rows inserted. A new (or expired, restarting) session takes a fresh
``sid`` from the sequence, so the ids of an expired session are forgotten with its rows;
two first appends of one session race on the sessions row's unique key, and the loser's
whole statement fails with a unique violation and is run again (the shell does), finding
the row this time. The batch is sent in binary (``%b``: no text escaping of the JSON).

Records live in ``<table>_recsets`` / ``<table>_records`` (migration 3; their statements
are in :mod:`threadline.stores.sql._postgres_records`); ``delete``, ``expire``, ``purge``
and ``destroy`` below cover them in the same single statement.

Migration 4 gives sessions their fields (title, metadata, owner, parent, fork point), the
listing indexes and, per message, ``words``: the distinct case-folded words of its text
as search sees them (:func:`index_words`), which a GIN index holds as a tsvector. An
append computes them from the batch, an expired session restarting forgets the old
session's fields with its messages, and after the upgrade
:func:`~threadline.stores.sql._postgres_sessions.fill_steps` computes ``words`` for the
messages stored before it. The session ops are in
:mod:`threadline.stores.sql._postgres_sessions`, which assembles the ``STATEMENTS`` table.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Generator, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from threadline._errors import (
    ConfigurationError,
    MessageFormatError,
    MissingDependencyError,
    StoreError,
)
from threadline.messages._values import BaseMessage
from threadline.stores._base import decode_message, decode_messages, validate_identifier
from threadline.stores._sessions import message_text
from threadline.stores.sql._common import distinct_words
from threadline.stores.sql._server import Op, Rows, no_result

try:
    from psycopg import sql
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError("psycopg and psycopg-pool", "postgres") from exc

__all__ = ["ID_KEY_CHARS", "MAX_INDEXED_BYTES", "MIGRATIONS", "PING", "Names", "encoded_words",
           "id_key", "index_words", "setup_steps", "tsvector"]

#: The most UTF-8 bytes of words indexed per message: a tsvector holds at most 1 MB of
#: lexemes (more would fail the append), and a lexeme at most 2 KB.
MAX_INDEXED_BYTES = 512 * 1024
_MAX_WORD_BYTES = 2047
#: Session ids are ordered by their first characters (indexed) and then in full (an
#: index on the whole id would refuse ids past a btree entry's 2.7 KB).
ID_KEY_CHARS = 128

def _session_hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).digest()


def _message_key(message_id: str | None) -> UUID | None:
    """What the unique index holds for a message id: 16 bytes of its sha256 (an id may
    be longer than a btree entry allows), as a ``uuid``: fixed-size, the cheapest key."""
    if message_id is None:
        return None
    return UUID(bytes=hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).digest()[:16])


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


class Names:
    """The quoted identifiers of one store's tables and indexes."""

    def __init__(self, table: str) -> None:
        validate_identifier(table)
        if len(table) > 54:  # PostgreSQL truncates identifiers to 63 bytes
            raise ConfigurationError(
                f"table name {table!r} is too long: at most 54 characters "
                "(the store adds '_sessions' to it)"
            )
        self.table = table
        self.messages = sql.Identifier(table)
        self.sessions = sql.Identifier(f"{table}_sessions")
        self.schema = sql.Identifier(f"{table}_schema")
        self.messages_index = sql.Identifier(f"{table}_sid_id")
        self.key_index = sql.Identifier(f"{table}_sid_key")
        self.recsets = sql.Identifier(f"{table}_recsets")
        self.records = sql.Identifier(f"{table}_records")
        self.recsets_regclass = _regclass(f"{table}_recsets")
        # Migration 4: listing indexes (suffixes of at most 9 characters: 54 + 9 = 63).
        self.id_index = sql.Identifier(f"{table}_id_ord")
        self.recent_index = sql.Identifier(f"{table}_recent")
        self.owner_recent_index = sql.Identifier(f"{table}_own_rec")
        self.owner_id_index = sql.Identifier(f"{table}_own_id")
        self.search_index = sql.Identifier(f"{table}_fts")
        self.messages_regclass = _regclass(table)
        self.records_regclass = _regclass(f"{table}_records")
        # For pg_get_serial_sequence(): a new or restarting session takes a fresh sid.
        self.sessions_regclass = _regclass(f"{table}_sessions")


# -- pure core: schema and statements ------------------------------------------------------

_LIVE = sql.SQL("(s.expires_at IS NULL OR s.expires_at > now())")


def _migration_1(n: Names) -> list[sql.Composed]:
    return [
        sql.SQL(
            "CREATE TABLE {sessions} ("
            " sid bigserial PRIMARY KEY,"
            " session_hash bytea NOT NULL UNIQUE,"
            " session_id text NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT now(),"
            " updated_at timestamptz NOT NULL DEFAULT now(),"
            " expires_at timestamptz,"
            " message_count bigint NOT NULL DEFAULT 0)"
        ).format(sessions=n.sessions),
        sql.SQL(
            "CREATE TABLE {messages} ("
            " id bigserial PRIMARY KEY,"
            " sid bigint NOT NULL,"
            " message text NOT NULL)"
        ).format(messages=n.messages),
        sql.SQL("CREATE INDEX {index} ON {messages} (sid, id)").format(
            index=n.messages_index, messages=n.messages
        ),
    ]


def _migration_2(n: Names) -> list[sql.Composed]:
    """Message ids: appends skip the ids a session holds (old rows have none)."""
    return [
        sql.SQL("ALTER TABLE {messages} ADD COLUMN msg_key uuid").format(messages=n.messages),
        sql.SQL("CREATE UNIQUE INDEX {index} ON {messages} (sid, msg_key)"
                " WHERE msg_key IS NOT NULL").format(index=n.key_index, messages=n.messages),
    ]


def _migration_3(n: Names) -> list[sql.Composed]:
    """Records: one row per session that has some (its expiry), and the records, keyed
    in byte order (``COLLATE "C"``)."""
    return [
        sql.SQL(
            "CREATE TABLE {recsets} ("
            " rid bigserial PRIMARY KEY,"
            " session_hash bytea NOT NULL UNIQUE,"
            " session_id text NOT NULL,"
            " expires_at timestamptz)"
        ).format(recsets=n.recsets),
        sql.SQL(
            "CREATE TABLE {records} ("
            " rid bigint NOT NULL,"
            ' key text COLLATE "C" NOT NULL,'
            " value bytea NOT NULL,"
            " PRIMARY KEY (rid, key))"
        ).format(records=n.records),
    ]


def id_key(column: str = "s.session_id") -> sql.Composable:
    """The indexed head of a session id, in byte order (ties are broken by the whole id)."""
    return sql.SQL('left({column}, {chars}) COLLATE "C"').format(
        column=sql.SQL(column), chars=sql.Literal(ID_KEY_CHARS))


def tsvector(column: str = "m.words") -> sql.Composable:
    """The GIN index's expression (queries must spell it the same way to use it)."""
    return sql.SQL("to_tsvector('simple'::regconfig, {column})").format(column=sql.SQL(column))


def _migration_4(n: Names) -> list[sql.Composed]:
    """Sessions as objects: their fields; indexes that return every listing in its order
    (recent: ``(updated_at, id)``; an owner's: ``(owner, updated_at, id)`` and ``(owner,
    id)``; by id); the words of each message and their GIN index."""
    key = sql.SQL("(left(session_id, {chars})) COLLATE \"C\"").format(
        chars=sql.Literal(ID_KEY_CHARS))
    owned = sql.SQL(" WHERE owner IS NOT NULL")  # only owned sessions are listed by owner
    return [
        sql.SQL("ALTER TABLE {s} ADD COLUMN title text, ADD COLUMN metadata jsonb,"
                " ADD COLUMN owner text, ADD COLUMN parent text,"
                " ADD COLUMN fork_point integer").format(s=n.sessions),
        sql.SQL("ALTER TABLE {m} ADD COLUMN words text").format(m=n.messages),
        sql.SQL("CREATE INDEX {i} ON {s} ({key})").format(i=n.id_index, s=n.sessions, key=key),
        sql.SQL("CREATE INDEX {i} ON {s} (updated_at, {key})").format(
            i=n.recent_index, s=n.sessions, key=key),
        sql.SQL("CREATE INDEX {i} ON {s} (owner, updated_at, {key})").format(
            i=n.owner_recent_index, s=n.sessions, key=key) + owned,
        sql.SQL("CREATE INDEX {i} ON {s} (owner, {key})").format(
            i=n.owner_id_index, s=n.sessions, key=key) + owned,
        sql.SQL("CREATE INDEX {i} ON {m} USING gin ({tsv})").format(
            i=n.search_index, m=n.messages, tsv=tsvector("words")),
        # The messages already stored have no words yet: _postgres_sessions.fill_steps
        # indexes them later, newest first, outside this transaction (see there).
        sql.SQL("ALTER TABLE {schema} ADD COLUMN words_below bigint").format(schema=n.schema),
        sql.SQL("UPDATE {schema} SET words_below = (SELECT max(id) + 1 FROM {m})").format(
            schema=n.schema, m=n.messages),
    ]


#: Schema migrations, in order; the schema table holds how many have run.
MIGRATIONS: list[Callable[[Names], list[sql.Composed]]] = [
    _migration_1, _migration_2, _migration_3, _migration_4]
#: The schema version that added ``words`` (and ``words_below``).
_WORDS_VERSION = 4


def index_words(text: str) -> str | None:
    """What the search index holds of a message's text: its distinct words, split and
    case-folded as :func:`~threadline.stores._sessions.search_terms` does (so
    PostgreSQL's parser sees the same words in a message as in a query), separated by
    spaces, at most :data:`MAX_INDEXED_BYTES`; ``None`` without words.

    >>> index_words("Oslo: snow, SNOW and  snow-ploughs")
    'oslo snow and ploughs'
    """
    words = distinct_words(text)
    joined = " ".join(words)
    # A character is at most 4 UTF-8 bytes: when the whole (each word + a separator)
    # fits the bound counted that way, and so does every word, nothing is left out and
    # no word needs encoding (a chat message's usual case).
    if 4 * len(joined) + 1 <= MAX_INDEXED_BYTES and (
            4 * len(joined) < _MAX_WORD_BYTES
            or 4 * max(map(len, words)) < _MAX_WORD_BYTES):
        return joined or None
    kept: list[str] = []
    size = 0
    for word in words:
        length = len(word.encode("utf-8", "surrogatepass")) + 1
        if length > _MAX_WORD_BYTES:
            continue  # PostgreSQL skips it anyway (with a notice)
        size += length
        if size > MAX_INDEXED_BYTES:
            break
        kept.append(word)
    return " ".join(kept) or None


def message_words(message: BaseMessage) -> str | None:
    """:func:`index_words` of a message's searchable text."""
    return index_words(message_text(message))


def encoded_words(encoded: str) -> str | None:
    """:func:`index_words` of a stored message (``None`` for a row that is not one)."""
    try:
        return index_words(message_text(decode_message(encoded)))
    except MessageFormatError:
        return None


def setup_steps(n: Names) -> Generator[Op[Any], Rows, int | None]:
    """Create or migrate the schema, inside one transaction the shell opens; returns
    where :func:`~threadline.stores.sql._postgres_sessions.fill_steps` is to start
    (``None``: every message has its words)."""
    # Serialise concurrent setups (CREATE TABLE IF NOT EXISTS races on the catalog).
    yield Op(sql.SQL("SELECT pg_advisory_xact_lock(hashtext(%s))"), (n.table,), no_result)
    rows = yield Op(
        sql.SQL("SELECT to_regclass(%s) IS NOT NULL, to_regclass(%s) IS NOT NULL"),
        (_regclass(f"{n.table}_schema"), _regclass(n.table)), list)
    has_schema, has_messages = rows[0]
    if not has_schema:
        if has_messages:
            raise ConfigurationError(
                f"table {n.table!r} exists but was not created by threadline (perhaps a "
                "LangChain message_store table); choose another table name with table=..."
            )
        yield Op(sql.SQL("CREATE TABLE {schema} (version integer NOT NULL)").format(
            schema=n.schema), (), no_result)
        yield Op(sql.SQL("INSERT INTO {schema} VALUES (0)").format(schema=n.schema), (), no_result)
    rows = yield Op(sql.SQL("SELECT version FROM {schema}").format(schema=n.schema), (), list)
    version = rows[0][0]
    if version > len(MIGRATIONS):
        raise StoreError(
            f"the schema of table {n.table!r} is version {version}, newer than this "
            f"threadline knows ({len(MIGRATIONS)}); upgrade threadline"
        )
    for migration in MIGRATIONS[version:]:
        for statement in migration(n):
            yield Op(statement, (), no_result)
    if version < len(MIGRATIONS):
        yield Op(sql.SQL("UPDATE {schema} SET version = %s").format(schema=n.schema),
                  (len(MIGRATIONS),), no_result)
    if len(MIGRATIONS) < _WORDS_VERSION:
        return None
    rows = yield Op(sql.SQL("SELECT words_below FROM {schema}").format(schema=n.schema), (),
                    list)
    below: int | None = rows[0][0]
    return below


def _regclass(name: str) -> str:
    return '"' + name + '"'  # validated identifier: quoting is enough


def _destroy_op(n: Names) -> Op[None]:
    return Op(sql.SQL("DROP TABLE IF EXISTS {m}, {s}, {r}, {rs}, {schema}").format(
        m=n.messages, s=n.sessions, r=n.records, rs=n.recsets, schema=n.schema), (),
        no_result, write=True)


def _append_op(n: Names, session_id: str, messages: Sequence[BaseMessage],
               texts: Sequence[str], ttl: float | None) -> Op[None]:
    """``messages`` (encoded as ``texts``) appended to the session: ONE statement, its
    text composed once per table (:func:`_append_query`)."""
    message_ids = [message.id for message in messages]
    params = {"h": _session_hash(session_id), "sid": session_id, "ttl": ttl,
              "seq": n.sessions_regclass, "texts": list(texts),
              "keys": [_message_key(i) for i in message_ids],
              "words": [message_words(message) for message in messages]}
    # Safe to run again after a dropped connection only if every message has an id.
    return Op(_append_query(n.table), params, no_result, retry=None not in message_ids,
              write=True, texts=texts)


@functools.lru_cache(maxsize=64)
def _append_query(table: str) -> str:
    """The text of :func:`_append_op`'s statement for ``table``, composed once: psycopg
    would compose a :class:`sql.Composed` again on every call (identifiers are quoted
    without a connection, as validated names need no server-specific escaping)."""
    n = Names(table)
    # cur: the live or expired row, locked. tgt: the sid to write under (a fresh one for
    # a new or expired session; nextval runs only in that CASE branch). gone: the rows of
    # an expired session. ins: the batch less the ids held. Then ONE write of the
    # sessions row: an UPDATE of the locked row, or the INSERT of a new one (a unique
    # violation there means a concurrent first append won: the shell runs this again).
    query = sql.SQL(
        "WITH cur AS MATERIALIZED ("
        " SELECT s.sid, s.expires_at <= now() AS expired FROM {s} AS s"
        " WHERE s.session_hash = %(h)s AND s.session_id = %(sid)s FOR UPDATE),"
        " tgt AS MATERIALIZED ("
        " SELECT c.sid AS old, coalesce(c.expired, false) AS expired,"
        " CASE WHEN c.sid IS NULL OR c.expired"
        "  THEN nextval(pg_get_serial_sequence(%(seq)s, 'sid')) ELSE c.sid END AS sid"
        " FROM (VALUES (1)) AS one (x) LEFT JOIN cur AS c ON true),"
        " gone AS (DELETE FROM {m} WHERE sid = (SELECT old FROM tgt WHERE expired)),"
        " ins AS ("
        " INSERT INTO {m} (sid, msg_key, message, words)"
        " SELECT tgt.sid, b.msg_key, b.message, b.words FROM tgt,"
        " unnest(%(keys)b::uuid[], %(texts)b::text[], %(words)b::text[])"
        " WITH ORDINALITY AS b (msg_key, message, words, ord)"
        " ORDER BY b.ord"
        " ON CONFLICT (sid, msg_key) WHERE msg_key IS NOT NULL DO NOTHING RETURNING 1),"
        " n AS (SELECT count(*) AS added FROM ins),"
        " upd AS ("
        " UPDATE {s} AS s SET sid = tgt.sid, updated_at = now(),"
        " created_at = CASE WHEN tgt.expired THEN now() ELSE s.created_at END,"
        " message_count = CASE WHEN tgt.expired THEN 0 ELSE s.message_count END + n.added,"
        " expires_at = COALESCE(now() + %(ttl)s::float8 * interval '1 second',"
        "  CASE WHEN tgt.expired THEN NULL ELSE s.expires_at END),"
        " title = CASE WHEN tgt.expired THEN NULL ELSE s.title END,"
        " metadata = CASE WHEN tgt.expired THEN NULL ELSE s.metadata END,"
        " owner = CASE WHEN tgt.expired THEN NULL ELSE s.owner END,"
        " parent = CASE WHEN tgt.expired THEN NULL ELSE s.parent END,"
        " fork_point = CASE WHEN tgt.expired THEN NULL ELSE s.fork_point END"
        " FROM tgt, n WHERE s.sid = tgt.old)"
        " INSERT INTO {s} (sid, session_hash, session_id, expires_at, message_count)"
        " SELECT tgt.sid, %(h)s, %(sid)s, now() + %(ttl)s::float8 * interval '1 second',"
        " n.added FROM tgt, n WHERE tgt.old IS NULL"
    ).format(m=n.messages, s=n.sessions)
    return query.as_string(None)


def _get_op(n: Names, session_id: str, last: int | None,
            skip_invalid: bool = False) -> Op[list[BaseMessage]]:
    params: tuple[Any, ...] = (_session_hash(session_id), session_id)
    if last is None:
        return Op(_read_query(n.table, window=False), params,
                   lambda rows: decode_messages([r[0] for r in rows], session_id=session_id,
                                                skip_invalid=skip_invalid))
    return Op(_read_query(n.table, window=True), (*params, last),
               lambda rows: decode_messages([r[0] for r in reversed(rows)],
                                            session_id=session_id, skip_invalid=skip_invalid,
                                            from_end=True))


@functools.lru_cache(maxsize=128)
def _read_query(table: str, *, window: bool) -> str:
    """The text of :func:`_get_op`'s statement, composed once (as :func:`_append_query`).

    The session's sid comes from a subquery (one value, an InitPlan), not a join: with a
    join the planner estimates the rows of a session from the table's average and may read
    the whole session and sort it; with ``sid = $1`` the (sid, id) index gives the order,
    and a window is a backward walk that stops after ``last`` rows."""
    n = Names(table)
    order = " ORDER BY m.id DESC LIMIT %s" if window else " ORDER BY m.id"
    return sql.SQL(
        "SELECT m.message FROM {m} AS m WHERE m.sid = (SELECT s.sid FROM {s} AS s"
        " WHERE s.session_hash = %s AND s.session_id = %s AND {live}){order}"
    ).format(m=n.messages, s=n.sessions, live=_LIVE, order=sql.SQL(order)).as_string(None)


def _after_op(n: Names, session_id: str, after: int, limit: int) -> Op[Rows]:
    """One page of a streamed read: the next ``limit`` rows ``(id, message)`` after
    message ``after``, on the ``(sid, id)`` index (the sid from a subquery, as in
    :func:`_get_op`)."""
    query = sql.SQL(
        "SELECT m.id, m.message FROM {m} AS m WHERE m.sid = (SELECT s.sid FROM {s} AS s"
        " WHERE s.session_hash = %s AND s.session_id = %s AND {live}) AND m.id > %s"
        " ORDER BY m.id LIMIT %s"
    ).format(m=n.messages, s=n.sessions, live=_LIVE)
    return Op(query, (_session_hash(session_id), session_id, after, limit), list)


def _delete_op(n: Names, session_id: str) -> Op[bool]:
    # True if the session had live messages or live records; the recsets row is locked
    # first (drs), as every write of records does, so no deadlock with a put.
    query = sql.SQL(
        "WITH d AS (DELETE FROM {s} AS s WHERE s.session_hash = %(h)s"
        " AND s.session_id = %(sid)s RETURNING s.sid, {live} AS live),"
        " dm AS (DELETE FROM {m} WHERE sid IN (SELECT sid FROM d)),"
        " drs AS (DELETE FROM {rs} AS s WHERE s.session_hash = %(h)s"
        " AND s.session_id = %(sid)s RETURNING s.rid, {live} AS live),"
        " dr AS (DELETE FROM {r} WHERE rid IN (SELECT rid FROM drs) RETURNING 1)"
        " SELECT EXISTS (SELECT FROM d WHERE live)"
        " OR (EXISTS (SELECT FROM drs WHERE live) AND EXISTS (SELECT FROM dr))"
    ).format(m=n.messages, s=n.sessions, r=n.records, rs=n.recsets, live=_LIVE)
    return Op(query, {"h": _session_hash(session_id), "sid": session_id},
              lambda rows: bool(rows[0][0]), write=True)


def _expire_op(n: Names, session_id: str, ttl: float | None) -> Op[None]:
    query = sql.SQL(
        "WITH rx AS (UPDATE {rs} AS s SET expires_at = {deadline}"
        " WHERE s.session_hash = %(h)s AND s.session_id = %(sid)s AND {live})"
        " UPDATE {s} AS s SET expires_at = {deadline}"
        " WHERE s.session_hash = %(h)s AND s.session_id = %(sid)s AND {live}"
    ).format(s=n.sessions, rs=n.recsets, live=_LIVE,
             deadline=sql.SQL("now() + %(ttl)s::float8 * interval '1 second'"))
    return Op(query, {"ttl": ttl, "h": _session_hash(session_id), "sid": session_id},
              no_result, write=True)


def _purge_op(n: Names) -> Op[int]:
    # Counts sessions (with messages), as every store does; expired records go too.
    query = sql.SQL(
        "WITH d AS (DELETE FROM {s} WHERE expires_at <= now() RETURNING sid),"
        " dm AS (DELETE FROM {m} WHERE sid IN (SELECT sid FROM d)),"
        " drs AS (DELETE FROM {rs} WHERE expires_at <= now() RETURNING rid),"
        " dr AS (DELETE FROM {r} WHERE rid IN (SELECT rid FROM drs))"
        " SELECT count(*) FROM d"
    ).format(m=n.messages, s=n.sessions, r=n.records, rs=n.recsets)
    return Op(query, (), lambda rows: int(rows[0][0]), write=True)


PING = Op("SELECT 1", (), no_result)
