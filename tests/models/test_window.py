"""Context windows: the model's own figure, the table of known families, the default."""

from __future__ import annotations

import pytest

from threadline import ChatOpenAI, EchoChatModel
from threadline.models._window import (
    DEFAULT_CONTEXT,
    KNOWN_WINDOWS,
    Window,
    context_window,
    find_window,
    find_window_for_name,
)


@pytest.mark.parametrize(("name", "tokens"), [
    ("gpt-4o-mini", 128_000),
    ("gpt-4o-mini-2024-07-18", 128_000),
    ("gpt-4o", 128_000),
    ("gpt-4.1-nano", 1_047_576),
    ("gpt-4.5-preview", 128_000),
    ("gpt-5-mini", 400_000),
    ("gpt-5-chat-latest", 128_000),
    ("gpt-4", 8_192),
    ("gpt-4-0613", 8_192),
    ("gpt-4-turbo-2024-04-09", 128_000),
    ("gpt-3.5-turbo", 16_385),
    ("gpt-3.5-turbo-instruct", 4_096),
    ("o1", 200_000),
    ("o1-mini", 128_000),
    ("o3-mini-2025-01-31", 200_000),
    ("o4-mini", 200_000),
    ("llama3", 8_192),
    ("llama3:8b", 8_192),
    ("llama3.1:8b", 131_072),
    ("meta-llama/Llama-3.1-8B-Instruct", 131_072),
    ("meta-llama/Meta-Llama-3-8B-Instruct", 8_192),
    ("llama-3.3-70b-versatile", 131_072),
    ("mistral:7b", 32_768),
    ("mistralai/Mistral-7B-Instruct-v0.3", 32_768),
    ("mistral-large-latest", 131_072),
    ("mixtral-8x22b-instruct", 65_536),
    ("mixtral:8x7b", 32_768),
    ("qwen2.5:0.5b", 32_768),
    ("Qwen/Qwen2.5-7B-Instruct", 32_768),
    ("gemma2:9b", 8_192),
    ("gemma3:1b", 32_768),
    ("gemma3:27b", 131_072),
    ("google/gemma-3-4b-it", 131_072),
    ("phi3:mini", 4_096),
    ("microsoft/Phi-3-mini-128k-instruct", 131_072),
    ("phi-3.5-mini-instruct", 131_072),
    ("deepseek-chat", 65_536),
    ("deepseek-r1:7b", 131_072),
    ("claude-3-5-sonnet-latest", 200_000),
    ("anthropic/claude-sonnet-4", 200_000),
    ("claude-2.0", 100_000),
    ("claude-2.1", 200_000),
])
def test_known_families_by_longest_prefix(name: str, tokens: int) -> None:
    assert find_window_for_name(name) == Window(tokens, f"known for {name}")


@pytest.mark.parametrize("name", ["", "my-own-model", "o10-experimental", "gemmaX", "gpt",
                                  "llama", "qwen"])
def test_unknown_names_and_partial_words_are_not_guessed(name: str) -> None:
    assert find_window_for_name(name) is None


def test_the_table_is_lower_case_and_sane() -> None:
    for prefix, tokens in KNOWN_WINDOWS.items():
        assert prefix == prefix.lower().strip() and "/" not in prefix
        assert 2_048 <= tokens <= 2_000_000


def test_find_window_prefers_the_models_own_then_the_table_then_the_default() -> None:
    class Sized(EchoChatModel):
        def context_size(self) -> int:
            return 2_048

    assert find_window(Sized()) == Window(2_048, "the model's own")
    assert find_window(EchoChatModel()) == Window(DEFAULT_CONTEXT, "default")
    model = ChatOpenAI(model="gpt-4o-mini", base_url="http://127.0.0.1:9/v1")
    assert find_window(model) == Window(128_000, "known for gpt-4o-mini")
    assert context_window(model) == 128_000
    other = ChatOpenAI(model="my-finetune", base_url="http://127.0.0.1:9/v1")
    assert find_window(other) == Window(DEFAULT_CONTEXT, "default")
