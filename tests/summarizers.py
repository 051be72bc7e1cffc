"""Deterministic summarizers for the compaction tests (tests/memory, tests/stores)."""

from __future__ import annotations

from threadline import BaseMessage, EchoChatModel, ModelError, PromptTemplate, get_buffer_string

#: With the echo model this prompt makes the summary the old one plus the new lines, so
#: every summary is known exactly and shows what each call was sent.
PROMPT = PromptTemplate("{summary}\n{new_lines}")


def texts(messages: list[BaseMessage]) -> list[tuple[str, str]]:
    return [(m.type, m.text) for m in messages]


def summary_of(messages: list[BaseMessage]) -> str:
    """What the echo summarizer with :data:`PROMPT` builds from these messages, two (one
    turn) a call."""
    text = ""
    for start in range(0, len(messages), 2):
        text = f"{text}\n{get_buffer_string(messages[start:start + 2])}".strip()
    return text


class Recorder(EchoChatModel):
    """A deterministic summarizer that records the prompt of every call."""

    model_name = "recorder"

    def __init__(self) -> None:
        super().__init__()
        self.prompts: list[str] = []

    def _answer(self, messages: list[BaseMessage]) -> str:
        self.prompts.append(messages[-1].text)
        return super()._answer(messages)


class Broken(EchoChatModel):
    """A summarizer whose server is down."""

    def _answer(self, messages: list[BaseMessage]) -> str:
        raise ModelError("the summarizer is down")
