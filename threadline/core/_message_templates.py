"""Message templates: one message whose content is a template.

``HumanMessagePromptTemplate.from_template("{q}")`` holds a :class:`PromptTemplate` for
the message's text; ``from_template([...])`` holds a list of content block templates
(text, ``image_url`` and other dict blocks, whose strings are all templates), for a
multipart message. :class:`~threadline.core._prompts.ChatPromptTemplate` formats them
through ``_format``, which checks nothing: the chat prompt has checked the variables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

from threadline._errors import InputError, MissingVariableError
from threadline.core._templates import (
    COMPILED_TYPES,
    Compiled,
    PromptTemplate,
    compile_template,
    set_repr,
)
from threadline.messages._values import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
)

__all__ = [
    "AIMessagePromptTemplate",
    "BlockTemplate",
    "ChatMessagePromptTemplate",
    "HumanMessagePromptTemplate",
    "SystemMessagePromptTemplate",
]


def _compile_tree(value: Any, template_format: str) -> Any:
    """Every string in a (nested) content block, compiled."""
    if isinstance(value, str):
        return compile_template(value, template_format)
    if isinstance(value, dict):
        return {k: _compile_tree(v, template_format) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_compile_tree(v, template_format) for v in value)
    return value


def _tree_variables(node: Any, out: set[str]) -> bool:
    """Collect the variables of a compiled tree; True if every template is strict."""
    if isinstance(node, dict):
        node = list(node.values())
    if isinstance(node, list | tuple):
        return all([_tree_variables(v, out) for v in node])
    if isinstance(node, COMPILED_TYPES):
        out.update(node.variables)
        return bool(node.strict)
    return True


def _render_tree(node: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(node, dict):
        return {k: _render_tree(v, values) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return type(node)(_render_tree(v, values) for v in node)
    if isinstance(node, COMPILED_TYPES):
        return node.format(values)
    return node


class BlockTemplate:
    """A content block whose strings are templates, e.g. an ``image_url`` block."""

    __slots__ = ("_tree", "block", "input_variables", "strict", "template_format")

    def __init__(self, block: dict[str, Any], template_format: str = "f-string") -> None:
        self.block = block
        self.template_format = template_format
        self._tree = _compile_tree(block, template_format)
        names: set[str] = set()
        self.strict = _tree_variables(self._tree, names)
        self.input_variables = sorted(names)

    def format(self, values: Mapping[str, Any]) -> dict[str, Any]:
        image = self.block.get("image_url")
        if isinstance(image, dict) and "path" in image:
            raise InputError("Loading images from 'path' has been removed as of 0.3.15 "
                             "for security reasons. Give images by 'url' (threadline "
                             "never reads image files named in a prompt).")
        result: dict[str, Any] = _render_tree(self._tree, values)
        return result

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, BlockTemplate) and other.block == self.block
                and other.template_format == self.template_format)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BlockTemplate({self.block!r})"


_Content: TypeAlias = "PromptTemplate | list[PromptTemplate | BlockTemplate]"


def _content_templates(template: Sequence[Any], template_format: str
                       ) -> list[PromptTemplate | BlockTemplate]:
    """LangChain's multipart form: strings and text blocks, image blocks, other dicts."""
    parts: list[PromptTemplate | BlockTemplate] = []
    for block in template:
        if isinstance(block, str):
            parts.append(PromptTemplate(block, template_format=template_format))
        elif isinstance(block, dict) and "text" in block and block.keys() <= {"type", "text"}:
            parts.append(PromptTemplate(block["text"], template_format=template_format))
        elif isinstance(block, dict) and "image_url" in block and block.keys() <= {
                "type", "image_url"}:
            image = block["image_url"]
            if not isinstance(image, str | dict):
                raise InputError(f"Invalid image template: {block!r:.80}")
            image = {"url": image} if isinstance(image, str) else dict(image)
            parts.append(BlockTemplate({"type": "image_url", "image_url": image},
                                       template_format))
        elif isinstance(block, dict):
            if template_format == "jinja2":
                raise InputError("jinja2 is unsafe and is not supported for templates "
                                 "expressed as dicts; use 'f-string' or 'mustache'")
            parts.append(BlockTemplate(block, template_format))
        else:
            raise InputError(f"Invalid template: {block!r:.80}; a content block is a "
                             "str or a dict")
    return parts


class _MessageTemplate:
    """One message whose content is a template, e.g. ``("human", "{question}")``.

    ``prompt`` is a :class:`PromptTemplate` (the message's text) or a list of content
    block templates (a multipart message; text blocks that format to "" are left out).
    """

    __slots__ = ("_fast", "_strict", "additional_kwargs", "prompt")
    cls: ClassVar[type[BaseMessage]]

    def __init__(self, prompt: _Content | str, *,
                 additional_kwargs: Mapping[str, Any] | None = None) -> None:
        if isinstance(prompt, str):
            prompt = PromptTemplate(prompt)  # threadline's earlier shorthand
        if not isinstance(prompt, PromptTemplate | list):
            raise InputError(f"a message template's prompt is a PromptTemplate or a list "
                             f"of content templates, got {type(prompt).__name__}")
        self.prompt = prompt
        self.additional_kwargs = dict(additional_kwargs or {})
        parts = prompt if isinstance(prompt, list) else [prompt]
        self._strict = all(p._template.strict if isinstance(p, PromptTemplate) else p.strict
                           for p in parts)
        # The common case, one text template and nothing else, formats with one call.
        self._fast: Compiled | None = None
        if (isinstance(prompt, PromptTemplate) and not prompt.partial_variables
                and not self.additional_kwargs and self._direct()):
            self._fast = prompt._template

    def _direct(self) -> bool:
        return True

    @classmethod
    def from_template(cls, template: str | Sequence[Any], template_format: str = "f-string",
                      *, partial_variables: Mapping[str, Any] | None = None,
                      input_variables: Sequence[str] | None = None,
                      **kwargs: Any) -> Any:
        """A template from a text template or a list of content blocks.

        ``input_variables`` is accepted for LangChain's signature and worked out anyway.
        """
        if isinstance(template, str):
            return cls(PromptTemplate(template, template_format=template_format,
                                      partial_variables=partial_variables), **kwargs)
        if isinstance(template, list | tuple):
            if partial_variables:
                raise InputError("Partial variables are not supported for list of templates")
            return cls(_content_templates(template, template_format), **kwargs)
        raise InputError(f"Invalid template: {template!r:.80}; expected a str or a list "
                         "of content blocks")

    @classmethod
    def from_template_file(cls, template_file: str | Path,
                           input_variables: Sequence[str] | None = None,
                           **kwargs: Any) -> Any:
        return cls.from_template(Path(template_file).read_text(encoding="utf-8"), **kwargs)

    @property
    def input_variables(self) -> list[str]:
        parts = self.prompt if isinstance(self.prompt, list) else [self.prompt]
        return sorted({v for p in parts for v in p.input_variables})

    def _make(self, content: Any) -> BaseMessage:
        if self.additional_kwargs:
            return self.cls(content, additional_kwargs=dict(self.additional_kwargs))
        return self.cls(content)

    def _format(self, values: Mapping[str, Any]) -> BaseMessage:
        fast = self._fast
        if fast is not None:
            return self.cls(fast.format(values))
        prompt = self.prompt
        if isinstance(prompt, PromptTemplate):
            if prompt.partial_variables:
                values = prompt._values(values, [])
            return self._make(prompt._template.format(values))
        content: list[Any] = []
        for part in prompt:
            if isinstance(part, PromptTemplate):
                text = part._template.format(values)
                if text:
                    content.append({"type": "text", "text": text})
            else:
                content.append(part.format(values))
        return self._make(content)

    def format(self, **kwargs: Any) -> BaseMessage:
        """The message, formatted with ``kwargs``."""
        if self._strict:
            prompt = self.prompt
            given = (set(kwargs) | set(prompt.partial_variables)
                     if isinstance(prompt, PromptTemplate) else set(kwargs))
            missing = [v for v in self.input_variables if v not in given]
            if missing:
                raise MissingVariableError(
                    f"{type(self).__name__} is missing variable(s) {set_repr(missing)}; "
                    f"given: {sorted(kwargs)}", missing=missing, given=sorted(kwargs))
        return self._format(kwargs)

    def format_messages(self, **kwargs: Any) -> list[BaseMessage]:
        return [self.format(**kwargs)]

    async def aformat(self, **kwargs: Any) -> BaseMessage:
        return self.format(**kwargs)

    async def aformat_messages(self, **kwargs: Any) -> list[BaseMessage]:
        return [self.format(**kwargs)]

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and isinstance(other, _MessageTemplate)
                and other.prompt == self.prompt
                and other.additional_kwargs == self.additional_kwargs)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prompt={self.prompt!r})"


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


class ChatMessagePromptTemplate(_MessageTemplate):
    """A message with any role.

    >>> ChatMessagePromptTemplate.from_template("{x}", role="critic").format(x="ok").role
    'critic'
    """

    __slots__ = ("role",)
    cls = ChatMessage

    def __init__(self, prompt: _Content | str, *, role: str,
                 additional_kwargs: Mapping[str, Any] | None = None) -> None:
        self.role = role
        super().__init__(prompt, additional_kwargs=additional_kwargs)

    def _direct(self) -> bool:
        return False  # ChatMessage needs its role

    def _make(self, content: Any) -> BaseMessage:
        return ChatMessage(content, role=self.role, additional_kwargs=dict(self.additional_kwargs))

    def __eq__(self, other: object) -> bool:
        return (super().__eq__(other) and isinstance(other, ChatMessagePromptTemplate)
                and other.role == self.role)

    __hash__ = None

    def __repr__(self) -> str:
        return f"ChatMessagePromptTemplate(role={self.role!r}, prompt={self.prompt!r})"
