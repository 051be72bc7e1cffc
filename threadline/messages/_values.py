"""Chat messages as small, slotted values.

A message is compared by content (type and fields), costs a few dozen bytes beyond its
text, and is created without validation frameworks. The optional dict and list fields
(``additional_kwargs``, ``response_metadata``, ``tool_calls``…) are stored as ``None``
until first touched, so the millions of plain messages a store holds carry no empty
containers. Ids and timestamps are a store's business, not the message's.

>>> HumanMessage("hi") == HumanMessage(content="hi")
True
>>> (AIMessageChunk("Hel") + AIMessageChunk("lo")).content
'Hello'
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Literal, TypeAlias

from threadline._errors import InputError

__all__ = [
    "AIMessage",
    "AIMessageChunk",
    "BaseMessage",
    "Content",
    "HumanMessage",
    "SystemMessage",
    "ToolMessage",
    "check_messages",
    "convert_to_messages",
    "get_buffer_string",
    "merge_content",
]

Content: TypeAlias = "str | list[str | dict[str, Any]]"


def _check_content(content: object, cls: str) -> None:
    if not isinstance(content, str | list):
        raise InputError(
            f"{cls} content must be a str or a list of content blocks, "
            f"not {type(content).__name__}"
        )


class BaseMessage:
    """The fields every message has; use one of the concrete subclasses."""

    __slots__ = ("_additional_kwargs", "_response_metadata", "content", "id", "name")

    type: ClassVar[str] = "base"
    # Names of the optional fields, in the order LangChain's dicts list them.
    _extra_fields: ClassVar[tuple[str, ...]] = ()

    content: Content
    name: str | None
    id: str | None

    def __init__(
        self,
        content: Content,
        *,
        additional_kwargs: dict[str, Any] | None = None,
        response_metadata: dict[str, Any] | None = None,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        if type(content) is not str:
            _check_content(content, type(self).__name__)
        self.content = content
        self._additional_kwargs = additional_kwargs or None
        self._response_metadata = response_metadata or None
        self.name = name
        self.id = id

    @property
    def additional_kwargs(self) -> dict[str, Any]:
        if self._additional_kwargs is None:
            self._additional_kwargs = {}
        return self._additional_kwargs

    @additional_kwargs.setter
    def additional_kwargs(self, value: dict[str, Any]) -> None:
        self._additional_kwargs = value

    @property
    def response_metadata(self) -> dict[str, Any]:
        if self._response_metadata is None:
            self._response_metadata = {}
        return self._response_metadata

    @response_metadata.setter
    def response_metadata(self, value: dict[str, Any]) -> None:
        self._response_metadata = value

    @property
    def text(self) -> str:
        """The text of the message: ``content`` itself, or its text blocks joined."""
        content = self.content
        if isinstance(content, str):
            return content
        parts: list[str] = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "".join(parts)

    def _fields(self) -> dict[str, Any]:
        """All fields with their public (normalised) values, for equality and dicts."""
        fields: dict[str, Any] = {
            "content": self.content,
            "additional_kwargs": self._additional_kwargs or {},
            "response_metadata": self._response_metadata or {},
            "name": self.name,
            "id": self.id,
        }
        for field in self._extra_fields:
            fields[field] = getattr(self, field)
        return fields

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, BaseMessage)
        if self.content != other.content or self.id != other.id or self.name != other.name:
            return False
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, like LangChain's

    def __repr__(self) -> str:
        shown = [f"content={self.content!r}"]
        for key, value in self._fields().items():
            if key != "content" and value not in (None, {}, [], "success"):
                shown.append(f"{key}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def __getstate__(self) -> dict[str, Any]:
        return {slot: getattr(self, slot) for slot in _all_slots(type(self))}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)

    @classmethod
    def _from_data(cls, content: Content, data: dict[str, Any]) -> BaseMessage:
        """Rebuild a stored message without the keyword-argument round trip of
        ``__init__``: this runs once per message on every store read."""
        message = object.__new__(cls)
        message.content = content
        message._additional_kwargs = data.get("additional_kwargs") or None
        message._response_metadata = data.get("response_metadata") or None
        message.name = data.get("name")
        message.id = data.get("id")
        return message

    def copy(self, **changes: Any) -> BaseMessage:
        """A shallow copy with some fields replaced: ``msg.copy(content="new")``."""
        fields = self._fields()
        fields.update(changes)
        return type(self)(**fields)


def _all_slots(cls: type) -> list[str]:
    slots: list[str] = []
    for klass in cls.__mro__:
        slots.extend(getattr(klass, "__slots__", ()))
    return slots


class HumanMessage(BaseMessage):
    """A message from the user. ``HumanMessage("What is 2 + 2?")``"""

    __slots__ = ()
    type: ClassVar[str] = "human"

    def __init__(self, content: Content, *, example: bool = False, **kwargs: Any) -> None:
        # ``example`` only appears in langchain-core 0.x dicts; it carries no meaning.
        super().__init__(content, **kwargs)


class SystemMessage(BaseMessage):
    """Instructions for the model. ``SystemMessage("You are terse.")``"""

    __slots__ = ()
    type: ClassVar[str] = "system"


class AIMessage(BaseMessage):
    """A message from the model, possibly with tool calls and token usage."""

    __slots__ = ("_invalid_tool_calls", "_tool_calls", "usage_metadata")
    type: ClassVar[str] = "ai"
    _extra_fields: ClassVar[tuple[str, ...]] = (
        "tool_calls",
        "invalid_tool_calls",
        "usage_metadata",
    )

    usage_metadata: dict[str, Any] | None

    def __init__(
        self,
        content: Content,
        *,
        tool_calls: list[dict[str, Any]] | None = None,
        invalid_tool_calls: list[dict[str, Any]] | None = None,
        usage_metadata: dict[str, Any] | None = None,
        example: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(content, **kwargs)
        self._tool_calls = [_tool_call(c) for c in tool_calls] if tool_calls else None
        self._invalid_tool_calls = invalid_tool_calls or None
        self.usage_metadata = usage_metadata

    @classmethod
    def _from_data(cls, content: Content, data: dict[str, Any]) -> BaseMessage:
        message = super()._from_data(content, data)
        assert isinstance(message, AIMessage)
        calls = data.get("tool_calls")
        message._tool_calls = [_tool_call(c) for c in calls] if calls else None
        message._invalid_tool_calls = data.get("invalid_tool_calls") or None
        message.usage_metadata = data.get("usage_metadata")
        return message

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        if self._tool_calls is None:
            self._tool_calls = []
        return self._tool_calls

    @tool_calls.setter
    def tool_calls(self, value: list[dict[str, Any]]) -> None:
        self._tool_calls = value

    @property
    def invalid_tool_calls(self) -> list[dict[str, Any]]:
        if self._invalid_tool_calls is None:
            self._invalid_tool_calls = []
        return self._invalid_tool_calls

    @invalid_tool_calls.setter
    def invalid_tool_calls(self, value: list[dict[str, Any]]) -> None:
        self._invalid_tool_calls = value


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    if "type" in call:
        return call
    return {"name": call.get("name"), "args": call.get("args", {}), "id": call.get("id"),
            "type": "tool_call"}


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
        message._tool_call_chunks = data.get("tool_call_chunks") or None
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
            raw = chunk.get("args") or ""
            try:
                args = json.loads(raw) if raw else {}
                if not isinstance(args, dict):
                    raise ValueError("tool call arguments must be a JSON object")
            except ValueError as exc:
                invalid.append({"name": chunk.get("name"), "args": raw, "id": chunk.get("id"),
                                "error": str(exc), "type": "invalid_tool_call"})
            else:
                tool_calls.append({"name": chunk.get("name"), "args": args,
                                   "id": chunk.get("id"), "type": "tool_call"})
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


class ToolMessage(BaseMessage):
    """The result of a tool call, sent back to the model."""

    __slots__ = ("artifact", "status", "tool_call_id")
    type: ClassVar[str] = "tool"
    _extra_fields: ClassVar[tuple[str, ...]] = ("tool_call_id", "artifact", "status")

    tool_call_id: str
    artifact: Any
    status: Literal["success", "error"]

    def __init__(
        self,
        content: Content,
        *,
        tool_call_id: str,
        artifact: Any = None,
        status: Literal["success", "error"] = "success",
        **kwargs: Any,
    ) -> None:
        super().__init__(content, **kwargs)
        self.tool_call_id = str(tool_call_id)
        self.artifact = artifact
        self.status = status

    @classmethod
    def _from_data(cls, content: Content, data: dict[str, Any]) -> BaseMessage:
        tool_call_id = data.get("tool_call_id")
        if tool_call_id is None:
            raise ValueError("tool message has no 'tool_call_id'")
        message = super()._from_data(content, data)
        assert isinstance(message, ToolMessage)
        message.tool_call_id = str(tool_call_id)
        message.artifact = data.get("artifact")
        message.status = data.get("status") or "success"
        return message


_ROLES: dict[str, type[BaseMessage]] = {
    "human": HumanMessage,
    "user": HumanMessage,
    "ai": AIMessage,
    "assistant": AIMessage,
    "system": SystemMessage,
    "developer": SystemMessage,
    "tool": ToolMessage,
}


def not_a_message(value: object) -> InputError:
    """The error for a value stored as a message that is not one (one wording everywhere)."""
    return InputError(
        f"a chat history stores messages, got {type(value).__name__}; "
        "wrap text in HumanMessage(...) or AIMessage(...)"
    )


def check_messages(messages: Iterable[object]) -> list[BaseMessage]:
    """A batch to store, as a list; an :class:`InputError` if an item is not a message.

    Every history and store checks a batch here before writing any of it, so a bad
    item never leaves half a turn stored.
    """
    batch = list(messages)
    for message in batch:
        if not isinstance(message, BaseMessage):
            raise not_a_message(message)
    return batch  # type: ignore[return-value]  # every item was checked above


def convert_to_messages(value: object) -> list[BaseMessage]:
    """Coerce what users pass as "messages" into a list of messages.

    Accepts a message, a string (a human message), a ``(role, content)`` tuple, an
    OpenAI-style ``{"role": ..., "content": ...}`` dict, a prompt value, or a list of any
    of these.
    """
    if isinstance(value, BaseMessage):
        return [value]
    if isinstance(value, str):
        return [HumanMessage(value)]
    to_messages = getattr(value, "to_messages", None)
    if callable(to_messages):
        return list(to_messages())
    if isinstance(value, list | tuple):
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            return [_from_role(value[0], value[1])]
        return [_convert_one(item) for item in value]
    if isinstance(value, dict):
        return [_convert_one(value)]
    raise InputError(
        f"cannot turn {type(value).__name__} into messages; expected a message, a str, "
        "a (role, content) tuple, a {'role': ..., 'content': ...} dict, or a list of these"
    )


def _convert_one(item: object) -> BaseMessage:
    if isinstance(item, BaseMessage):
        return item
    if isinstance(item, str):
        return HumanMessage(item)
    if isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str):
        return _from_role(item[0], item[1])
    if isinstance(item, dict) and "role" in item:
        extra = {k: v for k, v in item.items() if k in ("name", "id", "tool_call_id")}
        return _from_role(str(item["role"]), item.get("content", ""), **extra)
    raise InputError(
        f"cannot turn {item!r:.80} into a message; expected a message, a str, "
        "a (role, content) tuple or a {'role': ..., 'content': ...} dict"
    )


def _from_role(role: str, content: Any, **extra: Any) -> BaseMessage:
    cls = _ROLES.get(role)
    if cls is None:
        raise InputError(f"unknown message role {role!r}; expected one of {sorted(_ROLES)}")
    return cls(content, **extra)


_PREFIXES = {"system": "System", "tool": "Tool"}


def get_buffer_string(
    messages: Iterable[BaseMessage], human_prefix: str = "Human", ai_prefix: str = "AI"
) -> str:
    """Render messages as ``"Human: hi\\nAI: hello"``, one message a line."""
    lines = []
    for message in messages:
        kind = message.type
        if kind == "human":
            prefix = human_prefix
        elif kind in ("ai", "AIMessageChunk"):
            prefix = ai_prefix
        else:
            prefix = _PREFIXES.get(kind, kind.capitalize())
        lines.append(f"{prefix}: {message.text}")
    return "\n".join(lines)
