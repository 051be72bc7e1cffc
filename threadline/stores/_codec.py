"""How messages are stored: compact JSON text of LangChain's message dicts, and back.

:func:`encode_message` / :func:`decode_message` for one message, :func:`decode_messages`
for a page of rows (one ``json.loads`` over the joined rows), :func:`stream_pages` for
reads page by page. Decoding raises :class:`MessageFormatError` and nothing else, so a
hostile stored row is reported, never trusted. Re-exported by
:mod:`threadline.stores._base`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from threadline._errors import InputError, MessageFormatError, SkippedMessageWarning
from threadline.messages._convert import not_a_message
from threadline.messages._serialization import message_from_dict, message_to_dict
from threadline.messages._values import BaseMessage

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MAX_MESSAGE_CHARS",
    "PageFetcher",
    "decode_message",
    "decode_messages",
    "encode_message",
    "stream_pages",
]

#: The longest message (in characters, as JSON) threadline stores and decodes.
MAX_MESSAGE_CHARS = 64 * 1024 * 1024
#: The largest message an append accepts by default (UTF-8 bytes of its JSON); a store's
#: ``max_message_bytes`` option changes it (up to MAX_MESSAGE_CHARS).
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

# One encoder for all: json.dumps() with keyword arguments builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_message(message: BaseMessage) -> str:
    """Compact JSON text of the message's LangChain dict. A message longer than
    :data:`MAX_MESSAGE_CHARS` once encoded (it could not be read back) is refused."""
    if not isinstance(message, BaseMessage):
        raise not_a_message(message)
    text = _ENCODER.encode(message_to_dict(message))
    if len(text) > MAX_MESSAGE_CHARS:
        raise InputError(
            f"a message of {len(text):,} characters (as JSON) is longer than the "
            f"{MAX_MESSAGE_CHARS:,} threadline stores and reads back; nothing was stored")
    return text


def decode_message(text: str | bytes) -> BaseMessage:
    """The message stored as ``text`` by :func:`encode_message` (or by LangChain).

    Raises :class:`MessageFormatError` (never another error) for anything else: text
    that is not JSON, JSON nested deeper than the parser's recursion limit, a row longer
    than :data:`MAX_MESSAGE_CHARS`, a dict that is not a message.
    """
    if not isinstance(text, str | bytes):
        raise MessageFormatError(f"a stored message must be text, got {type(text).__name__}")
    if len(text) > MAX_MESSAGE_CHARS:
        raise MessageFormatError(
            f"a stored message is {len(text):,} characters long, more than the "
            f"{MAX_MESSAGE_CHARS:,} threadline reads")
    try:
        data = json.loads(text)
    except RecursionError as exc:
        raise MessageFormatError("a stored message is JSON nested too deeply to read") from exc
    except ValueError as exc:  # also UnicodeDecodeError
        raise MessageFormatError(f"a stored message is not valid JSON: {exc}") from exc
    return message_from_dict(data)


def decode_messages(texts: Sequence[str | bytes], *, session_id: str | None = None,
                    skip_invalid: bool = False, from_end: bool = False,
                    start: int = 0) -> list[BaseMessage]:
    """Many stored messages at once, oldest first: one ``json.loads`` over the rows joined
    into an array (half the cost of parsing row by row); row by row when that fails.

    A bad row raises :class:`MessageFormatError` naming ``session_id`` and the row's
    position (counted back from the newest if ``from_end``: a read of the last N; else
    from ``start``, the session index of the first row, for a page of a longer read). With
    ``skip_invalid=True`` bad rows are left out instead, each reported by a
    :class:`SkippedMessageWarning`.
    """
    if not texts:
        return []
    joined: str | bytes | None = None
    if all(type(t) is str for t in texts):
        joined = "[" + ",".join(texts) + "]"  # type: ignore[arg-type]
    elif all(type(t) is bytes for t in texts):
        joined = b"[" + b",".join(texts) + b"]"  # type: ignore[arg-type]
    if joined is not None and len(joined) <= MAX_MESSAGE_CHARS:
        try:
            items = json.loads(joined)
        except (ValueError, RecursionError):
            items = None
        if isinstance(items, list) and len(items) == len(texts):
            try:
                return [message_from_dict(item) for item in items]
            except MessageFormatError:
                pass  # decoded again below, row by row, to name the bad one
    return _decode_rows(texts, session_id, skip_invalid, from_end, start)


def _decode_rows(texts: Sequence[str | bytes], session_id: str | None, skip_invalid: bool,
                 from_end: bool, start: int) -> list[BaseMessage]:
    messages: list[BaseMessage] = []
    for index, text in enumerate(texts):
        try:
            messages.append(decode_message(text))
        except MessageFormatError as exc:
            error = exc.located(session_id, index - len(texts) if from_end else start + index)
            if not skip_invalid:
                raise error from exc
            warnings.warn(SkippedMessageWarning(error), stacklevel=3)
    return messages


#: ``fetch(cursor)``: the stored texts of one page and the cursor of the next page
#: (``None``: that page was the last); the first call gets ``None``.
PageFetcher = Callable[[Any], tuple[Sequence[str | bytes], Any]]


def stream_pages(fetch: PageFetcher, *, session_id: str,
                 skip_invalid: bool) -> Iterator[BaseMessage]:
    """A session's messages read page by page with ``fetch``, oldest first (how backends
    implement :meth:`Store.iter_messages`): only one page is held (its texts and
    messages) at a time, nothing is read before the first message is asked for, and a bad
    row is named by its index in the session."""
    cursor: Any = None
    start = 0
    while True:
        texts, cursor = fetch(cursor)
        page = decode_messages(texts, session_id=session_id, skip_invalid=skip_invalid,
                               start=start)
        start += len(texts)
        del texts  # the rows are not kept while their messages are handed out
        yield from page
        if cursor is None:
            return
