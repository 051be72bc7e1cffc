from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from threadline import (
    AIMessage,
    BaseChatMessageHistory,
    BaseMessage,
    ChatMessageHistory,
    HumanMessage,
    InMemoryChatMessageHistory,
    InputError,
    SystemMessage,
)


def test_in_memory_history_basics() -> None:
    history = InMemoryChatMessageHistory()
    history.add_user_message("hi")
    history.add_ai_message("hello")
    history.add_message(SystemMessage("s"))
    assert history.messages == [HumanMessage("hi"), AIMessage("hello"), SystemMessage("s")]
    assert str(history) == "Human: hi\nAI: hello\nSystem: s"
    assert history.get_messages(last=2) == [AIMessage("hello"), SystemMessage("s")]
    assert history.get_messages(last=0) == []
    history.clear()
    assert history.messages == []


def test_alias_constructor_and_equality() -> None:
    assert ChatMessageHistory is InMemoryChatMessageHistory
    a = InMemoryChatMessageHistory(messages=[HumanMessage("x")])
    b = InMemoryChatMessageHistory()
    b.add_user_message("x")
    assert a == b
    b.add_ai_message("y")
    assert a != b


def test_returned_list_is_a_copy() -> None:
    history = InMemoryChatMessageHistory(messages=[HumanMessage("x")])
    got = history.get_messages()
    got.append(AIMessage("y"))
    assert len(history.get_messages()) == 1


def test_wrong_types_are_rejected() -> None:
    history = InMemoryChatMessageHistory()
    with pytest.raises(InputError, match="stores messages"):
        history.add_messages(["plain text"])  # type: ignore[list-item]
    with pytest.raises(InputError, match="expected a str or a HumanMessage"):
        history.add_user_message(3)  # type: ignore[arg-type]


def test_async_methods() -> None:
    async def run() -> list[BaseMessage]:
        history = InMemoryChatMessageHistory()
        await history.aadd_messages([HumanMessage("a"), AIMessage("b")])
        got = await history.aget_messages()
        await history.aclear()
        assert await history.aget_messages() == []
        return got

    assert asyncio.run(run()) == [HumanMessage("a"), AIMessage("b")]


class LangChainStyleHistory(BaseChatMessageHistory):
    """A custom history written the LangChain way: a messages property + add_message."""

    def __init__(self) -> None:
        self.store: list[BaseMessage] = []
        self.calls = 0

    @property
    def messages(self) -> list[BaseMessage]:
        return list(self.store)

    def add_message(self, message: BaseMessage) -> None:
        self.calls += 1
        self.store.append(message)

    def clear(self) -> None:
        self.store = []


def test_ported_custom_history_works_sync_and_async() -> None:
    history = LangChainStyleHistory()
    history.add_messages([HumanMessage("a"), AIMessage("b")])
    assert history.calls == 2
    assert history.get_messages(last=1) == [AIMessage("b")]
    assert asyncio.run(history.aget_messages()) == [HumanMessage("a"), AIMessage("b")]
    asyncio.run(history.aadd_messages([HumanMessage("c")]))
    assert str(history) == "Human: a\nAI: b\nHuman: c"


class BatchHistory(BaseChatMessageHistory):
    def __init__(self) -> None:
        self.batches: list[list[BaseMessage]] = []

    def get_messages(self, last: int | None = None) -> list[BaseMessage]:
        flat = [m for batch in self.batches for m in batch]
        return flat if last is None else flat[-last:]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        self.batches.append(list(messages))


def test_add_message_goes_through_add_messages() -> None:
    history = BatchHistory()
    history.add_message(HumanMessage("a"))
    assert history.batches == [[HumanMessage("a")]]
    assert history.messages == [HumanMessage("a")]


def test_incomplete_subclass_is_a_clear_error() -> None:
    class Nothing(BaseChatMessageHistory):
        pass

    with pytest.raises(NotImplementedError, match="get_messages"):
        Nothing().messages  # noqa: B018
    with pytest.raises(NotImplementedError, match="add_messages"):
        Nothing().add_message(HumanMessage("x"))


# -- pydantic-ai's histories: methods of every history, reached by name ------------------------


def _every_history(tmp_path: Path) -> list[BaseChatMessageHistory]:
    from threadline import FakeListChatModel, open_store
    from threadline.memory._summary import SummaryBufferHistory
    from threadline.stores.file._history import FileChatMessageHistory

    store = open_store("memory://")
    return [InMemoryChatMessageHistory(), store.history("s"),
            FileChatMessageHistory(tmp_path / "h.json"),
            SummaryBufferHistory(store.history("t"), FakeListChatModel(responses=["sum"])),
            BatchHistory()]


def test_every_history_reads_and_writes_pydantic_ai_messages(tmp_path: Path) -> None:
    pa = pytest.importorskip("pydantic_ai.messages")
    turn = [pa.ModelRequest.user_text_prompt("hi"),
            pa.ModelResponse(parts=[pa.TextPart("hello")])]
    for history in _every_history(tmp_path):
        history.add_pydantic_ai_messages(turn)
        assert history.pydantic_ai_messages() == turn, type(history).__name__
        assert [m.content for m in history.get_messages()] == ["hi", "hello"]

        async def more(history: BaseChatMessageHistory = history) -> list[object]:
            await history.aadd_pydantic_ai_messages(turn)
            return await history.apydantic_ai_messages()

        assert asyncio.run(more()) == turn + turn, type(history).__name__


def test_without_pydantic_ai_the_methods_name_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from threadline import MissingDependencyError, _foreign

    # As if pydantic-ai were not installed and threadline.pydantic_ai never imported.
    monkeypatch.setitem(sys.modules, "pydantic_ai", None)
    for name in [n for n in sys.modules if n.startswith("threadline.pydantic_ai")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(_foreign, "_loaded", {})
    for history in _every_history(tmp_path):
        history.add_user_message("kept")
        calls = [history.pydantic_ai_messages, lambda h=history: h.add_pydantic_ai_messages([]),
                 lambda h=history: asyncio.run(h.apydantic_ai_messages()),
                 lambda h=history: asyncio.run(h.aadd_pydantic_ai_messages([]))]
        for call in calls:
            with pytest.raises(MissingDependencyError) as caught:
                call()
            assert caught.value.package == "pydantic-ai-slim"
            assert 'pip install "threadline[pydantic-ai]"' in str(caught.value)
        assert [m.content for m in history.get_messages()] == ["kept"]  # still usable
