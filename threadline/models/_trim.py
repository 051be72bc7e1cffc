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

Defaults differ from LangChain's on purpose: ``include_system=True`` and
``start_on="human"`` (for ``strategy="last"``) give a history a chat model accepts, which
is what LangChain's own documentation recommends passing.
"""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeAlias, overload

from threadline._errors import InputError
from threadline.core._runnables import RunnableLambda
from threadline.messages._convert import convert_to_messages
from threadline.messages._values import BaseMessage, SystemMessage
from threadline.models._base import BaseChatModel
from threadline.models._counter import TokenCounter
from threadline.models._tokens import get_token_counter

__all__ = ["TokenCounterLike", "resolve_counter", "trim_messages"]

MessageType: TypeAlias = "str | type[BaseMessage]"
MessageTypes: TypeAlias = "str | type[BaseMessage] | Sequence[str | type[BaseMessage]]"
TokenCounterLike: TypeAlias = (
    "Callable[[list[BaseMessage]], int] | Callable[[BaseMessage], int] | BaseChatModel"
    " | TokenCounter | str"
)


class _Default(enum.Enum):
    """Marks a parameter whose default depends on ``strategy``."""

    VALUE = enum.auto()


_DEFAULT = _Default.VALUE


class _PerMessage(TokenCounter):
    """A user function pricing one message (or ``len``: one token a message)."""

    def __init__(self, func: Callable[[BaseMessage], int], name: str) -> None:
        self.func = func
        self.name = name
        # A user's function may price a message at 0; only len is known to say 1.
        self.min_message_tokens = 1 if func is _one else 0

    def message_tokens(self, message: BaseMessage) -> int:
        return self.func(message)


def _one(message: BaseMessage) -> int:
    return 1


def _takes_one_message(func: Callable[..., Any]) -> bool:
    """Whether ``func``'s first parameter is annotated as a message, as LangChain checks
    (also when the annotation is a string under ``from __future__ import annotations``)."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False
    if not params:
        return False
    annotation = params[0].annotation
    if isinstance(annotation, str):
        return annotation.rsplit(".", 1)[-1] in ("BaseMessage", "AnyMessage")
    return isinstance(annotation, type) and annotation.__name__ == "BaseMessage"


def resolve_counter(
    token_counter: TokenCounterLike,
) -> TokenCounter | Callable[[list[BaseMessage]], int]:
    """A :class:`TokenCounter` when the cost is a sum over messages, else a list function."""
    if isinstance(token_counter, TokenCounter | str):
        return get_token_counter(token_counter)
    if token_counter is len:
        return _PerMessage(_one, "len")
    if isinstance(token_counter, BaseChatModel):
        if callable(getattr(token_counter, "token_counter", None)):
            return get_token_counter(token_counter)
        by_list = getattr(token_counter, "get_num_tokens_from_messages", None)
        if callable(by_list):
            return by_list  # type: ignore[no-any-return]
        return get_token_counter(token_counter)
    if callable(token_counter):
        if _takes_one_message(token_counter):
            name = getattr(token_counter, "__name__", "per-message counter")
            return _PerMessage(token_counter, name)  # type: ignore[arg-type]
        return token_counter  # type: ignore[return-value]
    raise InputError(
        f"token_counter must be a function over a list of messages, a function over one "
        f"message (annotated BaseMessage), len, a chat model, or a model name such as "
        f"'gpt-4o', 'local' or 'approximate'; got {type(token_counter).__name__}"
    )


def _is_type(message: BaseMessage, types: MessageTypes) -> bool:
    wanted = [types] if isinstance(types, str | type) else list(types)
    names = [t for t in wanted if isinstance(t, str)]
    classes = tuple(t for t in wanted if isinstance(t, type))
    return message.type in names or isinstance(message, classes)


class _Counting:
    """Prefix counts over one list: incremental for sums, LangChain's calls otherwise."""

    def __init__(self, counter: TokenCounter | Callable[[list[BaseMessage]], int]) -> None:
        self.additive = counter if isinstance(counter, TokenCounter) else None
        self.by_list = None if isinstance(counter, TokenCounter) else counter

    def total(self, messages: list[BaseMessage]) -> int:
        if self.additive is not None:
            # The sum, even where the counter has an exact count_messages: fit() walks
            # sums, and the two must agree.
            return self.additive.reply_tokens() + sum(map(self.additive.message_tokens,
                                                          messages))
        assert self.by_list is not None
        return self.by_list(messages)

    def fit(self, messages: list[BaseMessage], max_tokens: int) -> tuple[int, int | None]:
        """(largest k with total(messages[:k]) <= max_tokens, that total if known)."""
        if self.additive is not None:
            cost = self.additive.message_tokens
            total = self.additive.reply_tokens()
            for k, message in enumerate(messages):
                after = total + cost(message)
                if after > max_tokens:
                    return k, total
                total = after
            return len(messages), total
        assert self.by_list is not None
        count = self.by_list
        if count(messages) <= max_tokens:
            return len(messages), None
        left, right = 0, len(messages)
        for _ in range(len(messages).bit_length()):
            if left >= right:
                break
            mid = (left + right + 1) // 2
            if count(messages[:mid]) <= max_tokens:
                left = mid
            else:
                right = mid - 1
        return left, None

    def with_one(self, prefix: list[BaseMessage], prefix_total: int | None,
                 message: BaseMessage) -> int:
        """total(prefix + [message])."""
        if self.additive is not None and prefix_total is not None:
            return prefix_total + self.additive.message_tokens(message)
        return self.total([*prefix, message])


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
    text_splitter: Callable[[str], list[str]] | None = None,
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
    text_splitter: Callable[[str], list[str]] | None = None,
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
    text_splitter: Callable[[str], list[str]] | None = None,
) -> list[BaseMessage] | RunnableLambda[Any, list[BaseMessage]]:
    """Trim messages to at most ``max_tokens`` tokens, as LangChain's ``trim_messages``.

    ``token_counter``: a model name (``"gpt-4o"``, ``"local"``, ``"approximate"``), a chat
    model (its tokenizer), ``len`` (count messages), a function over one message
    (annotated ``BaseMessage``) or over a list. ``strategy="last"`` keeps the newest
    messages, with the leading system message (``include_system``, default ``True``) and
    starting on a human message (``start_on``, default ``"human"``; ``None`` for no such
    rule); ``strategy="first"`` keeps the oldest. Without ``messages`` it returns a
    runnable, for ``prompt | trimmer | model``::

        trimmer = trim_messages(max_tokens=1000, token_counter="gpt-4o")
        chain = prompt | trimmer | model

    >>> history = [SystemMessage("Be terse."), HumanMessage("1"), AIMessage("2"),
    ...            HumanMessage("3"), AIMessage("4"), HumanMessage("5")]
    >>> [m.content for m in trim_messages(history, max_tokens=3, token_counter=len)]
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
            start_on = "human"
        if include_system is _DEFAULT:
            include_system = True
    assert not isinstance(start_on, _Default) and not isinstance(include_system, _Default)
    run = functools.partial(
        _trim,
        max_tokens=max_tokens,
        counting=_Counting(resolve_counter(token_counter)),
        strategy=strategy,
        allow_partial=allow_partial,
        end_on=end_on,
        start_on=start_on,
        include_system=include_system,
        text_splitter=text_splitter or _default_text_splitter,
    )
    if messages is None:
        return RunnableLambda(run, name="trim_messages")
    return run(messages)
