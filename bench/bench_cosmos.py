"""Cosmos DB: threadline's CosmosStore vs LangChain's CosmosDBChatMessageHistory.

Both run on the same local emulator (``@vercel/cosmosdb-server``, started here; run
``npm ci`` first, as ``make test`` does). Emulator figures say nothing absolute about
Azure: compare the ratios.

* per-turn latency: read the last 20 messages of a 40-message session, append a turn
  (2 messages). threadline: one query + one batch; LangChain: a point read of the whole
  session document + one upsert of the whole document per message.
* 8 writers, one session: 8 threads append 10 turns each. Throughput in messages per
  second, and how many messages survived (LangChain's last-writer-wins upsert loses
  them; threadline must keep all 160).

    .venv/bin/python bench/bench_cosmos.py
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from _util import fmt_ratio, median, print_table, quiet_langchain  # noqa: E402

TURNS = 30
WRITERS = 8
WRITER_TURNS = 10


def _threadline(server: Any) -> tuple[Any, Any]:
    from threadline.stores import open_store

    store = open_store(server.url("tl_" + secrets.token_hex(4)))
    store.setup()
    return store, store


def _bench_threadline(server: Any) -> tuple[float, float, int]:
    from threadline import AIMessage, HumanMessage

    store, _ = _threadline(server)
    try:
        store.append("turns", [HumanMessage(f"m{i}") for i in range(40)])
        times = []
        for i in range(TURNS):
            started = time.perf_counter()
            store.get_messages("turns", last=20)
            store.append("turns", [HumanMessage(f"q{i}"), AIMessage(f"a{i}")])
            times.append(time.perf_counter() - started)

        def writer(w: int) -> None:
            for i in range(WRITER_TURNS):
                store.append("race", [HumanMessage(f"w{w}q{i}"), AIMessage(f"w{w}a{i}")])

        elapsed = _race(writer)
        kept = len(store.get_messages("race"))
        return median(times), 2 * WRITERS * WRITER_TURNS / elapsed, kept
    finally:
        store.destroy()
        store.close()


def _bench_langchain(server: Any) -> tuple[float, float, int]:
    from langchain_community.chat_message_histories import CosmosDBChatMessageHistory
    from langchain_core.messages import AIMessage, HumanMessage
    from stores.cosmos_server import KEY

    container = "lc_" + secrets.token_hex(4)

    def history(session: str, user: str = "u") -> Any:
        h = CosmosDBChatMessageHistory(server.endpoint, "bench", container, session, user,
                                       credential=KEY,
                                       cosmos_client_kwargs={"connection_verify": False})
        h.prepare_cosmos()
        return h

    main = history("turns")
    try:
        main.add_messages([HumanMessage(f"m{i}") for i in range(40)])
        times = []
        for i in range(TURNS):
            started = time.perf_counter()
            main.load_messages()
            _ = main.messages[-20:]
            main.add_messages([HumanMessage(f"q{i}"), AIMessage(f"a{i}")])
            times.append(time.perf_counter() - started)

        writers = [history("race") for _ in range(WRITERS)]

        def writer(w: int) -> None:
            h = writers[w]
            for i in range(WRITER_TURNS):
                h.load_messages()  # what a new per-turn object does first
                h.add_messages([HumanMessage(f"w{w}q{i}"), AIMessage(f"w{w}a{i}")])

        elapsed = _race(writer)
        check = history("race")
        return median(times), 2 * WRITERS * WRITER_TURNS / elapsed, len(check.messages)
    finally:
        main._client.get_database_client("bench").delete_container(container)


def _race(writer: Any) -> float:
    barrier = threading.Barrier(WRITERS + 1)

    def run(w: int) -> None:
        barrier.wait()
        writer(w)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def main() -> None:
    quiet_langchain()
    warnings.filterwarnings("ignore")  # urllib3: the emulator's self-signed certificate
    from stores.cosmos_server import CosmosServer

    with CosmosServer() as server:
        tl_turn, tl_rate, tl_kept = _bench_threadline(server)
        lc_turn, lc_rate, lc_kept = _bench_langchain(server)
    total = 2 * WRITERS * WRITER_TURNS
    print_table(
        f"Cosmos DB emulator: {TURNS} turns (median); {WRITERS} writers x {WRITER_TURNS} "
        "turns on one session",
        ["", "threadline", "LangChain", "LangChain / threadline"],
        [
            ["turn: last 20 + append 2", f"{tl_turn * 1000:.1f} ms", f"{lc_turn * 1000:.1f} ms",
             fmt_ratio(lc_turn, tl_turn)],
            ["8 writers: messages/s", f"{tl_rate:.0f}", f"{lc_rate:.0f}",
             fmt_ratio(lc_rate, tl_rate)],
            ["8 writers: messages kept", f"{tl_kept}/{total}", f"{lc_kept}/{total}", ""],
        ],
    )

if __name__ == "__main__":
    main()
