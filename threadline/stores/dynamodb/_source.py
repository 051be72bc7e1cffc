"""A reader of langchain-community's DynamoDB tables, for copying them into threadline's.

LangChain keeps one item per session, its messages in a ``History`` list (capped at
DynamoDB's 400 KB item size). :class:`LangChainDynamoDBSource` reads such a table with
the driver of a :class:`~threadline.stores.dynamodb._store.DynamoDBStore`, as a source for
:func:`~threadline.copy_sessions`; ``DynamoDBStore.langchain_source(...)`` makes one.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from threadline._errors import MessageFormatError, SkippedMessageWarning, StoreError
from threadline.messages._serialization import message_from_dict
from threadline.messages._values import BaseMessage
from threadline.stores._base import check_page_args, validate_session_id
from threadline.stores.dynamodb._items import _attribute_name, _plain

if TYPE_CHECKING:
    from threadline.stores.dynamodb._store import DynamoDBStore

__all__ = ["LangChainDynamoDBSource"]


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

    def get_messages(self, session_id: str, *, last: int | None = None,
                     skip_invalid: bool = False) -> list[BaseMessage]:
        """The session's messages; a bad entry raises MessageFormatError naming the
        session and its position in ``History`` (skipped, with a warning, if
        ``skip_invalid``)."""
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
        messages: list[BaseMessage] = []
        for index, entry in enumerate(history):
            try:
                messages.append(message_from_dict(entry))
            except MessageFormatError as exc:
                error = exc.located(session_id, index)
                if not skip_invalid:
                    raise error from exc
                warnings.warn(SkippedMessageWarning(error), stacklevel=2)
        if last is not None:
            return messages[-last:] if last > 0 else []
        return messages

    def close(self) -> None:
        self.store.close()

    def __repr__(self) -> str:
        return f"LangChainDynamoDBSource(table={self.store.table!r})"
