"""PostgreSQL statements for records (pure), one :class:`Op` per call.

Layout: :mod:`threadline.stores.sql._records_sql`. The recsets row is found as the
sessions row is (sha256 of the id, then the id compared); reads resolve its ``rid`` in
an uncorrelated subquery (an InitPlan), so the records are one index range scan on
``(rid, key)`` in the wanted order, stopping at the LIMIT.

Every write of a session's records first locks its recsets row (``FOR UPDATE`` in a
materialized CTE that the other parts depend on), which serialises the writers of one
session: no deadlock between two puts. A put is ONE statement: lock the row, pick the
``rid`` (a fresh one from the sequence for a new or expired session, whose old records
``gone`` deletes: sibling CTEs never touch the same row), delete, upsert (keys sorted),
then write the recsets row once (its expiry). Two first puts of one session race on
the recsets row's unique hash: the loser fails with a unique violation, having written
nothing, and the shell runs it again (as for appends). Values go in binary (``%b``).

The statement texts are composed once per table (:func:`_statements`), so psycopg's
query cache and prepared statements apply.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

from threadline._errors import MissingDependencyError
from threadline.stores.sql._postgres_statements import Names, _session_hash
from threadline.stores.sql._server import Op, Rows, no_result
from threadline.stores.sql._server_records import RecordStatements

try:
    from psycopg import sql
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError("psycopg and psycopg-pool", "postgres") from exc

__all__ = ["RECORDS"]

_LIVE = "(s.expires_at IS NULL OR s.expires_at > now())"
_DEADLINE = "now() + %(ttl)s::float8 * interval '1 second'"
# The live recsets row of (h, sid), locked.
_LOCKED = ("cur AS MATERIALIZED (SELECT s.rid FROM {rs} AS s WHERE s.session_hash = %(h)s"
           f" AND s.session_id = %(sid)s AND {_LIVE} FOR UPDATE)")
# The rid of the live recsets row (positional parameters: hash, id).
_RID = ("(SELECT s.rid FROM {rs} AS s WHERE s.session_hash = %s AND s.session_id = %s"
        f" AND {_LIVE})")

_PUT = (
    "WITH cur AS MATERIALIZED ("
    " SELECT s.rid, s.expires_at <= now() AS expired FROM {rs} AS s"
    " WHERE s.session_hash = %(h)s AND s.session_id = %(sid)s FOR UPDATE),"
    " tgt AS MATERIALIZED ("
    " SELECT c.rid AS old, coalesce(c.expired, false) AS expired,"
    " CASE WHEN c.rid IS NULL OR c.expired"
    "  THEN nextval(pg_get_serial_sequence(%(seq)s, 'rid')) ELSE c.rid END AS rid"
    " FROM (VALUES (1)) AS one (x) LEFT JOIN cur AS c ON true),"
    " gone AS (DELETE FROM {r} WHERE rid = (SELECT old FROM tgt WHERE expired)),"
    " del AS (DELETE FROM {r} WHERE rid = (SELECT old FROM tgt WHERE NOT expired)"
    "  AND key = ANY(%(del)s::text[])),"
    " ins AS (INSERT INTO {r} (rid, key, value)"
    "  SELECT tgt.rid, b.k, b.v FROM tgt,"
    "  unnest(%(keys)s::text[], %(values)b::bytea[]) AS b (k, v) ORDER BY b.k"
    "  ON CONFLICT (rid, key) DO UPDATE SET value = excluded.value),"
    " upd AS (UPDATE {rs} AS s SET rid = tgt.rid,"
    f"  expires_at = coalesce({_DEADLINE}, CASE WHEN tgt.expired THEN NULL ELSE s.expires_at END)"
    "  FROM tgt WHERE s.rid = tgt.old AND (tgt.expired OR %(ttl)s::float8 IS NOT NULL))"
    " INSERT INTO {rs} (rid, session_hash, session_id, expires_at)"
    f" SELECT tgt.rid, %(h)s, %(sid)s, {_DEADLINE} FROM tgt WHERE tgt.old IS NULL"
)
# A put that writes nothing: its deletes and the expiry of a live session's records.
_TOUCH = (
    f"WITH {_LOCKED},"
    " del AS (DELETE FROM {r} WHERE rid = (SELECT rid FROM cur) AND key = ANY(%(del)s::text[]))"
    f" UPDATE {{rs}} AS s SET expires_at = {_DEADLINE} FROM cur"
    " WHERE s.rid = cur.rid AND %(ttl)s::float8 IS NOT NULL"
)
_DELETE = f"WITH {_LOCKED} DELETE FROM {{r}} WHERE rid = (SELECT rid FROM cur) AND "
_DELETE_ALL = (
    "WITH d AS (DELETE FROM {rs} AS s WHERE s.session_hash = %(h)s AND s.session_id = %(sid)s"
    " RETURNING s.rid) DELETE FROM {r} WHERE rid IN (SELECT rid FROM d)"
)


class _SQL(NamedTuple):
    put: str
    touch: str
    get: str
    #: By (reverse, keys_only); parameters (hash, id, low, high, limit).
    scan: dict[tuple[bool, bool], str]
    #: By (with keys, with a range), plus "all" as (False, False).
    delete: dict[tuple[bool, bool], str]


@lru_cache(maxsize=64)
def _statements(table: str) -> _SQL:
    n = Names(table)

    def text(template: str) -> str:
        return sql.SQL(template).format(r=n.records, rs=n.recsets).as_string()

    scan = {(reverse, keys_only): text(
        f"SELECT key{'' if keys_only else ', value'} FROM {{r}} WHERE rid = {_RID}"
        f" AND key >= %s AND key < %s ORDER BY key{' DESC' if reverse else ''} LIMIT %s")
        for reverse in (False, True) for keys_only in (False, True)}
    delete = {
        (True, False): text(_DELETE + "key = ANY(%(keys)s::text[])"),
        (False, True): text(_DELETE + "key >= %(low)s AND key < %(high)s"),
        (True, True): text(_DELETE + "(key = ANY(%(keys)s::text[])"
                           " OR (key >= %(low)s AND key < %(high)s))"),
        (False, False): text(_DELETE_ALL),
    }
    return _SQL(put=text(_PUT), touch=text(_TOUCH),
                get=text(f"SELECT key, value FROM {{r}} WHERE rid = {_RID}"
                         " AND key = ANY(%s::text[])"),
                scan=scan, delete=delete)


def _put_ops(n: Names, session_id: str, batch: dict[str, bytes], delete: list[str],
             ttl: float | None, packet: int) -> list[Op[None]]:
    statements = _statements(n.table)
    params: dict[str, Any] = {"h": _session_hash(session_id), "sid": session_id,
                              "del": delete, "ttl": ttl}
    if not batch:
        return [Op(statements.touch, params, no_result, write=True)]
    params.update(seq=n.recsets_regclass, keys=list(batch), values=list(batch.values()))
    # Idempotent (upserts and deletes of given keys): safe to run again.
    return [Op(statements.put, params, no_result, write=True)]


def _get_op(n: Names, session_id: str, keys: list[str]) -> Op[dict[str, bytes]]:
    return Op(_statements(n.table).get, (_session_hash(session_id), session_id, keys),
              lambda rows: {key: bytes(value) for key, value in rows})


def _scan_op(n: Names, session_id: str, low: str, high: str, limit: int | None,
             reverse: bool, keys_only: bool) -> Op[list[tuple[str, bytes]]]:
    def result(rows: Rows) -> list[tuple[str, bytes]]:
        if keys_only:
            return [(row[0], b"") for row in rows]
        return [(key, bytes(value)) for key, value in rows]

    return Op(_statements(n.table).scan[reverse, keys_only],
              (_session_hash(session_id), session_id, low, high, limit), result)


def _delete_op(n: Names, session_id: str, keys: list[str] | None,
               bounds: tuple[str, str] | None) -> Op[None]:
    low, high = bounds or ("", "")
    query = _statements(n.table).delete[keys is not None, bounds is not None]
    return Op(query, {"h": _session_hash(session_id), "sid": session_id, "keys": keys,
                      "low": low, "high": high}, no_result, write=True)


RECORDS = RecordStatements(put=_put_ops, get=_get_op, scan=_scan_op, delete=_delete_op)
