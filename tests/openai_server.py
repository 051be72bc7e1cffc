"""A small, real OpenAI-compatible HTTP server for tests.

It runs ``http.server.ThreadingHTTPServer`` in a thread on 127.0.0.1 (port 0), answers
``POST /v1/chat/completions`` in JSON or, when the body says ``"stream": true``, as
server-sent events, and records every request (headers and JSON body) in ``requests``.

Answers are scripted: ``server.script(Answer(...), Status(429, ...), ...)`` queues what the
next requests get; with nothing queued it answers ``"echo: <last user text>"``.

- :class:`Answer`: text and/or tool calls with usage; streamed in ``pieces``, optionally
  waiting on ``hold`` (a ``threading.Event``) after the first event, or ``delay`` seconds
  before the headers (to provoke a timeout);
- :class:`Status`: an error status with a JSON body and headers (``Retry-After``), or
  ``echo_auth=True`` to quote the Authorization header back as OpenAI does;
- :class:`Raw`: any bytes with any content type (malformed JSON or event streams).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    content: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {"id","name","arguments"}
    usage: tuple[int, int] = (5, 7)
    pieces: list[str] | None = None  # how to split content when streaming (default: words)
    finish_reason: str | None = None
    delay: float = 0.0  # seconds before answering at all
    hold: threading.Event | None = None  # streaming: wait for it after the first event
    send_done: bool = True
    model: str = "test-model"


@dataclass
class Status:
    status: int
    message: str = "error"
    headers: dict[str, str] = field(default_factory=dict)
    echo_auth: bool = False


@dataclass
class Raw:
    body: bytes
    content_type: str = "text/event-stream"
    status: int = 200


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def _completion(answer: Answer, number: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.content or None}
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function",
             "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in answer.tool_calls
        ]
    finish = answer.finish_reason or ("tool_calls" if answer.tool_calls else "stop")
    prompt, completion = answer.usage
    return {
        "id": f"chatcmpl-{number}", "object": "chat.completion", "created": 1700000000,
        "model": answer.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion},
    }


def _events(answer: Answer, number: int, include_usage: bool) -> list[dict[str, Any]]:
    base = {"id": f"chatcmpl-{number}", "object": "chat.completion.chunk",
            "created": 1700000000, "model": answer.model}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = [chunk({"role": "assistant", "content": ""})]
    if answer.content:
        import re

        pieces = answer.pieces or re.findall(r"\s*\S+", answer.content)
        events += [chunk({"content": piece}) for piece in pieces]
    for index, call in enumerate(answer.tool_calls):
        args = call["arguments"]
        half = len(args) // 2
        events.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                             "function": {"name": call["name"],
                                                          "arguments": args[:half]}}]}))
        events.append(chunk({"tool_calls": [{"index": index,
                                             "function": {"arguments": args[half:]}}]}))
    events.append(chunk({}, answer.finish_reason or ("tool_calls" if answer.tool_calls
                                                     else "stop")))
    if include_usage:
        prompt, completion = answer.usage
        events.append({**base, "choices": [],
                       "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                 "total_tokens": prompt + completion}})
    return events


class OpenAIServer:
    """``with OpenAIServer() as server: ChatOpenAI(base_url=server.base_url, ...)``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._script: deque[Answer | Status | Raw] = deque()
        self._lock = threading.Lock()
        self.stream_finished = threading.Event()  # set when a stream's last byte is sent
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle's algorithm and
            # the client's delayed ACK add 40 ms to every keep-alive answer.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                with server._lock:
                    server.requests.append(Recorded(self.path, dict(self.headers.items()), body))
                    number = len(server.requests)
                    reply = server._script.popleft() if server._script else None
                if self.path != "/v1/chat/completions":
                    reply = Status(404, f"no route {self.path}")
                if reply is None:
                    reply = Answer("echo: " + server._last_user_text(body))
                # The client may have given up already (timeout tests).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    server._reply(self, reply, body, number)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,),
                                        daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def script(self, *replies: Answer | Status | Raw) -> None:
        with self._lock:
            self._script.extend(replies)

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    def start(self) -> OpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def _last_user_text(body: dict[str, Any]) -> str:
        for message in reversed(body.get("messages") or []):
            if message.get("role") == "user":
                content = message.get("content")
                return content if isinstance(content, str) else json.dumps(content)
        return ""

    def _reply(self, handler: BaseHTTPRequestHandler, reply: Answer | Status | Raw,
               body: dict[str, Any], number: int) -> None:
        if isinstance(reply, Raw):
            self._send(handler, reply.status, reply.content_type, reply.body)
        elif isinstance(reply, Status):
            message = reply.message
            if reply.echo_auth:
                message += f" (you sent: {handler.headers.get('Authorization')})"
            error = {"error": {"message": message, "type": "test_error", "code": None}}
            self._send(handler, reply.status, "application/json",
                       json.dumps(error).encode(), reply.headers)
        else:
            if reply.delay:
                time.sleep(reply.delay)
            if body.get("stream"):
                self._stream(handler, reply, body, number)
            else:
                self._send(handler, 200, "application/json",
                           json.dumps(_completion(reply, number)).encode())

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, content_type: str, data: bytes,
              headers: dict[str, str] | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()

    def _stream(self, handler: BaseHTTPRequestHandler, answer: Answer, body: dict[str, Any],
                number: int) -> None:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")  # the body ends when the server closes
        handler.end_headers()
        handler.close_connection = True
        events = [f"data: {json.dumps(e)}\n\n".encode()
                  for e in _events(answer, number, include_usage)]
        if answer.send_done:
            events.append(b"data: [DONE]\n\n")
        for position, event in enumerate(events):
            handler.wfile.write(event)
            handler.wfile.flush()
            # Hold after the first piece of text (events[0] is the role-only delta).
            if position == 1 and answer.hold is not None:
                answer.hold.wait(10)
        self.stream_finished.set()


def sent_texts(server: OpenAIServer, request: int = -1) -> list[tuple[str, str]]:
    """(role, text) of each message the model was sent in one request."""
    return [(m["role"], m["content"] if isinstance(m["content"], str) else str(m["content"]))
            for m in server.requests[request].body["messages"]]


@contextlib.contextmanager
def serving_as_openai(monkeypatch: Any) -> Iterator[OpenAIServer]:
    """A server, with the environment that clients built with no arguments read
    (``langchain_openai.ChatOpenAI()``, ``openai.OpenAI()``) pointing at it."""
    with OpenAIServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_BASE", server.base_url)
        yield server
