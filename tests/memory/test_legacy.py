"""ConversationChain and the buffer memories (threadline.memory)."""

from __future__ import annotations

import asyncio
import importlib.util
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from threadline import (
    AIMessage,
    BaseChatMessageHistory,
    BaseMessage,
    ChatPromptTemplate,
    ConversationBufferMemory,
    ConversationBufferWindowMemory,
    ConversationChain,
    FakeListChatModel,
    HumanMessage,
    InMemoryChatMessageHistory,
    InputError,
    MessagesPlaceholder,
    PromptTemplate,
    RunnableLambda,
    StringPromptValue,
    SystemMessage,
    ThreadlineError,
)
from threadline.memory._buffer import BaseChatMemory
from threadline.memory._chain import DEFAULT_TEMPLATE

README = Path(__file__).resolve().parents[2] / "README.md"


class RecordingHistory(InMemoryChatMessageHistory):
    """A real in-memory history that also records how it was called."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []

    def get_messages(self, last: int | None = None) -> list[BaseMessage]:
        self.calls.append(("get_messages", last))
        return super().get_messages(last)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        self.calls.append(("add_messages", len(messages)))
        super().add_messages(messages)

    async def aget_messages(self, last: int | None = None) -> list[BaseMessage]:
        self.calls.append(("aget_messages", last))
        return super().get_messages(last)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        self.calls.append(("aadd_messages", len(messages)))
        super().add_messages(messages)


class SyncOnlyHistory(BaseChatMessageHistory):
    """A history with only the sync methods: the a* ones come from the base class."""

    def __init__(self) -> None:
        self.stored: list[BaseMessage] = []

    def get_messages(self, last: int | None = None) -> list[BaseMessage]:
        return self.stored[-last:] if last else ([] if last == 0 else list(self.stored))

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        self.stored.extend(messages)

    def clear(self) -> None:
        self.stored = []


def chain_of(*responses: str, **kwargs: Any) -> ConversationChain:
    return ConversationChain(llm=FakeListChatModel(responses=list(responses)), **kwargs)


# -- ConversationChain ----------------------------------------------------------------------


def test_call_invoke_run_and_predict_share_one_conversation() -> None:
    chain = chain_of("Hi there!", "Fine.", "Bye!", "Ok.")
    assert chain({"input": "Hello!"}) == {"input": "Hello!", "history": "",
                                          "response": "Hi there!"}
    assert chain.invoke({"input": "How are you?"}) == {
        "input": "How are you?",
        "history": "Human: Hello!\nAI: Hi there!",
        "response": "Fine.",
    }
    assert chain.run("Bye") == "Bye!"
    assert chain.predict(input="Still there?") == "Ok."
    assert chain.memory.buffer == (
        "Human: Hello!\nAI: Hi there!\nHuman: How are you?\nAI: Fine.\n"
        "Human: Bye\nAI: Bye!\nHuman: Still there?\nAI: Ok."
    )
    assert chain.run(input="again") == "Hi there!"
    assert chain("x", return_only_outputs=True) == {"response": "Fine."}


def test_default_prompt_is_langchains_and_is_what_the_model_gets() -> None:
    seen: list[str] = []

    def model(prompt: StringPromptValue) -> str:
        seen.append(prompt.to_string())
        return "answer"

    chain = ConversationChain(llm=RunnableLambda(model))
    assert isinstance(chain.prompt, PromptTemplate)
    assert chain.prompt.template == DEFAULT_TEMPLATE
    chain.run("first")
    chain.run("second")
    assert seen[0] == DEFAULT_TEMPLATE.format(history="", input="first")
    assert seen[1].endswith(
        "Current conversation:\nHuman: first\nAI: answer\nHuman: second\nAI:"
    )
    assert seen[1].startswith("The following is a friendly conversation between a human "
                              "and an AI. The AI is talkative")


def test_default_prompt_is_documented_verbatim_in_the_readme() -> None:
    assert DEFAULT_TEMPLATE in README.read_text(encoding="utf-8")


def test_default_prompt_matches_langchain_when_installed() -> None:
    if importlib.util.find_spec("langchain_classic") is None:
        pytest.skip("langchain_classic is not installed")
    from langchain_classic.chains.conversation.prompt import (
        DEFAULT_TEMPLATE as LANGCHAIN_TEMPLATE,
    )

    assert DEFAULT_TEMPLATE == LANGCHAIN_TEMPLATE


def test_same_results_as_langchain_for_a_scripted_conversation() -> None:
    if importlib.util.find_spec("langchain_classic") is None:
        pytest.skip("langchain_classic is not installed")
    from langchain_classic.chains import ConversationChain as LCChain
    from langchain_classic.memory import ConversationBufferWindowMemory as LCWindow
    from langchain_core.language_models import FakeListChatModel as LCFake

    answers = ["one", "two", "three"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = LCChain(llm=LCFake(responses=answers), memory=LCWindow(k=1))
        expected = [theirs.invoke({"input": q}) for q in ("a", "b", "c")]
    ours = chain_of(*answers, memory=ConversationBufferWindowMemory(k=1))
    assert [ours.invoke({"input": q}) for q in ("a", "b", "c")] == expected


def test_runnable_llm_output_ai_message_gives_its_text() -> None:
    chain = ConversationChain(llm=RunnableLambda(
        lambda prompt: AIMessage([{"type": "text", "text": "block "}, "text"])))
    assert chain.run("hi") == "block text"


def test_runnable_llm_with_other_output_is_rejected() -> None:
    chain = ConversationChain(llm=RunnableLambda(lambda prompt: 42))
    with pytest.raises(InputError, match="returned int"):
        chain.run("hi")
    assert chain.memory.chat_memory.get_messages() == []


def test_nothing_is_stored_when_the_model_fails() -> None:
    def failing(prompt: Any) -> str:
        raise RuntimeError("model down")

    history = InMemoryChatMessageHistory()
    chain = ConversationChain(llm=RunnableLambda(failing),
                              memory=ConversationBufferMemory(chat_memory=history))
    with pytest.raises(RuntimeError, match="model down"):
        chain.run("hi")
    assert history.get_messages() == []


def test_prompt_variable_mismatch_names_both_sides() -> None:
    with pytest.raises(InputError) as info:
        chain_of("x", memory=ConversationBufferMemory(memory_key="chat"))
    message = str(info.value)
    assert "['history', 'input']" in message  # the prompt's side
    assert "['chat']" in message and "'input'" in message  # the memory's and input's side
    assert isinstance(info.value, ValueError)  # ported `except ValueError` still works

    with pytest.raises(InputError, match=r"\['topic'\] not given"):
        chain_of("x", prompt=PromptTemplate("{history} {input} {topic}"))
    with pytest.raises(InputError, match=r"\['history'\] not in the prompt"):
        chain_of("x", prompt=PromptTemplate("Human: {input}"))


def test_input_key_that_is_also_a_memory_key_is_rejected() -> None:
    with pytest.raises(
        InputError, match=r"input key history was also found in the memory keys \(\['history'\]"
    ):
        chain_of("x", input_key="history")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"llm": "gpt-4"}, "llm must be a chat model or another Runnable, got str"),
        ({"memory": InMemoryChatMessageHistory()}, "memory must be .* got InMemoryChat"),
        ({"prompt": "Hi {input}"}, "prompt must be a PromptTemplate .* got str"),
    ],
)
def test_wrong_argument_types_are_rejected(kwargs: dict[str, Any], match: str) -> None:
    kwargs.setdefault("llm", FakeListChatModel(responses=["x"]))
    with pytest.raises(InputError, match=match):
        ConversationChain(**kwargs)


def test_chat_prompt_with_messages_placeholder_gets_messages() -> None:
    seen: list[list[BaseMessage]] = []

    def model(prompt: Any) -> AIMessage:
        seen.append(prompt.to_messages())
        return AIMessage(f"answer {len(seen)}")

    prompt = ChatPromptTemplate.from_messages([
        ("system", "Be brief."), MessagesPlaceholder("history"), ("human", "{input}"),
    ])
    chain = ConversationChain(llm=RunnableLambda(model), prompt=prompt,
                              memory=ConversationBufferMemory(return_messages=True))
    first = chain.invoke({"input": "one"})
    assert first["history"] == []
    second = chain.invoke({"input": "two"})
    assert second["history"] == [HumanMessage("one"), AIMessage("answer 1")]
    assert seen[1] == [SystemMessage("Be brief."), HumanMessage("one"),
                       AIMessage("answer 1"), HumanMessage("two")]


def test_chat_prompt_with_placeholder_tuple_and_custom_keys() -> None:
    prompt = ChatPromptTemplate.from_messages([("placeholder", "{chat}"), ("human", "{q}")])
    memory = ConversationBufferMemory(memory_key="chat", return_messages=True)
    chain = chain_of("a1", "a2", prompt=prompt, memory=memory, input_key="q",
                     output_key="answer")
    assert chain.invoke({"q": "hi"}) == {"q": "hi", "chat": [], "answer": "a1"}
    assert chain.predict(q="again") == "a2"
    assert chain.input_keys == ["q"] and chain.output_keys == ["answer"]
    assert len(memory.chat_memory.get_messages()) == 4


def test_placeholder_with_a_text_memory_is_rejected_when_built() -> None:
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"),
                                               ("human", "{input}")])
    with pytest.raises(InputError, match="return_messages=True"):
        chain_of("x", prompt=prompt)


def test_text_prompt_with_a_messages_memory_is_rejected_when_built() -> None:
    with pytest.raises(InputError, match="return_messages=False"):
        chain_of("x", memory=ConversationBufferMemory(return_messages=True))


def test_chat_prompt_with_text_history_in_a_message_template() -> None:
    prompt = ChatPromptTemplate.from_messages([("system", "So far:\n{history}"),
                                               ("human", "{input}")])
    chain = chain_of("a1", "a2", prompt=prompt)
    chain.run("one")
    assert chain.invoke({"input": "two"})["history"] == "Human: one\nAI: a1"


def test_run_argument_errors() -> None:
    chain = chain_of("x")
    with pytest.raises(InputError, match="one positional argument, got 2"):
        chain.run("a", "b")
    with pytest.raises(InputError, match="needs the input"):
        chain.run()
    with pytest.raises(InputError, match="not both"):
        chain.run("a", input="b")
    with pytest.raises(InputError, match="missing the input key 'input'; got keys \\['q'\\]"):
        chain.invoke({"q": "hi"})


def test_verbose_prints_the_formatted_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    chain = chain_of("Hi!", verbose=True)
    chain.run("Hello!")
    printed = capsys.readouterr().out
    assert "> Entering new ConversationChain chain..." in printed
    assert "Current conversation:\n\nHuman: Hello!\nAI:" in printed
    assert "> Finished chain." in printed
    chain.verbose = False
    chain.run("quiet")
    assert capsys.readouterr().out == ""


def test_async_chain_matches_sync() -> None:
    sync_chain = chain_of("one", "two")
    expected = [sync_chain.invoke({"input": "a"}), sync_chain.invoke({"input": "b"})]
    history = RecordingHistory()
    async_chain = chain_of("one", "two",
                           memory=ConversationBufferMemory(chat_memory=history))

    async def talk() -> list[Any]:
        return [await async_chain.ainvoke({"input": "a"}), await async_chain.ainvoke("b"),
                await async_chain.apredict(input="c"), await async_chain.arun("d"),
                await async_chain.acall("e", return_only_outputs=True)]

    results = asyncio.run(talk())
    assert results[:2] == expected
    assert results[2:] == ["one", "two", {"response": "one"}]
    assert {name for name, _ in history.calls} == {"aget_messages", "aadd_messages"}
    assert len(history.get_messages()) == 10


# -- the memories ---------------------------------------------------------------------------


def test_save_context_stores_a_turn_with_one_add_messages_call() -> None:
    history = RecordingHistory()
    memory = ConversationBufferMemory(chat_memory=history)
    memory.save_context({"input": "hi"}, {"output": "hello"})
    assert history.calls == [("add_messages", 2)]
    assert history.get_messages() == [HumanMessage("hi"), AIMessage("hello")]


def test_chain_turn_is_one_read_and_one_write() -> None:
    history = RecordingHistory()
    chain = chain_of("x", memory=ConversationBufferMemory(chat_memory=history))
    chain.run("hi")
    assert history.calls == [("get_messages", None), ("add_messages", 2)]


def test_buffer_forms_and_prefixes() -> None:
    memory = ConversationBufferMemory(human_prefix="Me", ai_prefix="Bot")
    memory.save_context({"input": "hi"}, {"response": "hello"})
    assert memory.memory_variables == ["history"]
    assert memory.buffer == memory.buffer_as_str == "Me: hi\nBot: hello"
    assert memory.buffer_as_messages == [HumanMessage("hi"), AIMessage("hello")]
    assert memory.load_memory_variables({}) == {"history": "Me: hi\nBot: hello"}
    memory.return_messages = True
    buffer: object = memory.buffer
    assert buffer == [HumanMessage("hi"), AIMessage("hello")]
    assert memory.load_memory_variables() == {"history": memory.buffer_as_messages}
    memory.clear()
    assert memory.load_memory_variables({}) == {"history": []}


def test_input_key_inference_skips_memory_keys_and_stop() -> None:
    memory = ConversationBufferMemory(memory_key="chat")
    memory.save_context({"question": "q1", "chat": "old", "stop": ["\n"]}, {"text": "a1"})
    assert memory.chat_memory.get_messages() == [HumanMessage("q1"), AIMessage("a1")]


def test_ambiguous_input_keys_are_named() -> None:
    memory = ConversationBufferMemory()
    with pytest.raises(InputError, match=r"input key expected got \['a', 'b'\].*; set input_key"):
        memory.save_context({"a": "1", "b": "2"}, {"output": "x"})
    with pytest.raises(InputError, match=r"got \[\]"):
        memory.save_context({"history": "h"}, {"output": "x"})


def test_output_key_inference() -> None:
    memory = ConversationBufferMemory()
    memory.save_context({"input": "q"}, {"output": "picked", "other": "not"})
    assert memory.buffer_as_messages[-1] == AIMessage("picked")
    with pytest.raises(InputError, match=r"multiple output keys: \['x', 'y'\].*; set output_key"):
        memory.save_context({"input": "q"}, {"x": "1", "y": "2"})


def test_explicit_keys() -> None:
    memory = ConversationBufferMemory(input_key="b", output_key="y")
    memory.save_context({"a": "1", "b": "2"}, {"x": "3", "y": "4"})
    assert memory.buffer_as_str == "Human: 2\nAI: 4"
    with pytest.raises(InputError, match="key 'b' is not in the inputs"):
        memory.save_context({"a": "1"}, {"y": "4"})


def test_memory_rejects_a_non_history() -> None:
    with pytest.raises(InputError, match="chat_memory must be a chat message history"):
        ConversationBufferMemory(chat_memory=[])  # type: ignore[arg-type]


def test_window_memory_reads_only_the_window_and_keeps_everything() -> None:
    history = RecordingHistory()
    memory = ConversationBufferWindowMemory(k=2, chat_memory=history)
    for n in range(1, 5):
        memory.save_context({"input": f"q{n}"}, {"output": f"a{n}"})
    history.calls.clear()
    assert memory.buffer == "Human: q3\nAI: a3\nHuman: q4\nAI: a4"
    assert history.calls == [("get_messages", 4)]
    assert len(history.get_messages()) == 8
    assert ConversationBufferWindowMemory().k == 5


def test_window_memory_k_zero_and_bad_k() -> None:
    memory = ConversationBufferWindowMemory(k=0, return_messages=True)
    memory.save_context({"input": "q"}, {"output": "a"})
    assert memory.load_memory_variables({}) == {"history": []}
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(InputError, match="int >= 0"):
            ConversationBufferWindowMemory(k=bad)  # type: ignore[arg-type]


def test_window_memory_in_a_chain() -> None:
    chain = chain_of("a1", "a2", "a3", memory=ConversationBufferWindowMemory(k=1))
    chain.run("q1")
    chain.run("q2")
    assert chain.invoke({"input": "q3"})["history"] == "Human: q2\nAI: a2"


@pytest.mark.parametrize("make_history", [InMemoryChatMessageHistory, SyncOnlyHistory])
@pytest.mark.parametrize("window", [False, True])
def test_async_memory_matches_sync(make_history: type[BaseChatMessageHistory],
                                   window: bool) -> None:
    def make() -> BaseChatMemory:
        if window:
            return ConversationBufferWindowMemory(k=1, chat_memory=make_history())
        return ConversationBufferMemory(chat_memory=make_history())

    turns = [({"input": "q1"}, {"output": "a1"}), ({"input": "q2"}, {"output": "a2"})]
    sync_memory = make()
    for inputs, outputs in turns:
        sync_memory.save_context(inputs, outputs)
    expected = (sync_memory.load_memory_variables({}), sync_memory.buffer_as_messages)

    async def run() -> tuple[Any, ...]:
        memory = make()
        for inputs, outputs in turns:
            await memory.asave_context(inputs, outputs)
        loaded = await memory.aload_memory_variables({})
        messages = await memory.abuffer_as_messages()
        text = await memory.abuffer_as_str()
        buffer = await memory.abuffer()
        await memory.aclear()
        return loaded, messages, text, buffer, await memory.abuffer_as_messages()

    loaded, messages, text, buffer, after_clear = asyncio.run(run())
    assert (loaded, messages) == expected
    assert text == buffer == expected[0]["history"]
    assert after_clear == []


def test_a_subclass_selects_messages_through_the_hook() -> None:
    class LastMessageMemory(BaseChatMemory):
        def _select(self, messages: list[BaseMessage]) -> list[BaseMessage]:
            return messages[-1:]

    memory = LastMessageMemory()
    memory.save_context({"input": "q"}, {"output": "a"})
    assert memory.buffer == "AI: a"
    assert asyncio.run(memory.aload_memory_variables({})) == {"history": "AI: a"}
    assert "LastMessageMemory(chat_memory=" in repr(memory)


def test_errors_share_the_threadline_root() -> None:
    with pytest.raises(ThreadlineError):
        ConversationBufferWindowMemory(k=-1)


# -- over a file ------------------------------------------------------------------------------


def test_buffer_memory_over_a_file_history_persists(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("threadline.stores.file._history") is None:
        pytest.skip("threadline.stores.file._history is not written yet")
    from threadline import FileChatMessageHistory

    monkeypatch.chdir(tmp_path)
    chain = chain_of("Hi!", "You said hello.", memory=ConversationBufferMemory(
        chat_memory=FileChatMessageHistory("our_conversation.txt")))
    chain.run("Hello!")
    assert (tmp_path / "our_conversation.txt").exists()

    # A new process would see the same conversation: read it back through a new object.
    reopened = ConversationBufferMemory(chat_memory=FileChatMessageHistory(
        "our_conversation.txt"))
    assert reopened.buffer == "Human: Hello!\nAI: Hi!"
    again = chain_of("You said hello.", memory=reopened)
    assert again.invoke({"input": "What did I say?"})["history"] == "Human: Hello!\nAI: Hi!"
    window = ConversationBufferWindowMemory(
        k=1, chat_memory=FileChatMessageHistory("our_conversation.txt"))
    assert window.buffer == "Human: What did I say?\nAI: You said hello."
    assert asyncio.run(window.aload_memory_variables({})) == {"history": window.buffer}
