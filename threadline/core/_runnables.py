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
:class:`RunnableLambda`, generator functions :class:`RunnableGenerator` and dicts
:class:`RunnableParallel`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar, cast

from threadline._concurrency import iterate_in_thread, run_sync
from threadline._errors import InputError
from threadline._foreign import convert as convert_foreign
from threadline._foreign import describe
from threadline.core._plumbing import (
    CONFIG_KEYS,
    RunnableConfig,
    accepts_config,
    add_chunks,
    add_up,
    configs_for,
    is_async,
    is_async_generator,
    is_generator,
    shared_executor,
)

__all__ = [
    "CONFIG_KEYS",
    "Runnable",
    "RunnableAssign",
    "RunnableBinding",
    "RunnableConfig",
    "RunnableGenerator",
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
        configs = configs_for(config, len(inputs))

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

        configs = configs_for(config, len(inputs))
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


class RunnableLambda(Runnable[Input, Output]):
    """A function as a runnable: ``RunnableLambda(lambda x: x["question"])``.

    The function may take ``config`` as a keyword; if it returns a runnable, that
    runnable is invoked (or streamed) with the same input. An ``async def`` function
    serves ``ainvoke``; pass both with ``RunnableLambda(func, afunc=async_func)``. A
    generator function (sync or async) streams what it yields, and ``invoke`` adds the
    pieces up, as in LangChain.
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
        self.afunc: Callable[..., Any] | None = afunc
        if is_async(func) or is_async_generator(func):
            self.func, self.afunc = None, func
        self.name = name or getattr(func, "__name__", "lambda")
        self._func_config = self.func is not None and accepts_config(self.func)
        self._afunc_config = self.afunc is not None and accepts_config(self.afunc)
        self._generator = self.func is not None and is_generator(self.func)
        self._agenerator = self.afunc is not None and is_async_generator(self.afunc)

    def _call(self, input: Input, config: RunnableConfig | None) -> Any:
        if self.func is None:
            raise InputError(f"{self.name} is an async function; call ainvoke() or astream()")
        return self.func(input, config=config) if self._func_config else self.func(input)

    def _acall(self, input: Input, config: RunnableConfig | None) -> Any:
        assert self.afunc is not None
        return self.afunc(input, config=config) if self._afunc_config else self.afunc(input)

    def invoke(self, input: Input, config: RunnableConfig | None = None, **kwargs: Any) -> Output:
        result = self._call(input, config)
        if self._generator:
            total: Any = None
            for piece in result:
                total = piece if total is None else total + piece
            return cast(Output, total)
        if isinstance(result, Runnable):
            return cast(Output, result.invoke(input, config))
        return cast(Output, result)

    async def ainvoke(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Output:
        if self.afunc is None:
            return await run_sync(self.invoke, input, config)
        if self._agenerator:
            total: Any = None
            async for piece in self._acall(input, config):
                total = piece if total is None else total + piece
            return cast(Output, total)
        result = await self._acall(input, config)
        if isinstance(result, Runnable):
            return cast(Output, await result.ainvoke(input, config))
        return cast(Output, result)

    def stream(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Output]:
        result = self._call(input, config)
        if self._generator:
            yield from result
        elif isinstance(result, Runnable):
            yield from result.stream(input, config)
        else:
            yield result

    async def astream(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Output]:
        if self._agenerator:
            async for piece in self._acall(input, config):
                yield piece
            return
        if self.afunc is not None:
            result = await self._acall(input, config)
        elif self._generator:
            async for piece in iterate_in_thread(self._call(input, config)):
                yield piece
            return
        else:
            result = await run_sync(self._call, input, config)
        if isinstance(result, Runnable):
            async for piece in result.astream(input, config):
                yield piece
        else:
            yield result

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
        pool = shared_executor()
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


class RunnableGenerator(Runnable[Input, Output]):
    """A generator function over an iterator of inputs, as a runnable that streams.

    >>> def words(texts):
    ...     for text in texts:
    ...         yield from text.split()
    >>> list(RunnableGenerator(words).stream("a b c"))
    ['a', 'b', 'c']
    >>> RunnableGenerator(words).invoke("a b c")
    'abc'

    Pass an ``async def`` generator (alone, or as ``atransform=`` beside a sync one) to
    serve ``ainvoke``/``astream``; a generator of one kind only refuses the other kind of
    call with :class:`NotImplementedError`, as in LangChain. In a ``|`` chain it receives
    the previous step's pieces as they are produced.
    """

    def __init__(
        self,
        transform: Callable[..., Any],
        atransform: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
    ) -> None:
        self._transform: Callable[..., Iterator[Output]] | None = None
        self._atransform: Callable[..., AsyncIterator[Output]] | None = None
        named: Any = transform
        if atransform is not None:
            self._atransform = atransform
            named = atransform
        if is_async_generator(transform):
            self._atransform = transform
        elif is_generator(transform):
            self._transform = transform
        else:
            raise InputError(
                "Expected a generator function type for `transform`. Instead got an "
                f"unsupported type: {type(transform).__name__}"
            )
        self.name: str = name or str(getattr(named, "__name__", "RunnableGenerator"))

    def transform(
        self, inputs: Iterator[Input], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Output]:
        if self._transform is None:
            raise NotImplementedError(f"{self!r} only supports async methods.")
        yield from self._transform(inputs)

    async def atransform(
        self, inputs: AsyncIterator[Input], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Output]:
        if self._atransform is None:
            raise NotImplementedError(f"{self!r} only supports sync methods.")
        async for piece in self._atransform(inputs):
            yield piece

    def stream(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Output]:
        return self.transform(iter([input]), config, **kwargs)

    def astream(  # returns the async iterator directly
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Output]:
        async def one() -> AsyncIterator[Input]:
            yield input

        return self.atransform(one(), config, **kwargs)

    def invoke(self, input: Input, config: RunnableConfig | None = None, **kwargs: Any) -> Output:
        total: Any = None
        for piece in self.stream(input, config, **kwargs):
            total = add_up(total, piece)
        return cast(Output, total)

    async def ainvoke(
        self, input: Input, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Output:
        total: Any = None
        async for piece in self.astream(input, config, **kwargs):
            total = add_up(total, piece)
        return cast(Output, total)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RunnableGenerator):
            return NotImplemented
        return (self._transform, self._atransform) == (other._transform, other._atransform)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RunnableGenerator({self.name})"



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
        if is_generator(value) or is_async_generator(value):
            # A generator function in a chain transforms the stream of pieces, as in
            # LangChain.
            return RunnableGenerator(value)
        return RunnableLambda(value)
    raise InputError(
        f"cannot compose {describe(value)} with |; expected a Runnable, "
        "a callable or a dict of those"
    )

