"""LlamaIndex ``ChatMessage`` <-> threadline messages, losslessly.

A LlamaIndex message is stored as the threadline message every other reader understands
(``threadline sessions show``, LangChain chains, the server), and everything of it that
has no threadline field is kept beside, under ``additional_kwargs["llama_index"]``:

========================================  ==============================================
LlamaIndex ``ChatMessage``                threadline message
========================================  ==============================================
role ``user``                             ``HumanMessage``
role ``assistant`` / ``chatbot`` /        ``AIMessage``; OpenAI-format
``model``                                 ``additional_kwargs["tool_calls"]`` and
                                          ``ToolCallBlock`` s as ``tool_calls``
role ``system`` / ``developer``           ``SystemMessage`` (``developer`` also as
                                          LangChain's ``__openai_role__``)
role ``tool`` with                        ``ToolMessage(tool_call_id=...)``, ``name``
``additional_kwargs["tool_call_id"]``     from ``additional_kwargs["name"]``
role ``function`` with a ``name``         ``FunctionMessage``
any other role / no ``tool_call_id``      ``ChatMessage(role=...)``
``TextBlock`` s                           the content: a str for one, text blocks for
                                          several, ``[]`` for none
other blocks (image, audio, document,     kept exactly (``model_dump(mode="json")``, with
thinking, tool call, ...)                 their positions) in the namespace
``additional_kwargs``                     kept exactly in the namespace (values made JSON
                                          the way ``SimpleChatStore`` persists them)
========================================  ==============================================

The namespace (``{"role", "blocks", "additional_kwargs"}``, each only when needed) is the
source of truth when reading a message LlamaIndex wrote; the threadline fields are a
view of it for everyone else. A plain text message needs no namespace at all.

Messages other frameworks wrote have no namespace and are read from their fields:
roles as above the other way, tool calls as OpenAI-format ``additional_kwargs
["tool_calls"]``, a tool result's id as ``additional_kwargs["tool_call_id"]``, text and
image content blocks as ``TextBlock`` / ``ImageBlock``. What has no LlamaIndex field is
not dropped: content blocks LlamaIndex has no block for go to
``additional_kwargs["threadline_content"]`` (``[position, block]`` pairs), a role it
does not know to ``additional_kwargs["threadline_role"]`` (the message is a ``user``
one).
"""

from __future__ import annotations

import json
from typing import Any

from threadline._errors import InputError, MessageFormatError, MissingDependencyError
from threadline.messages._tool_calls import tool_calls_from_openai
from threadline.messages._values import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

try:
    from llama_index.core.base.llms import types as li_types
    from pydantic import TypeAdapter, ValidationError
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("llama-index-core", "llama-index") from exc

__all__ = ["NAMESPACE", "from_llama_index", "to_llama_index"]

#: The one ``additional_kwargs`` key holding what threadline has no field for.
NAMESPACE = "llama_index"

LIMessage = li_types.ChatMessage
_Role = li_types.MessageRole
_AI_ROLES = frozenset({"assistant", "chatbot", "model"})
_TYPE_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool",
               "function": "function"}


# -- LlamaIndex -> threadline --------------------------------------------------------------


def from_llama_index(message: Any, *, id: str | None = None) -> BaseMessage:
    """threadline's message for a LlamaIndex ``ChatMessage`` (``id``: the stored id).

    >>> from_llama_index(llama_index.core.llms.ChatMessage(role="user", content="hi"))
    HumanMessage(content='hi', additional_kwargs={}, response_metadata={})
    """
    if not isinstance(message, LIMessage):
        raise InputError(f"expected a llama_index ChatMessage, got {type(message).__name__}")
    role = message.role.value if isinstance(message.role, _Role) else str(message.role)
    # LlamaIndex's own JSON form of the values (pydantic models dumped, bytes as base64):
    # exactly what SimpleChatStore persists, so a round trip equals a persist/load.
    kwargs = message._recursive_serialization(dict(message.additional_kwargs))
    for key, value in kwargs.items():
        _check_json(key, value)
    texts: list[str] = []
    others: list[list[Any]] = []
    calls: list[dict[str, Any]] = []
    for position, block in enumerate(message.blocks):
        if isinstance(block, li_types.TextBlock):
            texts.append(block.text)
            continue
        others.append([position, block.model_dump(mode="json")])
        if isinstance(block, li_types.ToolCallBlock):
            calls.append(_block_call(block))
    content: Any = texts[0] if len(texts) == 1 else [
        {"type": "text", "text": text} for text in texts]
    namespace: dict[str, Any] = {}
    if others:
        namespace["blocks"] = others
    if kwargs:
        namespace["additional_kwargs"] = kwargs
    fields: dict[str, Any] = {"id": id}
    result: BaseMessage
    if role in _AI_ROLES:
        valid, invalid = _kwargs_calls(kwargs.get("tool_calls"))
        known = {call["id"] for call in valid + invalid if call.get("id")}
        valid += [call for call in calls if not call["id"] or call["id"] not in known]
        result = AIMessage(content, tool_calls=valid or None,
                           invalid_tool_calls=invalid or None, **fields)
    elif role == "user":
        result = HumanMessage(content, **fields)
    elif role in ("system", "developer"):
        if role == "developer":  # LangChain's and OpenAI's marker, for other readers
            fields["additional_kwargs"] = {"__openai_role__": "developer"}
        result = SystemMessage(content, **fields)
    elif role == "tool" and isinstance(kwargs.get("tool_call_id"), str):
        name = kwargs.get("name")
        result = ToolMessage(content, tool_call_id=kwargs["tool_call_id"],
                             name=name if isinstance(name, str) else None, **fields)
    elif role == "function" and isinstance(kwargs.get("name"), str):
        result = FunctionMessage(content, name=kwargs["name"], **fields)
    else:
        result = ChatMessage(content, role=role, **fields)
    if _role_of(result) != role:
        namespace["role"] = role
    if namespace:
        result.additional_kwargs[NAMESPACE] = namespace
    return result


def _check_json(key: str, value: Any) -> None:
    """Refuse, before anything is stored, a value JSON cannot hold (threadline never
    pickles); SimpleChatStore refuses the same values when it persists."""
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"additional_kwargs[{key!r}] of a llama_index ChatMessage cannot "
                         f"be stored as JSON: {exc}") from exc


def _block_call(block: Any) -> dict[str, Any]:
    args = block.tool_kwargs
    if isinstance(args, str):
        try:
            parsed = json.loads(args) if args else {}
        except ValueError:
            parsed = None
        args = parsed if isinstance(parsed, dict) else {"input": args}
    return {"name": block.tool_name, "args": args, "id": block.tool_call_id,
            "type": "tool_call"}


def _kwargs_calls(raw: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """OpenAI-format tool calls as threadline's; anything else is left to the namespace."""
    if not isinstance(raw, list) or not all(isinstance(call, dict) for call in raw):
        return [], []
    try:
        return tool_calls_from_openai(raw)
    except (TypeError, KeyError, AttributeError):
        return [], []


# -- threadline -> LlamaIndex --------------------------------------------------------------


def to_llama_index(message: BaseMessage) -> Any:
    """The LlamaIndex ``ChatMessage`` for a threadline message, whoever wrote it.

    >>> to_llama_index(AIMessage("hello"))
    ChatMessage(role=<MessageRole.ASSISTANT: 'assistant'>, additional_kwargs={}, ...)
    """
    if not isinstance(message, BaseMessage):
        raise InputError(f"expected a threadline message, got {type(message).__name__}")
    extra = message._additional_kwargs or {}
    namespace = extra.get(NAMESPACE)
    if isinstance(namespace, dict):
        return _own(message, namespace)
    return _foreign(message, extra)


def _texts(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [li_types.TextBlock(text=content)]
    return [li_types.TextBlock(text=block if isinstance(block, str) else block["text"])
            for block in content]


def _own(message: BaseMessage, namespace: dict[str, Any]) -> Any:
    """A message LlamaIndex wrote: the namespace is the truth."""
    blocks = _texts(message.content)
    for position, dumped in namespace.get("blocks", ()):
        blocks.insert(position, _block(dumped))
    role = namespace.get("role") or _role_of(message)
    return LIMessage(role=role, blocks=blocks,
                     additional_kwargs=dict(namespace.get("additional_kwargs", {})))


#: LlamaIndex's own union of content blocks, chosen by ``block_type``.
_BLOCKS: TypeAdapter[Any] = TypeAdapter(li_types.ContentBlock)


def _block(dumped: Any) -> Any:
    try:
        return _BLOCKS.validate_python(dumped)
    except ValidationError as exc:  # e.g. a block type of a newer llama-index-core
        raise MessageFormatError(
            f"a stored llama_index block cannot be read by this llama-index-core "
            f"({str(dumped)[:80]}): {exc.errors()[0]['msg']}") from exc


def _role_of(message: BaseMessage) -> str:
    if isinstance(message, ChatMessage):
        return message.role
    if isinstance(message, SystemMessage) and (message._additional_kwargs or {}).get(
            "__openai_role__") == "developer":
        return "developer"
    return _TYPE_ROLES.get(message.type, message.type)


def _foreign(message: BaseMessage, extra: dict[str, Any]) -> Any:
    """A message another framework wrote: built from its fields, nothing dropped."""
    kwargs = {key: value for key, value in extra.items() if key != "__openai_role__"}
    role = _role_of(message)
    if role not in _Role._value2member_map_:
        kwargs["threadline_role"] = role
        role = "user"
    if message.name and "name" not in kwargs:
        kwargs["name"] = message.name
    if isinstance(message, AIMessage) and "tool_calls" not in kwargs and (
            message._tool_calls or message._invalid_tool_calls):
        kwargs["tool_calls"] = _openai_calls(message)
    elif isinstance(message, ToolMessage):
        kwargs.setdefault("tool_call_id", message.tool_call_id)
        if message.status != "success":
            kwargs.setdefault("status", message.status)
    content = message.content
    blocks: list[Any] = []
    unmapped: list[list[Any]] = []
    for position, part in enumerate([content] if isinstance(content, str) else content):
        block = _content_block(part)
        if block is None:
            unmapped.append([position, part])
        else:
            blocks.append(block)
    if unmapped:
        kwargs["threadline_content"] = unmapped
    return LIMessage(role=role, blocks=blocks, additional_kwargs=kwargs)


def _openai_calls(message: AIMessage) -> list[dict[str, Any]]:
    calls = [{"id": call.get("id"), "type": "function",
              "function": {"name": call["name"],
                           "arguments": json.dumps(call.get("args", {}), ensure_ascii=False)}}
             for call in message._tool_calls or ()]
    calls += [{"id": call.get("id"), "type": "function",
               "function": {"name": call.get("name"), "arguments": call.get("args") or ""}}
              for call in message._invalid_tool_calls or ()]
    return calls


def _content_block(part: Any) -> Any:
    """The LlamaIndex block for a text or image content block; ``None`` for others."""
    if isinstance(part, str):
        return li_types.TextBlock(text=part)
    kind = part.get("type")
    if kind == "text" and isinstance(part.get("text"), str):
        return li_types.TextBlock(text=part["text"])
    if kind == "image_url":
        url = part.get("image_url")
        url = url.get("url") if isinstance(url, dict) else url
        return li_types.ImageBlock(url=url) if isinstance(url, str) else None
    if kind == "image":
        if isinstance(part.get("url"), str):
            return li_types.ImageBlock(url=part["url"])
        data = part.get("base64") or (part.get("data") if part.get("source_type") == "base64"
                                      else None)
        if isinstance(data, str):
            return li_types.ImageBlock(image=data.encode("ascii"),
                                       image_mimetype=part.get("mime_type"))
    return None
