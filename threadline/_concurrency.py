"""The one place where sync code is adapted to async.

Histories, models and runnables written as plain sync code get their ``a*`` methods
from these helpers: the work runs in the default thread pool so the event loop keeps
turning. Context variables are copied into the worker, as ``asyncio.to_thread`` does.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import ParamSpec, TypeVar

__all__ = ["iterate_in_thread", "run_sync"]

P = ParamSpec("P")
T = TypeVar("T")

_DONE = object()


async def run_sync(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking function in a worker thread and await its result."""
    import asyncio  # imported here: asyncio costs ~40 ms at import time

    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    call = functools.partial(ctx.run, func, *args, **kwargs)
    return await loop.run_in_executor(None, call)


async def iterate_in_thread(iterator: Iterator[T]) -> AsyncIterator[T]:
    """Drive a blocking iterator from a worker thread, one item per hop."""
    try:
        while True:
            item = await run_sync(next, iterator, _DONE)
            if item is _DONE:
                return
            yield item  # type: ignore[misc]
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            await run_sync(close)
