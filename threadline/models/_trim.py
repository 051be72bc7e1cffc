"""``trim_messages``: keep a conversation within a token budget, LangChain's semantics.

The rules are langchain_core's ``trim_messages`` (tests run both on the same inputs):
``strategy="last"`` keeps the newest messages that fit (after keeping a leading system
message with ``include_system``, and then dropping messages until the kept ones start on
``start_on``); ``strategy="first"`` keeps the oldest; ``end_on`` drops trailing messages
of other types; ``allow_partial`` cuts the message at the boundary (its content blocks,
or its text split by ``text_splitter``) instead of dropping it whole.

What differs is the cost. LangChain binary-searches prefix lengths and re-counts the
whole prefix at every probe. Here a counter that prices each message separately (a
:class:`~threadline.models._counter.TokenCounter`: model names, chat models, ``len``, or a
function annotated to take one ``BaseMessage``) is walked once from the kept end: every
message is counted at most once, and only until the budget runs out. Only a function over
a whole list, whose total need not be a sum, falls back to LangChain's binary search.

``token_counter`` is also resolved as LangChain does it: a string must name a counter
(``"approximate"``, ``"local"`` or an OpenAI model), a bound model (``model.bind(...)``)
counts as its model, any object with ``get_num_tokens_from_messages`` counts with it,
and a trimmer made without messages rejects a wrong one when it runs, not when it is made.

The defaults are LangChain's (``include_system=False``, ``start_on=None``), so a ported
app trims as it did; LangChain's documentation recommends passing ``include_system=True``
and ``start_on="human"``, which give a history every chat model accepts.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol, TypeAlias, overload

from threadline._errors import InputError
from threadline.core._runnables import RunnableLambda
from threadline.messages._convert import convert_to_messages
from threadline.messages._values import BaseMessage, SystemMessage
from threadline.models._counting import TokenCounterLike, check_shortcut, resolve_counter

# Re-exported: the token-budget memories import it from here.
from threadline.models._counting import _Counting as _Counting

__all__ = ["TokenCounterLike", "resolve_counter", "trim_messages"]

MessageType: TypeAlias = "str | type[BaseMessage]"
MessageTypes: TypeAlias = "str | type[BaseMessage] | Sequence[str | type[BaseMessage]]"


class _SplitsText(Protocol):
    """A LangChain ``TextSplitter``: what ``trim_messages`` uses of it."""

    def split_text(self, text: str) -> list[str]: ...


TextSplitterLike: TypeAlias = "Callable[[str], list[str]] | _SplitsText"


class _Default(enum.Enum):
    """Marks a parameter whose default depends on ``strategy``."""

    VALUE = enum.auto()


_DEFAULT = _Default.VALUE


def _splitter(
    text_splitter: TextSplitterLike | None,
) -> Callable[[str], list[str]]:
    """The text splitter as a function: ``split_text`` of a LangChain ``TextSplitter``."""
    if text_splitter is None:
        return _default_text_splitter
    split_text = getattr(text_splitter, "split_text", None)
    if callable(split_text):
        return split_text  # type: ignore[no-any-return]
    if callable(text_splitter):
        return text_splitter
    raise InputError(
        f"text_splitter must be a function from a str to a list of str, or an object with "
        f"split_text(); got {type(text_splitter).__name__}"
    )


def _is_type(message: BaseMessage, types: MessageTypes) -> bool:
    wanted = [types] if isinstance(types, str | type) else list(types)
    names = [t for t in wanted if isinstance(t, str)]
    classes = tuple(t for t in wanted if isinstance(t, type))
    return message.type in names or isinstance(message, classes)


def _text_of(message: BaseMessage) -> str | None:
    content = message.content
    if isinstance(content, str):
        return content
    for block in content:
        if isinstance(block, str):
            return block
        if isinstance(block, dict) and block.get("type") == "text":
            text = block.get("text")
            return text if isinstance(text, str) else None
    return None


def _default_text_splitter(text: str) -> list[str]:
    splits = text.split("\n")
    return [s + "\n" for s in splits[:-1]] + splits[-1:]


def _first_max_tokens(
    messages: list[BaseMessage],
    *,
    max_tokens: int,
    counting: _Counting,
    text_splitter: Callable[[str], list[str]],
    partial: Literal["first", "last"] | None,
    end_on: MessageTypes | None,
) -> list[BaseMessage]:
    if not messages:
        return []
    idx, prefix_total = counting.fit(messages, max_tokens)
    if partial and idx < len(messages):
        messages, idx = _add_partial(messages, idx, prefix_total, max_tokens, counting,
                                     text_splitter, partial)
    if end_on:
        while idx > 0 and not _is_type(messages[idx - 1], end_on):
            idx -= 1
    return messages[:idx]


def _add_partial(
    messages: list[BaseMessage],
    idx: int,
    prefix_total: int | None,
    max_tokens: int,
    counting: _Counting,
    text_splitter: Callable[[str], list[str]],
    partial: Literal["first", "last"],
) -> tuple[list[BaseMessage], int]:
    """Fit as much of ``messages[idx]`` as the budget leaves (LangChain's rules)."""
    prefix = messages[:idx]
    original = messages[idx]
    if isinstance(original.content, list):
        blocks = list(original.content)
        if partial == "last":
            blocks.reverse()
        for keep in range(len(blocks) - 1, 0, -1):
            candidate = original.copy(content=blocks[:keep])
            if counting.with_one(prefix, prefix_total, candidate) <= max_tokens:
                kept = blocks[:keep]
                if partial == "last":
                    kept.reverse()
                return [*prefix, original.copy(content=kept)], idx + 1
        # LangChain then splits the text of the one block its loop left: the first block
        # kept from the end it keeps.
        text = _text_of(original.copy(content=blocks[:1]))
    else:
        text = _text_of(original)
    if not text:
        return messages, idx
    splits = text_splitter(text)
    if partial == "last":
        splits.reverse()
    # As LangChain does: the prefix's total plus the piece counted as a list of its own.
    base = prefix_total if prefix_total is not None else counting.total(prefix)
    left, right = 0, len(splits)
    for _ in range(len(splits).bit_length()):
        if left >= right:
            break
        mid = (left + right + 1) // 2
        candidate = original.copy(content="".join(splits[:mid]))
        if base + counting.total([candidate]) <= max_tokens:
            left = mid
        else:
            right = mid - 1
    if left == 0:
        return messages, idx
    pieces = splits[:left]
    if partial == "last":
        pieces.reverse()
    return [*prefix, original.copy(content="".join(pieces))], idx + 1


def _trim(
    messages: Any,
    *,
    max_tokens: int,
    counting: _Counting,
    strategy: Literal["first", "last"],
    allow_partial: bool,
    end_on: MessageTypes | None,
    start_on: MessageTypes | None,
    include_system: bool,
    text_splitter: Callable[[str], list[str]],
) -> list[BaseMessage]:
    listed = convert_to_messages(messages)
    if strategy == "first":
        return _first_max_tokens(listed, max_tokens=max_tokens, counting=counting,
                                 text_splitter=text_splitter,
                                 partial="first" if allow_partial else None, end_on=end_on)
    if not listed:
        return []
    if end_on:
        while listed and not _is_type(listed[-1], end_on):
            listed.pop()
    system: BaseMessage | None = None
    if include_system and listed and isinstance(listed[0], SystemMessage):
        system, listed = listed[0], listed[1:]
    remaining = max_tokens
    if system is not None:
        remaining = max(0, max_tokens - counting.total([system]))
    kept = _first_max_tokens(listed[::-1], max_tokens=remaining, counting=counting,
                             text_splitter=text_splitter,
                             partial="last" if allow_partial else None, end_on=start_on)
    kept.reverse()
    return [system, *kept] if system is not None else kept


@overload
def trim_messages(
    messages: None = None,
    *,
    max_tokens: int,
    token_counter: TokenCounterLike,
    strategy: Literal["first", "last"] = "last",
    allow_partial: bool = False,
    end_on: MessageTypes | None = None,
    start_on: MessageTypes | _Default | None = _DEFAULT,
    include_system: bool | _Default = _DEFAULT,
    text_splitter: TextSplitterLike | None = None,
) -> RunnableLambda[Any, list[BaseMessage]]: ...


@overload
def trim_messages(
    messages: Any,
    *,
    max_tokens: int,
    token_counter: TokenCounterLike,
    strategy: Literal["first", "last"] = "last",
    allow_partial: bool = False,
    end_on: MessageTypes | None = None,
    start_on: MessageTypes | _Default | None = _DEFAULT,
    include_system: bool | _Default = _DEFAULT,
    text_splitter: TextSplitterLike | None = None,
) -> list[BaseMessage]: ...


def trim_messages(
    messages: Any = None,
    *,
    max_tokens: int,
    token_counter: TokenCounterLike,
    strategy: Literal["first", "last"] = "last",
    allow_partial: bool = False,
    end_on: MessageTypes | None = None,
    start_on: MessageTypes | _Default | None = _DEFAULT,
    include_system: bool | _Default = _DEFAULT,
    text_splitter: TextSplitterLike | None = None,
) -> list[BaseMessage] | RunnableLambda[Any, list[BaseMessage]]:
    """Trim messages to at most ``max_tokens`` tokens, as LangChain's ``trim_messages``.

    ``token_counter``: a model name (``"gpt-4o"``, ``"local"``, ``"approximate"``), a chat
    model (its tokenizer, or its ``get_num_tokens_from_messages``), ``len`` (count
    messages), a function over one message (annotated ``BaseMessage``) or over a list such
    as :func:`count_tokens_approximately`. ``text_splitter`` (a function, or an object with
    ``split_text``) cuts text for ``allow_partial``. ``strategy="last"`` keeps the newest
    messages, with the leading system message if ``include_system=True``, and starting on
    a message of the type ``start_on`` names (``"human"`` is what a chat model wants);
    ``strategy="first"`` keeps the oldest. The defaults are LangChain's (``False``,
    ``None``). Without ``messages`` it returns a runnable, for ``prompt | trimmer | model``::

        trimmer = trim_messages(max_tokens=1000, token_counter="gpt-4o")
        chain = prompt | trimmer | model

    >>> history = [SystemMessage("Be terse."), HumanMessage("1"), AIMessage("2"),
    ...            HumanMessage("3"), AIMessage("4"), HumanMessage("5")]
    >>> [m.content for m in trim_messages(history, max_tokens=3, token_counter=len,
    ...                                   include_system=True, start_on="human")]
    ['Be terse.', '5']
    """
    if type(max_tokens) is not int:
        raise InputError(f"max_tokens must be an int, got {max_tokens!r}")
    if strategy not in ("first", "last"):
        raise InputError(f"strategy must be 'first' or 'last', got {strategy!r}")
    if strategy == "first":
        if start_on is not _DEFAULT and start_on:
            raise InputError("start_on is only valid with strategy='last'")
        if include_system is not _DEFAULT and include_system:
            raise InputError("include_system is only valid with strategy='last'")
        start_on, include_system = None, False
    else:
        if start_on is _DEFAULT:
            start_on = None
        if include_system is _DEFAULT:
            include_system = False
    assert not isinstance(start_on, _Default) and not isinstance(include_system, _Default)
    check_shortcut(token_counter)
    run = functools.partial(
        _trim,
        max_tokens=max_tokens,
        strategy=strategy,
        allow_partial=allow_partial,
        end_on=end_on,
        start_on=start_on,
        include_system=include_system,
        text_splitter=_splitter(text_splitter),
    )
    if messages is not None:
        return run(messages, counting=_Counting(resolve_counter(token_counter)))
    # As LangChain's, a trimmer takes any token_counter and rejects a wrong one when it
    # runs; it is resolved once, on the first run.
    resolved: list[_Counting] = []

    def trim(input: Any) -> list[BaseMessage]:
        if not resolved:
            resolved.append(_Counting(resolve_counter(token_counter)))
        return run(input, counting=resolved[0])

    return RunnableLambda(trim, name="trim_messages")
