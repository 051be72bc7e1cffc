"""LangChain's DynamoDB shapes: ``DynamoDBChatMessageHistory`` and a reader of its tables.

:class:`DynamoDBChatMessageHistory` takes langchain-community's constructor and is a
view on a shared :class:`~threadline.stores._dynamodb.DynamoDBStore` (threadline's
layout); :class:`LangChainDynamoDBSource` reads a LangChain table (one item per
session) for :func:`~threadline.stores._transfer.copy_sessions`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from threadline._errors import InputError, StoreError
from threadline._messages import BaseMessage
from threadline._serialization import message_from_dict
from threadline.stores._base import StoreHistory, session_key, validate_session_id
from threadline.stores._dynamodb import DynamoDBStore
from threadline.stores._dynamodb_items import _attribute_name, _plain
from threadline.stores._memory import check_page_args

__all__ = ["DynamoDBChatMessageHistory", "LangChainDynamoDBSource"]


class LangChainDynamoDBSource:
    """Sessions of a langchain-community ``DynamoDBChatMessageHistory`` table, read-only.

    Scans for session ids, reads each session with one GetItem. Only tables keyed by the
    session id alone are read (not LangChain's custom composite ``key=``).
    """

    def __init__(self, store: DynamoDBStore, primary_key_name: str = "SessionId",
                 history_messages_key: str = "History") -> None:
        self.store = store
        self.pk_name = _attribute_name(primary_key_name)
        self.history_key = _attribute_name(history_messages_key)

    def iter_sessions(self, prefix: str = "", *, page_size: int = 500) -> Iterator[str]:
        del page_size  # one Scan, sorted here
        check_page_args(prefix, 1, None)
        kwargs: dict[str, Any] = {"TableName": self.store.table, "ProjectionExpression": "#pk",
                                  "ExpressionAttributeNames": {"#pk": self.pk_name}}
        ids: list[str] = []
        while True:
            page = self.store._call("scan", **kwargs)
            ids.extend(item[self.pk_name]["S"] for item in page.get("Items", [])
                       if "S" in item.get(self.pk_name, {}))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        yield from sorted(sid for sid in ids if sid.startswith(prefix))

    def get_messages(self, session_id: str, *, last: int | None = None) -> list[BaseMessage]:
        from boto3.dynamodb.types import TypeDeserializer  # type: ignore[import-untyped]

        found = self.store._call("get_item", TableName=self.store.table,
                                 Key={self.pk_name: {"S": validate_session_id(session_id)}},
                                 ConsistentRead=True)
        raw = found.get("Item", {}).get(self.history_key)
        if raw is None:
            return []
        history = _plain(TypeDeserializer().deserialize(raw))
        if not isinstance(history, list):
            raise StoreError(f"session {session_id!r}: {self.history_key!r} is not a list")
        messages = [message_from_dict(entry) for entry in history]
        if last is not None:
            return messages[-last:] if last > 0 else []
        return messages

    def close(self) -> None:
        self.store.close()

    def __repr__(self) -> str:
        return f"LangChainDynamoDBSource(table={self.store.table!r})"


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

    def get_messages(self, last: int | None = None) -> list[BaseMessage]:
        return super().get_messages(self._last(last))

    async def aget_messages(self, last: int | None = None) -> list[BaseMessage]:
        return await super().aget_messages(self._last(last))

    def __repr__(self) -> str:
        store = self.store
        table = store.table if isinstance(store, DynamoDBStore) else "?"
        return f"DynamoDBChatMessageHistory({table!r}, {self.session_id!r})"
