"""Pieces of streamed messages: ``chunk + chunk`` concatenates, as in LangChain.

:class:`AIMessageChunk` also merges partial tool calls and token usage; the chunk types
of the other messages merge content and metadata. Each chunk turns back into its plain
message with ``to_message()``.

>>> (AIMessageChunk("Hel") + AIMessageChunk("lo")).content
'Hello'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from threadline._errors import InputError
from threadline.messages._values import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    Content,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    _all_slots,
    _list_of_dicts,
    tool_call_from_json,
)

__all__ = [
    "AIMessageChunk",
    "ChatMessageChunk",
    "FunctionMessageChunk",
    "HumanMessageChunk",
    "SystemMessageChunk",
    "ToolMessageChunk",
    "merge_chunks",
    "merge_content",
]

class AIMessageChunk(AIMessage):
    """A piece of a streamed answer; ``chunk + chunk`` concatenates.

    ``tool_call_chunks`` holds partial tool calls (``{"name", "args", "id", "index"}``
    with ``args`` a JSON string still growing); :meth:`to_message` parses them.
    """

    __slots__ = ("_tool_call_chunks",)
    type: ClassVar[str] = "AIMessageChunk"
    _extra_fields: ClassVar[tuple[str, ...]] = (*AIMessage._extra_fields, "tool_call_chunks")

    def __init__(
        self,
        content: Content = "",
        *,
        tool_call_chunks: list[dict[str, Any]] | None = None,
        chunk_position: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(content, **kwargs)
        self._tool_call_chunks = tool_call_chunks or None

    @classmethod
    def _from_data(cls, content: Content, data: dict[str, Any]) -> BaseMessage:
        message = super()._from_data(content, data)
        assert isinstance(message, AIMessageChunk)
        message._tool_call_chunks = _list_of_dicts(data, "tool_call_chunks")
        return message

    @property
    def tool_call_chunks(self) -> list[dict[str, Any]]:
        if self._tool_call_chunks is None:
            self._tool_call_chunks = []
        return self._tool_call_chunks

    @tool_call_chunks.setter
    def tool_call_chunks(self, value: list[dict[str, Any]]) -> None:
        self._tool_call_chunks = value

    def __add__(self, other: object) -> AIMessageChunk:
        if isinstance(other, AIMessageChunk):
            return merge_chunks([self, other])
        if isinstance(other, list | tuple) and all(isinstance(o, AIMessageChunk) for o in other):
            return merge_chunks([self, *other])
        return NotImplemented

    def to_message(self) -> AIMessage:
        """The finished :class:`AIMessage` this chunk (or sum of chunks) stands for."""
        tool_calls = list(self._tool_calls or ())
        invalid = list(self._invalid_tool_calls or ())
        for chunk in self._tool_call_chunks or ():
            call = tool_call_from_json(chunk.get("name"), chunk.get("args") or "",
                                       chunk.get("id"))
            (tool_calls if call["type"] == "tool_call" else invalid).append(call)
        return AIMessage(
            self.content,
            additional_kwargs=self._additional_kwargs,
            response_metadata=self._response_metadata,
            name=self.name,
            id=self.id,
            tool_calls=tool_calls,
            invalid_tool_calls=invalid,
            usage_metadata=self.usage_metadata,
        )


def merge_chunks(chunks: Sequence[AIMessageChunk]) -> AIMessageChunk:
    """Sum many chunks in one pass (``sum`` with ``+`` would copy the text each time)."""
    first = chunks[0]
    if len(chunks) == 1:
        return first
    texts: list[str] = []
    content: Content = ""
    all_str = all(type(c.content) is str for c in chunks)
    if all_str:
        texts = [c.content for c in chunks]  # type: ignore[misc]
        content = "".join(texts)
    else:
        for chunk in chunks:
            content = merge_content(content, chunk.content)
    additional: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    usage: dict[str, Any] | None = None
    tool_calls: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    call_chunks: dict[Any, dict[str, Any]] = {}
    name = id_ = None
    for chunk in chunks:
        if chunk._additional_kwargs:
            _merge_dicts(additional, chunk._additional_kwargs)
        if chunk._response_metadata:
            _merge_dicts(metadata, chunk._response_metadata)
        if chunk.usage_metadata:
            usage = _add_usage(usage, chunk.usage_metadata)
        if chunk._tool_calls:
            tool_calls.extend(chunk._tool_calls)
        if chunk._invalid_tool_calls:
            invalid.extend(chunk._invalid_tool_calls)
        for piece in chunk._tool_call_chunks or ():
            key = piece.get("index", len(call_chunks))
            slot = call_chunks.get(key)
            if slot is None:
                call_chunks[key] = dict(piece)
            else:
                for field in ("name", "id"):
                    if slot.get(field) is None and piece.get(field) is not None:
                        slot[field] = piece[field]
                slot["args"] = (slot.get("args") or "") + (piece.get("args") or "")
        name = name or chunk.name
        id_ = id_ or chunk.id
    return AIMessageChunk(
        content,
        additional_kwargs=additional,
        response_metadata=metadata,
        name=name,
        id=id_,
        tool_calls=tool_calls,
        invalid_tool_calls=invalid,
        usage_metadata=usage,
        tool_call_chunks=list(call_chunks.values()),
    )


def merge_content(left: Content, right: Content) -> Content:
    """Concatenate two contents; list blocks with the same ``index`` are joined."""
    if isinstance(left, str) and isinstance(right, str):
        return left + right
    left_list: list[str | dict[str, Any]] = [left] if isinstance(left, str) and left else (
        [] if isinstance(left, str) else list(left))
    right_list: list[str | dict[str, Any]] = [right] if isinstance(right, str) else right
    for block in right_list:
        if isinstance(block, dict) and "index" in block:
            for i, existing in enumerate(left_list):
                if isinstance(existing, dict) and existing.get("index") == block["index"]:
                    merged = dict(existing)
                    _merge_dicts(merged, {k: v for k, v in block.items() if k != "index"})
                    left_list[i] = merged
                    break
            else:
                left_list.append(block)
        elif isinstance(block, str) and left_list and isinstance(left_list[-1], str):
            left_list[-1] = left_list[-1] + block
        elif block != "":
            left_list.append(block)
    return left_list


def _merge_dicts(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if key not in into or into[key] is None:
            into[key] = value
        elif isinstance(into[key], dict) and isinstance(value, dict):
            merged = dict(into[key])
            _merge_dicts(merged, value)
            into[key] = merged
        elif isinstance(into[key], str) and isinstance(value, str):
            if into[key] != value:
                into[key] = into[key] + value
        elif isinstance(into[key], list) and isinstance(value, list):
            into[key] = into[key] + value
        elif value is not None:
            into[key] = value


def _add_usage(left: dict[str, Any] | None, right: dict[str, Any]) -> dict[str, Any]:
    if left is None:
        return dict(right)
    total = dict(left)
    for key, value in right.items():
        if isinstance(value, int) and isinstance(total.get(key), int):
            total[key] += value
        elif isinstance(value, dict) and isinstance(total.get(key), dict):
            total[key] = _add_usage(total[key], value)
        else:
            total.setdefault(key, value)
    return total


# -- chunks of the other types ---------------------------------------------------------------
# AIMessageChunk above carries tool-call merging; these merge content and metadata, the
# way langchain-core's chunks do, and each turns back into its plain class.


def _merge_status(left: str, right: str) -> Literal["success", "error"]:
    return "error" if "error" in (left, right) else "success"


def _merge_values(left: Any, right: Any) -> Any:
    if left is None:
        return right
    if right is None or left == right:
        return left
    if isinstance(left, dict) and isinstance(right, dict):
        merged = dict(left)
        _merge_dicts(merged, right)
        return merged
    if isinstance(left, str) and isinstance(right, str):
        return left + right
    if isinstance(left, list) and isinstance(right, list):
        return left + right
    return right


def _merge_plain(chunks: Sequence[BaseMessage]) -> BaseMessage:
    """The sum of chunks of one non-AI chunk class (checked by the caller)."""
    first = chunks[0]
    content: Content = first.content
    additional: dict[str, Any] = dict(first._additional_kwargs or {})
    metadata: dict[str, Any] = dict(first._response_metadata or {})
    name, id_ = first.name, first.id
    for chunk in chunks[1:]:
        content = merge_content(content, chunk.content)
        if chunk._additional_kwargs:
            _merge_dicts(additional, chunk._additional_kwargs)
        if chunk._response_metadata:
            _merge_dicts(metadata, chunk._response_metadata)
        name = name or chunk.name
        id_ = id_ or chunk.id
    fields: dict[str, Any] = {"additional_kwargs": additional, "response_metadata": metadata,
                              "name": name, "id": id_}
    if isinstance(first, ChatMessage):
        roles = {c.role for c in chunks if isinstance(c, ChatMessage)}
        if len(roles) > 1:
            raise InputError(f"cannot add ChatMessageChunks of different roles {sorted(roles)}")
        fields["role"] = first.role
    elif isinstance(first, ToolMessage):
        ids = {c.tool_call_id for c in chunks if isinstance(c, ToolMessage)}
        if len(ids) > 1:
            raise InputError(
                f"cannot add ToolMessageChunks of different tool calls {sorted(ids)}")
        artifact, status = first.artifact, first.status
        for chunk in chunks[1:]:
            assert isinstance(chunk, ToolMessage)
            artifact = _merge_values(artifact, chunk.artifact)
            status = _merge_status(status, chunk.status)
        fields.update(tool_call_id=first.tool_call_id, artifact=artifact, status=status)
    return type(first)(content, **fields)


def _add_chunks(left: BaseMessage, right: object) -> Any:
    if type(right) is type(left):
        return _merge_plain([left, right])
    if isinstance(right, list | tuple) and all(type(o) is type(left) for o in right):
        return _merge_plain([left, *right])
    return NotImplemented


def _plain(chunk: BaseMessage, cls: type[BaseMessage]) -> BaseMessage:
    message = object.__new__(cls)
    for slot in _all_slots(cls):
        object.__setattr__(message, slot, getattr(chunk, slot))
    return message


class HumanMessageChunk(HumanMessage):
    """A piece of a streamed human message; ``chunk + chunk`` concatenates."""

    __slots__ = ()
    type: ClassVar[str] = "HumanMessageChunk"

    def __add__(self, other: object) -> HumanMessageChunk:
        return _add_chunks(self, other)  # type: ignore[no-any-return]

    def to_message(self) -> HumanMessage:
        return _plain(self, HumanMessage)  # type: ignore[return-value]


class SystemMessageChunk(SystemMessage):
    """A piece of a streamed system message; ``chunk + chunk`` concatenates."""

    __slots__ = ()
    type: ClassVar[str] = "SystemMessageChunk"

    def __add__(self, other: object) -> SystemMessageChunk:
        return _add_chunks(self, other)  # type: ignore[no-any-return]

    def to_message(self) -> SystemMessage:
        return _plain(self, SystemMessage)  # type: ignore[return-value]


class ChatMessageChunk(ChatMessage):
    """A piece of a streamed message with any role; chunks of one role concatenate."""

    __slots__ = ()
    type: ClassVar[str] = "ChatMessageChunk"

    def __add__(self, other: object) -> ChatMessageChunk:
        return _add_chunks(self, other)  # type: ignore[no-any-return]

    def to_message(self) -> ChatMessage:
        return _plain(self, ChatMessage)  # type: ignore[return-value]


class FunctionMessageChunk(FunctionMessage):
    """A piece of a streamed function result; ``chunk + chunk`` concatenates."""

    __slots__ = ()
    type: ClassVar[str] = "FunctionMessageChunk"

    def __add__(self, other: object) -> FunctionMessageChunk:
        return _add_chunks(self, other)  # type: ignore[no-any-return]

    def to_message(self) -> FunctionMessage:
        return _plain(self, FunctionMessage)  # type: ignore[return-value]


class ToolMessageChunk(ToolMessage):
    """A piece of a streamed tool result; chunks of one tool call concatenate."""

    __slots__ = ()
    type: ClassVar[str] = "ToolMessageChunk"

    def __add__(self, other: object) -> ToolMessageChunk:
        return _add_chunks(self, other)  # type: ignore[no-any-return]

    def to_message(self) -> ToolMessage:
        return _plain(self, ToolMessage)  # type: ignore[return-value]
