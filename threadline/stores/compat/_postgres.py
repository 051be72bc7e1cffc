"""``PostgresChatMessageHistory``: LangChain's two PostgreSQL constructor shapes.

langchain-community's ``(session_id, connection_string, table_name)`` shares one pool per
URL (:func:`~threadline.stores.shared_store`); langchain-postgres' ``(table_name,
session_id, sync_connection=...)`` runs on the caller's psycopg connection. Both are
views on a :class:`~threadline.stores.sql._postgres.PostgresStore`: this module only maps
the arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from threadline._errors import ConfigurationError, InputError
from threadline.stores._base import Store, StoreHistory
from threadline.stores._url import StoreURL
from threadline.stores.sql._postgres import PostgresStore

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresChatMessageHistory"]


def _url_from_connection(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]
                         ) -> StoreURL:
    info = conn.info
    host = info.host if not info.host.startswith("/") else None
    return StoreURL("postgresql", username=info.user, host=host, port=int(info.port),
                    path="/" + info.dbname)


def _url_from_dsn(dsn: str) -> StoreURL:
    """A store URL from a libpq ``key=value`` connection string: every host
    (``host=h1,h2 port=5432,5433``) and the other parameters as URL options, so an
    unknown one is refused as in a URL."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError(
            "connection_string must be a postgresql:// URL or a libpq 'key=value' "
            "string; it could not be parsed") from exc
    hosts = str(params.pop("host", None) or "").split(",")
    ports = str(params.pop("port", None) or "").split(",")
    if len(ports) == 1:
        ports *= len(hosts)
    if len(ports) != len(hosts):
        raise ConfigurationError(
            f"connection_string names {len(hosts)} hosts and {len(ports)} ports")
    try:
        entries = [(host or None, int(port) if port else None)
                   for host, port in zip(hosts, ports, strict=True)]
    except ValueError as exc:
        raise ConfigurationError("connection_string has a port that is not a number") from exc
    user, password = _opt_str(params.pop("user", None)), _opt_str(params.pop("password", None))
    dbname = str(params.pop("dbname", None) or "")
    return StoreURL("postgresql", username=user, password=password, host=entries[0][0],
                    port=entries[0][1], path="/" + dbname,
                    query=tuple((key, str(value)) for key, value in params.items()
                                if value is not None),
                    extra_hosts=tuple(entries[1:]))


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


class PostgresChatMessageHistory(StoreHistory):
    """A PostgreSQL chat history with both LangChain constructor shapes.

    langchain-community's shape shares one pool per URL across the per-turn objects::

        history = PostgresChatMessageHistory(
            "user-1/conv-7", connection_string="postgresql://app@localhost/chat",
            table_name="message_store")

    langchain-postgres' shape uses your psycopg connection (any session id, not only
    UUIDs)::

        PostgresChatMessageHistory.create_tables(conn, "chat_history")
        history = PostgresChatMessageHistory("chat_history", "conv-7", sync_connection=conn)

    The tables are threadline's (``<table_name>`` and ``<table_name>_sessions``), not
    LangChain's: an existing LangChain table of that name is refused, never altered.
    """

    stamp_ids = False  # store messages as given, as LangChain does

    def __init__(self, *args: str, session_id: str | None = None,
                 connection_string: str | None = None, table_name: str | None = None,
                 sync_connection: psycopg.Connection[Any] | None = None,
                 async_connection: psycopg.AsyncConnection[Any] | None = None,
                 ttl: float | None = None) -> None:
        store: Store
        if sync_connection is not None or async_connection is not None:
            # langchain-postgres: (table_name, session_id, /, *, sync_connection, ...)
            if len(args) != 2 or session_id is not None or connection_string is not None:
                raise InputError(
                    "with a connection, call PostgresChatMessageHistory(table_name, "
                    "session_id, sync_connection=conn) or (..., async_connection=aconn)")
            table_name, session_id = args
            conn = sync_connection if sync_connection is not None else async_connection
            assert conn is not None
            store = PostgresStore(_url_from_connection(conn), table=table_name,
                                  sync_connection=sync_connection,
                                  async_connection=async_connection)
        else:
            # langchain-community: (session_id, connection_string, table_name)
            names = ("session_id", "connection_string", "table_name")
            if len(args) > len(names):
                raise InputError(f"PostgresChatMessageHistory takes at most 3 positional "
                                 f"arguments {names}, got {len(args)}")
            given = dict(zip(names, args, strict=False))
            for name, value in (("session_id", session_id),
                                ("connection_string", connection_string),
                                ("table_name", table_name)):
                if value is not None:
                    if name in given:
                        raise InputError(f"{name} given twice")
                    given[name] = value
            session_id = given.get("session_id")
            dsn = given.get("connection_string")
            if dsn is None:
                raise ConfigurationError(
                    "PostgresChatMessageHistory needs connection_string='postgresql://"
                    "user@host/db' (or sync_connection= / async_connection=)")
            url = StoreURL.parse(dsn) if "://" in dsn else _url_from_dsn(dsn)
            from threadline.stores import shared_store

            store = shared_store(url, table=given.get("table_name", "message_store"))
        if session_id is None:
            raise InputError("PostgresChatMessageHistory needs a session_id")
        super().__init__(store, session_id, ttl=ttl)

    @staticmethod
    def create_tables(connection: psycopg.Connection[Any], table_name: str, /) -> None:
        """Create (or migrate) the tables through your connection."""
        PostgresStore(_url_from_connection(connection), table=table_name,
                      sync_connection=connection).setup()

    @staticmethod
    async def acreate_tables(connection: psycopg.AsyncConnection[Any], table_name: str, /
                             ) -> None:
        await PostgresStore(_url_from_connection(connection), table=table_name,
                            async_connection=connection).asetup()

    @staticmethod
    def drop_table(connection: psycopg.Connection[Any], table_name: str, /) -> None:
        """Drop the tables (every session in them is lost)."""
        PostgresStore(_url_from_connection(connection), table=table_name,
                      sync_connection=connection).destroy()

    @staticmethod
    async def adrop_table(connection: psycopg.AsyncConnection[Any], table_name: str, /
                          ) -> None:
        await PostgresStore(_url_from_connection(connection), table=table_name,
                            async_connection=connection).adestroy()
