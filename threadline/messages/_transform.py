"""Lists of messages reshaped: runs merged (:func:`merge_message_runs`) and messages
picked out (:func:`filter_messages`), as LangChain's functions of the same names.

Both take anything :func:`convert_to_messages` takes and never change the messages given:
a merged or trimmed message is a new one. The public names are
:mod:`threadline.core._message_ops`'s, which add LangChain's runnable form (called without
messages, each returns itself as a runnable), since a runnable is a higher layer's concept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

from threadline._errors import InputError
from threadline.messages._chunks import (
    AIMessageChunk,
    ChatMessageChunk,
    FunctionMessageChunk,
    HumanMessageChunk,
    SystemMessageChunk,
    ToolMessageChunk,
    merge_content,
)
from threadline.messages._convert import convert_to_messages
from threadline.messages._merge import add_usage, merge_dicts
from threadline.messages._values import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    Content,
    FunctionMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)

__all__ = ["filter_messages", "merge_message_runs"]

# Message types as names ("system") or classes (SystemMessage), one or a sequence of them.
_Types: TypeAlias = "Sequence[str | type[BaseMessage]] | str | type[BaseMessage]"

# A chunk merges as the plain message it stands for, and a merged run is a plain message.
_PLAIN: dict[type[BaseMessage], type[BaseMessage]] = {
    AIMessageChunk: AIMessage,
    HumanMessageChunk: HumanMessage,
    SystemMessageChunk: SystemMessage,
    ChatMessageChunk: ChatMessage,
    FunctionMessageChunk: FunctionMessage,
    ToolMessageChunk: ToolMessage,
}


def merge_message_runs(messages: Any, *, chunk_separator: str = "\n") -> list[BaseMessage]:
    """Merge each run of consecutive messages of one type into one message.

    Text contents are joined with ``chunk_separator``; when one of them is a list of
    content blocks the merged content is a list. Tool calls, ``additional_kwargs`` and
    token usage are combined; the first message's ``id``, ``name`` and
    ``response_metadata`` are kept. Tool messages are never merged (each answers its own
    call).

    >>> [m.content for m in merge_message_runs([HumanMessage("a"), HumanMessage("b"),
    ...                                         AIMessage("c")])]
    ['a\\nb', 'c']
    """
    if not messages:
        return []
    merged: list[BaseMessage] = []
    run: list[BaseMessage] = []
    run_cls: type[BaseMessage] = BaseMessage
    for message in convert_to_messages(messages):
        # As LangChain: a message joins the run if it is an instance of the class of the
        # run so far, a merged run being a plain message (so a chunk follows its plain
        # message, and a plain message follows two merged chunks, but not one chunk).
        if run and isinstance(message, run_cls) and not isinstance(
                message, ToolMessage | RemoveMessage):
            run.append(message)
            run_cls = _PLAIN.get(run_cls, run_cls)
            continue
        if run:
            merged.append(_merge_run(run, chunk_separator))
        run, run_cls = [message], type(message)
    if run:
        merged.append(_merge_run(run, chunk_separator))
    return merged


def _merge_run(run: list[BaseMessage], separator: str) -> BaseMessage:
    first = run[0]
    if len(run) == 1:
        return first
    cls = _PLAIN.get(type(first), type(first))
    content: Content = first.content
    additional: dict[str, Any] = dict(first._additional_kwargs or {})
    for message in run[1:]:
        if (isinstance(content, str) and isinstance(message.content, str) and content
                and message.content):
            content += separator
        content = merge_content(content, message.content)
        if message._additional_kwargs:
            additional = merge_dicts(additional, message._additional_kwargs)
    fields: dict[str, Any] = {
        "additional_kwargs": additional,
        # Only the first message's: LangChain clears the others' before merging.
        "response_metadata": dict(first._response_metadata or {}),
        "name": first.name,
        "id": next((m.id for m in run if m.id), None),
    }
    if isinstance(first, AIMessage):
        fields["tool_calls"] = [call for m in run if isinstance(m, AIMessage)
                                for call in _finished_calls(m)]
        fields["invalid_tool_calls"] = [call for m in run if isinstance(m, AIMessage)
                                        for call in m._invalid_tool_calls or ()]
        usage = None
        for message in run:
            if isinstance(message, AIMessage) and message.usage_metadata:
                usage = add_usage(usage, message.usage_metadata)
        fields["usage_metadata"] = usage
    elif isinstance(first, ChatMessage):
        roles = {m.role for m in run if isinstance(m, ChatMessage)}
        if len(roles) > 1:
            raise InputError(f"cannot merge chat messages of different roles {sorted(roles)}")
        fields["role"] = first.role
    elif isinstance(first, FunctionMessage):
        names = {m.name for m in run}
        if len(names) > 1:
            raise InputError(f"cannot merge function messages of different functions "
                             f"{sorted(str(n) for n in names)}")
    return cls(content, **fields)


def _finished_calls(message: AIMessage) -> list[dict[str, Any]]:
    """A message's tool calls, an AI chunk's partial ones parsed."""
    if isinstance(message, AIMessageChunk) and message._tool_call_chunks:
        return message.to_message().tool_calls
    return list(message._tool_calls or ())


def filter_messages(
    messages: Any,
    *,
    include_names: Sequence[str] | None = None,
    exclude_names: Sequence[str] | None = None,
    include_types: _Types | None = None,
    exclude_types: _Types | None = None,
    include_ids: Sequence[str] | None = None,
    exclude_ids: Sequence[str] | None = None,
    exclude_tool_calls: Sequence[str] | bool | None = None,
) -> list[BaseMessage]:
    """The messages that meet one of the ``include_*`` conditions (all of them when none
    is given) and none of the ``exclude_*`` ones.

    Types are names (``"system"``, ``"human"``, ``"ai"``...) or message classes.
    ``exclude_tool_calls=True`` drops AI messages with tool calls and all tool messages;
    a list of tool call ids drops those calls (and their ``tool_use`` blocks) from AI
    messages, an AI message left with none, and the tool messages answering them.

    >>> filter_messages([SystemMessage("s"), HumanMessage("h")], exclude_types=["system"])
    [HumanMessage(content='h', additional_kwargs={}, response_metadata={})]
    """
    excluded_calls = (set(exclude_tool_calls) if isinstance(exclude_tool_calls, list | tuple
                                                             | set | frozenset) else None)
    kept: list[BaseMessage] = []
    for message in convert_to_messages(messages):
        if ((exclude_names and message.name in exclude_names)
                or (exclude_types and _is_type(message, exclude_types))
                or (exclude_ids and message.id in exclude_ids)):
            continue
        if exclude_tool_calls is True and (
                (isinstance(message, AIMessage) and message._tool_calls)
                or isinstance(message, ToolMessage)):
            continue
        if excluded_calls is not None:
            if isinstance(message, AIMessage) and message._tool_calls:
                calls = [c for c in message._tool_calls if c.get("id") not in excluded_calls]
                if not calls:
                    continue
                content = message.content
                if isinstance(content, list):  # Anthropic's tool_use blocks name the calls
                    content = [block for block in content if not (
                        isinstance(block, dict) and block.get("type") == "tool_use"
                        and block.get("id") in excluded_calls)]
                message = message.model_copy(update={"tool_calls": calls, "content": content})
            elif isinstance(message, ToolMessage) and message.tool_call_id in excluded_calls:
                continue
        if (not (include_types or include_ids or include_names)
                or (include_names and message.name in include_names)
                or (include_types and _is_type(message, include_types))
                or (include_ids and message.id in include_ids)):
            kept.append(message)
    return kept


def _is_type(message: BaseMessage, types: _Types) -> bool:
    wanted = [types] if isinstance(types, str | type) else types
    return any(message.type == t if isinstance(t, str) else isinstance(message, t)
               for t in wanted)
