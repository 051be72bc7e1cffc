"""Output parsers: turn a model's message (or its stream of chunks) into plain values."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from threadline._errors import InputError
from threadline.core._runnables import Runnable, RunnableConfig
from threadline.messages._values import BaseMessage

__all__ = ["StrOutputParser"]


def _text(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, str):
        # A str subclass (e.g. LangChain 1.x's TextAccessor, from its StrOutputParser or
        # ``message.text``) becomes the plain str it holds: the parser's output is a str,
        # and str.__str__ ignores an overridden __str__ (a (str, Enum) member: its value).
        return str.__str__(value)
    if isinstance(value, BaseMessage):
        return value.text
    raise InputError(
        f"StrOutputParser takes a str or a message, got {type(value).__name__}"
    )


class StrOutputParser(Runnable[Any, str]):
    """The text of a message; when streaming, the text of each chunk as it arrives.

    >>> from threadline import AIMessage
    >>> StrOutputParser().invoke(AIMessage("hi"))
    'hi'
    """

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> str:
        return _text(input)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> str:
        return _text(input)

    def transform(self, inputs: Iterator[Any], config: RunnableConfig | None = None,
                  **kwargs: Any) -> Iterator[str]:
        for piece in inputs:
            yield _text(piece)

    async def atransform(self, inputs: AsyncIterator[Any], config: RunnableConfig | None = None,
                         **kwargs: Any) -> AsyncIterator[str]:
        async for piece in inputs:
            yield _text(piece)
