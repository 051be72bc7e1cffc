"""Chat prompts with history placeholders behave as LangChain's.

Ported from langchain-core 1.8.4's ``tests/unit_tests/prompts/test_chat.py``: the tests
about ``from_messages``, ``MessagesPlaceholder`` and ``("placeholder", ...)``, which is
how a history reaches a prompt. Each test names the upstream test it ports. The rest of
that file (mustache and jinja2 templates, image and multipart content, serialisation,
pydantic input schemas, ``input_variables`` validation) is not about histories.
"""

from __future__ import annotations

import asyncio

import pytest

from threadline import (
    AIMessage,
    ChatPromptTemplate,
    HumanMessage,
    InputError,
    MessagesPlaceholder,
    SystemMessage,
    get_buffer_string,
)


def test_chat_prompt_template_from_messages_using_role_strings() -> None:
    # upstream: test_chat_prompt_template_from_messages_using_role_strings (threadline
    # has no aformat_messages; its async twin here is ainvoke)
    template = ChatPromptTemplate.from_messages(
        [
            ("system", "You are a helpful AI bot. Your name is {name}."),
            ("human", "Hello, how are you doing?"),
            ("ai", "I'm doing well, thanks!"),
            ("human", "{user_input}"),
        ]
    )
    expected = [
        SystemMessage(content="You are a helpful AI bot. Your name is Bob."),
        HumanMessage(content="Hello, how are you doing?"),
        AIMessage(content="I'm doing well, thanks!"),
        HumanMessage(content="What is your name?"),
    ]
    assert template.format_messages(name="Bob", user_input="What is your name?") == expected
    value = asyncio.run(template.ainvoke({"name": "Bob", "user_input": "What is your name?"}))
    assert value.to_messages() == expected


def test_chat_prompt_template_message_class_tuples_with_placeholder() -> None:
    # upstream: test_chat_prompt_template_message_class_tuples_with_placeholder
    template = ChatPromptTemplate.from_messages(
        [
            (SystemMessage, "You are a helpful assistant."),
            MessagesPlaceholder("history"),
            (HumanMessage, "{question}"),
        ]
    )
    messages = template.format_messages(
        history=[HumanMessage(content="Hi"), AIMessage(content="Hello!")],
        question="How are you?",
    )
    assert messages == [
        SystemMessage("You are a helpful assistant."),
        HumanMessage("Hi"),
        AIMessage("Hello!"),
        HumanMessage("How are you?"),
    ]


def test_messages_placeholder() -> None:
    # upstream: test_messages_placeholder
    prompt = MessagesPlaceholder("history")
    with pytest.raises(KeyError):
        prompt.format_messages()
    prompt = MessagesPlaceholder("history", optional=True)
    assert prompt.format_messages() == []
    assert prompt.format_messages(
        history=[("system", "You are an AI assistant."), "Hello!"]
    ) == [
        SystemMessage(content="You are an AI assistant."),
        HumanMessage(content="Hello!"),
    ]


def test_messages_placeholder_with_max() -> None:
    # upstream: test_messages_placeholder_with_max
    history = [AIMessage(content="1"), AIMessage(content="2"), AIMessage(content="3")]
    prompt = MessagesPlaceholder("history")
    assert prompt.format_messages(history=history) == history
    prompt = MessagesPlaceholder("history", n_messages=2)
    assert prompt.format_messages(history=history) == [AIMessage("2"), AIMessage("3")]


def test_chat_prompt_message_placeholder_partial() -> None:
    # upstream: test_chat_prompt_message_placeholder_partial
    prompt = ChatPromptTemplate([MessagesPlaceholder("history")])
    prompt = prompt.partial(history=[("system", "foo")])
    assert prompt.format_messages() == [SystemMessage(content="foo")]
    assert prompt.format_messages(history=[("system", "bar")]) == [SystemMessage("bar")]

    prompt = ChatPromptTemplate([MessagesPlaceholder("history", optional=True)])
    assert prompt.format_messages() == []
    prompt = prompt.partial(history=[("system", "foo")])
    assert prompt.format_messages() == [SystemMessage(content="foo")]


def test_chat_prompt_message_placeholder_tuple() -> None:
    # upstream: test_chat_prompt_message_placeholder_tuple
    prompt = ChatPromptTemplate([("placeholder", "{convo}")])
    assert prompt.format_messages(convo=[("user", "foo")]) == [HumanMessage(content="foo")]
    assert prompt.format_messages() == []

    # ("placeholder", [name, optional]): here optional=False, so the variable is required.
    optional_prompt = ChatPromptTemplate([("placeholder", ["{convo}", False])])
    assert optional_prompt.format_messages(convo=[("user", "foo")]) == [HumanMessage("foo")]
    with pytest.raises(KeyError):
        optional_prompt.format_messages()


def test_chat_prompt_message_placeholder_dict() -> None:
    # upstream: test_chat_prompt_message_placeholder_dict
    prompt = ChatPromptTemplate([{"role": "placeholder", "content": "{convo}"}])
    assert prompt.format_messages(convo=[("user", "foo")]) == [HumanMessage(content="foo")]
    assert prompt.format_messages() == []

    optional_prompt = ChatPromptTemplate([{"role": "placeholder", "content": ["{convo}", False]}])
    assert optional_prompt.format_messages(convo=[("user", "foo")]) == [HumanMessage("foo")]
    with pytest.raises(KeyError):
        optional_prompt.format_messages()


def test_chat_prompt_message_dict() -> None:
    # upstream: test_chat_prompt_message_dict (our errors are InputErrors, ValueErrors
    # that say what is accepted, rather than LangChain's exact wording)
    prompt = ChatPromptTemplate(
        [{"role": "system", "content": "foo"}, {"role": "user", "content": "bar"}]
    )
    assert prompt.format_messages() == [SystemMessage(content="foo"), HumanMessage("bar")]
    with pytest.raises(ValueError, match="False"):
        ChatPromptTemplate([{"role": "system", "content": False}])
    with pytest.raises(ValueError, match="'foo'"):
        ChatPromptTemplate([{"role": "foo", "content": "foo"}])


def test_messages_prompt_accepts_list() -> None:
    # upstream: test_messages_prompt_accepts_list. A prompt whose only variable is a
    # placeholder takes the message list itself. LangChain raises TypeError otherwise;
    # ours is an InputError (a ValueError) naming the keys expected.
    prompt = ChatPromptTemplate([MessagesPlaceholder("history")])
    value = prompt.invoke([("user", "Hi there")])
    assert value.to_messages() == [HumanMessage(content="Hi there")]
    value = asyncio.run(prompt.ainvoke([("user", "Hi there")]))
    assert value.to_messages() == [HumanMessage(content="Hi there")]

    prompt = ChatPromptTemplate([("system", "You are a {foo}"), MessagesPlaceholder("history")])
    with pytest.raises(InputError, match=r"expects a dict with keys \['foo', 'history'\]"):
        prompt.invoke([("user", "Hi there")])
    with pytest.raises(InputError, match="expects a dict"):
        asyncio.run(prompt.ainvoke([("user", "Hi there")]))


def test_chat_message_partial() -> None:
    # upstream: test_chat_message_partial
    template = ChatPromptTemplate(
        [
            ("system", "You are an AI assistant named {name}."),
            ("human", "Hi I'm {user}"),
            ("ai", "Hi there, {user}, I'm {name}."),
            ("human", "{input}"),
        ]
    )
    template2 = template.partial(user="Lucy", name="R2D2")
    with pytest.raises(KeyError):
        template.format_messages(input="hello")
    expected = [
        SystemMessage(content="You are an AI assistant named R2D2."),
        HumanMessage(content="Hi I'm Lucy"),
        AIMessage(content="Hi there, Lucy, I'm R2D2."),
        HumanMessage(content="hello"),
    ]
    assert template2.format_messages(input="hello") == expected
    assert template2.format(input="hello") == get_buffer_string(expected)


def test_chat_message_partial_composition() -> None:
    # upstream: test_chat_message_partial_composition
    prompt = ChatPromptTemplate.from_messages([("system", "Prompt {x} {y}")]).partial(x="1")
    appendix = ChatPromptTemplate.from_messages([("system", "Appendix {z}")])
    assert (prompt + appendix).format_messages(y="2", z="3") == [
        SystemMessage(content="Prompt 1 2"),
        SystemMessage(content="Appendix 3"),
    ]
