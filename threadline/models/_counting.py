"""How trimming counts: a ``token_counter`` argument resolved, and prefix counts.

:func:`resolve_counter` turns what ``trim_messages`` (and the token-budget memories)
accept as ``token_counter`` into either a :class:`~threadline.models._counter.TokenCounter`
(the cost is a sum over messages: walked once) or a function over a whole list (counted
as LangChain does, by binary search over prefixes). :class:`_Counting` answers "how many
of these messages fit" for either kind. Kept apart from :mod:`threadline.models._trim`,
whose rules (strategies, partial messages) do not depend on how a count is made.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeAlias

from threadline._errors import InputError
from threadline.core._runnables import RunnableBinding
from threadline.messages._values import BaseMessage
from threadline.models._base import BaseChatModel
from threadline.models._counter import TokenCounter
from threadline.models._tokens import (
    approximate_counter,
    count_tokens_approximately,
    encoding_for_model,
    get_token_counter,
)

__all__ = ["TokenCounterLike", "check_shortcut", "resolve_counter"]

TokenCounterLike: TypeAlias = (
    "Callable[[list[BaseMessage]], int] | Callable[[BaseMessage], int] | BaseChatModel"
    " | RunnableBinding[Any, Any] | TokenCounter | str"
)


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
    if token_counter is count_tokens_approximately:
        # Rounded per message, so its sum is the list's count: walk it once.
        return approximate_counter
    if isinstance(token_counter, RunnableBinding):
        # model.bind(...) counts as the model does (any other runnable is refused below).
        return resolve_counter(token_counter.bound)  # type: ignore[arg-type]
    if isinstance(token_counter, BaseChatModel):
        if callable(getattr(token_counter, "token_counter", None)):
            return get_token_counter(token_counter)
        by_list = getattr(token_counter, "get_num_tokens_from_messages", None)
        if callable(by_list):
            return by_list  # type: ignore[no-any-return]
        return get_token_counter(token_counter)
    by_list = getattr(token_counter, "get_num_tokens_from_messages", None)
    if callable(by_list):
        return by_list  # type: ignore[no-any-return]
    if callable(token_counter):
        if _takes_one_message(token_counter):
            name = getattr(token_counter, "__name__", "per-message counter")
            return _PerMessage(token_counter, name)  # type: ignore[arg-type]
        return token_counter  # type: ignore[return-value]
    # LangChain's message first, so code matching it keeps working.
    raise InputError(
        f"'token_counter' expected to be a model that implements "
        f"'get_num_tokens_from_messages()' or a function. Received object of type "
        f"{type(token_counter)}. (threadline also takes len, a function over one message "
        f"annotated BaseMessage, a TokenCounter, or a model name such as 'gpt-4o', 'local' "
        f"or 'approximate'.)"
    )


def check_shortcut(token_counter: object) -> None:
    """Reject a ``token_counter`` string that names no counter, as LangChain does.

    (:func:`get_token_counter` prices an unknown model name approximately; a misspelt
    shortcut given to ``trim_messages`` is more likely a mistake.)
    """
    if (isinstance(token_counter, str) and token_counter not in ("approximate", "local")
            and encoding_for_model(token_counter) is None):
        raise InputError(
            f"Invalid token_counter shortcut {token_counter!r}. Available shortcuts: "
            f"'approximate', 'local', or an OpenAI model name such as 'gpt-4o'."
        )


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
