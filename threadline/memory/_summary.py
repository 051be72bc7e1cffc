"""Compaction that keeps the history: :class:`SummaryBufferHistory`.

A long conversation outgrows a model's context. Trimming (``trim_messages``) forgets the
old part; LangChain's ``ConversationSummaryBufferMemory`` summarises it but pops the
summarised messages out of its buffer. Here every message stays in the store, and a
running summary of the part that left the window is kept *beside* them as a session
record (:meth:`Store.put_records`), so the model is sent::

    [SystemMessage("Summary of the earlier conversation: ...")]
    + the newest messages after the summary that fit ``max_tokens``

The record, key :data:`SUMMARY_KEY`, is JSON ``{"text": ..., "covers": N, "model": ...}``:
``covers`` counts the session's messages, from the first, that the summary stands for.
It lives and dies with the session (deleted, expired and forked-away like its messages).

Design decisions:

- **Incremental.** A compaction sends the model the previous summary and only the
  messages that have just left the window (LangChain's progressive-summary prompt,
  :data:`~threadline.SUMMARY_PROMPT`), never the whole conversation again. A backlog
  (a long session wrapped for the first time) is summarised in pieces of at most
  ``max_tokens`` tokens, the record saved after each, so no model call exceeds the
  budget and a crash keeps the progress.
- **Crash safe.** ``add_messages`` appends first and compacts after: the summary record
  is written only once the messages it covers are stored, and each record is one value
  (text and ``covers`` together), so a reader never sees a summary ahead of its messages.
- **Failures keep the history.** If the model (or the store) fails while compacting, the
  new messages are already stored and the old summary stays; with ``on_error="raise"``
  (the default) the error propagates with a note saying so, with ``on_error="warn"`` a
  :class:`CompactionWarning` is issued instead and the turn succeeds. Either way the next
  ``add_messages`` (or :meth:`SummaryBufferHistory.compact`) catches up: nothing that
  left the window is skipped. Reading never calls the model.
- **Reads only what is needed.** A read is the record, the session's message count
  (``session_info``) and ``get_messages(last=...)`` for the messages after ``covers``
  (at most as many as could fit the budget), not the whole session.
- **One plan, two shells.** The steps of a read and of a compaction are written once, as
  generators yielding the I/O they need (:class:`_Op`); :func:`_drive` carries it out
  with the sync calls, :func:`_adrive` with the async ones (the model's ``ainvoke``).

One writer per session at a time is assumed (as the chat and RunnableWithMessageHistory
do); with two, the last summary written wins, which is consistent but may repeat a turn.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

from threadline._errors import ConfigurationError, InputError, MessageFormatError
from threadline.core._history import BaseChatMessageHistory, refuse_langchain_reader
from threadline.core._prompts import ChatPromptTemplate, PromptTemplate
from threadline.memory._summary_memory import Summarizer, split_window, summary_chunks
from threadline.messages._values import BaseMessage, SystemMessage
from threadline.models._counter import TokenCounter
from threadline.models._trim import TokenCounterLike, _Counting, resolve_counter

if TYPE_CHECKING:
    from threadline.stores._base import StoreHistory

__all__ = [
    "SUMMARY_KEY",
    "SUMMARY_PREFIX",
    "CompactionWarning",
    "SummaryBufferHistory",
    "SummaryInfo",
]

T = TypeVar("T")

#: The session record holding the summary.
SUMMARY_KEY = "summary"
#: What the system message sent to the model starts with.
SUMMARY_PREFIX = "Summary of the earlier conversation: "


class CompactionWarning(UserWarning):
    """Compacting failed after the messages were stored (``on_error="warn"``).

    ``error`` is the exception; the old summary was kept and the next compaction retries.
    """

    def __init__(self, message: str, error: BaseException) -> None:
        super().__init__(message)
        self.error = error


class SummaryInfo(NamedTuple):
    """A stored summary: its ``text``, how many of the session's first messages it
    ``covers``, and the name of the ``model`` that wrote it."""

    text: str
    covers: int
    model: str | None = None

    def encode(self) -> bytes:
        """The record's value: JSON bytes."""
        return json.dumps({"text": self.text, "covers": self.covers, "model": self.model},
                          ensure_ascii=False).encode("utf-8")

    @classmethod
    def decode(cls, raw: bytes, session_id: str) -> SummaryInfo:
        """A record's value as a :class:`SummaryInfo`; :class:`MessageFormatError` if it
        is damaged (it is never silently ignored: the model would lose the summary)."""
        try:
            data = json.loads(raw)
            text, covers, model = data["text"], data["covers"], data.get("model")
            if (not isinstance(text, str) or type(covers) is not int or covers < 0
                    or not (model is None or isinstance(model, str))):
                raise ValueError("wrong field types")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MessageFormatError(
                f"the summary record of session {session_id!r:.200} cannot be read ({exc}); "
                f"delete it with store.delete_records(session_id, [{SUMMARY_KEY!r}]) and "
                "the next compaction writes a new one", session_id=session_id) from exc
        return cls(text, covers, model)


class _Op(NamedTuple):
    """One I/O step a plan needs: ``load`` (the record), ``count`` (messages in the
    session), ``tail`` (the newest N, ``None``: all), ``summarize``, ``save``."""

    name: Literal["load", "count", "tail", "summarize", "save"]
    args: tuple[Any, ...] = ()


Plan = Generator[_Op, Any, T]


def _drive(plan: Plan[T], do: Callable[[_Op], Any]) -> T:
    """Run a plan with blocking I/O."""
    value: Any = None
    while True:
        try:
            op = plan.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        value = do(op)


async def _adrive(plan: Plan[T], do: Callable[[_Op], Awaitable[Any]]) -> T:
    """Run a plan with async I/O."""
    value: Any = None
    while True:
        try:
            op = plan.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        value = await do(op)


def _stores_with_records() -> str:
    """The schemes whose store keeps records, asked of each backend class (a backend
    whose driver is missing is left out)."""
    from threadline.stores import BACKENDS, backend_class

    found: list[str] = []
    for scheme in BACKENDS:
        try:
            if backend_class(scheme).supports_records:
                found.append(scheme)
        except Exception:  # an optional driver missing: not usable here
            continue
    return ", ".join(found) or "none installed"


class SummaryBufferHistory(BaseChatMessageHistory):
    """A store history that keeps every message and shows the model a summary of the old
    part plus the recent messages that fit ``max_tokens`` (see the module docstring).

    >>> from threadline import EchoChatModel, PromptTemplate, open_store
    >>> store = open_store("memory://")
    >>> history = SummaryBufferHistory(
    ...     store.history("s1"), EchoChatModel(), max_tokens=2, token_counter=len,
    ...     prompt=PromptTemplate("{summary} {new_lines}"))
    >>> history.add_user_message("I am Ada")
    >>> history.add_ai_message("Hi Ada")
    >>> history.add_user_message("I like tea")
    >>> [m.text for m in history.messages]
    ['Summary of the earlier conversation: Human: I am Ada', 'Hi Ada', 'I like tea']
    >>> len(store.get_messages("s1"))
    3

    ``model`` writes the summaries (a chat model: ``invoke`` with a prompt value);
    ``token_counter`` prices the messages (default: the model's tokenizer, or ~4
    characters a token); ``prompt`` must take ``{summary}`` and ``{new_lines}``
    (default :data:`~threadline.SUMMARY_PROMPT`). ``max_tokens`` bounds the recent
    messages; the summary comes on top of it. The store must keep records
    (``store.supports_records``); ``on_error`` says what a failed compaction does.
    """

    def __init__(self, history: StoreHistory, model: Any, *, max_tokens: int = 2000,
                 token_counter: TokenCounterLike | None = None,
                 prompt: PromptTemplate | ChatPromptTemplate | None = None,
                 on_error: Literal["raise", "warn"] = "raise") -> None:
        from threadline.stores._base import StoreHistory

        if not isinstance(history, StoreHistory):
            raise InputError(f"history must be a store's history (store.history(session_id)), "
                             f"got {type(history).__name__}")
        if not history.store.supports_records:
            raise ConfigurationError(
                f"SummaryBufferHistory keeps its summary as a session record, and the "
                f"{history.store.url.scheme}:// store keeps no records; use a store that "
                f"does: {_stores_with_records()}")
        if type(max_tokens) is not int or max_tokens < 1:
            raise InputError(f"max_tokens must be an int >= 1, got {max_tokens!r:.40}")
        if on_error not in ("raise", "warn"):
            raise InputError(f"on_error must be 'raise' or 'warn', got {on_error!r:.40}")
        self.history = history
        self.summarizer = Summarizer(model, prompt=prompt)
        self.max_tokens = max_tokens
        self.on_error = on_error
        counter = resolve_counter(token_counter if token_counter is not None
                                  else self.summarizer.token_counter())
        self._counting = _Counting(counter)
        # How many of the newest messages could possibly fit: a read asks for no more.
        least = counter.min_message_tokens if isinstance(counter, TokenCounter) else 0
        self._bound: int | None = max_tokens // least + 1 if least > 0 else None

    @property
    def session_id(self) -> str:
        return self.history.session_id

    # -- the plans (pure: they only yield the I/O they need) -----------------------------

    def _read_plan(self) -> Plan[tuple[SummaryInfo | None, list[BaseMessage]]]:
        info: SummaryInfo | None = yield _Op("load")
        if info is None:
            recent: list[BaseMessage] = yield _Op("tail", (self._bound,))
        else:
            total: int = yield _Op("count")
            after = total - info.covers
            if self._bound is not None:
                after = min(after, self._bound)
            recent = (yield _Op("tail", (after,))) if after > 0 else []
        return info, split_window(recent, self.max_tokens, self._counting)[1]

    def _compact_plan(self) -> Plan[SummaryInfo | None]:
        info: SummaryInfo | None = yield _Op("load")
        total: int = yield _Op("count")
        covers = info.covers if info is not None else 0
        if total - covers <= 0:
            return info
        uncovered: list[BaseMessage] = yield _Op("tail", (total - covers,))
        dropped, _ = split_window(uncovered, self.max_tokens, self._counting)
        text = info.text if info is not None else ""
        for chunk in summary_chunks(dropped, self.max_tokens, self._counting):
            text = yield _Op("summarize", (chunk, text))
            covers += len(chunk)
            info = SummaryInfo(text, covers, self.summarizer.model_name)
            yield _Op("save", (info,))
        return info

    @staticmethod
    def _check_last(last: object) -> None:
        if last is not None and (isinstance(last, bool) or not isinstance(last, int)
                                 or last < 0):
            raise InputError(f"last must be None or an int >= 0, got {last!r:.40}")

    @staticmethod
    def _view(info: SummaryInfo | None, recent: list[BaseMessage],
              last: int | None) -> list[BaseMessage]:
        view = recent
        if info is not None and info.text:
            view = [SystemMessage(SUMMARY_PREFIX + info.text), *recent]
        if last is None:
            return view
        return view[-last:] if last else []

    def _failed(self, error: Exception) -> None:
        """Raise ``error`` (we are in its ``except`` block) noting that the history is
        intact, or warn (``on_error="warn"``)."""
        note = (f"the messages were stored in session {self.session_id!r:.200}; the summary "
                "was not brought up to date (the old one is kept, and the next "
                "add_messages() or compact() catches up)")
        if self.on_error == "warn":
            warnings.warn(CompactionWarning(f"compaction failed: {error!r:.300}; {note}",
                                            error), stacklevel=3)
            return
        error.add_note(f"threadline: {note}")
        raise error

    # -- sync ------------------------------------------------------------------------------

    def _do(self, op: _Op) -> Any:
        history, store = self.history, self.history.store
        if op.name == "load":
            raw = store.get_records(history.session_id, [SUMMARY_KEY]).get(SUMMARY_KEY)
            return None if raw is None else SummaryInfo.decode(raw, history.session_id)
        if op.name == "count":
            info = store.session_info(history.session_id)
            return 0 if info is None else info.message_count
        if op.name == "tail":
            return history.get_messages(last=op.args[0])
        if op.name == "summarize":
            return self.summarizer.predict(*op.args)
        store.put_records(history.session_id, {SUMMARY_KEY: op.args[0].encode()},
                          ttl=history.ttl)
        return None

    def get_messages(self, last: int | None = None) -> list[BaseMessage]:
        """The summary (as a system message) and the recent messages that fit; only the
        newest ``last`` of those if given."""
        self._check_last(last)
        info, recent = _drive(self._read_plan(), self._do)
        return self._view(info, recent, last)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append to the store, then compact if the window is over ``max_tokens``."""
        self.history.add_messages(messages)
        try:
            self.compact()
        except Exception as error:
            self._failed(error)

    def compact(self) -> SummaryInfo | None:
        """Summarise what left the window now; returns the (new or unchanged) summary.
        ``add_messages`` calls it; call it yourself on a session stored without it."""
        return _drive(self._compact_plan(), self._do)

    def summary_info(self) -> SummaryInfo | None:
        """The stored summary, or ``None`` (a method: it reads the store)."""
        return _drive(self._read_record(), self._do)

    def summary(self) -> str | None:
        """The stored summary's text, or ``None``."""
        info = self.summary_info()
        return None if info is None else info.text

    def clear(self) -> None:
        """Delete the session: its messages and its records, the summary with them."""
        self.history.clear()

    # -- async -----------------------------------------------------------------------------

    async def _ado(self, op: _Op) -> Any:
        history, store = self.history, self.history.store
        if op.name == "load":
            raw = (await store.aget_records(history.session_id, [SUMMARY_KEY])).get(SUMMARY_KEY)
            return None if raw is None else SummaryInfo.decode(raw, history.session_id)
        if op.name == "count":
            info = await store.asession_info(history.session_id)
            return 0 if info is None else info.message_count
        if op.name == "tail":
            return await history.aget_messages(last=op.args[0])
        if op.name == "summarize":
            return await self.summarizer.apredict(*op.args)
        await store.aput_records(history.session_id, {SUMMARY_KEY: op.args[0].encode()},
                                 ttl=history.ttl)
        return None

    async def aget_messages(self, last: int | None = None) -> list[BaseMessage]:
        refuse_langchain_reader(self)
        self._check_last(last)
        info, recent = await _adrive(self._read_plan(), self._ado)
        return self._view(info, recent, last)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        await self.history.aadd_messages(messages)
        try:
            await self.acompact()
        except Exception as error:
            self._failed(error)

    async def acompact(self) -> SummaryInfo | None:
        return await _adrive(self._compact_plan(), self._ado)

    async def asummary_info(self) -> SummaryInfo | None:
        return await _adrive(self._read_record(), self._ado)

    async def asummary(self) -> str | None:
        info = await self.asummary_info()
        return None if info is None else info.text

    async def aclear(self) -> None:
        await self.history.aclear()

    def _read_record(self) -> Plan[SummaryInfo | None]:
        info: SummaryInfo | None = yield _Op("load")
        return info

    def __repr__(self) -> str:
        return (f"SummaryBufferHistory({self.history!r}, {self.summarizer.model!r}, "
                f"max_tokens={self.max_tokens!r})")
