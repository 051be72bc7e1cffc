"""Chat models for tests and demos, shipped with the library.

:class:`FakeListChatModel` answers with canned responses in turn; :class:`EchoChatModel`
repeats the last human message. Both stream their answer in word-sized pieces, run
offline, and are what ``--model fake`` / ``--model echo`` pick in the CLI.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from threadline._errors import InputError, ModelError
from threadline.messages._chunks import AIMessageChunk
from threadline.messages._values import AIMessage, BaseMessage
from threadline.models._base import BaseChatModel

__all__ = ["EchoChatModel", "FakeListChatModel", "FakeModelError", "split_pieces"]

_PIECE = re.compile(r"\s*\S+|\s+")


def split_pieces(text: str) -> list[str]:
    """Split text into word-sized pieces that join back into the same text."""
    return _PIECE.findall(text) or [""]


class FakeModelError(ModelError):
    """Raised by a fake model when told to fail (``error_on_chunk_number``)."""


class _PiecewiseModel(BaseChatModel):
    """A model whose answer is a string computed from the messages, streamed in pieces."""

    sleep: float | None = None
    error_on_chunk_number: int | None = None

    def _answer(self, messages: list[BaseMessage]) -> str:
        raise NotImplementedError

    def _generate(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                  **kwargs: Any) -> AIMessage:
        text = self._answer(messages)
        if self.sleep:
            time.sleep(self.sleep)
        return AIMessage(text)

    def _pieces(self, messages: list[BaseMessage]) -> Iterator[AIMessageChunk]:
        for number, piece in enumerate(split_pieces(self._answer(messages))):
            if number == self.error_on_chunk_number:
                raise FakeModelError(f"{type(self).__name__} failed at chunk {number} on request")
            yield AIMessageChunk(piece)

    def _stream(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                **kwargs: Any) -> Iterator[AIMessageChunk]:
        for chunk in self._pieces(messages):
            if self.sleep:
                time.sleep(self.sleep)
            yield chunk

    # Pure and in-process: the async variants need no worker thread.
    async def _agenerate(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                         **kwargs: Any) -> AIMessage:
        if self.sleep:
            import asyncio

            await asyncio.sleep(self.sleep)
        return AIMessage(self._answer(messages))

    async def _astream(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                       **kwargs: Any) -> AsyncIterator[AIMessageChunk]:
        for chunk in self._pieces(messages):
            if self.sleep:
                import asyncio

                await asyncio.sleep(self.sleep)
            yield chunk


class FakeListChatModel(_PiecewiseModel):
    """Answers with ``responses`` in turn, starting over after the last.

    >>> model = FakeListChatModel(responses=["Hello!", "Bye!"])
    >>> [model.invoke("hi").content, model.invoke("hi").content, model.invoke("hi").content]
    ['Hello!', 'Bye!', 'Hello!']

    ``sleep`` waits that many seconds per answer (per piece when streaming);
    ``error_on_chunk_number`` makes streaming fail at that piece, for testing.
    """

    model_name = "fake"

    def __init__(self, responses: Sequence[str], *, sleep: float | None = None, i: int = 0,
                 error_on_chunk_number: int | None = None) -> None:
        if isinstance(responses, str) or not responses or not all(
            isinstance(r, str) for r in responses
        ):
            raise InputError("FakeListChatModel needs responses=[...]: a non-empty list of str")
        self.responses = list(responses)
        self.sleep = sleep
        self.i = i
        self.error_on_chunk_number = error_on_chunk_number
        self._lock = threading.Lock()

    def _answer(self, messages: list[BaseMessage]) -> str:
        with self._lock:
            response = self.responses[self.i % len(self.responses)]
            self.i = (self.i + 1) % len(self.responses)
        return response

    def __repr__(self) -> str:
        return f"FakeListChatModel(responses={self.responses!r})"


class EchoChatModel(_PiecewiseModel):
    """Answers with the text of the last human message, after an optional ``prefix``.

    >>> EchoChatModel().invoke("ping").content
    'ping'
    """

    model_name = "echo"

    def __init__(self, prefix: str = "", *, sleep: float | None = None,
                 error_on_chunk_number: int | None = None) -> None:
        self.prefix = prefix
        self.sleep = sleep
        self.error_on_chunk_number = error_on_chunk_number

    def _answer(self, messages: list[BaseMessage]) -> str:
        for message in reversed(messages):
            if message.type == "human":
                return self.prefix + message.text
        return self.prefix

    def __repr__(self) -> str:
        return f"EchoChatModel(prefix={self.prefix!r})"
