"""MySQL / MariaDB statements for records (pure): ops built from the statements of a
table, composed once (:func:`_statements`).

Layout: :mod:`threadline.stores.sql._records_sql`; the recsets row is found as the
sessions row is (``BINARY(32)`` sha256, then the id compared). MySQL cannot take a
statement, nor send a row, larger than ``max_allowed_packet`` (16 MiB on MariaDB, 64 MiB
on MySQL 8; a session cannot raise it), and a 16 MiB value is 32 MiB once hex-escaped.
So a value is stored in chunks, rows ``(rid, rkey, chunk)``, each a quarter of the
packet at most, and a put larger than one packet is sent as several ops that the shell
runs on one connection inside one transaction (``START TRANSACTION`` in the first,
``COMMIT`` in the last; a failure closes the connection, which rolls it back). A put
that fits (the usual case) is one round trip.

A put locks the session's recsets row (``SELECT ... FOR UPDATE``: writers of a session
queue there, no deadlock between them), deletes the records of an expired session,
upserts the row (its expiry; ``LAST_INSERT_ID(rid)`` hands its rid to the next
statements), deletes the written and the deleted keys (ONE statement: a rewritten value
may have fewer chunks) and inserts the chunks.

Reads take the rid of the live row in an uncorrelated subquery (a constant for the
optimizer: a range on the primary key). A scan with values picks its keys first (chunk
0, with the LIMIT) in a derived table, then joins their chunks, so the LIMIT counts
records, not chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from threadline.stores.sql._mysql_statements import (
    _NOW,
    _TTL,
    Names,
    _hash,
    _id_bytes,
    _live,
    _micros,
)
from threadline.stores.sql._server import Op, Rows, no_result
from threadline.stores.sql._server_records import RecordStatements

__all__ = ["RECORDS", "chunk_size", "join_chunks"]

#: MySQL's way to say "no LIMIT".
_NO_LIMIT = 18446744073709551615
#: Room kept in each op for what surrounds its statements (START TRANSACTION, COMMIT).
_MARGIN = 8 << 10


def chunk_size(packet: int) -> int:
    """The most bytes of a value one row holds: a quarter of ``packet``, so two chunks
    (hex-escaped, 2 characters a byte) fit in one statement with room to spare.

    >>> chunk_size(16 << 20) // 1024
    4080
    """
    return max(1 << 10, (packet - (64 << 10)) // 4)


def join_chunks(rows: Rows, reverse: bool = False) -> list[tuple[str, bytes]]:
    """``(key, value)`` from rows ``(rkey, chunk value)`` ordered by key then chunk
    (both descending with ``reverse``)."""
    out: list[tuple[str, bytes]] = []
    key: bytes | None = None
    parts: list[bytes] = []
    for rkey, value in rows:
        if rkey != key:
            if key is not None:
                out.append((key.decode("ascii"), _value(parts, reverse)))
            key, parts = rkey, []
        parts.append(value)
    if key is not None:
        out.append((key.decode("ascii"), _value(parts, reverse)))
    return out


def _value(parts: list[bytes], reverse: bool) -> bytes:
    if len(parts) == 1:
        return bytes(parts[0])
    return b"".join(reversed(parts) if reverse else parts)


def _cost(params: Sequence[Any]) -> int:
    """At most how many bytes ``params`` take once rendered (bytes as hex literals;
    str are ASCII keys, each character escaped to 2 at most)."""
    total = 0
    for param in params:
        if isinstance(param, bytes):
            total += 2 * len(param) + 3
        elif isinstance(param, str):
            total += 2 * len(param) + 2
        else:
            total += 21
    return total


class _SQL(NamedTuple):
    lock: str
    stale: str
    upsert: str
    delete_in: str  # + placeholders + ")"
    insert: str  # + rows
    get: str  # + placeholders + ") ORDER BY ..."
    touch: str
    delete_live: str  # + a condition on r.rkey
    delete_all: str
    scan: dict[tuple[bool, bool], str]  # (reverse, keys_only)


@lru_cache(maxsize=64)
def _statements(table: str) -> _SQL:
    n = Names(table)
    rs, r = n.rs, n.r
    where = "s.session_hash = %s AND s.session_id = %s"
    rid = f"(SELECT s.rid FROM {rs} AS s WHERE {where} AND {_live('s')})"
    scan = {}
    for reverse in (False, True):
        order = " DESC" if reverse else ""
        keys = (f"SELECT k.rid, k.rkey FROM {r} AS k WHERE k.rid = {rid} AND k.chunk = 0"
                f" AND k.rkey >= %s AND k.rkey < %s ORDER BY k.rkey{order} LIMIT %s")
        scan[reverse, True] = keys.replace("k.rid, k.rkey", "k.rkey", 1)
        scan[reverse, False] = (
            f"SELECT r.rkey, r.value FROM ({keys}) AS p JOIN {r} AS r"
            f" ON r.rid = p.rid AND r.rkey = p.rkey ORDER BY r.rkey{order}, r.chunk{order}")
    return _SQL(
        lock=f"SELECT COUNT(*) INTO @threadline_locked FROM {rs} AS s WHERE {where} FOR UPDATE",
        stale=(f"DELETE r FROM {rs} AS s JOIN {r} AS r ON r.rid = s.rid"
               f" WHERE {where} AND s.expires_at <= {_NOW}"),
        upsert=(f"INSERT INTO {rs} (session_hash, session_id, expires_at) VALUES (%s, %s, {_TTL})"
                " ON DUPLICATE KEY UPDATE rid = LAST_INSERT_ID(rid), expires_at ="
                f" COALESCE(VALUES(expires_at), IF(expires_at <= {_NOW}, NULL, expires_at));"
                " SET @threadline_rid = LAST_INSERT_ID()"),
        delete_in=f"DELETE FROM {r} WHERE rid = @threadline_rid AND rkey IN (",
        insert=f"INSERT INTO {r} (rid, rkey, chunk, value) VALUES ",
        get=f"SELECT r.rkey, r.value FROM {r} AS r WHERE r.rid = {rid} AND r.rkey IN (",
        touch=f"UPDATE {rs} AS s SET s.expires_at = {_TTL} WHERE {where} AND {_live('s')}",
        delete_live=(f"DELETE r FROM {rs} AS s JOIN {r} AS r ON r.rid = s.rid"
                     f" WHERE {where} AND {_live('s')} AND "),
        delete_all=(f"DELETE s, r FROM {rs} AS s LEFT JOIN {r} AS r ON r.rid = s.rid"
                    f" WHERE {where}"),
        scan=scan,
    )


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def _put_ops(n: Names, session_id: str, batch: dict[str, bytes], delete: list[str],
             ttl: float | None, packet: int) -> list[Op[None]]:
    sql = _statements(n.table)
    key = (_hash(session_id), _id_bytes(session_id))
    budget = packet - _MARGIN
    statements: list[tuple[str, tuple[Any, ...]]] = [(sql.lock, key)]
    if not batch:  # deletes and the expiry of a live session's records; nothing created
        if delete:
            statements.append((sql.delete_live + f"r.rkey IN ({_placeholders(len(delete))})",
                               (*key, *delete)))
        if ttl is not None:
            statements.append((sql.touch, (_micros(ttl), *key)))
        return _pack(statements, budget)
    statements += [(sql.stale, key), (sql.upsert, (*key, _micros(ttl)))]
    for group in _groups([(k,) for k in (*batch, *delete)], budget):
        statements.append((sql.delete_in + _placeholders(len(group)) + ")",
                           tuple(k for (k,) in group)))
    size = chunk_size(packet)
    rows = [(k, number, value[start:start + size]) for k, value in batch.items()
            for number, start in enumerate(range(0, max(1, len(value)), size))]
    for group in _groups(rows, budget):
        statements.append((sql.insert + ", ".join(["(@threadline_rid, %s, %s, %s)"] * len(group)),
                           tuple(v for row in group for v in row)))
    return _pack(statements, budget)


def _groups(rows: list[tuple[Any, ...]], budget: int) -> list[list[tuple[Any, ...]]]:
    """``rows`` in consecutive groups whose parameters take at most ``budget`` bytes."""
    groups: list[list[tuple[Any, ...]]] = [[]]
    size = 1024  # the statement around them
    for row in rows:
        cost = _cost(row) + 32
        if groups[-1] and size + cost > budget:
            groups.append([])
            size = 1024
        groups[-1].append(row)
        size += cost
    return groups if groups[0] else []


def _pack(statements: list[tuple[str, tuple[Any, ...]]], budget: int) -> list[Op[None]]:
    """The statements of a transaction in as few ops as fit in ``budget`` bytes each."""
    ops: list[tuple[list[str], list[Any]]] = [([], [])]
    size = 0
    for text, params in statements:
        cost = len(text) + _cost(params) + 2
        if ops[-1][0] and size + cost > budget:
            ops.append(([], []))
            size = 0
        ops[-1][0].append(text)
        ops[-1][1].extend(params)
        size += cost
    ops[0][0].insert(0, "START TRANSACTION")
    ops[-1][0].append("COMMIT")
    # Idempotent (upserts and deletes of given keys): safe to run again, from the start.
    return [Op("; ".join(texts), tuple(params), no_result, write=True)
            for texts, params in ops]


def _get_op(n: Names, session_id: str, keys: list[str]) -> Op[dict[str, bytes]]:
    query = (_statements(n.table).get + _placeholders(len(keys))
             + ") ORDER BY r.rkey, r.chunk")
    return Op(query, (_hash(session_id), _id_bytes(session_id), *keys),
              lambda rows: dict(join_chunks(rows)))


def _scan_op(n: Names, session_id: str, low: str, high: str, limit: int | None,
             reverse: bool, keys_only: bool) -> Op[list[tuple[str, bytes]]]:
    def result(rows: Rows) -> list[tuple[str, bytes]]:
        if keys_only:
            return [(row[0].decode("ascii"), b"") for row in rows]
        return join_chunks(rows, reverse)

    return Op(_statements(n.table).scan[reverse, keys_only],
              (_hash(session_id), _id_bytes(session_id), low, high,
               _NO_LIMIT if limit is None else limit), result)


def _delete_op(n: Names, session_id: str, keys: list[str] | None,
               bounds: tuple[str, str] | None) -> Op[None]:
    sql = _statements(n.table)
    params: tuple[Any, ...] = (_hash(session_id), _id_bytes(session_id))
    if keys is None and bounds is None:
        return Op(sql.delete_all, params, no_result, write=True)
    where = []
    if keys is not None:
        where.append(f"r.rkey IN ({_placeholders(len(keys))})")
        params += tuple(keys)
    if bounds is not None:
        where.append("(r.rkey >= %s AND r.rkey < %s)")
        params += bounds
    return Op(sql.delete_live + f"({' OR '.join(where)})", params, no_result, write=True)


RECORDS = RecordStatements(put=_put_ops, get=_get_op, scan=_scan_op, delete=_delete_op)
