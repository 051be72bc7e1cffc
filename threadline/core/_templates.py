"""Text templates: the three formats, :class:`PromptTemplate` and multipart content blocks.

A template is compiled once, when built, into an object with ``variables`` and
``format(values)``; formatting never re-parses. The formats are LangChain's:

* ``"f-string"`` (the default): ``{name}``; only names, never ``{obj.attr}``, ``{x[0]}``
  or positional ``{0}``, so a template cannot reach into the objects it is given.
  A missing variable is an error.
* ``"mustache"``: ``{{name}}``, sections and dotted paths through dicts
  (:mod:`threadline.core._mustache`). A missing variable renders as nothing.
* ``"jinja2"``: rendered in jinja2's sandbox, only if jinja2 is installed. The sandbox is
  best effort: never render a jinja2 template you did not write.

>>> PromptTemplate.from_template("Tell me about {topic}").format(topic="owls")
'Tell me about owls'
"""

from __future__ import annotations

import string
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from threadline._errors import (
    InputError,
    InputTypeError,
    MissingDependencyError,
    MissingVariableError,
)
from threadline.core._mustache import Mustache
from threadline.core._runnables import Runnable, RunnableConfig
from threadline.messages._values import BaseMessage, HumanMessage

__all__ = [
    "COMPILED_TYPES",
    "PromptTemplate",
    "StringPromptValue",
    "compile_template",
]

_formatter = string.Formatter()
FORMATS = ("f-string", "mustache", "jinja2")


class Compiled(Protocol):
    """What every template format compiles to."""

    template: str
    variables: list[str]
    strict: bool  # whether a missing variable is an error when formatting

    def format(self, values: Mapping[str, Any]) -> str: ...


class _FString:
    """A parsed f-string template: literal text and named fields, in order."""

    __slots__ = ("pieces", "template", "variables")
    strict = True

    def __init__(self, template: str) -> None:
        if not isinstance(template, str):
            raise InputError(f"a template must be a str, got {type(template).__name__}")
        self.template = template
        pieces: list[tuple[str, str | None, str, str | None]] = []
        names: list[str] = []
        try:
            parsed = list(_formatter.parse(template))
        except ValueError as exc:
            raise InputError(f"invalid template {template!r:.80}: {exc}; "
                             "write literal braces as {{ and }}") from exc
        for literal, field, spec, conversion in parsed:
            if field is not None:
                _check_field(field, spec, template)
                if field not in names:
                    names.append(field)
            pieces.append((literal, field, spec or "", conversion))
        self.pieces = pieces
        self.variables = names

    def format(self, values: Mapping[str, Any]) -> str:
        out: list[str] = []
        for literal, field, spec, conversion in self.pieces:
            out.append(literal)
            if field is not None:
                value = values[field]
                if conversion == "r":
                    value = repr(value)
                elif conversion == "a":
                    value = ascii(value)
                out.append(format(value, spec) if spec else str(value))
        return "".join(out)


def _check_field(field: str, spec: str | None, template: str) -> None:
    # LangChain's rules: any name str.format accepts, except the ones that index,
    # reach into attributes or are positional.
    if "." in field or "[" in field or "]" in field:
        raise InputError(
            f"Invalid variable name {field!r} in f-string template {template!r:.80}: "
            "variable names cannot contain attribute access (.) or indexing ([]); "
            "use a plain name such as {name}"
        )
    if not field or field.isdigit():
        raise InputError(
            f"Invalid variable name {field!r} in f-string template {template!r:.80}: "
            "empty and all-digit names are positional arguments; use a plain name "
            "such as {name}"
        )
    if spec and ("{" in spec or "}" in spec):
        raise InputError(
            f"Invalid format specifier in f-string template {template!r:.80}: "
            "Nested replacement fields are not allowed"
        )


class _Jinja2:
    """A jinja2 template, rendered in jinja2's sandbox."""

    __slots__ = ("_compiled", "template", "variables")
    strict = False

    def __init__(self, template: str) -> None:
        try:
            from jinja2 import meta
            from jinja2.sandbox import SandboxedEnvironment
        except ImportError as exc:  # pragma: no cover - jinja2 is in the dev environment
            raise MissingDependencyError("jinja2", "jinja2") from exc
        if not isinstance(template, str):
            raise InputError(f"a template must be a str, got {type(template).__name__}")
        env = SandboxedEnvironment()
        self.template = template
        self.variables = sorted(meta.find_undeclared_variables(env.parse(template)))
        self._compiled = env.from_string(template)

    def format(self, values: Mapping[str, Any]) -> str:
        return str(self._compiled.render(**values))


#: The classes ``compile_template`` returns, for telling a compiled string in a tree.
COMPILED_TYPES = (_FString, Mustache, _Jinja2)


def compile_template(template: str, template_format: str = "f-string") -> Compiled:
    """Compile ``template`` in one of :data:`FORMATS`."""
    if template_format == "f-string":
        return _FString(template)
    if template_format == "mustache":
        return Mustache(template)
    if template_format == "jinja2":
        return _Jinja2(template)
    raise InputError(f"Unsupported template format: {template_format}; "
                     f"use one of {list(FORMATS)}")


def set_repr(names: Sequence[str] | set[str]) -> str:
    """A set of names written as Python prints a set, but in a stable order."""
    return "{" + ", ".join(map(repr, sorted(names))) + "}" if names else "set()"


class _Prompt(Runnable[Any, Any]):
    """What chat and text prompts share: variables, partials and input checking."""

    _required: list[str]
    partial_variables: dict[str, Any]

    @property
    def input_variables(self) -> list[str]:
        """The variables a caller must give, sorted."""
        return sorted(v for v in self._required if v not in self.partial_variables)

    def _values(self, input: Any, required: list[str] | None = None) -> dict[str, Any]:
        if not isinstance(input, Mapping):
            needed = self.input_variables
            if len(needed) != 1:
                raise InputTypeError(
                    f"{type(self).__name__} expects a dict with keys {needed}, "
                    f"got {type(input).__name__}"
                )
            input = {needed[0]: input}
        if not self.partial_variables:
            values = input if isinstance(input, dict) else dict(input)
        else:
            values = {k: (v() if callable(v) else v) for k, v in self.partial_variables.items()}
            values.update(input)
        missing = [name for name in (self._required if required is None else required)
                   if name not in values]
        if missing:
            hint = missing[0]
            raise MissingVariableError(
                f"{type(self).__name__} is missing variable(s) {set_repr(missing)}; "
                f"given: {sorted(values)}; expected: {self.input_variables}. If "
                f"{{{hint}}} is meant literally, escape it with double braces: '{{{{{hint}}}}}'",
                missing=missing,
                given=sorted(values),
            )
        return values

    def format(self, **kwargs: Any) -> Any:
        raise NotImplementedError

    def format_prompt(self, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def aformat(self, **kwargs: Any) -> Any:
        return self.format(**kwargs)

    async def aformat_prompt(self, **kwargs: Any) -> Any:
        return self.format_prompt(**kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> Any:
        return self.invoke(input, config)


class StringPromptValue:
    """The output of a :class:`PromptTemplate`: one string."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def to_string(self) -> str:
        return self.text

    def to_messages(self) -> list[BaseMessage]:
        return [HumanMessage(self.text)]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StringPromptValue) and other.text == self.text

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"StringPromptValue(text={self.text!r})"


def _validate(template: str, template_format: str, declared: list[str]) -> None:
    """``validate_template=True``: check the declared variables against the template."""
    if template_format == "f-string":
        try:
            fields = [f for _, f, _, _ in _formatter.parse(template) if f is not None]
        except ValueError:
            return  # compiling reports it, with the fix
        if any(f not in declared or not f or f.isdigit() for f in fields):
            raise InputError("Invalid prompt schema; check for mismatched or missing "
                             f"input parameters from {declared}.")
    elif template_format == "jinja2":
        found = set(_Jinja2(template).variables)
        missing, extra = found - set(declared), set(declared) - found
        message = (f"Missing variables: {set_repr(missing)} " if missing else "") + (
            f"Extra variables: {set_repr(extra)}" if extra else "")
        if message:
            warnings.warn(message.strip(), UserWarning, stacklevel=3)


class PromptTemplate(_Prompt):
    """A text template: ``PromptTemplate.from_template("Tell me about {topic}")``.

    ``input_variables`` is worked out from the template (a given list is only checked,
    with ``validate_template=True``). ``partial_variables`` fill variables in advance,
    with values or zero-argument callables.
    """

    def __init__(
        self,
        template: str,
        input_variables: Sequence[str] | None = None,
        partial_variables: Mapping[str, Any] | None = None,
        template_format: str = "f-string",
        *,
        validate_template: bool = False,
    ) -> None:
        self.partial_variables = dict(partial_variables or {})
        if validate_template:
            _validate(template, template_format,
                      [*(input_variables or []), *self.partial_variables])
        self._template = compile_template(template, template_format)
        self._required = list(self._template.variables)
        self.template_format = template_format
        self.validate_template = validate_template

    @property
    def template(self) -> str:
        return self._template.template

    @classmethod
    def from_template(cls, template: str, **kwargs: Any) -> PromptTemplate:
        return cls(template, **kwargs)

    @classmethod
    def from_file(cls, template_file: str | Path, encoding: str | None = None,
                  **kwargs: Any) -> PromptTemplate:
        """A template read from a text file (``encoding`` defaults to the OS's)."""
        return cls.from_template(Path(template_file).read_text(encoding=encoding), **kwargs)

    @classmethod
    def from_examples(cls, examples: Sequence[str], suffix: str,
                      input_variables: Sequence[str], example_separator: str = "\n\n",
                      prefix: str = "", **kwargs: Any) -> PromptTemplate:
        """``prefix``, the examples and ``suffix``, joined by ``example_separator``."""
        template = example_separator.join([prefix, *examples, suffix])
        return cls(template, input_variables=input_variables, **kwargs)

    def partial(self, **kwargs: Any) -> PromptTemplate:
        """A copy with some variables filled in (values or zero-argument callables)."""
        return PromptTemplate(self.template, template_format=self.template_format,
                              partial_variables={**self.partial_variables, **kwargs})

    def format(self, **kwargs: Any) -> str:
        compiled = self._template
        return compiled.format(self._values(kwargs, None if compiled.strict else []))

    def format_prompt(self, **kwargs: Any) -> StringPromptValue:
        return StringPromptValue(self.format(**kwargs))

    def invoke(self, input: Any, config: RunnableConfig | None = None,
               **kwargs: Any) -> StringPromptValue:
        return StringPromptValue(self._template.format(self._values(input)))

    def __add__(self, other: Any) -> PromptTemplate:
        if isinstance(other, str):
            other = PromptTemplate(other, template_format=self.template_format)
        if not isinstance(other, PromptTemplate):
            return NotImplemented
        if other.template_format != self.template_format:
            raise InputError("Cannot add templates of different formats: "
                             f"{self.template_format!r} and {other.template_format!r}")
        twice = set(self.partial_variables) & set(other.partial_variables)
        if twice:
            raise InputError(f"Cannot have the same variable partialed twice: {sorted(twice)}")
        return PromptTemplate(self.template + other.template,
                              template_format=self.template_format,
                              partial_variables={**self.partial_variables,
                                                 **other.partial_variables})

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, PromptTemplate) and other.template == self.template
                and other.template_format == self.template_format
                and other.partial_variables == self.partial_variables)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self.template_format == "f-string":
            return f"PromptTemplate(template={self.template!r})"
        return (f"PromptTemplate(template={self.template!r}, "
                f"template_format={self.template_format!r})")
