"""LangChain's message dict format, read and written faithfully.

A message is stored as ``{"type": "human", "data": {...fields...}}``. We write the
langchain-core 1.x layout (which ``langchain_core.messages.messages_from_dict`` reads
back into equal messages) and read both 1.x and 0.x dicts (0.x carried ``example``).
Reading also takes LangChain's other message dicts (``{"type": "human", "content": ...}``
and the ``{"lc": 1, "type": "constructor", ...}`` envelope), as ``convert_to_messages``
reads them; the stored layout stays the fast path.

Only the message classes in :data:`MESSAGE_TYPES` can come out of a dict: stored data
never names a class to import, so loading a history cannot run code.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from threadline._errors import InputError, MessageFormatError
from threadline.messages._chunks import (
    AIMessageChunk,
    ChatMessageChunk,
    FunctionMessageChunk,
    HumanMessageChunk,
    SystemMessageChunk,
    ToolMessageChunk,
)
from threadline.messages._convert import ENVELOPE_TYPES, envelope_fields, message_from_fields
from threadline.messages._values import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)

__all__ = [
    "MESSAGE_TYPES",
    "message_from_dict",
    "message_to_dict",
    "messages_from_dict",
    "messages_to_dict",
]

MESSAGE_TYPES: dict[str, type[BaseMessage]] = {
    "human": HumanMessage,
    "ai": AIMessage,
    "system": SystemMessage,
    "tool": ToolMessage,
    "chat": ChatMessage,
    "function": FunctionMessage,
    "remove": RemoveMessage,
    "AIMessageChunk": AIMessageChunk,
    "HumanMessageChunk": HumanMessageChunk,
    "SystemMessageChunk": SystemMessageChunk,
    "ToolMessageChunk": ToolMessageChunk,
    "ChatMessageChunk": ChatMessageChunk,
    "FunctionMessageChunk": FunctionMessageChunk,
}


def message_to_dict(message: BaseMessage) -> dict[str, Any]:
    """``{"type": ..., "data": {...}}`` for one message, in langchain-core 1.x layout."""
    data: dict[str, Any] = {
        "content": message.content,
        "additional_kwargs": message._additional_kwargs or {},
        "response_metadata": message._response_metadata or {},
        "type": message.type,
        "name": message.name,
        "id": message.id,
    }
    if isinstance(message, AIMessage):
        data["tool_calls"] = message._tool_calls or []
        data["invalid_tool_calls"] = message._invalid_tool_calls or []
        data["usage_metadata"] = message.usage_metadata
        if isinstance(message, AIMessageChunk):
            data["tool_call_chunks"] = message._tool_call_chunks or []
            data["chunk_position"] = message.chunk_position
    elif isinstance(message, ToolMessage):
        data["tool_call_id"] = message.tool_call_id
        data["artifact"] = message.artifact
        data["status"] = message.status
    elif isinstance(message, ChatMessage):
        data["role"] = message.role
    return {"type": message.type, "data": data}


def messages_to_dict(messages: Iterable[BaseMessage]) -> list[dict[str, Any]]:
    """Dicts for many messages; see :func:`message_to_dict`."""
    return [message_to_dict(m) for m in messages]


def message_from_dict(item: object) -> BaseMessage:
    """The message a LangChain message dict describes.

    Raises :class:`MessageFormatError` naming the problem for anything else.
    """
    if not isinstance(item, dict):
        raise MessageFormatError(
            f"a stored message must be a dict like {{'type': 'human', 'data': {{...}}}}, "
            f"got {type(item).__name__}"
        )
    kind = item.get("type")
    data = item.get("data")
    if data is None and "data" not in item and (kind == "constructor" or "content" in item):
        return _from_fields(item)
    cls = MESSAGE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None and not (isinstance(kind, str) and kind and isinstance(data, dict)
                            and "content" in data):
        raise MessageFormatError(
            f"unknown message type {kind!r}; expected one of {sorted(MESSAGE_TYPES)}"
        )
    if not isinstance(data, dict):
        raise MessageFormatError(f"message of type {kind!r} has no 'data' dict")
    if cls is None:
        return _unknown_type(str(kind), data)
    content = data.get("content", "")
    if not isinstance(content, str | list):
        raise MessageFormatError(
            f"message of type {kind!r} has content of type {type(content).__name__}; "
            "expected a str or a list"
        )
    try:
        return cls._from_data(content, data)
    except MessageFormatError:
        raise
    except Exception as exc:  # any shape _from_data did not expect: still our error
        raise MessageFormatError(f"malformed message of type {kind!r}: {exc}") from exc


def _from_fields(item: dict[str, Any]) -> BaseMessage:
    """A message from LangChain's other dict forms, read as ``convert_to_messages`` reads
    them: ``{"type": "human", "content": ...}`` and the ``{"lc": 1, "type":
    "constructor", "id": [..., "HumanMessage"], "kwargs": {...}}`` envelope of its
    ``dumpd`` (only message classes; the envelope never chooses what to import)."""
    if item.get("type") == "constructor" and envelope_fields(item) is None:
        raise MessageFormatError(
            f"an 'lc' constructor dict of {item.get('id')!r:.200} is not a message; "
            f"expected one of {sorted(ENVELOPE_TYPES)}")
    try:
        return message_from_fields(item)
    except InputError as exc:
        raise MessageFormatError(f"malformed message dict: {exc}") from exc


def _unknown_type(kind: str, data: dict[str, Any]) -> BaseMessage:
    """A well-formed message of a type this version does not know (a newer LangChain's,
    say): read as a :class:`ChatMessage` whose role is that type, with a warning, so one
    such row never makes the rest of a history unreadable. The stored row is untouched."""
    warnings.warn(
        f"a stored message has the unknown type {kind!r}; read as ChatMessage(role={kind!r})",
        RuntimeWarning, stacklevel=3)
    return message_from_dict({"type": "chat", "data": {**data, "role": kind}})


def messages_from_dict(items: Sequence[object]) -> list[BaseMessage]:
    """Messages from a list of LangChain message dicts."""
    return [message_from_dict(item) for item in items]
