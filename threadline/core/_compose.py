"""Control flow for runnables: :class:`RunnableBranch`, :class:`RunnableGenerator`, ``@chain``.

These are LangChain's names with LangChain's behaviour, built on the plain
:class:`~threadline.core._runnables.Runnable` protocol:

- :class:`RunnableBranch` picks the first ``(condition, runnable)`` pair whose condition
  is truthy for the input, else the default; only the chosen runnable runs (and streams).
- :class:`RunnableGenerator` wraps a generator function over an *iterator of inputs*, so
  it can pass pieces on as they arrive in a ``|`` chain; ``invoke`` adds the pieces up.
  It is defined beside ``coerce_to_runnable`` (core/_runnables.py), which turns a
  generator function in a ``|`` chain into one, and re-exported here.
- ``@chain`` turns a function into a :class:`~threadline.RunnableLambda` named after it.

>>> branch = RunnableBranch((lambda x: x > 0, lambda x: x + 1), lambda x: x - 1)
>>> branch.invoke(1), branch.invoke(-1)
(2, -2)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from threadline._errors import InputError
from threadline.core._runnables import (
    Input,
    Output,
    Runnable,
    RunnableConfig,
    RunnableGenerator,
    RunnableLambda,
    coerce_to_runnable,
)

__all__ = ["RunnableBranch", "RunnableGenerator", "chain"]

def _coercible(value: Any) -> bool:
    return isinstance(value, Runnable | Mapping) or callable(value)


class RunnableBranch(Runnable[Input, Output]):
    """Runs the runnable of the first condition that holds, else the default.

    >>> branch = RunnableBranch(
    ...     (lambda x: isinstance(x, str), lambda x: x.upper()),
    ...     (lambda x: isinstance(x, int), lambda x: x + 1),
    ...     lambda x: "goodbye",
    ... )
    >>> branch.invoke("hello"), branch.invoke(1), branch.invoke(None)
    ('HELLO', 2, 'goodbye')

    Conditions and runnables may be runnables, functions (``async def`` ones serve the
    async path) or dicts, as anywhere in a ``|`` chain. Conditions are evaluated in
    order, each at most once per call.
    """

    def __init__(self, *branches: Any) -> None:
        if len(branches) < 2:
            raise InputError(
                "RunnableBranch requires at least two branches: one or more "
                "(condition, runnable) pairs, then the default runnable"
            )
        *pairs, default = branches
        if not _coercible(default):
            raise InputError(
                f"RunnableBranch default must be Runnable, callable or mapping; got "
                f"{type(default).__name__}"
            )
        self.branches: list[tuple[Runnable[Input, Any], Runnable[Input, Output]]] = []
        for pair in pairs:
            if not isinstance(pair, tuple | list):
                raise InputError(
                    f"RunnableBranch branches must be tuples or lists of "
                    f"(condition, runnable), not {type(pair).__name__}"
                )
            if len(pair) != 2:
                raise InputError(
                    f"RunnableBranch branches must be tuples or lists of length 2, "
                    f"not {len(pair)}"
                )
            condition, runnable = pair
            self.branches.append((coerce_to_runnable(condition), coerce_to_runnable(runnable)))
        self.default: Runnable[Input, Output] = coerce_to_runnable(default)

    def _choose(self, input: Input, config: RunnableConfig | None) -> Runnable[Input, Output]:
        for condition, runnable in self.branches:
            if condition.invoke(input, config):
                return runnable
        return self.default

    async def _achoose(self, input: Input,
                       config: RunnableConfig | None) -> Runnable[Input, Output]:
        for condition, runnable in self.branches:
            if await condition.ainvoke(input, config):
                return runnable
        return self.default

    def invoke(self, input: Input, config: RunnableConfig | None = None, **kwargs: Any) -> Output:
        return self._choose(input, config).invoke(input, config, **kwargs)

    async def ainvoke(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Output:
        return await (await self._achoose(input, config)).ainvoke(input, config, **kwargs)

    def stream(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Output]:
        yield from self._choose(input, config).stream(input, config, **kwargs)

    async def astream(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Output]:
        chosen = await self._achoose(input, config)
        async for piece in chosen.astream(input, config, **kwargs):
            yield piece

    def __repr__(self) -> str:
        return f"RunnableBranch({len(self.branches)} branches and a default)"


def chain(func: Callable[..., Any]) -> RunnableLambda[Any, Any]:
    """Decorate a function to make it a runnable named after it.

    >>> @chain
    ... def shout(text: str) -> str:
    ...     return text.upper() + "!"
    >>> shout.invoke("hi"), shout.name
    ('HI!', 'shout')

    As with :class:`~threadline.RunnableLambda`, an ``async def`` function serves the
    async path, a generator function streams its pieces (``invoke`` adds them up), and a
    returned runnable is invoked with the same input.
    """
    return RunnableLambda(func)
