"""The base of every message: :class:`BaseMessage`, its fields, equality and repr.

A message is a slotted value: ``content``, ``name``, ``id`` and two dicts
(``additional_kwargs``, ``response_metadata``) stored as ``None`` until first touched.
Construction takes one test for the common case (a ``str`` content, no ``type``, a
``str`` or no id); everything rarer (content blocks, LangChain's ``BaseMessage(type=
...)``, numeric ids) goes through ``_unusual``. The concrete message classes are in
:mod:`threadline.messages._values`.
"""

from __future__ import annotations

import copy as _copy
import sys
import warnings
from typing import Any, ClassVar, TypeAlias

from threadline._errors import InputError

__all__ = ["BaseMessage", "Content", "TextAccessor"]

Content: TypeAlias = "str | list[str | dict[str, Any]]"

_type = type  # ``type`` is also a parameter name in BaseMessage.__init__


def _check_content(content: object, cls: str) -> None:
    if not isinstance(content, str | list):
        raise InputError(
            f"{cls} content must be a str or a list of content blocks, "
            f"not {type(content).__name__}"
        )


class TextAccessor(str):
    """The text of a message: a ``str`` that can also be called, because LangChain 0.x
    had ``message.text()`` as a method and 1.x keeps that call working (with a
    :class:`DeprecationWarning`) while ``message.text`` is a property."""

    __slots__ = ()

    def __call__(self) -> str:
        warnings.warn("Calling .text() as a method is deprecated. Use .text as a property "
                      "instead (e.g., message.text).", DeprecationWarning, stacklevel=2)
        return str(self)


_typed_bases: dict[str, type[BaseMessage]] = {}
_typed_classes: set[type[BaseMessage]] = set()


def _typed_base(kind: str) -> type[BaseMessage]:
    """A ``BaseMessage`` whose ``type`` is ``kind`` (LangChain's ``BaseMessage(type=...)``):
    one hidden subclass per type, so the value stays slotted and compares by class."""
    cls = _typed_bases.get(kind)
    if cls is None:
        cls = _typed_bases[kind] = _type("BaseMessage", (BaseMessage,), {
            "__slots__": (), "type": kind, "__module__": BaseMessage.__module__,
            # pickle finds classes by name, and this one's name is BaseMessage's.
            "__reduce__": lambda self: (_rebuild_typed, (self.type, self.__getstate__()))})
        _typed_classes.add(cls)
    return cls


def _rebuild_typed(kind: str, state: dict[str, Any]) -> BaseMessage:
    message = object.__new__(_typed_base(kind))
    message.__setstate__(state)
    return message


def _title(title: str, *, bold: bool = False) -> str:
    padded = f" {title} "
    side = "=" * ((80 - len(padded)) // 2)
    if bold:
        padded = f"\033[1m{padded}\033[0m"
    return f"{side}{padded}{side}{'=' if len(f' {title} ') % 2 else ''}"


def _is_interactive_env() -> bool:
    return hasattr(sys, "ps2")


class BaseMessage:
    """The fields every message has; use one of the concrete subclasses."""

    __slots__ = ("_additional_kwargs", "_response_metadata", "content", "id", "name")

    type: ClassVar[str] = "base"
    # Names of the optional fields, in the order LangChain's dicts list them.
    _extra_fields: ClassVar[tuple[str, ...]] = ()
    # How repr shows the fields, as LangChain's (pydantic's) repr does: fields listed
    # here are shown only when they differ from this default; the others always are.
    _repr_defaults: ClassVar[dict[str, Any]] = {"name": None, "id": None}
    _repr_hidden: ClassVar[tuple[str, ...]] = ()  # never shown (LangChain's repr=False)

    content: Content
    name: str | None
    id: str | None

    def __init__(
        self,
        content: Content | None = None,
        *,
        additional_kwargs: dict[str, Any] | None = None,
        response_metadata: dict[str, Any] | None = None,
        name: str | None = None,
        id: str | None = None,
        type: str | None = None,
        content_blocks: list[dict[str, Any]] | None = None,
        example: bool = False,
    ) -> None:
        # ``example`` only appears in langchain-core 0.x dicts; it carries no meaning.
        # One test for the common case; the rarer forms are handled in _unusual.
        if content.__class__ is not str or type is not None or (
                id is not None and id.__class__ is not str):
            content, id = self._unusual(content, id, type, content_blocks)
        self.content = content
        self._additional_kwargs = additional_kwargs or None
        self._response_metadata = response_metadata or None
        self.name = name
        self.id = id

    def _unusual(self, content: Any, id: Any, kind: str | None,
                 blocks: list[dict[str, Any]] | None) -> tuple[Content, str | None]:
        cls = self.__class__
        if kind is not None and kind != cls.type:
            if cls is not BaseMessage:
                raise InputError(f"{cls.__name__}.type is {cls.type!r}; got type={kind!r}")
            if not isinstance(kind, str):
                raise InputError(f"a message type must be a str, got {_type(kind).__name__}")
            self.__class__ = _typed_base(kind)
        if content is None:
            if blocks is None:
                raise InputError(f"{cls.__name__} needs content (or content_blocks)")
            content = list(blocks)
        elif isinstance(content, str):
            content = str.__str__(content)  # a str subclass (our TextAccessor) as plain str
        else:
            _check_content(content, cls.__name__)
        if id is not None and not isinstance(id, str):
            if not isinstance(id, int | float):
                raise InputError(f"a message id must be a str, got {_type(id).__name__}")
            id = str(id)  # as LangChain coerces numbers
        return content, id

    @property
    def additional_kwargs(self) -> dict[str, Any]:
        if self._additional_kwargs is None:
            self._additional_kwargs = {}
        return self._additional_kwargs

    @additional_kwargs.setter
    def additional_kwargs(self, value: dict[str, Any]) -> None:
        self._additional_kwargs = value

    @property
    def response_metadata(self) -> dict[str, Any]:
        if self._response_metadata is None:
            self._response_metadata = {}
        return self._response_metadata

    @response_metadata.setter
    def response_metadata(self, value: dict[str, Any]) -> None:
        self._response_metadata = value

    @property
    def text(self) -> str:
        """The text of the message: ``content`` itself, or its text blocks joined.
        A ``str``; calling it (``message.text()``, LangChain 0.x) still works."""
        return TextAccessor(self._plain_text())

    def _plain_text(self) -> str:
        # ``text`` as a plain str, for loops over many messages: making the callable
        # TextAccessor copies the text (about 100 ns a message).
        content = self.content
        if type(content) is str:
            return content
        if isinstance(content, str):
            return str.__str__(content)
        parts: list[str] = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "".join(parts)

    @property
    def content_blocks(self) -> list[dict[str, Any]]:
        """The content as a list of blocks: text as ``{"type": "text", "text": ...}``,
        other blocks as they are (LangChain also translates provider formats; this does
        not)."""
        content = self.content
        if isinstance(content, str):
            return [{"type": "text", "text": content}] if content else []
        return [{"type": "text", "text": block} if isinstance(block, str) else block
                for block in content]

    def pretty_repr(self, html: bool = False) -> str:
        """A title line and the content, as LangChain prints a message."""
        title = _title(self.type.title() + " Message", bold=html)
        if self.name is not None:
            title += f"\nName: {self.name}"
        return f"{title}\n\n{self.content}"

    def pretty_print(self) -> None:
        """Print :meth:`pretty_repr`."""
        print(self.pretty_repr(html=_is_interactive_env()))

    def _fields(self) -> dict[str, Any]:
        """All fields with their public (normalised) values, for equality and dicts."""
        fields: dict[str, Any] = {
            "content": self.content,
            "additional_kwargs": self._additional_kwargs or {},
            "response_metadata": self._response_metadata or {},
            "name": self.name,
            "id": self.id,
        }
        for field in self._extra_fields:
            fields[field] = getattr(self, field)
        return fields

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, BaseMessage)
        if self.content != other.content or self.id != other.id or self.name != other.name:
            return False
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, like LangChain's

    def _repr_args(self) -> list[tuple[str, Any]]:
        # LangChain's field order and its rule: a field with a plain default shows only
        # when it differs; a field whose default is a new {} or [] always shows.
        fields = self._fields()
        defaults = self._repr_defaults
        args: list[tuple[str, Any]] = []
        for key in ("content", "additional_kwargs", "response_metadata", "type", "name", "id",
                    *self._extra_fields):
            if key == "type":
                if not (type(self) is BaseMessage or type(self) in _typed_classes):
                    continue
                value: Any = self.type
            else:
                value = fields[key]
            if (key in defaults and value == defaults[key]) or key in self._repr_hidden:
                continue
            args.append((key, value))
        return args

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self._repr_args())
        return f"{type(self).__name__}({args})"

    def __str__(self) -> str:
        return " ".join(f"{key}={value!r}" for key, value in self._repr_args())

    def __copy__(self) -> BaseMessage:
        clone = object.__new__(type(self))
        for slot in _slots_of(type(self)):
            object.__setattr__(clone, slot, getattr(self, slot))
        return clone

    def __getstate__(self) -> dict[str, Any]:
        return {slot: getattr(self, slot) for slot in _all_slots(type(self))}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)

    @classmethod
    def _from_data(cls, content: Content, data: dict[str, Any]) -> BaseMessage:
        """Rebuild a stored message without the keyword-argument round trip of
        ``__init__``: this runs once per message on every store read."""
        message = object.__new__(cls)
        if type(content) is list and not all(type(b) is str or type(b) is dict
                                             for b in content):
            raise ValueError("content blocks must be str or dict")
        message.content = content
        kwargs, metadata = data.get("additional_kwargs"), data.get("response_metadata")
        name, id_ = data.get("name"), data.get("id")
        # One test for the common case (all well-formed); the details only when it fails.
        if not ((not kwargs or type(kwargs) is dict) and (not metadata or type(metadata) is dict)
                and (name is None or type(name) is str) and (id_ is None or type(id_) is str)):
            _dict_field(data, "additional_kwargs")
            _dict_field(data, "response_metadata")
            raise ValueError("'name' and 'id' must be str or null")
        message._additional_kwargs = kwargs or None
        message._response_metadata = metadata or None
        message.name = name
        message.id = id_
        return message

    def copy(self, **changes: Any) -> BaseMessage:
        """A shallow copy with some fields replaced: ``msg.copy(content="new")``."""
        fields = self._fields()
        fields.update(changes)
        return type(self)(**fields)

    def model_copy(self, *, update: dict[str, Any] | None = None,
                   deep: bool = False) -> BaseMessage:
        """A copy with some fields replaced, as pydantic's (and so LangChain's)
        ``model_copy``: ``msg.model_copy(update={"content": "new"})``. ``deep=True``
        copies the content blocks and dicts too; ``update`` is not validated."""
        clone = _copy.deepcopy(self) if deep else self.__copy__()
        for key, value in (update or {}).items():
            if key == "type":
                continue  # a class attribute here, as the message's class decides it
            setattr(clone, key, value)
        return clone

    def model_dump(self) -> dict[str, Any]:
        """Every field as a new dict, ``type`` included, as LangChain's ``model_dump``."""
        dumped = _copy.deepcopy(self._fields())
        dumped["type"] = self.type
        return dumped


def _dict_field(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    if not value:
        return None
    if type(value) is not dict:
        raise ValueError(f"{key!r} must be a dict, got {type(value).__name__}")
    return value


def _list_of_dicts(data: dict[str, Any], key: str) -> list[dict[str, Any]] | None:
    value = data.get(key)
    if not value:
        return None
    if type(value) is not list or not all(type(item) is dict for item in value):
        raise ValueError(f"{key!r} must be a list of dicts")
    return value


_SLOTS: dict[type, tuple[str, ...]] = {}


def _slots_of(cls: type) -> tuple[str, ...]:
    slots = _SLOTS.get(cls)
    if slots is None:
        slots = _SLOTS[cls] = tuple(_all_slots(cls))
    return slots


def _all_slots(cls: type) -> list[str]:
    slots: list[str] = []
    for klass in cls.__mro__:
        slots.extend(getattr(klass, "__slots__", ()))
    return slots
