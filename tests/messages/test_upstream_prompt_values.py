"""Ported from langchain-core 1.8.4, tests/unit_tests/test_prompt_values.py.

A chat prompt value keeps the messages (and message chunks) it is given. No upstream
test is left out.
"""

from __future__ import annotations

from threadline import (
    AIMessage,
    AIMessageChunk,
    ChatPromptValueConcrete,
    HumanMessage,
    HumanMessageChunk,
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
    ToolMessageChunk,
)


def test_chat_prompt_value_concrete() -> None:
    messages = [
        AIMessage("foo"),
        HumanMessage("foo"),
        SystemMessage("foo"),
        ToolMessage("foo", tool_call_id="foo"),
        AIMessageChunk(content="foo"),
        HumanMessageChunk(content="foo"),
        SystemMessageChunk(content="foo"),
        ToolMessageChunk(content="foo", tool_call_id="foo"),
    ]
    assert ChatPromptValueConcrete(messages=messages).messages == messages
