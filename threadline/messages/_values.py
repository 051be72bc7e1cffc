"""Chat messages as small, slotted values.

A message is compared by content (type and fields), costs a few dozen bytes beyond its
text, and is created without validation frameworks. The optional dict and list fields
(``additional_kwargs``, ``response_metadata``, ``tool_calls``…) are stored as ``None``
until first touched, so the millions of plain messages a store holds carry no empty
containers. Ids and timestamps are a store's business, not the message's. The base
class is in :mod:`threadline.messages._base`; the chunks of a streamed message are in
:mod:`threadline.messages._chunks`; coercing what users pass as messages, in
:mod:`threadline.messages._convert`.

>>> HumanMessage("hi") == HumanMessage(content="hi")
True
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from threadline._errors import InputError
from threadline.messages._base import BaseMessage as BaseMessage
from threadline.messages._base import Content as Content
from threadline.messages._base import TextAccessor as TextAccessor
from threadline.messages._base import _all_slots as _all_slots
from threadline.messages._base import _list_of_dicts as _list_of_dicts
from threadline.messages._base import _slots_of as _slots_of
from threadline.messages._tool_calls import tool_calls_from_openai

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


class HumanMessage(BaseMessage):
    """A message from the user. ``HumanMessage("What is 2 + 2?")``"""

    __slots__ = ()
    type: ClassVar[str] = "human"


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

    _repr_defaults: ClassVar[dict[str, Any]] = {"name": None, "id": None,
                                                 "usage_metadata": None}

    usage_metadata: dict[str, Any] | None

    def __init__(
        self,
        content: Content | None = None,
        *,
        tool_calls: list[dict[str, Any]] | None = None,
        invalid_tool_calls: list[dict[str, Any]] | None = None,
        usage_metadata: dict[str, Any] | None = None,
        additional_kwargs: dict[str, Any] | None = None,
        response_metadata: dict[str, Any] | None = None,
        name: str | None = None,
        id: str | None = None,
        type: str | None = None,
        content_blocks: list[dict[str, Any]] | None = None,
        example: bool = False,
    ) -> None:
        # BaseMessage.__init__ inlined: a model answer is built on every turn.
        if content.__class__ is not str or type is not None or (
                id is not None and id.__class__ is not str):
            content, id = self._unusual(content, id, type, content_blocks)
        self.content = content
        self._additional_kwargs = additional_kwargs or None
        self._response_metadata = response_metadata or None
        self.name = name
        self.id = id
        self._tool_calls = [_tool_call(c) for c in tool_calls] if tool_calls else None
        self._invalid_tool_calls = ([_invalid_call(c) for c in invalid_tool_calls]
                                    if invalid_tool_calls else None)
        self.usage_metadata = usage_metadata
        if (self._additional_kwargs is not None and not tool_calls and not invalid_tool_calls
                and self._additional_kwargs.get("tool_calls")):
            self._legacy_tool_calls(self._additional_kwargs["tool_calls"])

    def _legacy_tool_calls(self, raw: Any) -> None:
        # LangChain 0.1 kept OpenAI's tool calls only in additional_kwargs; LangChain
        # still parses them from there when no tool_calls are given, and so do we.
        try:
            calls, invalid = tool_calls_from_openai(raw)
        except (TypeError, KeyError, AttributeError):
            return  # not OpenAI's format: left in additional_kwargs, as LangChain does
        self._tool_calls, self._invalid_tool_calls = calls or None, invalid or None

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

    def pretty_repr(self, html: bool = False) -> str:
        """The title and content, then the tool calls, as LangChain prints them."""
        lines: list[str] = []
        for title, calls in (("Tool Calls:", self._tool_calls),
                             ("Invalid Tool Calls:", self._invalid_tool_calls)):
            if calls:
                lines.append(title)
                for call in calls:
                    lines.extend(_pretty_call(call))
        return (super().pretty_repr(html=html).strip() + "\n" + "\n".join(lines)).strip()


def _pretty_call(call: dict[str, Any]) -> list[str]:
    lines = [f"  {call.get('name', 'Tool')} ({call.get('id')})", f" Call ID: {call.get('id')}"]
    if call.get("error"):
        lines.append(f"  Error: {call.get('error')}")
    lines.append("  Args:")
    args = call.get("args")
    if isinstance(args, str):
        lines.append(f"    {args}")
    elif isinstance(args, dict):
        lines.extend(f"    {name}: {value}" for name, value in args.items())
    return lines


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


def _invalid_call(call: dict[str, Any]) -> dict[str, Any]:
    if "type" in call:
        return call
    return {"name": call.get("name"), "args": call.get("args"), "id": call.get("id"),
            "error": call.get("error"), "type": "invalid_tool_call"}


class ToolMessage(BaseMessage):
    """The result of a tool call, sent back to the model."""

    __slots__ = ("artifact", "status", "tool_call_id")
    type: ClassVar[str] = "tool"
    _extra_fields: ClassVar[tuple[str, ...]] = ("tool_call_id", "artifact", "status")

    _repr_defaults: ClassVar[dict[str, Any]] = {"name": None, "id": None, "artifact": None,
                                                 "status": "success"}
    _repr_hidden: ClassVar[tuple[str, ...]] = ("additional_kwargs", "response_metadata")

    tool_call_id: str
    artifact: Any
    status: Literal["success", "error"]

    def __init__(
        self,
        content: Any = None,
        *,
        tool_call_id: str,
        artifact: Any = None,
        status: Literal["success", "error"] = "success",
        additional_kwargs: dict[str, Any] | None = None,
        response_metadata: dict[str, Any] | None = None,
        name: str | None = None,
        id: str | None = None,
        type: str | None = None,
        content_blocks: list[dict[str, Any]] | None = None,
    ) -> None:
        # BaseMessage.__init__ inlined: a tool result is built on every tool call.
        if content.__class__ is not str or type is not None or (
                id is not None and id.__class__ is not str):
            content, id = self._unusual(content, id, type, content_blocks)
        self.content = content
        self._additional_kwargs = additional_kwargs or None
        self._response_metadata = response_metadata or None
        self.name = name
        self.id = id
        self.tool_call_id = str(tool_call_id)
        self.artifact = artifact
        self.status = status

    def _unusual(self, content: Any, id: Any, kind: str | None,
                 blocks: list[dict[str, Any]] | None) -> tuple[Content, str | None]:
        if content is not None and not isinstance(content, str):
            content = _tool_content(content)
        return super()._unusual(content, id, kind, blocks)

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


def _tool_content(content: Any) -> Content:
    """What a tool returned, as message content: LangChain turns a tuple into a list, and
    anything else that is not a str or a list (or a list item that is neither a str nor
    a dict) into its str."""
    if isinstance(content, tuple):
        content = list(content)
    if isinstance(content, list):
        return [item if isinstance(item, str | dict) else str(item) for item in content]
    return content if isinstance(content, str) else str(content)


class ChatMessage(BaseMessage):
    """A message with any role: ``ChatMessage("Looks good.", role="critic")``."""

    __slots__ = ("role",)
    type: ClassVar[str] = "chat"
    _extra_fields: ClassVar[tuple[str, ...]] = ("role",)

    role: str

    def __init__(self, content: Content | None = None, *, role: str, **kwargs: Any) -> None:
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

    def __init__(self, content: Content | None = None, *, name: str, **kwargs: Any) -> None:
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
