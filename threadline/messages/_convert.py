"""What users pass as messages, made into messages; and messages rendered as text.

:func:`check_messages` guards every write of a history or store; :func:`convert_to_messages`
coerces the loose forms (strings, ``(role, content)`` tuples, OpenAI-style and LangChain
message dicts, prompt values), reading a dict as LangChain's ``convert_to_messages`` does
(:func:`message_from_fields`). Both take other frameworks' messages through
:mod:`threadline._foreign`. Messages and plain role dicts take a fast path: these calls run
on every chain call. :func:`get_buffer_string` renders messages in LangChain's ``prefix``
or ``xml`` format.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TypeAlias

from threadline._errors import InputError
from threadline._foreign import convert as convert_foreign
from threadline._foreign import describe, framework_of
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
    "MessageLikeRepresentation",
    "check_messages",
    "convert_to_messages",
    "get_buffer_string",
    "not_a_message",
    "with_ids",
]

#: What may stand for one message (LangChain's name, for type hints): a message, a str (a
#: human message), a ``(role, content)`` pair or a message dict.
MessageLikeRepresentation: TypeAlias = (
    "BaseMessage | list[str] | tuple[str, str | list[str | dict[str, Any]]] | str "
    "| dict[str, Any]")


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

    Accepts a message, a string (a human message), a ``(role, content)`` pair, a message
    dict (OpenAI's ``{"role": ..., "content": ...}``, LangChain's ``{"type": ...,
    "content": ...}`` or its ``{"lc": 1, "type": "constructor", ...}`` envelope), a prompt
    value, or a list of any of these.

    >>> messages = convert_to_messages([("system", "Be terse."), {"role": "user", "content": "hi"}])
    >>> [(m.type, m.content) for m in messages]
    [('system', 'Be terse.'), ('human', 'hi')]
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
    if type(item) is dict:
        # The common OpenAI-style dict, without the general path's copying.
        if len(item) == 2 and type(item.get("content")) is str:
            role = item.get("role")
            cls = _PLAIN_ROLES.get(role) if type(role) is str else None
            if cls is not None:
                return cls(item["content"])
        return message_from_fields(item)
    if isinstance(item, str):
        return HumanMessage(item)
    if isinstance(item, tuple | list):
        if len(item) == 2 and isinstance(item[0], str):
            return _from_role(item[0], item[1])
        raise InputError(f"a message as a sequence must be (role, content), got {item!r:.80}")
    if isinstance(item, dict):
        return message_from_fields(item)
    converted = convert_foreign("message", item)
    if converted is not None:
        return converted  # type: ignore[no-any-return]
    raise InputError(
        f"cannot turn {describe(item)} {item!r:.80} into a message; expected a message, a "
        "str, a (role, content) tuple or a {'role': ..., 'content': ...} dict "
        f"({COERCION_FAILURE})"
    )


# Roles whose message needs nothing but its content (so the fast path above can build it).
_PLAIN_ROLES: dict[str, type[BaseMessage]] = {
    "human": HumanMessage, "user": HumanMessage, "ai": AIMessage, "assistant": AIMessage,
    "system": SystemMessage,
}

#: LangChain's error code for a value that cannot be made a message; its tests (and some
#: users) match it in the error text.
COERCION_FAILURE = "MESSAGE_COERCION_FAILURE"

#: The class names LangChain's ``{"lc": 1, "type": "constructor", ...}`` envelope may name,
#: mapped to message types: a fixed list, so the data never chooses a class to build.
ENVELOPE_TYPES: dict[str, str] = {
    "HumanMessage": "human", "HumanMessageChunk": "human",
    "AIMessage": "ai", "AIMessageChunk": "ai",
    "SystemMessage": "system", "SystemMessageChunk": "system",
    "FunctionMessage": "function", "FunctionMessageChunk": "function",
    "ToolMessage": "tool", "ToolMessageChunk": "tool",
    "RemoveMessage": "remove",
}


def envelope_fields(item: dict[str, Any]) -> dict[str, Any] | None:
    """The ``{"type": ..., **kwargs}`` fields a LangChain constructor envelope stands for,
    or ``None`` if ``item`` is not one of a message class we know."""
    ids, kwargs = item.get("id"), item.get("kwargs")
    if (item.get("lc") == 1 and item.get("type") == "constructor" and type(ids) is list
            and ids and type(kwargs) is dict):
        kind = ENVELOPE_TYPES.get(ids[-1]) if isinstance(ids[-1], str) else None
        if kind is not None:
            return {**kwargs, "type": kind}
    return None


def message_from_fields(item: dict[str, Any]) -> BaseMessage:
    """The message a flat message dict describes, the way LangChain's
    ``convert_to_messages`` reads one.

    The role is ``role`` (else ``type``); ``content`` is required (``None`` reads as
    ``""``). ``name``, ``id``, ``tool_call_id``, ``tool_calls`` (LangChain's or OpenAI's
    ``{"function": {"name", "arguments"}}`` form), ``response_metadata`` and the message's
    own fields (``artifact``, ``status``, ``usage_metadata``, ``invalid_tool_calls``) are
    read as such; every other key goes into ``additional_kwargs``, as in LangChain.
    """
    envelope = envelope_fields(item)
    if envelope is not None:
        item = envelope
    fields = dict(item)
    role = fields.pop("role", None)
    if role is None:
        role = fields.pop("type", None)
    if role is None or "content" not in fields:
        raise InputError(
            f"Message dict must contain 'role' and 'content' keys, got {item!r:.200} "
            f"({COERCION_FAILURE})")
    if not isinstance(role, str):
        raise InputError(f"a message role must be a str, got {type(role).__name__} "
                         f"({COERCION_FAILURE})")
    content = fields.pop("content") or ""
    kwargs: dict[str, Any] = {}
    for key in ("name", "tool_call_id", "id"):
        value = fields.pop(key, None)
        if value is not None:
            kwargs[key] = value
    tool_calls = fields.pop("tool_calls", None)
    if tool_calls is not None:
        kwargs["tool_calls"] = [_tool_call_from_dict(call) for call in tool_calls]
    if fields:
        metadata = fields.pop("response_metadata", None)
        if metadata:
            kwargs["response_metadata"] = metadata
        nested = fields.pop("additional_kwargs", None)
        if nested:
            fields.update(nested)
    cls = _ROLES.get(role)
    if cls is None:
        if role == "remove" and "id" in kwargs:
            return RemoveMessage(kwargs["id"])
        raise InputError(
            f"unknown message role {role!r}; expected one of {sorted(_ROLES)} "
            f"({COERCION_FAILURE})")
    for key in _OWN_FIELDS.get(cls, ()):
        if key in fields:
            value = fields.pop(key)
            if value is not None:
                kwargs[key] = value
    if role == "developer":
        fields["__openai_role__"] = "developer"
    if cls is HumanMessage or cls is AIMessage:
        fields.pop("example", None)  # langchain-core 0.x's flag; it carries no meaning
    if fields:
        kwargs["additional_kwargs"] = fields
    try:
        return cls(content, **kwargs)
    except TypeError as exc:  # a required field is missing (a tool message's id, say)
        raise InputError(f"cannot make a {cls.__name__} of {item!r:.200}: {exc} "
                         f"({COERCION_FAILURE})") from exc


# The fields of a message class that a flat dict may carry at its top level (LangChain
# reads ``artifact`` and ``status``; we read the AI message's fields too, rather than
# leaving them in ``additional_kwargs``).
_OWN_FIELDS: dict[type[BaseMessage], tuple[str, ...]] = {
    ToolMessage: ("artifact", "status"),
    AIMessage: ("usage_metadata", "invalid_tool_calls"),
}


def _tool_call_from_dict(call: Any) -> Any:
    """A LangChain tool call from one in LangChain's or OpenAI's form."""
    if isinstance(call, dict) and "function" in call:
        function = call["function"]
        args = function.get("arguments")
        if isinstance(args, str):
            try:
                args = json.loads(args, strict=False) if args else {}
            except ValueError as exc:
                raise InputError(f"tool call {function.get('name')!r} has arguments that "
                                 f"are not JSON: {exc}") from exc
        return {"name": function.get("name"), "args": args, "id": call.get("id"),
                "type": "tool_call"}
    return call


def _from_role(role: str, content: Any, **extra: Any) -> BaseMessage:
    cls = _ROLES.get(role)
    if cls is None:
        raise InputError(f"unknown message role {role!r}; expected one of {sorted(_ROLES)} "
                         f"({COERCION_FAILURE})")
    if role == "developer":
        extra["additional_kwargs"] = {"__openai_role__": "developer"}
    return cls(content, **extra)


def get_buffer_string(
    messages: Iterable[BaseMessage], human_prefix: str = "Human", ai_prefix: str = "AI", *,
    system_prefix: str = "System", function_prefix: str = "Function",
    tool_prefix: str = "Tool", message_separator: str = "\n",
    format: Literal["prefix", "xml"] = "prefix",  # LangChain's name, shadowing a builtin
) -> str:
    """Render messages as text, as LangChain's ``get_buffer_string``.

    ``format="prefix"`` gives ``"Human: hi\\nAI: hello"``: a message's text after its
    prefix, an AI message's tool calls (or legacy ``function_call``) after its text.
    ``format="xml"`` gives ``<message type="human">hi</message>`` lines, escaped, with
    tool calls and the URL-only media blocks as elements (base64 data is left out), for
    when the text itself may look like a prefix.

    >>> get_buffer_string([HumanMessage("hi"), AIMessage("hello")])
    'Human: hi\\nAI: hello'
    """
    if format not in ("prefix", "xml"):
        raise InputError(f"Unrecognized format={format!r}. Supported formats are 'prefix' "
                         "and 'xml'.")
    lines = []
    for message in messages:
        # By class, so every chunk type reads as its plain type, as in LangChain.
        if isinstance(message, HumanMessage):
            prefix = human_prefix
        elif isinstance(message, AIMessage):
            prefix = ai_prefix
        elif isinstance(message, SystemMessage):
            prefix = system_prefix
        elif isinstance(message, FunctionMessage):
            prefix = function_prefix
        elif isinstance(message, ToolMessage):
            prefix = tool_prefix
        elif isinstance(message, ChatMessage):
            prefix = message.role
        else:
            # LangChain raises here; we render any other message (a RemoveMessage, say)
            # under its type, as threadline always has.
            prefix = message.type.capitalize()
        if format == "xml":
            # The prefixes are lowercased, but a chat message's role stays as it is.
            kind = prefix if isinstance(message, ChatMessage) else prefix.lower()
            lines.append(_xml_message(message, kind))
            continue
        line = f"{prefix}: {message.text}"
        if isinstance(message, AIMessage):
            if message._tool_calls:
                line += str(message._tool_calls)
            elif message._additional_kwargs and "function_call" in message._additional_kwargs:
                line += str(message._additional_kwargs["function_call"])
        lines.append(line)
    return message_separator.join(lines)


# -- the XML format ---------------------------------------------------------------------------
# Escaped as LangChain's is (xml.sax.saxutils' escape and quoteattr, copied: importing
# xml.sax.saxutils pulls in urllib.request, which would double `import threadline`'s time),
# so a prompt built from it reads the same.
def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")


def _quoteattr(text: str) -> str:
    text = _xml_escape(text).replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")
    if '"' not in text:
        return f'"{text}"'
    if "'" not in text:
        return f"'{text}'"
    return '"{}"'.format(text.replace('"', "&quot;"))



_XML_MAX_LEN = 500  # of a text-plain document, server tool call args or result, shown
_ID_MAX_LEN = 64  # of a tool call id shown (some providers' ids run to kilobytes)


def _xml_message(message: BaseMessage, kind: str) -> str:
    content = message.content
    if isinstance(content, str):
        parts = [_xml_escape(content)] if content else []
    else:
        parts = []
        for block in content:
            if isinstance(block, str):
                if block:
                    parts.append(_xml_escape(block))
            else:
                shown = _xml_block(block)
                if shown:
                    parts.append(shown)
    calls = message._tool_calls if isinstance(message, AIMessage) else None
    extra = message._additional_kwargs or {}
    if not calls and not (isinstance(message, AIMessage) and "function_call" in extra):
        return f"<message type={_quoteattr(kind)}>{' '.join(parts)}</message>"
    lines = [f"<message type={_quoteattr(kind)}>"]
    if parts:
        lines.append(f"  <content>{' '.join(parts)}</content>")
    if calls:
        for call in calls:
            call_id = str(call.get("id") or "")
            if len(call_id) > _ID_MAX_LEN:
                call_id = call_id[:_ID_MAX_LEN] + "..."
            args = _xml_escape(json.dumps(call.get("args", {}), ensure_ascii=False))
            lines.append(f"  <tool_call id={_quoteattr(call_id)} "
                         f"name={_quoteattr(str(call.get('name') or ''))}>{args}</tool_call>")
    else:
        call = extra["function_call"] if isinstance(extra["function_call"], dict) else {}
        lines.append(f"  <function_call name={_quoteattr(str(call.get('name') or ''))}>"
                     f"{_xml_escape(str(call.get('arguments') or '{}'))}</function_call>")
    lines.append("</message>")
    return "\n".join(lines)


def _truncated(text: str) -> str:
    return text if len(text) <= _XML_MAX_LEN else text[:_XML_MAX_LEN] + "..."


def _is_data_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith("data:")


def _xml_block(block: dict[str, Any]) -> str | None:
    """One content block as XML, or ``None`` to leave it out (base64 data, unknown types)."""
    image_url = block.get("image_url")
    if block.get("base64") or _is_data_url(block.get("url")) or (
            isinstance(image_url, dict) and _is_data_url(image_url.get("url"))):
        return None
    kind = block.get("type", "")
    if kind == "text":
        text = block.get("text", "")
        return _xml_escape(text) if text else None
    if kind == "reasoning":
        reasoning = block.get("reasoning", "")
        return f"<reasoning>{_xml_escape(reasoning)}</reasoning>" if reasoning else None
    if kind in ("image", "audio", "video"):
        if block.get("url"):
            return f"<{kind} url={_quoteattr(block['url'])} />"
        if block.get("file_id"):
            return f"<{kind} file_id={_quoteattr(block['file_id'])} />"
        return None
    if kind == "image_url":
        url = image_url.get("url", "") if isinstance(image_url, dict) else ""
        return f"<image url={_quoteattr(url)} />" if url else None
    if kind == "text-plain":
        text = block.get("text", "")
        return _xml_escape(_truncated(text)) if text else None
    if kind == "server_tool_call":
        args = _xml_escape(_truncated(json.dumps(block.get("args", {}), ensure_ascii=False)))
        return (f"<server_tool_call id={_quoteattr(str(block.get('id') or ''))} "
                f"name={_quoteattr(str(block.get('name') or ''))}>{args}</server_tool_call>")
    if kind == "server_tool_result":
        output = block.get("output")
        shown = _xml_escape(_truncated(json.dumps(output, ensure_ascii=False))) if output else ""
        return (f"<server_tool_result tool_call_id="
                f"{_quoteattr(str(block.get('tool_call_id') or ''))} "
                f"status={_quoteattr(str(block.get('status') or ''))}>{shown}"
                "</server_tool_result>")
    return None
