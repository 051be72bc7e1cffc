"""Chat prompts: message templates, placeholders for histories, and ChatPromptTemplate.

A chat prompt is a list of parts: fixed messages, message templates (one text template,
or a list of content blocks whose strings are templates) and :class:`MessagesPlaceholder`
slots that a history fills. Every template is compiled when the prompt is built
(:mod:`threadline.core._templates`), so formatting a turn only joins strings.

>>> prompt = ChatPromptTemplate.from_messages(
...     [("system", "You are {persona}."), ("placeholder", "{chat_history}"), ("human", "{q}")]
... )
>>> [m.type for m in prompt.invoke({"persona": "terse", "q": "hi"}).to_messages()]
['system', 'human']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import repeat
from typing import Any, TypeAlias, overload

from threadline._errors import InputError, MissingVariableError
from threadline.core._message_templates import (
    AIMessagePromptTemplate,
    ChatMessagePromptTemplate,
    HumanMessagePromptTemplate,
    SystemMessagePromptTemplate,
    _MessageTemplate,
)
from threadline.core._runnables import RunnableConfig
from threadline.core._templates import PromptTemplate, StringPromptValue, _Prompt, set_repr
from threadline.messages._convert import convert_to_messages, get_buffer_string
from threadline.messages._values import BaseMessage

__all__ = [
    "AIMessagePromptTemplate",
    "ChatMessagePromptTemplate",
    "ChatPromptTemplate",
    "ChatPromptValue",
    "ChatPromptValueConcrete",
    "HumanMessagePromptTemplate",
    "MessagesPlaceholder",
    "PromptTemplate",
    "StringPromptValue",
    "SystemMessagePromptTemplate",
]


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
        return f"{type(self).__name__}(messages={self.messages!r})"


class ChatPromptValueConcrete(ChatPromptValue):
    """LangChain's name for a chat prompt value of concrete message types (for typed
    schemas there); here the same value as :class:`ChatPromptValue`."""

    __slots__ = ()


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

    @property
    def input_variables(self) -> list[str]:
        return [] if self.optional else [self.variable_name]

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

    async def aformat_messages(self, **kwargs: Any) -> list[BaseMessage]:
        return self.format_messages(**kwargs)

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

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, MessagesPlaceholder)
                and other.variable_name == self.variable_name
                and other.optional == self.optional and other.n_messages == self.n_messages)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"MessagesPlaceholder(variable_name={self.variable_name!r}, "
                f"optional={self.optional})")


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


def _to_part(item: MessageLike, template_format: str = "f-string") -> list[_Part]:
    if isinstance(item, BaseMessage | _MessageTemplate | MessagesPlaceholder):
        return [item]
    if isinstance(item, ChatPromptTemplate):
        return list(item.messages)
    if isinstance(item, str):
        return [HumanMessagePromptTemplate.from_template(item, template_format)]
    role: Any = None
    if isinstance(item, dict) and item.keys() == {"role", "content"}:
        role, template = item["role"], item["content"]  # LangChain's dict form
    elif isinstance(item, tuple | list) and len(item) == 2:
        role, template = item
        if isinstance(role, type) and issubclass(role, BaseMessage):
            role = role.type  # (HumanMessage, "{q}"): LangChain 1.x's class form
        elif isinstance(role, type) and issubclass(role, _MessageTemplate):
            return [role.from_template(template, template_format)]
    if isinstance(role, str):
        if role == "placeholder":
            return [_placeholder(template, item)]
        template_cls = _ROLE_TEMPLATES.get(role)
        if template_cls is None:
            raise InputError(
                f"Unexpected message type: {role}; use one of 'human', 'user', 'ai', "
                "'assistant', 'system' or 'placeholder'"
            )
        if isinstance(template, str | list):
            return [template_cls.from_template(template, template_format)]
        raise InputError(
            f"Invalid template: {template!r:.80}; the template for {role!r} must be a str "
            "or a list of content blocks"
        )
    raise InputError(
        f"cannot use {item!r:.80} in a chat prompt; expected a (role, template) tuple, "
        "a {'role': ..., 'content': ...} dict, a message, a MessagesPlaceholder, a str "
        "or a ChatPromptTemplate"
    )


def _convert_to_message_template(message: MessageLike, template_format: str = "f-string"
                                 ) -> _Part | ChatPromptTemplate:
    """One message-like value as the part a chat prompt keeps (LangChain's helper)."""
    if isinstance(message, ChatPromptTemplate):
        return message
    return _to_part(message, template_format)[0]


class ChatPromptTemplate(_Prompt):
    """A list of message templates and placeholders that formats into messages.

    ``input_variables`` is worked out from the parts (a given list is only checked, with
    ``validate_template=True``); an optional placeholder's variable is in
    ``optional_variables`` instead.

    >>> prompt = ChatPromptTemplate.from_messages([("human", "Hi, I am {name}")])
    >>> [m.content for m in prompt.invoke({"name": "Bob"}).to_messages()]
    ['Hi, I am Bob']
    """

    def __init__(
        self,
        messages: Iterable[MessageLike],
        *,
        template_format: str = "f-string",
        input_variables: Iterable[str] | None = None,
        partial_variables: Mapping[str, Any] | None = None,
        validate_template: bool = False,
    ) -> None:
        parts: list[_Part] = []
        for item in messages:
            parts.extend(_to_part(item, template_format))
        self.messages = parts
        self.partial_variables = dict(partial_variables or {})
        self._refresh()
        if validate_template and input_variables is not None:
            expected = set(self.input_variables)
            if expected != set(input_variables):
                raise InputError(f"Got mismatched input_variables. Expected: "
                                 f"{set_repr(expected)}. Got: {list(input_variables)}")

    def _refresh(self) -> None:
        """Work out the variables again after the parts changed."""
        required: list[str] = []
        strict: list[str] = []  # the ones formatting without fails on (f-string)
        optional: list[str] = []
        for part in self.messages:
            if isinstance(part, MessagesPlaceholder):
                names, target = [part.variable_name], optional if part.optional else None
                is_strict = True
            elif isinstance(part, _MessageTemplate):
                names, target, is_strict = part.input_variables, None, part._strict
            else:
                continue
            for name in names:
                if target is not None:
                    if name not in target:
                        target.append(name)
                    continue
                if name not in required:
                    required.append(name)
                if is_strict and name not in strict:
                    strict.append(name)
        self._required = required
        self._strict_required = strict
        self.optional_variables = sorted(optional)

    @classmethod
    def from_messages(cls, messages: Iterable[MessageLike], template_format: str = "f-string",
                      **kwargs: Any) -> ChatPromptTemplate:
        return cls(messages, template_format=template_format, **kwargs)

    @classmethod
    def from_template(cls, template: str, **kwargs: Any) -> ChatPromptTemplate:
        """A prompt of one human message; ``kwargs`` go to its :class:`PromptTemplate`."""
        return cls([HumanMessagePromptTemplate(PromptTemplate.from_template(template, **kwargs))])

    def partial(self, **kwargs: Any) -> ChatPromptTemplate:
        """A copy with some variables filled in (values or zero-argument callables)."""
        return ChatPromptTemplate(self.messages,
                                  partial_variables={**self.partial_variables, **kwargs})

    def format_messages(self, **kwargs: Any) -> list[BaseMessage]:
        return self._format(self._values(kwargs, self._strict_required))

    async def aformat_messages(self, **kwargs: Any) -> list[BaseMessage]:
        return self.format_messages(**kwargs)

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
                out.append(part._format(values))
            else:
                out.append(part)
        return out

    def append(self, message: MessageLike) -> None:
        """Add one part at the end (any form ``from_messages`` takes)."""
        self.extend([message])

    def extend(self, messages: Iterable[MessageLike]) -> None:
        for item in messages:
            self.messages.extend(_to_part(item))
        self._refresh()

    @overload
    def __getitem__(self, index: int) -> _Part: ...

    @overload
    def __getitem__(self, index: slice) -> ChatPromptTemplate: ...

    def __getitem__(self, index: int | slice) -> _Part | ChatPromptTemplate:
        if isinstance(index, slice):
            return ChatPromptTemplate(self.messages[index])
        return self.messages[index]

    def __len__(self) -> int:
        return len(self.messages)

    def __add__(self, other: Any) -> ChatPromptTemplate:
        partials = self.partial_variables
        if isinstance(other, ChatPromptTemplate):
            extra: list[_Part] = other.messages
            partials = {**partials, **other.partial_variables}
        elif isinstance(other, list):
            extra = [part for item in other for part in _to_part(item)]
        else:
            extra = _to_part(other)
        return ChatPromptTemplate([*self.messages, *extra], partial_variables=partials)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ChatPromptTemplate) and other.messages == self.messages
                and other.partial_variables == self.partial_variables)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ChatPromptTemplate(messages={self.messages!r})"
