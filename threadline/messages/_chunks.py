"""Pieces of streamed messages: ``chunk + chunk`` concatenates, as in LangChain.

Every chunk class derives from its plain message class and from
:class:`BaseMessageChunk`. Adding two chunks merges content (:func:`merge_content`),
``additional_kwargs`` and ``response_metadata`` (:mod:`threadline.messages._merge`);
the left side decides the class and the ``id``. :class:`AIMessageChunk` also joins
partial tool calls by ``index``, adds up token usage and keeps the most meaningful
id; its ``tool_calls`` are what its ``tool_call_chunks`` parse to, as LangChain's are.
``to_message()`` (or :func:`message_chunk_to_message`) gives the plain message back.

>>> (AIMessageChunk("Hel") + AIMessageChunk("lo")).content
'Hello'
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, cast

from threadline._errors import InputError
from threadline.messages._merge import add_usage, merge_dicts, merge_lists, merge_obj
from threadline.messages._tool_calls import (
    chunks_from_tool_calls,
    tool_call_chunks_from_openai,
    tool_calls_from_chunks,
)
from threadline.messages._values import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    Content,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    _all_slots,
    _list_of_dicts,
)

__all__ = [
    "AIMessageChunk",
    "BaseMessageChunk",
    "ChatMessageChunk",
    "FunctionMessageChunk",
    "HumanMessageChunk",
    "SystemMessageChunk",
    "ToolMessageChunk",
    "merge_chunks",
    "merge_content",
    "message_chunk_to_message",
]


def merge_content(first_content: Content, *contents: Content) -> Content:
    """Contents concatenated as LangChain's ``merge_content`` does: strings join; a list
    takes strings onto its last string and merges blocks of the same ``index``. The
    first content is never changed.

    >>> merge_content("Hel", "lo")
    'Hello'
    """
    merged: Any = "" if first_content is None else first_content
    if isinstance(merged, list):
        merged = list(merged)
    for content in contents:
        if isinstance(merged, str):
            merged = merged + content if isinstance(content, str) else [merged, *content]
        elif isinstance(content, list):
            merged = merge_lists(merged, content)
        elif merged and isinstance(merged[-1], str):
            merged[-1] += content
        elif content == "":
            pass
        elif merged:
            merged.append(content)
    return merged  # type: ignore[no-any-return]


class BaseMessageChunk(BaseMessage):
    """What every chunk class is, beside its message class: ``isinstance(m,
    BaseMessageChunk)`` tells a streamed piece from a whole message."""

    __slots__ = ()

    def __add__(self, other: object) -> Any:
        if isinstance(other, BaseMessageChunk):
            return _merge_plain(self, [other])
        if isinstance(other, list | tuple) and all(isinstance(o, BaseMessageChunk)
                                                   for o in other):
            return _merge_plain(self, list(other))
        return NotImplemented

    def to_message(self) -> BaseMessage:
        """The plain message this chunk (or sum of chunks) stands for."""
        plain = next(c for c in type(self).__mro__[1:] if not issubclass(c, BaseMessageChunk))
        message = cast("BaseMessage", object.__new__(plain))
        for slot in _all_slots(plain):
            object.__setattr__(message, slot, getattr(self, slot))
        return message


def _merge_plain(left: BaseMessageChunk, others: list[BaseMessageChunk]) -> Any:
    """The sum of chunks as the left one's class, which keeps its own role, name or
    tool call id (LangChain's generic ``BaseMessageChunk.__add__``)."""
    fields: dict[str, Any] = {
        "content": merge_content(left.content, *(o.content for o in others)),
        "additional_kwargs": merge_dicts(left._additional_kwargs or {},
                                         *(o._additional_kwargs or {} for o in others)),
        "response_metadata": merge_dicts(left._response_metadata or {},
                                         *(o._response_metadata or {} for o in others)),
        "id": left.id,
        "name": left.name,
    }
    if isinstance(left, ChatMessage):
        fields["role"] = left.role
    elif isinstance(left, ToolMessage):
        fields.update(tool_call_id=left.tool_call_id, artifact=left.artifact,
                      status=left.status)
    content = fields.pop("content")
    return type(left)(content, **fields)


class AIMessageChunk(AIMessage, BaseMessageChunk):
    """A piece of a streamed answer; ``chunk + chunk`` concatenates.

    ``tool_call_chunks`` holds partial tool calls (``{"name", "args", "id", "index"}``
    with ``args`` a JSON string still growing); ``tool_calls`` and
    ``invalid_tool_calls`` are what they parse to (partial JSON included), and a chunk
    made from whole ``tool_calls`` gets the chunks that stand for them.
    """

    __slots__ = ("_tool_call_chunks", "chunk_position")
    type: ClassVar[str] = "AIMessageChunk"
    _extra_fields: ClassVar[tuple[str, ...]] = (*AIMessage._extra_fields, "tool_call_chunks",
                                                "chunk_position")
    _repr_defaults: ClassVar[dict[str, Any]] = {**AIMessage._repr_defaults,
                                                 "chunk_position": None}

    _tool_call_chunks: list[dict[str, Any]] | None
    chunk_position: Literal["last"] | None

    def __init__(
        self,
        content: Content = "",
        *,
        tool_call_chunks: list[dict[str, Any]] | None = None,
        chunk_position: Literal["last"] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(content, **kwargs)
        self.chunk_position = chunk_position
        if not (tool_call_chunks or self._tool_calls or self._invalid_tool_calls) and (
                self._additional_kwargs and self._additional_kwargs.get("tool_calls")):
            # OpenAI-format deltas there become the chunks, as LangChain parses them;
            # anything else stays in additional_kwargs only.
            with contextlib.suppress(TypeError, KeyError, AttributeError):
                tool_call_chunks = tool_call_chunks_from_openai(
                    self._additional_kwargs["tool_calls"])
        if tool_call_chunks:
            self._tool_call_chunks = [c if "type" in c else {**c, "type": "tool_call_chunk"}
                                      for c in tool_call_chunks]
            calls, invalid = tool_calls_from_chunks(self._tool_call_chunks)
            self._tool_calls, self._invalid_tool_calls = calls or None, invalid or None
        elif self._tool_calls or self._invalid_tool_calls:
            self._tool_call_chunks = chunks_from_tool_calls(self._tool_calls,
                                                            self._invalid_tool_calls)
        else:
            self._tool_call_chunks = None

    def _legacy_tool_calls(self, raw: Any) -> None:
        pass  # a chunk parses them into tool_call_chunks instead (in __init__)

    @classmethod
    def _from_data(cls, content: Content, data: dict[str, Any]) -> BaseMessage:
        message = super()._from_data(content, data)
        assert isinstance(message, AIMessageChunk)
        message._tool_call_chunks = chunks = _list_of_dicts(data, "tool_call_chunks")
        if chunks:  # what they parse to, as in __init__ (and LangChain)
            calls, invalid = tool_calls_from_chunks(chunks)
            message._tool_calls, message._invalid_tool_calls = calls or None, invalid or None
        message.chunk_position = data.get("chunk_position")
        return message

    @property
    def tool_call_chunks(self) -> list[dict[str, Any]]:
        if self._tool_call_chunks is None:
            self._tool_call_chunks = []
        return self._tool_call_chunks

    @tool_call_chunks.setter
    def tool_call_chunks(self, value: list[dict[str, Any]]) -> None:
        self._tool_call_chunks = value

    def __add__(self, other: object) -> Any:
        if isinstance(other, AIMessageChunk):
            return merge_chunks([self, other])
        if isinstance(other, list | tuple) and all(isinstance(o, AIMessageChunk) for o in other):
            return merge_chunks([self, *other])
        return super().__add__(other)

    def to_message(self) -> AIMessage:
        """The finished :class:`AIMessage` this chunk (or sum of chunks) stands for."""
        return AIMessage(
            self.content,
            additional_kwargs=self._additional_kwargs,
            response_metadata=self._response_metadata,
            name=self.name,
            id=self.id,
            tool_calls=list(self._tool_calls or ()),
            invalid_tool_calls=list(self._invalid_tool_calls or ()),
            usage_metadata=self.usage_metadata,
        )


def _id_rank(id_: str) -> int:
    # LangChain's order: an id from the provider (or the user) beats the "lc_run-" id of
    # a run, which beats other "lc_" ids.
    if not id_.startswith("lc_"):
        return 2
    return 1 if id_.startswith("lc_run-") else 0


def merge_chunks(chunks: Sequence[AIMessageChunk]) -> AIMessageChunk:
    """The sum of many chunks in one pass, as LangChain's ``add_ai_message_chunks``
    (``sum`` with ``+`` would copy the text at each step)."""
    first = chunks[0]
    if len(chunks) == 1:
        return first
    others = chunks[1:]
    contents = [c.content for c in chunks]
    if all(type(c) is str for c in contents):
        content: Content = "".join(contents)  # type: ignore[arg-type]
    else:
        content = merge_content(contents[0], *contents[1:])
    # Each field merged only when some chunk has it: most stream chunks carry text only.
    kwargs = [c._additional_kwargs for c in chunks if c._additional_kwargs]
    additional = merge_dicts(*kwargs) if kwargs else None
    metadatas = [c._response_metadata for c in chunks if c._response_metadata]
    metadata = merge_dicts(*metadatas) if metadatas else None
    call_chunks = None
    pieces = [c._tool_call_chunks for c in chunks if c._tool_call_chunks]
    if pieces:
        call_chunks = [{"name": c.get("name"), "args": c.get("args"), "id": c.get("id"),
                        "index": c.get("index"), "type": "tool_call_chunk"}
                       for c in merge_lists(*pieces) or ()]
    usage = first.usage_metadata
    if usage or any(c.usage_metadata is not None for c in others):
        for chunk in others:
            usage = add_usage(usage, chunk.usage_metadata)
    best, best_rank = None, -1
    name: str | None = None
    position: Literal["last"] | None = None
    for chunk in chunks:
        if chunk.id and best_rank < 2:
            rank = _id_rank(chunk.id)
            if rank > best_rank:
                best, best_rank = chunk.id, rank
        if name is None:
            name = chunk.name
        if chunk.chunk_position == "last":
            position = "last"
    return type(first)(
        content,
        additional_kwargs=additional,
        response_metadata=metadata,
        name=name,
        id=best,
        usage_metadata=usage,
        tool_call_chunks=call_chunks,
        chunk_position=position,
    )


def message_chunk_to_message(chunk: BaseMessage) -> BaseMessage:
    """The plain message a chunk stands for; any other message is returned as it is."""
    if isinstance(chunk, BaseMessageChunk):
        return chunk.to_message()
    return chunk


# -- chunks of the other types ---------------------------------------------------------------


class HumanMessageChunk(HumanMessage, BaseMessageChunk):
    """A piece of a streamed human message; ``chunk + chunk`` concatenates."""

    __slots__ = ()
    type: ClassVar[str] = "HumanMessageChunk"


class SystemMessageChunk(SystemMessage, BaseMessageChunk):
    """A piece of a streamed system message; ``chunk + chunk`` concatenates."""

    __slots__ = ()
    type: ClassVar[str] = "SystemMessageChunk"


class ChatMessageChunk(ChatMessage, BaseMessageChunk):
    """A piece of a streamed message with any role; chunks of one role concatenate."""

    __slots__ = ()
    type: ClassVar[str] = "ChatMessageChunk"

    def __add__(self, other: object) -> Any:
        if isinstance(other, ChatMessageChunk) and self.role != other.role:
            raise InputError(f"Cannot concatenate ChatMessageChunks with different roles "
                             f"({self.role!r} and {other.role!r}).")
        return super().__add__(other)


class FunctionMessageChunk(FunctionMessage, BaseMessageChunk):
    """A piece of a streamed function result; chunks of one function concatenate."""

    __slots__ = ()
    type: ClassVar[str] = "FunctionMessageChunk"

    def __add__(self, other: object) -> Any:
        if isinstance(other, FunctionMessageChunk) and self.name != other.name:
            raise InputError(f"Cannot concatenate FunctionMessageChunks with different names "
                             f"({self.name!r} and {other.name!r}).")
        return super().__add__(other)


class ToolMessageChunk(ToolMessage, BaseMessageChunk):
    """A piece of a streamed tool result; chunks of one tool call concatenate."""

    __slots__ = ()
    type: ClassVar[str] = "ToolMessageChunk"

    def __add__(self, other: object) -> Any:
        if isinstance(other, ToolMessageChunk):
            if self.tool_call_id != other.tool_call_id:
                raise InputError(f"Cannot concatenate ToolMessageChunks with different "
                                 f"tool call ids ({self.tool_call_id!r} and "
                                 f"{other.tool_call_id!r}).")
            merged = _merge_plain(self, [other])
            merged.artifact = merge_obj(self.artifact, other.artifact)
            merged.status = "error" if "error" in (self.status, other.status) else "success"
            return merged
        return super().__add__(other)
