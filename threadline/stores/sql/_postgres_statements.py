"""PostgreSQL statements (pure): schema migrations and one :class:`Op` per operation.

Nothing here touches a connection. Each builder returns ONE statement, so each call of
the store is one round trip and its own transaction; :mod:`threadline.stores.sql._postgres`
runs them on psycopg. ``append`` is a single statement whose CTEs upsert the sessions
row (which also serialises concurrent writers of one session on its row lock, keeping
each batch contiguous) and insert the batch from ``unnest(%s::text[]) WITH ORDINALITY``.
Messages are TEXT (jsonb rejects ``\\u0000``); sessions are keyed by the sha256 of the id
(a btree cannot index 10 KB ids) and queries compare the id as well.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator, Sequence
from datetime import UTC, datetime
from typing import Any

from threadline._errors import ConfigurationError, MissingDependencyError, StoreError
from threadline.messages._values import BaseMessage
from threadline.stores._base import (
    SessionInfo,
    SessionPage,
    decode_messages,
    encode_message,
    validate_identifier,
)
from threadline.stores.sql._server import Op, Rows, Statements, no_result

try:
    from psycopg import sql
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError("psycopg and psycopg-pool", "postgres") from exc

__all__ = ["MIGRATIONS", "STATEMENTS", "Names", "setup_steps"]

def _session_hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).digest()


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


#: Schema migrations, in order; the schema table holds how many have run.
MIGRATIONS: list[Callable[[Names], list[sql.Composed]]] = [_migration_1]


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
    return Op(sql.SQL("DROP TABLE IF EXISTS {m}, {s}, {schema}").format(
        m=n.messages, s=n.sessions, schema=n.schema), (), no_result, retry=True)


def _append_op(n: Names, session_id: str, messages: Sequence[BaseMessage],
               ttl: float | None) -> Op[None]:
    texts = [encode_message(m) for m in messages]
    # Old messages of an expired (not yet purged) session are deleted, and its counters
    # restart: appending to an expired session starts a new conversation. The DELETE
    # sees the statement's snapshot, so never the rows this statement inserts.
    query = sql.SQL(
        "WITH gone AS ("
        " DELETE FROM {m} USING {s} AS s"
        " WHERE s.session_hash = %(h)s AND s.session_id = %(sid)s"
        " AND s.expires_at <= now() AND {m}.sid = s.sid),"
        " upsert AS ("
        " INSERT INTO {s} AS s (session_hash, session_id, expires_at, message_count)"
        " VALUES (%(h)s, %(sid)s, now() + %(ttl)s::float8 * interval '1 second', %(n)s)"
        " ON CONFLICT (session_hash) DO UPDATE SET"
        " updated_at = now(),"
        " created_at = CASE WHEN s.expires_at <= now() THEN now() ELSE s.created_at END,"
        " message_count = CASE WHEN s.expires_at <= now() THEN excluded.message_count"
        "  ELSE s.message_count + excluded.message_count END,"
        " expires_at = COALESCE(excluded.expires_at,"
        "  CASE WHEN s.expires_at <= now() THEN NULL ELSE s.expires_at END)"
        " RETURNING sid)"
        " INSERT INTO {m} (sid, message)"
        " SELECT upsert.sid, batch.message FROM upsert,"
        " unnest(%(texts)s::text[]) WITH ORDINALITY AS batch(message, ord)"
        " ORDER BY batch.ord"
    ).format(m=n.messages, s=n.sessions)
    params = {"h": _session_hash(session_id), "sid": session_id, "ttl": ttl,
              "n": len(texts), "texts": texts}
    return Op(query, params, no_result, retry=False)


def _get_op(n: Names, session_id: str, last: int | None) -> Op[list[BaseMessage]]:
    base = sql.SQL(
        "SELECT m.message FROM {s} AS s JOIN {m} AS m ON m.sid = s.sid"
        " WHERE s.session_hash = %s AND s.session_id = %s AND {live}"
    ).format(m=n.messages, s=n.sessions, live=_LIVE)
    params: tuple[Any, ...] = (_session_hash(session_id), session_id)
    if last is None:
        return Op(base + sql.SQL(" ORDER BY m.id"), params,
                   lambda rows: decode_messages([r[0] for r in rows]))
    return Op(base + sql.SQL(" ORDER BY m.id DESC LIMIT %s"), (*params, last),
               lambda rows: decode_messages([r[0] for r in reversed(rows)]))


def _delete_op(n: Names, session_id: str) -> Op[bool]:
    query = sql.SQL(
        "WITH d AS (DELETE FROM {s} AS s WHERE s.session_hash = %s AND s.session_id = %s"
        " RETURNING s.sid, {live} AS live),"
        " dm AS (DELETE FROM {m} WHERE sid IN (SELECT sid FROM d))"
        " SELECT count(*) FILTER (WHERE live) FROM d"
    ).format(m=n.messages, s=n.sessions, live=_LIVE)
    return Op(query, (_session_hash(session_id), session_id), lambda rows: rows[0][0] > 0)


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
        "UPDATE {s} AS s SET expires_at = now() + %s::float8 * interval '1 second'"
        " WHERE s.session_hash = %s AND s.session_id = %s AND {live}"
    ).format(s=n.sessions, live=_LIVE)
    return Op(query, (ttl, _session_hash(session_id), session_id), no_result)


def _purge_op(n: Names) -> Op[int]:
    query = sql.SQL(
        "WITH d AS (DELETE FROM {s} WHERE expires_at <= now() RETURNING sid),"
        " dm AS (DELETE FROM {m} WHERE sid IN (SELECT sid FROM d))"
        " SELECT count(*) FROM d"
    ).format(m=n.messages, s=n.sessions)
    return Op(query, (), lambda rows: int(rows[0][0]))


_PING = Op("SELECT 1", (), no_result)

STATEMENTS = Statements(append=_append_op, get=_get_op, delete=_delete_op, page=_list_op,
                        info=_info_op, expire=_expire_op, purge=_purge_op,
                        destroy=_destroy_op, ping=_PING)
