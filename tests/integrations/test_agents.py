"""threadline.agents: ThreadlineSession with the real openai-agents package, on real stores.

Every Responses input item type round-trips equal; ``limit`` reads read only the newest
messages; ``pop_item`` hides an item (the server's conversation view too); ``Runner.run``
remembers a first turn made in another process; ``threadline sessions show`` shows the
session; a threadline chain continues an Agents SDK session, and the reverse.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, SessionSettings, set_tracing_disabled
from agents.items import ModelResponse
from agents.memory import Session
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import ResponseOutputMessage, ResponseOutputText
from stores.conftest import BackendSpec, make_spec

from threadline import (
    AIMessage,
    ChatPromptTemplate,
    HumanMessage,
    InputError,
    RunnableLambda,
    RunnableWithMessageHistory,
    SystemMessage,
    ToolMessage,
)
from threadline.agents import ThreadlineSession
from threadline.agents._items import ITEM_KEY
from threadline.server._items import deleted_items, session_items, visible_messages
from threadline.stores import Store

set_tracing_disabled(True)  # the SDK would otherwise try to export traces

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ["memory", "sqlite", "postgresql", "redis"]
SHARED = ["sqlite", "postgresql", "redis"]  # other processes see the same data

#: One item of every kind the Responses input union holds that matters to a session, in
#: the shapes the SDK stores them (model outputs dumped with their ids and statuses).
ALL_ITEMS: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "developer", "content": "Answer in French."},
    {"role": "user", "content": "Bonjour"},
    {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "What is in this picture and this file?"},
        {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "low"},
        {"type": "input_image", "file_id": "file-img1", "detail": "auto"},
        {"type": "input_file", "file_id": "file-abc", "filename": "report.pdf"},
        {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0=",
         "filename": "tiny.pdf"}]},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "typed"}]},
    {"id": "msg_abc", "type": "message", "role": "assistant", "status": "completed",
     "content": [{"type": "output_text", "text": "Un chat.", "annotations": [],
                  "logprobs": []}]},
    {"id": "msg_ref", "type": "message", "role": "assistant", "status": "completed",
     "content": [{"type": "refusal", "refusal": "I cannot help with that."}]},
    {"type": "reasoning", "id": "rs_1", "summary": [
        {"type": "summary_text", "text": "The user wants the weather."}],
     "encrypted_content": "gAAAA..."},
    {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
     "arguments": '{"city":"Paris"}', "status": "completed"},
    {"type": "function_call_output", "call_id": "call_1", "output": "22 degrees, sunny"},
    {"type": "function_call", "call_id": "call_2", "name": "lookup", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "call_2", "output": [
        {"type": "input_text", "text": "see the chart"},
        {"type": "input_image", "image_url": "https://example.com/chart.png"}]},
    {"type": "web_search_call", "id": "ws_1", "status": "completed",
     "action": {"type": "search", "query": "weather in Paris"}},
    {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": ["q3 revenue"],
     "results": [{"file_id": "file-1", "filename": "q3.pdf", "score": 0.9, "text": "..."}]},
    {"type": "computer_call", "id": "cu_1", "call_id": "cc_1", "status": "completed",
     "pending_safety_checks": [], "action": {"type": "click", "x": 10, "y": 20,
                                             "button": "left"}},
    {"type": "computer_call_output", "call_id": "cc_1", "output": {
        "type": "computer_screenshot", "image_url": "data:image/png;base64,iVBORw0KGgo="}},
    {"type": "item_reference", "id": "msg_old"},
    {"type": "x_future", "payload": {"nested": [1, 2.5, None, True, "é"]}},
]


@pytest.fixture(params=BACKENDS)
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendSpec]:
    backend = make_spec(request.param, tmp_path)
    yield backend
    backend.cleanup()


class CountingModel(Model):
    """An offline model: its answer says how many user messages it was given, and the
    last one (so a test sees what the session remembered)."""

    async def get_response(self, system_instructions: str | None, input: Any,
                           model_settings: Any, tools: Any, output_schema: Any,
                           handoffs: Any, tracing: Any, *, previous_response_id: Any,
                           conversation_id: Any, prompt: Any) -> ModelResponse:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else input
        said = [_text(item) for item in items if item.get("role") == "user"]
        text = f"{len(said)} user messages; the last: {said[-1]}"
        return ModelResponse(output=[ResponseOutputMessage(
            id="msg_counted", type="message", role="assistant", status="completed",
            content=[ResponseOutputText(type="output_text", text=text, annotations=[])])],
            usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("the tests only run Runner.run")


def _text(item: dict[str, Any]) -> str:
    content = item["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


async def run_turn(url_or_store: str | Store, session_id: str, text: str) -> str:
    """One Runner.run turn on a ThreadlineSession; the final output."""
    session = ThreadlineSession(url_or_store, session_id)
    agent = Agent(name="counter", model=CountingModel())
    result = await Runner.run(agent, text, session=session)
    return str(result.final_output)


def _fresh(spec: BackendSpec, store: Store) -> Store:
    """Another store on the same data where the backend allows (a read from storage,
    not from the first store's objects); memory:// stores each hold their own."""
    return store if spec.separate_opens else spec.open()


# -- round trips ------------------------------------------------------------------------------


def test_is_an_agents_sdk_session() -> None:
    session = ThreadlineSession("memory://", "s")
    assert isinstance(session, Session)
    assert session.session_id == "s"
    assert session.session_settings == SessionSettings()


def test_every_item_type_round_trips_equal(spec: BackendSpec) -> None:
    store = spec.open()

    async def scenario() -> None:
        await ThreadlineSession(store, "all").add_items(ALL_ITEMS)
        again = ThreadlineSession(_fresh(spec, store), "all")
        assert await again.get_items() == ALL_ITEMS
        for n in (1, 5, len(ALL_ITEMS)):
            assert await again.get_items(limit=n) == ALL_ITEMS[-n:]

    asyncio.run(scenario())
    # one item, one message, in order; nothing the caller holds is aliased
    assert len(store.get_messages("all")) == len(ALL_ITEMS)


def test_items_are_stored_as_the_messages_that_show_them() -> None:
    session = ThreadlineSession("memory://?ttl=60", "shown")
    asyncio.run(session.add_items(ALL_ITEMS))
    messages = session.store.get_messages("shown")
    by_kind = dict(zip([json.dumps(i, sort_keys=True) for i in ALL_ITEMS], messages,
                       strict=True))

    def message_of(item: dict[str, Any]) -> Any:
        return by_kind[json.dumps(item, sort_keys=True)]

    plain = message_of({"role": "user", "content": "Bonjour"})
    assert plain == HumanMessage("Bonjour", id=plain.id) and len(plain.id) == 32
    assert message_of(ALL_ITEMS[0]) == SystemMessage("Be brief.", id=messages[0].id)
    developer = message_of(ALL_ITEMS[1])  # a system message that remembers its role
    assert isinstance(developer, SystemMessage)
    assert developer.additional_kwargs[ITEM_KEY]["role"] == "developer"
    picture = message_of(ALL_ITEMS[3])
    assert isinstance(picture, HumanMessage) and picture.content == [
        {"type": "text", "text": "What is in this picture and this file?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    typed = message_of(ALL_ITEMS[4])
    assert typed.content == [{"type": "text", "text": "typed"}]
    assert not typed.additional_kwargs  # the message gives the item back by itself
    answer = message_of(ALL_ITEMS[5])
    assert isinstance(answer, AIMessage) and answer.content == "Un chat."
    assert answer.additional_kwargs[ITEM_KEY] == ALL_ITEMS[5]  # its id and status
    call = message_of(ALL_ITEMS[8])
    assert isinstance(call, AIMessage)
    assert call.tool_calls == [{"name": "get_weather", "args": {"city": "Paris"},
                                "id": "call_1", "type": "tool_call"}]
    result = message_of(ALL_ITEMS[9])
    assert result == ToolMessage("22 degrees, sunny", tool_call_id="call_1", id=result.id)
    for item in ALL_ITEMS[6:8] + ALL_ITEMS[12:]:  # refusal, reasoning, tools, unknown
        kept = message_of(item)
        assert isinstance(kept, AIMessage) and kept.additional_kwargs[ITEM_KEY] == item
    assert message_of(ALL_ITEMS[6]).content == "I cannot help with that."  # a refusal
    assert message_of(ALL_ITEMS[7]).content == ""  # reasoning: no text of its own
    assert len({m.id for m in messages}) == len(messages)


def test_items_are_copied_in_and_out() -> None:
    session = ThreadlineSession("memory://", "copies")
    item = {"type": "x_future", "data": {"list": [1]}}
    asyncio.run(session.add_items([item]))
    item["data"]["list"].append(2)
    got = asyncio.run(session.get_items())
    assert got == [{"type": "x_future", "data": {"list": [1]}}]
    got[0]["data"]["list"].append(3)
    assert asyncio.run(session.get_items()) == [{"type": "x_future", "data": {"list": [1]}}]


def test_bad_items_are_refused_before_anything_is_stored() -> None:
    session = ThreadlineSession("memory://", "bad")
    with pytest.raises(InputError, match="not JSON"):
        asyncio.run(session.add_items([{"role": "user", "content": "ok"},
                                       {"type": "x", "when": object()}]))
    with pytest.raises(InputError, match="must be a dict"):
        asyncio.run(session.add_items(["just text"]))
    with pytest.raises(InputError, match="list of items"):
        asyncio.run(session.add_items({"role": "user", "content": "hi"}))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="store URL or a Store"):
        ThreadlineSession(42, "s")  # type: ignore[arg-type]
    assert asyncio.run(session.get_items()) == []


def test_ttl_is_passed_to_every_write(spec: BackendSpec) -> None:
    store = spec.open()

    async def scenario() -> None:
        session = ThreadlineSession(store, "ttl", ttl=3600)
        await session.add_items(ALL_ITEMS[:2])
        await session.pop_item()

    asyncio.run(scenario())
    info = store.session_info("ttl")
    assert info is not None and info.expires_at is not None
    left = (info.expires_at - info.updated_at).total_seconds() if info.updated_at else 3600
    assert 3000 < left < 3601
    with pytest.raises(InputError):
        ThreadlineSession(store, "ttl", ttl=-1)
    with pytest.raises(InputError):
        ThreadlineSession(store, "")


# -- limit reads ---------------------------------------------------------------------------


def test_limit_reads_only_the_newest_messages(spec: BackendSpec) -> None:
    store = spec.open()
    reads: list[int | None] = []
    read = store.aget_messages

    async def counting(session_id: str, *, last: int | None = None,
                       skip_invalid: bool = False) -> list[Any]:
        reads.append(last)
        return await read(session_id, last=last, skip_invalid=skip_invalid)

    store.aget_messages = counting  # type: ignore[method-assign]
    items = [{"role": "user", "content": f"m{n}"} for n in range(30)]

    async def scenario() -> None:
        session = ThreadlineSession(store, "lim")
        await session.add_items(items)
        assert await session.get_items(limit=3) == items[-3:]
        assert await session.get_items(limit=100) == items
        assert await session.get_items(limit=0) == []
        assert await session.get_items(limit=-1) == []
        assert await session.get_items() == items
        limited = ThreadlineSession(store, "lim", session_settings=SessionSettings(limit=4))
        assert await limited.get_items() == items[-4:]
        assert await limited.get_items(limit=2) == items[-2:]  # explicit wins
        as_dict = ThreadlineSession(store, "lim", session_settings={"limit": 1})
        assert await as_dict.get_items() == items[-1:]

    asyncio.run(scenario())
    assert reads == [3, 100, None, 4, 2, 1]


# -- pop_item and clear_session ---------------------------------------------------------------


def test_pop_item_removes_the_newest_items_one_by_one(spec: BackendSpec) -> None:
    store = spec.open()

    async def scenario() -> None:
        session = ThreadlineSession(store, "pop")
        assert await session.pop_item() is None
        await session.add_items(ALL_ITEMS[:6])
        assert await session.pop_item() == ALL_ITEMS[5]
        assert await session.pop_item() == ALL_ITEMS[4]
        assert await session.get_items() == ALL_ITEMS[:4]
        assert await session.get_items(limit=2) == ALL_ITEMS[2:4]
        await session.add_items([{"role": "user", "content": "after"}])
        again = ThreadlineSession(_fresh(spec, store), "pop")
        assert await again.get_items(limit=3) == [*ALL_ITEMS[2:4],
                                                  {"role": "user", "content": "after"}]
        assert await again.pop_item() == {"role": "user", "content": "after"}
        for expected in reversed(ALL_ITEMS[:4]):
            assert await again.pop_item() == expected
        assert await again.pop_item() is None
        assert await again.get_items() == []

    asyncio.run(scenario())
    # the messages stay, hidden by tombstones the server's conversation view honours too
    assert len(store.get_messages("pop")) == 7
    deleted = asyncio.run(deleted_items(store, "pop"))
    assert visible_messages(store.get_messages("pop"), deleted) == []


def test_the_server_hides_what_pop_item_removed() -> None:
    session = ThreadlineSession("memory://", "srv")
    asyncio.run(session.add_items([{"role": "user", "content": "keep"},
                                   {"role": "user", "content": "drop"}]))
    asyncio.run(session.pop_item())
    store = session.store
    shown = visible_messages(store.get_messages("srv"), asyncio.run(deleted_items(store, "srv")))
    assert [m.content for m in shown] == ["keep"]


def test_clear_session_deletes_messages_and_tombstones(spec: BackendSpec) -> None:
    store = spec.open()

    async def scenario() -> None:
        session = ThreadlineSession(store, "clear")
        await session.add_items(ALL_ITEMS[:3])
        await session.pop_item()
        await session.clear_session()
        assert await session.get_items() == []
        assert await store.asession_info("clear") is None
        await session.add_items(ALL_ITEMS[:2])  # a cleared session starts afresh
        assert await session.get_items() == ALL_ITEMS[:2]

    asyncio.run(scenario())
    assert store.scan_records("clear", "") == []


def test_pop_item_on_messages_other_frameworks_wrote(spec: BackendSpec) -> None:
    """An answer with text and two tool calls is three items (named as the server names
    them); a message stored without an id is named by its position."""
    store = spec.open()
    history = store.history("lc")
    history.stamp_ids = False  # as LangChainHistory writes: messages exactly as given
    history.add_messages([
        HumanMessage("what is the weather?"),
        AIMessage("Let me look.", tool_calls=[
            {"name": "weather", "args": {"city": "Oslo"}, "id": "c1"},
            {"name": "weather", "args": {"city": "Rome"}, "id": "c2"}]),
    ])
    items = [
        {"role": "user", "content": "what is the weather?"},
        {"type": "message", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "Let me look.", "annotations": []}]},
        {"type": "function_call", "call_id": "c1", "name": "weather",
         "arguments": '{"city": "Oslo"}'},
        {"type": "function_call", "call_id": "c2", "name": "weather",
         "arguments": '{"city": "Rome"}'},
    ]

    async def scenario() -> None:
        session = ThreadlineSession(store, "lc")
        assert await session.get_items() == items
        assert await session.get_items(limit=1) == items[-1:]
        assert await session.pop_item() == items[3]
        assert await session.get_items() == items[:3]
        assert await session.get_items(limit=2) == items[1:3]
        assert await session.pop_item() == items[2]
        assert await session.pop_item() == items[1]
        assert await session.get_items(limit=1) == items[:1]
        assert await session.pop_item() == items[0]
        assert await session.get_items() == []

    asyncio.run(scenario())
    assert asyncio.run(deleted_items(store, "lc")) == {
        "msg_at0", "msg_at1", "msg_at1_fc0", "msg_at1_fc1"}


# -- Runner.run, across processes, and the CLI --------------------------------------------


def test_runner_remembers_a_turn_made_in_another_process(tmp_path: Path) -> None:
    """SQLite, PostgreSQL and Redis: a first turn here, the second in another process
    (one process for the three: importing the SDK takes seconds), then the CLI."""
    specs = [make_spec(backend, tmp_path) for backend in SHARED]
    try:
        urls = []
        for spec in specs:
            spec.open()  # so cleanup() drops what the other process wrote
            urls.append(spec.url)
            assert asyncio.run(run_turn(spec.url, "conv-1", "hello")) == \
                "1 user messages; the last: hello"
        script = textwrap.dedent(f"""
            import asyncio, sys
            sys.path[:0] = [{str(REPO / 'tests')!r}, {str(REPO / 'tests' / 'integrations')!r}]
            from test_agents import run_turn
            for url in sys.argv[1:]:
                print(asyncio.run(run_turn(url, "conv-1", "again")))
        """)
        done = subprocess.run([sys.executable, "-c", script, *urls], capture_output=True,
                              text=True, timeout=120, cwd=REPO,
                              env={**os.environ, "OPENAI_AGENTS_DISABLE_TRACING": "1"})
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["2 user messages; the last: again"] * 3

        cli = [str(REPO / ".venv" / "bin" / "threadline"), "sessions"]
        for url in urls:
            shown = subprocess.run([*cli, "show", "conv-1", "--store", url],
                                   capture_output=True, text=True, timeout=60)
            assert shown.returncode == 0, shown.stderr
            lines = shown.stdout.splitlines()
            assert len(lines) == 4, shown.stdout
            assert "hello" in lines[0] and "1 user messages; the last: hello" in lines[1]
            assert "again" in lines[2] and "2 user messages; the last: again" in lines[3]
            listed = subprocess.run([*cli, "list", "--store", url], capture_output=True,
                                    text=True, timeout=60)
            assert listed.stdout.split()[:3] == ["conv-1", "4", "messages"], listed.stdout
            found = subprocess.run([*cli, "search", "again", "--store", url],
                                   capture_output=True, text=True, timeout=60)
            assert found.returncode == 0, found.stderr
            assert sorted(found.stdout.splitlines()) == [
                "conv-1 #2: again", "conv-1 #3: 2 user messages; the last: again"]
    finally:
        for spec in specs:
            spec.cleanup()


def test_runner_with_session_settings_limits_what_the_model_sees() -> None:
    session = ThreadlineSession("memory://", "limited")
    agent = Agent(name="counter", model=CountingModel())

    async def scenario() -> list[str]:
        outputs = []
        for text in ("one", "two", "three"):
            result = await Runner.run(agent, text, session=session, run_config=RunConfig(
                session_settings=SessionSettings(limit=2)))
            outputs.append(str(result.final_output))
        return outputs

    assert asyncio.run(scenario()) == ["1 user messages; the last: one",
                                       "2 user messages; the last: two",
                                       "2 user messages; the last: three"]
    assert len(asyncio.run(session.get_items())) == 6


# -- one session, any framework ---------------------------------------------------------


def _describing_chain(store: Store) -> RunnableWithMessageHistory:
    """A threadline chain whose "model" answers with what it was shown."""
    prompt = ChatPromptTemplate.from_messages([("placeholder", "{history}"),
                                               ("human", "{q}")])

    def model(value: Any) -> AIMessage:
        return AIMessage(" | ".join(f"{m.type}:{m.text}" for m in value.to_messages()))

    return RunnableWithMessageHistory(prompt | RunnableLambda(model), store.history,
                                      input_messages_key="q", history_messages_key="history")


def test_a_threadline_chain_continues_an_agents_session(spec: BackendSpec) -> None:
    store = spec.open()
    assert asyncio.run(run_turn(store, "mixed", "hello")) == \
        "1 user messages; the last: hello"
    answer = _describing_chain(store).invoke({"q": "and now?"}, session_id="mixed")
    assert answer.content == ("human:hello | ai:1 user messages; the last: hello | "
                              "human:and now?")
    # ... and the agent continues the chain's turn
    assert asyncio.run(run_turn(store, "mixed", "last")) == "3 user messages; the last: last"


def test_an_agents_session_continues_a_threadline_chain(spec: BackendSpec) -> None:
    store = spec.open()
    chain = _describing_chain(store)
    asyncio.run(chain.ainvoke({"q": "first"}, session_id="chain"))
    session = ThreadlineSession(store, "chain")
    assert asyncio.run(session.get_items()) == [
        {"role": "user", "content": "first"},
        {"type": "message", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "human:first", "annotations": []}]}]
    assert asyncio.run(run_turn(store, "chain", "second")) == \
        "2 user messages; the last: second"
    assert [m.type for m in store.get_messages("chain")] == ["human", "ai", "human", "ai"]
    # the server's conversation view shows the agent's turn like any other
    assert [item["type"] for item in session_items(store.get_messages("chain"))] == \
        ["message"] * 4
