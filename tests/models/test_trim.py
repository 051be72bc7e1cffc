"""trim_messages: the same answers as langchain_core's on the same inputs, in O(n)."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from langchain_core import messages as lc

import threadline as tl
from threadline import (
    AIMessage,
    BaseMessage,
    ChatPromptTemplate,
    HumanMessage,
    InputError,
    MessagesPlaceholder,
    RunnableLambda,
    SystemMessage,
    ToolMessage,
    trim_messages,
)
from threadline.models._counter import TokenCounter

# (type, content, extra fields): built once for each library.
CONVERSATION: list[tuple[str, Any, dict[str, Any]]] = [
    ("system", "You are terse.\nAnswer in one line.", {}),
    ("human", "first question\nwith two lines", {}),
    ("ai", "first answer", {}),
    ("human", "second question", {}),
    ("ai", [{"type": "text", "text": "block one"}, {"type": "text", "text": "block two"},
            {"type": "text", "text": "block three"}], {}),
    ("human", "third\nquestion\nin three lines", {}),
    ("ai", "calling a tool", {"tool_calls": [{"name": "f", "args": {"x": 1}, "id": "c1"}]}),
    ("tool", "tool result", {"tool_call_id": "c1"}),
    ("ai", "final answer\nsplit over\nthree lines", {}),
    ("human", "last question", {}),
]

OURS = {"system": SystemMessage, "human": HumanMessage, "ai": AIMessage, "tool": ToolMessage}
# What LangChain's docs recommend passing (its defaults, and so threadline's, are False/None).
RECOMMENDED: dict[str, Any] = {"include_system": True, "start_on": "human"}

THEIRS = {"system": lc.SystemMessage, "human": lc.HumanMessage, "ai": lc.AIMessage,
          "tool": lc.ToolMessage}


def build(kind: str, spec: list[tuple[str, Any, dict[str, Any]]]) -> list[Any]:
    classes = OURS if kind == "ours" else THEIRS
    out = []
    for number, (type_, content, extra) in enumerate(spec):
        fields = dict(extra)
        if "tool_calls" in fields and kind == "theirs":
            fields["tool_calls"] = [{**c, "type": "tool_call"} for c in fields["tool_calls"]]
        out.append(classes[type_](content, id=f"m{number}", **fields))
    return out


def shape(messages: list[Any]) -> list[tuple[str, Any, str | None]]:
    return [(m.type, m.content, m.id) for m in messages]


# Token counters that mean the same thing on both sides.
def ours_per_message(message: BaseMessage) -> int:
    return 2 + len(message.text) // 5


def theirs_per_message(message: lc.BaseMessage) -> int:
    return 2 + len(message.text) // 5


# LangChain tells a one-message counter by its annotation being the class itself; under
# ``from __future__ import annotations`` it is a string (which threadline accepts).
theirs_per_message.__annotations__["message"] = lc.BaseMessage


def list_counter(messages: list[Any]) -> int:
    """LangChain's documented dummy counter: 3 + 4 a block + 3 per message."""
    count = 0
    for message in messages:
        if isinstance(message.content, str):
            count += 10
        else:
            count += 6 + 4 * len(message.content)
    return count


COUNTERS = {
    "len": (len, len),
    "per-message": (ours_per_message, theirs_per_message),
    "list": (list_counter, list_counter),
    "approximate": ("approximate", "approximate"),
}

LAST_OPTIONS = list(itertools.product(
    [True, False],                                   # include_system
    [None, "human", ("human", lc.AIMessage, AIMessage)],  # start_on
    [None, "human", ("ai", "tool")],                 # end_on
    [False, True],                                   # allow_partial
))
FIRST_OPTIONS = list(itertools.product([None, "human", ("ai",)], [False, True]))


def _types_for(kind: str, types: Any) -> Any:
    """The same type filter with each library's classes."""
    if isinstance(types, tuple):
        return [t for t in types if isinstance(t, str) or
                (t.__module__.startswith("langchain") == (kind == "theirs"))]
    return types


def _budgets(counter_name: str) -> range:
    return range(0, 12) if counter_name == "len" else range(0, 130, 3)


@pytest.mark.parametrize("counter_name", list(COUNTERS))
def test_strategy_last_matches_langchain(counter_name: str) -> None:
    ours_counter, theirs_counter = COUNTERS[counter_name]
    ours, theirs = build("ours", CONVERSATION), build("theirs", CONVERSATION)
    checked = 0
    for include_system, start_on, end_on, allow_partial in LAST_OPTIONS:
        for budget in _budgets(counter_name):
            expected = lc.trim_messages(
                theirs, max_tokens=budget, token_counter=theirs_counter, strategy="last",
                include_system=include_system, start_on=_types_for("theirs", start_on),
                end_on=end_on, allow_partial=allow_partial)
            got = trim_messages(
                ours, max_tokens=budget, token_counter=ours_counter, strategy="last",
                include_system=include_system, start_on=_types_for("ours", start_on),
                end_on=end_on, allow_partial=allow_partial)
            assert shape(got) == shape(expected), (include_system, start_on, end_on,
                                                   allow_partial, budget)
            checked += 1
    assert checked > 100


@pytest.mark.parametrize("counter_name", list(COUNTERS))
def test_strategy_first_matches_langchain(counter_name: str) -> None:
    ours_counter, theirs_counter = COUNTERS[counter_name]
    ours, theirs = build("ours", CONVERSATION), build("theirs", CONVERSATION)
    for end_on, allow_partial in FIRST_OPTIONS:
        for budget in _budgets(counter_name):
            expected = lc.trim_messages(theirs, max_tokens=budget, token_counter=theirs_counter,
                                        strategy="first", end_on=end_on,
                                        allow_partial=allow_partial)
            got = trim_messages(ours, max_tokens=budget, token_counter=ours_counter,
                                strategy="first", end_on=end_on, allow_partial=allow_partial)
            assert shape(got) == shape(expected), (end_on, allow_partial, budget)


def test_custom_text_splitter_matches_langchain() -> None:
    def words(text: str) -> list[str]:
        parts = text.split(" ")
        return [p + " " for p in parts[:-1]] + parts[-1:]

    spec = [("human", "one two three four five six seven eight", {}),
            ("ai", "nine ten eleven twelve", {})]
    for budget in range(0, 30):
        expected = lc.trim_messages(build("theirs", spec), max_tokens=budget,
                                    token_counter=theirs_per_message, strategy="last",
                                    allow_partial=True, text_splitter=words)
        got = trim_messages(build("ours", spec), max_tokens=budget,
                            token_counter=ours_per_message, strategy="last", start_on=None,
                            include_system=False, allow_partial=True, text_splitter=words)
        assert shape(got) == shape(expected), budget


def test_langchain_docs_example() -> None:
    history = [SystemMessage("you're a good assistant, you always respond with a joke."),
               HumanMessage("i wonder why it's called langchain"),
               AIMessage('Well, I guess they thought "WordRope" and "SentenceString" just '
                         "didn't have the same ring to it!"),
               HumanMessage("and who is harrison chasing anyways"),
               AIMessage("Hmmm let me think.\n\nWhy, he's probably chasing after the last "
                         "cup of coffee in the office!"),
               HumanMessage("what do you call a speechless parrot")]
    kept = trim_messages(history, max_tokens=4, token_counter=len, **RECOMMENDED)
    assert [m.content for m in kept] == [history[0].content, history[3].content,
                                         history[4].content, history[5].content]


def test_defaults_are_langchains() -> None:
    history = [SystemMessage("s"), HumanMessage("h1"), AIMessage("a1"), HumanMessage("h2"),
               AIMessage("a2")]
    assert trim_messages(history, max_tokens=3, token_counter=len) == history[2:]
    # What LangChain's docs recommend passing, and threadline's own callers pass.
    assert trim_messages(history, max_tokens=3, token_counter=len, include_system=True,
                         start_on="human") == [
        SystemMessage("s"), HumanMessage("h2"), AIMessage("a2")]


def test_first_strategy_rejects_last_only_options() -> None:
    history = [HumanMessage("h")]
    with pytest.raises(InputError, match="start_on"):
        trim_messages(history, max_tokens=3, token_counter=len, strategy="first",
                      start_on="human")
    with pytest.raises(InputError, match="include_system"):
        trim_messages(history, max_tokens=3, token_counter=len, strategy="first",
                      include_system=True)
    with pytest.raises(InputError, match="strategy"):
        trim_messages(history, max_tokens=3, token_counter=len, strategy="middle")  # type: ignore[call-overload]
    with pytest.raises(InputError, match="token_counter"):
        trim_messages(history, max_tokens=3, token_counter=42)  # type: ignore[call-overload]


def test_empty_and_message_likes() -> None:
    assert trim_messages([], max_tokens=10, token_counter=len) == []
    kept = trim_messages([("system", "s"), ("human", "h"), {"role": "assistant", "content": "a"}],
                         max_tokens=10, token_counter=len)
    assert kept == [SystemMessage("s"), HumanMessage("h"), AIMessage("a")]


def test_without_messages_returns_a_runnable_for_a_chain() -> None:
    trimmer = trim_messages(max_tokens=3, token_counter=len, **RECOMMENDED)
    assert isinstance(trimmer, RunnableLambda)
    prompt = ChatPromptTemplate.from_messages(
        [("system", "be brief"), MessagesPlaceholder("history"), ("human", "{question}")])
    history = [HumanMessage("h1"), AIMessage("a1"), HumanMessage("h2"), AIMessage("a2")]
    chain = prompt | trimmer
    kept = chain.invoke({"history": history, "question": "q"})
    # The last 2 of the 5 non-system messages are [a2, q]; start_on="human" drops a2.
    assert kept == [SystemMessage("be brief"), HumanMessage("q")]

    theirs = lc.trim_messages(max_tokens=3, token_counter=len, include_system=True,
                              start_on="human")
    lc_prompt = __import__("langchain_core.prompts", fromlist=["x"]).ChatPromptTemplate
    lc_chain = lc_prompt.from_messages(
        [("system", "be brief"), ("placeholder", "{history}"), ("human", "{question}")]) | theirs
    lc_kept = lc_chain.invoke({"history": [("human", "h1"), ("ai", "a1"), ("human", "h2"),
                                           ("ai", "a2")], "question": "q"})
    assert [(m.type, m.content) for m in lc_kept] == [(m.type, m.content) for m in kept]


def test_runnable_async_matches_sync() -> None:
    import asyncio

    trimmer = trim_messages(max_tokens=2, token_counter=len, start_on=None)
    history = [HumanMessage("h1"), AIMessage("a1"), HumanMessage("h2")]
    assert asyncio.run(trimmer.ainvoke(history)) == trimmer.invoke(history) == history[1:]


class CountingCounter(TokenCounter):
    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def message_tokens(self, message: BaseMessage) -> int:
        self.calls += 1
        return 10


def test_long_conversation_counts_each_kept_message_once() -> None:
    history: list[BaseMessage] = [SystemMessage("s")]
    for number in range(10_000):
        history += [HumanMessage(f"question {number}"), AIMessage(f"answer {number}")]
    counter = CountingCounter()
    kept = trim_messages(history, max_tokens=1000, token_counter=counter, **RECOMMENDED)
    assert kept[0] == history[0] and kept[1].type == "human" and kept[-1] == history[-1]
    assert len(kept) == 1 + 98  # 99 fit the 990 tokens left; the AI message first is dropped
    assert counter.calls <= 1 + 100 + 1  # system, the kept ones, the one that overflowed


def test_long_conversation_is_fast_with_a_real_counter() -> None:
    history: list[BaseMessage] = [SystemMessage("You are a helpful assistant.")]
    for number in range(2_000):
        history += [HumanMessage(f"What is {number} + {number}?"),
                    AIMessage(f"{number} + {number} = {2 * number}.")]
    start = time.perf_counter()
    kept = trim_messages(history, max_tokens=100_000, token_counter="gpt-4o", **RECOMMENDED)
    elapsed = time.perf_counter() - start
    assert kept == history  # everything fits
    assert elapsed < 2.0
    start = time.perf_counter()
    for _ in range(20):
        trim_messages(history, max_tokens=2_000, token_counter="gpt-4o", **RECOMMENDED)
    assert (time.perf_counter() - start) / 20 < 0.05  # counts are cached per text


def test_list_counter_is_called_logarithmically() -> None:
    calls = 0

    def by_list(messages: list[BaseMessage]) -> int:
        nonlocal calls
        calls += 1
        return len(messages)

    history = [HumanMessage(str(n)) for n in range(1024)]
    assert len(trim_messages(history, max_tokens=100, token_counter=by_list)) == 100
    assert calls <= 1 + 11


def test_chat_model_and_model_name_counters() -> None:
    history = [SystemMessage("s"), HumanMessage("hello world"), AIMessage("hi"),
               HumanMessage("hello world")]
    # gpt-4o: system 3+1+1, human 3+1+2, reply 3, counted (as LangChain does) once with
    # the system message and once with the rest: 8 + 9 = 17.
    by_name = trim_messages(history, max_tokens=17, token_counter="gpt-4o", **RECOMMENDED)
    assert by_name == [SystemMessage("s"), HumanMessage("hello world")]
    assert trim_messages(history, max_tokens=16, token_counter="gpt-4o",
                         **RECOMMENDED) == [SystemMessage("s")]
    fake = tl.FakeListChatModel(responses=["x"])  # unknown name: the approximation
    assert trim_messages(history, max_tokens=100, token_counter=fake) == history


def test_token_counter_shortcuts_and_bad_counters() -> None:
    history = [HumanMessage("h1"), AIMessage("a1"), HumanMessage("h2")]
    with pytest.raises(InputError, match="Invalid token_counter shortcut 'llama3'"):
        trim_messages(history, max_tokens=10, token_counter="llama3")
    # As LangChain's, a trimmer rejects a wrong counter when it runs.
    trimmer = trim_messages(max_tokens=10, token_counter=42)  # type: ignore[call-overload]
    with pytest.raises(InputError, match="Received object of type <class 'int'>"):
        trimmer.invoke(history)
    # count_tokens_approximately as a function is walked once, as "approximate" is.
    assert trim_messages(history, max_tokens=12, token_counter=tl.count_tokens_approximately,
                         start_on=None) == trim_messages(
        history, max_tokens=12, token_counter="approximate", start_on=None) == history[1:]


def test_bound_model_and_text_splitter_object() -> None:
    class Counting(tl.FakeListChatModel):
        def get_num_tokens_from_messages(self, messages: list[BaseMessage]) -> int:
            return sum(len(m.text) for m in messages)

    class Splitter:  # what trim_messages uses of a LangChain TextSplitter
        def split_text(self, text: str) -> list[str]:
            return list(text)

    bound = Counting(responses=["x"]).bind(stop=["\n"])
    kept = trim_messages([HumanMessage("abcdef")], max_tokens=4, token_counter=bound,
                         strategy="first", allow_partial=True, text_splitter=Splitter())
    assert kept == [HumanMessage("abcd")]
