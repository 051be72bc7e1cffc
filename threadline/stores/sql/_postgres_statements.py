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
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from threadline._errors import ConfigurationError, MissingDependencyError, StoreError
from threadline.messages._values import BaseMessage
from threadline.stores._base import SessionInfo, SessionPage, decode_messages, validate_identifier
from threadline.stores.sql._server import Op, Rows, Statements, no_result

try:
    from psycopg import sql
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError("psycopg and psycopg-pool", "postgres") from exc

__all__ = ["MIGRATIONS", "STATEMENTS", "Names", "setup_steps"]

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


#: Schema migrations, in order; the schema table holds how many have run.
MIGRATIONS: list[Callable[[Names], list[sql.Composed]]] = [
    _migration_1, _migration_2, _migration_3]


def setup_steps(n: Names) -> Generator[Op[Any], Rows, None]:
    """Create or migrate the schema, inside one transaction the shell opens."""
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


def _regclass(name: str) -> str:
    return '"' + name + '"'  # validated identifier: quoting is enough


def _destroy_op(n: Names) -> Op[None]:
    return Op(sql.SQL("DROP TABLE IF EXISTS {m}, {s}, {r}, {rs}, {schema}").format(
        m=n.messages, s=n.sessions, r=n.records, rs=n.recsets, schema=n.schema), (),
        no_result, write=True)


def _append_op(n: Names, session_id: str, texts: Sequence[str],
               message_ids: Sequence[str | None], ttl: float | None) -> Op[None]:
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
        " INSERT INTO {m} (sid, msg_key, message)"
        " SELECT tgt.sid, b.msg_key, b.message FROM tgt,"
        " unnest(%(keys)b::uuid[], %(texts)b::text[]) WITH ORDINALITY AS b (msg_key, message, ord)"
        " ORDER BY b.ord"
        " ON CONFLICT (sid, msg_key) WHERE msg_key IS NOT NULL DO NOTHING RETURNING 1),"
        " n AS (SELECT count(*) AS added FROM ins),"
        " upd AS ("
        " UPDATE {s} AS s SET sid = tgt.sid, updated_at = now(),"
        " created_at = CASE WHEN tgt.expired THEN now() ELSE s.created_at END,"
        " message_count = CASE WHEN tgt.expired THEN 0 ELSE s.message_count END + n.added,"
        " expires_at = COALESCE(now() + %(ttl)s::float8 * interval '1 second',"
        "  CASE WHEN tgt.expired THEN NULL ELSE s.expires_at END)"
        " FROM tgt, n WHERE tgt.old IS NOT NULL"
        " AND s.session_hash = %(h)s AND s.session_id = %(sid)s)"
        " INSERT INTO {s} (sid, session_hash, session_id, expires_at, message_count)"
        " SELECT tgt.sid, %(h)s, %(sid)s, now() + %(ttl)s::float8 * interval '1 second',"
        " n.added FROM tgt, n WHERE tgt.old IS NULL"
    ).format(m=n.messages, s=n.sessions)
    params = {"h": _session_hash(session_id), "sid": session_id, "ttl": ttl,
              "seq": n.sessions_regclass, "texts": list(texts),
              "keys": [_message_key(i) for i in message_ids]}
    # Safe to run again after a dropped connection only if every message has an id.
    return Op(query, params, no_result, retry=None not in message_ids, write=True,
              texts=texts)


def _get_op(n: Names, session_id: str, last: int | None,
            skip_invalid: bool = False) -> Op[list[BaseMessage]]:
    base = sql.SQL(
        "SELECT m.message FROM {s} AS s JOIN {m} AS m ON m.sid = s.sid"
        " WHERE s.session_hash = %s AND s.session_id = %s AND {live}"
    ).format(m=n.messages, s=n.sessions, live=_LIVE)
    params: tuple[Any, ...] = (_session_hash(session_id), session_id)
    if last is None:
        return Op(base + sql.SQL(" ORDER BY m.id"), params,
                   lambda rows: decode_messages([r[0] for r in rows], session_id=session_id,
                                                skip_invalid=skip_invalid))
    return Op(base + sql.SQL(" ORDER BY m.id DESC LIMIT %s"), (*params, last),
               lambda rows: decode_messages([r[0] for r in reversed(rows)],
                                            session_id=session_id, skip_invalid=skip_invalid,
                                            from_end=True))


def _after_op(n: Names, session_id: str, after: int, limit: int) -> Op[Rows]:
    """One page of a streamed read: the next ``limit`` rows ``(id, message)`` after
    message ``after``, on the ``(sid, id)`` index."""
    query = sql.SQL(
        "SELECT m.id, m.message FROM {s} AS s JOIN {m} AS m ON m.sid = s.sid"
        " WHERE s.session_hash = %s AND s.session_id = %s AND {live} AND m.id > %s"
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


def _list_op(n: Names, prefix: str, limit: int, cursor: str | None) -> Op[SessionPage]:
    query = sql.SQL(
        "SELECT s.session_id FROM {s} AS s WHERE {live} AND starts_with(s.session_id, %s)"
        " AND (%s::text IS NULL OR s.session_id COLLATE \"C\" > %s::text)"
        " ORDER BY s.session_id COLLATE \"C\" LIMIT %s"
    ).format(s=n.sessions, live=_LIVE)

    def page(rows: Rows) -> SessionPage:
        ids = [r[0] for r in rows[:limit]]
        return SessionPage(ids, ids[-1] if len(rows) > limit else None)

    return Op(query, (prefix, cursor, cursor, limit + 1), page)


def _info_op(n: Names, session_id: str) -> Op[SessionInfo | None]:
    query = sql.SQL(
        "SELECT s.message_count, s.created_at, s.updated_at, s.expires_at FROM {s} AS s"
        " WHERE s.session_hash = %s AND s.session_id = %s AND {live}"
    ).format(s=n.sessions, live=_LIVE)

    def info(rows: Rows) -> SessionInfo | None:
        if not rows:
            return None
        count, created, updated, expires = rows[0]
        return SessionInfo(session_id, int(count), _utc(created), _utc(updated), _utc(expires))

    return Op(query, (_session_hash(session_id), session_id), info)


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


_PING = Op("SELECT 1", (), no_result)

STATEMENTS = Statements(append=_append_op, get=_get_op, delete=_delete_op, page=_list_op,
                        info=_info_op, expire=_expire_op, purge=_purge_op,
                        destroy=_destroy_op, ping=_PING, after=_after_op)
