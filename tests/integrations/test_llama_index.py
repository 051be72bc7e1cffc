"""threadline.llama_index: ThreadlineChatStore with the real llama-index-core, on memory,
SQLite, PostgreSQL and Redis; LlamaIndex memory across processes; one session read by
LlamaIndex, threadline chains and the CLI."""

from __future__ import annotations

import asyncio
import datetime
import importlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    AudioBlock,
    CacheControl,
    CachePoint,
    DocumentBlock,
    ImageBlock,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import ChatMessage, MessageRole, MockLLM
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.memory.memory import Memory
from llama_index.core.storage.chat_store.base import BaseChatStore
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus
from stores.conftest import BackendSpec, make_spec

from threadline import (
    AIMessage,
    ChatPromptTemplate,
    FakeListChatModel,
    HumanMessage,
    InputError,
    MessageFormatError,
    MessagesPlaceholder,
    MissingDependencyError,
    RunnableWithMessageHistory,
    SystemMessage,
    ToolMessage,
    open_store,
)
from threadline.llama_index import (
    ThreadlineChatStore,
    ThreadlineDBChatStore,
    from_llama_index,
    to_llama_index,
)

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ["memory", "sqlite", "postgresql", "redis"]
SHARED = ["sqlite", "postgresql", "redis"]


def _words(text: str) -> list[str]:
    # the default tokenizer downloads tiktoken data; tests never reach the internet
    return text.split()


@pytest.fixture(params=BACKENDS)
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendSpec]:
    spec = make_spec(request.param, tmp_path)
    yield spec
    spec.cleanup()


@pytest.fixture(params=SHARED)
def shared_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendSpec]:
    spec = make_spec(request.param, tmp_path)
    yield spec
    spec.cleanup()


PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 20


def _messages() -> list[ChatMessage]:
    """Every role, tool calls both ways, blocks and additional_kwargs (JSON values)."""
    return [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="developer", content="Answer in English."),
        ChatMessage(role="user", content="What is 2 + 3?", additional_kwargs={"lang": "en"}),
        ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "add", "arguments": '{"a":2,"b":3}'}}]}),
        ChatMessage(role="tool", content="5",
                    additional_kwargs={"tool_call_id": "call_1", "name": "add"}),
        ChatMessage(role="assistant", blocks=[
            ThinkingBlock(content="easy", num_tokens=3),
            ToolCallBlock(tool_call_id="call_2", tool_name="check", tool_kwargs={"n": 5})]),
        ChatMessage(role="tool", content="ok", additional_kwargs={"tool_call_id": "call_2"}),
        ChatMessage(role="model", content="It is 5."),
        ChatMessage(role="chatbot", content="Anything else?"),
        ChatMessage(role="function", content="{}", additional_kwargs={"name": "legacy"}),
        ChatMessage(role="user", blocks=[TextBlock(text="Look:"),
                                         ImageBlock(url="https://example.com/cat.png"),
                                         TextBlock(text="a cat")]),
        ChatMessage(role="user", blocks=[
            ImageBlock(image=PNG, detail="low"), DocumentBlock(data=b"%PDF-1.4 x", title="t"),
            AudioBlock(audio=b"RIFF0000WAVEfmt ", format="wav"),
            CachePoint(cache_control=CacheControl(type="ephemeral"))]),
        ChatMessage(role="tool", content="no id"),
        ChatMessage(role="user", blocks=[]),
        ChatMessage(role="user", content="déjà vu ハロー",
                    additional_kwargs={"nested": {"a": [1, 2.5, None, True]}}),
    ]


# -- conversion ---------------------------------------------------------------------------


def test_every_message_round_trips_equal_and_maps_to_threadline_types() -> None:
    messages = _messages()
    converted = [from_llama_index(message) for message in messages]
    assert [to_llama_index(message) for message in converted] == messages
    kinds = [type(message).__name__ for message in converted]
    assert kinds == ["SystemMessage", "SystemMessage", "HumanMessage", "AIMessage",
                     "ToolMessage", "AIMessage", "ToolMessage", "AIMessage", "AIMessage",
                     "FunctionMessage", "HumanMessage", "HumanMessage", "ChatMessage",
                     "HumanMessage", "HumanMessage"]
    assert converted[3].tool_calls == [{"name": "add", "args": {"a": 2, "b": 3},
                                        "id": "call_1", "type": "tool_call"}]
    assert converted[4].tool_call_id == "call_1" and converted[4].name == "add"
    assert converted[5].tool_calls[0]["name"] == "check"
    assert converted[1].additional_kwargs["__openai_role__"] == "developer"
    assert converted[10].content == [{"type": "text", "text": "Look:"},
                                     {"type": "text", "text": "a cat"}]
    assert converted[0].additional_kwargs == {}  # a plain message carries no namespace


def test_a_block_this_llama_index_cannot_read_is_an_error_not_a_loss() -> None:
    stored = from_llama_index(ChatMessage(role="user", blocks=[ImageBlock(url="https://e.com/a.png")]))
    stored.additional_kwargs["llama_index"]["blocks"][0][1]["block_type"] = "hologram"
    with pytest.raises(MessageFormatError, match="hologram"):
        to_llama_index(stored)


def test_a_value_json_cannot_hold_is_refused_before_anything_is_stored() -> None:
    chat_store = ThreadlineChatStore(open_store("memory://"))  # its own, not the shared one
    with pytest.raises(InputError, match=r"additional_kwargs\['when'\]"):
        chat_store.add_message("k", ChatMessage(content="x", additional_kwargs={
            "when": datetime.datetime(2026, 1, 1)}))
    assert chat_store.get_keys() == []


def test_a_missing_llama_index_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n.startswith("threadline.llama_index")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "llama_index.core.base.llms", None)
    with pytest.raises(MissingDependencyError, match=r"threadline\[llama-index\]"):
        importlib.import_module("threadline.llama_index")


def test_messages_of_other_frameworks_read_as_llama_index_messages() -> None:
    read = [to_llama_index(message) for message in [
        HumanMessage("hi", name="ann"),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1}, "id": "c1"}]),
        ToolMessage("2", tool_call_id="c1", status="error"),
        SystemMessage("rules", additional_kwargs={"__openai_role__": "developer"}),
        HumanMessage([{"type": "text", "text": "see"},
                      {"type": "image_url", "image_url": {"url": "https://e.com/a.png"}},
                      {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"},
                      {"type": "audio", "id": "x"}]),
        from_llama_index(ChatMessage(role="user", content="x")).copy(),
    ]]
    assert read[0] == ChatMessage(role="user", content="hi", additional_kwargs={"name": "ann"})
    assert read[1].role == MessageRole.ASSISTANT
    assert read[1].additional_kwargs["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}]
    assert read[2].additional_kwargs == {"tool_call_id": "c1", "status": "error"}
    assert read[3].role == MessageRole.DEVELOPER and read[3].additional_kwargs == {}
    assert [type(block).__name__ for block in read[4].blocks] == [
        "TextBlock", "ImageBlock", "ImageBlock"]
    assert str(read[4].blocks[1].url) == "https://e.com/a.png"
    assert read[4].additional_kwargs["threadline_content"] == [[3, {"type": "audio", "id": "x"}]]
    from threadline import ChatMessage as TLChatMessage
    critic = to_llama_index(TLChatMessage("fine", role="critic"))
    assert critic.role == MessageRole.USER
    assert critic.additional_kwargs == {"threadline_role": "critic"}


# -- every method, sync and async, every backend -------------------------------------------


def _run(chat_store: ThreadlineChatStore, mode: str, name: str, *args: Any) -> Any:
    if mode == "sync":
        return getattr(chat_store, name)(*args)
    async_name = {"add_message": "async_add_message"}.get(name, "a" + name)
    return asyncio.run(getattr(chat_store, async_name)(*args))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_every_method(spec: BackendSpec, mode: str) -> None:
    chat_store = ThreadlineChatStore(spec.open(), ttl=3600)
    assert isinstance(chat_store, BaseChatStore)
    messages = _messages()
    for message in messages:
        _run(chat_store, mode, "add_message", "s1", message)
    assert _run(chat_store, mode, "get_messages", "s1") == messages
    assert _run(chat_store, mode, "get_messages", "nobody") == []
    _run(chat_store, mode, "set_messages", "s2", messages[:3])
    assert _run(chat_store, mode, "get_messages", "s2") == messages[:3]
    assert _run(chat_store, mode, "get_keys") == ["s1", "s2"]

    assert _run(chat_store, mode, "delete_message", "s1", 2) == messages[2]
    assert _run(chat_store, mode, "delete_message", "s1", 99) is None
    assert _run(chat_store, mode, "delete_last_message", "s1") == messages[-1]
    assert _run(chat_store, mode, "delete_message", "s1", -1) == messages[-2]
    rest = messages[:2] + messages[3:-2]
    assert _run(chat_store, mode, "get_messages", "s1") == rest

    _run(chat_store, mode, "set_messages", "s1", messages[:2])  # replaces, tombstones too
    assert _run(chat_store, mode, "get_messages", "s1") == messages[:2]
    _run(chat_store, mode, "add_message", "s1", messages[7], 1)  # insert at an index
    assert _run(chat_store, mode, "get_messages", "s1") == [messages[0], messages[7],
                                                            messages[1]]
    assert _run(chat_store, mode, "delete_messages", "s1") == [messages[0], messages[7],
                                                               messages[1]]
    assert _run(chat_store, mode, "delete_messages", "s1") is None
    assert _run(chat_store, mode, "delete_last_message", "s1") is None
    assert _run(chat_store, mode, "get_keys") == ["s2"]


def test_get_keys_reads_every_page(spec: BackendSpec) -> None:
    store = spec.open()
    for n in range(3):
        store.append(f"k{n}", [HumanMessage("x")])
    chat_store = ThreadlineChatStore(store)
    original = store.list_sessions
    calls: list[int] = []

    def small_pages(**kwargs: Any) -> Any:
        calls.append(1)
        return original(**{**kwargs, "limit": 1})

    store.list_sessions = small_pages  # type: ignore[method-assign]
    try:
        assert chat_store.get_keys() == ["k0", "k1", "k2"]
    finally:
        del store.list_sessions
    assert len(calls) >= 3


def test_deleting_a_message_without_an_id_says_why() -> None:
    chat_store = ThreadlineChatStore(open_store("memory://"))
    chat_store.store.append("legacy", [HumanMessage("written without an id")])
    with pytest.raises(InputError, match="has no id"):
        chat_store.delete_last_message("legacy")
    with pytest.raises(InputError, match="has no id"):
        asyncio.run(chat_store.adelete_last_message("legacy"))
    assert chat_store.get_messages("legacy")[0].content == "written without an id"


def test_deleted_messages_are_tombstones_the_server_convention_honours(
        spec: BackendSpec) -> None:
    store = spec.open()
    chat_store = ThreadlineChatStore(store)
    chat_store.set_messages("s", [ChatMessage(content="one"), ChatMessage(content="two")])
    chat_store.delete_last_message("s")
    stored = store.get_messages("s")
    assert [m.content for m in stored] == ["one", "two"]  # never rewritten
    from threadline.stores._records import DELETED_PREFIX
    assert [key for key, _ in store.scan_records("s", DELETED_PREFIX, keys_only=True)] == [
        DELETED_PREFIX + stored[1].id]


# -- LlamaIndex memory and chat engines ----------------------------------------------------


def test_chat_memory_buffer_on_the_store(spec: BackendSpec) -> None:
    chat_store = ThreadlineChatStore(spec.open())
    memory = ChatMemoryBuffer.from_defaults(
        chat_store=chat_store, chat_store_key="u1", token_limit=5, tokenizer_fn=_words,
        chat_history=[ChatMessage(role="user", content="one two three")])
    memory.put(ChatMessage(role="assistant", content="four five"))
    asyncio.run(memory.aput(ChatMessage(role="user", content="six")))
    assert [m.content for m in memory.get_all()] == ["one two three", "four five", "six"]
    # the 5-token window: the first message does not fit, and a window never starts
    # with an assistant message
    assert [m.content for m in memory.get()] == ["six"]
    memory.reset()
    assert memory.get_all() == [] and chat_store.get_keys() == []


def test_simple_chat_engine_with_mock_llm(spec: BackendSpec) -> None:
    chat_store = ThreadlineChatStore(spec.open())
    memory = ChatMemoryBuffer.from_defaults(chat_store=chat_store, chat_store_key="chat",
                                            tokenizer_fn=_words)
    engine = SimpleChatEngine.from_defaults(llm=MockLLM(), memory=memory)
    first = engine.chat("Hello there")
    second = asyncio.run(engine.achat("Again"))
    assert "Hello there" in str(first.response)  # MockLLM echoes its prompt
    assert "Hello there" in str(second.response)  # ... which held the first turn
    roles = [m.role.value for m in chat_store.get_messages("chat")]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert [type(m).__name__ for m in chat_store.store.get_messages("chat")] == [
        "HumanMessage", "AIMessage", "HumanMessage", "AIMessage"]


def test_db_chat_store_every_method(spec: BackendSpec) -> None:
    chat_store = ThreadlineDBChatStore(spec.open(), ttl=3600)
    assert isinstance(chat_store, AsyncDBChatStore)
    messages = _messages()

    async def scenario() -> None:
        await chat_store.add_messages("k", messages[:4])
        await chat_store.add_message("k", messages[4])
        await chat_store.add_message("k", messages[5], status=MessageStatus.ARCHIVED)
        assert await chat_store.get_messages("k") == messages[:5]
        assert await chat_store.get_messages("k", status=None) == messages[:6]
        assert await chat_store.get_messages("k", status=MessageStatus.ARCHIVED) == [
            messages[5]]
        assert await chat_store.get_messages("k", limit=2, offset=1) == messages[1:3]
        assert await chat_store.count_messages("k") == 5
        assert await chat_store.archive_oldest_messages("k", 2) == messages[:2]
        assert await chat_store.count_messages("k", status=MessageStatus.ARCHIVED) == 3
        assert await chat_store.delete_oldest_messages("k", 1) == [messages[2]]
        assert await chat_store.delete_message("k", 0) == messages[3]
        assert await chat_store.delete_message("k", 5) is None
        assert await chat_store.get_messages("k") == [messages[4]]
        await chat_store.delete_messages("k", status=MessageStatus.ARCHIVED)
        assert await chat_store.get_messages("k", status=None) == [messages[4]]
        await chat_store.set_messages("k", messages[6:8])
        assert await chat_store.get_messages("k", status=None) == messages[6:8]
        await chat_store.set_messages("j", messages[:1], status=MessageStatus.ARCHIVED)
        assert await chat_store.get_keys() == ["j", "k"]
        await chat_store.delete_messages("k")
        assert await chat_store.get_messages("k", status=None) == []
        assert await chat_store.get_keys() == ["j"]

    asyncio.run(scenario())


def test_memory_on_the_db_chat_store(spec: BackendSpec) -> None:
    store = spec.open()
    memory = Memory.from_defaults(
        session_id="agent", token_limit=1000, token_flush_size=700,
        chat_history_token_ratio=0.9, tokenizer_fn=_words,
        chat_store=ThreadlineDBChatStore(store),
        chat_history=[ChatMessage(role="user", content="Seeded")])
    assert [m.content for m in memory.get()] == ["Seeded"]
    asyncio.run(memory.aput_messages([ChatMessage(role="user", content="x " * 500),
                                      ChatMessage(role="assistant", content="y " * 500),
                                      ChatMessage(role="user", content="z " * 500)]))
    messages = asyncio.run(memory.aget())  # the waterfall archived the older turns
    assert len(messages) == 1 and "z " in str(messages[0].content)
    assert len(memory.get_all(status=MessageStatus.ARCHIVED)) == 3
    # the archived messages are still the session's, for every other reader
    assert [m.text[:2] for m in store.get_messages("agent")] == ["Se", "x ", "y ", "z "]


# -- across processes, frameworks and the CLI ----------------------------------------------


_SECOND = textwrap.dedent("""
    import json, sys
    from llama_index.core.llms import ChatMessage
    from llama_index.core.memory import ChatMemoryBuffer
    from threadline.llama_index import ThreadlineChatStore
    memory = ChatMemoryBuffer.from_defaults(
        chat_store=ThreadlineChatStore(sys.argv[1]), chat_store_key="shared",
        tokenizer_fn=str.split)
    seen = [m.content for m in memory.get_all()]
    memory.put(ChatMessage(role="assistant", content="seen by the second process"))
    print(json.dumps(seen))
""")


def test_memory_across_processes_and_the_cli(shared_spec: BackendSpec) -> None:
    url = shared_spec.url
    shared_spec.open()  # so the test's data is destroyed afterwards
    memory = ChatMemoryBuffer.from_defaults(chat_store=ThreadlineChatStore(url),
                                            chat_store_key="shared", tokenizer_fn=_words)
    memory.put(ChatMessage(role="user", content="remember the blue door"))
    done = subprocess.run([sys.executable, "-c", _SECOND, url], capture_output=True,
                          text=True, timeout=60, cwd=REPO, check=True)
    assert json.loads(done.stdout) == ["remember the blue door"]
    assert [m.content for m in memory.get_all()] == ["remember the blue door",
                                                     "seen by the second process"]
    shown = subprocess.run([str(REPO / ".venv/bin/threadline"), "sessions", "show",
                            "shared", "--store", url], capture_output=True, text=True,
                           timeout=60, check=True)
    assert "remember the blue door" in shown.stdout
    assert "seen by the second process" in shown.stdout


def test_a_chain_and_llama_index_share_one_session(spec: BackendSpec) -> None:
    store = spec.open()
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"),
                                               ("human", "{question}")])
    chain = RunnableWithMessageHistory(prompt | FakeListChatModel(responses=["Hi Ann!",
                                                                             "Ann."]),
                                       store.history, input_messages_key="question",
                                       history_messages_key="history")
    config = {"configurable": {"session_id": "mixed"}}
    chain.invoke({"question": "I am Ann."}, config=config)

    chat_store = ThreadlineChatStore(store)
    assert chat_store.get_messages("mixed") == [
        ChatMessage(role="user", content="I am Ann."),
        ChatMessage(role="assistant", content="Hi Ann!")]
    chat_store.add_message("mixed", ChatMessage(role="user", content="Who am I?",
                                                additional_kwargs={"from": "llama"}))
    chat_store.add_message("mixed", ChatMessage(role="assistant", content="You are Ann."))

    seen: list[list[Any]] = []
    spy = prompt | (lambda value: seen.append(value.to_messages()) or value)
    chain2 = RunnableWithMessageHistory(spy | FakeListChatModel(responses=["Ann."]),
                                        store.history, input_messages_key="question",
                                        history_messages_key="history")
    chain2.invoke({"question": "Again?"}, config=config)
    assert seen[0] == [HumanMessage("I am Ann.", id=seen[0][0].id),
                       AIMessage("Hi Ann!", id=seen[0][1].id),
                       HumanMessage("Who am I?", id=seen[0][2].id,
                                    additional_kwargs=seen[0][2].additional_kwargs),
                       AIMessage("You are Ann.", id=seen[0][3].id),
                       HumanMessage("Again?")]
    assert [m.content for m in chat_store.get_messages("mixed")] == [
        "I am Ann.", "Hi Ann!", "Who am I?", "You are Ann.", "Again?", "Ann."]
    assert chat_store.get_messages("mixed")[2].additional_kwargs == {"from": "llama"}
