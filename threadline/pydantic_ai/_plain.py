"""Messages other frameworks wrote, as the pydantic-ai parts they map to.

A message without pydantic-ai's data (a LangChain chain's, the server's, the terminal's)
becomes what a pydantic-ai model would have been given for it, so an agent can continue
the conversation. A run of system, human and tool messages is one ``ModelRequest`` (as
pydantic-ai itself sends them); an AI message is one ``ModelResponse``:

==========================================  ================================================
threadline message                          pydantic-ai
==========================================  ================================================
``SystemMessage``                           ``SystemPromptPart``
``HumanMessage``                            ``UserPromptPart`` (content blocks: text,
                                            ``ImageUrl`` / ``BinaryContent``...)
``ToolMessage``, ``FunctionMessage``        ``ToolReturnPart`` (the tool's name found from
                                            the call when the message has none)
``AIMessage``                               ``ModelResponse``: ``TextPart``, ``ThinkingPart``
                                            (reasoning blocks), ``ToolCallPart``
                                            s, ``model_name``, token usage
``ChatMessage``                             by its role (user, system / developer,
                                            assistant / ai, anything else as user)
==========================================  ================================================

Timestamps are not kept on these messages, so the parts get the time of reading. A
content block of a kind pydantic-ai has no part for is given to the model as its JSON
text: nothing is left out.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from threadline._errors import InputError, MissingDependencyError
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
    from pydantic_ai import messages as pa
    from pydantic_ai.usage import RequestUsage
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("pydantic-ai-slim", "pydantic-ai") from exc

__all__ = ["PlainReader"]

_USER_ROLES = {"user", "human"}
_SYSTEM_ROLES = {"system", "developer"}
_AI_ROLES = {"assistant", "ai"}
_THINKING = ("reasoning", "thinking")  # LangChain's standard block, Anthropic's
_CALL_BLOCKS = ("tool_call", "tool_use", "function_call", "server_tool_use")
_URLS: dict[str, Any] = {"image": pa.ImageUrl, "audio": pa.AudioUrl, "video": pa.VideoUrl,
                         "file": pa.DocumentUrl}


class PlainReader:
    """Turns plain threadline messages into ``ModelMessage`` objects, one run at a time.

    ``add`` gives the ``ModelMessage`` objects completed by a message; ``flush`` the request
    still being gathered. ``note_calls`` is given every message read, stored or plain, so
    a tool result finds the name of the tool it answers.
    """

    def __init__(self) -> None:
        self._request: list[Any] = []
        self._tool_names: dict[str, str] = {}

    def note_calls(self, message: BaseMessage) -> None:
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                if call.get("id"):
                    self._tool_names[str(call["id"])] = str(call.get("name") or "")

    def flush(self) -> list[Any]:
        if not self._request:
            return []
        request, self._request = pa.ModelRequest(parts=self._request), []
        return [request]

    def add(self, message: BaseMessage) -> list[Any]:
        if isinstance(message, AIMessage):
            return [*self.flush(), _response(message)]
        if isinstance(message, ChatMessage) and message.role in _AI_ROLES:
            return [*self.flush(), pa.ModelResponse(parts=[pa.TextPart(str(message.text))])]
        self._request.append(self._request_part(message))
        return []

    def _request_part(self, message: BaseMessage) -> Any:
        if isinstance(message, SystemMessage) or (
                isinstance(message, ChatMessage) and message.role in _SYSTEM_ROLES):
            return pa.SystemPromptPart(str(message.text))
        if isinstance(message, ToolMessage):
            name = message.name or self._tool_names.get(message.tool_call_id, "")
            return pa.ToolReturnPart(name, message.content, message.tool_call_id,
                                     outcome="failed" if message.status == "error"
                                     else "success")
        if isinstance(message, FunctionMessage):
            return pa.ToolReturnPart(message.name or "", message.content,
                                     message.id or message.name or "")
        if isinstance(message, HumanMessage | ChatMessage):
            content = message.content
            return pa.UserPromptPart(content if isinstance(content, str)
                                     else [_user_content(block) for block in content])
        raise InputError(f"a {type(message).__name__} ({message.type!r}) has no pydantic-ai "
                         "part; expected system, human, AI, tool or chat messages")


def _response(message: AIMessage) -> Any:
    calls = [*message.tool_calls, *message.invalid_tool_calls]
    parts = _answer_parts(message.content, {str(call.get("id")) for call in calls})
    if not parts and not calls:
        parts.append(pa.TextPart(""))
    # A call as the model made it; one that could not be parsed keeps its raw arguments.
    for call in calls:
        part = pa.ToolCallPart(str(call.get("name") or ""), call.get("args"))
        if call.get("id"):  # else pydantic-ai's generated one
            part.tool_call_id = str(call["id"])
        parts.append(part)
    usage = message.usage_metadata or {}
    model_name = (message.response_metadata or {}).get("model_name")
    return pa.ModelResponse(
        parts=parts,
        usage=RequestUsage(input_tokens=int(usage.get("input_tokens") or 0),
                           output_tokens=int(usage.get("output_tokens") or 0)),
        model_name=model_name if isinstance(model_name, str) else None,
    )


def _answer_parts(content: str | list[str | dict[str, Any]], call_ids: set[str]) -> list[Any]:
    """An AI message's content as text and thinking parts (its tool calls come after)."""
    if isinstance(content, str):
        return [pa.TextPart(content)] if content else []
    parts: list[Any] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else "text"
        if isinstance(block, str):
            parts.append(pa.TextPart(block))
        elif kind == "text" and isinstance(block.get("text"), str):
            parts.append(pa.TextPart(block["text"]))
        elif kind in _THINKING and isinstance(block.get(kind), str):
            parts.append(pa.ThinkingPart(block[kind]))
        elif not (kind in _CALL_BLOCKS and str(block.get("id")) in call_ids):
            # (a call block that is also one of the message's tool_calls is that call)
            parts.append(pa.TextPart(json.dumps(block, ensure_ascii=False, default=str)))
    return parts


def _user_content(block: str | dict[str, Any]) -> Any:
    """A content block (LangChain's standard, OpenAI's ``image_url``) as user content."""
    if isinstance(block, str):
        return block
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return block["text"]
    if kind == "image_url":
        image = block.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if isinstance(url, str):
            return (pa.BinaryContent.from_data_uri(url) if url.startswith("data:")
                    else pa.ImageUrl(url))
    if kind in _URLS:
        data = block.get("base64") if block.get("base64") is not None else (
            block.get("data") if block.get("source_type") == "base64" else None)
        mime = block.get("mime_type")
        if isinstance(data, str) and isinstance(mime, str):
            return pa.BinaryContent(data=base64.b64decode(data), media_type=mime)
        if isinstance(block.get("url"), str):
            return _URLS[kind](block["url"], media_type=mime if isinstance(mime, str) else None)
    # No part for it: the model is given it as text rather than nothing.
    return json.dumps(block, ensure_ascii=False, default=str)
