"""``SQLChatMessageHistory`` with langchain-community's constructor, on threadline stores.

Code written for LangChain creates one history object per turn::

    SQLChatMessageHistory(session_id, connection="sqlite:///chat.db")

Here that object is a :class:`~threadline.stores.StoreHistory` on
``shared_store(url, table=table_name)``: the store — so the connection pool and the
once-per-process schema setup — is shared by every object with the same URL and table,
instead of a new SQLAlchemy engine per turn. The messages table has LangChain's columns
(``id``, ``session_id``, ``message``), so an existing LangChain ``message_store`` table is
read and extended in place (its sessions are indexed by the first setup).

SQLite, PostgreSQL and MySQL/MariaDB URLs are accepted, with SQLAlchemy ``+driver``
suffixes (``postgresql+psycopg://``); an SQLAlchemy ``Engine`` or ``AsyncEngine`` is
turned into its URL. SQLAlchemy itself is never imported.
"""

from __future__ import annotations

import warnings
from typing import Any

from threadline._errors import ConfigurationError, InputError
from threadline.stores import shared_store
from threadline.stores._base import StoreHistory
from threadline.stores._url import StoreURL

__all__ = ["SQL_SCHEMES", "SQLChatMessageHistory", "connection_url"]

SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb")


def connection_url(connection: object) -> StoreURL:
    """A :class:`StoreURL` from a URL string, a StoreURL or an SQLAlchemy (Async)Engine."""
    if isinstance(connection, str | StoreURL):
        url = StoreURL.parse(connection)
    else:
        engine_url = getattr(connection, "url", None)
        render = getattr(engine_url, "render_as_string", None)
        if render is None:
            raise InputError(
                "connection must be a database URL such as 'sqlite:///chat.db' or an "
                f"SQLAlchemy Engine, got {type(connection).__name__}"
            )
        url = StoreURL.parse(str(render(hide_password=False)))
    if url.scheme not in SQL_SCHEMES:
        raise ConfigurationError(
            f"SQLChatMessageHistory needs an SQL database URL ({', '.join(SQL_SCHEMES)}), "
            f"got {url.render()!r}; for other stores use open_store(url).history(session_id)"
        )
    return url


class SQLChatMessageHistory(StoreHistory):
    """A chat history in an SQL table, constructed like langchain-community's.

    >>> history = SQLChatMessageHistory("s1", connection="sqlite:///chat.db")
    >>> history.add_user_message("hi")
    >>> [m.content for m in history.messages]
    ['hi']

    ``connection`` is a URL (``sqlite:///chat.db``, ``postgresql://user@host/db``,
    ``mysql+pymysql://user@host/db``) or an SQLAlchemy Engine; ``connection_string`` is
    its deprecated spelling. ``table_name`` names the messages table. ``store_options``
    passes store options such as ``ttl`` or ``pool_size``.
    """

    stamp_ids = False  # store messages as given, as LangChain does

    def __init__(
        self,
        session_id: str,
        connection_string: str | None = None,
        table_name: str = "message_store",
        session_id_field_name: str = "session_id",
        custom_message_converter: Any = None,
        connection: Any = None,
        engine_args: dict[str, Any] | None = None,
        async_mode: bool | None = None,
        *,
        ttl: float | None = None,
        store_options: dict[str, Any] | None = None,
    ) -> None:
        if custom_message_converter is not None:
            raise InputError(
                "custom_message_converter is not supported: threadline stores messages as "
                "LangChain message dicts (JSON) in the 'message' column; convert messages "
                "before adding them instead"
            )
        if session_id_field_name != "session_id":
            raise InputError(
                "session_id_field_name must be 'session_id': the column is named by the "
                f"store's schema, got {session_id_field_name!r}"
            )
        if engine_args:
            raise InputError(
                "engine_args is not supported (no SQLAlchemy engine is created); pass "
                "store options such as pool_size or connect_timeout in store_options"
            )
        if connection_string is not None:
            warnings.warn(
                "connection_string is deprecated; use connection=", DeprecationWarning,
                stacklevel=2,
            )
            if connection is not None:
                raise InputError("give connection or connection_string, not both")
            connection = connection_string
        if connection is None:
            raise InputError("SQLChatMessageHistory needs connection='sqlite:///chat.db' "
                             "(a database URL or an SQLAlchemy Engine)")
        del async_mode  # both the sync and the async methods always work
        url = connection_url(connection)
        self.table_name = table_name
        self.connection_url = url
        store = shared_store(url, table=table_name, **(store_options or {}))
        super().__init__(store, session_id, ttl=ttl)

    def __repr__(self) -> str:
        return (f"SQLChatMessageHistory({self.session_id!r}, "
                f"connection={self.connection_url.render()!r}, table_name={self.table_name!r})")
