"""SummaryBufferHistory (compaction that keeps the history) and the summary memories."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from summarizers import PROMPT, Broken, Recorder, summary_of, texts

from threadline import (
    SUMMARY_PROMPT,
    AIMessage,
    BaseMessage,
    ChatPromptTemplate,
    CompactionWarning,
    ConfigurationError,
    ConversationChain,
    ConversationSummaryBufferMemory,
    ConversationSummaryMemory,
    EchoChatModel,
    FakeListChatModel,
    HumanMessage,
    InMemoryChatMessageHistory,
    InputError,
    MessageFormatError,
    MessagesPlaceholder,
    ModelError,
    PromptTemplate,
    RunnableWithMessageHistory,
    SummaryBufferHistory,
    SummaryInfo,
    SystemMessage,
    ToolMessage,
    get_buffer_string,
    open_store,
)
from threadline.memory._summary import SUMMARY_KEY, SUMMARY_PREFIX
from threadline.models._tokens import approximate_counter
from threadline.stores import Store


def turn(i: int) -> list[BaseMessage]:
    return [HumanMessage(f"q{i}"), AIMessage(f"a{i}")]


def make(store: Store, model: Any = None, sid: str = "s", **kwargs: Any) -> SummaryBufferHistory:
    kwargs.setdefault("max_tokens", 4)
    kwargs.setdefault("token_counter", len)
    kwargs.setdefault("prompt", PROMPT)
    return SummaryBufferHistory(store.history(sid), model or Recorder(), **kwargs)


@pytest.fixture
def store() -> Store:
    return open_store("memory://")


# -- the compaction ------------------------------------------------------------------------


def test_nothing_is_deleted_and_the_window_fits(store: Store) -> None:
    history = make(store)
    assert history.summary() is None and history.summary_info() is None
    for i in range(5):
        history.add_messages(turn(i))
    stored = store.get_messages("s")
    assert texts(stored) == texts([m for i in range(5) for m in turn(i)])
    assert history.summary_info() == SummaryInfo(summary_of(stored[:6]), 6, "recorder")
    view = history.get_messages()
    assert view[0] == SystemMessage(SUMMARY_PREFIX + summary_of(stored[:6]))
    assert texts(view[1:]) == texts(stored[6:])
    assert texts(history.messages) == texts(view)
    assert history.get_messages(last=2) == view[-2:] and history.get_messages(last=0) == []
    # The record is the documented JSON.
    raw = store.get_records("s", [SUMMARY_KEY])[SUMMARY_KEY]
    assert json.loads(raw) == {"text": summary_of(stored[:6]), "covers": 6, "model": "recorder"}


def test_summaries_are_incremental(store: Store) -> None:
    model = Recorder()
    history = make(store, model)
    for i in range(2):
        history.add_messages(turn(i))
    assert model.prompts == []  # 4 messages fit: no call
    for i in range(2, 5):
        history.add_messages(turn(i))
    # Each call got the previous summary and only the two messages that just left.
    previous = ""
    for i, prompt in enumerate(model.prompts):
        assert prompt == f"{previous}\n{get_buffer_string(turn(i))}"
        previous = prompt.strip()
    assert len(model.prompts) == 3


def test_window_fits_a_real_token_budget(store: Store) -> None:
    history = make(store, max_tokens=60, token_counter="approximate")
    for i in range(30):
        history.add_messages([HumanMessage(f"question number {i} " * 3),
                              AIMessage(f"answer number {i} " * 3)])
    view = history.get_messages()
    assert view[0].type == "system"
    assert approximate_counter.count_messages(view[1:]) <= 60
    info = history.summary_info()
    assert info is not None
    # The window is exactly what follows the summary: nothing skipped, nothing twice.
    assert info.covers + len(view) - 1 == 60 == len(store.get_messages("s"))


def test_reads_only_what_is_needed(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    history = make(store)
    for i in range(40):
        history.add_messages(turn(i))
    asked: list[int | None] = []
    real = store.get_messages

    def spy(session_id: str, *, last: int | None = None, **kwargs: Any) -> list[BaseMessage]:
        asked.append(last)
        return real(session_id, last=last, **kwargs)

    monkeypatch.setattr(store, "get_messages", spy)
    assert len(history.get_messages()) == 5
    assert asked == [4]  # the messages after the summary, not the 80 stored


def test_a_new_history_reuses_the_stored_summary(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    with open_store(url) as first:
        history = make(first)
        for i in range(4):
            history.add_messages(turn(i))
        before = history.get_messages()
    model = Recorder()
    with open_store(url) as second:  # a restart
        again = make(second, model)
        assert again.get_messages() == before
        again.add_messages(turn(4))
        # Only the newly dropped turn was sent, after the stored summary.
        assert model.prompts == [f"{summary_of(turn(0) + turn(1))}\n"
                                 f"{get_buffer_string(turn(2))}"]
        stored = second.get_messages("s")
        assert again.summary_info() == SummaryInfo(summary_of(stored[:6]), 6, "recorder")


def test_async_parity(store: Store) -> None:
    sync, asynchronous = make(store, sid="sync"), make(store, sid="async")
    for i in range(5):
        sync.add_messages(turn(i))

    async def run() -> tuple[list[BaseMessage], SummaryInfo | None, str | None]:
        for i in range(5):
            await asynchronous.aadd_messages(turn(i))
        return (await asynchronous.aget_messages(), await asynchronous.asummary_info(),
                await asynchronous.asummary())

    view, info, text = asyncio.run(run())
    assert texts(view) == texts(sync.get_messages()) and info == sync.summary_info()
    assert text == sync.summary()
    assert texts(store.get_messages("async")) == texts(store.get_messages("sync"))
    asyncio.run(asynchronous.aclear())
    assert store.get_messages("async") == [] and asynchronous.summary() is None


def test_a_failed_model_keeps_the_history_and_raises(store: Store) -> None:
    good = make(store)
    for i in range(3):
        good.add_messages(turn(i))
    old = good.summary_info()
    broken = make(store, Broken())
    with pytest.raises(ModelError, match="down") as caught:
        broken.add_messages(turn(3))
    assert any("the messages were stored" in note for note in caught.value.__notes__)
    assert len(store.get_messages("s")) == 8  # the turn is stored
    assert broken.summary_info() == old  # the old summary is kept
    # Reading never calls the model: the window is still the newest that fit.
    assert texts(broken.get_messages()[1:]) == texts(turn(2) + turn(3))
    # The next compaction catches up with everything that left the window.
    assert good.compact() == SummaryInfo(summary_of(store.get_messages("s")[:4]), 4,
                                         "recorder")


def test_a_failed_model_can_warn_instead(store: Store) -> None:
    history = make(store, Broken(), on_error="warn")
    for i in range(2):
        history.add_messages(turn(i))
    with pytest.warns(CompactionWarning, match="the messages were stored") as warned:
        history.add_messages(turn(2))
    assert isinstance(warned[0].message, CompactionWarning)
    assert isinstance(warned[0].message.error, ModelError)
    assert len(store.get_messages("s")) == 6 and history.summary() is None

    async def run() -> None:
        await history.aadd_messages(turn(3))

    with pytest.warns(CompactionWarning):
        asyncio.run(run())
    assert len(store.get_messages("s")) == 8


def test_a_backlog_is_summarised_in_pieces(store: Store) -> None:
    store.append("s", [m for i in range(10) for m in turn(i)])  # stored without compaction
    model = Recorder()
    history = make(store, model)
    assert len(history.get_messages()) == 4  # no summary yet: the newest that fit
    info = history.compact()
    assert info is not None and info.covers == 16
    assert len(model.prompts) == 4  # 16 messages, at most 4 (the budget) a call
    assert history.compact() == info  # nothing more to do: no call
    assert len(model.prompts) == 4


def test_the_window_never_opens_on_a_tool_result(store: Store) -> None:
    history = make(store, max_tokens=2)
    history.add_messages([HumanMessage("weather?"),
                          AIMessage("", tool_calls=[{"name": "w", "args": {}, "id": "c1"}]),
                          ToolMessage("sunny", tool_call_id="c1"), AIMessage("It is sunny")])
    view = history.get_messages()
    assert [m.type for m in view] == ["system", "ai"]
    info = history.summary_info()
    assert info is not None and info.covers == 3


def test_in_runnable_with_message_history(store: Store) -> None:
    seen: list[list[BaseMessage]] = []

    class Answerer(EchoChatModel):
        def _answer(self, messages: list[BaseMessage]) -> str:
            seen.append(messages)
            return super()._answer(messages)

    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"),
                                               ("human", "{q}")])
    chain = RunnableWithMessageHistory(
        prompt | Answerer(), lambda sid: make(store, sid=sid), input_messages_key="q",
        history_messages_key="history")
    for i in range(4):
        assert chain.invoke({"q": f"q{i}"}, config={"session_id": "abc"}).text == f"q{i}"
    assert seen[-1][0].type == "system" and seen[-1][0].text.startswith(SUMMARY_PREFIX)
    assert [m.text for m in seen[-1][1:]] == ["q1", "q1", "q2", "q2", "q3"]
    assert len(store.get_messages("abc")) == 8


def test_clear_forgets_the_summary(store: Store) -> None:
    history = make(store)
    for i in range(3):
        history.add_messages(turn(i))
    assert history.summary() is not None
    history.clear()
    assert store.get_messages("s") == [] and history.summary() is None


def test_bad_arguments(store: Store) -> None:
    with pytest.raises(InputError, match=r"store\.history"):
        SummaryBufferHistory(InMemoryChatMessageHistory(), Recorder())  # type: ignore[arg-type]
    with pytest.raises(InputError, match="max_tokens"):
        make(store, max_tokens=0)
    with pytest.raises(InputError, match="summary"):
        make(store, prompt=PromptTemplate("{summary} only"))
    with pytest.raises(InputError, match="on_error"):
        make(store, on_error="ignore")
    with pytest.raises(InputError, match="chat model"):
        SummaryBufferHistory(store.history("s"), object())


def test_a_store_without_records_is_refused_by_name(store: Store) -> None:
    store.supports_records = False  # type: ignore[misc]  # as a store without records
    with pytest.raises(ConfigurationError, match=r"memory:// store keeps no records.*sqlite"):
        make(store)


def test_a_damaged_record_is_an_error(store: Store) -> None:
    history = make(store)
    history.add_messages(turn(0))
    for damage in (b"not json", b"[]", b'{"text": 1, "covers": 2}', b'{"text": "x"}'):
        store.put_records("s", {SUMMARY_KEY: damage})
        with pytest.raises(MessageFormatError, match="summary record of session 's'"):
            history.get_messages()


def test_the_default_prompt_is_langchains() -> None:
    LANGCHAIN = pytest.importorskip("langchain_classic.memory.prompt").SUMMARY_PROMPT
    assert SUMMARY_PROMPT.template == LANGCHAIN.template
    assert SUMMARY_PROMPT.input_variables == sorted(LANGCHAIN.input_variables)


# -- LangChain's legacy summary memories ------------------------------------------------------


def test_conversation_summary_memory_in_a_chain() -> None:
    summarizer = Recorder()
    memory = ConversationSummaryMemory(llm=summarizer, prompt=PROMPT)
    chain = ConversationChain(llm=FakeListChatModel(responses=["Hi Ada!", "Tea."]),
                              memory=memory)
    assert chain.run("I am Ada") == "Hi Ada!"
    assert memory.buffer == "Human: I am Ada\nAI: Hi Ada!"
    result = chain.invoke({"input": "What do I like?"})
    assert result["history"] == "Human: I am Ada\nAI: Hi Ada!"  # the summary, as text
    assert memory.load_memory_variables({}) == {"history": memory.buffer}
    assert len(memory.chat_memory.messages) == 4  # the history keeps every turn
    assert len(summarizer.prompts) == 2
    memory.return_messages = True
    assert memory.load_memory_variables({}) == {"history": [SystemMessage(memory.buffer)]}
    memory.clear()
    assert memory.buffer == "" and memory.chat_memory.messages == []


def test_conversation_summary_memory_from_messages_and_async() -> None:
    history = InMemoryChatMessageHistory(turn(0) + turn(1))
    memory = ConversationSummaryMemory.from_messages(Recorder(), history, prompt=PROMPT)
    assert memory.buffer == summary_of(turn(0) + turn(1))

    async def run() -> dict[str, Any]:
        await memory.asave_context({"input": "q2"}, {"output": "a2"})
        return await memory.aload_memory_variables({})

    assert asyncio.run(run()) == {"history": summary_of(turn(0) + turn(1) + turn(2))}
    assert asyncio.run(memory.abuffer()) == memory.buffer


def test_conversation_summary_memory_keeps_the_turn_when_the_model_fails() -> None:
    memory = ConversationSummaryMemory(llm=Broken(), buffer="before")
    with pytest.raises(ModelError):
        memory.save_context({"input": "q"}, {"output": "a"})
    assert memory.buffer == "before" and len(memory.chat_memory.messages) == 2


def test_conversation_summary_buffer_memory_in_a_chain() -> None:
    memory = ConversationSummaryBufferMemory(llm=Recorder(), prompt=PROMPT, max_token_limit=4,
                                             token_counter=len)
    chain = ConversationChain(llm=EchoChatModel(), memory=memory)
    for i in range(2):
        chain.run(f"q{i}")
    assert memory.moving_summary_buffer == "" and memory.summarized == 0
    for i in range(2, 4):
        chain.run(f"q{i}")
    stored = memory.chat_memory.messages
    assert len(stored) == 8  # nothing deleted
    assert memory.summarized == 4
    assert memory.moving_summary_buffer == summary_of(stored[:4])
    assert memory.buffer == get_buffer_string([SystemMessage(memory.moving_summary_buffer),
                                               *stored[4:]])
    memory.return_messages = True
    assert memory.load_memory_variables({})["history"] == [
        SystemMessage(memory.moving_summary_buffer), *stored[4:]]
    assert memory.predict_new_summary(turn(9), "old") == "old\nHuman: q9\nAI: a9"
    memory.clear()
    assert (memory.moving_summary_buffer, memory.summarized) == ("", 0)
    assert memory.chat_memory.messages == []


def test_conversation_summary_buffer_memory_async_parity() -> None:
    def build() -> ConversationSummaryBufferMemory:
        return ConversationSummaryBufferMemory(llm=Recorder(), prompt=PROMPT,
                                               max_token_limit=4, token_counter=len,
                                               return_messages=True)

    sync, asynchronous = build(), build()
    for i in range(5):
        sync.save_context({"input": f"q{i}"}, {"output": f"a{i}"})

    async def run() -> dict[str, Any]:
        for i in range(5):
            await asynchronous.asave_context({"input": f"q{i}"}, {"output": f"a{i}"})
        assert await asynchronous.abuffer() == sync.buffer
        return await asynchronous.aload_memory_variables({})

    assert asyncio.run(run()) == sync.load_memory_variables({})
    assert asynchronous.moving_summary_buffer == sync.moving_summary_buffer
    asyncio.run(asynchronous.aclear())
    assert asynchronous.moving_summary_buffer == "" and asynchronous.summarized == 0


def test_summary_buffer_memory_over_a_long_stored_history_catches_up_in_pieces() -> None:
    history = InMemoryChatMessageHistory([m for i in range(6) for m in turn(i)])
    summarizer = Recorder()
    memory = ConversationSummaryBufferMemory(llm=summarizer, prompt=PROMPT,
                                             max_token_limit=4, token_counter=len,
                                             chat_memory=history)
    memory.prune()
    assert memory.summarized == 8 and len(summarizer.prompts) == 2
    assert len(history.messages) == 12


def test_summary_memories_bad_arguments() -> None:
    with pytest.raises(InputError, match="max_token_limit"):
        ConversationSummaryBufferMemory(llm=Recorder(), max_token_limit=-1)
    with pytest.raises(InputError, match="summary"):
        ConversationSummaryMemory(llm=Recorder(), prompt=PromptTemplate("{history}"))
    with pytest.raises(InputError, match="str"):
        ConversationSummaryMemory(llm=Recorder(), buffer=3)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="chat model"):
        ConversationSummaryMemory(llm=42)


def test_a_bad_last_is_refused_before_any_read(store: Store) -> None:
    history = make(store)
    for bad in (-1, "2", True):
        with pytest.raises(InputError, match="last"):
            history.get_messages(last=bad)  # type: ignore[arg-type]
        with pytest.raises(InputError, match="last"):
            asyncio.run(history.aget_messages(last=bad))  # type: ignore[arg-type]
