"""How much a model can read: its context window, and what is kept free for the answer.

Shared by the command line's conversations and the server's turns. A model that knows
its own window says so (the local model's ``context_size()``: what llama.cpp allocated).
A model behind an OpenAI-compatible server does not, so its name is looked up in
:data:`KNOWN_WINDOWS`, a table of common model families matched by prefix, longest
first (``gpt-4o-mini-2024-07-18`` is a ``gpt-4o-mini``; ``meta-llama/Llama-3.1-8B`` a
``llama-3.1``). Only then is :data:`DEFAULT_CONTEXT` assumed. Where a family's sizes
differ by version or host, the table holds the smaller: a window guessed too small only
sends fewer old messages, one guessed too large makes the server refuse the request.
The command line's ``--context-window N`` overrides all of it (:func:`find_window`
reports where the figure came from, for the chat's banner).

>>> find_window_for_name("gpt-4o-mini")
Window(tokens=128000, source='known for gpt-4o-mini')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from threadline.models._base import BaseChatModel

__all__ = [
    "ANSWER_RESERVE",
    "DEFAULT_CONTEXT",
    "KNOWN_WINDOWS",
    "Window",
    "context_window",
    "find_window",
    "find_window_for_name",
]

#: The context window assumed for models that do not say theirs and are not in the table.
DEFAULT_CONTEXT = 8192
#: Tokens kept free for the answer when neither --max-tokens nor the model sets a limit.
ANSWER_RESERVE = 512

#: Name prefix (lower case, without any ``provider/`` part) -> context window in tokens.
KNOWN_WINDOWS: dict[str, int] = {
    # OpenAI
    "gpt-5": 400_000,
    "gpt-5-chat": 128_000,
    "gpt-4.5": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "chatgpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4-1106": 128_000,
    "gpt-4-0125": 128_000,
    "gpt-4-32k": 32_768,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "gpt-3.5-turbo-instruct": 4_096,
    "o1": 200_000,
    "o1-mini": 128_000,
    "o1-preview": 128_000,
    "o3": 200_000,
    "o3-mini": 200_000,
    "o4-mini": 200_000,
    # Meta Llama (Hugging Face, Ollama and llama.cpp spellings)
    "llama3": 8_192,
    "llama-3": 8_192,
    "meta-llama-3": 8_192,
    "llama3.1": 131_072,
    "llama-3.1": 131_072,
    "meta-llama-3.1": 131_072,
    "llama3.2": 131_072,
    "llama-3.2": 131_072,
    "llama3.3": 131_072,
    "llama-3.3": 131_072,
    # Mistral AI
    "mistral": 32_768,
    "mistral-large": 131_072,
    "mistral-nemo": 131_072,
    "open-mistral-nemo": 131_072,
    "open-mistral-7b": 32_768,
    "mixtral": 32_768,
    "open-mixtral-8x7b": 32_768,
    "mixtral-8x22b": 65_536,
    "open-mixtral-8x22b": 65_536,
    # Qwen
    "qwen2": 32_768,
    "qwen2.5": 32_768,
    "qwen3": 32_768,
    # Google Gemma
    "gemma": 8_192,
    "gemma2": 8_192,
    "gemma-2": 8_192,
    "gemma3": 131_072,
    "gemma-3": 131_072,
    "gemma3:1b": 32_768,
    "gemma-3-1b": 32_768,
    # Microsoft Phi
    "phi-3": 4_096,
    "phi3": 4_096,
    "phi-3-mini-128k": 131_072,
    "phi-3-small-128k": 131_072,
    "phi-3-medium-128k": 131_072,
    "phi3:mini-128k": 131_072,
    "phi3:medium-128k": 131_072,
    "phi-3.5": 131_072,
    "phi3.5": 131_072,
    "phi-4": 16_384,
    "phi4": 16_384,
    # DeepSeek
    "deepseek-chat": 65_536,
    "deepseek-reasoner": 65_536,
    "deepseek-coder": 16_384,
    "deepseek-v3": 131_072,
    "deepseek-r1": 131_072,
    # Anthropic Claude, through OpenAI-compatible proxies (LiteLLM, OpenRouter...)
    "claude": 200_000,
    "claude-2": 100_000,
    "claude-2.1": 200_000,
    "claude-instant": 100_000,
    # The local model's family, when served over HTTP
    "smollm2": 8_192,
}

# Longest first, so gpt-4o-mini meets "gpt-4o" before "gpt-4".
_PREFIXES = sorted(KNOWN_WINDOWS, key=len, reverse=True)
# A prefix matches up to a word boundary: "o1" is not the start of "o10-model".
_BOUNDARY = re.compile(r"[^a-z0-9]|$")


@dataclass(frozen=True)
class Window:
    """A context window and where the figure came from (``known for gpt-4o``,
    ``the model's own``, ``default``, or the flag or setting that gave it)."""

    tokens: int
    source: str


def _family(name: str) -> str | None:
    """The table's key for a model name, or ``None``."""
    key = name.strip().lower().rsplit("/", 1)[-1]
    for prefix in _PREFIXES:
        if key.startswith(prefix) and _BOUNDARY.match(key, len(prefix)):
            return prefix
    return None


def find_window_for_name(name: str) -> Window | None:
    """The known window of a model called ``name`` (as its server names it), or ``None``.

    >>> find_window_for_name("meta-llama/Llama-3.1-8B-Instruct").tokens
    131072
    >>> find_window_for_name("my-own-model") is None
    True
    """
    family = _family(name)
    if family is None:
        return None
    return Window(KNOWN_WINDOWS[family], f"known for {name.strip()}")


def find_window(model: BaseChatModel) -> Window:
    """The model's context window and where it came from: the model's own figure, else
    the table (by ``model_name``), else :data:`DEFAULT_CONTEXT`."""
    size = getattr(model, "context_size", None)
    if callable(size):
        value = size()
        if isinstance(value, int) and value > 0:
            return Window(value, "the model's own")
    name = getattr(model, "model_name", None)
    if isinstance(name, str) and name:
        known = find_window_for_name(name)
        if known is not None:
            return known
    return Window(DEFAULT_CONTEXT, "default")


def context_window(model: BaseChatModel) -> int:
    """The model's context window in tokens (see :func:`find_window`)."""
    return find_window(model).tokens
