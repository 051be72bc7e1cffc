"""SQLite specifics: URL forms, WAL, schema versions, LangChain tables and the
LangChain-shaped SQLChatMessageHistory. The shared behaviour is in test_contract.py."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import threading
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from threadline import (
    AIMessage,
    ConfigurationError,
    HumanMessage,
    InputError,
    SQLChatMessageHistory,
    StoreConnectionError,
    StoreError,
)
from threadline.stores import open_store, shared_store
from threadline.stores._base import encode_message
from threadline.stores.sql._common import table_names
from threadline.stores.sql._sqlite import MIGRATIONS, SQLiteStore

from .scenarios import setup_concurrently


def test_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///rel.db")
    relative.append("s", [HumanMessage("hi")])
    assert (tmp_path / "rel.db").exists()
    absolute = open_store(f"sqlite:///{tmp_path}/abs.db")  # four slashes in all
    absolute.append("s", [HumanMessage("hi")])
    assert (tmp_path / "abs.db").exists()
    for url in ("sqlite://", "sqlite:///:memory:"):
        store = open_store(url)
        assert isinstance(store, SQLiteStore) and store.memory
        store.append("s", [HumanMessage("mem")])
        assert [m.text for m in store.get_messages("s")] == ["mem"]
    for store in (relative, absolute):
        store.close()


def test_bad_urls(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="names a file"):
        open_store("sqlite://somehost/chat.db")
    store = open_store(f"sqlite:///{tmp_path}/missing/dir/chat.db")
    with pytest.raises(StoreConnectionError, match="does not exist"):
        store.get_messages("s")
    with pytest.raises(ConfigurationError, match="timeout"):
        open_store("sqlite://", timeout="-1")


def test_wal_schema_version_and_tables(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = open_store(f"sqlite:///{path}?table=chat")
    store.setup()
    store.setup()  # idempotent
    store.append("s", [HumanMessage("hi")])
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"chat", "chat_sessions", "chat_schema"} <= tables
    assert raw.execute("SELECT version FROM chat_schema").fetchone()[0] == len(MIGRATIONS)
    raw.close()

    other = open_store(f"sqlite:///{path}", table="other")
    assert other.get_messages("s") == []  # tables are separate stores
    other.destroy()
    store.destroy()
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT count(*) FROM sqlite_master WHERE type='table' "
                       "AND name LIKE 'chat%'").fetchone()[0] == 0
    raw.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    open_store(f"sqlite:///{path}").setup()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE threadline_messages_schema SET version = 99")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="upgrade threadline"):
        open_store(f"sqlite:///{path}").get_messages("s")


def test_closed_store_refuses_work() -> None:
    store = open_store("sqlite://")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get_messages("s")


def test_messages_are_stored_as_langchain_json(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    store = open_store(f"sqlite:///{path}")
    store.append("s", [HumanMessage("hi")])
    raw = sqlite3.connect(path)
    (text,) = raw.execute("SELECT message FROM threadline_messages").fetchone()
    raw.close()
    assert text.startswith('{"type":"human","data":{"content":"hi"')


def _langchain_history(session_id: str, url: str) -> object:
    community = pytest.importorskip("langchain_community.chat_message_histories")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return community.SQLChatMessageHistory(session_id, connection=url)


def test_reads_and_extends_a_langchain_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/lc.db"
    theirs = _langchain_history("s1", url)
    theirs.add_user_message("from langchain")  # type: ignore[attr-defined]
    theirs.add_ai_message("answer")  # type: ignore[attr-defined]

    ours = SQLChatMessageHistory("s1", connection=url)
    assert [m.text for m in ours.messages] == ["from langchain", "answer"]
    info = ours.store.session_info("s1")
    assert info is not None and info.message_count == 2  # indexed by the migration
    ours.add_messages([HumanMessage("from threadline"), AIMessage("ok")])

    again = _langchain_history("s1", url)
    assert [m.content for m in again.messages] == [  # type: ignore[attr-defined]
        "from langchain", "answer", "from threadline", "ok"]


def test_sql_chat_message_history_shares_one_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/chat.db"
    first = SQLChatMessageHistory("a", connection=url)
    second = SQLChatMessageHistory("b", connection=url)
    driver = SQLChatMessageHistory("c", connection=url.replace("sqlite:", "sqlite+pysqlite:"))
    assert first.store is second.store is driver.store
    assert first.store is shared_store(url, table="message_store")
    assert SQLChatMessageHistory("a", connection=url, table_name="t2").store is not first.store
    first.add_user_message("hi")
    assert [m.text for m in SQLChatMessageHistory("a", connection=url).messages] == ["hi"]
    assert "chat.db" in repr(first)

    async def run() -> list[str]:
        await second.aadd_messages([HumanMessage("x"), AIMessage("y")])
        return [m.text for m in await second.aget_messages()]

    assert asyncio.run(run()) == ["x", "y"]
    second.clear()
    assert second.messages == []


def test_sql_chat_message_history_arguments(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/chat.db"
    with pytest.warns(DeprecationWarning, match="connection_string"):
        legacy = SQLChatMessageHistory("s", connection_string=url)
    legacy.add_user_message("hi")
    with pytest.raises(InputError, match="custom_message_converter"):
        SQLChatMessageHistory("s", connection=url, custom_message_converter=object())
    with pytest.raises(InputError, match="session_id_field_name"):
        SQLChatMessageHistory("s", connection=url, session_id_field_name="sid")
    with pytest.raises(InputError, match="connection"):
        SQLChatMessageHistory("s")
    with pytest.raises(ConfigurationError, match="SQL database URL"):
        SQLChatMessageHistory("s", connection="redis://localhost:6379/0")
    with pytest.raises(InputError):
        SQLChatMessageHistory("s", connection=url, table_name="bad name")
    with pytest.raises(InputError):
        SQLChatMessageHistory("s", connection=12345)


def test_sql_chat_message_history_from_sqlalchemy_engine(tmp_path: Path) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/engine.db")
    history = SQLChatMessageHistory("s", connection=engine)
    history.add_user_message("via engine")
    same = SQLChatMessageHistory("s", connection=f"sqlite:///{tmp_path}/engine.db")
    assert same.store is history.store
    assert [m.text for m in same.messages] == ["via engine"]
    engine.dispose()


# -- message ids, migrations and limits ---------------------------------------------------------

def _ided(tag: str) -> list[HumanMessage | AIMessage]:
    return [HumanMessage(f"q{tag}", id=f"q{tag}"), AIMessage(f"a{tag}", id=f"a{tag}")]


def test_a_version_1_database_is_migrated_once_by_concurrent_setups(tmp_path: Path) -> None:
    """A database left by threadline's first schema gets its message-id column and
    index from whichever of several processes' setups comes first; its rows stay."""
    path = tmp_path / "chat.db"
    raw = sqlite3.connect(path)
    raw.execute('CREATE TABLE "chat_schema" (id INTEGER PRIMARY KEY CHECK (id = 1), '
                "version INTEGER NOT NULL)")
    MIGRATIONS[0].apply(raw, table_names("chat"))
    raw.execute('INSERT INTO "chat_schema" VALUES (1, 1)')
    raw.execute('INSERT INTO "chat" (session_id, message) VALUES (?, ?)',
                ("old", encode_message(HumanMessage("before"))))
    raw.execute('INSERT INTO "chat_sessions" VALUES (?, 0, 0, NULL, 1)', ("old",))
    raw.commit()
    raw.close()

    stores = [open_store(f"sqlite:///{path}", table="chat") for _ in range(4)]
    setup_concurrently(stores)
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT version FROM chat_schema").fetchone()[0] == len(MIGRATIONS) == 4
    assert "message_id" in [row[1] for row in raw.execute("PRAGMA table_info(chat)")]
    raw.close()
    store = stores[0]
    store.append("old", _ided("1"))
    store.append("old", _ided("1"))
    assert [m.text for m in store.get_messages("old")] == ["before", "q1", "a1"]
    info = store.session_info("old")
    assert info is not None and info.message_count == 3
    for each in stores:
        each.close()



def test_an_oversized_message_is_refused_before_writing(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(f"sqlite:///{tmp_path}/chat.db")
    assert isinstance(store, SQLiteStore) and store.MAX_MESSAGE_BYTES == 1_000_000_000
    monkeypatch.setattr(store, "MAX_MESSAGE_BYTES", 1000)  # SQLite's is 1e9 bytes
    with pytest.raises(InputError, match=r"SQLite's maximum string length \(1,000 bytes\)"):
        store.append("s", [HumanMessage("small"), HumanMessage("é" * 500)])
    assert store.session_info("s") is None  # nothing of the batch was stored
    store.append("s", [HumanMessage("small")])
    assert [m.text for m in store.get_messages("s")] == ["small"]
    store.close()


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_a_database_it_creates_is_private_with_its_wal_files(tmp_path: Path,
                                                             umask: int) -> None:
    path = tmp_path / "chat.db"
    old = os.umask(umask)
    try:
        store = open_store(f"sqlite:///{path}")
        store.append("s", [HumanMessage("secret")])
        other = threading.Thread(target=store.get_messages, args=("s",))  # its own connection
        other.start()
        other.join()
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
        store.close()
    finally:
        os.umask(old)
    assert modes == {"chat.db": 0o600, "chat.db-wal": 0o600, "chat.db-shm": 0o600}


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    sqlite3.connect(path).close()  # an empty database someone else made
    path.chmod(0o640)
    store = open_store(f"sqlite:///{path}")
    store.append("s", [HumanMessage("hi")])
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE(Path(f"{path}-wal").stat().st_mode) == 0o640
    store.close()


def test_a_streamed_read_keeps_memory_flat(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/chat.db")
    messages = [HumanMessage(f"message {i:05d} " + "x" * 100) for i in range(20_000)]
    for start in range(0, len(messages), 5_000):
        store.append("long", messages[start:start + 5_000])

    def peak(read: Callable[[], object]) -> int:
        tracemalloc.start()
        try:
            read()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def count_streamed() -> int:
        return sum(1 for _ in store.iter_messages("long", page_size=200))

    whole = peak(lambda: len(store.get_messages("long")))
    streamed = peak(count_streamed)
    assert count_streamed() == 20_000
    assert streamed * 20 < whole, (streamed, whole)  # a page at a time, not the session
    store.close()
