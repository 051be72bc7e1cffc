"""MySQL / MariaDB statements (pure): schema migrations and one :class:`Op` per operation.

Nothing here touches a connection; :mod:`threadline.stores.sql._mysql` runs the ops.
``append`` is ONE round trip: a multi-statement transaction (``START TRANSACTION;``
upsert of the sessions row, multi-row INSERT, ``COMMIT``), parameters escaped by the
driver. The upsert takes the session row's lock first, which serialises writers of one
session so each batch stays contiguous. Session ids are stored as utf8 bytes in a BLOB
(byte order = code point order, no PAD SPACE collation surprises) and looked up by a
``BINARY(32)`` sha256 of them, so 10 KB ids work with a btree; queries compare the id as
well. Messages are utf8mb4 LONGTEXT, times are UTC ``DATETIME(6)``.

Message ids: ``msg_key`` is 16 bytes of the id's sha256 (NULL without an id), unique per
session (``UNIQUE (sid, msg_key)``; NULLs never clash). The batch INSERT skips the keys the
session holds (``ON DUPLICATE KEY UPDATE id = id`` changes nothing, so ``ROW_COUNT()`` is
the number of rows inserted, which is what the message count adds). An expired session's
rows are deleted before the INSERT, so its ids are forgotten with them.

Records live in ``<table>_recsets`` / ``<table>_records`` (migration 3; their statements
are in :mod:`threadline.stores.sql._mysql_records`); ``delete``, ``expire``, ``purge`` and
``destroy`` below cover them in the same round trip and transaction.

Sessions as objects (migration 4; their statements are in
:mod:`threadline.stores.sql._mysql_sessions`): the sessions row gains ``title``,
``metadata`` (JSON text), ``owner`` (utf8 bytes: no PAD SPACE), ``parent``, ``fork_point``
and ``id_head``, the first 768 bytes of the id (a stored generated column: a BLOB cannot
be a key part, and 768 bytes keep ``(owner, updated_at, id_head, sid)`` under InnoDB's
3072-byte key limit). Each message row gains ``search_text``, the words of its text as
:func:`search_text` computes them in Python at append, under a FULLTEXT index built
without stopwords. An append to an expired session forgets its metadata with its messages.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Generator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from threadline._errors import ConfigurationError, StoreError
from threadline.messages._values import BaseMessage
from threadline.stores._base import decode_messages, validate_identifier
from threadline.stores._sessions import message_text
from threadline.stores.sql._common import distinct_words
from threadline.stores.sql._server import Op, Rows, no_result

__all__ = ["MAX_INDEXED_WORD", "MIGRATIONS", "PING", "Names", "ServerLimits", "search_text",
           "setup_steps"]

_NOW = "UTC_TIMESTAMP(6)"
_TTL = "DATE_ADD(UTC_TIMESTAMP(6), INTERVAL %s MICROSECOND)"  # NULL ttl -> NULL


def _id_bytes(session_id: str) -> bytes:
    return session_id.encode("utf-8", "surrogatepass")


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(_id_bytes(session_id)).digest()


def _message_key(message_id: str | None) -> bytes | None:
    if message_id is None:
        return None
    return hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).digest()[:16]


def _micros(ttl: float | None) -> int | None:
    return None if ttl is None else max(1, round(ttl * 1_000_000))


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None else None


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else value


class Names:
    def __init__(self, table: str) -> None:
        validate_identifier(table)
        if len(table) > 55:  # MySQL identifiers are at most 64 characters
            raise ConfigurationError(
                f"table name {table!r} is too long: at most 55 characters "
                "(the store adds '_sessions' to it)")
        self.table = table
        # Backticks are safe: validate_identifier allows only [A-Za-z0-9_].
        self.m = f"`{table}`"
        self.s = f"`{table}_sessions`"
        self.schema = f"`{table}_schema`"
        self.rs = f"`{table}_recsets`"
        self.r = f"`{table}_records`"


#: The longest word InnoDB indexes (``innodb_ft_max_token_size``'s default): longer
#: words (hashes, base64) are left out of ``search_text`` and never searched by index.
MAX_INDEXED_WORD = 84
#: ``search_text`` keeps each word once, so it is far shorter than a long text; this
#: bounds the rare vocabulary larger than that (words past it are found by no search).
MAX_SEARCH_TEXT = 1 << 18


def search_text(message: BaseMessage) -> str:
    """The words of a message's searchable text (:func:`message_text`), case-folded,
    each once, separated by spaces: the text the FULLTEXT index reads. Splitting here,
    with the rule :func:`~threadline.stores._sessions.search_terms` applies to queries,
    makes InnoDB's tokenizer see exactly the words a search looks for (it would keep
    ``_`` and ``'`` inside words, and compare case with the binary collation)."""
    words = distinct_words(message_text(message))
    if not words or max(map(len, words)) <= MAX_INDEXED_WORD:  # the usual case: all kept
        text = " ".join(words)
    else:
        text = " ".join(word for word in words if len(word) <= MAX_INDEXED_WORD)
    if len(text) > MAX_SEARCH_TEXT:
        text = text[:text.rfind(" ", 0, MAX_SEARCH_TEXT + 1)]
    return text


def _live(alias: str) -> str:
    return f"({alias}.expires_at IS NULL OR {alias}.expires_at > {_NOW})"


_LIVE = _live("s")
_TABLE_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"


def _migration_1(n: Names, columns: set[str]) -> list[str]:
    return [
        f"CREATE TABLE {n.s} ("
        " sid BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " session_hash BINARY(32) NOT NULL UNIQUE,"
        " session_id MEDIUMBLOB NOT NULL,"
        " created_at DATETIME(6) NOT NULL,"
        " updated_at DATETIME(6) NOT NULL,"
        " expires_at DATETIME(6) NULL,"
        " message_count BIGINT NOT NULL DEFAULT 0,"
        " floor_id BIGINT NOT NULL DEFAULT 0,"
        f" KEY expires (expires_at)) {_TABLE_OPTIONS}",
        f"CREATE TABLE {n.m} ("
        " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " sid BIGINT NOT NULL,"
        " message LONGTEXT NOT NULL,"
        f" KEY sid_id (sid, id)) {_TABLE_OPTIONS}",
    ]


def _migration_2(n: Names, columns: set[str]) -> list[str]:
    """Message ids: appends skip the ids a session holds (old rows have none). DDL
    commits by itself in MySQL, so a setup killed after it finds the column there."""
    if "msg_key" in columns:
        return []
    return [f"ALTER TABLE {n.m} ADD COLUMN msg_key BINARY(16) NULL,"
            " ADD UNIQUE KEY sid_key (sid, msg_key)"]


def _migration_3(n: Names, columns: set[str]) -> list[str]:
    """Records: one row per session that has some (its expiry), and the records, keyed
    in byte order (VARBINARY) and cut in chunks below max_allowed_packet. IF NOT EXISTS:
    DDL commits by itself, so a setup killed after it finds the table there."""
    return [
        f"CREATE TABLE IF NOT EXISTS {n.rs} ("
        " rid BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " session_hash BINARY(32) NOT NULL UNIQUE,"
        " session_id MEDIUMBLOB NOT NULL,"
        " expires_at DATETIME(6) NULL,"
        f" KEY expires (expires_at)) {_TABLE_OPTIONS}",
        f"CREATE TABLE IF NOT EXISTS {n.r} ("
        " rid BIGINT NOT NULL,"
        " rkey VARBINARY(512) NOT NULL,"
        " chunk INT NOT NULL,"
        " value LONGBLOB NOT NULL,"
        f" PRIMARY KEY (rid, rkey, chunk)) {_TABLE_OPTIONS}",
    ]


_SESSION_COLUMNS = ("title", "metadata", "owner", "parent", "fork_point")


def _migration_4(n: Names, columns: set[str]) -> list[str | Generator[Op[Any], Rows, None]]:
    """Sessions as objects: their fields and the recent / owner indexes, and the
    messages' searchable text, backfilled in Python, then its FULLTEXT index (built
    after the backfill: one bulk build). Each step checks what a killed setup did."""
    steps: list[str | Generator[Op[Any], Rows, None]] = []
    if "title" not in columns:
        steps.append(
            f"ALTER TABLE {n.s} ADD COLUMN title VARCHAR(512) NULL,"
            " ADD COLUMN metadata LONGTEXT NULL, ADD COLUMN owner VARBINARY(1024) NULL,"
            " ADD COLUMN parent MEDIUMBLOB NULL, ADD COLUMN fork_point BIGINT NULL,"
            " ADD COLUMN id_head VARBINARY(768) AS (LEFT(session_id, 768)) STORED,"
            " ADD KEY recent (updated_at, id_head, sid),"
            " ADD KEY owner_recent (owner, updated_at, id_head, sid),"
            " ADD KEY owner_id (owner, id_head, sid)")
    if "search_text" not in columns:
        steps.append(f"ALTER TABLE {n.m} ADD COLUMN search_text MEDIUMTEXT NULL")
    steps += [_backfill_search_text(n), _add_fulltext(n)]
    return steps


#: Rows read per backfill query, and characters of search text per UPDATE.
_BACKFILL_ROWS = 200
_BACKFILL_CHARS = 1 << 20


def _backfill_search_text(n: Names) -> Generator[Op[Any], Rows, None]:
    """``search_text`` of the rows stored before migration 4 (unreadable ones get "")."""
    last = 0
    while True:
        rows = yield Op(f"SELECT id, message FROM {n.m} WHERE id > %s AND search_text IS NULL"
                        " ORDER BY id LIMIT %s", (last, _BACKFILL_ROWS), list)
        if not rows:
            return
        batch: list[tuple[int, str]] = []
        for row_id, message in rows:
            decoded = decode_messages([message], skip_invalid=True)
            batch.append((int(row_id), search_text(decoded[0]) if decoded else ""))
            if sum(len(text) for _, text in batch) > _BACKFILL_CHARS:
                yield _update_search_text(n, batch)
                batch = []
        if batch:
            yield _update_search_text(n, batch)
        last = int(rows[-1][0])


def _update_search_text(n: Names, batch: Sequence[tuple[int, str]]) -> Op[None]:
    cases = " ".join(["WHEN %s THEN %s"] * len(batch))
    ids = ", ".join(["%s"] * len(batch))
    params = (*(v for pair in batch for v in pair), *(row_id for row_id, _ in batch))
    return Op(f"UPDATE {n.m} SET search_text = CASE id {cases} END WHERE id IN ({ids})",
              params, no_result)


def _add_fulltext(n: Names) -> Generator[Op[Any], Rows, None]:
    """The FULLTEXT index, built without stopwords (InnoDB fixes the stopword list of an
    index when it is built; with none, every word a search asks for is indexed, only
    words shorter than ``innodb_ft_min_token_size`` are not)."""
    rows = yield Op("SELECT 1 FROM information_schema.statistics WHERE table_schema ="
                    " DATABASE() AND table_name = %s AND index_name = 'search'",
                    (n.table,), list)
    if not rows:
        yield Op("SET @threadline_stopword = @@SESSION.innodb_ft_enable_stopword;"
                 " SET SESSION innodb_ft_enable_stopword = OFF;"
                 f" ALTER TABLE {n.m} ADD FULLTEXT KEY search (search_text);"
                 " SET SESSION innodb_ft_enable_stopword = @threadline_stopword",
                 (), no_result)


#: Schema migrations, in order; the schema table holds how many have run. Each gets the
#: columns the messages and sessions tables have, and returns statements, or generators
#: of ops for steps that read first (:func:`setup_steps` drives them).
def _migration_5(n: Names, columns: set[str]) -> list[str | Generator[Op[Any], Rows, None]]:
    """The id-order index ``id_order (id_head)`` (InnoDB appends the primary key ``sid``):
    a listing by id walks it instead of sorting every session."""
    return [_add_key(n, "id_order", f"ALTER TABLE {n.s} ADD KEY id_order (id_head)")]


def _add_key(n: Names, key: str, ddl: str) -> Generator[Op[Any], Rows, None]:
    """``ddl`` unless the sessions table has ``key`` already (DDL commits by itself: a
    setup killed after it finds the key there)."""
    rows = yield Op("SELECT 1 FROM information_schema.statistics WHERE table_schema ="
                    " DATABASE() AND table_name = %s AND index_name = %s",
                    (f"{n.table}_sessions", key), list)
    if not rows:
        yield Op(ddl, (), no_result)


MIGRATIONS: list[Callable[[Names, set[str]], Sequence[str | Generator[Op[Any], Rows, None]]]] = [
    _migration_1, _migration_2, _migration_3, _migration_4, _migration_5]


class ServerLimits(NamedTuple):
    """What setup learns of the server: ``max_allowed_packet`` (bytes), and the
    shortest and longest word its FULLTEXT indexes hold (characters)."""

    max_packet: int
    min_word: int
    max_word: int


def setup_steps(n: Names) -> Generator[Op[Any], Rows, ServerLimits]:
    """Create or migrate the schema; returns the server's limits."""
    # DDL commits implicitly in MySQL: a named lock serialises concurrent setups.
    # The lock is released at the end, or with the connection the shells close on error.
    yield Op("SELECT GET_LOCK(%s, 30)", (f"threadline:{n.table}",), no_result)
    rows = yield Op(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = DATABASE() AND table_name IN (%s, %s)",
        (n.table, f"{n.table}_schema"), list)
    existing = {_text(r[0]) for r in rows}
    if f"{n.table}_schema" not in existing:
        if n.table in existing:
            raise ConfigurationError(
                f"table {n.table!r} exists but was not created by threadline; "
                "choose another table name with table=...")
        yield Op(f"CREATE TABLE {n.schema} (version INT NOT NULL) {_TABLE_OPTIONS}",
                  (), no_result)
        yield Op(f"INSERT INTO {n.schema} VALUES (0)", (), no_result)
    rows = yield Op(f"SELECT version FROM {n.schema}", (), list)
    version = int(rows[0][0])
    if version > len(MIGRATIONS):
        raise StoreError(
            f"the schema of table {n.table!r} is version {version}, newer than this "
            f"threadline knows ({len(MIGRATIONS)}); upgrade threadline")
    columns: set[str] = set()
    if 0 < version < len(MIGRATIONS):
        rows = yield Op("SELECT column_name FROM information_schema.columns"
                        " WHERE table_schema = DATABASE() AND table_name IN (%s, %s)",
                        (n.table, f"{n.table}_sessions"), list)
        columns = {_text(r[0]) for r in rows}
    for migration in MIGRATIONS[version:]:
        yield from _steps(migration(n, columns))
    if version < len(MIGRATIONS):
        yield Op(f"UPDATE {n.schema} SET version = %s", (len(MIGRATIONS),), no_result)
    rows = yield Op("SELECT @@max_allowed_packet, @@innodb_ft_min_token_size,"
                    " @@innodb_ft_max_token_size, RELEASE_LOCK(%s)",
                    (f"threadline:{n.table}",), list)
    packet, low, high = (int(value) for value in rows[0][:3])
    return ServerLimits(packet, low, min(high, MAX_INDEXED_WORD))


def _steps(items: Iterable[str | Generator[Op[Any], Rows, None]]
           ) -> Generator[Op[Any], Rows, None]:
    for item in items:
        if isinstance(item, str):
            yield Op(item, (), no_result)
        else:
            yield from item


def _append_op(n: Names, session_id: str, messages: Sequence[BaseMessage],
               texts: Sequence[str], ttl: float | None) -> Op[None]:
    """``messages`` (encoded as ``texts``) appended to the session in one round trip;
    the statement's text is made once per table and batch size (:func:`_append_query`)."""
    # The columns of migration 4, unless MIGRATIONS was cut short (as tests do to write
    # the tables of an older threadline): the append writes what the schema has.
    new = len(MIGRATIONS) >= 4
    message_ids = [message.id for message in messages]
    if new:
        rows = [v for message, key, text in zip(messages, message_ids, texts, strict=True)
                for v in (_message_key(key), text, search_text(message))]
    else:
        rows = [v for key, text in zip(message_ids, texts, strict=True)
                for v in (_message_key(key), text)]
    key = _hash(session_id)
    params = (key, _id_bytes(session_id), _micros(ttl), *rows, key)
    # Safe to run again after a dropped connection only if every message has an id.
    return Op(_append_query(n.table, len(texts), new), params, no_result,
              retry=None not in message_ids, write=True, texts=texts)


@functools.lru_cache(maxsize=256)
def _append_query(table: str, size: int, new: bool) -> str:
    """The text of :func:`_append_op`'s transaction for ``size`` messages (``new``: with
    the columns of migration 4)."""
    n = Names(table)
    expired = f"expires_at <= {_NOW}"
    # An expired session forgets its title, metadata, owner and fork with its messages.
    forget = "".join(f" {column} = IF({expired}, NULL, {column}),"
                     for column in _SESSION_COLUMNS) if new else ""
    # ON DUPLICATE KEY UPDATE assigns left to right and later expressions see earlier
    # results, so everything that looks at the old expires_at comes before it. An
    # expired (unpurged) session restarts: its older messages are deleted below.
    # Each statement costs a server turn, so none is spent on variables: the session's
    # sid is LAST_INSERT_ID() (the upsert hands it over, and it stays until a statement
    # inserts a row: the messages' INSERT reads it for every row, as LAST_INSERT_ID()
    # is the previous statement's value throughout a statement), the UPDATE after it
    # finds the row by its hash, and ROW_COUNT() there is the INSERT's. The DELETE (of an
    # expired session's rows, none for a live one) is a single-table one: a multi-table
    # DELETE costs the server more, even deleting nothing.
    query = (
        "START TRANSACTION;"
        f" INSERT INTO {n.s} (session_hash, session_id, created_at, updated_at, expires_at,"
        " message_count)"
        f" VALUES (%s, %s, {_NOW}, {_NOW}, {_TTL}, 0)"
        " ON DUPLICATE KEY UPDATE sid = LAST_INSERT_ID(sid),"
        f" created_at = IF({expired}, VALUES(created_at), created_at),"
        f" message_count = IF({expired}, 0, message_count),"
        f" floor_id = IF({expired}, (SELECT COALESCE(MAX(id), 0) FROM {n.m}), floor_id),"
        f"{forget} updated_at = VALUES(updated_at),"
        f" expires_at = COALESCE(VALUES(expires_at), IF({expired}, NULL, expires_at));"
        f" DELETE FROM {n.m} WHERE sid = LAST_INSERT_ID()"
        f" AND id <= (SELECT floor_id FROM {n.s} WHERE sid = LAST_INSERT_ID());"
        f" INSERT INTO {n.m} (sid, msg_key, message{', search_text' if new else ''}) VALUES "
        + ", ".join([f"(LAST_INSERT_ID(), %s, %s{', %s' if new else ''})"] * size)
        + " ON DUPLICATE KEY UPDATE id = id;"
        f" UPDATE {n.s} SET message_count = message_count + ROW_COUNT()"
        " WHERE session_hash = %s; COMMIT"
    )
    return query


def _get_op(n: Names, session_id: str, last: int | None,
            skip_invalid: bool = False) -> Op[list[BaseMessage]]:
    base = (f"SELECT m.message FROM {n.s} AS s JOIN {n.m} AS m ON m.sid = s.sid"
            f" WHERE s.session_hash = %s AND s.session_id = %s AND {_LIVE}")
    params: tuple[Any, ...] = (_hash(session_id), _id_bytes(session_id))
    if last is None:
        return Op(base + " ORDER BY m.id", params,
                   lambda rows: decode_messages([r[0] for r in rows], session_id=session_id,
                                                skip_invalid=skip_invalid))
    return Op(base + " ORDER BY m.id DESC LIMIT %s", (*params, last),
               lambda rows: decode_messages([r[0] for r in reversed(rows)],
                                            session_id=session_id, skip_invalid=skip_invalid,
                                            from_end=True))


def _after_op(n: Names, session_id: str, after: int, limit: int) -> Op[Rows]:
    """One page of a streamed read: the next ``limit`` rows ``(id, message)`` after
    message ``after``, on the ``(sid, id)`` key."""
    query = (f"SELECT m.id, m.message FROM {n.s} AS s JOIN {n.m} AS m ON m.sid = s.sid"
             f" WHERE s.session_hash = %s AND s.session_id = %s AND {_LIVE} AND m.id > %s"
             " ORDER BY m.id LIMIT %s")
    return Op(query, (_hash(session_id), _id_bytes(session_id), after, limit), list)


def _delete_op(n: Names, session_id: str) -> Op[bool]:
    # True if the session had live messages or live records. The recsets row is locked
    # first, as every write of records does (no deadlock with a put); that SELECT INTO
    # returns no rows, so the count is the op's result.
    query = (
        "START TRANSACTION;"
        f" SELECT COUNT(*) INTO @threadline_locked FROM {n.rs}"
        " WHERE session_hash = %s AND session_id = %s FOR UPDATE;"
        f" SELECT COUNT(*) + EXISTS (SELECT 1 FROM {n.rs} AS x JOIN {n.r} AS r"
        f" ON r.rid = x.rid WHERE x.session_hash = %s AND x.session_id = %s AND {_live('x')})"
        f" FROM {n.s} AS s WHERE s.session_hash = %s AND s.session_id = %s"
        f" AND {_LIVE} FOR UPDATE;"
        f" DELETE s, m FROM {n.s} AS s LEFT JOIN {n.m} AS m ON m.sid = s.sid"
        " WHERE s.session_hash = %s AND s.session_id = %s;"
        f" DELETE x, r FROM {n.rs} AS x LEFT JOIN {n.r} AS r ON r.rid = x.rid"
        " WHERE x.session_hash = %s AND x.session_id = %s; COMMIT")
    key = (_hash(session_id), _id_bytes(session_id))
    return Op(query, key * 5, lambda rows: int(rows[0][0]) > 0, write=True)


def _expire_op(n: Names, session_id: str, ttl: float | None) -> Op[None]:
    # The recsets row first, then the sessions row: the order of every write.
    query = ("START TRANSACTION;"
             f" UPDATE {n.rs} AS s SET s.expires_at = {_TTL}"
             f" WHERE s.session_hash = %s AND s.session_id = %s AND {_LIVE};"
             f" UPDATE {n.s} AS s SET s.expires_at = {_TTL}"
             f" WHERE s.session_hash = %s AND s.session_id = %s AND {_LIVE}; COMMIT")
    params = (_micros(ttl), _hash(session_id), _id_bytes(session_id))
    return Op(query, params * 2, no_result, write=True)


def _purge_op(n: Names) -> Op[int]:
    # The count is what is deleted: rows are locked FOR UPDATE. Records go first (the
    # lock order of every write; a DELETE has no result set, so the count is the first).
    query = (
        "START TRANSACTION;"
        f" DELETE x, r FROM {n.rs} AS x LEFT JOIN {n.r} AS r ON r.rid = x.rid"
        f" WHERE x.expires_at <= {_NOW};"
        f" SELECT COUNT(*) FROM {n.s} WHERE expires_at <= {_NOW} FOR UPDATE;"
        f" DELETE s, m FROM {n.s} AS s LEFT JOIN {n.m} AS m ON m.sid = s.sid"
        f" WHERE s.expires_at <= {_NOW}; COMMIT")
    return Op(query, (), lambda rows: int(rows[0][0]), write=True)


def _destroy_op(n: Names) -> Op[None]:
    return Op(f"DROP TABLE IF EXISTS {n.m}, {n.s}, {n.r}, {n.rs}, {n.schema}", (), no_result,
              write=True)


PING: Op[None] = Op("SELECT 1", (), no_result)
