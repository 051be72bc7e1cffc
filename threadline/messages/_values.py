"""Chat messages as small, slotted values.

A message is compared by content (type and fields), costs a few dozen bytes beyond its
text, and is created without validation frameworks. The optional dict and list fields
(``additional_kwargs``, ``response_metadata``, ``tool_calls``…) are stored as ``None``
until first touched, so the millions of plain messages a store holds carry no empty
containers. Ids and timestamps are a store's business, not the message's. The chunks of
a streamed message are in :mod:`threadline.messages._chunks`; coercing what users pass
as messages, in :mod:`threadline.messages._convert`.

>>> HumanMessage("hi") == HumanMessage(content="hi")
True
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal, TypeAlias

from threadline._errors import InputError

__all__ = [
    "AIMessage",
    "BaseMessage",
    "ChatMessage",
    "Content",
    "FunctionMessage",
    "HumanMessage",
    "RemoveMessage",
    "SystemMessage",
    "ToolMessage",
    "tool_call_from_json",
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

    def __copy__(self) -> BaseMessage:
        clone = object.__new__(type(self))
        for slot in _slots_of(type(self)):
            object.__setattr__(clone, slot, getattr(self, slot))
        return clone

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
        if type(content) is list and not all(type(b) is str or type(b) is dict
                                             for b in content):
            raise ValueError("content blocks must be str or dict")
        message.content = content
        kwargs, metadata = data.get("additional_kwargs"), data.get("response_metadata")
        name, id_ = data.get("name"), data.get("id")
        # One test for the common case (all well-formed); the details only when it fails.
        if not ((not kwargs or type(kwargs) is dict) and (not metadata or type(metadata) is dict)
                and (name is None or type(name) is str) and (id_ is None or type(id_) is str)):
            _dict_field(data, "additional_kwargs")
            _dict_field(data, "response_metadata")
            raise ValueError("'name' and 'id' must be str or null")
        message._additional_kwargs = kwargs or None
        message._response_metadata = metadata or None
        message.name = name
        message.id = id_
        return message

    def copy(self, **changes: Any) -> BaseMessage:
        """A shallow copy with some fields replaced: ``msg.copy(content="new")``."""
        fields = self._fields()
        fields.update(changes)
        return type(self)(**fields)


def _dict_field(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    if not value:
        return None
    if type(value) is not dict:
        raise ValueError(f"{key!r} must be a dict, got {type(value).__name__}")
    return value


def _list_of_dicts(data: dict[str, Any], key: str) -> list[dict[str, Any]] | None:
    value = data.get(key)
    if not value:
        return None
    if type(value) is not list or not all(type(item) is dict for item in value):
        raise ValueError(f"{key!r} must be a list of dicts")
    return value


_SLOTS: dict[type, tuple[str, ...]] = {}


def _slots_of(cls: type) -> tuple[str, ...]:
    slots = _SLOTS.get(cls)
    if slots is None:
        slots = _SLOTS[cls] = tuple(_all_slots(cls))
    return slots


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
        calls, invalid, usage = (data.get("tool_calls"), data.get("invalid_tool_calls"),
                                 data.get("usage_metadata"))
        if calls:
            _list_of_dicts(data, "tool_calls")
            if not all(type(c.get("name")) is str and type(c.get("args", {})) is dict
                       for c in calls):
                raise ValueError("each tool call needs a 'name' string and an 'args' dict")
            message._tool_calls = [_tool_call(c) for c in calls]
        else:
            message._tool_calls = None
        message._invalid_tool_calls = (_list_of_dicts(data, "invalid_tool_calls")
                                       if invalid else None)
        if usage and type(usage) is not dict:
            raise ValueError(f"'usage_metadata' must be a dict, got {type(usage).__name__}")
        message.usage_metadata = usage
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


def tool_call_from_json(name: Any, raw: str, call_id: Any) -> dict[str, Any]:
    """A tool call whose arguments arrived as JSON text: a ``tool_call``, or an
    ``invalid_tool_call`` saying why the text is not a JSON object (kept as written)."""
    try:
        args = json.loads(raw) if raw else {}
        if not isinstance(args, dict):
            raise ValueError("tool call arguments must be a JSON object")
    except ValueError as exc:
        return {"name": name, "args": raw, "id": call_id, "error": str(exc),
                "type": "invalid_tool_call"}
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    if "type" in call:
        return call
    return {"name": call.get("name"), "args": call.get("args", {}), "id": call.get("id"),
            "type": "tool_call"}


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



class ChatMessage(BaseMessage):
    """A message with any role: ``ChatMessage("Looks good.", role="critic")``."""

    __slots__ = ("role",)
    type: ClassVar[str] = "chat"
    _extra_fields: ClassVar[tuple[str, ...]] = ("role",)

    role: str

    def __init__(self, content: Content, *, role: str, **kwargs: Any) -> None:
        if not isinstance(role, str):
            raise InputError(f"a ChatMessage role must be a str, got {type(role).__name__}")
        super().__init__(content, **kwargs)
        self.role = role

    @classmethod
    def _from_data(cls, content: Content, data: dict[str, Any]) -> BaseMessage:
        role = data.get("role")
        if not isinstance(role, str):
            raise ValueError("chat message has no 'role' string")
        message = super()._from_data(content, data)
        assert isinstance(message, ChatMessage)
        message.role = role
        return message


class FunctionMessage(BaseMessage):
    """The result of an OpenAI legacy function call; ``name`` is the function's name."""

    __slots__ = ()
    type: ClassVar[str] = "function"

    def __init__(self, content: Content, *, name: str, **kwargs: Any) -> None:
        if not isinstance(name, str):
            raise InputError(f"a FunctionMessage needs the function's name as a str, "
                             f"got {type(name).__name__}")
        super().__init__(content, name=name, **kwargs)

    @classmethod
    def _from_data(cls, content: Content, data: dict[str, Any]) -> BaseMessage:
        if not isinstance(data.get("name"), str):
            raise ValueError("function message has no 'name' string")
        return super()._from_data(content, data)


class RemoveMessage(BaseMessage):
    """An instruction to delete the message with this ``id`` (LangGraph's ``add_messages``
    reducer applies it); it has no content. ``RemoveMessage(id="msg-1")``"""

    __slots__ = ()
    type: ClassVar[str] = "remove"

    def __init__(self, id: str, *, content: Content = "", **kwargs: Any) -> None:
        if content != "":
            raise InputError("a RemoveMessage has no content; pass only the id to remove")
        if not isinstance(id, str):
            raise InputError(f"a RemoveMessage needs the id to remove as a str, "
                             f"got {type(id).__name__}")
        super().__init__("", id=id, **kwargs)
