"""Responses input items as threadline messages, and back: pure functions, no SDK import.

One item is one message, so "the last N items" is "the last N messages" and a store
reads only those. An item becomes the message that shows it (the CLI, search, the
server and LangChain chains read it as they read any message):

==================================================  =====================================
item                                                message
==================================================  =====================================
message, role ``user`` (string or parts)            HumanMessage
message, role ``system`` / ``developer``            SystemMessage
message, role ``assistant``                         AIMessage (its text)
``function_call``                                   AIMessage with that tool call
``function_call_output``                            ToolMessage
anything else (``reasoning``, web / file search,    AIMessage with empty content
computer calls and outputs, unknown types)
==================================================  =====================================

Text parts (and refusals) become text blocks and ``input_image`` parts given by URL image
blocks; other parts (files, images by file id) are left out of the content. The exact item is
kept under ``additional_kwargs["openai_agents_item"]`` whenever the message alone would not
give it back identically (an item id, a status, a developer role, a part left out, an
unknown type...), so every item round-trips unchanged; a plain ``{"role": "user",
"content": "hi"}`` is stored as a plain ``HumanMessage("hi")``.

Messages written by other frameworks (no stored item) are shown as the items the model
would read: ``{"role": "user", "content": "hi"}`` for a text message of a user or the
system, an ``output_text`` message for an answer, ``function_call`` /
``function_call_output`` for tool calls and results (an answer with text and tool calls
gives several items). Item identities (for ``pop_item``'s tombstones) follow the server's
conversation items (:mod:`threadline.server._items`), so a popped item is hidden there too:
the message id, ``msg_at<position>`` for a message stored without one, ``<id>_fc<n>`` for
the calls of an answer that has several items.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from threadline._errors import InputError, InputTypeError
from threadline.messages._openai_format import responses_parts
from threadline.messages._values import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

__all__ = ["ITEM_KEY", "check_items", "copy_item", "item_to_message", "message_items"]

#: The additional_kwargs key holding an item the message alone would not give back.
ITEM_KEY = "openai_agents_item"

_MESSAGE_CLASSES: dict[str, type[BaseMessage]] = {
    "user": HumanMessage, "system": SystemMessage, "developer": SystemMessage,
    "assistant": AIMessage}
#: The roles whose ``{"role": ..., "content": "text"}`` a plain message gives back.
_EASY: dict[str, type[BaseMessage]] = {"user": HumanMessage, "system": SystemMessage}
_ROLES = {"human": "user", "system": "system", "ai": "assistant"}
_TEXT_PARTS = ("input_text", "output_text", "text")


def copy_item(value: Any, where: str = "item") -> Any:
    """A deep copy of a JSON value (dicts, lists, str, int, float, bool, None), so what is
    stored never aliases what the caller holds; anything else is refused (items are
    stored as JSON, as the SDK's own sessions store them)."""
    kind = type(value)
    if kind is str or value is None or kind is int or kind is float or kind is bool:
        return value
    if isinstance(value, dict):
        copied: dict[str, Any] = {}
        for key, inner in value.items():
            if type(key) is not str:
                raise InputTypeError(f"{where} has a key that is not a string: {key!r:.40}")
            copied[key] = copy_item(inner, where)
        return copied
    if isinstance(value, list | tuple):
        return [copy_item(inner, where) for inner in value]
    # subclasses (str and int enums...): their plain value, as JSON would keep it
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    raise InputTypeError(f"{where} holds a {type(value).__name__}, which is not JSON; "
                         "session items must be JSON values (dicts, lists, strings...)")


# -- item -> message ------------------------------------------------------------------------

def _blocks(parts: Sequence[Any]) -> list[str | dict[str, Any]]:
    """Content blocks for the parts other frameworks can read: text and images by URL."""
    blocks: list[str | dict[str, Any]] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in _TEXT_PARTS and isinstance(part.get("text"), str):
            blocks.append({"type": "text", "text": part["text"]})
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            blocks.append({"type": "text", "text": part["refusal"]})  # what was said
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            blocks.append({"type": "image_url", "image_url": {"url": part["image_url"]}})
    return blocks


def _plain_message(item: dict[str, Any], ident: str) -> BaseMessage | None:
    """The message showing ``item``, or ``None`` for an item with no message form."""
    kind = item.get("type")
    if kind is None or kind == "message":
        role = item.get("role")
        cls = _MESSAGE_CLASSES.get(role) if isinstance(role, str) else None
        content = item.get("content")
        if cls is None or not isinstance(content, str | list):
            return None
        if isinstance(content, list):
            blocks = _blocks(content)
            if not blocks:  # only parts other frameworks cannot show (files...)
                return cls("", id=ident)
            # An answer's single text part is its text (the form other frameworks write).
            if cls is AIMessage and len(blocks) == 1 and isinstance(blocks[0], dict) \
                    and blocks[0].get("type") == "text":
                return AIMessage(str(blocks[0]["text"]), id=ident)
            return cls(blocks, id=ident)
        return cls(content, id=ident)
    if kind == "function_call":
        name, call_id, arguments = item.get("name"), item.get("call_id"), item.get("arguments")
        if not isinstance(name, str) or not isinstance(call_id, str):
            return None
        try:
            args = json.loads(arguments) if isinstance(arguments, str) else None
        except ValueError:
            args = None
        return AIMessage("", tool_calls=[{"name": name, "args": args if isinstance(args, dict)
                                          else {}, "id": call_id}], id=ident)
    if kind == "function_call_output":
        call_id, output = item.get("call_id"), item.get("output")
        if not isinstance(call_id, str) or not isinstance(output, str | list):
            return None
        return ToolMessage(output if isinstance(output, str) else _blocks(output) or "",
                           tool_call_id=call_id, id=ident)
    return None


def item_to_message(item: Any, ident: str) -> BaseMessage:
    """The message storing ``item`` under the id ``ident`` (see the module's table).

    >>> item_to_message({"role": "user", "content": "hi"}, "m1")
    HumanMessage(content='hi', ..., id='m1')
    """
    if not isinstance(item, Mapping):
        raise InputTypeError(f"a session item must be a dict (a Responses input item), "
                             f"got {type(item).__name__}")
    if len(item) == 2 and type(item.get("content")) is str:
        # The SDK's most common item, a user's text (``Runner.run(agent, "text")``).
        role = item.get("role")
        cls = _EASY.get(role) if type(role) is str else None
        if cls is not None:
            return cls(item["content"], id=ident)
    copied = copy_item(dict(item))
    message = _plain_message(copied, ident)
    if message is None:
        return AIMessage("", id=ident, additional_kwargs={ITEM_KEY: copied})
    # No message carries an item's own id (a model output's): such an item is kept.
    if "id" in copied or _items_of(message, ident) != [copied]:
        message.additional_kwargs = {ITEM_KEY: copied}
    return message


# -- message -> items ------------------------------------------------------------------------

def _said(role: str, content: str | list[str | dict[str, Any]]) -> dict[str, Any]:
    """A message item of a user, the system or another role."""
    if isinstance(content, str):
        return {"role": role, "content": content}
    return {"type": "message", "role": role, "content": responses_parts(content, "input_text")}


def _answer(content: str | list[str | dict[str, Any]]) -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "status": "completed",
            "content": responses_parts(content, "output_text")}


def _items_of(message: BaseMessage, ident: str) -> list[dict[str, Any]]:
    """The items a message without a stored item is shown as."""
    if isinstance(message, ToolMessage):
        content = message.content
        return [{"type": "function_call_output", "call_id": message.tool_call_id,
                 "output": content if isinstance(content, str)
                 else responses_parts(content, "input_text")}]
    if isinstance(message, AIMessage):
        calls = message._tool_calls or []
        items = [_answer(message.content)] if message.content or not calls else []
        items.extend({"type": "function_call",
                      "call_id": call.get("id") or f"call_{ident}_{n}",
                      "name": call["name"],
                      "arguments": json.dumps(call.get("args", {}), ensure_ascii=False)}
                     for n, call in enumerate(calls))
        return items
    if isinstance(message, FunctionMessage):  # LangChain's legacy function result
        return [{"type": "function_call_output", "call_id": message.name or "",
                 "output": message.text}]
    if isinstance(message, ChatMessage):
        if message.role == "assistant":
            return [_answer(message.content)]
        return [_said(message.role, message.content)]
    return [_said(_ROLES.get(message.type, "user"), message.content)]


def message_items(message: BaseMessage, position: int, *,
                  copy_stored: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """``(identity, item)`` of each item the stored ``message`` (at ``position`` in its
    session) is shown as: its stored item, else the items of the module's table.

    ``copy_stored``: hand out a copy of a stored item, for a store that keeps messages as
    objects (memory://), where the caller could otherwise change it in place; stores
    that decode what they read give fresh objects already."""
    ident = message.id or f"msg_at{position}"
    kwargs = message._additional_kwargs
    stored = kwargs.get(ITEM_KEY) if kwargs else None
    if isinstance(stored, dict):
        return [(ident, copy_item(stored) if copy_stored else stored)]
    items = _items_of(message, ident)
    if len(items) == 1:
        return [(ident, items[0])]
    # Only an answer with tool calls has several items: its text (if any), then a
    # function_call per call, named as the server names them.
    offset = 1 if message.content else 0
    return [(ident if n < offset else f"{ident}_fc{n - offset}", item)
            for n, item in enumerate(items)]


def check_items(items: Any) -> list[Any]:
    """``items`` as a list, or :class:`InputError` for something that is not a list."""
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
        raise InputError(f"add_items takes a list of items, got {type(items).__name__}")
    return list(items)
