"""pydantic-ai's ``ModelMessage`` objects as threadline messages and back, losslessly.

A pydantic-ai history is a list of ``ModelRequest`` / ``ModelResponse``, each a list of
parts. threadline shows the parts it has a message for, so ``threadline sessions show``,
search, the server and other frameworks see the conversation:

=====================================  ==============================================
part                                   threadline message
=====================================  ==============================================
``SystemPromptPart``                   ``SystemMessage``
``UserPromptPart`` (text, images,      ``HumanMessage`` (a str, or text / image /
audio, video, documents)               audio / video / file content blocks)
``ToolReturnPart``                     ``ToolMessage`` (``status="error"`` unless it
                                       succeeded)
``RetryFeedbackPart``                  ``HumanMessage`` (``SystemMessage`` for
                                       ``no_output``), as pydantic-ai sends it
``RetryPromptPart`` (deprecated)       ``ToolMessage`` with a tool, else ``HumanMessage``
a ``ModelResponse``, all its parts     one ``AIMessage``: text, ``tool_calls``,
                                       ``usage_metadata``, ``model_name``
=====================================  ==============================================

Every threadline message made from a ``ModelMessage`` keeps, under
``additional_kwargs["pydantic_ai"]``, the JSON of its parts as pydantic-ai's own
``ModelMessagesTypeAdapter`` dumps them (``"parts"``); the first also keeps the rest of
the ``ModelMessage`` (``"message"``: timestamps, instructions, usage, run id, provider
details...), the others name it (``"group"``: the first one's id). A part threadline does
not show (thinking, native tool calls, files, instruction changes...) rides with the
shown part next to it; a request with nothing to show is one empty ``SystemMessage``.
Reading regroups each run of one group into its ``ModelMessage`` and loads it with the
same adapter, so what comes back equals what pydantic-ai itself gets back from its own
JSON: the messages of an agent run, exactly. Messages without the key (written by
another framework) become the parts they map to (:mod:`threadline.pydantic_ai._plain`).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from typing import Any

from threadline._errors import InputError, MessageFormatError, MissingDependencyError
from threadline.messages._values import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from threadline.pydantic_ai._plain import PlainReader

try:
    import pydantic
    from pydantic_ai import messages as pa
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("pydantic-ai-slim", "pydantic-ai") from exc

__all__ = ["KEY", "from_pydantic_ai", "message_from_pydantic_ai", "to_pydantic_ai"]

#: The one key of ``additional_kwargs`` under which pydantic-ai's data is kept.
KEY = "pydantic_ai"

_ADAPTER = pa.ModelMessagesTypeAdapter


def from_pydantic_ai(model_messages: Iterable[Any]) -> list[BaseMessage]:
    """threadline messages for pydantic-ai ``ModelMessage`` objects (``result.new_messages()``),
    each with an id; :func:`to_pydantic_ai` gives the ``ModelMessage`` objects back, equal.

    >>> from_pydantic_ai([ModelRequest.user_text_prompt("hi")])[0].content
    'hi'
    """
    model_messages = list(model_messages)
    for position, message in enumerate(model_messages):
        if not isinstance(message, pa.ModelRequest | pa.ModelResponse):
            raise InputError(f"expected pydantic-ai ModelRequest or ModelResponse objects, got "
                             f"{type(message).__name__} at position {position}")
    # One adapter call for the batch: pydantic-ai's own JSON is what is kept.
    dumped: list[dict[str, Any]] = _ADAPTER.dump_python(model_messages, mode="json")
    out: list[BaseMessage] = []
    for message, data in zip(model_messages, dumped, strict=True):
        parts = data.pop("parts")
        if isinstance(message, pa.ModelResponse):
            out.append(_response_message(message, data, parts))
        else:
            out.extend(_request_messages(message, data, parts))
    return out


def message_from_pydantic_ai(obj: object) -> BaseMessage:
    """Where a pydantic-ai object meets a place that takes one message
    (``history.add_messages``, ``convert_to_messages``): refused with the way to store it,
    since a ``ModelRequest`` holds several parts, so several threadline messages."""
    raise InputError(
        f"a pydantic-ai {type(obj).__name__} is one or more threadline messages and their "
        "pydantic-ai data: store a run's messages with "
        "history.add_pydantic_ai_messages(result.new_messages()), or convert them with "
        "threadline.pydantic_ai.from_pydantic_ai(...)")


def to_pydantic_ai(messages: Iterable[BaseMessage]) -> list[Any]:
    """pydantic-ai's ``list[ModelMessage]`` for threadline messages: the ones
    :func:`from_pydantic_ai` made come back as they were, the others as the parts they
    map to (a run of system, human and tool messages is one ``ModelRequest``, an AI
    message one ``ModelResponse``)."""
    items: list[dict[str, Any] | Any] = []  # stored ModelMessage dicts, or ModelMessages
    plain = PlainReader()
    group: str | None = None
    for message in messages:
        plain.note_calls(message)
        kept = message.additional_kwargs.get(KEY)
        if not (isinstance(kept, dict) and isinstance(kept.get("parts"), list)):
            group = None
            items.extend(plain.add(message))
            continue
        items.extend(plain.flush())
        if isinstance(kept.get("message"), dict):
            items.append({**kept["message"], "parts": list(kept["parts"])})
            group = message.id
        elif group is not None and kept.get("group") == group:
            items[-1]["parts"].extend(kept["parts"])
        else:
            # Its first message is not in this read (deleted): the parts stand alone.
            items.append({"kind": "request", "parts": list(kept["parts"])})
            group = kept.get("group")
    items.extend(plain.flush())
    stored = [item for item in items if isinstance(item, dict)]
    if not stored:
        return items
    try:
        loaded = iter(_ADAPTER.validate_python(stored))
    except pydantic.ValidationError as exc:
        raise MessageFormatError(
            f"stored pydantic-ai messages cannot be read by this pydantic-ai version: {exc}"
        ) from exc
    return [next(loaded) if isinstance(item, dict) else item for item in items]


# -- a response: one AIMessage ---------------------------------------------------------------


def _response_message(message: Any, envelope: dict[str, Any],
                      parts: list[dict[str, Any]]) -> AIMessage:
    calls: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, pa.ToolCallPart):
            try:
                args = part.args_as_dict(raise_if_invalid=True)
            except (ValueError, AssertionError) as exc:
                invalid.append({"name": part.tool_name, "args": part.args_as_json_str(),
                                "id": part.tool_call_id, "error": str(exc)})
                continue
            calls.append({"name": part.tool_name, "args": args, "id": part.tool_call_id})
    usage = message.usage
    metadata = {key: value for key, value in (
        ("model_name", message.model_name), ("finish_reason", message.finish_reason),
        ("provider_name", message.provider_name)) if value is not None}
    return AIMessage(
        message.text or "",
        tool_calls=calls,
        invalid_tool_calls=invalid,
        usage_metadata={"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                        "total_tokens": usage.input_tokens + usage.output_tokens},
        response_metadata=metadata,
        additional_kwargs={KEY: {"message": envelope, "parts": parts}},
        id=uuid.uuid4().hex,
    )


# -- a request: one message per part shown ---------------------------------------------------


def _request_messages(message: Any, envelope: dict[str, Any],
                      parts: list[dict[str, Any]]) -> list[BaseMessage]:
    # Runs of parts, each holding at most one part shown; the parts not shown ride with
    # the shown part before them (or, at the start, after them), so order is kept.
    runs: list[tuple[BaseMessage | None, list[dict[str, Any]]]] = []
    for part, data in zip(message.parts, parts, strict=True):
        shown = _shown(part)
        if shown is None and runs:
            runs[-1][1].append(data)
        elif shown is not None and runs and runs[-1][0] is None:
            runs[-1] = (shown, [*runs[-1][1], data])
        else:
            runs.append((shown, [data]))
    if not runs:
        runs.append((None, []))
    out: list[BaseMessage] = []
    head = uuid.uuid4().hex
    for index, (shown, run) in enumerate(runs):
        carrier = shown if shown is not None else SystemMessage("")
        kept: dict[str, Any] = ({"message": envelope, "parts": run} if index == 0
                                else {"group": head, "parts": run})
        carrier.additional_kwargs = {KEY: kept}
        carrier.id = head if index == 0 else uuid.uuid4().hex
        out.append(carrier)
    return out


def _shown(part: Any) -> BaseMessage | None:
    """The threadline message a request part is shown as, or ``None``."""
    if isinstance(part, pa.SystemPromptPart):
        return SystemMessage(part.content)
    if isinstance(part, pa.UserPromptPart):
        return HumanMessage(part.content if isinstance(part.content, str)
                            else _blocks(part.content))
    if isinstance(part, pa.ToolReturnPart):
        return ToolMessage(part.model_response_str(), tool_call_id=part.tool_call_id,
                           name=part.tool_name,
                           status="success" if part.outcome == "success" else "error")
    if isinstance(part, pa.RetryFeedbackPart):
        cls = SystemMessage if part.retry.cause == "no_output" else HumanMessage
        return cls(part.model_response())
    if isinstance(part, pa.RetryPromptPart):
        if part.tool_name is None:
            return HumanMessage(part.model_response())
        return ToolMessage(part.model_response(), tool_call_id=part.tool_call_id,
                           name=part.tool_name, status="error")
    if isinstance(part, pa.SpeechPart) and part.transcript:
        return HumanMessage(part.transcript)
    return None


_URL_BLOCKS = ((pa.ImageUrl, "image"), (pa.AudioUrl, "audio"), (pa.VideoUrl, "video"),
               (pa.DocumentUrl, "file"))


def _blocks(content: Iterable[Any]) -> list[str | dict[str, Any]]:
    """User content as LangChain's standard content blocks; a cache point is not shown."""
    blocks: list[str | dict[str, Any]] = []
    for item in content:
        if isinstance(item, str):
            blocks.append({"type": "text", "text": item})
        elif isinstance(item, pa.TextContent):
            blocks.append({"type": "text", "text": item.content})
        elif isinstance(item, pa.BinaryContent):
            kind = ("image" if item.is_image else "audio" if item.is_audio
                    else "video" if item.is_video else "file")
            blocks.append({"type": kind, "base64": base64.b64encode(item.data).decode("ascii"),
                           "mime_type": item.media_type})
        elif isinstance(item, pa.FileUrl):
            kind = next((name for cls, name in _URL_BLOCKS if isinstance(item, cls)), "file")
            blocks.append({"type": kind, "url": item.url, "mime_type": item.media_type})
        elif isinstance(item, pa.UploadedFile):
            blocks.append({"type": "file", "file_id": item.file_id})
    return blocks
