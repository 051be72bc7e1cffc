"""Runnables across the LangChain boundary: LangChain's inside threadline, and back.

:class:`LangChainRunnable` is a threadline runnable around a LangChain one (a chain, a
chat model such as ``langchain_openai.ChatOpenAI``): threadline's ``|``,
``RunnableWithMessageHistory`` and ``ConversationChain`` wrap LangChain objects in it by
themselves. :func:`as_langchain` goes the other way, for a threadline runnable inside a
LangChain chain. Both convert messages, prompt values and LangChain's ``str`` subclasses
where values cross, and pass streams through piece by piece, so tokens still stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from threadline._errors import MissingDependencyError
from threadline.core._runnables import CONFIG_KEYS, Runnable, RunnableConfig, coerce_to_runnable
from threadline.langchain._messages import from_langchain_value, to_langchain_value

try:
    from langchain_core import runnables as lc_runnables
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("langchain-core", "langchain") from exc

__all__ = ["LangChainRunnable", "ThreadlineRunnable", "as_langchain", "runnable_from_langchain"]



def _config(config: Any) -> Any:
    if not config:
        return None
    # The keys both libraries' configs share; anything else stays on its own side.
    return {key: config[key] for key in CONFIG_KEYS if key in config}


class LangChainRunnable(Runnable[Any, Any]):
    """A LangChain runnable used as a threadline one: ``LangChainRunnable(lc_chain)``.

    Inputs are converted to LangChain's types on the way in and outputs back to
    threadline's on the way out; ``stream``/``astream`` yield each piece as LangChain
    produces it.
    """

    def __init__(self, runnable: lc_runnables.Runnable[Any, Any]) -> None:
        self.runnable = runnable

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        output = self.runnable.invoke(to_langchain_value(input), _config(config), **kwargs)
        return from_langchain_value(output)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> Any:
        output = await self.runnable.ainvoke(to_langchain_value(input), _config(config),
                                             **kwargs)
        return from_langchain_value(output)

    def stream(self, input: Any, config: RunnableConfig | None = None,
               **kwargs: Any) -> Iterator[Any]:
        for piece in self.runnable.stream(to_langchain_value(input), _config(config),
                                          **kwargs):
            yield from_langchain_value(piece)

    async def astream(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> AsyncIterator[Any]:
        async for piece in self.runnable.astream(to_langchain_value(input), _config(config),
                                                 **kwargs):
            yield from_langchain_value(piece)

    def __repr__(self) -> str:
        return f"LangChainRunnable({self.runnable!r})"


class ThreadlineRunnable(lc_runnables.Runnable[Any, Any]):
    """A threadline runnable used as a LangChain one; made by :func:`as_langchain`."""

    def __init__(self, runnable: Runnable[Any, Any]) -> None:
        self.runnable = runnable
        self.name = f"threadline:{type(runnable).__name__}"

    def invoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        output = self.runnable.invoke(from_langchain_value(input), _config(config), **kwargs)
        return to_langchain_value(output)

    async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        output = await self.runnable.ainvoke(from_langchain_value(input), _config(config),
                                             **kwargs)
        return to_langchain_value(output)

    def stream(self, input: Any, config: Any = None, **kwargs: Any) -> Iterator[Any]:
        for piece in self.runnable.stream(from_langchain_value(input), _config(config),
                                          **kwargs):
            yield to_langchain_value(piece)

    async def astream(self, input: Any, config: Any = None,
                      **kwargs: Any) -> AsyncIterator[Any]:
        async for piece in self.runnable.astream(from_langchain_value(input), _config(config),
                                                 **kwargs):
            yield to_langchain_value(piece)

    def __repr__(self) -> str:
        return f"as_langchain({self.runnable!r})"


def as_langchain(runnable: Any) -> lc_runnables.Runnable[Any, Any]:
    """A threadline runnable (or chain, model, callable) for use inside LangChain.

    >>> chain = lc_prompt | as_langchain(threadline.LocalChatModel()) | StrOutputParser()
    """
    if isinstance(runnable, LangChainRunnable):
        return runnable.runnable  # unwrap rather than wrap twice
    if isinstance(runnable, lc_runnables.Runnable):
        return runnable
    return ThreadlineRunnable(coerce_to_runnable(runnable))


def runnable_from_langchain(obj: object) -> Runnable[Any, Any] | None:
    """The threadline runnable for a LangChain one; ``None`` for anything else (the hook
    :mod:`threadline._foreign` calls)."""
    if isinstance(obj, ThreadlineRunnable):
        return obj.runnable
    if isinstance(obj, lc_runnables.Runnable):
        return LangChainRunnable(obj)
    return None
