"""Ported from langchain-core 1.8.4, tests/unit_tests/prompts/test_prompt.py.

``PromptTemplate`` in its three formats (f-string, mustache, jinja2), imported from
threadline. Upstream test names are kept.

Left out (internal):
- test_asdict_replaces_deprecated_dict: ``asdict``/``dict`` serialisation and its
  deprecation warning.
- test_prompt_invoke_with_metadata, test_prompt_ainvoke_with_metadata: run metadata and
  tags seen by a callback tracer (callbacks/tracers).
- The ``get_input_jsonschema`` assertions and snapshots inside
  test_mustache_prompt_from_template (pydantic input schemas); the formatting and
  ``input_variables`` assertions are kept.

Differences: errors are threadline's ``InputError`` (a ``ValueError``) and
``MissingVariableError`` (a ``KeyError``); upstream reads ``prompt_file.txt`` from its
data directory, here the same text is written to a temporary file.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
from collections import ChainMap, UserDict
from pathlib import Path
from types import MappingProxyType
from typing import Any
from unittest import mock

import pytest

from threadline import PromptTemplate

# jinja2 is an optional dependency: only its own tests skip without it.
needs_jinja2 = pytest.mark.skipif(
    importlib.util.find_spec("jinja2") is None, reason="jinja2 is not installed"
)


def test_prompt_valid() -> None:
    template = "This is a {foo} test."
    input_variables = ["foo"]
    prompt = PromptTemplate(input_variables=input_variables, template=template)
    assert prompt.template == template
    assert prompt.input_variables == input_variables


def test_from_file_encoding(tmp_path: Path) -> None:
    template = "This is a {foo} test with special character €."
    input_variables = ["foo"]
    file_path = tmp_path / "template.txt"
    file_path.write_text(template, encoding="cp1252")

    prompt = PromptTemplate.from_file(file_path, encoding="cp1252")
    assert prompt.template == template
    assert prompt.input_variables == input_variables

    with pytest.raises(UnicodeDecodeError):
        PromptTemplate.from_file(file_path, encoding="utf-8")


def test_prompt_from_template() -> None:
    template = "This is a {foo} test."
    prompt = PromptTemplate.from_template(template)
    assert prompt == PromptTemplate(template=template, input_variables=["foo"])

    template = "This {bar} is a {foo} test."
    prompt = PromptTemplate.from_template(template)
    assert prompt == PromptTemplate(template=template, input_variables=["bar", "foo"])

    template = "This {bar} is a {foo} test {foo}."
    prompt = PromptTemplate.from_template(template)
    assert prompt == PromptTemplate(template=template, input_variables=["bar", "foo"])


def test_mustache_prompt_from_template() -> None:
    template = "This is a {{foo}} test."
    prompt = PromptTemplate.from_template(template, template_format="mustache")
    assert prompt.format(foo="bar") == "This is a bar test."
    assert prompt.input_variables == ["foo"]

    template = "This {{bar}} is a {{foo}} test."
    prompt = PromptTemplate.from_template(template, template_format="mustache")
    assert prompt.format(bar="baz", foo="bar") == "This baz is a bar test."
    assert prompt.input_variables == ["bar", "foo"]

    template = "This {{bar}} is a {{foo}} test {{&foo}}."
    prompt = PromptTemplate.from_template(template, template_format="mustache")
    assert prompt.format(bar="baz", foo="bar") == "This baz is a bar test bar."
    assert prompt.input_variables == ["bar", "foo"]

    # Nested variables.
    template = "This {{obj.bar}} is a {{obj.foo}} test {{{foo}}}."
    prompt = PromptTemplate.from_template(template, template_format="mustache")
    assert prompt.format(obj={"bar": "foo", "foo": "bar"}, foo="baz") == (
        "This foo is a bar test baz."
    )
    assert prompt.input_variables == ["foo", "obj"]

    # . variables
    template = "This {{.}} is a test."
    prompt = PromptTemplate.from_template(template, template_format="mustache")
    assert prompt.format(foo="baz") == ("This {'foo': 'baz'} is a test.")
    assert prompt.input_variables == []

    # section/context variables
    template = """This{{#foo}}
        {{bar}}
    {{/foo}}is a test."""
    prompt = PromptTemplate.from_template(template, template_format="mustache")
    assert prompt.format(foo={"bar": "yo"}) == (
        """This
        yo
    is a test."""
    )
    assert prompt.input_variables == ["foo"]

    # more complex nested section/context variables
    template = """This{{#foo}}
        {{bar}}
        {{#baz}}
            {{qux}}
        {{/baz}}
        {{quux}}
    {{/foo}}is a test."""
    prompt = PromptTemplate.from_template(template, template_format="mustache")
    assert prompt.format(
        foo={"bar": "yo", "baz": [{"qux": "wassup"}], "quux": "hello"}
    ) == (
        """This
        yo
            wassup
        hello
    is a test."""
    )
    assert prompt.input_variables == ["foo"]

    # triply nested section/context variables
    template = """This{{#foo}}
        {{bar}}
        {{#baz.qux}}
            {{#barfoo}}
                {{foobar}}
            {{/barfoo}}
            {{foobar}}
        {{/baz.qux}}
        {{quux}}
    {{/foo}}is a test."""
    prompt = PromptTemplate.from_template(template, template_format="mustache")
    assert prompt.format(
        foo={
            "bar": "yo",
            "baz": {
                "qux": [
                    {"foobar": "wassup"},
                    {"foobar": "yoyo", "barfoo": {"foobar": "hello there"}},
                ]
            },
            "quux": "hello",
        }
    ) == (
        """This
        yo
            wassup
                hello there
            yoyo
        hello
    is a test."""
    )
    assert prompt.input_variables == ["foo"]

    # section/context variables with repeats
    template = """This{{#foo}}
        {{bar}}
    {{/foo}}is a test."""
    prompt = PromptTemplate.from_template(template, template_format="mustache")
    assert prompt.format(foo=[{"bar": "yo"}, {"bar": "hello"}]) == (
        "This\n        yo\n    \n        hello\n    is a test."
    )
    assert prompt.input_variables == ["foo"]

    template = """This{{^foo}}
        no foos
    {{/foo}}is a test."""
    prompt = PromptTemplate.from_template(template, template_format="mustache")
    assert prompt.format() == (
        """This
        no foos
    is a test."""
    )
    assert prompt.input_variables == ["foo"]


def test_mustache_prompt_with_non_dict_mapping() -> None:
    template = "Hello {{user.name}}"
    prompt = PromptTemplate.from_template(template, template_format="mustache")

    assert prompt.format(user=ChainMap({"name": "Alice"})) == "Hello Alice"
    assert prompt.format(user=UserDict({"name": "Alice"})) == "Hello Alice"
    assert prompt.format(user=MappingProxyType({"name": "Alice"})) == "Hello Alice"


def test_prompt_from_template_with_partial_variables() -> None:
    template = "This is a {foo} test {bar}."
    partial_variables = {"bar": "baz"}
    prompt = PromptTemplate.from_template(template, partial_variables=partial_variables)
    expected_prompt = PromptTemplate(
        template=template,
        input_variables=["foo"],
        partial_variables=partial_variables,
    )
    assert prompt == expected_prompt


def test_prompt_missing_input_variables() -> None:
    template = "This is a {foo} test."
    input_variables: list[str] = []
    with pytest.raises(
        ValueError,
        match=re.escape("check for mismatched or missing input parameters from []"),
    ):
        PromptTemplate(
            input_variables=input_variables, template=template, validate_template=True
        )
    assert PromptTemplate(
        input_variables=input_variables, template=template
    ).input_variables == ["foo"]


def test_prompt_empty_input_variable() -> None:
    with pytest.raises(
        ValueError,
        match=re.escape("check for mismatched or missing input parameters from ['']"),
    ):
        PromptTemplate(input_variables=[""], template="{}", validate_template=True)


def test_prompt_wrong_input_variables() -> None:
    template = "This is a {foo} test."
    input_variables = ["bar"]
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Invalid prompt schema; "
            "check for mismatched or missing input parameters from ['bar']"
        ),
    ):
        PromptTemplate(
            input_variables=input_variables, template=template, validate_template=True
        )
    assert PromptTemplate(
        input_variables=input_variables, template=template
    ).input_variables == ["foo"]


def test_prompt_from_examples_valid() -> None:
    template = """Test Prompt:

Question: who are you?
Answer: foo

Question: what are you?
Answer: bar

Question: {question}
Answer:"""
    input_variables = ["question"]
    example_separator = "\n\n"
    prefix = """Test Prompt:"""
    suffix = """Question: {question}\nAnswer:"""
    examples = [
        """Question: who are you?\nAnswer: foo""",
        """Question: what are you?\nAnswer: bar""",
    ]
    prompt_from_examples = PromptTemplate.from_examples(
        examples,
        suffix,
        input_variables,
        example_separator=example_separator,
        prefix=prefix,
    )
    prompt_from_template = PromptTemplate(
        input_variables=input_variables, template=template
    )
    assert prompt_from_examples.template == prompt_from_template.template
    assert prompt_from_examples.input_variables == prompt_from_template.input_variables


def test_prompt_invalid_template_format() -> None:
    template = "This is a {foo} test."
    input_variables = ["foo"]
    with pytest.raises(ValueError, match="Unsupported template format: bar"):
        PromptTemplate(
            input_variables=input_variables,
            template=template,
            template_format="bar",
        )


def test_prompt_from_file(tmp_path: Path) -> None:
    template_file = tmp_path / "prompt_file.txt"
    template_file.write_text("Question: {question}\nAnswer:", encoding="utf-8")
    prompt = PromptTemplate.from_file(template_file)
    assert prompt.template == "Question: {question}\nAnswer:"


def test_prompt_from_file_with_partial_variables() -> None:
    template = "This is a {foo} test {bar}."
    partial_variables = {"bar": "baz"}
    with mock.patch("pathlib.Path.open", mock.mock_open(read_data=template)):
        prompt = PromptTemplate.from_file(
            "mock_file_name", partial_variables=partial_variables
        )
    expected_prompt = PromptTemplate(
        template=template,
        input_variables=["foo"],
        partial_variables=partial_variables,
    )
    assert prompt == expected_prompt


def test_partial_init_string() -> None:
    template = "This is a {foo} test."
    prompt = PromptTemplate(
        input_variables=[], template=template, partial_variables={"foo": 1}
    )
    assert prompt.template == template
    assert prompt.input_variables == []
    assert prompt.format() == "This is a 1 test."


def test_partial_init_func() -> None:
    template = "This is a {foo} test."
    prompt = PromptTemplate(
        input_variables=[], template=template, partial_variables={"foo": lambda: 2}
    )
    assert prompt.template == template
    assert prompt.input_variables == []
    assert prompt.format() == "This is a 2 test."


def test_partial() -> None:
    template = "This is a {foo} test."
    prompt = PromptTemplate(input_variables=["foo"], template=template)
    assert prompt.template == template
    assert prompt.input_variables == ["foo"]
    new_prompt = prompt.partial(foo="3")
    assert new_prompt.format() == "This is a 3 test."
    assert prompt.format(foo="foo") == "This is a foo test."


@needs_jinja2
def test_prompt_from_jinja2_template() -> None:
    template = """Hello there
There is no variable here {
Will it get confused{ }?
    """
    prompt = PromptTemplate.from_template(template, template_format="jinja2")
    expected_prompt = PromptTemplate(
        template=template, input_variables=[], template_format="jinja2"
    )
    assert prompt == expected_prompt


@needs_jinja2
def test_basic_sandboxing_with_jinja2() -> None:
    jinja2 = pytest.importorskip("jinja2")
    template = " {{''.__class__.__bases__[0] }} "  # malicious code
    prompt = PromptTemplate.from_template(template, template_format="jinja2")
    with pytest.raises(jinja2.exceptions.SecurityError):
        prompt.format()


_JINJA2_MULTI = """\
Hello world

Your variable: {{ foo }}

{# This will not get rendered #}

{% if bar %}
You just set bar boolean variable to true
{% endif %}

{% for i in foo_list %}
{{ i }}
{% endfor %}
"""


@needs_jinja2
def test_prompt_from_jinja2_template_multiple_inputs() -> None:
    prompt = PromptTemplate.from_template(_JINJA2_MULTI, template_format="jinja2")
    expected_prompt = PromptTemplate(
        template=_JINJA2_MULTI,
        input_variables=["bar", "foo", "foo_list"],
        template_format="jinja2",
    )
    assert prompt == expected_prompt
    assert prompt.input_variables == ["bar", "foo", "foo_list"]


@needs_jinja2
def test_prompt_from_jinja2_template_multiple_inputs_with_repeats() -> None:
    template = _JINJA2_MULTI + """
{% if bar %}
Your variable again: {{ foo }}
{% endif %}
"""
    prompt = PromptTemplate.from_template(template, template_format="jinja2")
    expected_prompt = PromptTemplate(
        template=template,
        input_variables=["bar", "foo", "foo_list"],
        template_format="jinja2",
    )
    assert prompt == expected_prompt
    assert prompt.input_variables == ["bar", "foo", "foo_list"]


@needs_jinja2
def test_prompt_jinja2_missing_input_variables() -> None:
    template = "This is a {{ foo }} test."
    input_variables: list[str] = []
    with pytest.warns(UserWarning, match="Missing variables: {'foo'}"):
        PromptTemplate(
            input_variables=input_variables,
            template=template,
            template_format="jinja2",
            validate_template=True,
        )
    assert PromptTemplate(
        input_variables=input_variables, template=template, template_format="jinja2"
    ).input_variables == ["foo"]


@needs_jinja2
def test_prompt_jinja2_extra_input_variables() -> None:
    template = "This is a {{ foo }} test."
    input_variables = ["foo", "bar"]
    with pytest.warns(UserWarning, match="Extra variables: {'bar'}"):
        PromptTemplate(
            input_variables=input_variables,
            template=template,
            template_format="jinja2",
            validate_template=True,
        )
    assert PromptTemplate(
        input_variables=input_variables, template=template, template_format="jinja2"
    ).input_variables == ["foo"]


@needs_jinja2
def test_prompt_jinja2_wrong_input_variables() -> None:
    template = "This is a {{ foo }} test."
    input_variables = ["bar"]
    with pytest.warns(
        UserWarning, match="Missing variables: {'foo'} Extra variables: {'bar'}"
    ):
        PromptTemplate(
            input_variables=input_variables,
            template=template,
            template_format="jinja2",
            validate_template=True,
        )
    assert PromptTemplate(
        input_variables=input_variables, template=template, template_format="jinja2"
    ).input_variables == ["foo"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", "0"),
        (0, "0"),
        (0.0, "0.0"),
        (False, "False"),
        ("", ""),
        (None, {"mustache": "", "f-string": "None"}),
        ([], {"mustache": "", "f-string": "[]"}),
        ({}, {"mustache": "", "f-string": "{}"}),
    ],
)
@pytest.mark.parametrize("template_format", ["f-string", "mustache"])
def test_prompt_falsy_vars(
    template_format: str, value: Any, expected: str | dict[str, str]
) -> None:
    template = "{my_var}" if template_format == "f-string" else "{{my_var}}"
    prompt = PromptTemplate.from_template(template, template_format=template_format)
    result = prompt.invoke({"my_var": value})
    expected_output = expected if not isinstance(expected, dict) else expected[template_format]
    assert result.to_string() == expected_output


def test_prompt_missing_vars_error() -> None:
    prompt = PromptTemplate.from_template("This is a {foo} {goingtobemissing} test.")
    with pytest.raises(KeyError) as e:
        prompt.invoke({"foo": "bar"})
    # The message names the missing variable and how to escape it.
    assert "{'goingtobemissing'}" in str(e.value.args[0])
    assert "'{{goingtobemissing}}'" in str(e.value.args[0])


def test_prompt_with_template_variable_name_fstring() -> None:
    template = "This is a {template} test."
    prompt = PromptTemplate.from_template(template, template_format="f-string")
    assert prompt.invoke({"template": "bar"}).to_string() == "This is a bar test."


def test_prompt_with_template_variable_name_mustache() -> None:
    template = "This is a {{template}} test."
    prompt = PromptTemplate.from_template(template, template_format="mustache")
    assert prompt.invoke({"template": "bar"}).to_string() == "This is a bar test."


@needs_jinja2
def test_prompt_with_template_variable_name_jinja2() -> None:
    template = "This is a {{template}} test."
    prompt = PromptTemplate.from_template(template, template_format="jinja2")
    assert prompt.invoke({"template": "bar"}).to_string() == "This is a bar test."


def test_prompt_template_add_with_with_another_format() -> None:
    with pytest.raises(ValueError, match=r"Cannot add templates"):
        (
            PromptTemplate.from_template("This is a {template}")
            + PromptTemplate.from_template("So {{this}} is", template_format="mustache")
        )


@pytest.mark.parametrize(
    ("template_format", "prompt1", "prompt2"),
    [
        ("f-string", "This is a {variable}", ". This is {another_variable}"),
        pytest.param(
            "jinja2", "This is a {{variable}}", ". This is {{another_variable}}",
            marks=[needs_jinja2],
        ),
        ("mustache", "This is a {{variable}}", ". This is {{another_variable}}"),
    ],
)
def test_prompt_template_add(template_format: str, prompt1: str, prompt2: str) -> None:
    first_prompt = PromptTemplate.from_template(prompt1, template_format=template_format)
    second_prompt = PromptTemplate.from_template(prompt2, template_format=template_format)

    concated_prompt = first_prompt + second_prompt
    prompt_of_concated = PromptTemplate.from_template(
        prompt1 + prompt2, template_format=template_format
    )

    assert concated_prompt.input_variables == prompt_of_concated.input_variables
    assert concated_prompt.format(
        variable="template", another_variable="other_template"
    ) == prompt_of_concated.format(variable="template", another_variable="other_template")
    # Upstream's async twins (aformat, aformat_prompt) give the same text.
    assert asyncio.run(concated_prompt.aformat(
        variable="template", another_variable="other_template"
    )) == "This is a template. This is other_template"
