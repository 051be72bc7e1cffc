"""String-completion models (LangChain's ``LLM``) and their fakes.

An :class:`LLM` is a runnable from a prompt to a str. A subclass implements
``_call(prompt, stop=None, run_manager=None, **kwargs) -> str`` and names itself with an
``_llm_type`` property; streaming subclasses may also implement ``_stream`` (str pieces).
The input may be a str, a prompt value (its ``to_string()``) or messages (rendered
``"Human: ...\\nAI: ..."``, as LangChain renders a chat prompt for an LLM), so an LLM
works after a prompt in a ``|`` chain and as ``ConversationChain(llm=...)``.

``run_manager`` is always ``None``: threadline has no callback system; the parameter is
kept so LangChain subclasses port unchanged. Class attributes with defaults act as
LangChain's pydantic fields: ``MyLLM(temperature=0.5)`` sets ``self.temperature``.

>>> FakeListLLM(responses=["4"]).invoke("2 + 2 =")
'4'
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from threadline._concurrency import iterate_in_thread, run_sync
from threadline._errors import InputError, ModelError
from threadline.core._runnables import Runnable, RunnableConfig
from threadline.messages._convert import convert_to_messages, get_buffer_string

__all__ = ["LLM", "FakeListLLM", "FakeListLLMError", "FakeStreamingListLLM"]


def _prompt_text(input: Any) -> str:
    """The prompt string LangChain's LLMs get for this input."""
    if isinstance(input, str):
        return input
    to_string = getattr(input, "to_string", None)
    if callable(to_string):  # a prompt value
        text = to_string()
        if isinstance(text, str):
            return text
    if isinstance(input, Sequence):
        return get_buffer_string(convert_to_messages(input))
    raise InputError(
        f"an LLM takes a str, a prompt value or a list of messages, got {type(input).__name__}"
    )


class LLM(Runnable[Any, str]):
    """Base class of string-completion models; implement ``_call`` and ``_llm_type``.

    >>> class Shout(LLM):
    ...     @property
    ...     def _llm_type(self) -> str:
    ...         return "shout"
    ...     def _call(self, prompt, stop=None, run_manager=None, **kwargs):
    ...         return prompt.upper()
    >>> Shout().invoke("hi")
    'HI'
    """

    def __init__(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            if key.startswith("_") or not hasattr(type(self), key):
                raise InputError(
                    f"{type(self).__name__} got an unexpected keyword argument {key!r}; "
                    "declare it as a class attribute with a default to accept it"
                )
            setattr(self, key, value)

    @property
    def _llm_type(self) -> str:
        return type(self).__name__

    @property
    def model_name(self) -> str:
        return self._llm_type

    def _call(self, prompt: str, stop: list[str] | None = None, run_manager: Any = None,
              **kwargs: Any) -> str:
        raise NotImplementedError(f"{type(self).__name__} must implement _call()")

    async def _acall(self, prompt: str, stop: list[str] | None = None, run_manager: Any = None,
                     **kwargs: Any) -> str:
        return await run_sync(self._call, prompt, stop, **kwargs)

    def _stream(self, prompt: str, stop: list[str] | None = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[str]:
        yield self._call(prompt, stop, **kwargs)

    async def _astream(self, prompt: str, stop: list[str] | None = None,
                       run_manager: Any = None, **kwargs: Any) -> AsyncIterator[str]:
        if type(self)._stream is LLM._stream:
            yield await self._acall(prompt, stop, **kwargs)
            return
        async for piece in iterate_in_thread(self._stream(prompt, stop, **kwargs)):
            yield piece

    def invoke(self, input: Any, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> str:
        return self._call(_prompt_text(input), stop, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, *,
                      stop: list[str] | None = None, **kwargs: Any) -> str:
        return await self._acall(_prompt_text(input), stop, **kwargs)

    def stream(self, input: Any, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> Iterator[str]:
        yield from self._stream(_prompt_text(input), stop, **kwargs)

    async def astream(self, input: Any, config: RunnableConfig | None = None, *,
                      stop: list[str] | None = None, **kwargs: Any) -> AsyncIterator[str]:
        async for piece in self._astream(_prompt_text(input), stop, **kwargs):
            yield piece

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class FakeListLLMError(ModelError):
    """Raised by :class:`FakeStreamingListLLM` at ``error_on_chunk_number``."""


class FakeListLLM(LLM):
    """Answers with ``responses`` in turn, starting over after the last.

    >>> llm = FakeListLLM(responses=["a", "b"])
    >>> [llm.invoke("x"), llm.invoke("x"), llm.invoke("x")]
    ['a', 'b', 'a']

    ``sleep`` waits that many seconds per answer; ``i`` is the next response's index.
    """

    responses: list[str]
    sleep: float | None = None
    i: int = 0

    def __init__(self, *, responses: Sequence[str], sleep: float | None = None, i: int = 0,
                 **kwargs: Any) -> None:
        if isinstance(responses, str) or not all(isinstance(r, str) for r in responses):
            raise InputError(f"{type(self).__name__} needs responses=[...]: a list of str")
        super().__init__(**kwargs)
        self.responses = list(responses)
        self.sleep = sleep
        self.i = i
        self._lock = threading.Lock()

    @property
    def _llm_type(self) -> str:
        return "fake-list"

    def _next(self) -> str:
        if not self.responses:
            raise InputError(f"{type(self).__name__} has no responses")
        with self._lock:
            response = self.responses[self.i % len(self.responses)]
            self.i = (self.i + 1) % len(self.responses)
        return response

    def _call(self, prompt: str, stop: list[str] | None = None, run_manager: Any = None,
              **kwargs: Any) -> str:
        if self.sleep:
            time.sleep(self.sleep)
        return self._next()

    async def _acall(self, prompt: str, stop: list[str] | None = None, run_manager: Any = None,
                     **kwargs: Any) -> str:
        if self.sleep:
            import asyncio

            await asyncio.sleep(self.sleep)
        return self._next()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(responses={self.responses!r})"


class FakeStreamingListLLM(FakeListLLM):
    """A :class:`FakeListLLM` that streams each response one character at a time.

    >>> list(FakeStreamingListLLM(responses=["hey"]).stream("x"))
    ['h', 'e', 'y']

    ``sleep`` waits that many seconds per character; ``error_on_chunk_number`` makes the
    stream raise :class:`FakeListLLMError` at that character, for testing.
    """

    error_on_chunk_number: int | None = None

    def __init__(self, *, responses: Sequence[str], sleep: float | None = None, i: int = 0,
                 error_on_chunk_number: int | None = None, **kwargs: Any) -> None:
        super().__init__(responses=responses, sleep=None, i=i, **kwargs)
        self.error_on_chunk_number = error_on_chunk_number
        # LangChain's streaming fake sleeps per character, not per answer.
        self.sleep = sleep

    def _call(self, prompt: str, stop: list[str] | None = None, run_manager: Any = None,
              **kwargs: Any) -> str:
        return self._next()

    async def _acall(self, prompt: str, stop: list[str] | None = None, run_manager: Any = None,
                     **kwargs: Any) -> str:
        return self._next()

    def _check(self, number: int) -> None:
        if number == self.error_on_chunk_number:
            raise FakeListLLMError(f"{type(self).__name__} failed at chunk {number} on request")

    def _stream(self, prompt: str, stop: list[str] | None = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[str]:
        for number, char in enumerate(self._next()):
            if self.sleep:
                time.sleep(self.sleep)
            self._check(number)
            yield char

    async def _astream(self, prompt: str, stop: list[str] | None = None,
                       run_manager: Any = None, **kwargs: Any) -> AsyncIterator[str]:
        import asyncio

        for number, char in enumerate(self._next()):
            if self.sleep:
                await asyncio.sleep(self.sleep)
            self._check(number)
            yield char
