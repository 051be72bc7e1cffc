"""ConversationTokenBufferMemory: what LangChain's keeps, without deleting history."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_classic.memory import ConversationTokenBufferMemory as LCTokenMemory
from langchain_core.language_models.fake_chat_models import FakeListChatModel as LCFake

from threadline import (
    AIMessage,
    BaseMessage,
    ConversationChain,
    ConversationTokenBufferMemory,
    FakeListChatModel,
    HumanMessage,
    InMemoryChatMessageHistory,
    InputError,
)
from threadline.models._counter import TokenCounter

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def chars(messages: list[Any]) -> int:
    """One token a character plus 2 a message; the same on both sides."""
    return sum(2 + len(m.text) for m in messages)


class CharFake(LCFake):
    def get_num_tokens_from_messages(self, messages: list[Any], tools: Any = None) -> int:
        return chars(messages)


class CharCounter(TokenCounter):
    name = "chars"
    min_message_tokens = 2

    def message_tokens(self, message: BaseMessage) -> int:
        return 2 + len(message.text)


TURNS = [("hello", "hi there"), ("how are you today?", "fine"), ("tell me a joke", "no"),
         ("why not?", "because I am a very serious assistant"), ("ok", "ok")]


@pytest.mark.parametrize("llm", [chars, CharCounter()], ids=["list-function", "counter"])
@pytest.mark.parametrize("limit", [0, 5, 12, 20, 30, 45, 60, 200])
def test_same_buffer_as_langchain_after_every_turn(llm: Any, limit: int) -> None:
    theirs = LCTokenMemory(llm=CharFake(responses=["x"]), max_token_limit=limit)
    ours = ConversationTokenBufferMemory(llm=llm, max_token_limit=limit)
    for question, answer in TURNS:
        theirs.save_context({"input": question}, {"output": answer})
        ours.save_context({"input": question}, {"output": answer})
        assert ours.load_memory_variables({}) == theirs.load_memory_variables({})
    # LangChain deleted the pruned messages; the history here keeps them all.
    assert len(ours.chat_memory.messages) == 2 * len(TURNS)


def test_return_messages_and_async_parity() -> None:
    memory = ConversationTokenBufferMemory(llm="gpt-4o", max_token_limit=20,
                                           return_messages=True)
    memory.save_context({"input": "hello world"}, {"output": "hi"})
    memory.save_context({"input": "how are you?"}, {"output": "fine"})
    # reply 3 + "how are you?" 3+1+4 + "fine" 3+1+1 = 16; "hi" would add 5.
    assert memory.buffer == [HumanMessage("how are you?"), AIMessage("fine")]
    assert asyncio.run(memory.aload_memory_variables({})) == memory.load_memory_variables({})
    assert memory.buffer_as_str == "Human: how are you?\nAI: fine"


class RecordingHistory(InMemoryChatMessageHistory):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[int | None] = []

    def get_messages(self, last: int | None = None) -> list[BaseMessage]:
        self.asked.append(last)
        return super().get_messages(last=last)


def test_reads_only_as_many_messages_as_could_fit() -> None:
    history = RecordingHistory()
    history.add_messages([HumanMessage(f"q{n}") if n % 2 == 0 else AIMessage(f"a{n}")
                          for n in range(10_000)])
    memory = ConversationTokenBufferMemory(llm="gpt-4o", max_token_limit=100,
                                           chat_memory=history, return_messages=True)
    kept = memory.buffer
    assert history.asked == [100 // 4 + 1]  # every gpt-4o message costs at least 4
    assert kept[-1] == AIMessage("a9999") and 10 <= len(kept) <= 25
    # A list function gives no lower bound: the whole history is read.
    unbounded = ConversationTokenBufferMemory(llm=chars, max_token_limit=100,
                                              chat_memory=history, return_messages=True)
    assert unbounded.buffer[-1] == AIMessage("a9999")
    assert history.asked[-1] is None


def test_in_a_conversation_chain() -> None:
    memory = ConversationTokenBufferMemory(llm="gpt-4o", max_token_limit=30)
    chain = ConversationChain(llm=FakeListChatModel(responses=["Fine, thanks.", "Bye!"]),
                              memory=memory)
    chain.invoke({"input": "How are you?"})
    result = chain.invoke({"input": "Goodbye"})
    assert result["history"] == "Human: How are you?\nAI: Fine, thanks."
    # Whole messages are dropped, oldest first, as LangChain does: not whole exchanges.
    assert memory.buffer == "AI: Fine, thanks.\nHuman: Goodbye\nAI: Bye!"
    assert len(memory.chat_memory.messages) == 4


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="max_token_limit"):
        ConversationTokenBufferMemory(llm="gpt-4o", max_token_limit=-1)
    with pytest.raises(InputError, match="token_counter"):
        ConversationTokenBufferMemory(llm=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ConversationTokenBufferMemory(max_token_limit=10)  # type: ignore[call-arg]
