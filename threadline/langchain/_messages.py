"""Messages and values across the LangChain boundary, both ways, losslessly.

Both libraries describe a message by the same dict (``{"type": ..., "data": {...}}``,
LangChain's ``message_to_dict``), so a conversion is one dict in the middle: every field
LangChain has (ids, names, ``tool_calls``, ``usage_metadata``, ``artifact``, ``role``...)
and every type (chunks, ``chat``, ``function``, ``remove``) crosses unchanged.

``to_langchain_value`` / ``from_langchain_value`` convert what flows through a chain:
messages, prompt values, lists and dicts of them, and LangChain's ``str`` subclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, overload

from threadline._errors import InputError, MissingDependencyError
from threadline.core._prompts import ChatPromptValue, StringPromptValue
from threadline.messages._serialization import message_from_dict, message_to_dict
from threadline.messages._values import BaseMessage

try:
    from langchain_core import messages as lc_messages
    from langchain_core import prompt_values as lc_prompt_values
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("langchain-core", "langchain") from exc

__all__ = [
    "from_langchain",
    "from_langchain_value",
    "message_from_langchain",
    "to_langchain",
    "to_langchain_value",
]

LCMessage = lc_messages.BaseMessage


def message_from_langchain(obj: object) -> BaseMessage | None:
    """threadline's copy of a LangChain message; ``None`` for anything else (the hook
    :mod:`threadline._foreign` calls)."""
    if not isinstance(obj, LCMessage):
        return None
    return message_from_dict(lc_messages.message_to_dict(obj))


def _message_to_langchain(message: BaseMessage) -> LCMessage:
    converted: LCMessage = lc_messages.messages_from_dict([message_to_dict(message)])[0]
    return converted


@overload
def to_langchain(messages: BaseMessage) -> LCMessage: ...
@overload
def to_langchain(messages: Iterable[BaseMessage]) -> list[LCMessage]: ...
def to_langchain(messages: BaseMessage | Iterable[BaseMessage]) -> Any:
    """LangChain's messages for threadline's: one message, or a list for an iterable.

    >>> to_langchain(HumanMessage("hi", id="m1"))
    HumanMessage(content='hi', additional_kwargs={}, response_metadata={}, id='m1')
    """
    if isinstance(messages, BaseMessage):
        return _message_to_langchain(messages)
    if isinstance(messages, LCMessage):
        return messages
    out: list[LCMessage] = []
    for message in messages:
        if isinstance(message, LCMessage):
            out.append(message)
        elif isinstance(message, BaseMessage):
            out.append(_message_to_langchain(message))
        else:
            raise InputError(f"to_langchain converts messages, got {type(message).__name__}")
    return out


@overload
def from_langchain(messages: LCMessage) -> BaseMessage: ...
@overload
def from_langchain(messages: Iterable[LCMessage]) -> list[BaseMessage]: ...
def from_langchain(messages: Any) -> Any:
    """threadline's messages for LangChain's: one message, or a list for an iterable.
    threadline messages pass through unchanged."""
    if isinstance(messages, BaseMessage):
        return messages
    one = message_from_langchain(messages)
    if one is not None:
        return one
    if isinstance(messages, str | bytes | dict) or not isinstance(messages, Iterable):
        raise InputError(f"from_langchain converts LangChain messages, got "
                         f"{type(messages).__name__}")
    out: list[BaseMessage] = []
    for message in messages:
        if isinstance(message, BaseMessage):
            out.append(message)
            continue
        converted = message_from_langchain(message)
        if converted is None:
            raise InputError(f"from_langchain converts LangChain messages, got "
                             f"{type(message).__name__}")
        out.append(converted)
    return out


def _walk(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """``leaf(value)``, or, when it leaves the value as it is, the same walk into lists,
    tuples and dicts (what flows through a chain nests messages in those)."""
    converted = leaf(value)
    if converted is not value:
        return converted
    if isinstance(value, list):
        return [_walk(item, leaf) for item in value]
    if isinstance(value, tuple):
        return tuple(_walk(item, leaf) for item in value)
    if isinstance(value, dict):
        return {key: _walk(item, leaf) for key, item in value.items()}
    return value


def _leaf_to_langchain(value: Any) -> Any:
    if isinstance(value, BaseMessage):
        return _message_to_langchain(value)
    if isinstance(value, ChatPromptValue):
        return lc_prompt_values.ChatPromptValue(messages=to_langchain(value.messages))
    if isinstance(value, StringPromptValue):
        return lc_prompt_values.StringPromptValue(text=value.text)
    return value


def _leaf_from_langchain(value: Any) -> Any:
    if isinstance(value, LCMessage):
        return message_from_dict(lc_messages.message_to_dict(value))
    if isinstance(value, str) and type(value) is not str:
        return str.__str__(value)  # LangChain's str subclasses, as plain text
    if isinstance(value, lc_prompt_values.ChatPromptValue):
        return ChatPromptValue(from_langchain(value.messages))
    if isinstance(value, lc_prompt_values.StringPromptValue):
        return StringPromptValue(value.text)
    return value


def to_langchain_value(value: Any) -> Any:
    """What a threadline step produced, as a LangChain step expects it."""
    return _walk(value, _leaf_to_langchain)


def from_langchain_value(value: Any) -> Any:
    """What a LangChain step produced, as a threadline step expects it."""
    return _walk(value, _leaf_from_langchain)
