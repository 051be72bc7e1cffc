"""Titles for new chat sessions, named from their first exchange.

A real model is asked for a few words (one short call, its answer cleaned to one line);
the offline test models (fake, echo) and any model that fails get the question's first
words instead, so naming never stops a chat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from threadline._errors import ThreadlineError
from threadline.messages._values import HumanMessage, SystemMessage

if TYPE_CHECKING:
    from threadline.models._base import BaseChatModel

__all__ = ["first_words", "make_title"]

#: The longest title the chat makes (the store accepts 512 characters).
MAX_LENGTH = 60
_ASK = ("Write a title of at most six words for a conversation that begins with the "
        "message below. Reply with the title only, no quotes, no punctuation at the end.")


def first_words(text: str, limit: int = MAX_LENGTH) -> str:
    """The start of ``text`` on one line, cut at a word boundary, ``…`` if cut."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] or flat[:limit]
    return cut.rstrip(",.;:") + "…"


def _offline(model: BaseChatModel) -> bool:
    from threadline.models._fake import EchoChatModel, FakeListChatModel

    return isinstance(model, FakeListChatModel | EchoChatModel)


def make_title(model: BaseChatModel, question: str) -> str:
    """A title for a session whose first question was ``question``."""
    fallback = first_words(question) or "untitled"
    if _offline(model):
        return fallback
    try:
        answer = model.invoke([SystemMessage(_ASK), HumanMessage(question[:2000])],
                              max_tokens=24)
    except (ThreadlineError, OSError, ValueError):
        return fallback
    title = first_words(answer.text.strip().strip("\"'`*#").strip())
    return title or fallback
