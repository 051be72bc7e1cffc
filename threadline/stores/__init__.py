"""Stores chosen by URL.

>>> store = open_store("memory://")
>>> history = store.history("session-1")
>>> history.add_user_message("hi")
>>> [m.content for m in store.get_messages("session-1")]
['hi']

Built-in backends are listed in :data:`BACKENDS` as lazy ``"module:Class"`` strings, so
a backend's driver is imported only when its scheme is used. Third-party backends
register the same way through the ``threadline.stores`` entry-point group
(``myscheme = "mypackage.store:MyStore"``). A backend class is constructed as
``Class(url: StoreURL, **options)`` and validates its options with
:func:`~threadline.stores._url.parse_options`.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from typing import TYPE_CHECKING, Any

from threadline._errors import ConfigurationError
from threadline.stores._base import (
    SessionInfo,
    SessionPage,
    Store,
    StoreHistory,
    session_key,
)
from threadline.stores._sessions import SearchHit, StoreStats
from threadline.stores._url import StoreURL

if TYPE_CHECKING:
    from threadline.stores._memory import MemoryStore
    from threadline.stores.cosmos._store import CosmosStore
    from threadline.stores.dynamodb._store import DynamoDBStore
    from threadline.stores.file._store import FileStore
    from threadline.stores.redis._store import RedisStore
    from threadline.stores.sql._mysql import MySQLStore
    from threadline.stores.sql._postgres import PostgresStore
    from threadline.stores.sql._sqlite import SQLiteStore

__all__ = [
    "BACKENDS",
    "CosmosStore",
    "DynamoDBStore",
    "ENTRY_POINT_GROUP",
    "FileStore",
    "MemoryStore",
    "MySQLStore",
    "PostgresStore",
    "RedisStore",
    "SQLiteStore",
    "SearchHit",
    "SessionInfo",
    "SessionPage",
    "Store",
    "StoreHistory",
    "StoreStats",
    "StoreURL",
    "backend_class",
    "open_store",
    "session_key",
    "shared_store",
]

ENTRY_POINT_GROUP = "threadline.stores"

BACKENDS: dict[str, str] = {
    "memory": "threadline.stores._memory:MemoryStore",
    "file": "threadline.stores.file._store:FileStore",
    "sqlite": "threadline.stores.sql._sqlite:SQLiteStore",
    "postgresql": "threadline.stores.sql._postgres:PostgresStore",
    "postgres": "threadline.stores.sql._postgres:PostgresStore",
    "mysql": "threadline.stores.sql._mysql:MySQLStore",
    "mariadb": "threadline.stores.sql._mysql:MySQLStore",
    "redis": "threadline.stores.redis._store:RedisStore",
    "rediss": "threadline.stores.redis._store:RedisStore",
    "unix": "threadline.stores.redis._store:RedisStore",
    "cosmos": "threadline.stores.cosmos._store:CosmosStore",
    "dynamodb": "threadline.stores.dynamodb._store:DynamoDBStore",
}


# The backend classes, by name, for ``from threadline.stores import RedisStore``; each is
# imported on first use (with its driver), like the schemes above.
_CLASSES = {target.partition(":")[2]: target for target in BACKENDS.values()}


def __getattr__(name: str) -> Any:
    target = _CLASSES.get(name)
    if target is None:
        raise AttributeError(f"module 'threadline.stores' has no attribute {name!r}")
    module_name, _, class_name = target.partition(":")
    value = getattr(importlib.import_module(module_name), class_name)
    globals()[name] = value
    return value


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def backend_class(scheme: str) -> type[Store]:
    """The store class for a URL scheme: built-ins first, then entry points."""
    target = BACKENDS.get(scheme)
    if target is not None:
        module_name, _, class_name = target.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
    else:
        plugins = _entry_points()
        if scheme not in plugins:
            valid = sorted({*BACKENDS, *plugins})
            raise ConfigurationError(
                f"unknown store scheme {scheme!r}; valid schemes: {valid}"
            )
        cls = plugins[scheme].load()
    if not (isinstance(cls, type) and issubclass(cls, Store)):
        raise ConfigurationError(f"the backend for {scheme!r} is not a Store subclass")
    return cls


def open_store(url: str | StoreURL, **options: Any) -> Store:
    """Open the store a URL names; options may be URL query parameters or keywords.

    ``open_store("sqlite:///chat.db")``, ``open_store("postgresql://localhost/app",
    ttl=86400)``, ``open_store("redis://localhost:6379/0?key_prefix=chat:")``.
    """
    parsed = StoreURL.parse(url)
    return backend_class(parsed.scheme)(parsed, **options)


_shared: dict[tuple[str, tuple[tuple[str, Any], ...]], Store] = {}
#: Schemes whose ``+driver`` names another store (``redis+cluster://``); elsewhere it is
#: an SQLAlchemy driver name, which threadline ignores.
_DRIVER_CHOOSES_STORE = frozenset({"redis", "rediss"})
_shared_lock = threading.Lock()


def shared_store(url: str | StoreURL, **options: Any) -> Store:
    """One store (so one connection pool) per URL and options, per process.

    The LangChain-shaped history classes are created once per turn by
    RunnableWithMessageHistory; they get their store here instead of connecting anew.
    """
    parsed = StoreURL.parse(url)
    if parsed.scheme not in _DRIVER_CHOOSES_STORE:  # sqlite+pysqlite:// is sqlite://
        parsed = dataclasses.replace(parsed, driver=None)
    key = (parsed.render(hide_password=False), tuple(sorted(options.items())))
    with _shared_lock:
        store = _shared.get(key)
        if store is None:
            store = _shared[key] = open_store(parsed, **options)
        return store
