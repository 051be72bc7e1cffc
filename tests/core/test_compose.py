"""RunnableBranch, RunnableGenerator and ``@chain``, behaving as LangChain's.

Ported from langchain-core 1.8.4, tests/unit_tests/runnables/test_runnable.py: the
user-facing cases of RunnableBranch, RunnableGenerator, ``@chain`` and RunnableLambda
streaming (what ``@chain`` builds) keep their upstream names. Upstream async tests run
here through ``asyncio.run``; the fake LLMs are built without ``sleep`` (unit tests do not
sleep). Left out:

- ``test_runnable_branch_invoke_callbacks``, ``test_runnable_branch_ainvoke_callbacks``,
  ``test_runnable_branch_stream_with_callbacks``,
  ``test_runnable_branch_astream_with_callbacks``,
  ``test_runnable_lambda_stream_with_callbacks``,
  ``test_runnable_lambda_astream_with_callbacks``: callbacks/tracers (the outputs they
  check are the other tests' outputs).
- The tracer asserts of ``test_runnable_gen_context_config`` (and ``_async``) and
  ``test_runnable_iter_context_config`` (and ``_async``): ported without them.
- ``test_runnable_branch_v1_input_schema`` and the schema asserts of
  ``test_runnable_branch_init_coercion``, ``test_runnable_gen`` and
  ``test_runnable_gen_transform``: pydantic schemas.
- ``test_runnable_branch_invoke_call_counts`` uses pytest-mock's spy; ported with a
  counting condition instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import pytest

from threadline import (
    FakeStreamingListLLM,
    Runnable,
    RunnableBranch,
    RunnableGenerator,
    RunnableLambda,
    chain,
)


def test_runnable_branch_init() -> None:
    """Verify that runnable branch gets initialized properly."""
    add = RunnableLambda[int, int](lambda x: x + 1)
    condition = RunnableLambda[int, bool](lambda x: x > 0)

    with pytest.raises(ValueError, match="RunnableBranch requires at least two branches"):
        RunnableBranch((condition, add))
    with pytest.raises(ValueError, match="RunnableBranch requires at least two branches"):
        RunnableBranch(condition)


@pytest.mark.parametrize(
    "branches",
    [
        [
            (RunnableLambda(lambda x: x > 0), RunnableLambda(lambda x: x + 1)),
            RunnableLambda(lambda x: x - 1),
        ],
        [
            (RunnableLambda(lambda x: x > 0), RunnableLambda(lambda x: x + 1)),
            (RunnableLambda(lambda x: x > 5), RunnableLambda(lambda x: x + 1)),
            RunnableLambda(lambda x: x - 1),
        ],
        [
            (lambda x: x > 0, lambda x: x + 1),
            (lambda x: x > 5, lambda x: x + 1),
            lambda x: x - 1,
        ],
    ],
)
def test_runnable_branch_init_coercion(branches: Sequence[Any]) -> None:
    """Verify that runnable branch gets initialized properly."""
    runnable = RunnableBranch[int, int](*branches)
    for branch in runnable.branches:
        condition, body = branch
        assert isinstance(condition, Runnable)
        assert isinstance(body, Runnable)
    assert isinstance(runnable.default, Runnable)


def test_runnable_branch_invoke_call_counts() -> None:
    """Verify that runnables are invoked only when necessary."""
    calls = {"condition": 0, "add": 0}

    def condition_fn(x: int) -> bool:
        calls["condition"] += 1
        return x > 0

    def add_fn(x: int) -> int:
        calls["add"] += 1
        return x + 1

    add = RunnableLambda[int, int](add_fn)
    sub = RunnableLambda[int, int](lambda x: x - 1)
    condition = RunnableLambda[int, bool](condition_fn)
    branch = RunnableBranch[int, int]((condition, add), (condition, add), sub)
    assert calls == {"condition": 0, "add": 0}

    assert branch.invoke(1) == 2
    assert calls == {"condition": 1, "add": 1}
    assert branch.invoke(2) == 3
    assert calls == {"condition": 2, "add": 2}
    assert branch.invoke(-3) == -4
    # Falls through to the default with the condition evaluated twice; add not invoked.
    assert calls == {"condition": 4, "add": 2}


def test_runnable_branch_invoke() -> None:
    def raise_value_error(_: int) -> int:
        """Raise a value error."""
        msg = "x is too large"
        raise ValueError(msg)

    branch = RunnableBranch[int, int](
        (lambda x: x > 100, raise_value_error),
        (lambda x: x > 0 and x < 5, lambda x: x + 1),
        (lambda x: x > 5, lambda x: x * 10),
        lambda x: x - 1,
    )

    assert branch.invoke(1) == 2
    assert branch.invoke(10) == 100
    assert branch.invoke(0) == -1
    with pytest.raises(ValueError, match="x is too large"):
        branch.invoke(1000)


def test_runnable_branch_batch() -> None:
    """Test batch variant."""
    branch = RunnableBranch[int, int](
        (lambda x: x > 0 and x < 5, lambda x: x + 1),
        (lambda x: x > 5, lambda x: x * 10),
        lambda x: x - 1,
    )
    assert branch.batch([1, 10, 0]) == [2, 100, -1]


def test_runnable_branch_ainvoke() -> None:
    """Test async variant of invoke."""

    async def main() -> None:
        branch = RunnableBranch[int, int](
            (lambda x: x > 0 and x < 5, lambda x: x + 1),
            (lambda x: x > 5, lambda x: x * 10),
            lambda x: x - 1,
        )
        assert await branch.ainvoke(1) == 2
        assert await branch.ainvoke(10) == 100
        assert await branch.ainvoke(0) == -1

        # The async variant is used if available.
        async def condition(x: int) -> bool:
            return x > 0

        async def add(x: int) -> int:
            return x + 1

        async def sub(x: int) -> int:
            return x - 1

        branch = RunnableBranch[int, int]((condition, add), sub)
        assert await branch.ainvoke(1) == 2
        assert await branch.ainvoke(-10) == -11

    asyncio.run(main())


def test_runnable_branch_abatch() -> None:
    """Test async variant of batch."""
    branch = RunnableBranch[int, int](
        (lambda x: x > 0 and x < 5, lambda x: x + 1),
        (lambda x: x > 5, lambda x: x * 10),
        lambda x: x - 1,
    )
    assert asyncio.run(branch.abatch([1, 10, 0])) == [2, 100, -1]


def test_runnable_branch_stream() -> None:
    """Verify that stream works for RunnableBranch."""
    llm_res = "i'm a textbot"
    llm = FakeStreamingListLLM(responses=[llm_res])

    branch = RunnableBranch[str, Any](
        (lambda x: x == "hello", llm),
        lambda x: x,
    )
    assert list(branch.stream("hello")) == list(llm_res)
    assert list(branch.stream("bye")) == ["bye"]


def test_runnable_branch_astream() -> None:
    """Verify that astream works for RunnableBranch."""
    llm_res = "i'm a textbot"
    llm = FakeStreamingListLLM(responses=[llm_res])

    async def main() -> None:
        branch = RunnableBranch[str, Any]((lambda x: x == "hello", llm), lambda x: x)
        assert [_ async for _ in branch.astream("hello")] == list(llm_res)
        assert [_ async for _ in branch.astream("bye")] == ["bye"]

        # The async variant is used if available.
        async def condition(x: str) -> bool:
            return x == "hello"

        async def repeat(x: str) -> str:
            return x + x

        async def reverse(x: str) -> str:
            return x[::-1]

        branch = RunnableBranch[str, Any]((condition, repeat), llm)
        assert [_ async for _ in branch.astream("hello")] == ["hello" * 2]
        assert [_ async for _ in branch.astream("bye")] == list(llm_res)

        branch = RunnableBranch[str, Any]((condition, llm), reverse)
        assert [_ async for _ in branch.astream("hello")] == list(llm_res)
        assert [_ async for _ in branch.astream("bye")] == ["eyb"]

    asyncio.run(main())


def test_runnable_gen() -> None:
    """Test that a generator can be used as a runnable."""

    def gen(_: Iterator[Any]) -> Iterator[int]:
        yield 1
        yield 2
        yield 3

    runnable = RunnableGenerator(gen)
    assert runnable.name == "gen"
    assert runnable.invoke(None) == 6
    assert list(runnable.stream(None)) == [1, 2, 3]
    assert runnable.batch([None, None]) == [6, 6]


def test_runnable_gen_async() -> None:
    """Test that a generator can be used as a runnable."""

    async def agen(_: AsyncIterator[Any]) -> AsyncIterator[int]:
        yield 1
        yield 2
        yield 3

    class AsyncGen:
        async def __call__(self, _: AsyncIterator[Any]) -> AsyncIterator[int]:
            yield 1
            yield 2
            yield 3

    async def main() -> None:
        arunnable = RunnableGenerator(agen)
        assert await arunnable.ainvoke(None) == 6
        assert [p async for p in arunnable.astream(None)] == [1, 2, 3]
        assert await arunnable.abatch([None, None]) == [6, 6]

        arunnablecallable = RunnableGenerator(AsyncGen())
        assert await arunnablecallable.ainvoke(None) == 6
        assert [p async for p in arunnablecallable.astream(None)] == [1, 2, 3]
        assert await arunnablecallable.abatch([None, None]) == [6, 6]
        with pytest.raises(NotImplementedError):
            await asyncio.to_thread(arunnablecallable.invoke, None)
        with pytest.raises(NotImplementedError):
            await asyncio.to_thread(lambda: list(arunnablecallable.stream(None)))
        with pytest.raises(NotImplementedError):
            await asyncio.to_thread(arunnablecallable.batch, [None, None])

    asyncio.run(main())


def test_runnable_gen_context_config() -> None:
    """A generator calling other runnables (its tracer and schema asserts left out)."""
    fake = RunnableLambda(len)

    def gen(_: Iterator[Any]) -> Iterator[int]:
        yield fake.invoke("a")
        yield fake.invoke("aa")
        yield fake.invoke("aaa")

    runnable = RunnableGenerator(gen)
    assert runnable.invoke(None) == 6
    assert list(runnable.stream(None)) == [1, 2, 3]
    assert runnable.batch([None, None]) == [6, 6]


def test_runnable_gen_context_config_async() -> None:
    """An async generator calling other runnables (its tracer asserts left out)."""
    fake = RunnableLambda(len)

    async def agen(_: AsyncIterator[Any]) -> AsyncIterator[int]:
        yield await fake.ainvoke("a")
        yield await fake.ainvoke("aa")
        yield await fake.ainvoke("aaa")

    arunnable = RunnableGenerator(agen)

    async def main() -> None:
        assert await arunnable.ainvoke(None) == 6
        assert [p async for p in arunnable.astream(None)] == [1, 2, 3]

    asyncio.run(main())


def test_runnable_iter_context_config() -> None:
    """``@chain`` on a generator function: invoke adds the pieces, stream yields them
    (its tracer and schema asserts left out)."""
    fake = RunnableLambda(len)

    @chain
    def gen(value: str) -> Iterator[int]:
        yield fake.invoke(value)
        yield fake.invoke(value * 2)
        yield fake.invoke(value * 3)

    assert gen.invoke("a") == 6
    assert list(gen.stream("a")) == [1, 2, 3]


def test_runnable_iter_context_config_async() -> None:
    """``@chain`` on an async generator function (its tracer and schema asserts left
    out)."""
    fake = RunnableLambda(len)

    @chain
    async def agen(value: str) -> AsyncIterator[int]:
        yield await fake.ainvoke(value)
        yield await fake.ainvoke(value * 2)
        yield await fake.ainvoke(value * 3)

    assert agen.name == "agen"

    async def main() -> None:
        assert await agen.ainvoke("a") == 6
        assert [p async for p in agen.astream("a")] == [1, 2, 3]

    asyncio.run(main())


def test_runnable_lambda_stream() -> None:
    """Test that stream works for both normal functions & those returning Runnable."""
    # Normal output should work
    output: list[Any] = list(RunnableLambda(range).stream(5))
    assert output == [range(5)]

    # Runnable output should also work
    llm_res = "i'm a textbot"
    llm = FakeStreamingListLLM(responses=[llm_res])

    output = list(RunnableLambda[str, str](lambda _: llm).stream(""))
    assert output == list(llm_res)


def test_runnable_lambda_astream() -> None:
    """Test that astream works for both normal functions & those returning Runnable."""

    def awrapper(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        async def afunc(*args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

        return afunc

    llm_res = "i'm a textbot"
    llm = FakeStreamingListLLM(responses=[llm_res])

    async def main() -> None:
        # Normal output should work
        output: list[Any] = [
            chunk
            async for chunk in RunnableLambda(
                func=id,
                afunc=awrapper(range),  # id func is just dummy
            ).astream(5)
        ]
        assert output == [range(5)]

        # Normal output using func should also work
        output = [_ async for _ in RunnableLambda(range).astream(5)]
        assert output == [range(5)]

        # Runnable output should also work
        output = [
            _
            async for _ in RunnableLambda(
                func=id,
                afunc=awrapper(lambda _: llm),
            ).astream("")
        ]
        assert output == list(llm_res)

        output = [chunk async for chunk in RunnableLambda[str, str](lambda _: llm).astream("")]
        assert output == list(llm_res)

    asyncio.run(main())


def test_runnable_gen_transform() -> None:
    """Test that a generator can be used as a runnable (its schema asserts left out): a
    generator function after ``|`` receives the previous step's pieces as they come."""

    def gen_indexes(length_iter: Iterator[int]) -> Iterator[int]:
        yield from range(next(length_iter))

    async def agen_indexes(length_iter: AsyncIterator[int]) -> AsyncIterator[int]:
        async for length in length_iter:
            for i in range(length):
                yield i

    def plus_one(ints: Iterator[int]) -> Iterator[int]:
        for i in ints:
            yield i + 1

    async def aplus_one(ints: AsyncIterator[int]) -> AsyncIterator[int]:
        async for i in ints:
            yield i + 1

    chain_ = RunnableGenerator(gen_indexes, agen_indexes) | plus_one
    achain = RunnableGenerator(gen_indexes, agen_indexes) | aplus_one

    assert list(chain_.stream(3)) == [1, 2, 3]

    async def main() -> None:
        assert [p async for p in achain.astream(4)] == [1, 2, 3, 4]

    asyncio.run(main())


# -- @chain, beyond the upstream suite -------------------------------------------------------


def test_chain_decorator_names_the_runnable_after_the_function() -> None:
    @chain
    def add_one(x: int) -> int:
        return x + 1

    assert isinstance(add_one, RunnableLambda)
    assert add_one.name == "add_one"
    assert add_one.invoke(1) == 2
    assert (add_one | (lambda x: x * 10)).invoke(1) == 20
    assert asyncio.run(add_one.ainvoke(2)) == 3


def test_chain_decorator_on_an_async_function() -> None:
    @chain
    async def double(x: int) -> int:
        return x * 2

    assert double.name == "double"
    assert asyncio.run(double.ainvoke(4)) == 8


def test_chain_decorator_invokes_a_returned_runnable() -> None:
    shout = RunnableLambda(lambda text: text.upper())

    @chain
    def route(text: str) -> Runnable[str, str]:
        return shout

    assert route.invoke("hi") == "HI"


def test_runnable_branch_rejects_malformed_branches() -> None:
    with pytest.raises(ValueError, match="tuples or lists of length 2, not 3"):
        RunnableBranch((lambda x: True, lambda x: x, lambda x: x), lambda x: x)
    with pytest.raises(ValueError, match="must be tuples or lists"):
        RunnableBranch(lambda x: True, lambda x: x)
    with pytest.raises(ValueError, match="default must be Runnable, callable or mapping"):
        RunnableBranch((lambda x: True, lambda x: x), 42)


def test_runnable_generator_rejects_a_plain_function() -> None:
    with pytest.raises(ValueError, match="Expected a generator function type"):
        RunnableGenerator(lambda x: x)
