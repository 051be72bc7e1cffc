"""RunnableWithMessageHistory: a runnable that remembers each session's conversation.

Per turn it (1) gets the session's history from the factory, (2) reads the stored
messages once, (3) runs the wrapped runnable with them inserted, and (4) stores the new
input and output messages with ONE ``add_messages`` call. The cost beyond the wrapped
runnable is a few dictionary lookups and list copies, whatever the history's length.

If the runnable raises, or a stream is abandoned before its end, nothing of the turn is
stored: a history never holds a question without its answer or half an answer.

The semantics are LangChain's (``langchain_core/runnables/history.py``), pinned by
``tests/core/test_upstream_with_history.py``:

- The factory's signature is read once, when the wrapper is built. With one key (by
  default ``session_id``) its value is passed positionally, and a factory without
  parameters is called with none and needs no key at all; with several keys
  (``history_factory_config``) each is passed by name, so they must be the factory's
  parameter names (or it must take ``**kwargs``). A key missing from the config is an
  error: ``ConfigurableFieldSpec.default`` is not used, as in LangChain.
- Keys may be given in ``config["configurable"]`` or, as LangChain's config merging
  allows, at the top level of the config (``config={"session_id": "1"}``).
- The new messages are a str (a human message), a message, a list of messages (or a
  list holding one such list), or any of these under ``input_messages_key`` of a dict
  (or its only key, or ``"input"``). Without ``input_messages_key`` and
  ``history_messages_key`` the wrapped runnable is given the message list itself.
- The output is a str (an AI message), a message, a list of messages, or one of these
  under ``output_messages_key`` of a dict (or its only key, or ``"output"``).

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

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from threadline._errors import InputError, MissingConfigError
from threadline._foreign import convert as convert_foreign
from threadline._foreign import describe
from threadline.core._history import BaseChatMessageHistory
from threadline.core._runnables import (
    CONFIG_KEYS,
    Runnable,
    RunnableConfig,
    add_chunks,
    coerce_to_runnable,
)
from threadline.messages._chunks import AIMessageChunk
from threadline.messages._values import AIMessage, BaseMessage, HumanMessage

if TYPE_CHECKING:
    import inspect

__all__ = ["ConfigurableFieldSpec", "RunnableWithMessageHistory"]

HistoryFactory = Callable[..., BaseChatMessageHistory | Awaitable[BaseChatMessageHistory]]


class ConfigurableFieldSpec(NamedTuple):
    """Describes one key the history factory takes from ``config["configurable"]``.

    Only ``id`` is used; the other fields are kept for LangChain compatibility (as in
    LangChain, ``default`` does not fill in a missing key).
    """

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

_ACCEPTED_INPUT = ("a str, a message, a list of messages (or a list holding one such "
                   "list), or a dict holding one of these")
_ACCEPTED_OUTPUT = "a str, a message, a list of messages, or a dict holding one of these"

# How the factory is called, decided once from its signature.
_NO_ARGS, _POSITIONAL, _KEYWORDS = "no arguments", "positional", "keywords"


def _normalise_config(config: RunnableConfig | None) -> RunnableConfig | None:
    """``config`` with its non-config top-level keys moved into ``configurable``, as
    LangChain's ``ensure_config`` does (a ``None`` value counts as absent, and a top-level
    key wins over the same key in ``configurable``). Returned as is when there are none."""
    # This belongs where threadline merges configs (core/_runnables.py), for every
    # runnable; until then the wrapper, which needs it to find the session, does it for
    # the config it reads and passes on.
    if not config or config.keys() <= CONFIG_KEYS:
        return config
    configurable = dict(config.get("configurable") or {})
    merged: dict[str, Any] = {}
    for key, value in config.items():
        if key in CONFIG_KEYS:
            merged[key] = value
        elif value is not None:
            configurable[key] = value
    merged["configurable"] = configurable
    return merged  # type: ignore[return-value]  # the keys are RunnableConfig's


def _parameters(func: Callable[..., Any]) -> list[inspect.Parameter] | None:
    """The factory's parameters, or ``None`` when its signature cannot be read."""
    import inspect  # ~5 ms at import time; needed once per wrapper

    try:
        if sys.version_info >= (3, 14):
            # Annotations are lazy from 3.14: do not evaluate them (a name imported
            # under TYPE_CHECKING would raise NameError), as LangChain does.
            from annotationlib import Format

            signature = inspect.signature(func, annotation_format=Format.FORWARDREF)
        else:
            signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    return list(signature.parameters.values())


def _call_mode(func: Callable[..., Any], keys: list[str]) -> str:
    """How to call the factory with these keys; an :class:`InputError` if it cannot take
    them (LangChain finds that out at the first call, we when the wrapper is built)."""
    params = _parameters(func)
    if params is None:  # a builtin or other opaque callable: trust it
        return _POSITIONAL if len(keys) == 1 else _KEYWORDS
    if len(keys) == 1:
        if not params:
            return _NO_ARGS
        if any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
               for p in params):
            return _POSITIONAL
    by_name = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params)
    unknown = [] if takes_any else [key for key in keys if key not in by_name]
    unfilled = [p.name for p in params if p.default is p.empty and p.name not in keys
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if unknown or unfilled:
        how = ("each key is passed by name" if len(keys) > 1 else
               "a factory without positional parameters is given the key by name")
        raise InputError(
            f"the history keys {sorted(keys)} do not match the parameter names "
            f"{sorted(p.name for p in params)} of get_session_history: {how}, so name "
            "the parameters after the keys (or take **kwargs), or change "
            "history_factory_config"
        )
    return _KEYWORDS


def _plain(text: str) -> str:
    # A str subclass (LangChain 1.x's StrOutputParser returns one) is stored as the plain
    # str it holds: messages are values, and str.__str__ ignores an overridden __str__
    # (a (str, Enum) member gives its value, not "Color.RED").
    return text if type(text) is str else str.__str__(text)


def _new_messages(value: Any) -> list[BaseMessage]:
    """The turn's new messages, from the input (or its messages key)."""
    if isinstance(value, str):
        return [HumanMessage(_plain(value))]
    if isinstance(value, BaseMessage):
        return [value]
    if isinstance(value, list | tuple):
        if value and isinstance(value[0], list):
            # [[messages]]: how a chat model's input looks when batched (LangChain).
            if len(value) != 1:
                raise InputError(
                    f"expected one list of messages, got a list of {len(value)} lists"
                )
            value = value[0]
        batch = list(value)
        for i, item in enumerate(batch):
            if not isinstance(item, BaseMessage):
                converted = convert_foreign("message", item)  # a LangChain message
                if converted is None:
                    raise InputError(
                        f"cannot read the new message(s) from a list holding "
                        f"{describe(item)}; expected {_ACCEPTED_INPUT}"
                    )
                batch[i] = converted
        return batch
    converted = convert_foreign("message", value)
    if converted is not None:
        return [converted]
    raise InputError(
        f"cannot read the new message(s) from {type(value).__name__}; "
        f"expected {_ACCEPTED_INPUT}"
    )


def _answer_messages(value: Any) -> list[BaseMessage]:
    """The messages to store for the runnable's output (or its messages key)."""
    if isinstance(value, str):
        return [AIMessage(_plain(value))]
    if isinstance(value, AIMessageChunk):
        return [value.to_message()]
    if isinstance(value, BaseMessage):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(m, BaseMessage) for m in value):
        return [m.to_message() if isinstance(m, AIMessageChunk) else m for m in value]
    # LangChain's wording first, so code matching its message keeps working.
    raise InputError(
        f"Expected str, BaseMessage, list[BaseMessage], or tuple[BaseMessage]. "
        f"Got {str(value)[:200]}. Cannot store an output of type {type(value).__name__}; "
        f"the runnable must return {_ACCEPTED_OUTPUT}"
    )


class RunnableWithMessageHistory(Runnable[Any, Any]):
    """Wraps a runnable so each call reads and extends a session's message history.

    ``get_session_history`` is called with the ``session_id`` (or, with
    ``history_factory_config``, with each configured key by name; or, if it takes no
    parameters, with nothing) and returns a :class:`BaseChatMessageHistory`; it may be
    ``async`` when you use ``ainvoke``/``astream``. The session comes from
    ``config={"configurable": {"session_id": ...}}``, ``config={"session_id": ...}``, or
    the keyword shortcut ``invoke(..., session_id=...)``.
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
        # An empty list means the default, as in LangChain.
        self.history_factory_config = list(history_factory_config or [_SESSION_ID])
        self._keys = [spec.id for spec in self.history_factory_config]
        self._mode = _call_mode(get_session_history, self._keys)

    # -- the pure parts, shared by the sync and async paths --------------------------------

    def _factory_result(self, config: RunnableConfig | None, overrides: dict[str, Any]) -> Any:
        """What the factory returns (a history, or an awaitable of one) for this call;
        ``config`` is already normalised."""
        if overrides:
            unknown = [key for key in overrides if key not in self._keys]
            if unknown:
                raise InputError(
                    f"unexpected keyword argument(s) {unknown}; the history keys are "
                    f"{self._keys}"
                )
        if self._mode is _NO_ARGS:
            return self.get_session_history()
        configurable = (config or {}).get("configurable") or {}
        values: dict[str, Any] = {}
        for key in self._keys:
            if key in overrides:
                values[key] = overrides[key]
            elif key in configurable:
                values[key] = configurable[key]
        if len(values) < len(self._keys):
            self._missing(values)
        if self._mode is _POSITIONAL:
            return self.get_session_history(values[self._keys[0]])
        return self.get_session_history(**values)

    def _missing(self, values: dict[str, Any]) -> None:
        missing = [key for key in self._keys if key not in values]
        example = ", ".join(f"{key!r}: ..." for key in self._keys)
        if self._keys == ["session_id"]:
            also = ", config={'session_id': ...} or session_id=..."
        else:
            also = f" or config={{{example}}}"
        raise MissingConfigError(
            f"missing {missing} in config['configurable']; get_session_history needs "
            f"{self._keys}. Pass config={{'configurable': {{{example}}}}}{also}"
            + (" (a get_session_history without parameters needs no key)"
               if len(self._keys) == 1 else ""),
            missing=missing,
        )

    def _messages_key(self, value: dict[str, Any]) -> str:
        # LangChain's choice: the configured key, else the only key, else "input".
        return self.input_messages_key or (next(iter(value)) if len(value) == 1 else "input")

    def _input_messages(self, input: Any) -> list[BaseMessage]:
        value = input
        if isinstance(input, dict):
            key = self._messages_key(input)
            if key not in input:
                raise InputError(
                    f"the input dict has no key {key!r} (keys: {sorted(input)}); "
                    "set input_messages_key to the key that holds the new message"
                )
            value = input[key]
        return _new_messages(value)

    def _prepare(self, input: Any, history: list[BaseMessage],
                 new: list[BaseMessage]) -> Any:
        """The wrapped runnable's input: the history goes into ``history_messages_key``,
        else before the new messages in ``input_messages_key``, else it and the new
        messages are the input (even when the caller gave a dict, as in LangChain)."""
        key = self.history_messages_key or self.input_messages_key
        if key is None:
            return history + new
        if not isinstance(input, dict):
            option = "history_messages_key" if self.history_messages_key else "input_messages_key"
            raise InputError(
                f"with {option}={key!r} the input must be a dict (holding the new "
                f"message(s) and the prompt's other variables), got {type(input).__name__}"
            )
        if self.history_messages_key:
            return {**input, key: history}
        return {**input, key: history + new}

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
        return _answer_messages(value)

    # -- sync ------------------------------------------------------------------------------

    def _history(self, config: RunnableConfig | None,
                 overrides: dict[str, Any]) -> BaseChatMessageHistory:
        history = self._factory_result(config, overrides)
        if isinstance(history, Awaitable):
            close = getattr(history, "close", None)
            if close is not None:
                close()
            raise InputError("get_session_history is async; use ainvoke() or astream()")
        return history  # type: ignore[no-any-return]

    def invoke(self, input: Any, config: RunnableConfig | None = None,
               **kwargs: Any) -> Any:
        config = _normalise_config(config)
        history = self._history(config, kwargs)
        new = self._input_messages(input)
        output = self.runnable.invoke(self._prepare(input, history.get_messages(), new), config)
        history.add_messages([*new, *self._output_messages(output)])
        return output

    def stream(self, input: Any, config: RunnableConfig | None = None,
               **kwargs: Any) -> Iterator[Any]:
        config = _normalise_config(config)
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
        history = self._factory_result(config, overrides)
        if isinstance(history, Awaitable):
            history = await history
        return history  # type: ignore[no-any-return]

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> Any:
        config = _normalise_config(config)
        history = await self._ahistory(config, kwargs)
        new = self._input_messages(input)
        prepared = self._prepare(input, await history.aget_messages(), new)
        output = await self.runnable.ainvoke(prepared, config)
        await history.aadd_messages([*new, *self._output_messages(output)])
        return output

    async def astream(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> AsyncIterator[Any]:
        config = _normalise_config(config)
        history = await self._ahistory(config, kwargs)
        new = self._input_messages(input)
        prepared = self._prepare(input, await history.aget_messages(), new)
        pieces: list[Any] = []
        async for piece in self.runnable.astream(prepared, config):
            pieces.append(piece)
            yield piece
        answer = self._output_messages(add_chunks(pieces)) if pieces else [AIMessage("")]
        await history.aadd_messages([*new, *answer])
