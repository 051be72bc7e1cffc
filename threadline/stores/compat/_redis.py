"""``RedisChatMessageHistory``: langchain-community's constructor on a shared Redis store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from threadline.stores._base import Store, StoreHistory
from threadline.stores.redis._store import RedisStore

if TYPE_CHECKING:
    import redis

__all__ = ["RedisChatMessageHistory"]


class RedisChatMessageHistory(StoreHistory):
    """LangChain's ``RedisChatMessageHistory``, on a shared connection pool.

    Same arguments and same data as ``langchain_community.chat_message_histories
    .RedisChatMessageHistory``, but objects created per turn (as RunnableWithMessageHistory
    does) share one store per URL and prefix instead of connecting anew, and a turn's
    messages are written in one round trip. Unlike LangChain's, ``key_prefix`` must not
    be empty and must end with ``:`` (so that no session id reaches another prefix's
    keys; see :mod:`threadline.stores.redis._store`).

    >>> history = RedisChatMessageHistory("user-1", url="redis://localhost:6379/0", ttl=600)
    >>> history.add_user_message("hi")
    >>> [(m.type, m.content) for m in history.messages]
    [('human', 'hi')]
    """

    stamp_ids = False  # store messages as given, as LangChain does

    def __init__(self, session_id: str, url: str = "redis://localhost:6379/0",
                 key_prefix: str = "message_store:", ttl: float | None = None, *,
                 redis_client: redis.Redis | None = None) -> None:
        from threadline.stores import shared_store

        store: Store
        if redis_client is not None:
            store = RedisStore.from_client(redis_client, key_prefix=key_prefix)
        else:
            store = shared_store(url, key_prefix=key_prefix)
        # LangChain treats a falsy ttl as "no expiry".
        super().__init__(store, session_id, ttl=ttl or None)
        self.key_prefix = key_prefix

    @property
    def redis_client(self) -> redis.Redis:
        store = self.store
        assert isinstance(store, RedisStore)
        return store.client

    @property
    def key(self) -> str:
        """The Redis key of this session's list (LangChain's name)."""
        return self.key_prefix + self.session_id
