"""LangChain's summarizer and its two legacy summary memories.

:class:`Summarizer` asks a model to extend a running summary with new lines of
conversation (LangChain's ``SummarizerMixin``, with its prompt :data:`SUMMARY_PROMPT`);
:func:`split_window` and :func:`summary_chunks` decide which messages leave a token
window and in what pieces they are summarised. :class:`SummaryBufferHistory` (in
``_summary``) builds the stored, restart-proof compaction on them; the memories here keep
LangChain's surface and semantics:

- :class:`ConversationSummaryMemory`: after each turn the summary is extended with that
  turn; the prompt sees only the summary (``buffer``).
- :class:`ConversationSummaryBufferMemory`: the prompt sees the summary
  (``moving_summary_buffer``, as a system message) and the newest messages that fit
  ``max_token_limit``; ``prune()`` summarises what left the window.

One difference on purpose: LangChain's ``prune`` pops the summarised messages out of an
in-memory history (and, over a store whose ``messages`` is a copy, re-summarises them
every turn). Here the history keeps every message, as with every threadline memory, and
the memory counts how many of the first messages its summary covers (``summarized``).
Like LangChain's, the summary itself lives in the memory object; for one that is stored
and survives restarts, use :class:`~threadline.SummaryBufferHistory`.

If the model fails while summarising, the turn is already stored and the old summary is
kept; the error propagates (from ``save_context``, and so from ``ConversationChain``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from threadline._errors import InputError
from threadline._foreign import convert as convert_foreign
from threadline._foreign import describe
from threadline.core._history import BaseChatMessageHistory
from threadline.core._prompts import ChatPromptTemplate, PromptTemplate
from threadline.core._runnables import Runnable
from threadline.memory._buffer import BaseChatMemory
from threadline.messages._convert import get_buffer_string
from threadline.messages._values import BaseMessage, SystemMessage
from threadline.models._base import BaseChatModel
from threadline.models._trim import TokenCounterLike, _Counting, resolve_counter

__all__ = [
    "SUMMARY_PROMPT",
    "ConversationSummaryBufferMemory",
    "ConversationSummaryMemory",
    "Summarizer",
    "split_window",
    "summary_chunks",
]

#: LangChain's progressive-summary prompt, word for word (``SUMMARY_PROMPT`` of
#: ``langchain_classic.memory.prompt``); any prompt with ``{summary}`` and ``{new_lines}``
#: may replace it.
SUMMARY_PROMPT = PromptTemplate("""Progressively summarize the lines of conversation \
provided, adding onto the previous summary returning a new summary.

EXAMPLE
Current summary:
The human asks what the AI thinks of artificial intelligence. The AI thinks artificial \
intelligence is a force for good.

New lines of conversation:
Human: Why do you think artificial intelligence is a force for good?
AI: Because artificial intelligence will help humans reach their full potential.

New summary:
The human asks what the AI thinks of artificial intelligence. The AI thinks artificial \
intelligence is a force for good because it will help humans reach their full potential.
END OF EXAMPLE

Current summary:
{summary}

New lines of conversation:
{new_lines}

New summary:""")

_PROMPT_VARIABLES = {"summary", "new_lines"}

def _check_prompt(prompt: object) -> PromptTemplate | ChatPromptTemplate:
    if prompt is None:
        return SUMMARY_PROMPT
    if not isinstance(prompt, PromptTemplate | ChatPromptTemplate):
        raise InputError(f"prompt must be a PromptTemplate or a ChatPromptTemplate, got "
                         f"{type(prompt).__name__}")
    if set(prompt.input_variables) != _PROMPT_VARIABLES:
        raise InputError(f"a summary prompt takes the variables {sorted(_PROMPT_VARIABLES)}, "
                         f"this one takes {prompt.input_variables}")
    return prompt


class Summarizer:
    """Asks a model to extend a summary with new lines (LangChain's ``SummarizerMixin``).

    ``model`` is a chat model, any runnable from a prompt value to a message or a str, or
    a LangChain chat model (converted). The answer's text, stripped, is the new summary.
    """

    def __init__(self, model: Any, *, prompt: PromptTemplate | ChatPromptTemplate | None = None,
                 human_prefix: str = "Human", ai_prefix: str = "AI") -> None:
        if not isinstance(model, Runnable):
            foreign = convert_foreign("runnable", model)
            if foreign is None:
                raise InputError(f"the summarizing model must be a chat model or another "
                                 f"Runnable, got {describe(model)}")
            model = foreign
        self.model: Runnable[Any, Any] = model
        self.prompt = _check_prompt(prompt)
        self.human_prefix = human_prefix
        self.ai_prefix = ai_prefix
        self.model_name: str = (getattr(model, "model_name", None) or type(model).__name__)

    def _input(self, messages: Sequence[BaseMessage], existing: str) -> Any:
        new_lines = get_buffer_string(messages, self.human_prefix, self.ai_prefix)
        return self.prompt.invoke({"summary": existing, "new_lines": new_lines})

    @staticmethod
    def _text(output: Any) -> str:
        if isinstance(output, BaseMessage):
            return output.text.strip()
        if isinstance(output, str):
            return output.strip()
        raise InputError(f"the summarizing model returned {type(output).__name__}; expected "
                         "a message or a str")

    def predict(self, messages: Sequence[BaseMessage], existing: str) -> str:
        """The summary ``existing`` extended with ``messages``."""
        return self._text(self.model.invoke(self._input(messages, existing)))

    async def apredict(self, messages: Sequence[BaseMessage], existing: str) -> str:
        return self._text(await self.model.ainvoke(self._input(messages, existing)))

    def token_counter(self) -> TokenCounterLike:
        """The model's own tokenizer when it has one, else the ~4 characters estimate."""
        return self.model if isinstance(self.model, BaseChatModel) else "approximate"


def split_window(messages: list[BaseMessage], max_tokens: int,
                 counting: _Counting) -> tuple[list[BaseMessage], list[BaseMessage]]:
    """``(dropped, kept)``: ``kept`` the newest messages that fit ``max_tokens``.

    The window never opens on a tool result: its assistant call would be in the
    summary, and providers reject a tool message without its call.
    """
    fitting, _ = counting.fit(messages[::-1], max_tokens)
    cut = len(messages) - fitting
    while cut < len(messages) and messages[cut].type == "tool":
        cut += 1
    return messages[:cut], messages[cut:]


def summary_chunks(messages: list[BaseMessage], max_tokens: int,
                   counting: _Counting) -> Iterator[list[BaseMessage]]:
    """``messages`` in order, in pieces of at most ``max_tokens`` tokens (at least one
    message each), so no summarising call is sent more than the budget of new lines."""
    start = 0
    while start < len(messages):
        size, _ = counting.fit(messages[start:], max_tokens)
        size = max(size, 1)
        yield messages[start:start + size]
        start += size




class _SummarizingMemory(BaseChatMemory):
    """What the two summary memories share: the model, the prompt, the summary message."""

    def __init__(self, *, llm: Any, prompt: PromptTemplate | ChatPromptTemplate | None = None,
                 summary_message_cls: type[BaseMessage] = SystemMessage,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._summarizer = Summarizer(llm, prompt=prompt)
        self.llm = llm
        self.prompt = self._summarizer.prompt
        self.summary_message_cls = summary_message_cls

    def _current(self) -> Summarizer:
        # The attributes may be reassigned after construction, as on LangChain's models.
        summarizer = self._summarizer
        if self.prompt is not summarizer.prompt:
            summarizer.prompt = _check_prompt(self.prompt)
        summarizer.human_prefix, summarizer.ai_prefix = self.human_prefix, self.ai_prefix
        return summarizer

    def predict_new_summary(self, messages: list[BaseMessage], existing_summary: str) -> str:
        """``existing_summary`` extended with ``messages`` (one model call)."""
        return self._current().predict(messages, existing_summary)

    async def apredict_new_summary(self, messages: list[BaseMessage],
                                   existing_summary: str) -> str:
        return await self._current().apredict(messages, existing_summary)

    def _repr_fields(self) -> list[str]:
        return [*super()._repr_fields(), f"llm={self.llm!r}"]


class ConversationSummaryMemory(_SummarizingMemory):
    """A running summary of the whole conversation, extended after every turn.

    >>> from threadline import FakeListChatModel
    >>> memory = ConversationSummaryMemory(llm=FakeListChatModel(responses=["Ada greets."]))
    >>> memory.save_context({"input": "Hello, I am Ada"}, {"output": "Hi Ada!"})
    >>> memory.load_memory_variables({})
    {'history': 'Ada greets.'}
    >>> len(memory.chat_memory.messages)   # the history keeps the turn
    2

    ``buffer`` is the summary (a plain attribute, as in LangChain: no I/O). With
    ``return_messages=True`` the prompt gets it as one ``summary_message_cls`` message.
    """

    def __init__(self, *, llm: Any, buffer: str = "", **kwargs: Any) -> None:
        super().__init__(llm=llm, **kwargs)
        self.buffer = buffer

    @property
    def buffer(self) -> str:
        """The summary so far."""
        return self._summary

    @buffer.setter
    def buffer(self, value: str) -> None:
        if not isinstance(value, str):
            raise InputError(f"the summary buffer must be a str, got {type(value).__name__}")
        self._summary = value

    async def abuffer(self) -> str:
        return self._summary

    @classmethod
    def from_messages(cls, llm: Any, chat_memory: BaseChatMessageHistory, *,
                      summarize_step: int = 2, **kwargs: Any) -> ConversationSummaryMemory:
        """A memory over ``chat_memory`` whose summary is built from the messages it holds,
        ``summarize_step`` at a time (one model call each)."""
        if type(summarize_step) is not int or summarize_step < 1:
            raise InputError(f"summarize_step must be an int >= 1, got {summarize_step!r:.40}")
        memory = cls(llm=llm, chat_memory=chat_memory, **kwargs)
        messages = memory.chat_memory.get_messages()
        for start in range(0, len(messages), summarize_step):
            memory.buffer = memory.predict_new_summary(messages[start:start + summarize_step],
                                                       memory.buffer)
        return memory

    def _summary_variables(self) -> dict[str, Any]:
        if self.return_messages:
            return {self.memory_key: [self.summary_message_cls(self._summary)]}
        return {self.memory_key: self._summary}

    def load_memory_variables(self, inputs: Any = None) -> dict[str, Any]:
        """``{memory_key: summary}`` (no I/O: the summary is kept here)."""
        return self._summary_variables()

    async def aload_memory_variables(self, inputs: Any = None) -> dict[str, Any]:
        return self._summary_variables()

    def save_context(self, inputs: Any, outputs: Any) -> None:
        """Store the turn, then extend the summary with it. If the model fails the turn
        stays stored, the summary unchanged, and the error propagates."""
        turn = self._turn(inputs, outputs)
        self.chat_memory.add_messages(turn)
        self._summary = self.predict_new_summary(turn, self._summary)

    async def asave_context(self, inputs: Any, outputs: Any) -> None:
        turn = self._turn(inputs, outputs)
        await self.chat_memory.aadd_messages(turn)
        self._summary = await self.apredict_new_summary(turn, self._summary)

    def clear(self) -> None:
        """Delete the history's messages and forget the summary."""
        super().clear()
        self._summary = ""

    async def aclear(self) -> None:
        await super().aclear()
        self._summary = ""


class ConversationSummaryBufferMemory(_SummarizingMemory):
    """The summary of the older turns plus the newest messages within ``max_token_limit``.

    >>> from threadline import FakeListChatModel
    >>> memory = ConversationSummaryBufferMemory(
    ...     llm=FakeListChatModel(responses=["Ada greets."]), max_token_limit=2,
    ...     token_counter=len)
    >>> memory.save_context({"input": "Hello, I am Ada"}, {"output": "Hi Ada!"})
    >>> memory.save_context({"input": "Tea?"}, {"output": "Yes."})
    >>> memory.moving_summary_buffer, memory.summarized
    ('Ada greets.', 2)
    >>> print(memory.buffer)
    System: Ada greets.
    Human: Tea?
    AI: Yes.

    ``token_counter`` prices the messages (default: the model's tokenizer, or ~4
    characters a token); the summary comes on top of ``max_token_limit``. The history
    keeps every message; ``summarized`` counts the first ones the summary stands for.
    """

    def __init__(self, *, llm: Any, max_token_limit: int = 2000,
                 moving_summary_buffer: str = "",
                 token_counter: TokenCounterLike | None = None, **kwargs: Any) -> None:
        if type(max_token_limit) is not int or max_token_limit < 0:
            raise InputError(f"max_token_limit must be an int >= 0, got {max_token_limit!r:.40}")
        if not isinstance(moving_summary_buffer, str):
            raise InputError(f"moving_summary_buffer must be a str, got "
                             f"{type(moving_summary_buffer).__name__}")
        super().__init__(llm=llm, **kwargs)
        self.max_token_limit = max_token_limit
        self.moving_summary_buffer = moving_summary_buffer
        #: How many of the history's first messages the summary covers.
        self.summarized = 0
        self._counting = _Counting(resolve_counter(
            token_counter if token_counter is not None else self._summarizer.token_counter()))

    def _select(self, messages: list[BaseMessage]) -> list[BaseMessage]:
        recent = messages[self.summarized:]
        if self.moving_summary_buffer == "":
            return recent
        return [self.summary_message_cls(self.moving_summary_buffer), *recent]

    def _pending(self, messages: list[BaseMessage]) -> Iterator[list[BaseMessage]]:
        """The pieces of the history that left the window and are not yet summarised."""
        dropped, _ = split_window(messages[self.summarized:], self.max_token_limit,
                                  self._counting)
        return summary_chunks(dropped, self.max_token_limit, self._counting)

    def prune(self) -> None:
        """Summarise the messages beyond ``max_token_limit`` (none are deleted)."""
        for chunk in self._pending(self.chat_memory.get_messages()):
            self.moving_summary_buffer = self.predict_new_summary(chunk,
                                                                  self.moving_summary_buffer)
            self.summarized += len(chunk)

    async def aprune(self) -> None:
        for chunk in self._pending(await self.chat_memory.aget_messages()):
            self.moving_summary_buffer = await self.apredict_new_summary(
                chunk, self.moving_summary_buffer)
            self.summarized += len(chunk)

    def save_context(self, inputs: Any, outputs: Any) -> None:
        """Store the turn, then :meth:`prune`."""
        super().save_context(inputs, outputs)
        self.prune()

    async def asave_context(self, inputs: Any, outputs: Any) -> None:
        await super().asave_context(inputs, outputs)
        await self.aprune()

    def clear(self) -> None:
        """Delete the history's messages and forget the summary."""
        super().clear()
        self.moving_summary_buffer, self.summarized = "", 0

    async def aclear(self) -> None:
        await super().aclear()
        self.moving_summary_buffer, self.summarized = "", 0

    def _repr_fields(self) -> list[str]:
        return [*super()._repr_fields(), f"max_token_limit={self.max_token_limit!r}"]
