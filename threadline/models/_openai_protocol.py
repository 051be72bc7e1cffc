"""The OpenAI Chat Completions wire format, as pure functions.

Nothing here does I/O or imports httpx, so the sync and the async shell of
:class:`~threadline.ChatOpenAI` share all of it and tests can check it without a server:

- :func:`build_request_body` turns messages, settings and per-call options into the JSON
  body (messages via :func:`message_to_openai`, tools via
  :func:`~threadline.models._tool_schema.convert_to_openai_tool`);
- :func:`parse_completion` turns a JSON answer into an :class:`AIMessage`;
- :class:`SSEDecoder` turns the lines of a ``text/event-stream`` into event payloads, and
  :func:`parse_stream_chunk` each payload into an :class:`AIMessageChunk`;
- :func:`retry_delay` says how long to wait before the next attempt.

Malformed answers raise :class:`ModelResponseError` with a short excerpt of what came.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

from threadline._errors import InputError, ModelResponseError
from threadline.messages._chunks import AIMessageChunk
from threadline.messages._values import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    tool_call_from_json,
)
from threadline.models._tool_schema import convert_to_openai_tool

__all__ = [
    "DONE",
    "RETRY_STATUSES",
    "SSEDecoder",
    "StreamReader",
    "build_request_body",
    "convert_to_openai_tool",
    "decode_json",
    "error_message",
    "message_to_openai",
    "parse_completion",
    "parse_stream_chunk",
    "redact",
    "retry_delay",
    "tool_choice_to_openai",
    "usage_to_metadata",
]

# -- request ---------------------------------------------------------------------------------


def _content_to_openai(content: str | list[Any]) -> str | list[Any]:
    if isinstance(content, str):
        return content
    return [{"type": "text", "text": block} if isinstance(block, str) else block
            for block in content]


def message_to_openai(message: BaseMessage) -> dict[str, Any]:
    """One message as a Chat Completions ``messages`` entry."""
    to_message = getattr(message, "to_message", None)
    if to_message is not None:  # a chunk: sent as the message it stands for
        message = to_message()
    out: dict[str, Any]
    if isinstance(message, HumanMessage):
        out = {"role": "user", "content": _content_to_openai(message.content)}
    elif isinstance(message, SystemMessage):
        out = {"role": "system", "content": _content_to_openai(message.content)}
    elif isinstance(message, ToolMessage):
        return {"role": "tool", "content": message.text, "tool_call_id": message.tool_call_id}
    elif isinstance(message, ChatMessage):
        out = {"role": message.role, "content": _content_to_openai(message.content)}
    elif isinstance(message, FunctionMessage):
        return {"role": "function", "name": message.name, "content": message.text}
    elif isinstance(message, AIMessage):
        calls = [
            {"id": call.get("id"), "type": "function",
             "function": {"name": call.get("name"), "arguments": json.dumps(call.get("args", {}))}}
            for call in message._tool_calls or ()
        ] + [
            # Sent back as the model wrote them, so the conversation stays faithful.
            {"id": call.get("id"), "type": "function",
             "function": {"name": call.get("name"), "arguments": call.get("args") or ""}}
            for call in message._invalid_tool_calls or ()
        ]
        text = message.text
        out = {"role": "assistant", "content": text if text or not calls else None}
        if calls:
            out["tool_calls"] = calls
    else:
        raise InputError(
            f"cannot send a {type(message).__name__} to a Chat Completions endpoint; "
            "use HumanMessage, SystemMessage, AIMessage, ToolMessage, ChatMessage or "
            "FunctionMessage"
        )
    if message.name:
        out["name"] = message.name
    return out


_TOOL_CHOICES = {"auto": "auto", "none": "none", "required": "required", "any": "required"}


def tool_choice_to_openai(choice: Any, tools: Sequence[dict[str, Any]]) -> Any:
    """``"auto"``/``"none"``/``"required"`` (``"any"``), a tool's name, ``True`` (the only
    tool) or an OpenAI ``tool_choice`` dict."""
    if choice is None or isinstance(choice, dict):
        return choice
    if choice is True and len(tools) == 1:
        choice = tools[0]["function"]["name"]
    if isinstance(choice, str):
        if choice in _TOOL_CHOICES:
            return _TOOL_CHOICES[choice]
        names = [tool["function"]["name"] for tool in tools]
        if choice in names:
            return {"type": "function", "function": {"name": choice}}
        raise InputError(f"tool_choice={choice!r} names no bound tool; tools are {names}")
    raise InputError(
        f"unsupported tool_choice {choice!r}; use 'auto', 'none', 'required', a tool name, "
        "True (with exactly one tool) or an OpenAI tool_choice dict"
    )


def build_request_body(
    model: str,
    messages: Sequence[BaseMessage],
    *,
    params: Mapping[str, Any],
    stream: bool,
    stream_usage: bool,
    stop: list[str] | None = None,
    call_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of one request: the model's settings (``params``, ``None`` values
    left out), then this call's options, which win."""
    if not messages:
        raise InputError("a chat model needs at least one message")
    body: dict[str, Any] = {"model": model,
                            "messages": [message_to_openai(m) for m in messages]}
    body.update((key, value) for key, value in params.items() if value is not None)
    options = dict(call_kwargs or {})
    tools = options.pop("tools", None)
    tool_choice = options.pop("tool_choice", None)
    body.update((key, value) for key, value in options.items() if value is not None)
    if stop:
        body["stop"] = stop
    if tools:
        body["tools"] = [convert_to_openai_tool(tool) for tool in tools]
        choice = tool_choice_to_openai(tool_choice, body["tools"])
        if choice is not None:
            body["tool_choice"] = choice
    if stream:
        body["stream"] = True
        if stream_usage:
            body["stream_options"] = {"include_usage": True}
    return body


# -- responses -------------------------------------------------------------------------------


def _excerpt(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 300 else text[:300] + "..."


def usage_to_metadata(usage: Any) -> dict[str, Any] | None:
    """OpenAI's ``usage`` as ``{"input_tokens", "output_tokens", "total_tokens"}``."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    metadata: dict[str, Any] = {
        "input_tokens": prompt,
        "output_tokens": completion,
        "total_tokens": usage.get("total_tokens") or prompt + completion,
    }
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached is not None:
        metadata["input_token_details"] = {"cache_read": cached}
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if reasoning is not None:
        metadata["output_token_details"] = {"reasoning": reasoning}
    return metadata


def _server_error(data: Any) -> str | None:
    if isinstance(data, dict) and data.get("error"):
        error = data["error"]
        return str(error.get("message") or error) if isinstance(error, dict) else str(error)
    return None


def _first_choice(data: Any, what: str) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        raise ModelResponseError(f"expected a JSON object as {what}, got {_excerpt(data)}")
    message = _server_error(data)
    if message is not None:
        raise ModelResponseError(f"the server answered with an error: {message}")
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise ModelResponseError(f"{what} has no 'choices' list: {_excerpt(data)}")
    if not choices:
        return None
    if not isinstance(choices[0], dict):
        raise ModelResponseError(f"{what} has a malformed choice: {_excerpt(data)}")
    return choices[0]


def _metadata(data: dict[str, Any], choice: dict[str, Any] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if data.get("model"):
        metadata["model_name"] = data["model"]
    if choice is not None and choice.get("finish_reason"):
        metadata["finish_reason"] = choice["finish_reason"]
    if data.get("system_fingerprint"):
        metadata["system_fingerprint"] = data["system_fingerprint"]
    return metadata


def _extras(message: dict[str, Any]) -> dict[str, Any]:
    # Kept so nothing the server said is lost: refusals, and the reasoning text that
    # DeepSeek, vLLM and llama.cpp send beside the answer.
    return {key: message[key] for key in ("refusal", "reasoning_content", "reasoning")
            if message.get(key)}


def parse_completion(data: Any) -> AIMessage:
    """A non-streamed ``chat.completion`` JSON answer as an :class:`AIMessage`."""
    choice = _first_choice(data, "the completion")
    message = choice.get("message") if choice is not None else None
    if not isinstance(message, dict):
        raise ModelResponseError(f"the completion has no message: {_excerpt(data)}")
    content = message.get("content")
    if content is not None and not isinstance(content, str | list):
        raise ModelResponseError(f"the message content is not text: {_excerpt(message)}")
    tool_calls: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise ModelResponseError(f"malformed tool call: {_excerpt(call)}")
        parsed = tool_call_from_json(function.get("name"), function.get("arguments") or "",
                                     call.get("id"))
        (tool_calls if parsed["type"] == "tool_call" else invalid).append(parsed)
    return AIMessage(
        content or "",
        additional_kwargs=_extras(message),
        response_metadata=_metadata(data, choice),
        id=data.get("id"),
        tool_calls=tool_calls,
        invalid_tool_calls=invalid,
        usage_metadata=usage_to_metadata(data.get("usage")),
    )


def parse_stream_chunk(data: Any) -> AIMessageChunk:
    """One ``chat.completion.chunk`` as an :class:`AIMessageChunk`.

    Tool call deltas become ``tool_call_chunks`` (``args`` a growing JSON string, joined by
    ``index`` when chunks are added); the usage-only chunk that ``include_usage`` adds at
    the end becomes an empty chunk carrying ``usage_metadata``.
    """
    choice = _first_choice(data, "a stream chunk")
    delta = (choice.get("delta") or {}) if choice is not None else {}
    if not isinstance(delta, dict):
        raise ModelResponseError(f"malformed delta in a stream chunk: {_excerpt(data)}")
    call_chunks: list[dict[str, Any]] = []
    for call in delta.get("tool_calls") or ():
        function = (call.get("function") or {}) if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise ModelResponseError(f"malformed tool call delta: {_excerpt(call)}")
        call_chunks.append({"name": function.get("name"), "args": function.get("arguments"),
                            "id": call.get("id"), "index": call.get("index"),
                            "type": "tool_call_chunk"})
    content = delta.get("content")
    if content is not None and not isinstance(content, str | list):
        raise ModelResponseError(f"the delta content is not text: {_excerpt(delta)}")
    return AIMessageChunk(
        content or "",
        additional_kwargs=_extras(delta),
        response_metadata=_metadata(data, choice),
        id=data.get("id"),
        tool_call_chunks=call_chunks,
        usage_metadata=usage_to_metadata(data.get("usage")),
    )


class _Done:
    def __repr__(self) -> str:
        return "DONE"


#: What :meth:`SSEDecoder.feed` returns for the ``data: [DONE]`` end marker.
DONE: Any = _Done()


class SSEDecoder:
    """Server-sent events, one line at a time (``text/event-stream``).

    :meth:`feed` returns the parsed JSON payload of an event when a line completes one
    (the blank line after its ``data:`` lines), :data:`DONE` for ``data: [DONE]``, and
    ``None`` otherwise. Comments (``: keep-alive``) and other fields are skipped.
    """

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = ""

    def feed(self, line: str) -> Any:
        line = line.rstrip("\r\n")
        if line:
            if line.startswith(":"):
                return None
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                self._data.append(value)
            elif field == "event":
                self._event = value
            return None
        return self.flush()

    def flush(self) -> Any:
        """The pending event, if the stream ended without its closing blank line."""
        if not self._data:
            self._event = ""
            return None
        payload, event = "\n".join(self._data), self._event
        self._data, self._event = [], ""
        if payload.strip() == "[DONE]":
            return DONE
        try:
            data = json.loads(payload)
        except ValueError as exc:
            raise ModelResponseError(
                f"malformed server-sent event: data is not JSON: {_excerpt(payload)}"
            ) from exc
        if event == "error":
            raise ModelResponseError(f"the server sent an error event: {_excerpt(data)}")
        message = _server_error(data)
        if message is not None:
            raise ModelResponseError(f"the server reported an error mid-stream: {message}")
        return data


class StreamReader:
    """The lines of a streamed answer in, :class:`AIMessageChunk` pieces out.

    Chunks that carry nothing (the opening ``{"role": "assistant"}`` delta) are skipped.
    :meth:`end` raises :class:`ModelResponseError` when the stream stopped before the
    answer was complete: no ``[DONE]`` and no ``finish_reason``.
    """

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self._done = False
        self._finished = False

    def feed(self, line: str) -> AIMessageChunk | None:
        return None if self._done else self._chunk(self._decoder.feed(line))

    def end(self) -> AIMessageChunk | None:
        chunk = None if self._done else self._chunk(self._decoder.flush())
        if not (self._done or self._finished):
            raise ModelResponseError(
                "the stream ended before the answer was complete (no finish_reason and no "
                "[DONE]); the server may have dropped the connection"
            )
        return chunk

    def _chunk(self, data: Any) -> AIMessageChunk | None:
        if data is None:
            return None
        if data is DONE:
            self._done = True
            return None
        chunk = parse_stream_chunk(data)
        finish = (chunk._response_metadata or {}).get("finish_reason")
        if finish:
            self._finished = True
        if not (chunk.content or chunk._tool_call_chunks or chunk.usage_metadata or finish
                or chunk._additional_kwargs):
            return None
        return chunk


def decode_json(content: bytes) -> Any:
    """A response body as JSON, or :class:`ModelResponseError` saying what came instead."""
    try:
        return json.loads(content)
    except ValueError as exc:
        text = content.decode("utf-8", "replace")
        raise ModelResponseError(
            f"the server's answer is not JSON: {_excerpt(text or '(empty body)')}"
        ) from exc


# -- errors and retries ----------------------------------------------------------------------

#: Statuses worth another attempt: timeouts, conflicts, rate limits, server errors.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})

_MAX_RETRY_AFTER = 60.0


def _retry_after(headers: Mapping[str, str]) -> float | None:
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return float(lowered["retry-after-ms"]) / 1000
        value = lowered.get("retry-after")
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            import time

            return parsedate_to_datetime(value).timestamp() - time.time()
    except (ValueError, TypeError):
        return None


def retry_delay(attempt: int, headers: Mapping[str, str] | None = None,
                *, initial: float = 0.5, maximum: float = 8.0) -> float:
    """Seconds to wait before retry number ``attempt + 1``.

    The server's ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms`` wins when
    it is between 0 and 60 seconds; otherwise exponential backoff from ``initial``,
    capped at ``maximum``, minus up to 25% jitter so clients do not retry in lockstep.
    """
    after = _retry_after(headers or {})
    if after is not None and 0 <= after <= _MAX_RETRY_AFTER:
        return after
    delay: float = min(initial * 2**attempt, maximum)
    return delay * (1 - 0.25 * random.random())


def error_message(body: str) -> str:
    """The ``error.message`` of an error body, else an excerpt of the body."""
    try:
        message = _server_error(json.loads(body))
    except ValueError:
        message = None
    return message if message is not None else _excerpt(body.strip() or "(empty body)")


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every occurrence of each secret (and of most of a long one) masked."""
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, "***")
        # Servers like OpenAI echo a key back partly masked ("sk-abc***xyz"): hide its
        # recognisable middle too.
        if len(secret) > 12:
            text = text.replace(secret[:-4], "***").replace(secret[4:], "***")
    return text
