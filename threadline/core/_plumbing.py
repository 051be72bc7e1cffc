"""What runnables share that is not a runnable itself.

The config dict (LangChain's ``RunnableConfig``) and one config per batched input, the
worker pool that parallel branches share, joining stream pieces back into one value, and
reading what kind of function a runnable wraps (async, generator, takes ``config``).
Pure helpers: :mod:`threadline.core._runnables` builds the runnables on them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from threadline._errors import InputError
from threadline.messages._chunks import AIMessageChunk, merge_chunks

if TYPE_CHECKING:
    from concurrent.futures import Executor, ThreadPoolExecutor

__all__ = [
    "CONFIG_KEYS",
    "RunnableConfig",
    "accepts_config",
    "add_chunks",
    "add_up",
    "configs_for",
    "is_async",
    "is_async_generator",
    "is_generator",
    "shared_executor",
]


class RunnableConfig(TypedDict, total=False):
    """LangChain's per-call config dict; threadline reads ``configurable`` and
    ``max_concurrency`` and passes the rest along untouched."""

    configurable: dict[str, Any]
    tags: list[str]
    metadata: dict[str, Any]
    callbacks: Any
    run_name: str
    run_id: Any
    max_concurrency: int | None
    recursion_limit: int


#: The keys of a config (LangChain's CONFIG_KEYS); any other top-level key is a
#: configurable value.
CONFIG_KEYS = frozenset(RunnableConfig.__annotations__)

_executor: ThreadPoolExecutor | None = None


def shared_executor() -> Executor:
    global _executor
    if _executor is None:
        from concurrent.futures import ThreadPoolExecutor

        _executor = ThreadPoolExecutor(thread_name_prefix="threadline")
    return _executor


def add_chunks(chunks: Sequence[Any]) -> Any:
    """Join stream pieces into one value: strings concatenated, message chunks merged,
    dicts merged key by key, anything else with ``+`` (or the last piece wins)."""
    if not chunks:
        raise InputError("cannot join an empty stream")
    first = chunks[0]
    if len(chunks) == 1:
        return first
    if all(type(c) is str for c in chunks):
        return "".join(chunks)
    if all(isinstance(c, AIMessageChunk) for c in chunks):
        return merge_chunks(chunks)
    if all(isinstance(c, dict) for c in chunks):
        merged: dict[str, list[Any]] = {}
        for chunk in chunks:
            for key, value in chunk.items():
                merged.setdefault(key, []).append(value)
        return {key: add_chunks(values) for key, values in merged.items()}
    total = first
    for chunk in chunks[1:]:
        try:
            total = total + chunk
        except TypeError:
            total = chunk
    return total


def configs_for(
    config: RunnableConfig | Sequence[RunnableConfig] | None, count: int
) -> list[RunnableConfig | None]:
    if config is None or isinstance(config, Mapping):
        one: RunnableConfig | None = config
        return [one] * count
    configs = list(config)
    if len(configs) != count:
        raise InputError(f"got {len(configs)} configs for {count} inputs; give one or one each")
    return list(configs)


def is_async(func: Callable[..., Any]) -> bool:
    import inspect

    return inspect.iscoroutinefunction(func)


def is_generator(func: Any) -> bool:
    import inspect

    # A callable object whose ``__call__`` is a generator counts too, as in LangChain.
    return inspect.isgeneratorfunction(func) or inspect.isgeneratorfunction(
        getattr(func, "__call__", None)  # noqa: B004  # the method, not callable()
    )


def is_async_generator(func: Any) -> bool:
    import inspect

    return inspect.isasyncgenfunction(func) or inspect.isasyncgenfunction(
        getattr(func, "__call__", None)  # noqa: B004
    )


def accepts_config(func: Callable[..., Any]) -> bool:
    import inspect  # ~5 ms at import time; needed only when a lambda is built

    try:
        return "config" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def add_up(total: Any, piece: Any) -> Any:
    # LangChain's rule for invoke(): the pieces added with ``+``, left to right.
    return piece if total is None else total + piece
