"""threadline.pydantic_ai: pydantic-ai's message histories in threadline histories, with the
real pydantic-ai-slim package, on memory, SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
import textwrap
import typing
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai import Agent
from pydantic_ai import messages as pa
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage
from stores.conftest import make_spec

from threadline import (
    AIMessage,
    ChatMessage,
    ChatPromptTemplate,
    FakeListChatModel,
    HumanMessage,
    InputError,
    MessageFormatError,
    MessagesPlaceholder,
    RunnableWithMessageHistory,
    SystemMessage,
    ToolMessage,
    open_store,
)
from threadline.pydantic_ai import from_pydantic_ai, to_pydantic_ai
from threadline.stores import Store

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ["memory", "sqlite", "postgresql", "redis"]
SHARED = ["sqlite", "postgresql", "redis"]  # other processes see the same data
TS = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
ADAPTER = pa.ModelMessagesTypeAdapter


@dataclass(kw_only=True, repr=False)
class NotePart(pa.DataCapabilityPart[str], namespace="threadline_tests", tag="note"):
    """A capability part of our own kind (pydantic-ai's parts are defined by subclassing)."""


def every_part() -> list[Any]:
    """A history holding every part class of pydantic_ai.messages, in the form pydantic-ai
    loads it (media types given, images as BinaryImage), so == holds both ways."""
    request = pa.ModelRequest(parts=[
        pa.SystemPromptPart("Be brief.", timestamp=TS),
        pa.UserPromptPart("What is on this picture?", timestamp=TS),
        pa.UserPromptPart([
            "Compare:", pa.ImageUrl("https://example.com/cat.png", media_type="image/png"),
            pa.BinaryImage(data=b"\x89PNG\r\n", media_type="image/png"),
            pa.AudioUrl("https://example.com/a.mp3", media_type="audio/mpeg"),
            pa.DocumentUrl("https://example.com/d.pdf", media_type="application/pdf"),
            pa.VideoUrl("https://example.com/v.mp4", media_type="video/mp4"),
            pa.TextContent("aside", metadata={"k": 1}), pa.CachePoint()], timestamp=TS),
        pa.SpeechPart(speaker="user", transcript="spoken words"),
        pa.InstructionDeltaPart(id=pa.InstructionId(pa.AgentInstructionSource()), content="new"),
        pa.InstructionBaselinePart(instructions=[]),
        pa.ToolAvailabilityDeltaPart(tools_added=["get_weather"]),
        pa.CapabilityLoadDeltaPart(),
        pa.ModelSettingsDeltaPart(settings={}),
        pa.CompactionPart("summary so far"),
        NotePart(content="remember", source=pa.UserSource(), timestamp=TS, record_id="r-1"),
    ], timestamp=TS, instructions="Answer in English.", run_id="run-1")
    response = pa.ModelResponse(parts=[
        pa.ThinkingPart("hmm", signature="sig", provider_name="openai"),
        pa.TextPart("Let me look."),
        pa.ToolCallPart("get_weather", {"city": "Paris"}, "call-1"),
        pa.ToolCallPart("get_time", '{"tz": "UTC"}', "call-2"),
        pa.ToolSearchCallPart(args={"queries": ["weather"]}, tool_call_id="call-3"),
        pa.LoadCapabilityCallPart(args={"id": "cap"}, tool_call_id="call-4"),
        pa.NativeToolCallPart("web_search", {"query": "x"}, "n-1", provider_name="openai"),
        pa.NativeToolReturnPart("web_search", {"hits": 1}, "n-1", provider_name="openai",
                                timestamp=TS),
        pa.NativeToolSearchCallPart(args={"queries": ["q"]}, tool_call_id="n-2",
                                    provider_name="openai"),
        pa.NativeToolSearchReturnPart(content={"discovered_tools": []}, tool_call_id="n-2",
                                      provider_name="openai", timestamp=TS),
        pa.FilePart(pa.BinaryImage(data=b"GIF89a", media_type="image/gif")),
        pa.CompactionPart(None, id="c-1", provider_name="openai", provider_details={"e": "x"}),
        pa.SpeechPart(speaker="assistant", transcript="said aloud"),
    ], usage=RequestUsage(input_tokens=12, output_tokens=7), model_name="gpt-test", timestamp=TS,
        provider_name="openai", provider_details={"id": "r"}, finish_reason="tool_call",
        run_id="run-1")
    returns = pa.ModelRequest(parts=[
        pa.ToolReturnPart("get_weather", {"temp": 21, "sky": ["clear"]}, "call-1", timestamp=TS),
        pa.ToolReturnPart("get_time", "bad tz", "call-2", outcome="retried", timestamp=TS,
                          retry=pa.RetryInfo(cause="validation_error")),
        pa.ToolSearchReturnPart(content={"discovered_tools": []}, tool_call_id="call-3",
                                timestamp=TS),
        pa.LoadCapabilityReturnPart(content={"message": "loaded"}, tool_call_id="call-4",
                                    timestamp=TS),
        pa.RetryFeedbackPart("answer in JSON", retry=pa.RetryInfo(cause="model_retry"),
                             timestamp=TS),
    ], timestamp=TS)
    interrupted = pa.ModelRequest(parts=[], state="interrupted", timestamp=TS)
    answer = pa.ModelResponse(parts=[pa.TextPart("It is sunny.")], timestamp=TS)
    return [request, response, returns, interrupted, answer]


def _part_classes(union: Any) -> set[type]:
    """The classes of a pydantic-ai part union (``Annotated[A | B | ..., Discriminator]``)."""
    found: set[type] = set()
    stack = list(typing.get_args(typing.get_args(union)[0]))
    while stack:
        item = stack.pop()
        if isinstance(item, type) and is_dataclass(item):
            found.add(item)
        else:
            stack.extend(arg for arg in typing.get_args(item) if not isinstance(arg, str))
    return found


def _json_round_trip(messages: list[Any]) -> list[Any]:
    """What pydantic-ai itself gets back from storing messages as JSON."""
    return ADAPTER.validate_json(ADAPTER.dump_json(messages))


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    spec = make_spec(request.param, tmp_path)
    try:
        yield spec.open()
    finally:
        spec.cleanup()


# -- every part, every backend ----------------------------------------------------------------


def test_the_sample_holds_every_part_class_of_pydantic_ai() -> None:
    held = {type(part) for message in every_part() for part in message.parts} | {NotePart}
    wanted = _part_classes(pa.ModelRequestPart) | _part_classes(pa.ModelResponsePart)
    deprecated = {pa.RetryPromptPart}  # see test_a_deprecated_retry_prompt_...
    missing = {cls.__name__ for cls in wanted - deprecated
               if not any(issubclass(h, cls) for h in held)}
    assert not missing, f"add these part classes to every_part(): {missing}"
    assert len(wanted) >= 25


def test_every_part_round_trips_equal(store: Store) -> None:
    messages = every_part()
    history = store.history("s-parts")
    history.add_pydantic_ai_messages(messages)
    assert history.pydantic_ai_messages() == messages
    # ...and the next turn adds to it.
    more = [pa.ModelRequest.user_text_prompt("thanks"),
            pa.ModelResponse(parts=[pa.TextPart("You're welcome.")], timestamp=TS)]
    history.add_pydantic_ai_messages(more)
    assert store.history("s-parts").pydantic_ai_messages() == messages + more


def test_every_part_round_trips_equal_async(store: Store) -> None:
    async def main() -> list[Any]:
        history = store.history("s-async")
        await history.aadd_pydantic_ai_messages(every_part())
        return await history.apydantic_ai_messages()

    assert asyncio.run(main()) == every_part()


def test_the_parts_threadline_can_show_are_its_messages(store: Store) -> None:
    history = store.history("s-shown")
    history.add_pydantic_ai_messages(every_part())
    shown = history.get_messages()
    assert [m.type for m in shown] == ["system", "human", "human", "human", "ai", "tool", "tool",
                                       "tool", "tool", "human", "system", "ai"]
    assert [m.content for m in shown[:2]] == ["Be brief.", "What is on this picture?"]
    blocks = shown[2].content
    assert blocks[:3] == [
        {"type": "text", "text": "Compare:"},
        {"type": "image", "url": "https://example.com/cat.png", "mime_type": "image/png"},
        {"type": "image", "base64": "iVBORw0K", "mime_type": "image/png"}]
    assert [b["type"] for b in blocks[3:]] == ["audio", "file", "video", "text"]
    answer = shown[4]
    assert isinstance(answer, AIMessage)
    assert answer.content == "Let me look.\n\nsaid aloud"
    assert [(c["name"], c["args"], c["id"]) for c in answer.tool_calls][:2] == [
        ("get_weather", {"city": "Paris"}, "call-1"), ("get_time", {"tz": "UTC"}, "call-2")]
    assert answer.usage_metadata == {"input_tokens": 12, "output_tokens": 7, "total_tokens": 19}
    assert answer.response_metadata["model_name"] == "gpt-test"
    weather, retried = shown[5], shown[6]
    assert isinstance(weather, ToolMessage) and isinstance(retried, ToolMessage)
    assert (weather.content, weather.tool_call_id, weather.name, weather.status) == (
        '{"temp":21,"sky":["clear"]}', "call-1", "get_weather", "success")
    assert (retried.content, retried.status) == ('{"error":"bad tz"}', "error")
    assert "answer in JSON" in shown[9].content  # retry feedback, in the user's voice
    assert shown[10].content == ""  # the interrupted request: nothing to show
    # Every message has an id, and pydantic-ai's data sits under one key.
    assert all(m.id for m in shown)
    assert all(set(m.additional_kwargs) == {"pydantic_ai"} for m in shown)


def test_a_deprecated_retry_prompt_and_hand_built_media_read_as_pydantic_ai_reads_them(
        store: Store) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RetryPromptPart is deprecated
        retries = [pa.RetryPromptPart("wrong city", tool_name="get_weather",
                                      tool_call_id="call-9", timestamp=TS),
                   pa.RetryPromptPart("no output", timestamp=TS)]
    messages = [pa.ModelRequest(parts=[
        *retries, pa.UserPromptPart([pa.ImageUrl("https://example.com/x.png"),
                                     pa.BinaryContent(b"\x89PNG", media_type="image/png")],
                                    timestamp=TS)], timestamp=TS)]
    history = store.history("s-legacy")
    history.add_pydantic_ai_messages(messages)
    back = history.pydantic_ai_messages()
    assert back == _json_round_trip(messages)
    assert back != messages  # pydantic-ai upgrades them when it loads its own JSON too
    tool_retry, feedback, _ = back[0].parts
    assert isinstance(tool_retry, pa.ToolReturnPart) and tool_retry.outcome == "retried"
    assert isinstance(feedback, pa.RetryFeedbackPart)
    shown = history.get_messages()
    assert isinstance(shown[0], ToolMessage) and shown[0].status == "error"
    assert isinstance(shown[1], HumanMessage) and "no output" in shown[1].content


# -- agents over processes, and the command line ----------------------------------------------

_TURN = textwrap.dedent("""
    import sys
    from pydantic_ai import Agent, messages as pa
    from pydantic_ai.models.function import FunctionModel
    from threadline import open_store

    def count(messages, info):
        prompts = [part.content for message in messages if isinstance(message, pa.ModelRequest)
                   for part in message.parts if isinstance(part, pa.UserPromptPart)]
        text = f"{len(prompts)} prompts: {', '.join(prompts)}"
        return pa.ModelResponse(parts=[pa.TextPart(text)])

    agent = Agent(FunctionModel(count), system_prompt="Be brief.")
    history = open_store(sys.argv[1]).history(sys.argv[2])
    result = agent.run_sync(sys.argv[3], message_history=history.pydantic_ai_messages())
    history.add_pydantic_ai_messages(result.new_messages())
    print(result.output)
""")


@pytest.mark.parametrize("backend_id", SHARED)
def test_an_agent_in_a_second_process_remembers_the_first_turn(
        backend_id: str, tmp_path: Path) -> None:
    spec = make_spec(backend_id, tmp_path)
    try:
        spec.open()  # so cleanup() destroys what the processes wrote
        script = tmp_path / "turn.py"
        script.write_text(_TURN)
        outputs = [subprocess.run([sys.executable, str(script), spec.url, "conv-1", text],
                                  capture_output=True, text=True, timeout=60, check=True).stdout
                   for text in ("hello", "again")]
        assert outputs == ["1 prompts: hello\n", "2 prompts: hello, again\n"]
        shown = subprocess.run([str(REPO / ".venv/bin/threadline"), "sessions", "show", "conv-1",
                                "--store", spec.url],
                               capture_output=True, text=True, timeout=60, check=True)
        assert shown.stdout.splitlines() == [
            "System: Be brief.", "You: hello", "AI: 1 prompts: hello",
            "You: again", "AI: 2 prompts: hello, again"]
        store = spec.open()
        back = store.history("conv-1").pydantic_ai_messages()
        assert [type(m).__name__ for m in back] == ["ModelRequest", "ModelResponse"] * 2
        hits = store.search("again")
        assert sorted((hit.session_id, hit.position) for hit in hits) == [("conv-1", 3),
                                                                          ("conv-1", 4)]
    finally:
        spec.cleanup()


def test_a_run_with_tool_calls_reads_back_equal_and_runs_again(store: Store) -> None:
    from pydantic_ai.models.test import TestModel

    agent = Agent(TestModel(), instructions="Use the tools.")

    @agent.tool_plain
    def get_weather(city: str) -> dict[str, Any]:
        return {"city": city, "temp": 21}

    history = store.history("tools")
    for question in ("Weather?", "And tomorrow?"):
        result = agent.run_sync(question, message_history=history.pydantic_ai_messages())
        history.add_pydantic_ai_messages(result.new_messages())
        assert store.history("tools").pydantic_ai_messages() == result.all_messages()
    kinds = [m.type for m in history.get_messages()]
    assert kinds == ["human", "ai", "tool", "ai", "human", "ai"]  # TestModel calls once
    call = history.get_messages()[1]
    assert isinstance(call, AIMessage) and call.tool_calls[0]["name"] == "get_weather"


def _counting_agent() -> Agent[None, str]:
    def answer(messages: list[Any], info: AgentInfo) -> Any:
        texts = [str(part.content) for message in messages
                 for part in message.parts if isinstance(part, pa.UserPromptPart | pa.TextPart)]
        return pa.ModelResponse(parts=[pa.TextPart(" | ".join(texts))])

    return Agent(FunctionModel(answer))


def test_an_agent_continues_a_threadline_chain_and_the_chain_continues_it(store: Store) -> None:
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{q}")])
    chain = RunnableWithMessageHistory(
        prompt | FakeListChatModel(responses=["Paris.", "Still Paris."]), store.history,
        input_messages_key="q", history_messages_key="history")
    config = {"configurable": {"session_id": "mixed"}}
    assert chain.invoke({"q": "Capital of France?"}, config).content == "Paris."
    history = store.history("mixed")
    agent = _counting_agent()
    result = agent.run_sync("And of Italy?", message_history=history.pydantic_ai_messages())
    assert result.output == "Capital of France? | Paris. | And of Italy?"
    history.add_pydantic_ai_messages(result.new_messages())
    assert chain.invoke({"q": "Sure?"}, config).content == "Still Paris."
    assert [(m.type, m.content) for m in store.history("mixed").get_messages()] == [
        ("human", "Capital of France?"), ("ai", "Paris."), ("human", "And of Italy?"),
        ("ai", "Capital of France? | Paris. | And of Italy?"), ("human", "Sure?"),
        ("ai", "Still Paris.")]
    # The turns pydantic-ai wrote read back exactly; the chain's as the parts they map to.
    back = history.pydantic_ai_messages()
    assert back[2:4] == result.new_messages()
    assert [type(m).__name__ for m in back] == ["ModelRequest", "ModelResponse"] * 3
    assert back[5].parts == [pa.TextPart("Still Paris.")]


# -- messages of other frameworks -------------------------------------------------------------


def test_plain_messages_become_the_parts_they_map_to() -> None:
    messages = [
        SystemMessage("Be brief."),
        HumanMessage([{"type": "text", "text": "look"},
                      {"type": "image", "url": "https://example.com/a.png"},
                      {"type": "image", "base64": "iVBORw==", "mime_type": "image/png"},
                      {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
                      {"type": "mystery", "x": 1}]),
        AIMessage("Checking.", tool_calls=[{"name": "get", "args": {"q": 1}, "id": "c1"}],
                  usage_metadata={"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
                  response_metadata={"model_name": "m"}),
        ToolMessage("42", tool_call_id="c1"),
        ToolMessage("boom", tool_call_id="c2", name="other", status="error"),
        ChatMessage("hello", role="assistant"),
        ChatMessage("rules", role="developer"),
    ]
    request, response, returns, chat, developer = to_pydantic_ai(messages)
    system, user = request.parts
    assert (type(system), system.content) == (pa.SystemPromptPart, "Be brief.")
    assert user.content[:2] == ["look", pa.ImageUrl("https://example.com/a.png")]
    assert user.content[2] == pa.BinaryContent(b"\x89PNG", media_type="image/png")
    assert user.content[3] == pa.ImageUrl("https://example.com/b.png")
    assert user.content[4] == '{"type": "mystery", "x": 1}'  # no part for it: given as text
    assert response.parts == [pa.TextPart("Checking."), pa.ToolCallPart("get", {"q": 1}, "c1")]
    assert (response.model_name, response.usage.input_tokens) == ("m", 3)
    found, failed = returns.parts
    assert (found.tool_name, found.content, found.outcome) == ("get", "42", "success")
    assert (failed.tool_name, failed.outcome) == ("other", "failed")
    assert chat.parts == [pa.TextPart("hello")]
    assert type(developer.parts[0]) is pa.SystemPromptPart


def test_an_answer_in_content_blocks_keeps_its_reasoning_and_unknown_blocks() -> None:
    answer = AIMessage([{"type": "reasoning", "reasoning": "think"},
                        {"type": "text", "text": "Done."},
                        {"type": "tool_use", "id": "c1", "name": "get", "input": {}},
                        {"type": "tool_use", "id": "c9", "name": "lost", "input": {}}],
                       tool_calls=[{"name": "get", "args": {}, "id": "c1"}])
    (response,) = to_pydantic_ai([answer])
    assert response.parts == [
        pa.ThinkingPart("think"), pa.TextPart("Done."),
        pa.TextPart('{"type": "tool_use", "id": "c9", "name": "lost", "input": {}}'),
        pa.ToolCallPart("get", {}, "c1")]


def test_a_group_whose_first_message_is_gone_still_reads() -> None:
    request = pa.ModelRequest(parts=[pa.SystemPromptPart("S", timestamp=TS),
                                     pa.UserPromptPart("U", timestamp=TS)], timestamp=TS,
                              run_id="r")
    stored = from_pydantic_ai([request])
    assert [m.type for m in stored] == ["system", "human"]
    (alone,) = to_pydantic_ai(stored[1:])  # e.g. the first was deleted
    assert alone.parts == [pa.UserPromptPart("U", timestamp=TS)]
    assert alone.run_id is None  # the request's own fields went with its first message


def test_bad_input_and_damaged_data_are_refused_with_the_reason() -> None:
    with pytest.raises(InputError, match=r"ModelRequest or ModelResponse.*HumanMessage"):
        from_pydantic_ai([HumanMessage("hi")])
    damaged = AIMessage("x", additional_kwargs={"pydantic_ai": {
        "message": {"kind": "response"}, "parts": [{"part_kind": "no-such-part"}]}})
    with pytest.raises(MessageFormatError, match="pydantic-ai version"):
        to_pydantic_ai([damaged])



def test_add_messages_refuses_pydantic_ai_messages_and_names_the_method() -> None:
    history = open_store("memory://").history("s")
    messages = [pa.ModelRequest(parts=[pa.UserPromptPart(content="hi")])]
    with pytest.raises(InputError, match=r"add_pydantic_ai_messages"):
        history.add_messages(messages)  # type: ignore[arg-type]
    assert history.get_messages() == []
