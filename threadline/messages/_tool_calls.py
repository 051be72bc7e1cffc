"""Tool calls as LangChain spells them: three TypedDicts and their factories.

A model asks for a tool with a :class:`ToolCall` (``args`` a dict); while streaming it
sends :class:`ToolCallChunk` pieces (``args`` a growing JSON string, joined by
``index``); arguments that never parse become an :class:`InvalidToolCall`. They are
plain dicts, so they cost nothing beyond the dict and round-trip through JSON as is.

>>> tool_call(name="add", args={"a": 1}, id="c1")
{'name': 'add', 'args': {'a': 1}, 'id': 'c1', 'type': 'tool_call'}
"""

from __future__ import annotations

import json
from bisect import bisect_right
from itertools import accumulate
from typing import Any, Literal, NotRequired, TypedDict

__all__ = [
    "InvalidToolCall",
    "ToolCall",
    "ToolCallChunk",
    "chunks_from_tool_calls",
    "invalid_tool_call",
    "parse_partial_json",
    "tool_call",
    "tool_call_chunk",
    "tool_call_chunks_from_openai",
    "tool_calls_from_chunks",
    "tool_calls_from_openai",
]


class ToolCall(TypedDict):
    """A request to call the tool ``name`` with ``args``; ``id`` pairs it with its result."""

    name: str
    args: dict[str, Any]
    id: str | None
    type: NotRequired[Literal["tool_call"]]


class ToolCallChunk(TypedDict):
    """A piece of a streamed tool call; pieces with the same ``index`` are joined."""

    name: str | None
    args: str | None
    id: str | None
    index: int | None
    type: NotRequired[Literal["tool_call_chunk"]]


class InvalidToolCall(TypedDict):
    """A tool call whose arguments are not a JSON object, kept as the model wrote them."""

    name: str | None
    args: str | None
    id: str | None
    error: str | None
    type: NotRequired[Literal["invalid_tool_call"]]


def tool_call(*, name: str, args: dict[str, Any], id: str | None) -> ToolCall:
    """A :class:`ToolCall`: ``tool_call(name="add", args={"a": 1}, id="c1")``."""
    return {"name": name, "args": args, "id": id, "type": "tool_call"}


def tool_call_chunk(*, name: str | None = None, args: str | None = None,
                    id: str | None = None, index: int | None = None) -> ToolCallChunk:
    """A :class:`ToolCallChunk`: ``tool_call_chunk(name="add", args='{"a"', index=0)``."""
    return {"name": name, "args": args, "id": id, "index": index, "type": "tool_call_chunk"}


def invalid_tool_call(*, name: str | None = None, args: str | None = None,
                      id: str | None = None, error: str | None = None) -> InvalidToolCall:
    """An :class:`InvalidToolCall`: the arguments as written, and why they did not parse."""
    return {"name": name, "args": args, "id": id, "error": error, "type": "invalid_tool_call"}


def parse_partial_json(text: str, *, strict: bool = False) -> Any:
    """Parse JSON that may be cut short (``'{"a": 1, "b'`` gives ``{"a": 1}``), as
    LangChain does for the arguments of streamed tool calls; a text that no closing of
    strings, brackets and braces repairs raises :class:`json.JSONDecodeError`."""
    try:
        return json.loads(text, strict=strict)
    except json.JSONDecodeError:
        pass
    pieces: list[str] = []
    closers: list[str] = []
    in_string = escaped = False
    for char in text:
        piece = char
        if in_string:
            if char == '"' and not escaped:
                in_string = False
            elif char == "\n" and not escaped:
                piece = "\\n"
            elif char == "\\":
                escaped = not escaped
            else:
                escaped = False
        elif char == '"':
            in_string, escaped = True, False
        elif char == "{":
            closers.append("}")
        elif char == "[":
            closers.append("]")
        elif char in "}]":
            if not closers or closers[-1] != char:
                return None  # a mismatched closer: no prefix of this is JSON
            closers.pop()
        pieces.append(piece)
    if in_string:
        if escaped:
            pieces.pop()
        pieces.append('"')
    closers.reverse()
    ends = list(accumulate(map(len, pieces)))
    # Drop characters from the end until the rest, closed, parses. A longer candidate
    # still holds the character the decoder rejected, so skip straight before it.
    while pieces:
        try:
            return json.loads("".join(pieces + closers), strict=strict)
        except json.JSONDecodeError as exc:
            cut = bisect_right(ends, exc.pos)
            if cut < len(pieces):
                del pieces[cut:], ends[cut:]
            else:
                pieces.pop()
                ends.pop()
    return json.loads(text, strict=strict)


def tool_calls_from_chunks(
    chunks: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The tool calls and invalid tool calls that tool call chunks stand for, as
    LangChain's ``AIMessageChunk`` derives them: arguments parsed as partial JSON (empty
    ones as ``{}``); anything that is not a JSON object is an invalid call."""
    calls: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    for chunk in chunks:
        raw = chunk.get("args")
        try:
            args = parse_partial_json(raw) if raw else {}
        except (ValueError, TypeError):  # JSONDecodeError is a ValueError
            args = None
        if isinstance(args, dict):
            calls.append({"name": chunk.get("name") or "", "args": args, "id": chunk.get("id"),
                          "type": "tool_call"})
        else:
            invalid.append({"name": chunk.get("name"), "args": raw, "id": chunk.get("id"),
                            "error": None, "type": "invalid_tool_call"})
    return calls, invalid


def chunks_from_tool_calls(calls: list[dict[str, Any]] | None,
                           invalid: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The chunks a chunk made from whole tool calls carries, so that adding it to other
    chunks keeps its calls (LangChain's ``AIMessageChunk`` does the same)."""
    chunks: list[dict[str, Any]] = [
        {"name": call.get("name"), "args": json.dumps(call.get("args", {})),
         "id": call.get("id"), "index": None, "type": "tool_call_chunk"}
        for call in calls or ()]
    chunks.extend({"name": call.get("name"), "args": call.get("args"), "id": call.get("id"),
                   "index": None, "type": "tool_call_chunk"} for call in invalid or ())
    return chunks


def tool_calls_from_openai(
    raw_calls: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """OpenAI-format calls (``{"id", "function": {"name", "arguments"}}``, as LangChain
    0.1 kept them in ``additional_kwargs["tool_calls"]``) as tool calls, and those whose
    arguments are not JSON as invalid ones (LangChain's ``default_tool_parser``)."""
    calls: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    for raw in raw_calls:
        if "function" not in raw:
            continue
        name, arguments = raw["function"]["name"], raw["function"]["arguments"]
        try:
            args = json.loads(arguments)
        except json.JSONDecodeError:
            invalid.append({"name": name, "args": arguments, "id": raw.get("id"),
                            "error": None, "type": "invalid_tool_call"})
        else:
            calls.append({"name": name or "", "args": args or {}, "id": raw.get("id"),
                          "type": "tool_call"})
    return calls, invalid


def tool_call_chunks_from_openai(raw_calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-format streamed call deltas as tool call chunks (LangChain's
    ``default_tool_chunk_parser``)."""
    chunks: list[dict[str, Any]] = []
    for raw in raw_calls:
        function = raw.get("function")
        chunks.append({"name": function["name"] if function else None,
                       "args": function["arguments"] if function else None,
                       "id": raw.get("id"), "index": raw.get("index"),
                       "type": "tool_call_chunk"})
    return chunks
