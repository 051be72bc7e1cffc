"""What users pass as messages, made into messages; and messages rendered as text.

:func:`check_messages` guards every write of a history or store; :func:`convert_to_messages`
coerces the loose forms (strings, ``(role, content)`` tuples, OpenAI-style dicts, prompt
values). Both take other frameworks' messages through :mod:`threadline._foreign`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from threadline._errors import InputError
from threadline._foreign import convert as convert_foreign
from threadline._foreign import describe, framework_of
from threadline.messages._values import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

__all__ = [
    "check_messages",
    "convert_to_messages",
    "get_buffer_string",
    "not_a_message",
    "with_ids",
]


_ROLES: dict[str, type[BaseMessage]] = {
    "human": HumanMessage,
    "user": HumanMessage,
    "ai": AIMessage,
    "assistant": AIMessage,
    "system": SystemMessage,
    "developer": SystemMessage,
    "tool": ToolMessage,
    "function": FunctionMessage,
}


def not_a_message(value: object) -> InputError:
    """The error for a value stored as a message that is not one (one wording everywhere)."""
    if framework_of(value) is not None:
        return InputError(f"a chat history stores messages, got {describe(value)}, which is "
                          "not a message")
    return InputError(
        f"a chat history stores messages, got {type(value).__name__}; "
        "wrap text in HumanMessage(...) or AIMessage(...)"
    )


def with_ids(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The messages, each without an ``id`` replaced by a copy with a fresh one (a UUID4
    hex string); the caller's objects are left as they are. Writers give every message
    an id before the first attempt, so a retried append stores nothing twice."""
    stamped: list[BaseMessage] = []
    for message in messages:
        if message.id is None:
            message = message.__copy__()
            message.id = uuid.UUID(bytes=os.urandom(16), version=4).hex
        stamped.append(message)
    return stamped


def check_messages(messages: Iterable[object]) -> list[BaseMessage]:
    """A batch to store, as a list; an :class:`InputError` if an item is not a message.

    Every history and store checks a batch here before writing any of it, so a bad
    item never leaves half a turn stored. Messages of other frameworks (LangChain's) are
    converted to threadline's on the way in (see :mod:`threadline._foreign`).
    """
    # The caller's list itself when it holds only our messages (the common case, on the
    # hot path of every turn); it is never changed here.
    batch: list[Any] = messages if type(messages) is list else list(messages)
    for message in batch:
        if not isinstance(message, BaseMessage) or not (
                message.id is None or type(message.id) is str):
            return [_checked(item) for item in batch]
    return batch


def _checked(item: object) -> BaseMessage:
    if isinstance(item, BaseMessage):
        if not (item.id is None or isinstance(item.id, str)):
            # Stored, it could never be read back (a stored id is a str or null).
            raise InputError(f"a message id must be a str or None, got "
                             f"{type(item.id).__name__} {item.id!r:.40}; nothing was stored")
        return item
    converted = convert_foreign("message", item)
    if converted is None:
        raise not_a_message(item)
    return converted  # type: ignore[no-any-return]


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
    if callable(to_messages):  # a prompt value
        if type(value).__module__.startswith("threadline."):
            return list(to_messages())  # ours holds our messages: no per-item check
        return [_convert_one(item) for item in to_messages()]
    if isinstance(value, list | tuple):
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            return [_from_role(value[0], value[1])]
        return [_convert_one(item) for item in value]
    if isinstance(value, dict):
        return [_convert_one(value)]
    converted = convert_foreign("message", value)
    if converted is not None:
        return [converted]
    raise InputError(
        f"cannot turn {describe(value)} into messages; expected a message, a str, "
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
    converted = convert_foreign("message", item)
    if converted is not None:
        return converted  # type: ignore[no-any-return]
    raise InputError(
        f"cannot turn {item!r:.80} into a message; expected a message, a str, "
        "a (role, content) tuple or a {'role': ..., 'content': ...} dict"
    )


def _from_role(role: str, content: Any, **extra: Any) -> BaseMessage:
    cls = _ROLES.get(role)
    if cls is None:
        raise InputError(f"unknown message role {role!r}; expected one of {sorted(_ROLES)}")
    return cls(content, **extra)


def get_buffer_string(
    messages: Iterable[BaseMessage], human_prefix: str = "Human", ai_prefix: str = "AI", *,
    system_prefix: str = "System", function_prefix: str = "Function",
    tool_prefix: str = "Tool", message_separator: str = "\n",
) -> str:
    """Render messages as ``"Human: hi\\nAI: hello"``, one message a line (LangChain's
    ``prefix`` format: an AI message's tool calls follow its text)."""
    lines = []
    for message in messages:
        # By class, so every chunk type reads as its plain type, as in LangChain.
        if isinstance(message, HumanMessage):
            prefix = human_prefix
        elif isinstance(message, AIMessage):
            prefix = ai_prefix
        elif isinstance(message, ChatMessage):
            prefix = message.role
        elif isinstance(message, SystemMessage):
            prefix = system_prefix
        elif isinstance(message, ToolMessage):
            prefix = tool_prefix
        elif isinstance(message, FunctionMessage):
            prefix = function_prefix
        else:
            prefix = message.type.capitalize()
        line = f"{prefix}: {message.text}"
        if isinstance(message, AIMessage):
            if message._tool_calls:
                line += str(message._tool_calls)
            elif message._additional_kwargs and "function_call" in message._additional_kwargs:
                line += str(message._additional_kwargs["function_call"])
        lines.append(line)
    return message_separator.join(lines)
