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

import importlib
import threading
from typing import Any

from threadline._errors import ConfigurationError
from threadline.stores._base import (
    SessionInfo,
    SessionPage,
    Store,
    StoreHistory,
    session_key,
)
from threadline.stores._url import StoreURL

__all__ = [
    "BACKENDS",
    "ENTRY_POINT_GROUP",
    "SessionInfo",
    "SessionPage",
    "Store",
    "StoreHistory",
    "StoreURL",
    "backend_class",
    "open_store",
    "session_key",
    "shared_store",
]

ENTRY_POINT_GROUP = "threadline.stores"

BACKENDS: dict[str, str] = {
    "memory": "threadline.stores._memory:MemoryStore",
    "file": "threadline.stores._file:FileStore",
    "sqlite": "threadline.stores._sqlite:SQLiteStore",
    "postgresql": "threadline.stores._postgres:PostgresStore",
    "postgres": "threadline.stores._postgres:PostgresStore",
    "mysql": "threadline.stores._mysql:MySQLStore",
    "mariadb": "threadline.stores._mysql:MySQLStore",
    "redis": "threadline.stores._redis:RedisStore",
    "rediss": "threadline.stores._redis:RedisStore",
    "unix": "threadline.stores._redis:RedisStore",
    "cosmos": "threadline.stores._cosmos:CosmosStore",
    "dynamodb": "threadline.stores._dynamodb:DynamoDBStore",
}


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
_shared_lock = threading.Lock()


def shared_store(url: str | StoreURL, **options: Any) -> Store:
    """One store (so one connection pool) per URL and options, per process.

    The LangChain-shaped history classes are created once per turn by
    RunnableWithMessageHistory; they get their store here instead of connecting anew.
    """
    parsed = StoreURL.parse(url)
    key = (parsed.render(hide_password=False), tuple(sorted(options.items())))
    with _shared_lock:
        store = _shared.get(key)
        if store is None:
            store = _shared[key] = open_store(parsed, **options)
        return store
