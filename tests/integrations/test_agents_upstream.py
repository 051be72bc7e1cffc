"""The OpenAI Agents SDK's own session tests, run against ThreadlineSession.

Ported from openai-agents 0.25.0 (the sdist's ``tests/memory/test_session.py`` and
``tests/memory/test_session_limit.py``): the tests that exercise the ``Session`` protocol
as users do — ``Runner.run`` / ``run_sync`` / ``run_streamed`` with a session, and
``get_items`` / ``add_items`` / ``pop_item`` / ``clear_session`` / ``session_settings``
called directly. Each builds a ``ThreadlineSession`` where the original builds a
``SQLiteSession``; the assertions are the originals. The protocol tests run on memory://,
SQLite, PostgreSQL and Redis, the runner tests on SQLite (the store does not change what
the runner does). pytest-asyncio is not a dependency here, so ``async def`` tests are
plain tests calling ``asyncio.run``; ``run_sync`` runs in a thread of its own, as upstream.

Left out, and why:

- ``test_await_mutation_*`` and ``test_sqlite_session_post_commit_cancellation_*``: the
  SDK's ``_await_mutation`` helper, not a session.
- ``test_sqlite_session_close_*``, ``*_reaps_connections_*``, ``*_closes_retired_*``,
  ``*_keeps_connections_of_live_worker_threads``, ``*_file_lock_is_shared_*``,
  ``*_failed_add_items_releases_write_lock``, ``*_failed_clear_session_rolls_back``,
  ``*_failed_pop_item_releases_write_lock``, ``*_rollback_failure_evicts_connection``,
  ``*_closed_rejects_empty_add_items``: SQLiteSession's own connections, locks and
  ``close()``; threadline's stores own their connections (tested in tests/stores).
- ``*_skips_corrupt_*`` / ``*_only_corrupt_rows``: they write broken rows into
  SQLiteSession's table with its private connection; threadline's stores report an
  undecodable row (``MessageFormatError``) instead of skipping it silently.
- ``test_session_memory_disabled_parametrized`` and ``test_session_settings_resolve``: no
  session, or only ``SessionSettings`` itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, SessionSettings, set_tracing_disabled
from agents.testing import ScriptedModel
from openai.types.responses import ResponseOutputMessage, ResponseOutputText
from stores.conftest import BackendSpec, make_spec

from threadline.agents import ThreadlineSession

set_tracing_disabled(True)

RUNNER_METHODS = ["run", "run_sync", "run_streamed"]
MakeSession = Callable[..., ThreadlineSession]


def get_text_message(content: str) -> ResponseOutputMessage:
    """As tests/test_responses.py of the SDK."""
    return ResponseOutputMessage(
        id="1", type="message", role="assistant", status="completed",
        content=[ResponseOutputText(text=content, type="output_text", annotations=[],
                                    logprobs=[])])


def _run_sync_wrapper(agent: Any, input_data: Any, **kwargs: Any) -> Any:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return Runner.run_sync(agent, input_data, **kwargs)
    finally:
        loop.close()


async def run_agent_async(runner_method: str, agent: Any, input_data: Any,
                          **kwargs: Any) -> Any:
    if runner_method == "run":
        return await Runner.run(agent, input_data, **kwargs)
    if runner_method == "run_sync":
        return await asyncio.to_thread(_run_sync_wrapper, agent, input_data, **kwargs)
    result = Runner.run_streamed(agent, input_data, **kwargs)
    async for _event in result.stream_events():
        pass
    return result


def _factory(spec: BackendSpec) -> MakeSession:
    store = spec.open()

    def make(session_id: str, **kwargs: Any) -> ThreadlineSession:
        return ThreadlineSession(store, session_id, **kwargs)

    return make


@pytest.fixture(params=["memory", "sqlite", "postgresql", "redis"])
def make_session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeSession]:
    spec = make_spec(request.param, tmp_path)
    yield _factory(spec)
    spec.cleanup()


@pytest.fixture
def sqlite_session(tmp_path: Path) -> Iterator[MakeSession]:
    spec = make_spec("sqlite", tmp_path)
    yield _factory(spec)
    spec.cleanup()


# -- test_session.py: the runner with a session -----------------------------------------


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
def test_session_memory_basic_functionality_parametrized(
        runner_method: str, sqlite_session: MakeSession) -> None:
    async def scenario() -> None:
        session = sqlite_session("test_session_123")
        model = ScriptedModel()
        agent = Agent(name="test", model=model)
        model.enqueue([get_text_message("San Francisco")])
        result1 = await run_agent_async(runner_method, agent,
                                        "What city is the Golden Gate Bridge in?",
                                        session=session)
        assert result1.final_output == "San Francisco"
        model.enqueue([get_text_message("California")])
        result2 = await run_agent_async(runner_method, agent, "What state is it in?",
                                        session=session)
        assert result2.final_output == "California"
        last_input = model.calls[-1].input
        assert len(last_input) > 1

    asyncio.run(scenario())


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
def test_session_memory_with_explicit_instance_parametrized(
        runner_method: str, sqlite_session: MakeSession) -> None:
    async def scenario() -> None:
        session = sqlite_session("test_session_456")
        model = ScriptedModel()
        agent = Agent(name="test", model=model)
        model.enqueue([get_text_message("Hello")])
        result1 = await run_agent_async(runner_method, agent, "Hi there", session=session)
        assert result1.final_output == "Hello"
        model.enqueue([get_text_message("I remember you said hi")])
        result2 = await run_agent_async(runner_method, agent, "Do you remember what I said?",
                                        session=session)
        assert result2.final_output == "I remember you said hi"

    asyncio.run(scenario())


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
def test_session_memory_different_sessions_parametrized(
        runner_method: str, sqlite_session: MakeSession) -> None:
    async def scenario() -> None:
        model = ScriptedModel()
        agent = Agent(name="test", model=model)
        session_1 = sqlite_session("session_1")
        model.enqueue([get_text_message("I like cats")])
        result1 = await run_agent_async(runner_method, agent, "I like cats",
                                        session=session_1)
        assert result1.final_output == "I like cats"
        session_2 = sqlite_session("session_2")
        model.enqueue([get_text_message("I like dogs")])
        result2 = await run_agent_async(runner_method, agent, "I like dogs",
                                        session=session_2)
        assert result2.final_output == "I like dogs"
        model.enqueue([get_text_message("Yes, you mentioned cats")])
        result3 = await run_agent_async(runner_method, agent, "What did I say I like?",
                                        session=session_1)
        assert result3.final_output == "Yes, you mentioned cats"
        # (upstream checks only the outputs; the inputs show the sessions are apart)
        assert [item.get("content") for item in model.calls[-1].input
                if item.get("role") == "user"] == ["I like cats", "What did I say I like?"]

    asyncio.run(scenario())


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
def test_session_memory_appends_list_input_by_default(
        runner_method: str, sqlite_session: MakeSession) -> None:
    async def scenario() -> None:
        session = sqlite_session("test_validation_parametrized")
        model = ScriptedModel()
        agent = Agent(name="test", model=model)
        initial_history: list[Any] = [
            {"role": "user", "content": "Earlier message"},
            {"role": "assistant", "content": "Saved reply"},
        ]
        await session.add_items(initial_history)
        list_input = [{"role": "user", "content": "Test message"}]
        model.enqueue([get_text_message("This should run")])
        await run_agent_async(runner_method, agent, list_input, session=session)
        assert model.calls[-1].input == initial_history + list_input

    asyncio.run(scenario())


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
def test_session_callback_prepared_input(runner_method: str,
                                         sqlite_session: MakeSession) -> None:
    async def scenario() -> None:
        model = ScriptedModel()
        agent = Agent(name="test", model=model)
        session = sqlite_session("session_1")
        initial_history: list[Any] = [
            {"role": "user", "content": "Hello there."},
            {"role": "assistant", "content": "Hi, I'm here to assist you."},
        ]
        await session.add_items(initial_history)

        def filter_assistant_messages(history: list[Any], new_input: list[Any]) -> list[Any]:
            return [item for item in history if item["role"] == "user"] + new_input

        new_turn_input = [{"role": "user", "content": "What your name?"}]
        model.enqueue([get_text_message("I'm gpt-4o")])
        await run_agent_async(runner_method, agent, new_turn_input, session=session,
                              run_config=RunConfig(
                                  session_input_callback=filter_assistant_messages))
        expected_model_input = [initial_history[0], new_turn_input[0]]
        assert len(model.calls[-1].input) == 2
        assert model.calls[-1].input == expected_model_input

    asyncio.run(scenario())


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
def test_session_callback_repeating_history_does_not_grow_session(
        runner_method: str, sqlite_session: MakeSession) -> None:
    async def scenario() -> None:
        model = ScriptedModel()
        agent = Agent(name="test", model=model)
        session = sqlite_session("session_repeat")

        def repeat_first(history: list[Any], new_input: list[Any]) -> list[Any]:
            if not history:
                return new_input
            return [*history, history[0], *new_input]

        for turn in range(3):
            model.enqueue([get_text_message(f"assistant {turn}")])
            await run_agent_async(runner_method, agent, f"user {turn}", session=session,
                                  run_config=RunConfig(session_input_callback=repeat_first))
        stored = await session.get_items()
        user_messages = [item for item in stored if item.get("role") == "user"]
        assert [item.get("content") for item in user_messages] == [
            "user 0", "user 1", "user 2"]
        assert len(stored) == 6

    asyncio.run(scenario())


def test_session_add_items_exception_propagates_in_streamed(
        sqlite_session: MakeSession) -> None:
    session = sqlite_session("test_exception_session")

    async def _failing_add_items(_items: Any) -> None:
        raise RuntimeError("Simulated session.add_items failure")

    session.add_items = _failing_add_items  # type: ignore[method-assign]
    model = ScriptedModel()
    agent = Agent(name="test", model=model)
    model.enqueue([get_text_message("This should not be reached")])

    async def scenario() -> None:
        result = Runner.run_streamed(agent, "Hello", session=session)

        async def consume_stream() -> None:
            async for _event in result.stream_events():
                pass

        with pytest.raises(RuntimeError, match=r"Simulated session\.add_items failure"):
            await asyncio.wait_for(consume_stream(), timeout=5.0)

    asyncio.run(scenario())


def test_runner_with_session_settings_override(sqlite_session: MakeSession) -> None:
    async def scenario() -> None:
        session = sqlite_session("runner_override_test",
                                 session_settings=SessionSettings(limit=100))
        items: list[Any] = [{"role": "user", "content": f"Turn {i}"} for i in range(10)]
        await session.add_items(items)
        model = ScriptedModel()
        agent = Agent(name="test", model=model)
        model.enqueue([get_text_message("Got it")])
        await Runner.run(agent, "New question", session=session,
                         run_config=RunConfig(session_settings=SessionSettings(limit=2)))
        last_input = model.calls[-1].input
        history_items = [item for item in last_input if item.get("content") != "New question"]
        assert len(history_items) == 2

    asyncio.run(scenario())


# -- test_session.py: the protocol, called directly ---------------------------------------


def test_sqlite_session_memory_direct(make_session: MakeSession) -> None:
    async def scenario() -> None:
        session = make_session("direct_test")
        items: list[Any] = [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi there!"},
        ]
        await session.add_items(items)
        retrieved = await session.get_items()
        assert len(retrieved) == 2
        assert retrieved[0].get("role") == "user"
        assert retrieved[0].get("content") == "Hello"
        assert retrieved[1].get("role") == "assistant"
        assert retrieved[1].get("content") == "Hi there!"
        await session.clear_session()
        assert len(await session.get_items()) == 0

    asyncio.run(scenario())


def test_sqlite_session_memory_pop_item(make_session: MakeSession) -> None:
    async def scenario() -> None:
        session = make_session("pop_test")
        assert await session.pop_item() is None
        items: list[Any] = [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi there!"},
            {"role": "user", "content": "How are you?"},
        ]
        await session.add_items(items)
        assert len(await session.get_items()) == 3
        popped = await session.pop_item()
        assert popped is not None
        assert popped.get("role") == "user"
        assert popped.get("content") == "How are you?"
        retrieved_after_pop = await session.get_items()
        assert len(retrieved_after_pop) == 2
        assert retrieved_after_pop[-1].get("content") == "Hi there!"
        popped2 = await session.pop_item()
        assert popped2 is not None
        assert popped2.get("role") == "assistant"
        assert popped2.get("content") == "Hi there!"
        popped3 = await session.pop_item()
        assert popped3 is not None
        assert popped3.get("role") == "user"
        assert popped3.get("content") == "Hello"
        assert await session.pop_item() is None
        assert len(await session.get_items()) == 0

    asyncio.run(scenario())


def test_session_memory_pop_different_sessions(make_session: MakeSession) -> None:
    async def scenario() -> None:
        session_1 = make_session("session_1")
        session_2 = make_session("session_2")
        await session_1.add_items([{"role": "user", "content": "Session 1 message"}])
        await session_2.add_items([{"role": "user", "content": "Session 2 message 1"},
                                   {"role": "user", "content": "Session 2 message 2"}])
        popped = await session_2.pop_item()
        assert popped is not None
        assert popped.get("content") == "Session 2 message 2"
        session_1_items = await session_1.get_items()
        assert len(session_1_items) == 1
        assert session_1_items[0].get("content") == "Session 1 message"
        session_2_items = await session_2.get_items()
        assert len(session_2_items) == 1
        assert session_2_items[0].get("content") == "Session 2 message 1"

    asyncio.run(scenario())


def test_sqlite_session_get_items_with_limit(make_session: MakeSession) -> None:
    async def scenario() -> None:
        session = make_session("count_test")
        items: list[Any] = [
            {"role": "user", "content": "Message 1"},
            {"role": "assistant", "content": "Response 1"},
            {"role": "user", "content": "Message 2"},
            {"role": "assistant", "content": "Response 2"},
            {"role": "user", "content": "Message 3"},
            {"role": "assistant", "content": "Response 3"},
        ]
        await session.add_items(items)
        all_items = await session.get_items()
        assert len(all_items) == 6
        assert all_items[0].get("content") == "Message 1"
        assert all_items[-1].get("content") == "Response 3"
        latest_2 = await session.get_items(limit=2)
        assert [i.get("content") for i in latest_2] == ["Message 3", "Response 3"]
        latest_4 = await session.get_items(limit=4)
        assert [i.get("content") for i in latest_4] == [
            "Message 2", "Response 2", "Message 3", "Response 3"]
        latest_10 = await session.get_items(limit=10)
        assert len(latest_10) == 6
        assert latest_10[0].get("content") == "Message 1"
        assert latest_10[-1].get("content") == "Response 3"
        assert len(await session.get_items(limit=0)) == 0

    asyncio.run(scenario())


def test_sqlite_session_unicode_content(make_session: MakeSession) -> None:
    async def scenario() -> None:
        session = make_session("unicode_test")
        await session.add_items([
            {"role": "user", "content": "こんにちは"},
            {"role": "assistant", "content": "😊👍"},
            {"role": "user", "content": "Привет"},
        ])
        retrieved = await session.get_items()
        assert retrieved[0].get("content") == "こんにちは"
        assert retrieved[1].get("content") == "😊👍"
        assert retrieved[2].get("content") == "Привет"

    asyncio.run(scenario())


def test_sqlite_session_special_characters_and_sql_injection(
        make_session: MakeSession) -> None:
    async def scenario() -> None:
        session = make_session("special_chars_test")
        items: list[Any] = [
            {"role": "user", "content": "O'Reilly"},
            {"role": "assistant", "content": "DROP TABLE sessions;"},
            {"role": "user", "content": ('"SELECT * FROM users WHERE name = "admin";"')},
            {"role": "assistant", "content": "Robert'); DROP TABLE students;--"},
            {"role": "user", "content": "Normal message"},
        ]
        await session.add_items(items)
        retrieved = await session.get_items()
        assert len(retrieved) == len(items)
        assert [i.get("content") for i in retrieved] == [i["content"] for i in items]

    asyncio.run(scenario())


def test_sqlite_session_concurrent_access(make_session: MakeSession) -> None:
    session = make_session("concurrent_test")
    items: list[Any] = [{"role": "user", "content": f"Message {i}"} for i in range(10)]

    def add_item(item: Any) -> None:
        # upstream: new_event_loop + run_until_complete + close, which leaves the loop's
        # tasks pending (a Redis store's per-loop client among them); asyncio.run is the
        # same new loop per thread, closed properly
        asyncio.run(session.add_items([item]))

    with concurrent.futures.ThreadPoolExecutor(max_workers=5) as executor:
        list(executor.map(add_item, items))  # (upstream drops the results: errors too)
    retrieved = asyncio.run(session.get_items())
    contents = {item.get("content") for item in retrieved}
    assert contents == {f"Message {i}" for i in range(10)}


# -- test_session.py: SessionSettings --------------------------------------------------------


def test_session_settings_default() -> None:
    session = ThreadlineSession("memory://", "default_settings_test")
    assert isinstance(session.session_settings, SessionSettings)
    assert session.session_settings.limit is None


def test_session_settings_constructor() -> None:
    session = ThreadlineSession("memory://", "constructor_settings_test",
                                session_settings=SessionSettings(limit=5))
    assert session.session_settings is not None
    assert session.session_settings.limit == 5


def test_session_settings_constructor_normalizes_dictionary() -> None:
    session = ThreadlineSession("memory://", "dictionary_settings_test",
                                session_settings={"limit": 0})
    assert isinstance(session.session_settings, SessionSettings)
    assert session.session_settings.limit == 0
    assert session.session_settings.resolve({"limit": 4}).limit == 4


def test_session_settings_rejects_unknown_dictionary_fields() -> None:
    with pytest.raises(TypeError, match="Unknown session settings: limitt"):
        ThreadlineSession("memory://", "invalid_settings_test",
                          session_settings={"limitt": 1})


def test_get_items_uses_session_settings_limit(make_session: MakeSession) -> None:
    async def scenario() -> None:
        session = make_session("uses_settings_limit_test",
                               session_settings=SessionSettings(limit=3))
        await session.add_items([{"role": "user", "content": f"Message {i}"}
                                 for i in range(5)])
        retrieved = await session.get_items()
        assert [i.get("content") for i in retrieved] == ["Message 2", "Message 3",
                                                         "Message 4"]

    asyncio.run(scenario())


def test_get_items_explicit_limit_overrides_session_settings(
        make_session: MakeSession) -> None:
    async def scenario() -> None:
        session = make_session("explicit_override_test",
                               session_settings=SessionSettings(limit=5))
        await session.add_items([{"role": "user", "content": f"Message {i}"}
                                 for i in range(10)])
        retrieved = await session.get_items(limit=2)
        assert [i.get("content") for i in retrieved] == ["Message 8", "Message 9"]

    asyncio.run(scenario())


# -- test_session_limit.py ----------------------------------------------------------------


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
def test_session_limit_parameter(runner_method: str, sqlite_session: MakeSession) -> None:
    async def scenario() -> None:
        session = sqlite_session("limit_test")
        model = ScriptedModel()
        agent = Agent(name="test", model=model)
        for n in (1, 2, 3):
            model.enqueue([get_text_message(f"Reply {n}")])
            await run_agent_async(runner_method, agent, f"Message {n}", session=session)
        assert len(await session.get_items()) == 6
        model.enqueue([get_text_message("Reply 4")])
        await run_agent_async(runner_method, agent, "Message 4", session=session,
                              run_config=RunConfig(session_settings=SessionSettings(limit=2)))
        last_input = model.calls[-1].input
        assert len(last_input) == 3
        assert last_input[0].get("content") == "Message 3"
        assert last_input[1].get("content")[0]["text"] == "Reply 3"
        assert last_input[2].get("content") == "Message 4"

    asyncio.run(scenario())


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
def test_session_limit_drops_unmatched_history_function_call_output(
        runner_method: str, sqlite_session: MakeSession) -> None:
    async def scenario() -> None:
        session = sqlite_session("limit_tool_pair")
        history: list[Any] = [
            {"role": "user", "content": "What is the weather?"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather",
             "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"type": "message", "role": "assistant",
             "content": [{"type": "output_text", "text": "It is sunny.", "annotations": []}]},
        ]
        await session.add_items(history)
        assert await session.get_items(limit=2) == history[-2:]
        model = ScriptedModel()
        model.enqueue([get_text_message("Tomorrow is sunny too.")])
        agent = Agent(name="test", model=model)
        await run_agent_async(runner_method, agent, "What about tomorrow?", session=session,
                              run_config=RunConfig(session_settings=SessionSettings(limit=2)))
        assert model.calls[-1].input == [
            history[-1], {"role": "user", "content": "What about tomorrow?"}]

    asyncio.run(scenario())


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
def test_session_limit_zero(runner_method: str, sqlite_session: MakeSession) -> None:
    async def scenario() -> None:
        session = sqlite_session("limit_zero_test")
        model = ScriptedModel()
        agent = Agent(name="test", model=model)
        for n in (1, 2):
            model.enqueue([get_text_message(f"Reply {n}")])
            await run_agent_async(runner_method, agent, f"Message {n}", session=session)
        model.enqueue([get_text_message("Reply 3")])
        await run_agent_async(runner_method, agent, "Message 3", session=session,
                              run_config=RunConfig(session_settings=SessionSettings(limit=0)))
        last_input = model.calls[-1].input
        assert len(last_input) == 1
        assert last_input[0].get("content") == "Message 3"

    asyncio.run(scenario())


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
def test_session_limit_none_gets_all_history(runner_method: str,
                                             sqlite_session: MakeSession) -> None:
    async def scenario() -> None:
        session = sqlite_session("limit_none_test")
        model = ScriptedModel()
        agent = Agent(name="test", model=model)
        for i in range(1, 6):
            model.enqueue([get_text_message(f"Reply {i}")])
            await run_agent_async(runner_method, agent, f"Message {i}", session=session)
        assert len(await session.get_items()) == 10
        model.enqueue([get_text_message("Reply 6")])
        await run_agent_async(runner_method, agent, "Message 6", session=session,
                              run_config=RunConfig(
                                  session_settings=SessionSettings(limit=None)))
        last_input = model.calls[-1].input
        assert len(last_input) == 11
        assert last_input[0].get("content") == "Message 1"
        assert last_input[-1].get("content") == "Message 6"

    asyncio.run(scenario())


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
def test_session_limit_larger_than_history(runner_method: str,
                                           sqlite_session: MakeSession) -> None:
    async def scenario() -> None:
        session = sqlite_session("limit_large_test")
        model = ScriptedModel()
        agent = Agent(name="test", model=model)
        model.enqueue([get_text_message("Reply 1")])
        await run_agent_async(runner_method, agent, "Message 1", session=session)
        model.enqueue([get_text_message("Reply 2")])
        await run_agent_async(runner_method, agent, "Message 2", session=session,
                              run_config=RunConfig(session_settings=SessionSettings(limit=100)))
        last_input = model.calls[-1].input
        assert len(last_input) == 3
        assert last_input[0].get("content") == "Message 1"
        assert last_input[1].get("content")[0]["text"] == "Reply 1"
        assert last_input[2].get("content") == "Message 2"

    asyncio.run(scenario())
