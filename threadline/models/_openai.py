"""ChatOpenAI: any OpenAI-compatible Chat Completions endpoint (OpenAI, vLLM, llama.cpp's
server, Ollama, LM Studio, OpenRouter, ...).

Everything about the wire format lives in :mod:`threadline.models._openai_protocol` as pure
functions; this module is the two thin I/O shells around it, ``httpx.Client`` for the
sync methods and ``httpx.AsyncClient`` for the async ones. Both run the same attempt loop:
send, and on a retryable failure (429, 5xx, timeout, refused connection) ask
:meth:`ChatOpenAI._retry_or_raise` for the delay, which raises the right
:class:`~threadline.ModelError` once the retries are used up. A stream is retried only
before its first byte: once pieces have been handed out, a failure is raised.

The API key is kept in a :class:`SecretStr`, sent only in the ``Authorization`` header,
and masked in every error message and log line (servers like to echo it back). A
``base_url`` may carry credentials (``http://user:PROXYSECRET@proxy/v1``, as
``OPENAI_BASE_URL``): every message, log line and repr shows it through
:func:`~threadline._redact.redact_url`, and its password is masked like the key in any
text that might quote it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from threadline._errors import (
    InputError,
    MissingDependencyError,
    ModelConnectionError,
    ModelError,
    ModelHTTPError,
    ModelRateLimitError,
    ModelTimeoutError,
)
from threadline._redact import redact_url, split_userinfo
from threadline.core._runnables import RunnableBinding
from threadline.messages._chunks import AIMessageChunk, merge_chunks
from threadline.messages._values import AIMessage, BaseMessage
from threadline.models._base import BaseChatModel, as_chunk
from threadline.models._openai_protocol import (
    RETRY_STATUSES,
    StreamReader,
    build_request_body,
    convert_to_openai_tool,
    decode_json,
    error_message,
    parse_completion,
    redact,
    retry_delay,
    tool_choice_to_openai,
)

try:
    import httpx
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise MissingDependencyError("httpx", "openai") from exc

if TYPE_CHECKING:
    import asyncio

__all__ = ["ChatOpenAI", "SecretStr"]

logger = logging.getLogger("threadline.openai")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_USER_AGENT = "threadline-openai/0.1"


class SecretStr:
    """A string that never shows itself in ``repr``/``str``; ``get_secret_value()`` does."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (SecretStr, (self._value,))


def _pick(name: str, value: Any, alias_name: str, alias: Any) -> Any:
    if value is not None and alias is not None and value != alias:
        raise InputError(f"got both {name}={value!r} and {alias_name}=...; pass only {name}")
    return value if value is not None else alias


def _url_secrets(url: str) -> tuple[str, ...]:
    """The password of a URL, as written and percent-decoded; none shorter than 4
    characters (masking every "ab" of a message would mangle it, and the URL itself is
    always shown redacted)."""
    from urllib.parse import unquote

    parts = split_userinfo(url)
    if parts is None:
        return ()
    password = parts[2]
    return tuple(dict.fromkeys(s for s in (password, unquote(password)) if len(s) >= 4))


class ChatOpenAI(BaseChatModel):
    """A chat model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    >>> model = ChatOpenAI(model="llama3", base_url="http://localhost:8080/v1")  # doctest: +SKIP
    >>> model.invoke("Hello!").content  # doctest: +SKIP
    'Hello! How can I help?'

    ``base_url`` defaults to ``$OPENAI_BASE_URL``, then the OpenAI API; ``api_key`` to
    ``$OPENAI_API_KEY`` (required only for the OpenAI API itself). ``temperature``,
    ``max_tokens`` and any further keyword (``top_p=0.9``, ``seed=1``...) go into every
    request body; keywords given to ``invoke``/``stream`` go into that one request.
    LangChain's spellings ``model_name``, ``openai_api_key``, ``openai_api_base``,
    ``request_timeout`` and ``model_kwargs`` are accepted too.

    Failed requests are retried ``max_retries`` times with exponential backoff (honouring
    ``Retry-After``) on 408/409/429/5xx, timeouts and refused connections; then a
    :class:`~threadline.ModelError` subclass is raised.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        timeout: float | None = 60.0,
        max_retries: int = 2,
        streaming: bool = False,
        stream_usage: bool = True,
        default_headers: dict[str, str] | None = None,
        model_kwargs: dict[str, Any] | None = None,
        http_client: httpx.Client | None = None,
        http_async_client: httpx.AsyncClient | None = None,
        model_name: str | None = None,
        openai_api_key: str | SecretStr | None = None,
        openai_api_base: str | None = None,
        request_timeout: float | None = None,
        **extra: Any,
    ) -> None:
        model = _pick("model", model, "model_name", model_name) or "gpt-4o-mini"
        if not isinstance(model, str) or not model:
            raise InputError(f"model must be a non-empty str, got {model!r}")
        base_url = (_pick("base_url", base_url, "openai_api_base", openai_api_base)
                    or os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_BASE")
                    or DEFAULT_BASE_URL)
        if not base_url.startswith(("http://", "https://")):
            raise InputError(
                f"base_url must be an http:// or https:// URL such as "
                f"'http://localhost:8000/v1', got {redact_url(base_url)!r}"
            )
        try:
            httpx.URL(base_url)
        except httpx.InvalidURL:
            # Not httpx's text: it quotes the part it choked on, a password perhaps.
            raise InputError(
                f"base_url {redact_url(base_url)!r} is not a valid URL; percent-encode "
                "'/', '#', '?', '@' and ':' inside a user name or password") from None
        key = _pick("api_key", api_key, "openai_api_key", openai_api_key)
        if key is None:
            key = os.environ.get("OPENAI_API_KEY") or None
        if isinstance(key, str):
            key = SecretStr(key)
        if key is None and base_url.rstrip("/") == DEFAULT_BASE_URL:
            raise InputError(
                "ChatOpenAI needs an API key for the OpenAI API: pass api_key=... or set "
                "OPENAI_API_KEY (for a server that needs no key, pass its base_url=...)"
            )
        if request_timeout is not None:
            timeout = request_timeout
        if timeout is not None and not timeout > 0:
            raise InputError(f"timeout must be a positive number of seconds or None, "
                             f"got {timeout!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise InputError(f"max_retries must be an int >= 0, got {max_retries!r}")
        self.model = self.model_name = model
        self.base_url = base_url.rstrip("/")
        self._api_key: SecretStr | None = key
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_completion_tokens = max_completion_tokens
        self.timeout = timeout
        self.max_retries = max_retries
        self.streaming = streaming
        self.stream_usage = stream_usage
        self.default_headers = dict(default_headers or {})
        self.model_kwargs = {**(model_kwargs or {}), **extra}
        self._url = f"{self.base_url}/chat/completions"
        # What messages show of it, and its password (raw and decoded) to mask in any text.
        self._shown_url = redact_url(self._url)
        self._url_secrets = _url_secrets(self.base_url)
        self._http_client = http_client
        self._http_async_client = http_async_client
        self._own_client: httpx.Client | None = None
        self._own_async_client: httpx.AsyncClient | None = None
        self._async_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._lock = threading.Lock()

    # -- configuration ---------------------------------------------------------------------

    @property
    def api_key(self) -> SecretStr | None:
        return self._api_key

    openai_api_key = api_key

    @property
    def openai_api_base(self) -> str:
        return self.base_url

    def __repr__(self) -> str:
        return self._redact(f"ChatOpenAI(model={self.model!r}, "
                            f"base_url={redact_url(self.base_url)!r})")

    def _secret(self) -> str | None:
        return self._api_key.get_secret_value() if self._api_key else None

    def _redact(self, text: str) -> str:
        return redact(text, self._secret(), *self._url_secrets)

    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {"User-Agent": _USER_AGENT, **self.default_headers,
                   "Accept": "text/event-stream" if stream else "application/json"}
        secret = self._secret()
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        return headers

    def _body(self, messages: list[BaseMessage], stop: list[str] | None,
              kwargs: dict[str, Any], *, stream: bool) -> dict[str, Any]:
        params = {"temperature": self.temperature, "max_tokens": self.max_tokens,
                  "max_completion_tokens": self.max_completion_tokens, **self.model_kwargs}
        return build_request_body(self.model, messages, params=params, stream=stream,
                                  stream_usage=self.stream_usage, stop=stop,
                                  call_kwargs=kwargs)

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None,
                   **kwargs: Any) -> RunnableBinding[Any, AIMessage]:
        """This model with ``tools`` offered on every call.

        Tools are functions with type hints and a docstring, pydantic model classes or
        OpenAI tool dicts. ``tool_choice`` is ``"auto"``, ``"none"``, ``"required"``, a
        tool's name or ``True`` (the only tool); other keywords
        (``parallel_tool_calls=False``) go into the request too::

            def add(a: int, b: int) -> int:
                '''Add two integers.'''
                return a + b

            answer = model.bind_tools([add]).invoke("What is 2 + 3?")
            answer.tool_calls  # [{"name": "add", "args": {"a": 2, "b": 3}, "id": ...}]
        """
        converted = [convert_to_openai_tool(tool) for tool in tools]
        tool_choice_to_openai(tool_choice, converted)  # fail now, not at the first call
        return self.bind(tools=converted, tool_choice=tool_choice, **kwargs)

    # -- failures, shared by both shells ---------------------------------------------------

    def _wrap(self, exc: httpx.TransportError) -> ModelError:
        detail = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return ModelTimeoutError(self._redact(
                f"{self._shown_url} did not answer within timeout={self.timeout}s "
                f"({type(exc).__name__}: {detail})"
            ))
        if isinstance(exc, httpx.ConnectError):
            return ModelConnectionError(self._redact(
                f"cannot connect to {self._shown_url}: {detail}; is the server running and "
                "base_url right?"
            ))
        return ModelConnectionError(self._redact(f"the connection to {self._shown_url} failed: "
                                                 f"{type(exc).__name__}: {detail}"))

    def _status_error(self, response: httpx.Response, attempts: int) -> ModelHTTPError:
        status = response.status_code
        body = self._redact(response.text)
        message = (f"{self._shown_url} answered HTTP {status} {response.reason_phrase}: "
                   f"{error_message(body)}")
        if attempts > 1:
            message += f" (after {attempts} attempts)"
        if status == 401:
            message += "; check api_key / OPENAI_API_KEY"
        elif status == 404:
            message += f"; check the model name {self.model!r} and base_url (usually ends in /v1)"
        cls = ModelRateLimitError if status == 429 else ModelHTTPError
        return cls(self._redact(message), status_code=status, body=body)

    def _retry_or_raise(self, attempt: int, failure: httpx.Response | httpx.TransportError
                        ) -> float:
        """Seconds to wait before the next attempt; raises when there is none."""
        if isinstance(failure, httpx.Response):
            retryable = failure.status_code in RETRY_STATUSES
            if not retryable or attempt >= self.max_retries:
                raise self._status_error(failure, attempt + 1)
            delay = retry_delay(attempt, failure.headers)
            reason = f"HTTP {failure.status_code}"
        else:
            retryable = isinstance(failure, httpx.TimeoutException | httpx.ConnectError)
            if not retryable or attempt >= self.max_retries:
                raise self._wrap(failure) from failure
            delay = retry_delay(attempt)
            reason = type(failure).__name__
        logger.warning("%s: %s; retry %d of %d in %.2fs", self._redact(self._shown_url), reason,
                       attempt + 1,
                       self.max_retries, delay)
        return delay

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        # Failures while reading a body or stream (after the attempt loop) are wrapped here.
        try:
            yield
        except httpx.TransportError as exc:
            raise self._wrap(exc) from exc

    # -- sync shell ------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        if self._http_client is not None:
            return self._http_client
        with self._lock:
            if self._own_client is None:
                self._own_client = httpx.Client()
                # Pooled keep-alive sockets are closed when the model goes away.
                weakref.finalize(self, self._own_client.close)
            return self._own_client

    def _send(self, body: dict[str, Any], *, stream: bool) -> httpx.Response:
        """The response to the first attempt that succeeds, its body not yet read."""
        client = self._client()
        for attempt in itertools.count():
            request = client.build_request("POST", self._url, json=body,
                                           headers=self._headers(stream), timeout=self.timeout)
            failure: httpx.Response | httpx.TransportError
            try:
                response = client.send(request, stream=True)
            except httpx.TransportError as exc:
                failure = exc
            else:
                if response.is_success:
                    return response
                with self._errors():
                    try:
                        response.read()
                    finally:
                        response.close()
                failure = response
            time.sleep(self._retry_or_raise(attempt, failure))
        raise AssertionError("unreachable")  # pragma: no cover

    def _generate(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                  **kwargs: Any) -> AIMessage:
        if self.streaming:
            return _join(list(self._stream(messages, stop=stop, **kwargs)))
        body = self._body(messages, stop, kwargs, stream=False)
        response = self._send(body, stream=False)
        with self._errors():
            try:
                content = response.read()
            finally:
                response.close()
        return parse_completion(decode_json(content))

    def _stream(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                **kwargs: Any) -> Iterator[AIMessageChunk]:
        body = self._body(messages, stop, kwargs, stream=True)
        response = self._send(body, stream=True)
        try:
            with self._errors():
                if _is_json(response):  # a server that ignores "stream": true
                    yield as_chunk(parse_completion(decode_json(response.read())))
                    return
                reader = StreamReader()
                for line in response.iter_lines():
                    chunk = reader.feed(line)
                    if chunk is not None:
                        yield chunk
                last = reader.end()
                if last is not None:
                    yield last
        finally:
            response.close()

    def close(self) -> None:
        """Close the connection pool this model opened (not one passed in)."""
        with self._lock:
            client, self._own_client = self._own_client, None
        if client is not None:
            client.close()

    # -- async shell -----------------------------------------------------------------------

    def _async_client(self) -> httpx.AsyncClient:
        if self._http_async_client is not None:
            return self._http_async_client
        import asyncio

        # An AsyncClient's connections belong to the event loop that opened them, and each
        # asyncio.run() makes a new loop: keep one client per loop.
        loop = asyncio.get_running_loop()
        if self._own_async_client is None or self._async_loop is None \
                or self._async_loop() is not loop:
            self._own_async_client = httpx.AsyncClient()
            self._async_loop = weakref.ref(loop)
        return self._own_async_client

    async def _asend(self, body: dict[str, Any], *, stream: bool) -> httpx.Response:
        import asyncio

        client = self._async_client()
        for attempt in itertools.count():
            request = client.build_request("POST", self._url, json=body,
                                           headers=self._headers(stream), timeout=self.timeout)
            failure: httpx.Response | httpx.TransportError
            try:
                response = await client.send(request, stream=True)
            except httpx.TransportError as exc:
                failure = exc
            else:
                if response.is_success:
                    return response
                with self._errors():
                    try:
                        await response.aread()
                    finally:
                        await response.aclose()
                failure = response
            await asyncio.sleep(self._retry_or_raise(attempt, failure))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _agenerate(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                         **kwargs: Any) -> AIMessage:
        if self.streaming:
            return _join([c async for c in self._astream(messages, stop=stop, **kwargs)])
        body = self._body(messages, stop, kwargs, stream=False)
        response = await self._asend(body, stream=False)
        with self._errors():
            try:
                content = await response.aread()
            finally:
                await response.aclose()
        return parse_completion(decode_json(content))

    async def _astream(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                       **kwargs: Any) -> AsyncIterator[AIMessageChunk]:
        body = self._body(messages, stop, kwargs, stream=True)
        response = await self._asend(body, stream=True)
        try:
            with self._errors():
                if _is_json(response):
                    yield as_chunk(parse_completion(decode_json(await response.aread())))
                    return
                reader = StreamReader()
                async for line in response.aiter_lines():
                    chunk = reader.feed(line)
                    if chunk is not None:
                        yield chunk
                last = reader.end()
                if last is not None:
                    yield last
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        """Close the async connection pool this model opened in the running loop."""
        client, self._own_async_client = self._own_async_client, None
        if client is not None:
            await client.aclose()


def _is_json(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("application/json")


def _join(chunks: list[AIMessageChunk]) -> AIMessage:
    return merge_chunks(chunks).to_message() if chunks else AIMessage("")

