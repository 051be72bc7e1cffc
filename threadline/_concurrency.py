"""The one place where sync code is adapted to async.

Histories, models and runnables written as plain sync code get their ``a*`` methods
from these helpers. :func:`run_sync` runs the work in the default thread pool so the
event loop keeps turning; context variables are copied into the worker, as
``asyncio.to_thread`` does.

A thread hop costs more than a short local operation (~0.1-0.2 ms against a few
microseconds for a dict lookup or a SQLite read in WAL mode), so :func:`run_locked` runs
work that is short and guarded by one lock on the loop's own thread when that lock is free,
and hops only when it is held elsewhere: the loop never waits for a lock. Stores that can
tell "would wait" another way (SQLite's busy timeout 0) make the same choice themselves.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import ParamSpec, Protocol, TypeVar

__all__ = ["iterate_in_thread", "run_locked", "run_sync"]

P = ParamSpec("P")
T = TypeVar("T")

_DONE = object()


class Lock(Protocol):
    """What :func:`run_locked` needs of a lock (``threading.RLock`` is one)."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...


async def run_sync(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking function in a worker thread and await its result."""
    import asyncio  # imported here: asyncio costs ~40 ms at import time

    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    call = functools.partial(ctx.run, func, *args, **kwargs)
    return await loop.run_in_executor(None, call)


async def run_locked(lock: Lock, func: Callable[P, T], *args: P.args,
                     **kwargs: P.kwargs) -> T:
    """Run a short function holding ``lock``: on the event loop's thread if the lock is
    free now (no thread hop), else in a worker thread that waits for it.

    ``func`` must be short (no I/O that can wait) and may take ``lock`` again, so the lock
    must be reentrant (``threading.RLock``). It sees the caller's context variables either
    way (inline it runs in the caller's context, as any sync call from a coroutine does)."""
    if lock.acquire(False):
        try:
            return func(*args, **kwargs)
        finally:
            lock.release()
    return await run_sync(_holding, lock, functools.partial(func, *args, **kwargs))


def _holding(lock: Lock, call: Callable[[], T]) -> T:
    lock.acquire()
    try:
        return call()
    finally:
        lock.release()


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
