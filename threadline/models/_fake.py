"""Chat models for tests and demos, shipped with the library.

:class:`FakeListChatModel` answers with canned responses in turn; :class:`EchoChatModel`
repeats the last human message. Both stream their answer in word-sized pieces, run
offline, and are what ``--model fake`` / ``--model echo`` pick in the CLI.

LangChain's other fakes answer with given messages rather than text:
:class:`GenericFakeChatModel` (an iterator of messages, streamed split on whitespace and
``function_call`` arguments split on commas, as LangChain does),
:class:`FakeMessagesListChatModel` (a list, in turn) and :class:`ParrotFakeChatModel`
(the last input message).

Every answer gets an id, as LangChain's chat models give one (``lc_run--<uuid>``, all
chunks of one streamed answer sharing it): code that dedupes or looks messages up by id
then behaves the same with a fake as with a real model. The ids are a per-process random
uuid prefix plus a counter, drawn afresh in a forked child: unique and ~0.3 µs each
(``uuid4()`` costs ~2 µs a turn).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from threadline._errors import InputError, ModelError
from threadline.messages._chunks import AIMessageChunk
from threadline.messages._values import AIMessage, BaseMessage
from threadline.models._base import BaseChatModel, as_chunk

__all__ = [
    "EchoChatModel",
    "FakeListChatModel",
    "FakeMessagesListChatModel",
    "FakeModelError",
    "GenericFakeChatModel",
    "ParrotFakeChatModel",
    "run_id",
    "split_pieces",
]

_PIECE = re.compile(r"\s*\S+|\s+")


def _new_ids() -> Iterator[str]:
    """Ids ``lc_run--<uuid4>``: a random uuid4-shaped prefix (version 4, variant 8) and a
    12-hex-digit counter from a random start; map/count keep each id in C."""
    random = os.urandom(10).hex()
    prefix = f"lc_run--{random[:8]}-{random[8:12]}-4{random[12:15]}-8{random[15:18]}-"
    return map(prefix.__add__, map("%012x".__mod__, itertools.count(int(random[18:], 16) << 36)))


_ids = _new_ids()


def _reseed() -> None:
    # A forked child must not repeat its parent's ids: stores dedupe appends by id.
    global _ids
    _ids = _new_ids()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def run_id() -> str:
    """A new message id in LangChain's format: ``lc_run--`` and a uuid."""
    return next(_ids)


def _identified(message: AIMessage) -> AIMessage:
    # Set after construction: passing id= through __init__ costs more (hot path).
    message.id = run_id()
    return message


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
        return _identified(AIMessage(text))

    def _pieces(self, messages: list[BaseMessage]) -> Iterator[AIMessageChunk]:
        id = run_id()
        for number, piece in enumerate(split_pieces(self._answer(messages))):
            if number == self.error_on_chunk_number:
                raise FakeModelError(f"{type(self).__name__} failed at chunk {number} on request")
            chunk = AIMessageChunk(piece)
            chunk.id = id  # set after: passing id= through __init__ costs 2x (hot path)
            yield chunk

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
        return _identified(AIMessage(self._answer(messages)))

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


def _with_id(message: BaseMessage, id: str | None = None) -> BaseMessage:
    """``message`` with an id: its own, else a new one. A copy, never the caller's object
    (LangChain sets the id on the message it was given; messages here are values)."""
    if message.id is not None:
        return message
    return message.model_copy(update={"id": id or run_id()})


class _MessagesModel(BaseChatModel):
    """A model whose answer is a given message; streaming defaults to one chunk."""

    sleep: float | None = None

    def _message(self, messages: list[BaseMessage]) -> BaseMessage:
        raise NotImplementedError

    def _generate(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                  **kwargs: Any) -> AIMessage:
        if self.sleep:
            time.sleep(self.sleep)
        # The contract says AIMessage; ParrotFakeChatModel may echo another kind, as
        # LangChain's does.
        return _with_id(self._message(messages))  # type: ignore[return-value]

    async def _agenerate(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                         **kwargs: Any) -> AIMessage:
        if self.sleep:
            import asyncio

            await asyncio.sleep(self.sleep)
        return _with_id(self._message(messages))  # type: ignore[return-value]

    def _stream(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                **kwargs: Any) -> Iterator[AIMessageChunk]:
        message = self._generate(messages, stop=stop, **kwargs)
        # A parrot may answer with a non-AI message: it is streamed as itself.
        yield as_chunk(message) if isinstance(message, AIMessage) else message


class GenericFakeChatModel(_MessagesModel):
    """Answers with the next message of ``messages``, an iterator of messages or str.

    >>> from itertools import cycle
    >>> model = GenericFakeChatModel(messages=cycle([AIMessage("hello goodbye")]))
    >>> [chunk.content for chunk in model.stream("hi")]
    ['hello', ' ', 'goodbye']

    Streaming splits the content on whitespace, keeping the whitespace as pieces; then
    each ``additional_kwargs`` entry comes as its own chunk, a ``function_call``'s
    string fields cut at commas, as LangChain's does. Tool calls (which LangChain's
    cannot stream) come last as ``tool_call_chunks``. A list must be wrapped with
    ``iter([...])``; once the iterator is exhausted the model raises :class:`InputError`.
    """

    model_name = "generic-fake"

    def __init__(self, *, messages: Iterator[AIMessage | str]) -> None:
        if not isinstance(messages, Iterator):
            raise InputError(
                f"GenericFakeChatModel needs messages=iter([...]) (an iterator of AIMessage "
                f"or str), got {type(messages).__name__}"
            )
        self.messages = messages
        self._lock = threading.Lock()

    def _message(self, messages: list[BaseMessage]) -> BaseMessage:
        with self._lock:
            try:
                message = next(self.messages)
            except StopIteration:
                raise InputError("GenericFakeChatModel has no messages left") from None
        if isinstance(message, str):
            return AIMessage(message)
        if not isinstance(message, AIMessage):
            raise InputError(
                f"GenericFakeChatModel answers with AIMessage or str, got "
                f"{type(message).__name__}"
            )
        return message

    def _stream(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                **kwargs: Any) -> Iterator[AIMessageChunk]:
        message = self._generate(messages, stop=stop, **kwargs)
        yield from _message_chunks(message)

    async def _astream(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                       **kwargs: Any) -> AsyncIterator[AIMessageChunk]:
        message = await self._agenerate(messages, stop=stop, **kwargs)
        for chunk in _message_chunks(message):
            yield chunk

    def __repr__(self) -> str:
        return "GenericFakeChatModel(messages=...)"


def _message_chunks(message: AIMessage) -> Iterator[AIMessageChunk]:
    """LangChain's GenericFakeChatModel stream of ``message``, all chunks sharing its id."""
    id = message.id
    content = message.content
    extra = message.additional_kwargs
    calls = message.tool_calls
    if content:
        if not isinstance(content, str):
            raise InputError("GenericFakeChatModel streams str content only")
        tokens = re.split(r"(\s)", content)
        for number, token in enumerate(tokens):
            last = number == len(tokens) - 1 and not extra and not calls
            yield AIMessageChunk(token, id=id, chunk_position="last" if last else None)
    for key, value in extra.items():
        if key == "function_call" and isinstance(value, dict):
            for field, field_value in value.items():
                pieces = (re.split(r"(,)", field_value) if isinstance(field_value, str)
                          else [field_value])
                for piece in pieces:
                    yield AIMessageChunk("", id=id,
                                         additional_kwargs={key: {field: piece}})
        else:
            yield AIMessageChunk("", id=id, additional_kwargs={key: value})
    if calls:
        yield AIMessageChunk("", id=id, chunk_position="last", tool_call_chunks=[
            {"name": call["name"], "args": json.dumps(call["args"]), "id": call.get("id"),
             "index": index, "type": "tool_call_chunk"}
            for index, call in enumerate(calls)
        ])
    elif extra or not content:
        yield AIMessageChunk("", id=id, chunk_position="last")


class FakeMessagesListChatModel(_MessagesModel):
    """Answers with ``responses`` (messages) in turn, starting over after the last.

    >>> model = FakeMessagesListChatModel(responses=[AIMessage("A"), AIMessage("B")])
    >>> [model.invoke("x").content for _ in range(3)]
    ['A', 'B', 'A']

    ``sleep`` waits that many seconds per answer; ``i`` is the next response's index.
    """

    model_name = "fake-messages-list"

    def __init__(self, *, responses: Sequence[BaseMessage], sleep: float | None = None,
                 i: int = 0) -> None:
        if isinstance(responses, str) or not responses or not all(
            isinstance(r, BaseMessage) for r in responses
        ):
            raise InputError(
                "FakeMessagesListChatModel needs responses=[...]: a non-empty list of messages"
            )
        self.responses = list(responses)
        self.sleep = sleep
        self.i = i
        self._lock = threading.Lock()

    def _message(self, messages: list[BaseMessage]) -> BaseMessage:
        with self._lock:
            response = self.responses[self.i % len(self.responses)]
            self.i = (self.i + 1) % len(self.responses)
        return response

    def __repr__(self) -> str:
        return f"FakeMessagesListChatModel(responses={self.responses!r})"


class ParrotFakeChatModel(_MessagesModel):
    """Answers with the last input message itself (of whatever type), as LangChain's.

    >>> ParrotFakeChatModel().invoke("hello").content
    'hello'
    """

    model_name = "parrot"

    def _message(self, messages: list[BaseMessage]) -> BaseMessage:
        if not messages:
            raise InputError("messages list cannot be empty.")
        return messages[-1]

    def __repr__(self) -> str:
        return "ParrotFakeChatModel()"
