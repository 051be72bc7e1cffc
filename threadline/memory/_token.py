"""``ConversationTokenBufferMemory``: the newest messages that fit a token budget.

LangChain's class deletes the oldest messages from the stored buffer in
``save_context`` once the buffer outgrows ``max_token_limit``. Here the history keeps
the whole conversation, as every threadline memory does, and the budget limits what the
prompt *sees*: on each load the newest messages are kept while
``count(kept) <= max_token_limit`` (the same messages LangChain's pruned buffer holds,
since it drops oldest-first until the count fits).

The counting is :func:`~threadline.trim_messages` with ``strategy="last"`` and no other
rule, so a per-message counter (model names, chat models) walks the messages once from
the newest. With such a counter the history is asked for only as many messages as could
possibly fit (``max_token_limit // min_message_tokens + 1``), so a long stored
conversation is not read whole on every turn.
"""

from __future__ import annotations

from typing import Any

from threadline._errors import InputError
from threadline.memory._buffer import BaseChatMemory
from threadline.messages._values import BaseMessage
from threadline.models._counter import TokenCounter
from threadline.models._trim import TokenCounterLike, _Counting, _trim, resolve_counter

__all__ = ["ConversationTokenBufferMemory"]


class ConversationTokenBufferMemory(BaseChatMemory):
    """The newest messages whose tokens fit ``max_token_limit``; the history keeps all.

    ``llm`` prices the messages: a chat model (its tokenizer, e.g. a
    :class:`~threadline.LocalChatModel`), a model name (``"gpt-4o"``), or anything
    ``trim_messages`` takes as ``token_counter``.

    >>> memory = ConversationTokenBufferMemory(llm="gpt-4o", max_token_limit=20)
    >>> memory.save_context({"input": "hello world"}, {"output": "hi"})
    >>> memory.save_context({"input": "how are you?"}, {"output": "fine"})
    >>> memory.buffer   # 3 (reply) + 8 + 5 fits; the older pair would not
    'Human: how are you?\\nAI: fine'
    """

    def __init__(self, *, llm: TokenCounterLike, max_token_limit: int = 2000,
                 **kwargs: Any) -> None:
        if type(max_token_limit) is not int or max_token_limit < 0:
            raise InputError(f"max_token_limit must be an int >= 0, got {max_token_limit!r}")
        super().__init__(**kwargs)
        self.llm = llm
        self.max_token_limit = max_token_limit
        counter = resolve_counter(llm)
        self._counting = _Counting(counter)
        self._min_cost = counter.min_message_tokens if isinstance(counter, TokenCounter) else 0

    def _read_last(self) -> int | None:
        if self._min_cost <= 0:
            return None
        return self.max_token_limit // self._min_cost + 1

    def _select(self, messages: list[BaseMessage]) -> list[BaseMessage]:
        return _trim(messages, max_tokens=self.max_token_limit, counting=self._counting,
                     strategy="last", allow_partial=False, end_on=None, start_on=None,
                     include_system=False, text_splitter=str.splitlines)

    def _repr_fields(self) -> list[str]:
        return [*super()._repr_fields(), f"llm={self.llm!r}",
                f"max_token_limit={self.max_token_limit!r}"]
