from __future__ import annotations

import asyncio

import pytest

from threadline import (
    AIMessage,
    ChatPromptTemplate,
    ChatPromptValue,
    HumanMessage,
    HumanMessagePromptTemplate,
    InputError,
    MessagesPlaceholder,
    MissingVariableError,
    PromptTemplate,
    SystemMessage,
    ThreadlineError,
)


def test_from_messages_with_all_part_kinds() -> None:
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You are {persona}."),
            SystemMessage("fixed"),
            MessagesPlaceholder("history"),
            ("user", "{q}"),
            ("assistant", "ok {q}"),
            ("placeholder", "{extra}"),
        ]
    )
    assert prompt.input_variables == ["history", "persona", "q"]
    messages = prompt.invoke(
        {"persona": "terse", "q": "hi", "history": [AIMessage("h")]}
    ).to_messages()
    assert messages == [
        SystemMessage("You are terse."),
        SystemMessage("fixed"),
        AIMessage("h"),
        HumanMessage("hi"),
        AIMessage("ok hi"),
    ]


def test_placeholder_missing_or_empty_is_nothing() -> None:
    prompt = ChatPromptTemplate.from_messages([("placeholder", "{chat_history}"), ("human", "{q}")])
    assert prompt.input_variables == ["q"]
    assert prompt.invoke({"q": "a"}).to_messages() == [HumanMessage("a")]
    assert prompt.invoke({"q": "a", "chat_history": []}).to_messages() == [HumanMessage("a")]
    coerced = prompt.invoke({"q": "a", "chat_history": [("ai", "x"), "y"]}).to_messages()
    assert coerced == [AIMessage("x"), HumanMessage("y"), HumanMessage("a")]


def test_required_placeholder_missing_is_named() -> None:
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{q}")])
    with pytest.raises(MissingVariableError) as info:
        prompt.invoke({"q": "x"})
    assert info.value.missing == ["history"]
    assert "history" in str(info.value) and "'q'" in str(info.value)


def test_missing_variable_is_our_error_and_a_key_error() -> None:
    prompt = ChatPromptTemplate.from_template("Tell me about {topic} in {style}")
    with pytest.raises(MissingVariableError) as info:
        prompt.invoke({"topic": "cats"})
    assert isinstance(info.value, ThreadlineError)
    assert isinstance(info.value, KeyError)
    assert str(info.value).startswith("ChatPromptTemplate is missing variable(s) {'style'}")
    assert "given: ['topic']" in str(info.value)


def test_from_template_and_single_variable_shortcut() -> None:
    prompt = ChatPromptTemplate.from_template("Q: {q}")
    assert prompt.invoke("why?").to_messages() == [HumanMessage("Q: why?")]
    assert prompt.format_messages(q="x") == [HumanMessage("Q: x")]
    assert prompt.format(q="x") == "Human: Q: x"


def test_partial_with_values_and_callables() -> None:
    prompt = ChatPromptTemplate.from_messages([("system", "{a} {b}"), ("human", "{c}")])
    partial = prompt.partial(a="A", b=lambda: "B")
    assert partial.input_variables == ["c"]
    assert partial.invoke({"c": "C"}).to_messages() == [SystemMessage("A B"), HumanMessage("C")]
    assert prompt.input_variables == ["a", "b", "c"]


def test_escaped_braces_and_format_specs() -> None:
    prompt = PromptTemplate.from_template("{{literal}} {x:>4} {y!r}")
    assert prompt.format(x="a", y="b") == "{literal}    a 'b'"


@pytest.mark.parametrize("template", ["{a.__class__}", "{a[0]}", "{}", "{0}"])
def test_attribute_and_index_access_are_rejected(template: str) -> None:
    with pytest.raises(InputError, match="plain"):
        PromptTemplate.from_template(template)


def test_unbalanced_braces() -> None:
    with pytest.raises(InputError, match="invalid template"):
        PromptTemplate.from_template("{oops")


def test_unknown_role_lists_the_valid_ones() -> None:
    with pytest.raises(InputError, match="Unexpected message type: robot; use one of"):
        ChatPromptTemplate.from_messages([("robot", "x")])


def test_prompt_template() -> None:
    prompt = PromptTemplate(template="Hi {name}", input_variables=["name"])
    assert prompt.invoke({"name": "Bob"}).to_string() == "Hi Bob"
    assert prompt.invoke({"name": "Bob"}).to_messages() == [HumanMessage("Hi Bob")]
    assert prompt.partial(name="Al").format() == "Hi Al"
    # As in LangChain, a given input_variables is checked only with validate_template.
    assert PromptTemplate(template="Hi {name}", input_variables=["other"]).input_variables == [
        "name"
    ]
    with pytest.raises(InputError, match="Invalid prompt schema"):
        PromptTemplate(template="Hi {name}", input_variables=["other"], validate_template=True)
    with pytest.raises(InputError, match="Unsupported template format: bar"):
        PromptTemplate(template="Hi", template_format="bar")


def test_message_prompt_templates_and_concatenation() -> None:
    prompt = ChatPromptTemplate(
        [MessagesPlaceholder("chat_history"), HumanMessagePromptTemplate.from_template("{text}")]
    )
    prompt = prompt + ("ai", "fixed {text}")  # noqa: RUF005
    value = prompt.invoke({"chat_history": [], "text": "t"})
    assert isinstance(value, ChatPromptValue)
    assert value.to_messages() == [HumanMessage("t"), AIMessage("fixed t")]


def test_ainvoke_matches_invoke() -> None:
    prompt = ChatPromptTemplate.from_messages([("human", "{q}")])
    assert asyncio.run(prompt.ainvoke({"q": "x"})) == prompt.invoke({"q": "x"})


def test_non_dict_input_with_several_variables() -> None:
    prompt = ChatPromptTemplate.from_messages([("human", "{a}{b}")])
    with pytest.raises(InputError, match="expects a dict"):
        prompt.invoke("x")


def test_mustache_escapes_and_rejects_unbalanced_sections() -> None:
    prompt = PromptTemplate("{{x}} {{{x}}} {{=<% %>=}}<% x %>", template_format="mustache")
    escaped = "&lt;a &amp; &quot;b&quot;&gt;"
    assert prompt.format(x='<a & "b">') == f'{escaped} <a & "b"> {escaped}'
    with pytest.raises(InputError, match="never closed"):
        PromptTemplate("{{#a}}x", template_format="mustache")
    with pytest.raises(InputError, match="does not close"):
        PromptTemplate("{{#a}}x{{/b}}", template_format="mustache")


def test_message_template_class_as_role_and_multipart_content() -> None:
    prompt = ChatPromptTemplate.from_messages(
        [
            (HumanMessagePromptTemplate, "{q}"),
            ("ai", ["{a}", {"type": "image_url", "image_url": "{u}"}]),
        ]
    )
    assert prompt.input_variables == ["a", "q", "u"]
    assert prompt.invoke({"q": "Q", "a": "", "u": "http://x"}).to_messages() == [
        HumanMessage("Q"),
        AIMessage([{"type": "image_url", "image_url": {"url": "http://x"}}]),
    ]
