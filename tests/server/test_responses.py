"""The Responses API through the official ``openai`` SDK, against a real server.

What the model was sent is checked with :class:`Seen`, a model that answers with the
prompt it got (as JSON); what was stored, by reading the store. Every response object
and stream event is validated against both OpenAI's types and the Open Responses
specification's (``openresponses_types``).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import openresponses_types as ort
import pytest
from conftest import require_server
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter
from serving import client, serving

from threadline.messages._values import AIMessage, BaseMessage
from threadline.models._base import BaseChatModel
from threadline.models._fake import EchoChatModel, FakeListChatModel
from threadline.server._app import create_app
from threadline.server._items import (
    DELETED_PREFIX,
    EXPIRY_KEY,
    RESPONSE_PREFIX,
    response_session,
)
from threadline.stores import Store, open_store

SLOW_TEXT = " ".join(f"word{n}" for n in range(60))

ORT_EVENTS: dict[str, type[Any]] = {
    "response.created": ort.ResponseCreatedStreamingEvent,
    "response.in_progress": ort.ResponseInProgressStreamingEvent,
    "response.output_item.added": ort.ResponseOutputItemAddedStreamingEvent,
    "response.content_part.added": ort.ResponseContentPartAddedStreamingEvent,
    "response.output_text.delta": ort.ResponseOutputTextDeltaStreamingEvent,
    "response.output_text.done": ort.ResponseOutputTextDoneStreamingEvent,
    "response.content_part.done": ort.ResponseContentPartDoneStreamingEvent,
    "response.output_item.done": ort.ResponseOutputItemDoneStreamingEvent,
    "response.completed": ort.ResponseCompletedStreamingEvent,
    "response.incomplete": ort.ResponseIncompleteStreamingEvent,
    "response.failed": ort.ResponseFailedStreamingEvent,
    "error": ort.ErrorStreamingEvent,
}
SEQUENCE = ["response.created", "response.in_progress", "response.output_item.added",
            "response.content_part.added", "response.output_text.delta",
            "response.output_text.done", "response.content_part.done",
            "response.output_item.done", "response.completed"]
OPENAI_EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


class Seen(BaseChatModel):
    """Answers with what it was sent: a JSON list of [type, text] pairs."""

    model_name = "seen"

    def __init__(self, context: int | None = None) -> None:
        self.context = context
        self.calls: list[dict[str, Any]] = []

    def context_size(self) -> int | None:
        return self.context

    def _generate(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                  **kwargs: Any) -> AIMessage:
        self.calls.append(kwargs)
        return AIMessage(json.dumps([[m.type, m.text] for m in messages]))


def seen(response: Any) -> list[list[str]]:
    value: list[list[str]] = json.loads(response.output_text)
    return value


def check_response(data: dict[str, Any]) -> None:
    """Valid for the Open Responses spec and for OpenAI's SDK type."""
    ort.ResponseResource.model_validate(data)
    Response.model_validate(data)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[openai.OpenAI, Store, str]]:
    path = tmp_path_factory.mktemp("responses") / "s.db"
    models = {"seen": Seen(), "echo": EchoChatModel(),
              "slow": FakeListChatModel([SLOW_TEXT], sleep=0.05),
              "fail": EchoChatModel(error_on_chunk_number=2),
              "tiny": Seen(context=600)}
    app = create_app(f"sqlite:///{path}", models, system="Be brief.")
    with serving(app) as base:
        yield client(base), app.state.threadline.store, base


def test_string_input_starts_a_titled_conversation(server: Any) -> None:
    sdk, store, base = server
    response = sdk.responses.create(model="seen", input="What is   the capital of France?")
    assert seen(response) == [["system", "Be brief."],
                              ["human", "What is   the capital of France?"]]
    assert response.status == "completed" and response.object == "response"
    assert response.usage is not None and response.usage.total_tokens > 0
    assert response.conversation is not None
    sid = response.conversation.id
    assert response_session(response.id) == sid
    messages = store.get_messages(sid)
    assert [m.type for m in messages] == ["human", "ai"]
    assert messages[1].id == response.output[0].id
    info = store.session_info(sid)
    assert info.title == "What is the capital of France?" and info.owner is None
    check_response(httpx.get(f"{base}/v1/responses/{response.id}").json())


def test_instructions_reach_the_model_but_are_not_stored(server: Any) -> None:
    sdk, store, _ = server
    response = sdk.responses.create(model="seen", input="hi", instructions="Speak French.",
                                    metadata={"k": "v"}, temperature=0.3,
                                    max_output_tokens=50)
    assert seen(response)[:2] == [["system", "Be brief."], ["system", "Speak French."]]
    assert response.instructions == "Speak French." and response.metadata == {"k": "v"}
    assert response.temperature == 0.3 and response.max_output_tokens == 50
    assert [m.type for m in store.get_messages(response.conversation.id)] == ["human", "ai"]


def test_conversation_holds_the_turns(server: Any) -> None:
    sdk, store, _ = server
    conversation = sdk.conversations.create(items=[{"type": "message", "role": "user",
                                                    "content": "I am Ada."}])
    first = sdk.responses.create(model="seen", input="Who am I?",
                                 conversation=conversation.id)
    assert seen(first)[1:] == [["human", "I am Ada."], ["human", "Who am I?"]]
    assert first.conversation.id == conversation.id
    second = sdk.responses.create(model="seen", input=[{"role": "user", "content": "Again?"}],
                                  conversation={"id": conversation.id})
    assert len(seen(second)) == 5
    assert len(store.get_messages(conversation.id)) == 5


def test_previous_response_id_continues_and_branches(server: Any) -> None:
    sdk, store, _ = server
    first = sdk.responses.create(model="echo", input="one")
    sid = first.conversation.id
    second = sdk.responses.create(model="seen", input="two", previous_response_id=first.id)
    assert [pair[1] for pair in seen(second)] == ["Be brief.", "one", "one", "two"]
    assert second.conversation.id == sid and second.previous_response_id == first.id
    # Branching from the first response again: a fork at its end.
    branch = sdk.responses.create(model="seen", input="two'", previous_response_id=first.id)
    assert [pair[1] for pair in seen(branch)] == ["Be brief.", "one", "one", "two'"]
    fork = branch.conversation.id
    assert fork != sid
    info = store.session_info(fork)
    assert (info.parent, info.fork_point, info.message_count) == (sid, 2, 4)
    assert store.session_info(sid).message_count == 4
    # The latest response of the original goes on in the original.
    third = sdk.responses.create(model="seen", input="three", previous_response_id=second.id)
    assert third.conversation.id == sid and len(seen(third)) == 6


def test_branch_keeps_expiry_and_deleted_items(server: Any) -> None:
    sdk, store, _ = server
    first = sdk.responses.create(model="echo", input="secret")
    sid = first.conversation.id
    sdk.responses.create(model="echo", input="later", previous_response_id=first.id)
    question = store.get_messages(sid)[0]
    store.put_records(sid, {DELETED_PREFIX + question.id: b"1", EXPIRY_KEY: b"3600"})
    after = sdk.responses.create(model="seen", input="next", previous_response_id=first.id)
    assert [pair[1] for pair in seen(after)] == ["Be brief.", "secret", "next"]
    fork = after.conversation.id
    info = store.session_info(fork)
    assert info.expires_at is not None
    assert store.get_records(fork, [EXPIRY_KEY]) == {EXPIRY_KEY: b"3600"}
    assert DELETED_PREFIX + question.id in dict(store.scan_records(fork, DELETED_PREFIX))


def test_bad_combinations_and_unknown_ids(server: Any) -> None:
    sdk, _, base = server
    first = sdk.responses.create(model="echo", input="x")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.responses.create(model="echo", input="y", previous_response_id=first.id,
                             conversation=first.conversation.id)
    assert caught.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError) as missing_model:
        sdk.responses.create(model="gpt-nope", input="y")
    assert missing_model.value.body["code"] == "model_not_found"
    for kwargs in ({"previous_response_id": "resp_nope"},
                   {"previous_response_id": first.id[:-4] + "AAAA"},
                   {"conversation": "conv_missing"}):
        with pytest.raises(openai.NotFoundError):
            sdk.responses.create(model="echo", input="y", **kwargs)
    with pytest.raises(openai.NotFoundError) as gone:
        sdk.responses.retrieve("resp_" + "0" * 32 + "_bm9wZQ")
    assert "not found" in gone.value.message
    for body, param in (({"input": "x", "temperature": "hot"}, "temperature"),
                        ({"input": "x", "metadata": {str(n): "v" for n in range(17)}},
                         "metadata"),
                        ({"input": [{"type": "reasoning"}]}, "input[0].type"),
                        ({"input": "x", "stream": "yes"}, "stream"),
                        ({"input": []}, "input")):
        answer = httpx.post(f"{base}/v1/responses", json=body)
        assert answer.status_code == 400, body
        assert answer.json()["error"]["param"] == param
    bad = httpx.post(f"{base}/v1/responses", content=b"{not json",
                     headers={"content-type": "application/json"})
    assert bad.status_code == 400 and set(bad.json()["error"]) == {"message", "type",
                                                                  "param", "code"}
    huge = httpx.post(f"{base}/v1/responses", json={"input": "x" * (5 * 1024 * 1024)})
    assert huge.status_code == 413


def test_store_false_writes_nothing(server: Any) -> None:
    sdk, store, _ = server
    before = list(store.list_sessions(limit=1000))
    response = sdk.responses.create(model="seen", input="ephemeral", store=False)
    assert response.store is False and response.conversation is None
    assert list(store.list_sessions(limit=1000)) == before
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(response.id)


def test_input_too_long_and_trimming(server: Any) -> None:
    sdk, store, _ = server
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.responses.create(model="tiny", input="word " * 2000)
    assert caught.value.body["code"] == "context_length_exceeded"
    first = sdk.responses.create(model="echo", input="old " * 100)
    response = first
    for n in range(3):
        response = sdk.responses.create(model="echo", input=f"q{n} " * 20,
                                        previous_response_id=response.id)
    last = sdk.responses.create(model="tiny", input="now", previous_response_id=response.id)
    sent = seen(last)
    assert sent[0] == ["system", "Be brief."] and sent[-1] == ["human", "now"]
    assert sent[1][0] == "human" and len(sent) < 10  # the oldest turns were cut
    assert len(store.get_messages(first.conversation.id)) == 10  # the store keeps all


def raw_events(base: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    with httpx.stream("POST", f"{base}/v1/responses", json={**body, "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    return events


def validate_event(name: str, event: dict[str, Any]) -> None:
    assert name == event["type"]
    ORT_EVENTS[name].model_validate(event)
    OPENAI_EVENT.validate_python(event)
    if "response" in event:
        check_response(event["response"])


def test_stream_events_in_order_and_valid(server: Any) -> None:
    sdk, store, base = server
    events = raw_events(base, {"model": "slow", "input": "go", "metadata": {"a": "b"}})
    names = [name for name, _ in events]
    deltas = [e["delta"] for name, e in events if name == "response.output_text.delta"]
    assert len(deltas) == 60 and "".join(deltas) == SLOW_TEXT
    assert [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]] == SEQUENCE
    assert [e["sequence_number"] for _, e in events] == list(range(len(events)))
    for name, event in events:
        validate_event(name, event)
    final = events[-1][1]["response"]
    assert final["output"][0]["content"][0]["text"] == SLOW_TEXT
    assert final["id"] == events[0][1]["response"]["id"]
    assert store.get_messages(final["conversation"]["id"])[-1].text == SLOW_TEXT
    # The SDK's view of the same stream.
    kinds = [event.type for event in sdk.responses.create(model="echo", input="hi there",
                                                          stream=True)]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"


def test_stream_helper_and_chain(server: Any) -> None:
    sdk, _, _ = server
    with sdk.responses.stream(model="echo", input="ping pong") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == final.output_text == "ping pong"
    with sdk.responses.stream(model="seen", input="next",
                              previous_response_id=final.id) as stream:
        follow = stream.get_final_response()
    assert [pair[1] for pair in seen(follow)] == ["Be brief.", "ping pong", "ping pong",
                                                  "next"]


def test_model_error_mid_stream_stores_nothing(server: Any) -> None:
    sdk, store, base = server
    before = list(store.list_sessions(limit=1000))
    events = raw_events(base, {"model": "fail", "input": "a b c d e"})
    assert [name for name, _ in events][-2:] == ["response.failed", "error"]
    for name, event in events:
        validate_event(name, event)
    assert events[-2][1]["response"]["error"]["code"] == "server_error"
    assert events[-1][1]["error"]["code"] == "model_error"
    with pytest.raises(openai.APIError):
        for _ in sdk.responses.create(model="fail", input="a b c d e", stream=True):
            pass
    with pytest.raises(openai.APIError):
        sdk.responses.create(model="fail", input="a b c d e")
    assert list(store.list_sessions(limit=1000)) == before


def test_retrieve_input_items_and_delete(server: Any) -> None:
    sdk, store, _ = server
    items = [{"role": "developer", "content": "Terse."},
             {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
             {"type": "message", "role": "user", "content": "second", "id": "msg_mine"}]
    response = sdk.responses.create(model="echo", input=items)
    assert response.output_text == "second"
    again = sdk.responses.retrieve(response.id)
    assert again.model_dump() == response.model_dump()
    listed = sdk.responses.input_items.list(response.id)
    assert listed.data[0].id == "msg_mine" and len(listed.data) == 3
    assert listed.first_id == "msg_mine" and not listed.has_more
    ascending = sdk.responses.input_items.list(response.id, order="asc", limit=2)
    assert [i.role for i in ascending.data] == ["system", "user"] and ascending.has_more
    rest = sdk.responses.input_items.list(response.id, order="asc",
                                          after=ascending.data[-1].id)
    assert [i.id for i in rest.data] == ["msg_mine"]
    with pytest.raises(openai.BadRequestError):
        sdk.responses.input_items.list(response.id, limit=101)
    sdk.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.create(model="echo", input="x", previous_response_id=response.id)
    assert len(store.get_messages(response.conversation.id)) == 4  # messages stay


def test_disconnect_mid_stream_stores_the_partial_answer(server: Any) -> None:
    _, store, base = server
    body = {"model": "slow", "input": "tell me a long story", "stream": True}
    with httpx.stream("POST", f"{base}/v1/responses", json=body) as r:
        lines = r.iter_lines()
        created: dict[str, Any] = {}
        for line in lines:
            if line.startswith("data: "):
                event = json.loads(line[6:])
                created = created or event
                if event["type"] == "response.output_text.delta":
                    break
    sid = created["response"]["conversation"]["id"]
    deadline = time.monotonic() + 5
    while not store.get_messages(sid) and time.monotonic() < deadline:
        time.sleep(0.05)
    question, answer = store.get_messages(sid)
    assert question.text == "tell me a long story"
    assert answer.response_metadata["interrupted"] is True
    assert 0 < len(answer.text) < len(SLOW_TEXT) and SLOW_TEXT.startswith(answer.text)
    key = RESPONSE_PREFIX + created["response"]["id"]
    record = json.loads(store.get_records(sid, [key])[key])
    assert record["response"]["status"] == "incomplete"
    assert record["response"]["incomplete_details"] == {"reason": "interrupted"}
    ort.ResponseResource.model_validate(record["response"])


def test_first_event_comes_before_the_model_answers(tmp_path: Any) -> None:
    app = create_app(f"sqlite:///{tmp_path}/s.db", FakeListChatModel(["late"], sleep=1.0))
    with serving(app) as base:
        started = time.monotonic()
        with httpx.stream("POST", f"{base}/v1/responses",
                          json={"input": "x", "stream": True}) as r:
            first = next(r.iter_lines())
            assert time.monotonic() - started < 0.8
            assert first == "event: response.created"


def test_on_postgresql() -> None:
    require_server("127.0.0.1", 5432, "PostgreSQL")
    store = open_store(f"postgresql://postgres@127.0.0.1:5432/test?table=resp_{secrets.token_hex(5)}")
    try:
        with serving(create_app(store, {"seen": Seen(), "echo": EchoChatModel()})) as base:
            sdk = client(base)
            first = sdk.responses.create(model="echo", input="hello")
            second = sdk.responses.create(model="seen", input="more",
                                          previous_response_id=first.id)
            assert [pair[1] for pair in seen(second)] == ["hello", "hello", "more"]
            branch = sdk.responses.create(model="echo", input="other",
                                          previous_response_id=first.id)
            assert store.session_info(branch.conversation.id).parent == first.conversation.id
            assert sdk.responses.retrieve(second.id).output_text == second.output_text
    finally:
        store.destroy()
        store.close()
