"""LangChain's legacy memories: the buffer and window memories over any chat history.

A *memory* is a thin view on a chat message history: it reads the messages a prompt
should see and stores each turn. All reading goes through two pure hooks of
:class:`BaseChatMemory`, so a subclass says only *which* messages it shows:

- ``_read_last()``: how many of the newest messages to fetch from the history
  (``None`` = all). The window memory fetches ``2 * k``, so a store reads only the window.
- ``_select(messages)``: trim what was fetched (a token-budget memory drops the oldest).

The sync and async paths share those hooks and differ only in the history call
(``get_messages`` vs ``aget_messages``). A turn is stored with ONE ``add_messages`` call.
Memories never delete from the history: a window or budget limits what the prompt sees,
while the stored conversation stays whole.

>>> memory = ConversationBufferMemory()
>>> memory.save_context({"input": "Hello!"}, {"output": "Hi!"})
>>> memory.buffer
'Human: Hello!\\nAI: Hi!'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from threadline._errors import InputError
from threadline.core._history import BaseChatMessageHistory, InMemoryChatMessageHistory
from threadline.messages._convert import get_buffer_string
from threadline.messages._values import AIMessage, BaseMessage, HumanMessage

__all__ = [
    "BaseChatMemory",
    "ConversationBufferMemory",
    "ConversationBufferWindowMemory",
]

# LangChain leaves "stop" out when it looks for the one input key to store.
_NOT_INPUT_KEYS = ("stop",)


class BaseChatMemory:
    """Base class of memories backed by a :class:`BaseChatMessageHistory`.

    Subclasses override ``_read_last`` and/or ``_select`` (see the module docstring) and
    may add their own keyword arguments before calling ``super().__init__(**kwargs)``.

    ``buffer``, ``buffer_as_str`` and ``buffer_as_messages`` are properties because
    LangChain code reads them that way; like ``history.messages`` they read the history,
    which in a store is I/O.
    """

    def __init__(
        self,
        *,
        chat_memory: BaseChatMessageHistory | None = None,
        memory_key: str = "history",
        return_messages: bool = False,
        human_prefix: str = "Human",
        ai_prefix: str = "AI",
        input_key: str | None = None,
        output_key: str | None = None,
    ) -> None:
        if chat_memory is None:
            chat_memory = InMemoryChatMessageHistory()
        elif not isinstance(chat_memory, BaseChatMessageHistory):
            raise InputError(
                f"chat_memory must be a chat message history (a BaseChatMessageHistory such "
                f"as InMemoryChatMessageHistory()), got {type(chat_memory).__name__}"
            )
        for name, value in (("memory_key", memory_key), ("human_prefix", human_prefix),
                            ("ai_prefix", ai_prefix)):
            if not isinstance(value, str):
                raise InputError(f"{name} must be a str, got {type(value).__name__}")
        self.chat_memory = chat_memory
        self.memory_key = memory_key
        self.return_messages = return_messages
        self.human_prefix = human_prefix
        self.ai_prefix = ai_prefix
        self.input_key = input_key
        self.output_key = output_key

    # -- the hooks subclasses override (pure) ----------------------------------------------

    def _read_last(self) -> int | None:
        """How many of the newest messages to fetch; ``None`` fetches all."""
        return None

    def _select(self, messages: list[BaseMessage]) -> list[BaseMessage]:
        """The fetched messages the prompt should see."""
        return messages

    # -- pure helpers shared by the sync and async paths -----------------------------------

    @property
    def memory_variables(self) -> list[str]:
        """The prompt variables this memory fills: ``[memory_key]``."""
        return [self.memory_key]

    def _variables(self, messages: list[BaseMessage]) -> dict[str, Any]:
        if self.return_messages:
            return {self.memory_key: messages}
        return {self.memory_key: self._as_str(messages)}

    def _as_str(self, messages: list[BaseMessage]) -> str:
        return get_buffer_string(messages, self.human_prefix, self.ai_prefix)

    def _turn(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> list[BaseMessage]:
        """The human and AI messages of one exchange, picked out as LangChain does."""
        if self.input_key is not None:
            input_key = self.input_key
        else:
            candidates = [k for k in inputs
                          if k not in self.memory_variables and k not in _NOT_INPUT_KEYS]
            if len(candidates) != 1:
                # LangChain's wording first, so code matching its message keeps working.
                raise InputError(
                    f"One input key expected got {candidates}: cannot tell which input to "
                    f"store besides the memory keys {self.memory_variables}; "
                    "set input_key=... on the memory"
                )
            input_key = candidates[0]
        if self.output_key is not None:
            output_key = self.output_key
        elif len(outputs) == 1:
            output_key = next(iter(outputs))
        elif "output" in outputs:
            output_key = "output"
        else:
            raise InputError(
                f"Got multiple output keys: {sorted(outputs)}, cannot determine which to "
                "store in memory; set output_key=... on the memory"
            )
        for key, values, side in ((input_key, inputs, "inputs"),
                                  (output_key, outputs, "outputs")):
            if key not in values:
                raise InputError(f"key {key!r} is not in the {side} (keys: {sorted(values)})")
        return [HumanMessage(inputs[input_key]), AIMessage(outputs[output_key])]

    # -- sync ------------------------------------------------------------------------------

    @property
    def buffer_as_messages(self) -> list[BaseMessage]:
        """The messages the prompt sees (reads the history)."""
        return self._select(self.chat_memory.get_messages(last=self._read_last()))

    @property
    def buffer_as_str(self) -> str:
        """Those messages as ``"Human: ...\\nAI: ..."`` text (reads the history)."""
        return self._as_str(self.buffer_as_messages)

    @property
    def buffer(self) -> str | list[BaseMessage]:
        """Messages if ``return_messages`` else text (reads the history)."""
        return self.buffer_as_messages if self.return_messages else self.buffer_as_str

    def load_memory_variables(self, inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``{memory_key: history}`` for the prompt; ``inputs`` is accepted for LangChain."""
        return self._variables(self.buffer_as_messages)

    def save_context(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        """Store one exchange (the input and the output) with one ``add_messages`` call."""
        self.chat_memory.add_messages(self._turn(inputs, outputs))

    def clear(self) -> None:
        """Delete every message of the underlying history."""
        self.chat_memory.clear()

    # -- async -----------------------------------------------------------------------------

    async def abuffer_as_messages(self) -> list[BaseMessage]:
        return self._select(await self.chat_memory.aget_messages(last=self._read_last()))

    async def abuffer_as_str(self) -> str:
        return self._as_str(await self.abuffer_as_messages())

    async def abuffer(self) -> str | list[BaseMessage]:
        messages = await self.abuffer_as_messages()
        return messages if self.return_messages else self._as_str(messages)

    async def aload_memory_variables(
        self, inputs: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        return self._variables(await self.abuffer_as_messages())

    async def asave_context(self, inputs: Mapping[str, Any],
                            outputs: Mapping[str, Any]) -> None:
        await self.chat_memory.aadd_messages(self._turn(inputs, outputs))

    async def aclear(self) -> None:
        await self.chat_memory.aclear()

    def _repr_fields(self) -> list[str]:
        return [f"chat_memory={self.chat_memory!r}", f"memory_key={self.memory_key!r}",
                f"return_messages={self.return_messages!r}"]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._repr_fields())})"


class ConversationBufferMemory(BaseChatMemory):
    """The whole conversation, as text (default) or as messages (``return_messages=True``).

    Works over any history, e.g. a file::

        memory = ConversationBufferMemory(chat_memory=FileChatMessageHistory("chat.json"))
        memory.save_context({"input": "hi"}, {"output": "hello"})
        memory.load_memory_variables({})   # {'history': 'Human: hi\\nAI: hello'}
    """


class ConversationBufferWindowMemory(BaseChatMemory):
    """Only the last ``k`` exchanges (``2 * k`` messages); the history keeps them all.

    >>> memory = ConversationBufferWindowMemory(k=1)
    >>> memory.save_context({"input": "one"}, {"output": "1"})
    >>> memory.save_context({"input": "two"}, {"output": "2"})
    >>> memory.buffer
    'Human: two\\nAI: 2'
    """

    def __init__(self, *, k: int = 5, **kwargs: Any) -> None:
        if type(k) is not int or k < 0:
            raise InputError(f"k is the number of exchanges to keep, an int >= 0; got {k!r}")
        super().__init__(**kwargs)
        self.k = k

    def _read_last(self) -> int | None:
        return 2 * self.k

    def _repr_fields(self) -> list[str]:
        return [*super()._repr_fields(), f"k={self.k!r}"]
