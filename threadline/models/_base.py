"""The chat model contract.

A chat model is a runnable from messages (or anything :func:`convert_to_messages`
accepts: a str, a prompt value, tuples) to an :class:`AIMessage`. Implementations
override ``_generate`` and, to stream for real, ``_stream``; async twins default to
running those in a worker thread, and models with native async I/O override
``_agenerate``/``_astream``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from threadline._concurrency import iterate_in_thread, run_sync
from threadline.core._runnables import Runnable, RunnableConfig
from threadline.messages._chunks import AIMessageChunk
from threadline.messages._convert import convert_to_messages
from threadline.messages._values import AIMessage, BaseMessage

__all__ = ["BaseChatModel", "as_chunk"]


def as_chunk(message: AIMessage) -> AIMessageChunk:
    """The whole message as one stream chunk."""
    return AIMessageChunk(
        message.content,
        additional_kwargs=message._additional_kwargs,
        response_metadata=message._response_metadata,
        name=message.name,
        id=message.id,
        tool_calls=message._tool_calls,
        invalid_tool_calls=message._invalid_tool_calls,
        usage_metadata=message.usage_metadata,
    )


class BaseChatModel(Runnable[Any, AIMessage]):
    """Base class of chat models; subclass and implement ``_generate``."""

    #: A short name for logs, the CLI header and ``threadline doctor``.
    model_name: str = "chat-model"

    def _generate(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                  **kwargs: Any) -> AIMessage:
        raise NotImplementedError(f"{type(self).__name__} must implement _generate()")

    def _stream(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                **kwargs: Any) -> Iterator[AIMessageChunk]:
        yield as_chunk(self._generate(messages, stop=stop, **kwargs))

    async def _agenerate(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                         **kwargs: Any) -> AIMessage:
        return await run_sync(self._generate, messages, stop=stop, **kwargs)

    async def _astream(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                       **kwargs: Any) -> AsyncIterator[AIMessageChunk]:
        async for chunk in iterate_in_thread(self._stream(messages, stop=stop, **kwargs)):
            yield chunk

    def invoke(self, input: Any, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> AIMessage:
        return self._generate(convert_to_messages(input), stop=stop, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, *,
                      stop: list[str] | None = None, **kwargs: Any) -> AIMessage:
        return await self._agenerate(convert_to_messages(input), stop=stop, **kwargs)

    def stream(self, input: Any, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> Iterator[AIMessageChunk]:
        yield from self._stream(convert_to_messages(input), stop=stop, **kwargs)

    async def astream(self, input: Any, config: RunnableConfig | None = None, *,
                      stop: list[str] | None = None,
                      **kwargs: Any) -> AsyncIterator[AIMessageChunk]:
        async for chunk in self._astream(convert_to_messages(input), stop=stop, **kwargs):
            yield chunk
