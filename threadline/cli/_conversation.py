"""One conversation turn, without any terminal: what ``chat`` and ``ask`` share.

A turn reads the session's whole history from the store, trims it to what fits the
model's context window (:func:`trim_messages`: the system prompt stays, the oldest turns
go, the window starts on a question), streams the answer to a callback, then appends
the question and the answer to the store in one write. The store always keeps everything;
only what the model is sent is trimmed.

Both stored messages get a fresh id (a UUID4 hex string) before the write, so a store
that retries an append whose answer was lost (a dropped connection after the commit)
stores the turn once: appends are idempotent for messages with ids. The answer's id is
ours, not the model server's: a server's response id is not promised to be unique (some
proxies repeat one), and a repeated id would make the store drop a later answer.

``skip_invalid=True`` reads a history that holds unreadable stored messages without them
(each reported by a :class:`~threadline.SkippedMessageWarning`); by default such a
history raises :class:`~threadline.MessageFormatError`, naming the session and position.

What is stored when a turn does not finish:

- Ctrl-C (``KeyboardInterrupt``) while the answer streams: the question and the partial
  answer, the answer marked ``response_metadata={"interrupted": True}``, so the
  conversation shows what the user saw; then the ``KeyboardInterrupt`` is re-raised.
- The model fails (:class:`ModelError`): nothing; the question can simply be asked again.

With ``compact=True`` (``threadline chat --compact``) a conversation that outgrows the
window is summarised instead of cut: the prompt is the stored summary plus the recent
messages that fit (:class:`~threadline.SummaryBufferHistory`, the summary kept as a
session record beside every message), and after a turn the part that left the window is
folded into the summary by one more model call (keeping half the window verbatim, so
the next prompt always holds every message the summary does not). A failed summary keeps
the turn (it is stored first) and is reported in :attr:`Turn.notes`; the older summary
stays.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from threadline._errors import InputError
from threadline.messages._chunks import AIMessageChunk, merge_chunks
from threadline.messages._values import AIMessage, BaseMessage, HumanMessage, SystemMessage
from threadline.models._window import (
    ANSWER_RESERVE,
    DEFAULT_CONTEXT,
    Window,
    context_window,
    find_window,
)

if TYPE_CHECKING:
    from threadline.memory._summary import SummaryBufferHistory, SummaryInfo
    from threadline.models._base import BaseChatModel
    from threadline.models._counter import TokenCounter
    from threadline.stores import Store

__all__ = ["DEFAULT_CONTEXT", "ANSWER_RESERVE", "Conversation", "Turn", "Window",
           "context_window"]

@dataclass
class Turn:
    """What one turn produced."""

    answer: AIMessage
    #: Messages of the stored conversation that were left out to fit the context window.
    trimmed: int
    interrupted: bool = False
    #: What went wrong after the turn was stored (a failed summary), one line each.
    notes: list[str] = field(default_factory=list)


class Conversation:
    """A session of a store (or, with ``store=None``, no memory at all) and a model.

    >>> from threadline import FakeListChatModel, open_store
    >>> chat = Conversation(open_store("memory://"), "s1", FakeListChatModel(["Hi Ada!"]))
    >>> chat.turn("I'm Ada").answer.text
    'Hi Ada!'

    ``options`` (``-o temperature 0.2``) go into every request of the turn; ``window``
    replaces the model's own or known context window (``--context-window``) until
    :meth:`set_model` picks another model.
    """

    def __init__(self, store: Store | None, session_id: str | None, model: BaseChatModel, *,
                 system: str | None = None, max_tokens: int | None = None,
                 skip_invalid: bool = False, compact: bool = False,
                 options: Mapping[str, Any] | None = None,
                 window: Window | None = None) -> None:
        if compact and (store is None or not store.supports_records):
            raise InputError("--compact keeps the summary beside the messages, in a "
                             "session of a store; this conversation has no store that keeps "
                             "records")
        self.compact = compact
        self.store = store
        self.session_id = session_id
        self.model = model
        self.system = system
        self.max_tokens = max_tokens
        self.skip_invalid = skip_invalid
        self.options = dict(options or {})
        self._window: Window | None = window
        self._counter: TokenCounter | None = None

    def set_model(self, model: BaseChatModel) -> None:
        self.model = model
        self._window = self._counter = None

    @property
    def window_info(self) -> Window:
        """The context window and where the figure came from (computed on first use: a
        local model loads)."""
        if self._window is None:
            self._window = find_window(self.model)
        return self._window

    @property
    def window(self) -> int:
        """The context window in tokens."""
        return self.window_info.tokens

    def history(self) -> list[BaseMessage]:
        from threadline.cli._common import read_messages

        if self.store is None or self.session_id is None:
            return []
        return read_messages(self.store, self.session_id, skip_invalid=self.skip_invalid)

    def budget(self) -> int:
        """Tokens the prompt may use: the window less what the answer may need."""
        reserve = self.max_tokens or getattr(self.model, "max_tokens", None) or ANSWER_RESERVE
        return max(1, self.window - int(reserve))

    def prompt(self, question: str) -> tuple[list[BaseMessage], int]:
        """The messages to send for ``question``, and how many stored ones were left out."""
        from threadline.models._tokens import get_token_counter
        from threadline.models._trim import trim_messages

        system = [SystemMessage(self.system)] if self.system else []
        if self._counter is None:
            self._counter = get_token_counter(self.model)
        budget = self.budget()
        if self.compact:
            room = budget - self._counter([*system, HumanMessage(question)])
            stored = self._summarized(max(1, room)).get_messages()
        else:
            stored = self.history()
        messages = [*system, *stored, HumanMessage(question)]
        # After a summary the window may start on an answer: the summary holds its question.
        start_on = None if self.compact else "human"
        kept = trim_messages(messages, max_tokens=budget, token_counter=self._counter,
                             include_system=True, start_on=start_on)
        if self.compact and stored and (not kept or kept[-1] is not messages[-1]):
            # A summary grown too long for the window: sent without it, not refused.
            messages = [*system, *stored[1:], HumanMessage(question)]
            kept = trim_messages(messages, max_tokens=budget, token_counter=self._counter,
                                 include_system=True, start_on=start_on)
        if not kept or kept[-1] is not messages[-1]:
            raise InputError(
                f"your message does not fit the model's context window ({self.window} tokens, "
                f"{budget} for the prompt); shorten it, or lower --max-tokens")
        return kept, len(messages) - len(kept)

    def turn(self, question: str, on_text: Callable[[str], Any] | None = None) -> Turn:
        """Ask ``question``: stream the answer's text to ``on_text``, store the turn."""
        messages, trimmed = self.prompt(question)
        options: dict[str, Any] = dict(self.options)
        if self.max_tokens is not None:
            options["max_tokens"] = self.max_tokens
        chunks: list[AIMessageChunk] = []
        stream = self.model.stream(messages, **options)
        try:
            for chunk in stream:
                chunks.append(chunk)
                if on_text is not None and chunk.text:
                    on_text(chunk.text)
        except KeyboardInterrupt:
            answer = _answer(chunks, interrupted=True)
            notes = self._store(question, answer)
            return Turn(answer, trimmed, interrupted=True, notes=notes)
        finally:
            # Closing the generator is what stops a local model generating mid-answer.
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        answer = _answer(chunks, interrupted=False)
        notes = self._store(question, answer)
        return Turn(answer, trimmed, notes=notes)

    def _summarized(self, max_tokens: int) -> SummaryBufferHistory:
        from threadline.memory._summary import SummaryBufferHistory

        assert self.store is not None and self.session_id is not None
        return SummaryBufferHistory(self.store.history(self.session_id), self.model,
                                    max_tokens=max_tokens, token_counter=self._counter,
                                    on_error="warn")

    def summary(self) -> SummaryInfo | None:
        """The session's stored summary (``--compact``), if it has one."""
        from threadline.memory._summary import SUMMARY_KEY, SummaryInfo

        if self.store is None or self.session_id is None or not self.store.supports_records:
            return None
        raw = self.store.get_records(self.session_id, [SUMMARY_KEY]).get(SUMMARY_KEY)
        return None if raw is None else SummaryInfo.decode(raw, self.session_id)

    def _store(self, question: str, answer: AIMessage) -> list[str]:
        if self.store is None or self.session_id is None:
            return []
        answer.id = uuid.uuid4().hex  # a new object (see _answer): ours to stamp
        turn = [HumanMessage(question, id=uuid.uuid4().hex), answer]
        if not self.compact:
            self.store.append(self.session_id, turn)
            return []
        from threadline.memory._summary import CompactionWarning

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CompactionWarning)
            self._summarized(max(1, self.budget() // 2)).add_messages(turn)
        return [str(w.message) for w in caught if issubclass(w.category, CompactionWarning)]


def _answer(chunks: list[AIMessageChunk], *, interrupted: bool) -> AIMessage:
    message = merge_chunks(chunks).to_message() if chunks else AIMessage("")
    if interrupted:
        message = AIMessage(message.content, response_metadata={
            **(message.response_metadata or {}), "interrupted": True},
            usage_metadata=message.usage_metadata)
    return message
