"""The seed documents' LangChain examples, with LangChain's own classes, on threadline stores.

The examples of /shared/seeds (LangChain's ConversationChain migration guide and its
chat-message-history page) run as written, with one change each: the history is a
threadline one from ``threadline.langchain``. The model is LangChain's real
``langchain_openai.ChatOpenAI`` talking to an OpenAI-compatible server on loopback that
answers "echo: <last user text>" and records what it was sent.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_openai import ChatOpenAI
from openai_server import OpenAIServer, sent_texts, serving_as_openai

from threadline import open_store
from threadline.langchain import (
    FileChatMessageHistory,
    LangChainHistory,
    history_factory,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::PendingDeprecationWarning")


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    with serving_as_openai(monkeypatch) as server:
        yield server


def pirate_prompt() -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages([
        ("system", "You are a pirate. Answer the following questions as best you can."),
        ("placeholder", "{chat_history}"),
        ("human", "{input}"),
    ])


def test_lcel_zero_argument_factory_on_a_threadline_store(
        openai_server: OpenAIServer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    history = LangChainHistory(url, "pirate")  # was: InMemoryChatMessageHistory()

    def get_history():  # type: ignore[no-untyped-def]  # as in the seed
        return history

    chain = pirate_prompt() | ChatOpenAI() | StrOutputParser()
    wrapped_chain = RunnableWithMessageHistory(chain, get_history,
                                               history_messages_key="chat_history")
    assert wrapped_chain.invoke({"input": "how are you?"}) == "echo: how are you?"
    assert wrapped_chain.invoke({"input": "and now?"}) == "echo: and now?"
    # The model saw the first turn, read back from the store.
    assert sent_texts(openai_server)[1:] == [("user", "how are you?"),
                                             ("assistant", "echo: how are you?"),
                                             ("user", "and now?")]
    assert [m.content for m in open_store(url).get_messages("pirate")] == [
        "how are you?", "echo: how are you?", "and now?", "echo: and now?"]


def test_lcel_per_session_factory_invoke_stream_ainvoke(
        openai_server: OpenAIServer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    get_session_history = history_factory(url)  # was: a dict of InMemoryChatMessageHistory
    chain = pirate_prompt() | ChatOpenAI() | StrOutputParser()
    wrapped_chain = RunnableWithMessageHistory(chain, get_session_history,
                                               history_messages_key="chat_history")
    config = {"configurable": {"session_id": "abc123"}}
    assert wrapped_chain.invoke({"input": "Hello!"}, config=config) == "echo: Hello!"
    pieces = list(wrapped_chain.stream({"input": "Tell me more"}, config=config))
    assert len(pieces) > 2 and "".join(pieces) == "echo: Tell me more"  # tokens streamed
    answer = asyncio.run(wrapped_chain.ainvoke({"input": "Last one"}, config=config))
    assert answer == "echo: Last one"
    assert [t for _, t in sent_texts(openai_server)[1:]] == [
        "Hello!", "echo: Hello!", "Tell me more", "echo: Tell me more", "Last one"]
    # Another session is separate.
    wrapped_chain.invoke({"input": "Other"}, config={"configurable": {"session_id": "x"}})
    assert sent_texts(openai_server)[1:] == [("user", "Other")]


def test_a_second_process_continues_the_session(
        openai_server: OpenAIServer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    script = textwrap.dedent(f"""
        import sys, warnings
        warnings.simplefilter("ignore")
        from langchain_core.output_parsers import StrOutputParser
        from langchain_core.prompts import ChatPromptTemplate
        from langchain_core.runnables.history import RunnableWithMessageHistory
        from langchain_openai import ChatOpenAI
        from threadline.langchain import history_factory

        prompt = ChatPromptTemplate.from_messages(
            [("placeholder", "{{chat_history}}"), ("human", "{{input}}")])
        chain = RunnableWithMessageHistory(
            prompt | ChatOpenAI() | StrOutputParser(), history_factory({url!r}),
            history_messages_key="chat_history")
        print(chain.invoke({{"input": sys.argv[1]}},
                           config={{"configurable": {{"session_id": "shared"}}}}))
    """)
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": openai_server.base_url,
           "PATH": "/usr/bin:/bin"}
    for word in ("first", "second"):
        done = subprocess.run([sys.executable, "-c", script, word], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"echo: {word}"
    assert [t for _, t in sent_texts(openai_server)] == ["first", "echo: first", "second"]


def test_legacy_conversation_chain_with_a_threadline_file_history(
        openai_server: OpenAIServer, tmp_path: Path) -> None:
    from langchain_classic.chains import ConversationChain
    from langchain_classic.memory import ConversationBufferMemory

    path = tmp_path / "our_conversation.txt"
    history = FileChatMessageHistory(str(path))  # was: langchain's FileChatMessageHistory
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conversation = ConversationChain(
            llm=ChatOpenAI(temperature=0),
            memory=ConversationBufferMemory(chat_memory=history))
        first = conversation.run("Hello!")
        second = conversation.run("Again")
    # The legacy prompt is one text: the model is sent the stored turn inside it.
    assert first.startswith("echo: The following is a friendly conversation")
    assert "Human: Hello!\nAI: " + first in second
    assert [m.content for m in history.messages] == ["Hello!", first, "Again", second]
    # LangChain's own class reads the file threadline wrote.
    from langchain_community.chat_message_histories import (
        FileChatMessageHistory as LangChainFile,
    )

    assert [m.content for m in LangChainFile(str(path)).messages] == [
        "Hello!", first, "Again", second]
