"""LangChain runnables inside threadline, threadline runnables inside LangChain."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core import messages as lc
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel as LCFakeModel,
)
from langchain_core.output_parsers import StrOutputParser as LCStrOutputParser
from langchain_core.prompts import ChatPromptTemplate as LCPrompt
from langchain_core.runnables import RunnableLambda as LCLambda
from langchain_openai import ChatOpenAI as LCChatOpenAI
from openai_server import OpenAIServer, sent_texts, serving_as_openai

import threadline
from threadline import (
    AIMessage,
    AIMessageChunk,
    ChatPromptTemplate,
    ConversationChain,
    HumanMessage,
    InMemoryChatMessageHistory,
    InputError,
    RunnableWithMessageHistory,
    StrOutputParser,
    open_store,
)
from threadline.langchain import LangChainRunnable, as_langchain


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    with serving_as_openai(monkeypatch) as server:
        yield server


def test_threadline_wrapper_around_a_langchain_chain_streams(openai_server: OpenAIServer
                                                             ) -> None:
    prompt = LCPrompt.from_messages([("system", "be brief"), ("placeholder", "{history}"),
                                     ("human", "{question}")])
    chain = prompt | LCChatOpenAI() | LCStrOutputParser()  # all LangChain
    store = open_store("memory://")
    wrapped = RunnableWithMessageHistory(chain, store.history, input_messages_key="question",
                                         history_messages_key="history")
    assert wrapped.invoke({"question": "one"}, session_id="s") == "echo: one"
    pieces = list(wrapped.stream({"question": "two words"}, session_id="s"))
    assert len([p for p in pieces if p]) >= 3  # token by token, not one string
    assert "".join(pieces) == "echo: two words"
    assert asyncio.run(wrapped.ainvoke({"question": "three"}, session_id="s")) == "echo: three"
    assert sent_texts(openai_server)[1:] == [
        ("user", "one"), ("assistant", "echo: one"), ("user", "two words"),
        ("assistant", "echo: two words"), ("user", "three")]
    stored = store.get_messages("s")
    assert [type(m) for m in stored] == [HumanMessage, AIMessage] * 3
    assert type(stored[1].content) is str  # LangChain's str subclass stored as a str


def test_pipe_takes_a_langchain_chat_model(openai_server: OpenAIServer) -> None:
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | LCChatOpenAI() \
        | StrOutputParser()
    assert isinstance(chain.steps[1], LangChainRunnable)
    assert chain.invoke({"q": "hi"}) == "echo: hi"
    chunks = list((ChatPromptTemplate.from_messages([("human", "{q}")])
                   | LCChatOpenAI()).stream({"q": "a b c"}))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)  # threadline chunks
    assert "".join(c.text for c in chunks) == "echo: a b c"
    assert chain.batch([{"q": "x"}, {"q": "y"}]) == ["echo: x", "echo: y"]
    assert asyncio.run(chain.abatch([{"q": "x"}])) == ["echo: x"]


def test_langchain_runnable_on_the_left_of_a_threadline_one() -> None:
    upper = LCLambda(lambda text: text.upper())
    chain = threadline.RunnableLambda(lambda text: text + "!") | upper
    assert chain.invoke("hi") == "HI!"
    # LangChain's own ``|`` cannot take a threadline runnable; as_langchain() can.
    lc_chain = upper | as_langchain(threadline.RunnableLambda(lambda text: text + "?"))
    assert lc_chain.invoke("hi") == "HI?"


def test_conversation_chain_takes_a_langchain_model() -> None:
    chain = ConversationChain(llm=LCFakeModel(responses=["Hi!", "Fine."]))
    assert chain.invoke({"input": "Hello"})["response"] == "Hi!"
    assert chain.predict(input="How are you?") == "Fine."
    assert chain.memory.buffer == "Human: Hello\nAI: Hi!\nHuman: How are you?\nAI: Fine."


def test_as_langchain_puts_a_threadline_model_in_a_langchain_chain() -> None:
    model = threadline.FakeListChatModel(responses=["from threadline, streamed"])
    prompt = LCPrompt.from_messages([("placeholder", "{history}"), ("human", "{q}")])
    chain = prompt | as_langchain(model) | LCStrOutputParser()
    pieces = list(chain.stream({"q": "hi", "history": [lc.AIMessage("earlier")]}))
    assert len(pieces) > 1 and "".join(pieces) == "from threadline, streamed"
    out = (prompt | as_langchain(model)).invoke({"q": "hi", "history": []})
    assert isinstance(out, lc.AIMessage)  # LangChain types come out
    assert asyncio.run(chain.ainvoke({"q": "x", "history": []})) == "from threadline, streamed"


def test_as_langchain_round_trips_without_double_wrapping() -> None:
    model = threadline.EchoChatModel()
    wrapped = as_langchain(model)
    back = threadline.RunnableLambda(lambda x: x) | wrapped
    assert back.steps[1] is model
    lc_model = LCFakeModel(responses=["x"])
    assert as_langchain(LangChainRunnable(lc_model)) is lc_model


def test_messages_cross_both_ways_inside_a_chain() -> None:
    seen: list[Any] = []

    def inspect(value: Any) -> Any:
        seen.append(value)
        return value

    # threadline prompt -> LangChain lambda: it gets LangChain's prompt value.
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | LCLambda(inspect)
    out = chain.invoke({"q": "hi"})
    assert type(seen[0]).__module__.startswith("langchain_core")
    assert isinstance(out, threadline.ChatPromptValue)  # and back to threadline's
    assert out.to_messages() == [HumanMessage("hi")]


def test_errors_name_what_they_got() -> None:
    from langchain_core.documents import Document

    with pytest.raises(InputError, match="cannot compose a langchain_core Document"):
        threadline.RunnableLambda(lambda x: x) | Document("x")  # type: ignore[operator]
    with pytest.raises(InputError, match="got a langchain_core Document"):
        ConversationChain(llm=Document("x"))  # type: ignore[arg-type]


def test_history_given_langchain_messages_by_a_langchain_step() -> None:
    # A LangChain model inside threadline's wrapper returns LangChain messages; the
    # threadline history stores them as threadline messages, tool calls and all.
    answer = lc.AIMessage("calling", tool_calls=[{"name": "f", "args": {}, "id": "c1"}])
    history = InMemoryChatMessageHistory()
    wrapped = RunnableWithMessageHistory(LCLambda(lambda _: answer), lambda: history)
    out = wrapped.invoke("go")
    assert isinstance(out, AIMessage) and out.tool_calls[0]["id"] == "c1"
    assert history.get_messages() == [HumanMessage("go"), out]
