"""The token-counter contract: what every way of counting tokens implements.

A :class:`TokenCounter` prices a request as one cost per message plus one constant per
request; :func:`openai_role` and :func:`content_parts` are what every concrete counter
(the bundled encodings in :mod:`threadline.models._tokens`, a GGUF's own tokenizer in
:mod:`threadline.models._local`) needs to price a message. Kept apart from the counters
so that a model module can offer a counter without importing the others.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from threadline.messages._values import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

__all__ = ["TOKENS_PER_IMAGE", "TokenCounter", "content_parts", "openai_role"]

#: What OpenAI's recipe charges per image at low detail; LangChain uses it too.
TOKENS_PER_IMAGE = 85


def openai_role(message: BaseMessage) -> str:
    """The Chat Completions role of a message (``"user"``, ``"assistant"``...)."""
    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, ChatMessage):
        return message.role
    if isinstance(message, SystemMessage):
        # A system message converted from a "developer" one remembers that role.
        kwargs = message._additional_kwargs
        role = kwargs.get("__openai_role__") if kwargs else None
        return role if isinstance(role, str) else "system"
    if isinstance(message, ToolMessage):
        return "tool"
    return message.type  # "function", ...


class TokenCounter:
    """Prices messages in tokens: ``reply_tokens() + sum(message_tokens(m))``.

    Subclasses implement :meth:`message_tokens` and may override :meth:`reply_tokens`
    and, when a model's exact count is not additive, :meth:`count_messages`.
    ``min_message_tokens`` is a lower bound on any message's cost, so a reader that
    needs at most ``N`` tokens knows it never needs more than ``N // min`` messages.
    """

    name: str = "counter"
    min_message_tokens: int = 1

    def message_tokens(self, message: BaseMessage) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement message_tokens()")

    def reply_tokens(self) -> int:
        """Tokens every request adds once, whatever its messages (reply priming)."""
        return 0

    def count_messages(self, messages: Sequence[BaseMessage]) -> int:
        """The token count of a whole request made of ``messages``."""
        return self.reply_tokens() + sum(map(self.message_tokens, messages))

    def __call__(self, messages: Sequence[BaseMessage]) -> int:
        return self.count_messages(messages)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def content_parts(content: Any) -> tuple[list[str], int]:
    """(texts to tokenize, number of images) of a message's content."""
    if isinstance(content, str):
        return [content], 0
    texts: list[str] = []
    images = 0
    for block in content:
        if isinstance(block, str):
            texts.append(block)
        elif isinstance(block, dict):
            kind = block.get("type", "")
            if kind in ("image", "image_url"):
                images += 1
            elif kind == "text":
                texts.append(str(block.get("text", "")))
            else:
                # Unknown blocks are priced by their JSON; images never by their base64.
                texts.append(json.dumps(block, default=str))
        else:
            texts.append(repr(block))
    return texts, images
