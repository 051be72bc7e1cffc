"""Failure scenarios the SQL-server backends share: each test module runs them against
its own private server or closed port."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import pytest

from threadline import AIMessage, HumanMessage, StoreConnectionError
from threadline.stores import Store, open_store


def turn(n: int) -> list[HumanMessage | AIMessage]:
    return [HumanMessage(f"q{n}"), AIMessage(f"a{n}")]


def contents(messages: list[object]) -> list[str]:
    return [m.content for m in messages]  # type: ignore[attr-defined]


def server_down_at_start(url: str) -> str:
    """A store on a closed port fails within its connect timeout, sync and async, and the
    error never shows the password; returns the sync error's text."""
    store = open_store(url)  # lazy: opening never blocks
    started = time.monotonic()
    with pytest.raises(StoreConnectionError) as info:
        store.append("s", turn(1))
    assert time.monotonic() - started < 4
    assert "pw-secret" not in str(info.value)

    async def main() -> None:
        with pytest.raises(StoreConnectionError):
            await store.aget_messages("s")

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 4
    store.close()
    return str(info.value)


def restart_mid_conversation(store: Store, restart: Callable[[], None]) -> None:
    """Restarts between sync writes, before a read and inside one event loop: every call
    reconnects, nothing is lost or duplicated."""
    store.append("conv", turn(1))
    assert contents(store.get_messages("conv")) == ["q1", "a1"]
    asyncio.run(store.aappend("conv", turn(2)))

    restart()
    store.append("conv", turn(3))  # the dead pooled connection is replaced
    assert contents(store.get_messages("conv")) == ["q1", "a1", "q2", "a2", "q3", "a3"]

    restart()
    assert contents(store.get_messages("conv", last=2)) == ["q3", "a3"]  # read first

    async def async_turns() -> list[str]:
        await store.aappend("conv", turn(4))
        restart()  # blocking on purpose: nothing else runs here
        await store.aappend("conv", turn(5))
        return contents(await store.aget_messages("conv"))

    assert asyncio.run(async_turns()) == [f"{k}{i}" for i in range(1, 6) for k in "qa"]
    info = store.session_info("conv")
    assert info is not None and info.message_count == 10


def langchain_drop_in_scenario(make: Callable[[str], object]) -> None:
    """A ``threadline.langchain`` drop-in history inside LangChain's own
    RunnableWithMessageHistory and ConversationBufferMemory; ``make(session_id)``
    builds the history, as a LangChain app's factory would."""
    import warnings

    from langchain_classic.memory import ConversationBufferMemory
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.messages import HumanMessage as LcHuman
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables.history import RunnableWithMessageHistory

    chain = RunnableWithMessageHistory(
        ChatPromptTemplate.from_messages([("placeholder", "{h}"), ("human", "{q}")])
        | FakeListChatModel(responses=["one", "two"]), make,
        input_messages_key="q", history_messages_key="h")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LangChain marks these classes deprecated
        for question in ("a", "b"):
            chain.invoke({"q": question}, config={"configurable": {"session_id": "s1"}})
        memory = ConversationBufferMemory(chat_memory=make("s2"))
        memory.save_context({"input": "hi"}, {"output": "hello"})
        assert memory.load_memory_variables({})["history"] == "Human: hi\nAI: hello"
    messages = make("s1").messages  # type: ignore[attr-defined]
    assert [m.content for m in messages] == ["a", "one", "b", "two"]
    assert isinstance(messages[0], LcHuman)


#: Rows another writer could have left in a store: (label, raw stored text). Each one must
#: make a read fail with MessageFormatError naming the session and position, and a read
#: with skip_invalid=True return every other message.
POISON: list[tuple[str, str]] = [
    ("not JSON", "{not json"),
    ("nested 100,000 deep", '{"type":"human","data":{"content":' + "[" * 100_000
     + "]" * 100_000 + "}}"),
    ("a JSON list", "[1, 2, 3]"),
    ("unknown type without content", '{"type":"mystery","data":{}}'),
    ("tool_calls not a list", '{"type":"ai","data":{"content":"x","tool_calls":"boom"}}'),
    ("tool_calls of strings", '{"type":"ai","data":{"content":"x","tool_calls":["a","b"]}}'),
    ("tool call without args dict",
     '{"type":"ai","data":{"content":"x","tool_calls":[{"name":"f","args":[1]}]}}'),
    ("content a number", '{"type":"human","data":{"content":42}}'),
    ("content blocks of numbers", '{"type":"human","data":{"content":[1,2]}}'),
    ("additional_kwargs a list", '{"type":"human","data":{"content":"x","additional_kwargs":[1]}}'),
    ("id a number", '{"type":"human","data":{"content":"x","id":7}}'),
    ("name a dict", '{"type":"human","data":{"content":"x","name":{"a":1}}}'),
    ("id a list", '{"type":"ai","data":{"content":"x","id":["a"]}}'),
    ("tool message without tool_call_id", '{"type":"tool","data":{"content":"x"}}'),
    ("data not a dict", '{"type":"human","data":"x"}'),
]


def poisoned_rows_scenario(store: Store, insert_raw: Callable[[str, list[str]], None]) -> None:
    """For each poisoned row: a session holding a good turn, the row, and another good
    turn, written raw with ``insert_raw(session_id, [encoded rows...])`` in that order.

    A plain read raises MessageFormatError naming the session and the bad row's position
    (from the start, and counted back from the newest for ``last=``), sync and async; a
    read with ``skip_invalid=True`` returns the four good messages with one
    SkippedMessageWarning; the store stays usable (appends after the bad row work)."""
    import warnings

    from threadline import MessageFormatError, SkippedMessageWarning
    from threadline.stores._base import encode_message

    good = [encode_message(m) for m in turn(1)], [encode_message(m) for m in turn(2)]
    for n, (label, row) in enumerate(POISON):
        sid = f"poison-{n}"
        insert_raw(sid, [*good[0], row, *good[1]])
        with pytest.raises(MessageFormatError) as info:
            store.get_messages(sid)
        assert info.value.session_id == sid and info.value.position == 2, label
        assert sid in str(info.value) and "message 2" in str(info.value), label
        with pytest.raises(MessageFormatError) as info:
            store.get_messages(sid, last=3)
        assert info.value.position == -3, label
        with pytest.raises(MessageFormatError):
            asyncio.run(store.aget_messages(sid))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            kept = store.get_messages(sid, skip_invalid=True)
        assert contents(kept) == ["q1", "a1", "q2", "a2"], label
        skipped = [w for w in caught if issubclass(w.category, SkippedMessageWarning)]
        assert len(skipped) == 1, label
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            kept = asyncio.run(store.aget_messages(sid, skip_invalid=True))
        assert contents(kept) == ["q1", "a1", "q2", "a2"], label
        store.append(sid, turn(3))
        assert contents(store.get_messages(sid, last=2)) == ["q3", "a3"]


class StallingProxy:
    """A TCP proxy on 127.0.0.1 that forwards to ``(host, port)`` until :meth:`stall`:
    then it keeps every connection open and accepts new ones, but forwards nothing (a
    network partition or a stalled proxy, as a client sees it). ``resume()`` undoes it."""

    def __init__(self, host: str, port: int) -> None:
        import socket
        import threading

        self.target = (host, port)
        self.stalled = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            if self.stalled.is_set():
                continue  # accepted, never answered
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self._sockets.append(server)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: object, sink: object) -> None:
        import socket

        assert isinstance(source, socket.socket) and isinstance(sink, socket.socket)
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                while self.stalled.is_set() and not self._closed:
                    time.sleep(0.05)  # hold the bytes: the other side sees silence
                if self._closed:
                    break
                sink.sendall(data)
        except OSError:
            pass

    def stall(self) -> None:
        self.stalled.set()

    def resume(self) -> None:
        self.stalled.clear()

    def close(self) -> None:
        self._closed = True
        self.stalled.clear()
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def setup_concurrently(stores: list[Store]) -> None:
    """Run every store's ``setup()`` at once (one thread each, released together) and
    fail with what any of them raised: a migration must survive racing processes."""
    import threading

    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def setup(store: Store) -> None:
        barrier.wait()
        try:
            store.setup()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=setup, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
