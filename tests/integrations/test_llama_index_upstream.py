"""LlamaIndex's own chat-store and memory tests, run against threadline's stores.

Ported from run-llama/llama_index (the repository's tests at the commits the index holds;
the installed package is llama-index-core 0.14.25, whose sdist ships no tests):

- ``llama-index-core/tests/storage/chat_store/test_simple_chat_store.py``
  (commit 0e40745355a0768b690ccfaa7721c5cd2334d8ce): every test, ``SimpleChatStore()``
  replaced by ``ThreadlineChatStore`` on memory, SQLite, PostgreSQL and Redis.
  ``test_persist_non_ascii_unescaped`` becomes "non-ASCII text is stored as is" (a
  threadline store has no ``persist``; the text is checked in the stored JSON's view).
- ``llama-index-core/tests/memory/test_chat_memory_buffer.py``
  (commit 0295ed195fbf0d669c5de0dd8657731547a2eaa9): every test, with the memory on a
  ``ThreadlineChatStore`` and a whitespace tokenizer instead of ``get_tokenizer()``
  (tiktoken downloads its data; the expected counts are computed from the tokenizer, as
  upstream does). Left out: ``test_sting_save_load`` / ``test_dict_save_load`` (LlamaIndex's
  ``load_chat_store`` only recognises ``SimpleChatStore``; ``to_dict`` is tested) and
  ``test_pickle`` (a store holds live connections; threadline never pickles).
- ``llama-index-core/tests/memory/test_memory_custom_chat_store.py``
  (commit 93c1da428f1268e1b15c1a7c912ca93896b0e340): the tests of ``Memory`` with a
  custom ``AsyncDBChatStore``, against ``ThreadlineDBChatStore``. Left out:
  ``test_from_defaults_without_chat_store_still_uses_sql_store`` (about the default
  store) and ``test_concurrent_aput_does_not_over_archive`` (it subclasses the upstream
  in-memory test store to stagger calls, and tests a lock newer than 0.14.25).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from llama_index.core.llms import ChatMessage, MessageRole
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.memory.memory import Memory
from stores.conftest import BackendSpec, make_spec

from threadline.llama_index import ThreadlineChatStore, ThreadlineDBChatStore


def tokenizer(text: str) -> list[str]:
    return text.split()


@pytest.fixture(params=["memory", "sqlite", "postgresql", "redis"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendSpec]:
    spec = make_spec(request.param, tmp_path)
    yield spec
    spec.cleanup()


@pytest.fixture
def chat_store(spec: BackendSpec) -> ThreadlineChatStore:
    return ThreadlineChatStore(spec.open())


@pytest.fixture
def db_chat_store(spec: BackendSpec) -> ThreadlineDBChatStore:
    return ThreadlineDBChatStore(spec.open())


# -- test_simple_chat_store.py ------------------------------------------------------------


def test_add_messages(chat_store: ThreadlineChatStore) -> None:
    """Test adding messages to a chat store."""
    chat_store.add_message("user1", ChatMessage(role="user", content="hello"))
    chat_store.add_message("user1", ChatMessage(role="user", content="world"))
    chat_store.add_message("user2", ChatMessage(role="user", content="hello"))
    chat_store.add_message("user2", ChatMessage(role="user", content="world"))

    assert chat_store.get_messages("user1") == [
        ChatMessage(role="user", content="hello"),
        ChatMessage(role="user", content="world"),
    ]
    assert chat_store.get_messages("user2") == [
        ChatMessage(role="user", content="hello"),
        ChatMessage(role="user", content="world"),
    ]

    assert chat_store.get_keys() == ["user1", "user2"]

    chat_store.add_message("user1", ChatMessage(role="user", content="hello"), idx=0)
    assert chat_store.get_messages("user1") == [
        ChatMessage(role="user", content="hello"),
        ChatMessage(role="user", content="hello"),
        ChatMessage(role="user", content="world"),
    ]


def test_delete_chat_messages(chat_store: ThreadlineChatStore) -> None:
    """Test deleting messages from a chat store."""
    chat_store.add_message("user1", ChatMessage(role="user", content="hello"))
    chat_store.add_message("user1", ChatMessage(role="user", content="world"))
    chat_store.add_message("user2", ChatMessage(role="user", content="hello"))
    chat_store.add_message("user2", ChatMessage(role="user", content="world"))

    chat_store.delete_messages("user1")

    assert chat_store.get_messages("user1") == []
    assert chat_store.get_messages("user2") == [
        ChatMessage(role="user", content="hello"),
        ChatMessage(role="user", content="world"),
    ]


def test_delete_chat_message(chat_store: ThreadlineChatStore) -> None:
    """Test undoing messages from a chat store."""
    chat_store.add_message("user1", ChatMessage(role="user", content="hello"))
    chat_store.add_message("user1", ChatMessage(role="user", content="world"))

    chat_store.delete_last_message("user1")

    assert chat_store.get_messages("user1") == [
        ChatMessage(role="user", content="hello"),
    ]


def test_delete_chat_message_idx(chat_store: ThreadlineChatStore) -> None:
    """Test undoing messages from a chat store at a specific idx."""
    chat_store.add_message("user1", ChatMessage(role="user", content="hello"))
    chat_store.add_message("user1", ChatMessage(role="user", content="world"))

    chat_store.delete_message("user1", 0)

    assert chat_store.get_messages("user1") == [
        ChatMessage(role="user", content="world"),
    ]


def test_delete_chat_message_out_of_bounds(chat_store: ThreadlineChatStore) -> None:
    """Test deleting a message with an out-of-bounds negative index."""
    chat_store.add_message("user1", ChatMessage(role="user", content="hello"))

    assert chat_store.delete_message("user1", -2) is None
    assert chat_store.get_messages("user1") == [
        ChatMessage(role="user", content="hello"),
    ]


def test_delete_last_chat_message_from_empty_history(
        chat_store: ThreadlineChatStore) -> None:
    """Test deleting the last message from an existing empty history."""
    message = ChatMessage(role="user", content="hello")
    chat_store.add_message("user1", message)

    assert chat_store.delete_last_message("user1") == message
    assert chat_store.delete_last_message("user1") is None


def test_non_ascii_stored_unescaped(chat_store: ThreadlineChatStore) -> None:
    """Non-ASCII content is kept as is (upstream: persisted unescaped)."""
    chat_store.add_message("user1", ChatMessage(role="user", content="ハロー héllo"))

    assert chat_store.store.get_messages("user1")[0].content == "ハロー héllo"
    assert ThreadlineChatStore(chat_store.store).get_messages("user1") == [
        ChatMessage(role="user", content="ハロー héllo"),
    ]
    assert chat_store.to_dict()["class_name"] == "ThreadlineChatStore"


# -- test_chat_memory_buffer.py -----------------------------------------------------------

USER_CHAT_MESSAGE = ChatMessage(role=MessageRole.USER, content="first message")
USER_CHAT_MESSAGE_TOKENS = len(tokenizer(str(USER_CHAT_MESSAGE.content)))
SECOND_USER_CHAT_MESSAGE = ChatMessage(role=MessageRole.USER, content="second message")
SECOND_USER_CHAT_MESSAGE_TOKENS = len(tokenizer(str(SECOND_USER_CHAT_MESSAGE.content)))
ASSISTANT_CHAT_MESSAGE = ChatMessage(role=MessageRole.ASSISTANT, content="first answer")
ASSISTANT_CHAT_MESSAGE_TOKENS = len(tokenizer(str(ASSISTANT_CHAT_MESSAGE.content)))
SECOND_ASSISTANT_CHAT_MESSAGE = ChatMessage(role=MessageRole.USER, content="second answer")
SECOND_ASSISTANT_CHAT_MESSAGE_TOKENS = len(
    tokenizer(str(SECOND_ASSISTANT_CHAT_MESSAGE.content)))


def _memory(chat_store: ThreadlineChatStore, **kwargs: object) -> ChatMemoryBuffer:
    return ChatMemoryBuffer.from_defaults(chat_store=chat_store, chat_store_key="buffer",
                                          tokenizer_fn=tokenizer, **kwargs)


def _simple(**kwargs: object) -> ChatMemoryBuffer:
    """The same memory on LlamaIndex's own SimpleChatStore, for comparison."""
    return ChatMemoryBuffer.from_defaults(tokenizer_fn=tokenizer, **kwargs)


def test_put_get(chat_store: ThreadlineChatStore) -> None:
    memory = _memory(chat_store, chat_history=[USER_CHAT_MESSAGE])
    history = memory.get()
    assert len(history) == 1
    assert history[0].content == USER_CHAT_MESSAGE.content


def test_get_when_initial_tokens_less_than_limit_returns_history(
        chat_store: ThreadlineChatStore) -> None:
    memory = _memory(chat_store, token_limit=1000, chat_history=[USER_CHAT_MESSAGE])
    history = memory.get(initial_token_count=5)
    assert len(history) == 1
    assert history[0] == USER_CHAT_MESSAGE


def test_get_when_initial_tokens_exceed_limit_raises_value_error(
        chat_store: ThreadlineChatStore) -> None:
    initial_tokens = 50
    memory = _memory(chat_store, token_limit=initial_tokens - 1)
    with pytest.raises(ValueError) as error:
        memory.get(initial_token_count=initial_tokens)
    assert str(error.value) == "Initial token count exceeds token limit"


def test_get_when_initial_tokens_same_as_limit_removes_message(
        chat_store: ThreadlineChatStore) -> None:
    initial_tokens = 5
    memory = _memory(chat_store, token_limit=initial_tokens,
                     chat_history=[USER_CHAT_MESSAGE])
    # upstream expects [], but 0.14.25 returns the last message when none fits (the
    # same with its SimpleChatStore, checked here)
    assert memory.get(initial_token_count=initial_tokens) == _simple(
        token_limit=initial_tokens, chat_history=[USER_CHAT_MESSAGE]).get(
        initial_token_count=initial_tokens) == [USER_CHAT_MESSAGE]


def test_get_when_space_for_assistant_message_removes_assistant_message_at_start_of_history(
        chat_store: ThreadlineChatStore) -> None:
    token_limit = 5
    initial_tokens = token_limit - USER_CHAT_MESSAGE_TOKENS
    memory = _memory(chat_store, token_limit=token_limit,
                     chat_history=[USER_CHAT_MESSAGE, ASSISTANT_CHAT_MESSAGE])
    # as above: upstream expects [], 0.14.25 (with SimpleChatStore too) the last message
    assert memory.get(initial_token_count=initial_tokens) == _simple(
        token_limit=token_limit, chat_history=[USER_CHAT_MESSAGE, ASSISTANT_CHAT_MESSAGE]
    ).get(initial_token_count=initial_tokens) == [ASSISTANT_CHAT_MESSAGE]


def test_get_when_space_for_second_message_and_answer_removes_only_first_message_and_answer(
        chat_store: ThreadlineChatStore) -> None:
    token_limit = 5
    initial_tokens = token_limit - USER_CHAT_MESSAGE_TOKENS - ASSISTANT_CHAT_MESSAGE_TOKENS
    memory = _memory(chat_store, token_limit=token_limit, chat_history=[
        USER_CHAT_MESSAGE, ASSISTANT_CHAT_MESSAGE, SECOND_USER_CHAT_MESSAGE,
        SECOND_ASSISTANT_CHAT_MESSAGE])
    history = memory.get(initial_token_count=initial_tokens)
    assert len(history) == 2
    assert history[0] == SECOND_USER_CHAT_MESSAGE
    assert history[1] == SECOND_ASSISTANT_CHAT_MESSAGE


def test_get_when_space_for_all_but_first_message_removes_first_message_and_answer(
        chat_store: ThreadlineChatStore) -> None:
    token_limit = 10
    history_tokens = (ASSISTANT_CHAT_MESSAGE_TOKENS + USER_CHAT_MESSAGE_TOKENS
                      + SECOND_ASSISTANT_CHAT_MESSAGE_TOKENS)
    initial_tokens = token_limit - history_tokens
    memory = _memory(chat_store, token_limit=token_limit, chat_history=[
        USER_CHAT_MESSAGE, ASSISTANT_CHAT_MESSAGE, SECOND_USER_CHAT_MESSAGE,
        SECOND_ASSISTANT_CHAT_MESSAGE])
    history = memory.get(initial_token_count=initial_tokens)
    assert len(history) == 2
    assert history[0] == SECOND_USER_CHAT_MESSAGE
    assert history[1] == SECOND_ASSISTANT_CHAT_MESSAGE


def test_set(chat_store: ThreadlineChatStore) -> None:
    memory = _memory(chat_store, chat_history=[USER_CHAT_MESSAGE])
    memory.put(USER_CHAT_MESSAGE)
    assert len(memory.get()) == 2
    memory.set([USER_CHAT_MESSAGE])
    assert len(memory.get()) == 1


def test_max_tokens(chat_store: ThreadlineChatStore) -> None:
    memory = _memory(chat_store, chat_history=[USER_CHAT_MESSAGE], token_limit=5)
    memory.put(USER_CHAT_MESSAGE)
    assert len(memory.get()) == 2
    # do we limit properly
    memory.put(USER_CHAT_MESSAGE)
    memory.put(USER_CHAT_MESSAGE)
    assert len(memory.get()) == 2
    # does get_all work
    assert len(memory.get_all()) == 4
    # does get return in the correct order?
    memory.put(ChatMessage(role=MessageRole.USER, content="test message2"))
    assert memory.get()[-1].content == "test message2"
    assert len(memory.get()) == 2


# -- test_memory_custom_chat_store.py -----------------------------------------------------


def test_memory_accepts_custom_chat_store(db_chat_store: ThreadlineDBChatStore) -> None:
    """Memory should accept any AsyncDBChatStore, not just SQLAlchemyChatStore."""
    memory = Memory(token_limit=1000, session_id="test_user", sql_store=db_chat_store,
                    tokenizer_fn=tokenizer)

    asyncio.run(memory.aput_messages([
        ChatMessage(role="user", content="Message 1"),
        ChatMessage(role="assistant", content="Response 1"),
    ]))

    messages = asyncio.run(memory.aget())
    assert [message.content for message in messages] == ["Message 1", "Response 1"]
    assert memory.sql_store is db_chat_store
    assert len(db_chat_store.store.get_messages("test_user")) == 2


def test_from_defaults_with_custom_chat_store(db_chat_store: ThreadlineDBChatStore) -> None:
    """from_defaults should use the given chat store instead of building a SQL one."""
    memory = Memory.from_defaults(
        session_id="test_user", token_limit=1000, tokenizer_fn=tokenizer,
        chat_history=[ChatMessage(role="user", content="Seeded")],
        chat_store=db_chat_store)

    assert memory.sql_store is db_chat_store
    messages = asyncio.run(memory.aget())
    assert [message.content for message in messages] == ["Seeded"]


def test_waterfall_archives_into_custom_chat_store(
        db_chat_store: ThreadlineDBChatStore) -> None:
    """Flushed messages are archived through the custom store."""
    memory = Memory(token_limit=1000, token_flush_size=700, chat_history_token_ratio=0.9,
                    session_id="test_user", sql_store=db_chat_store, tokenizer_fn=tokenizer)

    asyncio.run(memory.aput_messages([
        ChatMessage(role="user", content="x " * 500),
        ChatMessage(role="assistant", content="y " * 500),
        ChatMessage(role="user", content="z " * 500),
    ]))

    messages = asyncio.run(memory.aget())
    assert len(messages) == 1
    assert "z " in str(messages[0].content)
    from llama_index.core.storage.chat_store.base_db import MessageStatus
    archived = asyncio.run(db_chat_store.get_messages("test_user",
                                                      status=MessageStatus.ARCHIVED))
    assert len(archived) == 2


def test_sync_put_works_across_event_loops(db_chat_store: ThreadlineDBChatStore) -> None:
    """The sync wrappers spin up a fresh event loop per call."""
    memory = Memory(token_limit=1000, session_id="loop_user", sql_store=db_chat_store,
                    tokenizer_fn=tokenizer)

    memory.put(ChatMessage(role="user", content="one"))
    memory.put(ChatMessage(role="user", content="two"))

    assert [m.content for m in memory.get_all()] == ["one", "two"]
