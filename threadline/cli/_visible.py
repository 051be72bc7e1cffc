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

>>> visible("chat\\n\\x1b]0;pwned\\x07")
'chat^J^[]0;pwned^G'
>>> visible("line one\\r\\nline two\\tend\\x1b[2J", lines=True)
'line one\\nline two\\tend^[[2J'
"""

from __future__ import annotations

import json
import re

__all__ = ["json_text", "visible"]

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
