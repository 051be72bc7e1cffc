"""Chat Completions and the model list through the official ``openai`` SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from serving import client, serving

from threadline.messages._values import AIMessage, BaseMessage
from threadline.models._base import BaseChatModel
from threadline.models._fake import EchoChatModel, FakeListChatModel, FakeModelError
from threadline.server._app import create_app


class Seen(BaseChatModel):
    """Answers with what it was sent (messages and options) as JSON."""

    model_name = "seen"

    def _generate(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                  **kwargs: Any) -> AIMessage:
        sent = [{"type": m.type, "content": m.content,
                 "calls": getattr(m, "tool_calls", None) or None,
                 "call_id": getattr(m, "tool_call_id", None)} for m in messages]
        return AIMessage(json.dumps({"messages": sent, "options": kwargs}),
                         usage_metadata={"input_tokens": 7, "output_tokens": 3,
                                         "total_tokens": 10})


class Broken(BaseChatModel):
    def _generate(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                  **kwargs: Any) -> AIMessage:
        raise FakeModelError("the model is down")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[openai.OpenAI, str]]:
    path = tmp_path_factory.mktemp("chat") / "s.db"
    models = {"echo": EchoChatModel(), "seen": Seen(),
              "words": FakeListChatModel(["one two three four"], sleep=0.01),
              "fail": EchoChatModel(error_on_chunk_number=1), "broken": Broken()}
    app = create_app(f"sqlite:///{path}", models)
    with serving(app) as base:
        yield client(base), base


def test_completion(server: Any) -> None:
    sdk, base = server
    answer = sdk.chat.completions.create(model="echo",
                                         messages=[{"role": "user", "content": "hello"}])
    assert answer.choices[0].message.content == "hello"
    assert answer.choices[0].finish_reason == "stop" and answer.object == "chat.completion"
    assert answer.usage is not None and answer.usage.total_tokens > 0
    raw = httpx.post(f"{base}/v1/chat/completions",
                     json={"model": "echo", "messages": [{"role": "user", "content": "x"}]})
    ChatCompletion.model_validate(raw.json())


def test_messages_are_converted(server: Any) -> None:
    sdk, _ = server
    messages: list[Any] = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Dev."}]},
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url",
                                      "image_url": {"url": "https://x.test/a.png"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "lookup", "arguments": "{\"q\": 1}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]
    answer = sdk.chat.completions.create(model="seen", messages=messages, max_tokens=20,
                                         temperature=0.5)
    sent = json.loads(answer.choices[0].message.content or "")
    assert [m["type"] for m in sent["messages"]] == ["system", "system", "human", "ai", "tool"]
    assert sent["messages"][2]["content"][1] == {"type": "image_url",
                                                 "image_url": {"url": "https://x.test/a.png"}}
    assert sent["messages"][3]["calls"][0]["args"] == {"q": 1}
    assert sent["messages"][4]["call_id"] == "call_1"
    assert sent["options"] == {"max_tokens": 20, "temperature": 0.5}
    assert answer.usage is not None and answer.usage.prompt_tokens == 7
    newer = sdk.chat.completions.create(model="seen", max_completion_tokens=9,
                                        messages=[{"role": "user", "content": "x"}])
    assert json.loads(newer.choices[0].message.content or "")["options"] == {"max_tokens": 9}


def test_stream(server: Any) -> None:
    sdk, base = server
    chunks = list(sdk.chat.completions.create(
        model="words", messages=[{"role": "user", "content": "go"}], stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert len({c.id for c in chunks}) == 1
    with httpx.stream("POST", f"{base}/v1/chat/completions", json={
            "model": "echo", "stream": True,
            "messages": [{"role": "user", "content": "a b"}]}) as r:
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    for line in lines[:-1]:
        ChatCompletionChunk.model_validate(json.loads(line.removeprefix("data: ")))


def test_errors(server: Any) -> None:
    sdk, base = server
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.chat.completions.create(model="gpt-nope", messages=[{"role": "user",
                                                                 "content": "x"}])
    assert missing.value.body["code"] == "model_not_found"
    for messages, param in (([{"role": "wizard", "content": "x"}], "messages[0].role"),
                            ([{"role": "user", "content": [{"type": "input_audio"}]}],
                             "messages[0].content[0]"),
                            ([{"role": "tool", "content": "x"}], "messages[0].tool_call_id"),
                            ([], "messages")):
        answer = httpx.post(f"{base}/v1/chat/completions",
                            json={"model": "echo", "messages": messages})
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param
    with pytest.raises(openai.APIError):
        list(sdk.chat.completions.create(model="fail", stream=True,
                                         messages=[{"role": "user", "content": "a b c"}]))
    with pytest.raises(openai.InternalServerError) as down:
        sdk.chat.completions.create(model="broken", messages=[{"role": "user", "content": "a"}])
    assert down.value.status_code == 502 and "the model is down" in down.value.message


def test_models(server: Any) -> None:
    sdk, _ = server
    assert [m.id for m in sdk.models.list()] == ["echo", "seen", "words", "fail",
                                                    "broken"]
    model = sdk.models.retrieve("seen")
    assert (model.id, model.object, model.owned_by) == ("seen", "model", "threadline")
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.models.retrieve("gpt-nope")
    assert missing.value.body["code"] == "model_not_found"


def test_keys_apply(tmp_path: Any) -> None:
    app = create_app(f"sqlite:///{tmp_path}/k.db", "echo", require_keys=True)
    with serving(app) as base:
        with pytest.raises(openai.AuthenticationError):
            client(base, key="wrong").models.list()
        with pytest.raises(openai.AuthenticationError):
            client(base, key="wrong").chat.completions.create(
                model="echo", messages=[{"role": "user", "content": "x"}])
