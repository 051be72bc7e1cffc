"""Chat Completions and the model list: the stateless half of the OpenAI API.

``POST /v1/chat/completions`` stores nothing: the request's ``messages`` are the whole
conversation (after the server's system prompt, if it has one). They are converted to
threadline messages at the boundary, every role and content part Chat Completions has
for text: ``system``/``developer``, ``user`` (text and ``image_url`` parts),
``assistant`` (with ``tool_calls``) and ``tool``; anything else is a 400 naming the
message, never dropped. ``stream: true`` sends ``chat.completion.chunk`` events ending
with ``data: [DONE]``; a model failing mid-stream sends ``{"error": ...}`` instead,
which the SDKs raise.

``GET /v1/models`` lists the served model ids (what ``model`` may name).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter
from starlette.responses import StreamingResponse

from threadline.messages._chunks import AIMessageChunk, merge_chunks
from threadline.messages._values import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from threadline.server._errors import ApiError, as_api_error, error_body
from threadline.server._items import json_arguments
from threadline.server._state import CallerDep, StateDep
from threadline.server._turns import closing_stream, model_limits
from threadline.server._wire import ChatRequest

__all__ = ["chat_messages", "router"]

router = APIRouter()

#: ``created`` of every model: when this server started serving it.
_STARTED = int(time.time())


def _bad(param: str, message: str) -> ApiError:
    return ApiError(400, f"Invalid '{param}': {message}", param=param, code="invalid_value")


def _content(value: Any, where: str) -> str | list[str | dict[str, Any]]:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise _bad(f"{where}.content", "expected a string or a list of content parts.")
    blocks: list[str | dict[str, Any]] = []
    for n, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        assert kind is None or isinstance(part, dict)
        if kind == "text" and isinstance(part.get("text"), str):
            blocks.append({"type": "text", "text": part["text"]})
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            blocks.append({"type": "text", "text": part["refusal"]})
        elif kind == "image_url" and isinstance(part.get("image_url"), dict) \
                and isinstance(part["image_url"].get("url"), str):
            blocks.append({"type": "image_url", "image_url": {"url": part["image_url"]["url"]}})
        else:
            raise _bad(f"{where}.content[{n}]", f"unsupported content part {kind!r}; "
                       "supported: text, image_url, refusal.")
    if all(isinstance(b, dict) and b.get("type") == "text" for b in blocks):
        return "".join(str(b["text"]) for b in blocks if isinstance(b, dict))
    return blocks


def _tool_calls(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(f"{where}.tool_calls", "expected a list.")
    calls = []
    for n, call in enumerate(value):
        function = call.get("function") if isinstance(call, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        arguments = function.get("arguments", "{}") if isinstance(function, dict) else None
        if not isinstance(name, str) or not isinstance(arguments, str):
            raise _bad(f"{where}.tool_calls[{n}]", "a function call needs a string name "
                       "and arguments.")
        args = json_arguments(arguments, f"{where}.tool_calls[{n}].function.arguments")
        assert isinstance(call, dict)
        calls.append({"name": name, "args": args, "id": call.get("id")})
    return calls


def chat_messages(raw: list[dict[str, Any]]) -> list[BaseMessage]:
    """Chat Completions ``messages`` as threadline messages (400 naming what is wrong)."""
    messages: list[BaseMessage] = []
    for n, item in enumerate(raw):
        where = f"messages[{n}]"
        role, name = item.get("role"), item.get("name")
        name = name if isinstance(name, str) else None
        content = _content(item.get("content"), where)
        if role in ("system", "developer"):
            messages.append(SystemMessage(content, name=name))
        elif role == "user":
            messages.append(HumanMessage(content, name=name))
        elif role == "assistant":
            messages.append(AIMessage(content, tool_calls=_tool_calls(item.get("tool_calls"),
                                                                      where), name=name))
        elif role == "tool":
            call_id = item.get("tool_call_id")
            if not isinstance(call_id, str):
                raise _bad(f"{where}.tool_call_id", "a tool message needs its tool_call_id.")
            messages.append(ToolMessage(content, tool_call_id=call_id))
        else:
            raise _bad(f"{where}.role", f"{role!r}; expected system, developer, user, "
                       "assistant or tool.")
    return messages


def _finish_reason(answer: AIMessage) -> str:
    if answer._tool_calls:
        return "tool_calls"
    reason = (answer.response_metadata or {}).get("finish_reason")
    return "length" if reason in ("length", "max_tokens") else "stop"


def _wire_calls(answer: AIMessage) -> list[dict[str, Any]] | None:
    if not answer._tool_calls:
        return None
    return [{"index": n, "id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
             "type": "function",
             "function": {"name": call["name"],
                          "arguments": json.dumps(call.get("args", {}), ensure_ascii=False)}}
            for n, call in enumerate(answer._tool_calls)]


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatRequest, state: StateDep, caller: CallerDep) -> Any:
    """One stateless completion (see the module docstring)."""
    model_id, model = state.model(body.model)
    messages = chat_messages(body.messages)
    if state.system:
        messages.insert(0, SystemMessage(state.system))
    options: dict[str, Any] = {}
    limit = body.max_completion_tokens or body.max_tokens
    if limit is not None:
        options["max_tokens"] = limit
    if body.temperature is not None:
        options["temperature"] = body.temperature
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    head = {"id": ident, "created": created, "model": model_id, "system_fingerprint": None}
    if body.stream:
        usage = bool((body.stream_options or {}).get("include_usage"))
        return StreamingResponse(_chunks(model, messages, options, head, usage),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
    answer = await model.ainvoke(messages, **options)
    message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None,
                               "annotations": []}
    calls = _wire_calls(answer)
    if calls:
        message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in calls]
    return {**head, "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": _finish_reason(answer)}],
            "usage": await _usage(model, messages, answer)}


async def _usage(model: Any, messages: list[BaseMessage], answer: AIMessage) -> dict[str, Any]:
    given = answer.usage_metadata or {}
    prompt, completion = given.get("input_tokens"), given.get("output_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        _, counter = await model_limits(model)
        prompt = counter(messages)
        completion = counter.message_tokens(AIMessage(answer.text))
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _data(value: Any) -> bytes:
    return f"data: {json.dumps(value, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


async def _chunks(model: Any, messages: list[BaseMessage], options: dict[str, Any],
                  head: dict[str, Any], include_usage: bool) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _data({**head, "object": "chat.completion.chunk",
                      "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                   "finish_reason": finish}]})

    yield chunk({"role": "assistant", "content": ""})
    pieces: list[AIMessageChunk] = []
    try:
        async with aclosing(closing_stream(model.astream(messages, **options))) as stream:
            async for piece in stream:
                pieces.append(piece)
                if piece.text:
                    yield chunk({"content": piece.text})
    except Exception as exc:
        error = as_api_error(exc)
        yield _data(error_body(error.message, error.type, error.param, error.code))
        return
    answer = merge_chunks(pieces).to_message() if pieces else AIMessage("")
    calls = _wire_calls(answer)
    if calls:
        yield chunk({"tool_calls": calls})
    yield chunk({}, _finish_reason(answer))
    if include_usage:
        yield _data({**head, "object": "chat.completion.chunk", "choices": [],
                     "usage": await _usage(model, messages, answer)})
    yield b"data: [DONE]\n\n"


@router.get("/v1/models")
async def list_models(state: StateDep, caller: CallerDep) -> dict[str, Any]:
    return {"object": "list", "data": [_model(name) for name in state.models]}


@router.get("/v1/models/{model:path}")
async def get_model(model: str, state: StateDep, caller: CallerDep) -> dict[str, Any]:
    name, _ = state.model(model)
    return _model(name)


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": _STARTED, "owned_by": "threadline"}
