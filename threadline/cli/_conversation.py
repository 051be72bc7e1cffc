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
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from threadline._errors import InputError
from threadline.messages._chunks import AIMessageChunk, merge_chunks
from threadline.messages._values import AIMessage, BaseMessage, HumanMessage, SystemMessage

if TYPE_CHECKING:
    from threadline.models._base import BaseChatModel
    from threadline.models._counter import TokenCounter
    from threadline.stores import Store

__all__ = ["DEFAULT_CONTEXT", "ANSWER_RESERVE", "Conversation", "Turn", "context_window"]

#: The context window assumed for models that do not say theirs (fake, OpenAI-compatible).
DEFAULT_CONTEXT = 8192
#: Tokens kept free for the answer when neither --max-tokens nor the model sets a limit.
ANSWER_RESERVE = 512


def context_window(model: BaseChatModel) -> int:
    """The model's context window in tokens (a local model reports its own)."""
    size = getattr(model, "context_size", None)
    if callable(size):
        value = size()
        if isinstance(value, int) and value > 0:
            return value
    return DEFAULT_CONTEXT


@dataclass
class Turn:
    """What one turn produced."""

    answer: AIMessage
    #: Messages of the stored conversation that were left out to fit the context window.
    trimmed: int
    interrupted: bool = False


class Conversation:
    """A session of a store (or, with ``store=None``, no memory at all) and a model.

    >>> from threadline import FakeListChatModel, open_store
    >>> chat = Conversation(open_store("memory://"), "s1", FakeListChatModel(["Hi Ada!"]))
    >>> chat.turn("I'm Ada").answer.text
    'Hi Ada!'
    """

    def __init__(self, store: Store | None, session_id: str | None, model: BaseChatModel, *,
                 system: str | None = None, max_tokens: int | None = None,
                 skip_invalid: bool = False) -> None:
        self.store = store
        self.session_id = session_id
        self.model = model
        self.system = system
        self.max_tokens = max_tokens
        self.skip_invalid = skip_invalid
        self._window: int | None = None
        self._counter: TokenCounter | None = None

    def set_model(self, model: BaseChatModel) -> None:
        self.model = model
        self._window = self._counter = None

    @property
    def window(self) -> int:
        """The model's context window (computed on first use: a local model loads)."""
        if self._window is None:
            self._window = context_window(self.model)
        return self._window

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

        stored = self.history()
        system = [SystemMessage(self.system)] if self.system else []
        messages = [*system, *stored, HumanMessage(question)]
        if self._counter is None:
            self._counter = get_token_counter(self.model)
        budget = self.budget()
        kept = trim_messages(messages, max_tokens=budget, token_counter=self._counter,
                             include_system=True, start_on="human")
        if not kept or kept[-1] is not messages[-1]:
            raise InputError(
                f"your message does not fit the model's context window ({self.window} tokens, "
                f"{budget} for the prompt); shorten it, or lower --max-tokens")
        return kept, len(messages) - len(kept)

    def turn(self, question: str, on_text: Callable[[str], Any] | None = None) -> Turn:
        """Ask ``question``: stream the answer's text to ``on_text``, store the turn."""
        messages, trimmed = self.prompt(question)
        options: dict[str, Any] = {}
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
            self._store(question, answer)
            return Turn(answer, trimmed, interrupted=True)
        finally:
            # Closing the generator is what stops a local model generating mid-answer.
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        answer = _answer(chunks, interrupted=False)
        self._store(question, answer)
        return Turn(answer, trimmed)

    def _store(self, question: str, answer: AIMessage) -> None:
        if self.store is not None and self.session_id is not None:
            answer.id = uuid.uuid4().hex  # a new object (see _answer): ours to stamp
            self.store.append(self.session_id,
                              [HumanMessage(question, id=uuid.uuid4().hex), answer])


def _answer(chunks: list[AIMessageChunk], *, interrupted: bool) -> AIMessage:
    message = merge_chunks(chunks).to_message() if chunks else AIMessage("")
    if interrupted:
        message = AIMessage(message.content, response_metadata={
            **(message.response_metadata or {}), "interrupted": True},
            usage_metadata=message.usage_metadata)
    return message
