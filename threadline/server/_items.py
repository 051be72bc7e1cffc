"""Stored messages as OpenAI conversation items, and items as messages: pure functions.

A message is shown as one item, except an answer with tool calls: its text (if any) is
one ``message`` item and each call a ``function_call`` item. Item ids are message ids
(the server gives every message it stores a ``msg_…`` id; the terminal gives a UUID);
a message stored without one (by an old LangChain app) is shown as ``msg_at<position>``
and its calls as ``<id>_fc<n>`` (a lone call without text keeps the message's id, so a
``function_call`` item sent in comes back under its own id), ids that stay the same as
long as the message is there.

=================================  =============================================
item                               message
=================================  =============================================
message, role user                 HumanMessage
message, role assistant            AIMessage (``status: incomplete`` when the answer
                                   was interrupted)
message, role system / developer   SystemMessage
function_call                      AIMessage with that tool call
function_call_output               ToolMessage
=================================  =============================================

Content parts: ``input_text`` / ``output_text`` / ``text`` are text; ``input_image`` an
image block. Any other part or item type is refused with a 400 naming it: nothing is
dropped silently.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple
from urllib.parse import unquote

from threadline._concurrency import run_sync
from threadline.messages._openai_format import responses_parts
from threadline.messages._values import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from threadline.server._errors import ApiError
from threadline.stores import SessionInfo, Store
from threadline.stores._records import DELETED_PREFIX, tombstone_key

__all__ = ["DELETED_PREFIX", "EXPIRY_KEY", "MAX_ITEM_ID", "META_PREFIX", "RESPONSE_PREFIX",
           "Conversation", "deleted_items", "input_messages", "item_id", "json_arguments",
           "message_items", "new_id", "read_conversation", "response_id", "response_session",
           "session_items", "session_ttl", "tombstone_key", "visible_messages"]

MAX_ITEM_ID = 128
#: Record keys the server keeps beside a session's messages: the responses, and under
#: META_PREFIX what every turn reads (deleted items, the expiry) in one scan.
RESPONSE_PREFIX = "openai:response:"
META_PREFIX = "openai:s:"
EXPIRY_KEY = META_PREFIX + "expires_after"
_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


def new_id(prefix: str) -> str:
    """A fresh id: ``conv_…``, ``msg_…``, ``resp_…``."""
    return f"{prefix}_{uuid.uuid4().hex}"


def response_id(session_id: str) -> str:
    """A new response id that names its session: ``resp_<hex>_<session, base64url>``, so
    ``GET /v1/responses/{id}`` finds the response's records without an index."""
    encoded = base64.urlsafe_b64encode(session_id.encode("utf-8")).decode("ascii")
    return f"resp_{uuid.uuid4().hex}_{encoded.rstrip('=')}"


def response_session(resp_id: str) -> str | None:
    """The session a :func:`response_id` names, or ``None`` if it is not one of ours."""
    prefix, _, rest = resp_id.partition("_")
    unique, _, encoded = rest.partition("_")
    if prefix != "resp" or len(unique) != 32 or not encoded:
        return None
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_",
                               validate=True)
        return raw.decode("utf-8") or None
    except (binascii.Error, ValueError):
        return None


def _ttl(raw: bytes | None) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:
        return None  # a damaged record: the conversation simply does not expire


async def session_ttl(store: Store, session_id: str) -> float | None:
    """The TTL (seconds) every append to the session must pass: its ``expires_after``
    (the :data:`EXPIRY_KEY` record), or ``None`` when it has none."""
    return _ttl((await store.aget_records(session_id, [EXPIRY_KEY])).get(EXPIRY_KEY))


async def deleted_items(store: Store, session_id: str) -> set[str]:
    """The ids of the session's deleted items (tombstone records; the id in the key is
    escaped with ``escape_key_part``)."""
    found = await store.ascan_records(session_id, DELETED_PREFIX, keys_only=True)
    return {unquote(key[len(DELETED_PREFIX):]) for key, _ in found}


class Conversation(NamedTuple):
    """A session as a turn reads it: who may see it, its messages, and beside them the
    deleted item ids, the TTL and those records themselves (what a fork copies)."""

    info: SessionInfo | None
    messages: list[BaseMessage]
    deleted: set[str]
    ttl: float | None
    meta: dict[str, bytes]


def _conversation(info: SessionInfo | None, messages: list[BaseMessage],
                  found: list[tuple[str, bytes]]) -> Conversation:
    meta = dict(found)
    deleted = {unquote(key[len(DELETED_PREFIX):]) for key in meta
               if key.startswith(DELETED_PREFIX)}
    return Conversation(info, messages, deleted, _ttl(meta.get(EXPIRY_KEY)), meta)


async def read_conversation(store: Store, session_id: str) -> Conversation:
    """The session's info, messages and server records, read at once: concurrently on a
    store with native async I/O, else in one worker-thread hop (three hops cost more
    than the reads)."""
    if store.native_async:
        info, messages, found = await asyncio.gather(
            store.asession_info(session_id), store.aget_messages(session_id),
            store.ascan_records(session_id, META_PREFIX))
        return _conversation(info, messages, found)

    def read() -> Conversation:
        return _conversation(store.session_info(session_id), store.get_messages(session_id),
                             store.scan_records(session_id, META_PREFIX))

    return await run_sync(read)


def item_id(message: BaseMessage, position: int) -> str:
    return message.id or f"msg_at{position}"


def _parts(message: BaseMessage, kind: str) -> list[dict[str, Any]]:
    return responses_parts(message.content, kind, logprobs=True,
                           empty_text=kind == "output_text")


def message_items(message: BaseMessage, position: int) -> list[dict[str, Any]]:
    """The items one stored message is shown as (see the module's table)."""
    ident = item_id(message, position)
    if isinstance(message, ToolMessage):
        return [{"type": "function_call_output", "id": ident, "call_id": message.tool_call_id,
                 "output": message.text, "status": "completed"}]
    if isinstance(message, AIMessage):
        incomplete = bool(message._response_metadata
                          and message._response_metadata.get("interrupted"))
        items: list[dict[str, Any]] = []
        calls = message._tool_calls or []
        if message.content or not calls:
            items.append({"type": "message", "id": ident, "role": "assistant",
                          "status": "incomplete" if incomplete else "completed",
                          "content": _parts(message, "output_text")})
        alone = not items and len(calls) == 1  # a function_call item sent in: its own id
        for n, call in enumerate(calls):
            items.append({"type": "function_call", "id": ident if alone else f"{ident}_fc{n}",
                          "call_id": call.get("id") or f"call_{ident}_{n}",
                          "name": call["name"],
                          "arguments": json.dumps(call.get("args", {}), ensure_ascii=False),
                          "status": "completed"})
        return items
    role = message.role if isinstance(message, ChatMessage) else _ROLES.get(message.type, "user")
    return [{"type": "message", "id": ident, "role": role, "status": "completed",
             "content": _parts(message, "input_text")}]


def visible_messages(messages: Sequence[BaseMessage], deleted: set[str]
                     ) -> list[BaseMessage]:
    """The messages without their deleted items (what the API lists and the model reads):
    a message whose items are all deleted is left out; an answer with tool calls keeps
    those of its items (its text, each call) that are not."""
    if not deleted:
        return list(messages)
    kept: list[BaseMessage] = []
    for position, message in enumerate(messages):
        items = message_items(message, position)
        gone = [item["id"] in deleted for item in items]
        if not any(gone):
            kept.append(message)
        elif not all(gone):  # only an answer with tool calls has several items
            assert isinstance(message, AIMessage)
            calls = message._tool_calls or []
            offset = len(items) - len(calls)  # 1 when the text is an item of its own
            content = message.content if offset and not gone[0] else ""
            left = [call for call, dead in zip(calls, gone[offset:], strict=True) if not dead]
            kept.append(message.copy(content=content, tool_calls=left))
    return kept


def session_items(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Every item of a session, oldest first."""
    return [item for position, message in enumerate(messages)
            for item in message_items(message, position)]


# -- items in -----------------------------------------------------------------------------

def _bad(param: str, message: str) -> ApiError:
    return ApiError(400, message, param=param, code="invalid_value")


def _content(value: Any, param: str) -> str | list[str | dict[str, Any]]:
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise _bad(param, f"Invalid '{param}': expected a string or a list of content parts.")
    blocks: list[str | dict[str, Any]] = []
    for n, part in enumerate(value):
        where = f"{param}[{n}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise _bad(f"{where}.text", f"Invalid '{where}.text': expected a string.")
            blocks.append({"type": "text", "text": text})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            blocks.append({"type": "image_url", "image_url": {"url": part["image_url"]}})
        else:
            raise _bad(f"{where}.type", f"Invalid '{where}': unsupported content part type "
                       f"{kind!r}; supported: input_text, output_text, input_image (by URL).")
    if all(isinstance(b, dict) and b.get("type") == "text" for b in blocks):
        return "".join(str(b["text"]) for b in blocks if isinstance(b, dict))
    return blocks


def json_arguments(text: str, param: str) -> dict[str, Any]:
    """A function call's ``arguments`` (a JSON object as text) as a dict, else a 400."""
    try:
        args = json.loads(text) if text.strip() else {}
    except ValueError:
        args = None
    if not isinstance(args, dict):
        raise _bad(param, f"Invalid '{param}': a JSON object is expected.")
    return args


def _given_id(item: dict[str, Any], param: str) -> str:
    ident = item.get("id")
    if ident is None:
        return new_id("msg")
    if not isinstance(ident, str) or not 0 < len(ident) <= MAX_ITEM_ID \
            or not ident.isprintable():
        raise _bad(f"{param}.id", f"Invalid '{param}.id': at most {MAX_ITEM_ID} printable "
                   "characters.")
    return ident


def input_messages(value: str | Sequence[Any], param: str = "input") -> list[BaseMessage]:
    """Request items (or a plain string: one user message) as messages with ids."""
    if isinstance(value, str):
        return [HumanMessage(value, id=new_id("msg"))]
    messages: list[BaseMessage] = []
    for n, item in enumerate(value):
        where = f"{param}[{n}]"
        if isinstance(item, str):
            messages.append(HumanMessage(item, id=new_id("msg")))
            continue
        if not isinstance(item, dict):
            raise _bad(where, f"Invalid '{where}': expected an item object.")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            content = _content(item.get("content"), f"{where}.content")
            ident = _given_id(item, where)
            if role == "user":
                messages.append(HumanMessage(content, id=ident))
            elif role == "assistant":
                messages.append(AIMessage(content, id=ident))
            elif role in ("system", "developer"):
                messages.append(SystemMessage(content, id=ident))
            else:
                raise _bad(f"{where}.role", f"Invalid '{where}.role': {role!r}; expected "
                           "user, assistant, system or developer.")
        elif kind == "function_call":
            name, call_id, arguments = (item.get("name"), item.get("call_id"),
                                        item.get("arguments", "{}"))
            if not isinstance(name, str) or not isinstance(call_id, str) \
                    or not isinstance(arguments, str):
                raise _bad(where, f"Invalid '{where}': a function_call needs string name, "
                           "call_id and arguments.")
            args = json_arguments(arguments, f"{where}.arguments")
            messages.append(AIMessage("", tool_calls=[{"name": name, "args": args,
                                                       "id": call_id}],
                                      id=_given_id(item, where)))
        elif kind == "function_call_output":
            call_id, output = item.get("call_id"), item.get("output")
            if not isinstance(call_id, str):
                raise _bad(f"{where}.call_id", f"Invalid '{where}.call_id': expected a string.")
            messages.append(ToolMessage(_content(output, f"{where}.output"),
                                        tool_call_id=call_id, id=_given_id(item, where)))
        else:
            raise _bad(f"{where}.type", f"Invalid '{where}.type': unsupported item type "
                       f"{kind!r}; supported: message, function_call, function_call_output.")
    return messages
