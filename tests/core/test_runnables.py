from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from threadline import (
    AIMessage,
    AIMessageChunk,
    ChatPromptTemplate,
    EchoChatModel,
    FakeListChatModel,
    HumanMessage,
    InputError,
    ModelError,
    RunnableLambda,
    RunnableParallel,
    RunnablePassthrough,
    RunnableSequence,
    StrOutputParser,
)


def test_pipe_composes_runnables_callables_and_dicts() -> None:
    chain = (
        RunnableLambda(lambda x: x + 1) | (lambda x: x * 2) | {"a": lambda x: x, "b": lambda x: -x}
    )
    assert isinstance(chain, RunnableSequence)
    assert chain.invoke(1) == {"a": 4, "b": -4}
    assert ({"x": RunnablePassthrough()} | RunnableLambda(lambda d: d["x"])).invoke(5) == 5


def test_prompt_model_parser_chain() -> None:
    prompt = ChatPromptTemplate.from_messages([("human", "{q}")])
    chain = prompt | EchoChatModel(prefix="you said: ") | StrOutputParser()
    assert chain.invoke({"q": "hi"}) == "you said: hi"
    assert asyncio.run(chain.ainvoke({"q": "hi"})) == "you said: hi"
    assert chain.batch([{"q": "a"}, {"q": "b"}]) == ["you said: a", "you said: b"]
    assert asyncio.run(chain.abatch([{"q": "a"}, {"q": "b"}])) == ["you said: a", "you said: b"]


def test_stream_yields_pieces_through_the_parser() -> None:
    chain = (
        ChatPromptTemplate.from_template("{q}")
        | FakeListChatModel(responses=["one two three"])
        | StrOutputParser()
    )
    pieces = list(chain.stream({"q": "x"}))
    assert pieces == ["one", " two", " three"]

    async def collect() -> list[str]:
        return [p async for p in chain.astream({"q": "x"})]

    assert asyncio.run(collect()) == pieces


def test_stream_is_incremental() -> None:
    model = FakeListChatModel(responses=["a b c d"], sleep=0.05)
    chain = model | StrOutputParser()
    start = time.perf_counter()
    first_at = None
    for _ in chain.stream("x"):
        if first_at is None:
            first_at = time.perf_counter() - start
    total = time.perf_counter() - start
    assert first_at is not None and first_at < total / 2


def test_model_stream_chunks_add_up() -> None:
    model = FakeListChatModel(responses=["hello big world"])
    chunks = list(model.stream("x"))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert total.content == "hello big world"


def test_fake_model_cycles_and_is_thread_safe() -> None:
    model = FakeListChatModel(responses=["a", "b"])
    assert [model.invoke("x").content for _ in range(3)] == ["a", "b", "a"]
    results: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(100):
            text = model.invoke("x").content
            with lock:
                results.append(str(text))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(results)) == ["a", "b"]
    assert abs(results.count("a") - results.count("b")) <= 1


def test_fake_model_rejects_bad_responses_and_fails_on_request() -> None:
    with pytest.raises(InputError):
        FakeListChatModel(responses="abc")  # type: ignore[arg-type]
    model = FakeListChatModel(responses=["a b c"], error_on_chunk_number=1)
    with pytest.raises(ModelError):
        list(model.stream("x"))


def test_echo_model_answers_last_human_message() -> None:
    model = EchoChatModel()
    assert (
        model.invoke([HumanMessage("first"), AIMessage("x"), HumanMessage("second")]).content
        == "second"
    )


def test_parallel_runs_concurrently() -> None:
    def slow(x: int) -> int:
        time.sleep(0.2)
        return x

    parallel = RunnableParallel(a=slow, b=slow, c=slow)
    start = time.perf_counter()
    assert parallel.invoke(1) == {"a": 1, "b": 1, "c": 1}
    assert time.perf_counter() - start < 0.5

    async def aslow(x: int) -> int:
        await asyncio.sleep(0.2)
        return x

    aparallel = RunnableParallel(a=RunnableLambda(aslow), b=RunnableLambda(aslow))
    start = time.perf_counter()
    assert asyncio.run(aparallel.ainvoke(2)) == {"a": 2, "b": 2}
    assert time.perf_counter() - start < 0.4


def test_passthrough_assign() -> None:
    chain = RunnablePassthrough.assign(doubled=lambda d: d["x"] * 2)
    assert chain.invoke({"x": 2}) == {"x": 2, "doubled": 4}
    assert asyncio.run(chain.ainvoke({"x": 3})) == {"x": 3, "doubled": 6}
    with pytest.raises(InputError, match="dict input"):
        chain.invoke(3)  # type: ignore[arg-type]


def test_lambda_gets_config_when_it_asks() -> None:
    seen: list[Any] = []

    def f(x: int, config: Any) -> int:
        seen.append(config["configurable"]["k"])
        return x

    RunnableLambda(f).invoke(1, {"configurable": {"k": "v"}})
    assert seen == ["v"]


def test_async_lambda() -> None:
    async def f(x: int) -> int:
        return x + 1

    runnable = RunnableLambda(f)
    assert asyncio.run(runnable.ainvoke(1)) == 2
    with pytest.raises(InputError, match="ainvoke"):
        runnable.invoke(1)


def test_lambda_returning_a_runnable_runs_it() -> None:
    runnable = RunnableLambda(lambda x: RunnableLambda(lambda y: y * 10))
    assert runnable.invoke(2) == 20


def test_batch_return_exceptions_and_max_concurrency() -> None:
    def f(x: int) -> int:
        if x == 2:
            raise ValueError("two")
        return x

    results = RunnableLambda(f).batch([1, 2, 3], return_exceptions=True)
    assert results[0] == 1 and isinstance(results[1], ValueError) and results[2] == 3
    active = 0
    peak = 0
    lock = threading.Lock()

    def g(x: int) -> int:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.02)
        with lock:
            active -= 1
        return x

    RunnableLambda(g).batch(list(range(10)), {"max_concurrency": 2})
    assert peak <= 2


def test_bind_fixes_keyword_arguments() -> None:
    seen: list[Any] = []

    class Recorder(FakeListChatModel):
        def _generate(self, messages: Any, *, stop: Any = None, **kwargs: Any) -> AIMessage:
            seen.append(stop)
            return super()._generate(messages, stop=stop, **kwargs)

    Recorder(responses=["x"]).bind(stop=["\n"]).invoke("hi")
    assert seen == [["\n"]]


def test_composing_a_non_runnable_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="cannot compose int"):
        RunnableLambda(lambda x: x) | 3  # type: ignore[operator]
