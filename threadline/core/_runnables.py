"""Runnables: the ``prompt | model | parser`` composition.

A :class:`Runnable` turns one input into one output (``invoke``), many inputs into many
outputs (``batch``), or one input into a stream of output pieces (``stream``). Each has
an async twin. Subclasses implement ``invoke`` and, when they can, ``stream``/``transform``
(to pass pieces on as they come) and ``ainvoke`` (when they have native async I/O).
Everything else defaults sensibly:

- ``ainvoke`` runs ``invoke`` in a worker thread (:mod:`threadline._concurrency`);
  pure, CPU-only runnables override it to call ``invoke`` directly.
- ``transform`` gathers its input pieces (``piece + piece``) and then streams.

``a | b`` builds a :class:`RunnableSequence`; plain callables become
:class:`RunnableLambda` and dicts :class:`RunnableParallel`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypedDict, TypeVar, cast

from threadline._concurrency import run_sync
from threadline._errors import InputError
from threadline._foreign import convert as convert_foreign
from threadline._foreign import describe
from threadline.messages._chunks import AIMessageChunk, merge_chunks

if TYPE_CHECKING:
    from concurrent.futures import Executor, ThreadPoolExecutor

__all__ = [
    "CONFIG_KEYS",
    "Runnable",
    "RunnableAssign",
    "RunnableBinding",
    "RunnableConfig",
    "RunnableLambda",
    "RunnableParallel",
    "RunnablePassthrough",
    "RunnableSequence",
    "add_chunks",
    "coerce_to_runnable",
]

Input = TypeVar("Input")
Output = TypeVar("Output")
Other = TypeVar("Other")


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


def _shared_executor() -> Executor:
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


class Runnable(Generic[Input, Output]):
    """Something that can be invoked, batched and streamed, sync or async."""

    def invoke(self, input: Input, config: RunnableConfig | None = None, **kwargs: Any) -> Output:
        raise NotImplementedError(f"{type(self).__name__} must implement invoke()")

    async def ainvoke(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Output:
        return await run_sync(self.invoke, input, config, **kwargs)

    def stream(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Output]:
        yield self.invoke(input, config, **kwargs)

    async def astream(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Output]:
        yield await self.ainvoke(input, config, **kwargs)

    def transform(
        self, inputs: Iterator[Input], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Output]:
        yield from self.stream(add_chunks(list(inputs)), config, **kwargs)

    async def atransform(
        self, inputs: AsyncIterator[Input], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Output]:
        pieces = [piece async for piece in inputs]
        async for out in self.astream(add_chunks(pieces), config, **kwargs):
            yield out

    def batch(
        self,
        inputs: Sequence[Input],
        config: RunnableConfig | Sequence[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Output]:
        """Invoke on each input, up to ``config["max_concurrency"]`` at a time."""
        configs = _configs(config, len(inputs))

        def one(pair: tuple[Input, RunnableConfig | None]) -> Any:
            try:
                return self.invoke(pair[0], pair[1], **kwargs)
            except Exception as exc:
                if return_exceptions:
                    return exc
                raise

        if len(inputs) <= 1:
            return [one(pair) for pair in zip(inputs, configs, strict=True)]
        from concurrent.futures import ThreadPoolExecutor

        limit = (configs[0] or {}).get("max_concurrency")
        with ThreadPoolExecutor(max_workers=limit or min(32, len(inputs))) as pool:
            return list(pool.map(one, zip(inputs, configs, strict=True)))

    async def abatch(
        self,
        inputs: Sequence[Input],
        config: RunnableConfig | Sequence[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Output]:
        import asyncio

        configs = _configs(config, len(inputs))
        limit = (configs[0] or {}).get("max_concurrency") if configs else None
        semaphore = asyncio.Semaphore(limit) if limit else None

        async def one(item: Input, cfg: RunnableConfig | None) -> Any:
            if semaphore is None:
                return await self.ainvoke(item, cfg, **kwargs)
            async with semaphore:
                return await self.ainvoke(item, cfg, **kwargs)

        results = await asyncio.gather(
            *(one(i, c) for i, c in zip(inputs, configs, strict=True)),
            return_exceptions=return_exceptions,
        )
        return cast("list[Output]", list(results))

    def __or__(self, other: Any) -> RunnableSequence[Input, Any]:
        return RunnableSequence(self, coerce_to_runnable(other))

    def __ror__(self, other: Any) -> RunnableSequence[Any, Output]:
        return RunnableSequence(coerce_to_runnable(other), self)

    def pipe(self, *others: Any) -> RunnableSequence[Input, Any]:
        return RunnableSequence(self, *(coerce_to_runnable(o) for o in others))

    def bind(self, **kwargs: Any) -> RunnableBinding[Input, Output]:
        """The same runnable with keyword arguments fixed: ``model.bind(stop=["\\n"])``."""
        return RunnableBinding(self, kwargs)


def _configs(
    config: RunnableConfig | Sequence[RunnableConfig] | None, count: int
) -> list[RunnableConfig | None]:
    if config is None or isinstance(config, Mapping):
        one: RunnableConfig | None = config
        return [one] * count
    configs = list(config)
    if len(configs) != count:
        raise InputError(f"got {len(configs)} configs for {count} inputs; give one or one each")
    return list(configs)


class RunnableSequence(Runnable[Input, Output]):
    """Runnables run one after the other, each fed the previous one's output."""

    steps: list[Runnable[Any, Any]]

    def __init__(self, *steps: Runnable[Any, Any]) -> None:
        flat: list[Runnable[Any, Any]] = []
        for step in steps:
            flat.extend(step.steps if isinstance(step, RunnableSequence) else [step])
        if len(flat) < 2:
            raise InputError("a RunnableSequence needs at least two steps")
        self.steps = flat

    @property
    def first(self) -> Runnable[Any, Any]:
        return self.steps[0]

    @property
    def last(self) -> Runnable[Any, Any]:
        return self.steps[-1]

    def invoke(self, input: Input, config: RunnableConfig | None = None, **kwargs: Any) -> Output:
        value: Any = self.steps[0].invoke(input, config, **kwargs)
        for step in self.steps[1:]:
            value = step.invoke(value, config)
        return cast(Output, value)

    async def ainvoke(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Output:
        value: Any = await self.steps[0].ainvoke(input, config, **kwargs)
        for step in self.steps[1:]:
            value = await step.ainvoke(value, config)
        return cast(Output, value)

    def stream(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Output]:
        pieces: Iterator[Any] = self.steps[0].stream(input, config, **kwargs)
        for step in self.steps[1:]:
            pieces = step.transform(pieces, config)
        yield from pieces

    async def astream(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Output]:
        pieces: AsyncIterator[Any] = self.steps[0].astream(input, config, **kwargs)
        for step in self.steps[1:]:
            pieces = step.atransform(pieces, config)
        async for piece in pieces:
            yield piece

    def transform(
        self, inputs: Iterator[Input], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Output]:
        pieces: Iterator[Any] = inputs
        for step in self.steps:
            pieces = step.transform(pieces, config)
        yield from pieces

    async def atransform(
        self, inputs: AsyncIterator[Input], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Output]:
        pieces: AsyncIterator[Any] = inputs
        for step in self.steps:
            pieces = step.atransform(pieces, config)
        async for piece in pieces:
            yield piece

    def __repr__(self) -> str:
        return " | ".join(type(s).__name__ for s in self.steps)


def _is_async(func: Callable[..., Any]) -> bool:
    import inspect

    return inspect.iscoroutinefunction(func)


def _accepts_config(func: Callable[..., Any]) -> bool:
    import inspect  # ~5 ms at import time; needed only when a lambda is built

    try:
        return "config" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


class RunnableLambda(Runnable[Input, Output]):
    """A function as a runnable: ``RunnableLambda(lambda x: x["question"])``.

    The function may take ``config`` as a keyword; if it returns a runnable, that
    runnable is invoked with the same input. An ``async def`` function serves
    ``ainvoke``; pass both with ``RunnableLambda(func, afunc=async_func)``.
    """

    def __init__(
        self,
        func: Callable[..., Output | Awaitable[Output]],
        afunc: Callable[..., Awaitable[Output]] | None = None,
        name: str | None = None,
    ) -> None:
        if not callable(func):
            raise InputError(f"RunnableLambda needs a callable, got {type(func).__name__}")
        self.func: Callable[..., Any] | None = func
        self.afunc = afunc
        if _is_async(func):
            self.func, self.afunc = None, cast("Callable[..., Awaitable[Output]]", func)
        self.name = name or getattr(func, "__name__", "lambda")
        self._func_config = self.func is not None and _accepts_config(self.func)
        self._afunc_config = self.afunc is not None and _accepts_config(self.afunc)

    def invoke(self, input: Input, config: RunnableConfig | None = None, **kwargs: Any) -> Output:
        if self.func is None:
            raise InputError(f"{self.name} is an async function; call ainvoke() or astream()")
        result = self.func(input, config=config) if self._func_config else self.func(input)
        if isinstance(result, Runnable):
            return cast(Output, result.invoke(input, config))
        return cast(Output, result)

    async def ainvoke(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Output:
        if self.afunc is None:
            return await run_sync(self.invoke, input, config)
        result = await (self.afunc(input, config=config) if self._afunc_config
                        else self.afunc(input))
        if isinstance(result, Runnable):
            return cast(Output, await result.ainvoke(input, config))
        return result

    def __repr__(self) -> str:
        return f"RunnableLambda({self.name})"


class RunnableParallel(Runnable[Input, dict[str, Any]]):
    """Runs several runnables on the same input; returns a dict of their outputs.

    ``RunnableParallel(context=retriever, question=RunnablePassthrough())`` or a dict
    literal in a ``|`` chain.
    """

    def __init__(self, steps: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        merged = {**(steps or {}), **kwargs}
        self.steps: dict[str, Runnable[Input, Any]] = {
            key: coerce_to_runnable(value) for key, value in merged.items()
        }

    def invoke(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        if len(self.steps) <= 1:
            return {key: step.invoke(input, config) for key, step in self.steps.items()}
        pool = _shared_executor()
        futures = {key: pool.submit(step.invoke, input, config)
                   for key, step in self.steps.items()}
        return {key: future.result() for key, future in futures.items()}

    async def ainvoke(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        import asyncio

        values = await asyncio.gather(*(s.ainvoke(input, config) for s in self.steps.values()))
        return dict(zip(self.steps, values, strict=True))


class RunnablePassthrough(Runnable[Input, Input]):
    """Passes its input through unchanged; ``.assign(key=runnable)`` adds keys to a dict."""

    def __init__(self, func: Callable[[Input], Any] | None = None) -> None:
        self.func = func

    def invoke(self, input: Input, config: RunnableConfig | None = None, **kwargs: Any) -> Input:
        if self.func is not None:
            self.func(input)
        return input

    async def ainvoke(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Input:
        return self.invoke(input, config)

    def transform(
        self, inputs: Iterator[Input], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Input]:
        if self.func is None:
            yield from inputs
        else:
            yield from super().transform(inputs, config)

    async def atransform(
        self, inputs: AsyncIterator[Input], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Input]:
        async for piece in inputs if self.func is None else super().atransform(inputs, config):
            yield piece

    @classmethod
    def assign(cls, **kwargs: Any) -> RunnableAssign:
        """A runnable that adds ``kwargs``' outputs to its dict input."""
        return RunnableAssign(RunnableParallel(kwargs))


class RunnableAssign(Runnable[dict[str, Any], dict[str, Any]]):
    """The input dict plus the outputs of a :class:`RunnableParallel` run on it."""

    def __init__(self, mapper: RunnableParallel[dict[str, Any]]) -> None:
        self.mapper = mapper

    def invoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        if not isinstance(input, Mapping):
            raise InputError(
                f"RunnablePassthrough.assign() needs a dict input, got {type(input).__name__}"
            )
        return {**input, **self.mapper.invoke(input, config)}

    async def ainvoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        if not isinstance(input, Mapping):
            raise InputError(
                f"RunnablePassthrough.assign() needs a dict input, got {type(input).__name__}"
            )
        return {**input, **(await self.mapper.ainvoke(input, config))}


class RunnableBinding(Runnable[Input, Output]):
    """A runnable with some keyword arguments fixed (see :meth:`Runnable.bind`)."""

    def __init__(self, bound: Runnable[Input, Output], kwargs: dict[str, Any]) -> None:
        self.bound = bound
        self.kwargs = kwargs

    def invoke(self, input: Input, config: RunnableConfig | None = None, **kwargs: Any) -> Output:
        return self.bound.invoke(input, config, **{**self.kwargs, **kwargs})

    async def ainvoke(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Output:
        return await self.bound.ainvoke(input, config, **{**self.kwargs, **kwargs})

    def stream(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Output]:
        return self.bound.stream(input, config, **{**self.kwargs, **kwargs})

    def astream(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Output]:
        return self.bound.astream(input, config, **{**self.kwargs, **kwargs})

    def transform(
        self, inputs: Iterator[Input], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Output]:
        return self.bound.transform(inputs, config, **{**self.kwargs, **kwargs})

    def atransform(
        self, inputs: AsyncIterator[Input], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Output]:
        return self.bound.atransform(inputs, config, **{**self.kwargs, **kwargs})

    def bind(self, **kwargs: Any) -> RunnableBinding[Input, Output]:
        return RunnableBinding(self.bound, {**self.kwargs, **kwargs})


def coerce_to_runnable(value: Any) -> Runnable[Any, Any]:
    """A runnable from a runnable, a callable (→ lambda) or a dict (→ parallel).

    Another framework's runnable (a LangChain chain or chat model) is wrapped by its
    integration, which converts messages at the boundary (see :mod:`threadline._foreign`).
    """
    if isinstance(value, Runnable):
        return value
    foreign = convert_foreign("runnable", value)
    if foreign is not None:
        return foreign  # type: ignore[no-any-return]
    if isinstance(value, Mapping):
        return RunnableParallel(value)
    if callable(value):
        return RunnableLambda(value)
    raise InputError(
        f"cannot compose {describe(value)} with |; expected a Runnable, "
        "a callable or a dict of those"
    )

