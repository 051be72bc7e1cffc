"""The history file format, as pure functions: bytes in, message slots and messages out.

Format: JSON Lines, one LangChain message dict per line (``{"type": "human", "data":
{...}}``), or LangChain's JSON array; the first non-blank byte tells them apart.

A file is cut into *slots*, one per stored message, each with the file offset where it
starts and its raw bytes: the non-blank lines of a JSON Lines file (the last line counts
only when it is complete JSON: a line cut by a killed write is *torn*, not a message), or
the top-level items of an array. Slots are numbered from 0, oldest first; that number is
the message's position in errors. Decoding never raises anything but
:class:`DamagedMessageError` for a bad slot, whatever the bytes (not text, not JSON, JSON
nested 100,000 deep, a dict that is not a message), so one damaged line can be skipped
(``skip_invalid``), set aside (:func:`~threadline.stores.file.repair_history_file`) or
reported with its line number. The I/O lives in :mod:`._files`.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from threadline._errors import DamagedMessageError, MessageFormatError, SkippedMessageWarning
from threadline.messages._serialization import message_from_dict, message_to_dict
from threadline.messages._values import BaseMessage
from threadline.stores._base import decode_message

__all__ = [
    "BLANK",
    "CHUNK",
    "EXPECTED",
    "DamagedMessageError",
    "Slot",
    "decode_slots",
    "encode_lines",
    "encode_texts",
    "file_kind",
    "join_lines",
    "split_array",
    "split_lines",
]

BLANK = b" \t\r\n"
CHUNK = 64 * 1024
EXPECTED = ("expected LangChain's JSON array of message dicts or JSON Lines with one "
            'message dict ({"type": "human", "data": {...}}) per line')


class Slot(NamedTuple):
    """One stored message's bytes: where they start in the file, and the bytes."""

    offset: int
    raw: bytes


def file_kind(head: bytes) -> str:
    """``"empty"``, ``"json"`` (array), ``"jsonl"`` or ``"unknown"`` from the first bytes."""
    stripped = head.lstrip(BLANK)
    if not stripped:
        return "empty"
    return {b"[": "json", b"{": "jsonl"}.get(stripped[:1], "unknown")


# Built once: json.dumps() with keyword arguments makes a new encoder per call.
_ENCODERS = {flag: json.JSONEncoder(ensure_ascii=flag, separators=(",", ":"))
             for flag in (False, True)}


def encode_lines(items: Sequence[dict[str, Any]], encoding: str, ensure_ascii: bool) -> bytes:
    # JSON escapes control characters, so a line never holds a raw newline.
    encoder = _ENCODERS[ensure_ascii]
    return "".join(encoder.encode(item) + "\n" for item in items).encode(encoding)


def encode_texts(messages: Sequence[BaseMessage], ensure_ascii: bool) -> list[str]:
    """Each message's line (its dict as compact JSON), without the newline."""
    encoder = _ENCODERS[ensure_ascii]
    return [encoder.encode(message_to_dict(m)) for m in messages]


def join_lines(texts: Sequence[str], encoding: str) -> bytes:
    return "".join(text + "\n" for text in texts).encode(encoding)


# --- cutting a file into slots --------------------------------------------------------------


def _is_json(raw: bytes, encoding: str) -> bool:
    """Whether an unterminated last line is whole: a prefix of a JSON object is never
    valid JSON, so a line cut by a write is not (JSON too deep to parse counts as whole:
    it is damaged, not torn)."""
    try:
        json.loads(raw.decode(encoding))
    except RecursionError:
        return True
    except ValueError:  # UnicodeDecodeError included: a write cut inside a character
        return False
    return True


def split_lines(data: bytes, base: int, encoding: str) -> tuple[list[Slot], int, bool]:
    """The slots of ``data``, whole lines of a JSON Lines file from file offset ``base``.

    Returns ``(slots, end, torn)``: ``end`` is the file offset just after the last
    newline; ``torn`` says the bytes after it are a torn write (not a slot).
    """
    cut = data.rfind(b"\n") + 1
    slots: list[Slot] = []
    offset = base
    # split(b"\n"), not splitlines(): with ensure_ascii=False a message may hold U+2028.
    for line in data[:cut].split(b"\n")[:-1]:
        if line.strip(BLANK):
            slots.append(Slot(offset, line))
        offset += len(line) + 1
    tail = data[cut:]
    torn = False
    if tail.strip(BLANK):
        if _is_json(tail, encoding):
            slots.append(Slot(base + cut, tail))
        else:
            torn = True
    return slots, base + cut, torn


_SPACE = " \t\r\n"  # JSON's whitespace
_BLANKS = re.compile(r"[ \t\r\n]*")
# Where a top-level item may start after a damaged one: a comma, then an object.
_NEXT = re.compile(r",[ \t\r\n]*\{")
_DECODER = json.JSONDecoder()


def _value_end(text: str, pos: int, *, message: bool = False) -> int | None:
    """Where the JSON value at ``pos`` ends if it parses (and, with ``message``, is a
    message dict) and a ``,`` or ``]`` follows it; else None."""
    try:
        value, end = _DECODER.raw_decode(text, pos)
        if message:
            message_from_dict(value)
    except (ValueError, RecursionError, MessageFormatError):
        return None
    after = _BLANKS.match(text, end).end()  # type: ignore[union-attr]
    return end if text[after:after + 1] in (",", "]") else None


def split_array(data: bytes, encoding: str) -> tuple[list[Slot], Slot | None]:
    """The top-level items of a JSON array file that is not well formed, so that one bad
    item does not hide the others: each item is parsed on its own (a bad one is cut off
    at the next ``, {`` where a readable message starts).

    Returns ``(items, rest)``: ``rest`` is None if the array ends well, else what
    follows the last item (an unterminated last item, text after the array), stripped:
    a slot of its own unless it is empty.
    """
    text = data.decode(encoding, "surrogateescape")  # every byte kept, bad ones too
    size = len(text)
    spans: list[tuple[int, int]] = []
    rest: tuple[int, int] | None = None
    pos = _BLANKS.match(text, text.index("[") + 1).end()  # type: ignore[union-attr]
    if text[pos:pos + 1] == "]":
        pos += 1
    else:
        while True:
            if text[pos:pos + 1] == "]":  # after a trailing comma
                pos += 1
                break
            end = _value_end(text, pos)
            if end is None:
                found = next((m for m in _NEXT.finditer(text, pos)
                              if _value_end(text, m.end() - 1, message=True) is not None),
                             None)
                if found is None:
                    rest = (pos, size)
                    break
                spans.append((pos, found.start()))  # the damaged item
                pos = found.end() - 1
                continue
            spans.append((pos, end))
            pos = _BLANKS.match(text, end).end()  # type: ignore[union-attr]
            pos += 1
            if text[pos - 1] == "]":
                break
            pos = _BLANKS.match(text, pos).end()  # type: ignore[union-attr]
    if rest is None and text[pos:].strip(_SPACE):
        rest = (pos, size)
    slots: list[Slot] = []
    offset, last = 0, 0
    for begin, end in [*spans, *([rest] if rest else [])]:
        part = text[begin:end]
        begin += len(part) - len(part.lstrip(_SPACE))
        offset += len(text[last:begin].encode(encoding, "surrogateescape"))
        last = begin
        slots.append(Slot(offset, part.strip(_SPACE).encode(encoding, "surrogateescape")))
    if rest is None:
        return slots, None
    return slots[:-1], slots[-1]


# --- decoding slots -------------------------------------------------------------------------


def _decode_all(slots: Sequence[Slot], encoding: str) -> list[BaseMessage] | None:
    """Every slot at once (one ``json.loads`` over them joined into an array, half the
    cost of one per slot), or None if any is bad."""
    try:
        items = json.loads((b"[" + b",".join(s.raw for s in slots) + b"]").decode(encoding))
        if isinstance(items, list) and len(items) == len(slots):
            return [message_from_dict(item) for item in items]
    except (ValueError, RecursionError, MessageFormatError):
        pass  # decoded again slot by slot, to name the bad one
    return None


def _decode_one(raw: bytes, encoding: str) -> BaseMessage | str:
    """The message, or why it cannot be read."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        return f"not valid {encoding} text ({exc.reason} at byte {exc.start})"
    if not text.strip():
        return "an empty item"
    try:
        return decode_message(text)
    except MessageFormatError as exc:
        return str(exc)
    except RecursionError:  # a deep structure that JSON parsed but a check recursed into
        return "a stored message is JSON nested too deeply to read"


def damaged(reason: str, *, where: str, session_id: str | None, position: int,
            line: int | None) -> DamagedMessageError:
    """The error for the bad message at ``position`` (negative: counted from the newest)."""
    at = (f"message {position}" if position >= 0
          else f"message {position} (counting back from the newest, -1)")
    of = f" of session {session_id!r:.200}" if session_id is not None else ""
    loc = f", line {line}" if line is not None else ""
    text = f"{at}{of} cannot be read ({where}{loc}): {reason}"
    return DamagedMessageError(text, session_id=session_id, position=position, line=line)


def decode_slots(slots: Sequence[Slot], *, encoding: str, where: str,
                 session_id: str | None = None, first: int = 0, from_end: bool = False,
                 skip_invalid: bool = False,
                 line_of: Callable[[int], int] | None = None) -> list[BaseMessage]:
    """The messages of ``slots``; ``first`` is the position of ``slots[0]`` in the file,
    or, ``from_end``, positions count back from the last slot (-1).

    A bad slot raises :class:`DamagedMessageError` naming the file, ``session_id``, the
    position and (``line_of(offset)``) the line; ``skip_invalid`` leaves it out instead,
    with a :class:`SkippedMessageWarning`.
    """
    if not slots:
        return []
    fast = _decode_all(slots, encoding)
    if fast is not None:
        return fast
    messages: list[BaseMessage] = []
    for index, slot in enumerate(slots):
        found = _decode_one(slot.raw, encoding)
        if not isinstance(found, str):
            messages.append(found)
            continue
        position = index - len(slots) if from_end else first + index
        error = damaged(found, where=where, session_id=session_id, position=position,
                        line=None if line_of is None else line_of(slot.offset))
        if not skip_invalid:
            raise error
        # stacklevel: the caller of get_messages (decode_slots < _read < _get < it).
        warnings.warn(SkippedMessageWarning(error), stacklevel=5)
    return messages


def bad_slots(slots: Sequence[Slot], encoding: str) -> list[int]:
    """The indexes of the slots that cannot be read (for repairs)."""
    if _decode_all(slots, encoding) is not None:
        return []
    return [i for i, slot in enumerate(slots)
            if isinstance(_decode_one(slot.raw, encoding), str)]
