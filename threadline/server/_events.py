"""The Responses API's wire objects: pure builders of response objects and stream events.

Nothing here does I/O. A response object carries every field OpenAI's ``Response`` has
and the Open Responses specification requires (``top_p``, ``truncation``,
``service_tier``...), with the values this server actually used: sampling settings
nobody set are reported as the defaults a model applies (``temperature`` 1.0).

A stream is a sequence of events, each with a ``type`` and an increasing
``sequence_number`` (:class:`EventCounter` numbers them), sent as ``event: <type>`` and
``data: <json>`` lines as OpenAI sends them (:func:`sse`). A text answer is one
assistant message with one ``output_text`` part::

    response.created, response.in_progress, response.output_item.added,
    response.content_part.added, response.output_text.delta (one per model chunk),
    response.output_text.done, response.content_part.done, response.output_item.done,
    response.completed

A model failing mid-answer ends the stream with ``response.failed`` then ``error``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["EventCounter", "output_message", "response_object", "sse", "text_part", "usage"]


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def output_message(item_id: str, text: str | None, status: str) -> dict[str, Any]:
    """The assistant message item; ``text=None`` is one without parts yet (streaming)."""
    content = [] if text is None else [text_part(text)]
    return {"type": "message", "id": item_id, "role": "assistant", "status": status,
            "content": content}


def usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0}}


def response_object(resp_id: str, *, created_at: int, model: str, status: str,
                    output: list[dict[str, Any]], conversation: str | None,
                    previous_response_id: str | None, instructions: str | None,
                    metadata: Mapping[str, str] | None, store: bool,
                    temperature: float | None, max_output_tokens: int | None,
                    usage: dict[str, Any] | None = None, completed_at: int | None = None,
                    error: dict[str, Any] | None = None,
                    incomplete_reason: str | None = None) -> dict[str, Any]:
    """A ``response`` object; ``status`` is in_progress, completed, incomplete or failed.

    An incomplete response says why: ``max_output_tokens`` (the answer hit the limit) or
    ``interrupted`` (the client went away or pressed stop; not one of OpenAI's reasons,
    which have none for it)."""
    incomplete = {"reason": incomplete_reason} if incomplete_reason else None
    return {
        "id": resp_id, "object": "response", "created_at": created_at,
        "completed_at": completed_at, "status": status, "error": error,
        "incomplete_details": incomplete, "model": model, "output": output,
        "usage": usage,
        "conversation": {"id": conversation} if conversation is not None else None,
        "previous_response_id": previous_response_id, "instructions": instructions,
        "metadata": dict(metadata or {}), "store": store,
        "temperature": 1.0 if temperature is None else temperature, "top_p": 1.0,
        "presence_penalty": 0.0, "frequency_penalty": 0.0, "top_logprobs": 0,
        "max_output_tokens": max_output_tokens, "max_tool_calls": None,
        "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
        "text": {"format": {"type": "text"}}, "truncation": "disabled",
        "reasoning": None, "background": False, "service_tier": "default",
        "safety_identifier": None, "prompt_cache_key": None, "user": None,
    }


class EventCounter:
    """Numbers the events of one stream: ``event(type, **fields)`` -> the event dict."""

    def __init__(self) -> None:
        self.next = 0

    def event(self, type: str, **fields: Any) -> dict[str, Any]:
        number, self.next = self.next, self.next + 1
        return {"type": type, "sequence_number": number, **fields}


def sse(event: Mapping[str, Any]) -> bytes:
    """One server-sent event, named by its type as OpenAI names them."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()
