"""``DynamoDBChatMessageHistory``: langchain-community's constructor, threadline's layout.

A view on a shared :class:`~threadline.stores.dynamodb._store.DynamoDBStore`; LangChain's
own tables are read by :mod:`threadline.stores.dynamodb._source` for copying.
"""

from __future__ import annotations

from typing import Any

from threadline._errors import InputError
from threadline.messages._values import BaseMessage
from threadline.stores._base import StoreHistory, session_key
from threadline.stores.dynamodb._store import DynamoDBStore

__all__ = ["DynamoDBChatMessageHistory"]


class DynamoDBChatMessageHistory(StoreHistory):
    """A chat history in DynamoDB, constructed like langchain-community's.

    >>> history = DynamoDBChatMessageHistory("SessionTable", "s1", ttl=3600)
    >>> history.add_user_message("hi")

    The objects are views on ``shared_store(...)``, so the per-turn objects of
    RunnableWithMessageHistory share one boto3 client. The table has threadline's layout
    (one item per message: no 400 KB ceiling, no lost concurrent writes); migrate a
    LangChain table with ``copy_sessions(DynamoDBStore.langchain_source(old), store)``.
    ``key`` (LangChain's composite key) names the session by its values:
    ``{"UserId": "u1", "SessionId": "c1"}`` is session ``session_key("u1", "c1")``.
    ``history_size`` limits what is read to the newest messages (all are kept).
    """

    def __init__(
        self,
        table_name: str,
        session_id: str,
        endpoint_url: str | None = None,
        primary_key_name: str = "SessionId",
        key: dict[str, str] | None = None,
        boto3_session: Any = None,
        kms_key_id: str | None = None,
        ttl: int | None = None,
        ttl_key_name: str = "expireAt",
        history_size: int | None = None,
        history_messages_key: str | None = "History",
        *,
        coerce_float_to_decimal: bool = False,
        region: str | None = None,
        store_options: dict[str, Any] | None = None,
    ) -> None:
        from threadline.stores import shared_store

        if kms_key_id is not None:
            raise InputError("kms_key_id (client-side encryption) is not supported; use the "
                             "table's server-side encryption with a KMS key instead")
        if history_messages_key not in (None, "History"):
            raise InputError("history_messages_key only names LangChain's layout; threadline "
                             "stores one item per message")
        if history_size is not None and (isinstance(history_size, bool)
                                         or not isinstance(history_size, int)
                                         or history_size < 1):
            raise InputError(f"history_size must be a positive int, got {history_size!r}")
        del coerce_float_to_decimal  # messages are stored as JSON text: floats stay exact
        if key:
            session_id = session_key(*(str(v) for v in key.values()))
        options = {"table": table_name, "primary_key_name": primary_key_name,
                   "ttl_attribute": ttl_key_name, **(store_options or {})}
        for name, value in (("endpoint_url", endpoint_url), ("region", region),
                            ("boto3_session", boto3_session)):
            if value is not None:
                options[name] = value
        store = shared_store("dynamodb://", **options)
        self.history_size = history_size
        super().__init__(store, session_id, ttl=ttl)

    def _last(self, last: int | None) -> int | None:
        if self.history_size is None:
            return last
        return self.history_size if last is None else min(last, self.history_size)

    def get_messages(self, last: int | None = None, *,
                     skip_invalid: bool = False) -> list[BaseMessage]:
        return super().get_messages(self._last(last), skip_invalid=skip_invalid)

    async def aget_messages(self, last: int | None = None, *,
                            skip_invalid: bool = False) -> list[BaseMessage]:
        return await super().aget_messages(self._last(last), skip_invalid=skip_invalid)

    def __repr__(self) -> str:
        store = self.store
        table = store.table if isinstance(store, DynamoDBStore) else "?"
        return f"DynamoDBChatMessageHistory({table!r}, {self.session_id!r})"
