"""Prompt templates: f-string text templates and chat prompts with message placeholders.

Templates are parsed once, when built, into literal pieces and variable names; formatting
then joins strings without re-parsing. Only plain variable names are allowed in ``{...}``
(no ``{obj.attr}`` or ``{x[0]}``), so a template cannot reach into the objects it is given.

>>> prompt = ChatPromptTemplate.from_messages(
...     [("system", "You are {persona}."), ("placeholder", "{chat_history}"), ("human", "{q}")]
... )
>>> [m.type for m in prompt.invoke({"persona": "terse", "q": "hi"}).to_messages()]
['system', 'human']
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any, ClassVar, TypeAlias

from threadline._errors import InputError, MissingVariableError
from threadline.core._runnables import Runnable, RunnableConfig
from threadline.messages._convert import convert_to_messages, get_buffer_string
from threadline.messages._values import AIMessage, BaseMessage, HumanMessage, SystemMessage

__all__ = [
    "AIMessagePromptTemplate",
    "ChatPromptTemplate",
    "ChatPromptValue",
    "HumanMessagePromptTemplate",
    "MessagesPlaceholder",
    "PromptTemplate",
    "StringPromptValue",
    "SystemMessagePromptTemplate",
]

_formatter = string.Formatter()


class _FString:
    """A parsed f-string template: literal text and named fields, in order."""

    __slots__ = ("pieces", "template", "variables")

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
                if not field.isidentifier():
                    raise InputError(
                        f"template variable {{{field}}} in {template!r:.80} is not a plain "
                        "name; use {name} (attribute and index access are not allowed)"
                    )
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


def _check_format(template_format: str) -> None:
    if template_format != "f-string":
        raise InputError(
            f"template_format {template_format!r} is not supported; use 'f-string'"
        )


class _Prompt(Runnable[Any, Any]):
    """What chat and text prompts share: variables, partials and input checking."""

    _required: list[str]
    partial_variables: dict[str, Any]

    @property
    def input_variables(self) -> list[str]:
        """The variables a caller must give, sorted."""
        return sorted(v for v in self._required if v not in self.partial_variables)

    def _values(self, input: Any) -> dict[str, Any]:
        if not isinstance(input, Mapping):
            needed = self.input_variables
            if len(needed) != 1:
                raise InputError(
                    f"{type(self).__name__} expects a dict with keys {needed}, "
                    f"got {type(input).__name__}"
                )
            input = {needed[0]: input}
        if not self.partial_variables:
            values = input if isinstance(input, dict) else dict(input)
        else:
            values = {k: (v() if callable(v) else v) for k, v in self.partial_variables.items()}
            values.update(input)
        missing = [name for name in self._required if name not in values]
        if missing:
            raise MissingVariableError(
                f"{type(self).__name__} is missing variable(s) {missing}; "
                f"given: {sorted(values)}; expected: {self.input_variables}",
                missing=missing,
                given=sorted(values),
            )
        return values

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


class ChatPromptValue:
    """The output of a :class:`ChatPromptTemplate`: a list of messages."""

    __slots__ = ("messages",)

    def __init__(self, messages: list[BaseMessage]) -> None:
        self.messages = messages

    def to_messages(self) -> list[BaseMessage]:
        return list(self.messages)

    def to_string(self) -> str:
        return get_buffer_string(self.messages)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChatPromptValue) and other.messages == self.messages

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ChatPromptValue(messages={self.messages!r})"


class PromptTemplate(_Prompt):
    """A text template: ``PromptTemplate.from_template("Tell me about {topic}")``."""

    def __init__(
        self,
        template: str,
        input_variables: Sequence[str] | None = None,
        partial_variables: Mapping[str, Any] | None = None,
        template_format: str = "f-string",
    ) -> None:
        _check_format(template_format)
        self._template = _FString(template)
        self._required = list(self._template.variables)
        self.partial_variables = dict(partial_variables or {})
        if input_variables is not None:
            declared = set(input_variables) | set(self.partial_variables)
            if declared != set(self._required):
                raise InputError(
                    f"input_variables {sorted(input_variables)} do not match the "
                    f"template's variables {sorted(self._required)}"
                )

    @property
    def template(self) -> str:
        return self._template.template

    @classmethod
    def from_template(cls, template: str, **kwargs: Any) -> PromptTemplate:
        return cls(template, **kwargs)

    def partial(self, **kwargs: Any) -> PromptTemplate:
        """A copy with some variables filled in (values or zero-argument callables)."""
        return PromptTemplate(self.template,
                              partial_variables={**self.partial_variables, **kwargs})

    def format(self, **kwargs: Any) -> str:
        return self._template.format(self._values(kwargs))

    def format_prompt(self, **kwargs: Any) -> StringPromptValue:
        return StringPromptValue(self.format(**kwargs))

    def invoke(self, input: Any, config: RunnableConfig | None = None,
               **kwargs: Any) -> StringPromptValue:
        return StringPromptValue(self._template.format(self._values(input)))

    def __repr__(self) -> str:
        return f"PromptTemplate(template={self.template!r})"


class MessagesPlaceholder:
    """A slot filled with a list of messages from the variable ``variable_name``.

    ``optional=True`` lets the variable be missing (nothing is inserted);
    ``n_messages`` keeps only the last N messages.
    """

    __slots__ = ("n_messages", "optional", "variable_name")

    def __init__(self, variable_name: str, *, optional: bool = False,
                 n_messages: int | None = None) -> None:
        if not isinstance(variable_name, str) or not variable_name.isidentifier():
            raise InputError(f"placeholder variable {variable_name!r} is not a plain name")
        self.variable_name = variable_name
        self.optional = optional
        self.n_messages = n_messages

    def format_messages(self, **kwargs: Any) -> list[BaseMessage]:
        """The messages of ``kwargs[variable_name]`` (LangChain's signature)."""
        if not self.optional and self.variable_name not in kwargs:
            raise MissingVariableError(
                f"MessagesPlaceholder is missing variable {self.variable_name!r}; "
                f"given: {sorted(kwargs)}",
                missing=[self.variable_name],
                given=sorted(kwargs),
            )
        return self._format(kwargs)

    def _format(self, values: Mapping[str, Any]) -> list[BaseMessage]:
        # ChatPromptTemplate has checked the required variables already.
        value = values.get(self.variable_name)
        if value is None:
            return []
        # map() keeps this check in C: it is most of a turn's cost at 1,000 messages.
        if type(value) is list and all(map(isinstance, value, repeat(BaseMessage))):
            messages: list[BaseMessage] = value
        else:
            messages = convert_to_messages(value)
        if self.n_messages is not None:
            messages = messages[-self.n_messages:] if self.n_messages > 0 else []
        return messages

    def __repr__(self) -> str:
        return (f"MessagesPlaceholder(variable_name={self.variable_name!r}, "
                f"optional={self.optional})")


class _MessageTemplate:
    """One message whose text is a template, e.g. ``("human", "{question}")``."""

    __slots__ = ("template",)
    cls: ClassVar[type[BaseMessage]]

    def __init__(self, template: str) -> None:
        self.template = _FString(template)

    @classmethod
    def from_template(cls, template: str, **kwargs: Any) -> _MessageTemplate:
        return cls(template)

    def format(self, values: Mapping[str, Any]) -> BaseMessage:
        return self.cls(self.template.format(values))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.template.template!r})"


class HumanMessagePromptTemplate(_MessageTemplate):
    """``HumanMessagePromptTemplate.from_template("{text}")``"""

    __slots__ = ()
    cls = HumanMessage


class SystemMessagePromptTemplate(_MessageTemplate):
    __slots__ = ()
    cls = SystemMessage


class AIMessagePromptTemplate(_MessageTemplate):
    __slots__ = ()
    cls = AIMessage


_ROLE_TEMPLATES: dict[str, type[_MessageTemplate]] = {
    "system": SystemMessagePromptTemplate,
    "human": HumanMessagePromptTemplate,
    "user": HumanMessagePromptTemplate,
    "ai": AIMessagePromptTemplate,
    "assistant": AIMessagePromptTemplate,
}

_Part: TypeAlias = "BaseMessage | _MessageTemplate | MessagesPlaceholder"
MessageLike: TypeAlias = Any


def _placeholder(template: Any, item: Any) -> MessagesPlaceholder:
    """``("placeholder", "{name}")`` (optional) or ``("placeholder", ["{name}", optional])``."""
    optional: Any = True
    name = template
    if isinstance(template, list | tuple) and len(template) == 2:
        name, optional = template
    if isinstance(name, str):
        name = name.strip()
    if not (isinstance(name, str) and name.startswith("{") and name.endswith("}")
            and isinstance(optional, bool)):
        raise InputError(
            f"a placeholder is written ('placeholder', '{{name}}') or ('placeholder', "
            f"['{{name}}', optional]) with optional a bool, got {item!r:.80}"
        )
    return MessagesPlaceholder(name[1:-1], optional=optional)


def _to_part(item: MessageLike) -> list[_Part]:
    if isinstance(item, BaseMessage | _MessageTemplate | MessagesPlaceholder):
        return [item]
    if isinstance(item, ChatPromptTemplate):
        return list(item.messages)
    if isinstance(item, str):
        return [HumanMessagePromptTemplate(item)]
    role: Any = None
    if isinstance(item, dict) and item.keys() == {"role", "content"}:
        role, template = item["role"], item["content"]  # LangChain's dict form
    elif isinstance(item, tuple | list) and len(item) == 2:
        role, template = item
        if isinstance(role, type) and issubclass(role, BaseMessage):
            role = role.type  # (HumanMessage, "{q}"): LangChain 1.x's class form
    if isinstance(role, str):
        if role == "placeholder":
            return [_placeholder(template, item)]
        template_cls = _ROLE_TEMPLATES.get(role)
        if template_cls is None:
            raise InputError(
                f"unknown message role {role!r} in prompt; expected one of "
                f"{[*_ROLE_TEMPLATES, 'placeholder']}"
            )
        if isinstance(template, str):
            return [template_cls(template)]
        if isinstance(template, list):
            return [template_cls.cls(template)]
        raise InputError(
            f"the template for {role!r} must be a str (or a list of content blocks), "
            f"got {template!r:.80}"
        )
    raise InputError(
        f"cannot use {item!r:.80} in a chat prompt; expected a (role, template) tuple, "
        "a {'role': ..., 'content': ...} dict, a message, a MessagesPlaceholder, a str "
        "or a ChatPromptTemplate"
    )


class ChatPromptTemplate(_Prompt):
    """A list of message templates and placeholders that formats into messages.

    >>> prompt = ChatPromptTemplate.from_messages([("human", "Hi, I am {name}")])
    >>> prompt.invoke({"name": "Bob"}).to_messages()
    [HumanMessage(content='Hi, I am Bob')]
    """

    def __init__(
        self,
        messages: Iterable[MessageLike],
        *,
        partial_variables: Mapping[str, Any] | None = None,
        template_format: str = "f-string",
    ) -> None:
        _check_format(template_format)
        parts: list[_Part] = []
        for item in messages:
            parts.extend(_to_part(item))
        self.messages = parts
        self.partial_variables = dict(partial_variables or {})
        required: list[str] = []
        optional: list[str] = []
        for part in parts:
            if isinstance(part, _MessageTemplate):
                required.extend(v for v in part.template.variables if v not in required)
            elif isinstance(part, MessagesPlaceholder):
                target = optional if part.optional else required
                if part.variable_name not in target:
                    target.append(part.variable_name)
        self._required = required
        self.optional_variables = optional

    @classmethod
    def from_messages(cls, messages: Iterable[MessageLike], **kwargs: Any) -> ChatPromptTemplate:
        return cls(messages, **kwargs)

    @classmethod
    def from_template(cls, template: str, **kwargs: Any) -> ChatPromptTemplate:
        """A prompt of one human message with this text template."""
        return cls([("human", template)], **kwargs)

    def partial(self, **kwargs: Any) -> ChatPromptTemplate:
        """A copy with some variables filled in (values or zero-argument callables)."""
        return ChatPromptTemplate(self.messages,
                                  partial_variables={**self.partial_variables, **kwargs})

    def format_messages(self, **kwargs: Any) -> list[BaseMessage]:
        return self._format(self._values(kwargs))

    def format_prompt(self, **kwargs: Any) -> ChatPromptValue:
        return ChatPromptValue(self.format_messages(**kwargs))

    def format(self, **kwargs: Any) -> str:
        return get_buffer_string(self.format_messages(**kwargs))

    def invoke(self, input: Any, config: RunnableConfig | None = None,
               **kwargs: Any) -> ChatPromptValue:
        return ChatPromptValue(self._format(self._values(input)))

    def _format(self, values: Mapping[str, Any]) -> list[BaseMessage]:
        out: list[BaseMessage] = []
        for part in self.messages:
            if isinstance(part, MessagesPlaceholder):
                out.extend(part._format(values))
            elif isinstance(part, _MessageTemplate):
                out.append(part.format(values))
            else:
                out.append(part)
        return out

    def __add__(self, other: Any) -> ChatPromptTemplate:
        extra = other.messages if isinstance(other, ChatPromptTemplate) else _to_part(other)
        return ChatPromptTemplate([*self.messages, *extra],
                                  partial_variables=self.partial_variables)

    def __repr__(self) -> str:
        return f"ChatPromptTemplate(messages={self.messages!r})"

