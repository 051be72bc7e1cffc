"""RunnableWithMessageHistory: a runnable that remembers each session's conversation.

Per turn it (1) gets the session's history from the factory, (2) reads the stored
messages once, (3) runs the wrapped runnable with them inserted, and (4) stores the new
input and output messages with ONE ``add_messages`` call. The cost beyond the wrapped
runnable is a few dictionary lookups and list copies, whatever the history's length.

If the runnable raises, or a stream is abandoned before its end, nothing of the turn is
stored: a history never holds a question without its answer or half an answer.

>>> from threadline import ChatPromptTemplate, EchoChatModel, InMemoryChatMessageHistory
>>> store = {}
>>> chain = RunnableWithMessageHistory(
...     ChatPromptTemplate.from_messages([("placeholder", "{history}"), ("human", "{q}")])
...     | EchoChatModel(),
...     lambda session_id: store.setdefault(session_id, InMemoryChatMessageHistory()),
...     input_messages_key="q",
...     history_messages_key="history",
... )
>>> chain.invoke({"q": "hi"}, session_id="s1").content
'hi'
>>> len(store["s1"].messages)
2
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, NamedTuple

from threadline._errors import InputError, MissingConfigError
from threadline.core._history import BaseChatMessageHistory
from threadline.core._runnables import Runnable, RunnableConfig, add_chunks, coerce_to_runnable
from threadline.messages._values import AIMessage, AIMessageChunk, BaseMessage, HumanMessage

__all__ = ["ConfigurableFieldSpec", "RunnableWithMessageHistory"]

HistoryFactory = Callable[..., BaseChatMessageHistory | Awaitable[BaseChatMessageHistory]]


class ConfigurableFieldSpec(NamedTuple):
    """Describes one key the history factory takes from ``config["configurable"]``."""

    id: str
    annotation: Any
    name: str | None = None
    description: str | None = None
    default: Any = None
    is_shared: bool = False
    dependencies: list[str] | None = None


_SESSION_ID = ConfigurableFieldSpec(
    id="session_id",
    annotation=str,
    name="Session ID",
    description="Unique identifier for a session.",
    default="",
    is_shared=True,
)


def _positional_ok(func: Callable[..., Any]) -> bool:
    import inspect  # ~5 ms at import time; needed once per wrapper

    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
               for p in params)


class RunnableWithMessageHistory(Runnable[Any, Any]):
    """Wraps a runnable so each call reads and extends a session's message history.

    ``get_session_history`` is called with the ``session_id`` (or, with
    ``history_factory_config``, with each configured key by name) and returns a
    :class:`BaseChatMessageHistory`; it may be ``async`` when you use ``ainvoke``/``astream``.
    The session comes from ``config={"configurable": {"session_id": ...}}`` or from the
    keyword shortcut ``invoke(..., session_id=...)``.
    """

    def __init__(
        self,
        runnable: Any,
        get_session_history: HistoryFactory,
        *,
        input_messages_key: str | None = None,
        output_messages_key: str | None = None,
        history_messages_key: str | None = None,
        history_factory_config: Sequence[ConfigurableFieldSpec] | None = None,
    ) -> None:
        if not callable(get_session_history):
            raise InputError("get_session_history must be a callable returning a history")
        self.runnable = coerce_to_runnable(runnable)
        self.get_session_history = get_session_history
        self.input_messages_key = input_messages_key
        self.output_messages_key = output_messages_key
        self.history_messages_key = history_messages_key
        specs = list(history_factory_config or [_SESSION_ID])
        if not specs:
            raise InputError("history_factory_config must name at least one key")
        self.history_factory_config = specs
        self._keys = [spec.id for spec in specs]
        self._positional = len(specs) == 1 and _positional_ok(get_session_history)

    # -- the pure parts, shared by the sync and async paths --------------------------------

    def _factory_args(self, config: RunnableConfig | None,
                      overrides: dict[str, Any]) -> dict[str, Any]:
        configurable = (config or {}).get("configurable") or {}
        values: dict[str, Any] = {}
        missing: list[str] = []
        for spec in self.history_factory_config:
            if spec.id in overrides:
                values[spec.id] = overrides[spec.id]
            elif spec.id in configurable:
                values[spec.id] = configurable[spec.id]
            elif spec.default is not None and spec is not _SESSION_ID:
                values[spec.id] = spec.default
            else:
                missing.append(spec.id)
        if missing:
            example = ", ".join(f"{key!r}: ..." for key in self._keys)
            raise MissingConfigError(
                f"missing {missing} in config['configurable']; this history needs "
                f"{self._keys}. Pass config={{'configurable': {{{example}}}}}"
                + (" or session_id=..." if self._keys == ["session_id"] else ""),
                missing=missing,
            )
        unknown = [key for key in overrides if key not in self._keys]
        if unknown:
            raise InputError(
                f"unexpected keyword argument(s) {unknown}; the history keys are {self._keys}"
            )
        return values

    def _call_factory(self, values: dict[str, Any]) -> Any:
        if self._positional:
            return self.get_session_history(values[self._keys[0]])
        return self.get_session_history(**values)

    def _input_messages(self, input: Any) -> list[BaseMessage]:
        value = input
        if isinstance(input, dict):
            key = self.input_messages_key or (
                next(iter(input)) if len(input) == 1 else "input"
            )
            if key not in input:
                raise InputError(
                    f"the input dict has no key {key!r} (keys: {sorted(input)}); "
                    "set input_messages_key to the key that holds the new message"
                )
            value = input[key]
        if type(value) is str:
            return [HumanMessage(value)]
        if isinstance(value, BaseMessage):
            return [value]
        if isinstance(value, list | tuple) and all(isinstance(m, BaseMessage) for m in value):
            return list(value)
        raise InputError(
            f"cannot read the new message(s) from {type(value).__name__}; expected a str, "
            "a message, a list of messages, or a dict holding one of these"
        )

    def _prepare(self, input: Any, history: list[BaseMessage],
                 new: list[BaseMessage]) -> Any:
        if self.history_messages_key:
            if not isinstance(input, dict):
                raise InputError(
                    f"with history_messages_key={self.history_messages_key!r} the input "
                    f"must be a dict, got {type(input).__name__}"
                )
            return {**input, self.history_messages_key: history}
        if isinstance(input, dict):
            key = self.input_messages_key or (next(iter(input)) if len(input) == 1 else "input")
            return {**input, key: history + new}
        return history + new

    def _output_messages(self, output: Any) -> list[BaseMessage]:
        value = output
        if isinstance(output, dict):
            key = self.output_messages_key or (
                next(iter(output)) if len(output) == 1 else "output"
            )
            if key not in output:
                raise InputError(
                    f"the output dict has no key {key!r} (keys: {sorted(output)}); "
                    "set output_messages_key to the key that holds the answer"
                )
            value = output[key]
        if type(value) is str:
            return [AIMessage(value)]
        if isinstance(value, AIMessageChunk):
            return [value.to_message()]
        if isinstance(value, BaseMessage):
            return [value]
        if isinstance(value, list | tuple) and all(isinstance(m, BaseMessage) for m in value):
            return [m.to_message() if isinstance(m, AIMessageChunk) else m for m in value]
        raise InputError(
            f"cannot store an output of type {type(value).__name__}; the runnable must "
            "return a str, a message, a list of messages, or a dict holding one of these"
        )

    # -- sync ------------------------------------------------------------------------------

    def _history(self, config: RunnableConfig | None,
                 overrides: dict[str, Any]) -> BaseChatMessageHistory:
        history = self._call_factory(self._factory_args(config, overrides))
        if isinstance(history, Awaitable):
            close = getattr(history, "close", None)
            if close is not None:
                close()
            raise InputError("get_session_history is async; use ainvoke() or astream()")
        return history  # type: ignore[no-any-return]

    def invoke(self, input: Any, config: RunnableConfig | None = None,
               **kwargs: Any) -> Any:
        history = self._history(config, kwargs)
        new = self._input_messages(input)
        output = self.runnable.invoke(self._prepare(input, history.get_messages(), new), config)
        history.add_messages([*new, *self._output_messages(output)])
        return output

    def stream(self, input: Any, config: RunnableConfig | None = None,
               **kwargs: Any) -> Iterator[Any]:
        history = self._history(config, kwargs)
        new = self._input_messages(input)
        prepared = self._prepare(input, history.get_messages(), new)
        pieces: list[Any] = []
        for piece in self.runnable.stream(prepared, config):
            pieces.append(piece)
            yield piece
        # Reached only when the stream ran to its end: never store half an answer.
        answer = self._output_messages(add_chunks(pieces)) if pieces else [AIMessage("")]
        history.add_messages([*new, *answer])

    # -- async -----------------------------------------------------------------------------

    async def _ahistory(self, config: RunnableConfig | None,
                        overrides: dict[str, Any]) -> BaseChatMessageHistory:
        history = self._call_factory(self._factory_args(config, overrides))
        if isinstance(history, Awaitable):
            history = await history
        return history  # type: ignore[no-any-return]

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> Any:
        history = await self._ahistory(config, kwargs)
        new = self._input_messages(input)
        prepared = self._prepare(input, await history.aget_messages(), new)
        output = await self.runnable.ainvoke(prepared, config)
        await history.aadd_messages([*new, *self._output_messages(output)])
        return output

    async def astream(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> AsyncIterator[Any]:
        history = await self._ahistory(config, kwargs)
        new = self._input_messages(input)
        prepared = self._prepare(input, await history.aget_messages(), new)
        pieces: list[Any] = []
        async for piece in self.runnable.astream(prepared, config):
            pieces.append(piece)
            yield piece
        answer = self._output_messages(add_chunks(pieces)) if pieces else [AIMessage("")]
        await history.aadd_messages([*new, *answer])
