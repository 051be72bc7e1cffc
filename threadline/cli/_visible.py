"""Showing text the command line does not control (stored data, model output) safely.

Session ids, stored messages and a model's answers may come from someone else: another
user of a shared store, or a model steered by a prompt injection. Written raw to a
terminal, their control characters are commands: OSC 52 writes the clipboard, OSC 8
plants a link whose target is not what it shows, ``ESC [2J`` clears the screen, OSC 0
sets the window title, a newline in a session id adds a fake row to ``sessions list``.

Everything the command line prints as text goes through :func:`visible`, which shows
such characters instead of sending them: C0 controls in caret notation (ESC as ``^[``,
CR as ``^M``), DEL as ``^?``, and C1 controls, bidirectional overrides (which reorder
what a line shows) and lone surrogates (which cannot be written as UTF-8) as
``<U+XXXX>``. Ordinary newlines and tabs stay in message text (``lines=True``), where the
layout expects them; never in an id or a one-line message, which are one line each.

JSON output (``--json``) is exact: :func:`json_text` escapes the same characters the
JSON way (``\\u009b``), which keeps every value as it is for the program that reads it.

Stored messages are shown by :func:`message_lines` the way a person reads a chat, not as
Python types: a streamed row (``AIMessageChunk``, as LangChain apps store them) is ``AI:``
like any answer; a turn that calls tools shows each call, ``AI → get_weather(city="Oslo")``,
and a tool's result is ``Tool get_weather: ...``. Nothing stored is left out: a content
block that is not text shows as ``[image_url]``.

>>> visible("chat\\n\\x1b]0;pwned\\x07")
'chat^J^[]0;pwned^G'
>>> visible("line one\\r\\nline two\\tend\\x1b[2J", lines=True)
'line one\\nline two\\tend^[[2J'
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from threadline.messages._values import BaseMessage

__all__ = ["json_text", "message_line", "message_lines", "visible"]

# Characters that act on a terminal (or hide what a line says) rather than show:
# C0 and DEL, C1, bidi embeddings/overrides/isolates, and lone surrogates.
_NOT_C0 = "\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_ONE_LINE = re.compile(f"[\x00-\x1f{_NOT_C0}]")
_LINES = re.compile(f"\r\n|[\x00-\x08\x0b-\x1f{_NOT_C0}]")  # keeps \t and \n
# JSON already escapes C0; these it leaves raw with ensure_ascii=False (U+2028/9 too,
# which JavaScript readers of JSON Lines take for line ends).
_JSON_RAW = re.compile(f"[\u2028\u2029{_NOT_C0}]")


def _shown(match: re.Match[str]) -> str:
    char = match[0]
    if char == "\r\n":
        return "\n"
    code = ord(char)
    if code < 0x20:
        return "^" + chr(code + 0x40)
    if code == 0x7F:
        return "^?"
    return f"<U+{code:04X}>"


def visible(text: str, *, lines: bool = False) -> str:
    """``text`` with its control characters shown, not sent: one line, unless ``lines``
    keeps its newlines and tabs (a CR LF pair becomes a newline)."""
    return (_LINES if lines else _ONE_LINE).sub(_shown, text)


def json_text(value: object) -> str:
    """``value`` as one line of JSON that prints safely and reads back exactly."""
    text = json.dumps(value, ensure_ascii=False)
    return _JSON_RAW.sub(lambda match: f"\\u{ord(match[0]):04x}", text)


# -- messages ------------------------------------------------------------------------------

# Message type -> how a chat shows who spoke. A chunk type (``AIMessageChunk``) is its
# message's type: a streamed answer is an answer.
_ROLES = {"human": "You", "ai": "AI", "system": "System", "tool": "Tool",
          "function": "Function", "chat": "Chat"}
_CHUNK = "MessageChunk"


def _kind(message: BaseMessage) -> str:
    """The message's type, a chunk's as its message's: ``AIMessageChunk`` is ``ai``."""
    kind = message.type
    return kind[: -len(_CHUNK)].lower() if kind.endswith(_CHUNK) else kind


def _role(message: BaseMessage, kind: str) -> str:
    if kind == "chat" and isinstance(role := getattr(message, "role", None), str):
        return visible(role)
    return _ROLES.get(kind) or visible(kind)


def _argument(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _call(name: Any, args: Any) -> str:
    """``name(key=value, ...)``, the values as JSON; arguments that are not a dict (a
    stream cut short, a model's malformed JSON) as they were received."""
    if isinstance(args, str):  # a call still in chunks holds its arguments as JSON text
        with contextlib.suppress(ValueError):
            args = json.loads(args) if args.lstrip().startswith("{") else args
    if isinstance(args, dict):
        shown = ", ".join(f"{key}={_argument(value)}" for key, value in args.items())
    else:
        shown = "" if args in (None, "") else str(args)
    return visible(f"{name if isinstance(name, str) and name else '?'}({shown})")


def _calls(message: BaseMessage) -> list[str]:
    """Each tool call of an AI message (parsed, malformed, or still in chunks), shown."""
    shown = [_call(c.get("name"), c.get("args")) for c in getattr(message, "tool_calls", ())]
    shown += [f"{_call(c.get('name'), c.get('args'))} [invalid: {visible(str(c.get('error')))}]"
              for c in getattr(message, "invalid_tool_calls", ())]
    if not shown:  # a chunk stored before its calls were parsed
        shown = [_call(c.get("name"), c.get("args"))
                 for c in getattr(message, "tool_call_chunks", ())]
    if not shown and isinstance(message.content, list):  # Anthropic-style blocks only
        shown = [_call(b.get("name"), b.get("input")) for b in message.content
                 if isinstance(b, dict) and b.get("type") == "tool_use"]
    return shown


def _text(message: BaseMessage) -> str:
    """The message's text; a content block that is neither text nor a tool call (which
    :func:`_calls` shows) is named, ``[image_url]``, not dropped."""
    if isinstance(message.content, str):
        return message.content
    parts = []
    for block in message.content:
        if isinstance(block, str):
            parts.append(block)
        elif block.get("type") == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif block.get("type") != "tool_use":
            parts.append(f"[{block.get('type') or 'block'}]")
    return "".join(parts)


def message_line(message: BaseMessage, *, tool_names: dict[str, str] | None = None) -> str:
    """One message as a chat shows it: ``You: text``, ``AI: text``, then a line per tool
    call, ``AI → get_weather(city="Oslo")``; a tool's result as ``Tool NAME: text`` (its
    name, else the calling tool's from ``tool_names``: call id -> name). An interrupted
    answer is marked. The text keeps its line breaks; control characters are shown, not
    sent (:func:`visible`).

    >>> from threadline import AIMessage
    >>> message_line(AIMessage("", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "1"}]))
    'AI → f(x=1)'
    """
    kind = _kind(message)
    role = _role(message, kind)
    if kind == "tool":
        name = message.name or (tool_names or {}).get(getattr(message, "tool_call_id", ""))
        if name:
            role = f"{role} {visible(name)}"
        if getattr(message, "status", "success") == "error":
            role += " [error]"
    elif kind == "function" and message.name:
        role = f"{role} {visible(message.name)}"
    text = visible(_text(message).rstrip(), lines=True)
    if (message.response_metadata or {}).get("interrupted"):
        text = f"{text} [interrupted]" if text else "[interrupted]"
    calls = [f"{role} → {call}" for call in _calls(message)] if kind == "ai" else []
    if calls and not text:
        return "\n".join(calls)
    return "\n".join([f"{role}: {text}", *calls])


def message_lines(messages: Sequence[BaseMessage]) -> Iterator[str]:
    """:func:`message_line` of each message; a tool result without a name gets the name
    of the call it answers, from an earlier message."""
    tool_names: dict[str, str] = {}
    for message in messages:
        for call in getattr(message, "tool_calls", ()):
            if isinstance(call.get("id"), str) and isinstance(call.get("name"), str):
                tool_names[call["id"]] = call["name"]
        yield message_line(message, tool_names=tool_names)
