"""Ported from langchain-core 1.8.4, tests/unit_tests/runnables/test_history.py.

Imports threadline's objects instead of LangChain's; upstream async tests run through
``asyncio.run``. Upstream's ``LengthChatModel`` implements threadline's model-authoring
hook (``_generate`` returning the AIMessage) instead of LangChain's ``ChatResult``.
(This file replaces tests/core/test_with_history_conformance.py, whose scenarios beyond
the upstream suite are kept in the second part.)

Left out (LangChain internals, no user-visible behaviour in threadline):

- ``test_get_input_schema_input_dict``, ``test_get_output_schema``,
  ``test_get_input_schema_input_messages``: pydantic schemas.

Ported with a difference: ``test_get_output_messages_no_value_error`` and
``test_get_output_messages_with_value_error`` run the wrapper itself, not
``with_history.bound`` with a tracer subclass (``_RunnableLambdaWithRaiseError``,
callbacks/tracers): threadline's wrapper has no inner bound chain. Their visible part, which
outputs are stored and LangChain's error for the others, is asserted unchanged.

The second part pins the semantics of ``langchain_core/runnables/history.py`` that the
upstream suite does not exercise: the zero-argument factory, session keys at the top
level of the config, how ``history_factory_config`` keys meet the factory's parameters,
and every input and output shape the wrapper accepts.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from threadline import (
    AIMessage,
    BaseChatModel,
    BaseMessage,
    ChatPromptTemplate,
    ConfigurableFieldSpec,
    EchoChatModel,
    FakeListChatModel,
    HumanMessage,
    InMemoryChatMessageHistory,
    InputError,
    MessagesPlaceholder,
    MissingConfigError,
    RunnableConfig,
    RunnableLambda,
    RunnableWithMessageHistory,
    StrOutputParser,
    SystemMessage,
)

MODES = ["invoke", "ainvoke"]


def run(chain: RunnableWithMessageHistory, mode: str, input: Any, config: Any = None,
        **kwargs: Any) -> Any:
    """One call, through the sync or the async path."""
    if mode == "invoke":
        return chain.invoke(input, config, **kwargs)
    return asyncio.run(chain.ainvoke(input, config, **kwargs))


def stream(chain: RunnableWithMessageHistory, mode: str, input: Any, config: Any = None,
           **kwargs: Any) -> list[Any]:
    """The pieces of one streamed call, through ``stream`` or ``astream``."""
    if mode == "invoke":
        return list(chain.stream(input, config, **kwargs))

    async def collect(pieces: AsyncIterator[Any]) -> list[Any]:
        return [piece async for piece in pieces]

    return asyncio.run(collect(chain.astream(input, config, **kwargs)))


def _get_get_session_history(
    *, store: dict[str, InMemoryChatMessageHistory] | None = None
) -> Callable[..., InMemoryChatMessageHistory]:
    # Upstream's helper, kept as it is (``**_kwargs`` included).
    chat_history_store = store if store is not None else {}

    def get_session_history(session_id: str, **_kwargs: Any) -> InMemoryChatMessageHistory:
        if session_id not in chat_history_store:
            chat_history_store[session_id] = InMemoryChatMessageHistory()
        return chat_history_store[session_id]

    return get_session_history


def you_said(messages: list[BaseMessage]) -> str:
    return "you said: " + "\n".join(
        str(m.content) for m in messages if isinstance(m, HumanMessage)
    )


def you_said_with_history(params: dict[str, Any]) -> str:
    return "you said: " + "\n".join(
        [str(m.content) for m in params["history"] if isinstance(m, HumanMessage)]
        + [params["input"]]
    )


# -- ported from langchain-core tests/unit_tests/runnables/test_history.py ------------------


def test_interfaces() -> None:
    history = InMemoryChatMessageHistory()
    history.add_message(SystemMessage(content="system"))
    history.add_message(HumanMessage(content="human 1"))
    history.add_message(AIMessage(content="ai"))
    assert str(history) == "System: system\nHuman: human 1\nAI: ai"


def _you_said_lambda() -> RunnableLambda[Any, str]:
    return RunnableLambda[Any, str](
        lambda messages: (
            "you said: "
            + "\n".join(str(m.content) for m in messages if isinstance(m, HumanMessage))
        )
    )


def test_input_messages() -> None:
    runnable = _you_said_lambda()
    store: dict[str, InMemoryChatMessageHistory] = {}
    get_session_history = _get_get_session_history(store=store)
    with_history = RunnableWithMessageHistory(runnable, get_session_history)
    config: RunnableConfig = {"configurable": {"session_id": "1"}}
    output = with_history.invoke([HumanMessage(content="hello")], config)
    assert output == "you said: hello"
    output = with_history.invoke([HumanMessage(content="good bye")], config)
    assert output == "you said: hello\ngood bye"
    output = [*with_history.stream([HumanMessage(content="hi again")], config)]
    assert output == ["you said: hello\ngood bye\nhi again"]
    assert store == {
        "1": InMemoryChatMessageHistory(
            messages=[
                HumanMessage(content="hello"),
                AIMessage(content="you said: hello"),
                HumanMessage(content="good bye"),
                AIMessage(content="you said: hello\ngood bye"),
                HumanMessage(content="hi again"),
                AIMessage(content="you said: hello\ngood bye\nhi again"),
            ]
        )
    }


def test_input_messages_async() -> None:
    runnable = _you_said_lambda()
    store: dict[str, InMemoryChatMessageHistory] = {}
    get_session_history = _get_get_session_history(store=store)
    with_history = RunnableWithMessageHistory(runnable, get_session_history)
    # The session id at the top level of the config, as upstream gives it: LangChain's
    # config merging moves it into "configurable".
    config: Any = {"session_id": "1_async"}

    async def main() -> None:
        output = await with_history.ainvoke([HumanMessage(content="hello")], config)
        assert output == "you said: hello"
        output = await with_history.ainvoke([HumanMessage(content="good bye")], config)
        assert output == "you said: hello\ngood bye"
        output = [
            c async for c in with_history.astream([HumanMessage(content="hi again")], config)
        ]
        assert output == ["you said: hello\ngood bye\nhi again"]

    asyncio.run(main())
    assert store == {
        "1_async": InMemoryChatMessageHistory(
            messages=[
                HumanMessage(content="hello"),
                AIMessage(content="you said: hello"),
                HumanMessage(content="good bye"),
                AIMessage(content="you said: hello\ngood bye"),
                HumanMessage(content="hi again"),
                AIMessage(content="you said: hello\ngood bye\nhi again"),
            ]
        )
    }


def _input_dict_chain() -> RunnableWithMessageHistory:
    runnable = RunnableLambda[Any, str](lambda params: you_said(params["messages"]))
    return RunnableWithMessageHistory(
        runnable, _get_get_session_history(), input_messages_key="messages"
    )


def test_input_dict() -> None:
    with_history = _input_dict_chain()
    config: RunnableConfig = {"configurable": {"session_id": "2"}}
    output = with_history.invoke({"messages": [HumanMessage(content="hello")]}, config)
    assert output == "you said: hello"
    output = with_history.invoke({"messages": [HumanMessage(content="good bye")]}, config)
    assert output == "you said: hello\ngood bye"


def test_input_dict_async() -> None:
    with_history = _input_dict_chain()
    config: RunnableConfig = {"configurable": {"session_id": "2_async"}}

    async def main() -> None:
        output = await with_history.ainvoke({"messages": [HumanMessage(content="hello")]},
                                            config)
        assert output == "you said: hello"
        output = await with_history.ainvoke(
            {"messages": [HumanMessage(content="good bye")]}, config
        )
        assert output == "you said: hello\ngood bye"

    asyncio.run(main())


def _history_key_chain(runnable: Any, **keys: str) -> RunnableWithMessageHistory:
    return RunnableWithMessageHistory(
        runnable,
        _get_get_session_history(),
        input_messages_key="input",
        history_messages_key="history",
        **keys,
    )


def _twice(with_history: RunnableWithMessageHistory, session_id: str,
           asynchronous: bool) -> tuple[Any, Any]:
    """The outputs of {"input": "hello"} then {"input": "good bye"} in one session."""
    config: RunnableConfig = {"configurable": {"session_id": session_id}}
    if not asynchronous:
        return (with_history.invoke({"input": "hello"}, config),
                with_history.invoke({"input": "good bye"}, config))

    async def main() -> tuple[Any, Any]:
        return (await with_history.ainvoke({"input": "hello"}, config),
                await with_history.ainvoke({"input": "good bye"}, config))

    return asyncio.run(main())


def test_input_dict_with_history_key() -> None:
    with_history = _history_key_chain(RunnableLambda[Any, str](you_said_with_history))
    assert _twice(with_history, "3", False) == ("you said: hello", "you said: hello\ngood bye")


def test_input_dict_with_history_key_async() -> None:
    with_history = _history_key_chain(RunnableLambda[Any, str](you_said_with_history))
    assert _twice(with_history, "3_async", True) == (
        "you said: hello", "you said: hello\ngood bye"
    )


def _output_message_runnable() -> RunnableLambda[Any, AIMessage]:
    return RunnableLambda[Any, AIMessage](
        lambda params: AIMessage(content=you_said_with_history(params))
    )


def test_output_message() -> None:
    with_history = _history_key_chain(_output_message_runnable())
    assert _twice(with_history, "4", False) == (
        AIMessage(content="you said: hello"), AIMessage(content="you said: hello\ngood bye")
    )


def test_output_message_async() -> None:
    with_history = _history_key_chain(_output_message_runnable())
    assert _twice(with_history, "4_async", True) == (
        AIMessage(content="you said: hello"), AIMessage(content="you said: hello\ngood bye")
    )


class LengthChatModel(BaseChatModel):
    """A fake chat model that returns the length of the messages passed in."""

    def _generate(
        self, messages: list[BaseMessage], *, stop: list[str] | None = None, **kwargs: Any
    ) -> AIMessage:
        """Top Level call."""
        return AIMessage(content=str(len(messages)))

    @property
    def _llm_type(self) -> str:
        return "length-fake-chat-model"


def test_input_messages_output_message() -> None:
    runnable = LengthChatModel()
    get_session_history = _get_get_session_history()
    with_history = RunnableWithMessageHistory(runnable, get_session_history)
    config: RunnableConfig = {"configurable": {"session_id": "5"}}
    output = with_history.invoke([HumanMessage(content="hi")], config)
    assert output.content == "1"
    output = with_history.invoke([HumanMessage(content="hi")], config)
    assert output.content == "3"


def test_input_messages_output_message_async() -> None:
    runnable = LengthChatModel()
    get_session_history = _get_get_session_history()
    with_history = RunnableWithMessageHistory(runnable, get_session_history)
    config: RunnableConfig = {"configurable": {"session_id": "5_async"}}

    async def main() -> None:
        output = await with_history.ainvoke([HumanMessage(content="hi")], config)
        assert output.content == "1"
        output = await with_history.ainvoke([HumanMessage(content="hi")], config)
        assert output.content == "3"

    asyncio.run(main())


def _output_messages_runnable() -> RunnableLambda[Any, list[AIMessage]]:
    return RunnableLambda[Any, list[AIMessage]](
        lambda params: [AIMessage(content=you_said_with_history(params))]
    )


def test_output_messages() -> None:
    with_history = _history_key_chain(_output_messages_runnable())
    assert _twice(with_history, "6", False) == (
        [AIMessage(content="you said: hello")], [AIMessage(content="you said: hello\ngood bye")]
    )


def test_output_messages_async() -> None:
    with_history = _history_key_chain(_output_messages_runnable())
    assert _twice(with_history, "6_async", True) == (
        [AIMessage(content="you said: hello")], [AIMessage(content="you said: hello\ngood bye")]
    )


def _output_dict_runnable() -> RunnableLambda[Any, dict[str, list[AIMessage]]]:
    return RunnableLambda[Any, dict[str, list[AIMessage]]](
        lambda params: {"output": [AIMessage(content=you_said_with_history(params))]}
    )


def test_output_dict() -> None:
    with_history = _history_key_chain(_output_dict_runnable(), output_messages_key="output")
    assert _twice(with_history, "7", False) == (
        {"output": [AIMessage(content="you said: hello")]},
        {"output": [AIMessage(content="you said: hello\ngood bye")]},
    )


def test_output_dict_async() -> None:
    with_history = _history_key_chain(_output_dict_runnable(), output_messages_key="output")
    assert _twice(with_history, "7_async", True) == (
        {"output": [AIMessage(content="you said: hello")]},
        {"output": [AIMessage(content="you said: hello\ngood bye")]},
    )


def _user_and_conversation_specs() -> list[ConfigurableFieldSpec]:
    return [
        ConfigurableFieldSpec(
            id="user_id",
            annotation=str,
            name="User ID",
            description="Unique identifier for the user.",
            default="",
            is_shared=True,
        ),
        ConfigurableFieldSpec(
            id="conversation_id",
            annotation=str,
            name="Conversation ID",
            description="Unique identifier for the conversation.",
            default=None,
            is_shared=True,
        ),
    ]


def _custom_config_specs(asynchronous: bool) -> None:
    """The body of test_using_custom_config_specs (and its _async twin)."""

    def _fake_llm(params: dict[str, Any]) -> list[BaseMessage]:
        return [AIMessage(content=you_said(params["messages"]))]

    store: dict[tuple[str, str], InMemoryChatMessageHistory] = {}

    def get_session_history(user_id: str, conversation_id: str) -> InMemoryChatMessageHistory:
        if (user_id, conversation_id) not in store:
            store[user_id, conversation_id] = InMemoryChatMessageHistory()
        return store[user_id, conversation_id]

    with_message_history = RunnableWithMessageHistory(
        RunnableLambda(_fake_llm),
        get_session_history=get_session_history,
        input_messages_key="messages",
        history_messages_key="history",
        history_factory_config=_user_and_conversation_specs(),
    )
    suffix = "_async" if asynchronous else ""
    user1, user2, conv = f"user1{suffix}", f"user2{suffix}", f"1{suffix}"

    def call(text: str, user: str) -> Any:
        config: RunnableConfig = {"configurable": {"user_id": user, "conversation_id": conv}}
        return run(with_message_history, "ainvoke" if asynchronous else "invoke",
                   {"messages": [HumanMessage(content=text)]}, config)

    assert call("hello", user1) == [AIMessage(content="you said: hello")]
    assert store == {
        (user1, conv): InMemoryChatMessageHistory(
            messages=[HumanMessage(content="hello"), AIMessage(content="you said: hello")]
        )
    }
    assert call("goodbye", user1) == [AIMessage(content="you said: goodbye")]
    assert store == {
        (user1, conv): InMemoryChatMessageHistory(
            messages=[
                HumanMessage(content="hello"),
                AIMessage(content="you said: hello"),
                HumanMessage(content="goodbye"),
                AIMessage(content="you said: goodbye"),
            ]
        )
    }
    assert call("meow", user2) == [AIMessage(content="you said: meow")]
    assert store == {
        (user1, conv): InMemoryChatMessageHistory(
            messages=[
                HumanMessage(content="hello"),
                AIMessage(content="you said: hello"),
                HumanMessage(content="goodbye"),
                AIMessage(content="you said: goodbye"),
            ]
        ),
        (user2, conv): InMemoryChatMessageHistory(
            messages=[HumanMessage(content="meow"), AIMessage(content="you said: meow")]
        ),
    }


def test_using_custom_config_specs() -> None:
    """Test that we can configure which keys should be passed to the session factory."""
    _custom_config_specs(asynchronous=False)


def test_using_custom_config_specs_async() -> None:
    """Test that we can configure which keys should be passed to the session factory."""
    _custom_config_specs(asynchronous=True)


def test_ignore_session_id() -> None:
    """Test without config."""

    def _fake_llm(messages: list[BaseMessage]) -> list[BaseMessage]:
        return [AIMessage(content=you_said(messages))]

    runnable = RunnableLambda(_fake_llm)
    history = InMemoryChatMessageHistory()
    with_message_history = RunnableWithMessageHistory(runnable, lambda: history)
    _ = with_message_history.invoke("hello")
    _ = with_message_history.invoke("hello again")
    assert len(history.messages) == 4


def test_get_output_messages_no_value_error() -> None:
    runnable = _you_said_lambda()
    store: dict[str, InMemoryChatMessageHistory] = {}
    get_session_history = _get_get_session_history(store=store)
    with_history = RunnableWithMessageHistory(runnable, get_session_history)
    config: RunnableConfig = {"configurable": {"session_id": "1"}}
    may_catch_value_error = None
    try:
        with_history.invoke([HumanMessage(content="hello")], config)
    except ValueError as e:
        may_catch_value_error = e
    assert may_catch_value_error is None
    assert store["1"].messages == [HumanMessage("hello"), AIMessage("you said: hello")]


def test_get_output_messages_with_value_error() -> None:
    illegal_bool_message = False
    runnable = RunnableLambda[Any, bool](lambda _: illegal_bool_message)
    store: dict[str, InMemoryChatMessageHistory] = {}
    get_session_history = _get_get_session_history(store=store)
    with_history = RunnableWithMessageHistory(runnable, get_session_history)
    config: RunnableConfig = {"configurable": {"session_id": "1"}}

    with pytest.raises(
        ValueError,
        match=re.escape(
            "Expected str, BaseMessage, list[BaseMessage], or tuple[BaseMessage]."
            f" Got {illegal_bool_message}."
        ),
    ):
        with_history.invoke([HumanMessage(content="hello")], config)

    illegal_int_message = 123
    runnable2 = RunnableLambda[Any, int](lambda _: illegal_int_message)
    with_history = RunnableWithMessageHistory(runnable2, get_session_history)

    with pytest.raises(
        ValueError,
        match=re.escape(
            "Expected str, BaseMessage, list[BaseMessage], or tuple[BaseMessage]."
            f" Got {illegal_int_message}."
        ),
    ):
        with_history.invoke([HumanMessage(content="hello")], config)
    # Nothing of a failed turn is stored.
    assert store["1"].messages == []


# -- the semantics of langchain_core/runnables/history.py, beyond the upstream suite ---------


def pirate_chain() -> Any:
    # The chain of the seed example (LangChain's "Migrating from ConversationalChain").
    prompt = ChatPromptTemplate.from_messages([
        ("system", "You are a pirate. Answer the following questions as best you can."),
        ("placeholder", "{chat_history}"),
        ("human", "{input}"),
    ])
    return prompt | FakeListChatModel(responses=["Arr!", "Aye."]) | StrOutputParser()


@pytest.mark.parametrize("mode", MODES)
def test_zero_argument_factory_needs_no_session_id(mode: str) -> None:
    # history.py _merge_configs: a factory without parameters is called with none, and
    # no key is required (the seed example, verbatim apart from the model).
    history = InMemoryChatMessageHistory()

    def get_history() -> InMemoryChatMessageHistory:
        return history

    wrapped_chain = RunnableWithMessageHistory(
        pirate_chain(), get_history, history_messages_key="chat_history"
    )
    assert run(wrapped_chain, mode, {"input": "how are you?"}) == "Arr!"
    # A session id, if given anyway, is ignored rather than refused.
    assert run(wrapped_chain, mode, {"input": "and you?"}, {"session_id": "x"}) == "Aye."
    assert stream(wrapped_chain, mode, {"input": "again"}) == ["Arr!"]
    assert [m.content for m in history.messages] == [
        "how are you?", "Arr!", "and you?", "Aye.", "again", "Arr!"
    ]


def test_zero_argument_factory_with_several_keys_is_refused() -> None:
    # history.py: with several keys the factory's parameters must be those keys.
    with pytest.raises(InputError, match=r"\['conversation_id', 'user_id'\] do not match"):
        RunnableWithMessageHistory(
            pirate_chain(),
            lambda: InMemoryChatMessageHistory(),
            history_messages_key="chat_history",
            history_factory_config=_user_and_conversation_specs(),
        )


@pytest.mark.parametrize("mode", MODES)
def test_session_id_at_the_top_level_of_the_config(mode: str) -> None:
    # LangChain's ensure_config moves keys that are not config keys into "configurable".
    store: dict[str, InMemoryChatMessageHistory] = {}
    chain = RunnableWithMessageHistory(
        RunnableLambda(you_said), _get_get_session_history(store=store)
    )
    assert run(chain, mode, "one", {"session_id": "a"}) == "you said: one"
    assert stream(chain, mode, "two", {"session_id": "a", "tags": ["t"]}) == [
        "you said: one\ntwo"
    ]
    # The top-level key wins over "configurable", as in ensure_config; None is no value.
    run(chain, mode, "three", {"session_id": "b", "configurable": {"session_id": "a"}})
    run(chain, mode, "four", {"session_id": None, "configurable": {"session_id": "b"}})
    assert [m.content for m in store["a"].messages if isinstance(m, HumanMessage)] == [
        "one", "two"
    ]
    assert [m.content for m in store["b"].messages if isinstance(m, HumanMessage)] == [
        "three", "four"
    ]
    with pytest.raises(MissingConfigError, match="session_id"):
        run(chain, mode, "five", {"session_id": None})


def test_top_level_keys_reach_the_wrapped_runnable_in_configurable() -> None:
    # LangChain runs the wrapped runnable with the merged config.
    seen: list[Any] = []

    def spy(messages: list[BaseMessage], config: Any) -> str:
        seen.append(config)
        return "ok"

    chain = RunnableWithMessageHistory(RunnableLambda(spy), _get_get_session_history())
    chain.invoke("hi", {"session_id": "s", "tags": ["t"], "configurable": {"x": 1}})
    assert seen[0]["configurable"] == {"x": 1, "session_id": "s"}
    assert seen[0]["tags"] == ["t"] and "session_id" not in seen[0]


@pytest.mark.parametrize("mode", MODES)
def test_custom_keys_at_the_top_level_of_the_config(mode: str) -> None:
    calls: list[tuple[str, str]] = []

    def get_history(user_id: str, conversation_id: str) -> InMemoryChatMessageHistory:
        calls.append((user_id, conversation_id))
        return InMemoryChatMessageHistory()

    chain = RunnableWithMessageHistory(
        RunnableLambda(you_said), get_history,
        history_factory_config=_user_and_conversation_specs(),
    )
    run(chain, mode, "hi", {"user_id": "u", "conversation_id": "c"})
    run(chain, mode, "hi", {"user_id": "u", "configurable": {"conversation_id": "d"}})
    assert calls == [("u", "c"), ("u", "d")]


def test_history_factory_config_defaults_do_not_fill_missing_keys() -> None:
    # history.py never reads ConfigurableFieldSpec.default: a missing key is an error
    # even when its spec has a default (here "" for user_id, as in LangChain's docs),
    # rather than every caller without an id sharing the "" conversation.
    chain = RunnableWithMessageHistory(
        RunnableLambda(you_said),
        lambda user_id, conversation_id: InMemoryChatMessageHistory(),
        history_factory_config=_user_and_conversation_specs(),
    )
    with pytest.raises(MissingConfigError) as info:
        chain.invoke("hi", {"configurable": {"conversation_id": "c"}})
    assert info.value.missing == ["user_id"]
    message = str(info.value)
    assert "user_id" in message and "config={'configurable'" in message


def test_history_factory_config_keys_must_match_the_factory_parameters() -> None:
    # history.py: "Expected keys [...] do not match parameter names [...] of
    # get_session_history" (LangChain finds out at the first call; we do when built).
    with pytest.raises(InputError) as info:
        RunnableWithMessageHistory(
            RunnableLambda(you_said),
            lambda a, b: InMemoryChatMessageHistory(),
            history_factory_config=_user_and_conversation_specs(),
        )
    assert "['conversation_id', 'user_id'] do not match" in str(info.value)
    assert "['a', 'b']" in str(info.value)

    def needs_more(user_id: str, conversation_id: str, tenant: str) -> Any:
        return InMemoryChatMessageHistory()

    with pytest.raises(InputError, match="tenant"):
        RunnableWithMessageHistory(
            RunnableLambda(you_said), needs_more,
            history_factory_config=_user_and_conversation_specs(),
        )


def test_factory_taking_keyword_arguments_takes_any_keys() -> None:
    # Beyond LangChain (which refuses a factory with **kwargs when there are several
    # keys): such a factory, like Store.history, gets each key by name.
    calls: list[dict[str, Any]] = []

    def get_history(*, ttl: float | None = None, **keys: str) -> InMemoryChatMessageHistory:
        calls.append(keys)
        return InMemoryChatMessageHistory()

    chain = RunnableWithMessageHistory(
        RunnableLambda(you_said), get_history,
        history_factory_config=_user_and_conversation_specs(),
    )
    chain.invoke("hi", {"configurable": {"user_id": "u", "conversation_id": "c"}})
    assert calls == [{"user_id": "u", "conversation_id": "c"}]


def test_one_custom_key_is_passed_positionally() -> None:
    # history.py: with one key the factory gets its value positionally, whatever the
    # parameter is called; keyword-only factories get it by name (LangChain: TypeError).
    got: list[str] = []

    def by_user(uid: str) -> InMemoryChatMessageHistory:
        got.append(uid)
        return InMemoryChatMessageHistory()

    chain = RunnableWithMessageHistory(
        RunnableLambda(you_said),
        by_user,
        history_factory_config=[ConfigurableFieldSpec(id="user_id", annotation=str)],
    )
    chain.invoke("hi", {"configurable": {"user_id": "u1"}})

    def keyword_only(*, session_id: str) -> InMemoryChatMessageHistory:
        got.append(session_id)
        return InMemoryChatMessageHistory()

    RunnableWithMessageHistory(RunnableLambda(you_said), keyword_only).invoke(
        "hi", {"configurable": {"session_id": "s1"}}
    )
    assert got == ["u1", "s1"]


class TextAccessor(str):
    """Like LangChain 1.x's ``TextAccessor``: what its StrOutputParser and ``.text`` return."""

    __slots__ = ()


def spy_chain(output: Any) -> tuple[RunnableWithMessageHistory, list[Any],
                                    dict[str, InMemoryChatMessageHistory]]:
    received: list[Any] = []
    store: dict[str, InMemoryChatMessageHistory] = {}

    def runnable(value: Any) -> Any:
        received.append(value)
        return output

    chain = RunnableWithMessageHistory(
        RunnableLambda(runnable), _get_get_session_history(store=store)
    )
    return chain, received, store


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("given", "new"),
    [
        ("hi", [HumanMessage("hi")]),
        (TextAccessor("hi"), [HumanMessage("hi")]),
        (HumanMessage("hi"), [HumanMessage("hi")]),
        ([SystemMessage("s"), HumanMessage("hi")], [SystemMessage("s"), HumanMessage("hi")]),
        ((HumanMessage("hi"),), [HumanMessage("hi")]),
        ([[HumanMessage("hi")]], [HumanMessage("hi")]),  # a chat model's batch shape
        ([], []),
        ({"question": "hi"}, [HumanMessage("hi")]),  # a dict with one key
        ({"input": [HumanMessage("hi")], "other": 1}, [HumanMessage("hi")]),
    ],
    ids=["str", "str-subclass", "message", "list", "tuple", "list-in-list", "empty",
         "dict-one-key", "dict-input-key"],
)
def test_input_shapes(mode: str, given: Any, new: list[BaseMessage]) -> None:
    # history.py _get_input_messages. Without input/history keys the wrapped runnable
    # is given the messages, history first, even when the input was a dict.
    chain, received, store = spy_chain("ok")
    config: Any = {"configurable": {"session_id": "s"}}
    run(chain, mode, given, config)
    run(chain, mode, given, config)
    assert received[1] == [*new, AIMessage("ok"), *new]
    assert store["s"].messages == [*new, AIMessage("ok"), *new, AIMessage("ok")]
    assert all(type(m.content) is str for m in store["s"].messages)


def test_input_shapes_that_are_refused() -> None:
    chain, _, store = spy_chain("ok")
    with pytest.raises(InputError, match="one list of messages"):
        chain.invoke([[HumanMessage("a")], [HumanMessage("b")]], session_id="s")
    with pytest.raises(InputError, match=r"cannot read the new message.*float.*a str"):
        chain.invoke(3.5, session_id="s")
    with pytest.raises(InputError, match="from a list holding int; expected"):
        chain.invoke([HumanMessage("a"), 1], session_id="s")
    keyed = RunnableWithMessageHistory(
        RunnableLambda(lambda _: "ok"), _get_get_session_history(store=store),
        input_messages_key="question",
    )
    with pytest.raises(InputError, match=r"input_messages_key=.question.*must be a dict"):
        keyed.invoke("hi", session_id="s")
    assert store["s"].messages == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("output", "stored"),
    [
        ("text", [AIMessage("text")]),
        (TextAccessor("text"), [AIMessage("text")]),
        (AIMessage("m"), [AIMessage("m")]),
        ([AIMessage("a"), AIMessage("b")], [AIMessage("a"), AIMessage("b")]),
        ((AIMessage("a"),), [AIMessage("a")]),
        ({"output": "o", "x": 1}, [AIMessage("o")]),
        ({"only": TextAccessor("one")}, [AIMessage("one")]),
    ],
    ids=["str", "str-subclass", "message", "list", "tuple", "dict-output-key",
         "dict-one-key"],
)
def test_output_shapes(mode: str, output: Any, stored: list[BaseMessage]) -> None:
    # history.py _get_output_messages
    chain, _, store = spy_chain(output)
    assert run(chain, mode, "q", {"configurable": {"session_id": "s"}}) == output
    assert store["s"].messages == [HumanMessage("q"), *stored]
    assert all(type(m.content) is str for m in store["s"].messages)


def test_output_messages_key() -> None:
    store: dict[str, InMemoryChatMessageHistory] = {}
    chain = RunnableWithMessageHistory(
        RunnableLambda(lambda _: {"answer": TextAccessor("a"), "sources": ["x"]}),
        _get_get_session_history(store=store),
        output_messages_key="answer",
    )
    chain.invoke("q", session_id="s")
    assert store["s"].messages == [HumanMessage("q"), AIMessage("a")]
    with pytest.raises(InputError, match="no key 'output'"):
        RunnableWithMessageHistory(
            RunnableLambda(lambda _: {"answer": "a", "sources": []}), _get_get_session_history()
        ).invoke("q", session_id="s")


@pytest.mark.parametrize("mode", MODES)
def test_history_key_gets_the_history_and_input_key_the_question(mode: str) -> None:
    # history.py: with history_messages_key the stored messages go into that key; the
    # input key keeps what the caller gave, and is where the new message is read.
    received: list[dict[str, Any]] = []

    def runnable(value: dict[str, Any]) -> str:
        received.append(value)
        return "answer"

    store: dict[str, InMemoryChatMessageHistory] = {}
    chain = RunnableWithMessageHistory(
        RunnableLambda(runnable), _get_get_session_history(store=store),
        input_messages_key="question", history_messages_key="history",
    )
    config: Any = {"configurable": {"session_id": "s"}}
    run(chain, mode, {"question": "q1", "ability": "math"}, config)
    run(chain, mode, {"question": "q2", "ability": "math"}, config)
    assert received[1] == {
        "question": "q2",
        "ability": "math",
        "history": [HumanMessage("q1"), AIMessage("answer")],
    }
    assert store["s"].messages == [
        HumanMessage("q1"), AIMessage("answer"), HumanMessage("q2"), AIMessage("answer")
    ]


@pytest.mark.parametrize("mode", MODES)
def test_langchain_style_chain_with_placeholder_and_str_parser(mode: str) -> None:
    # The docs' chain: MessagesPlaceholder for the history, StrOutputParser at the end;
    # the parser's str subclass output (LangChain 1.x) is stored as a plain AIMessage.
    prompt = ChatPromptTemplate.from_messages([
        ("system", "You're an assistant who's good at {ability}"),
        MessagesPlaceholder(variable_name="history"),
        ("human", "{question}"),
    ])
    store: dict[str, InMemoryChatMessageHistory] = {}
    chain = RunnableWithMessageHistory(
        prompt | EchoChatModel() | StrOutputParser() | RunnableLambda(TextAccessor),
        _get_get_session_history(store=store),
        input_messages_key="question",
        history_messages_key="history",
    )
    config: Any = {"configurable": {"session_id": "foo"}}
    assert run(chain, mode, {"ability": "math", "question": "cosine?"}, config) == "cosine?"
    assert stream(chain, mode, {"ability": "math", "question": "inverse?"}, config) == [
        "inverse?"
    ]
    assert store["foo"].messages == [
        HumanMessage("cosine?"), AIMessage("cosine?"), HumanMessage("inverse?"),
        AIMessage("inverse?"),
    ]


def test_str_output_parser_returns_a_plain_str_for_a_str_subclass() -> None:
    parser = StrOutputParser()
    for value in (parser.invoke(TextAccessor("x")), asyncio.run(parser.ainvoke(TextAccessor("x"))),
                  *parser.transform(iter([TextAccessor("x")]))):
        assert value == "x" and type(value) is str
