"""Ported from langchain-classic 1.0.8, tests/unit_tests/chains/test_memory.py.

Imports threadline's objects instead of LangChain's; ``FakeLLM`` is upstream's test
helper, rebuilt on threadline's ``LLM`` (as in test_upstream_conversation.py).
Nothing left out: both upstream tests are ported.
"""

from __future__ import annotations

from typing import Any

import pytest

from threadline import (
    LLM,
    ConversationBufferMemory,
    ConversationBufferWindowMemory,
    ConversationSummaryMemory,
    ReadOnlySharedMemory,
    SimpleMemory,
)


class FakeLLM(LLM):
    """Answers "foo" (upstream's fake LLM without queries)."""

    @property
    def _llm_type(self) -> str:
        return "fake"

    def _call(self, prompt: str, stop: list[str] | None = None, run_manager: Any = None,
              **kwargs: Any) -> str:
        return "foo" if stop is None else "bar"


def test_simple_memory() -> None:
    """Test SimpleMemory."""
    memory = SimpleMemory(memories={"baz": "foo"})

    output = memory.load_memory_variables({})

    assert output == {"baz": "foo"}
    assert memory.memory_variables == ["baz"]


@pytest.mark.parametrize(
    "memory",
    [
        ConversationBufferMemory(memory_key="baz"),
        ConversationSummaryMemory(llm=FakeLLM(), memory_key="baz"),
        ConversationBufferWindowMemory(memory_key="baz"),
    ],
)
def test_readonly_memory(memory: Any) -> None:
    read_only_memory = ReadOnlySharedMemory(memory=memory)
    memory.save_context({"input": "bar"}, {"output": "foo"})

    assert read_only_memory.load_memory_variables({}) == memory.load_memory_variables(
        {},
    )


# -- beyond the upstream suite ----------------------------------------------------------


def test_readonly_memory_does_not_write() -> None:
    memory = ConversationBufferMemory()
    memory.save_context({"input": "hi"}, {"output": "hello"})
    read_only = ReadOnlySharedMemory(memory=memory)
    read_only.save_context({"input": "ignored"}, {"output": "ignored"})
    read_only.clear()
    assert read_only.memory_variables == ["history"]
    assert memory.load_memory_variables({}) == {"history": "Human: hi\nAI: hello"}


def test_simple_memory_save_and_clear_change_nothing() -> None:
    memory = SimpleMemory(memories={"rules": "Be brief."})
    memory.save_context({"input": "x"}, {"output": "y"})
    memory.clear()
    assert memory.load_memory_variables({}) == {"rules": "Be brief."}
