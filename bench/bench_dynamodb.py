"""DynamoDB: threadline's store vs langchain-community's DynamoDBChatMessageHistory on moto.

Both run against the same moto server (tests/stores/dynamo_server.py: moto in server
mode on 127.0.0.1, requests serialised as the real service applies them atomically), in
one run. An emulator's absolute figures say nothing about AWS; the ratios, and the
number of requests behind them, are the point.

* Per-turn latency: a history object made per turn (as RunnableWithMessageHistory does),
  read the last 20 messages, append a question and an answer. threadline: one Query
  (Limit 21) + one TransactWriteItems. LangChain: a boto3 resource per object, GetItem
  of the whole session, then add_messages does GetItem again + UpdateItem of the whole
  list. At 20 and 300 stored messages (LangChain's item grows with the session).
* 8 writers: 8 threads appending 15 turns each to ONE session; turns per second and
  messages lost (LangChain rewrites the whole item without a condition).

moto copies the whole table on every TransactWriteItems (to roll back a failed one), so
threadline's appends get slower as the emulator's table grows: an artifact the real
service does not have (it bills a transactional write as two writes instead).

    python bench/bench_dynamodb.py
"""

from __future__ import annotations

import secrets
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from _util import fmt_ms, fmt_ratio, print_table

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*langchain-community.*")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "stores"))

from dynamo_server import KEY_ID, REGION, SECRET, MotoServer  # noqa: E402

LAST = 20
SIZES = (20, 300)
TURNS = 25
WRITERS = 8
WRITER_TURNS = 15
QUESTION = "What did we decide about the quarterly roadmap and who owns the next step?"
ANSWER = ("We agreed to ship the importer first, then the export API; Dana owns the "
          "migration plan and reports back on Friday.")


def _median_ms(times: list[float]) -> float:
    return statistics.median(times)


def main() -> int:
    try:
        import boto3
        from langchain_community.chat_message_histories import (
            DynamoDBChatMessageHistory as LcHistory,
        )
        from langchain_core.messages import AIMessage as LcAI
        from langchain_core.messages import HumanMessage as LcHuman
    except ImportError as exc:
        print(f"not available: {exc} (pip install -e '.[dynamodb,bench,dev]')")
        return 0

    from threadline import AIMessage, HumanMessage
    from threadline.stores import DynamoDBStore, open_store

    server = MotoServer().start()
    session = boto3.session.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                                    region_name=REGION)
    client = session.client("dynamodb", endpoint_url=server.endpoint)
    lc_table = f"lc_{secrets.token_hex(4)}"
    client.create_table(TableName=lc_table, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "SessionId", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "SessionId",
                                               "AttributeType": "S"}])
    store = open_store(server.url(f"tl_{secrets.token_hex(4)}"))
    assert isinstance(store, DynamoDBStore)
    store.setup()

    def lc_history(sid: str) -> LcHistory:
        return LcHistory(table_name=lc_table, session_id=sid, endpoint_url=server.endpoint,
                         boto3_session=session)

    def timed(turn: Callable[[], None], runs: int) -> list[float]:
        out = []
        for _ in range(runs):
            start = time.perf_counter()
            turn()
            out.append(time.perf_counter() - start)
        return out

    rows = []
    opened = [store]
    try:
        for size in SIZES:
            sid = f"lat-{size}"
            filler = [m for i in range(size // 2)
                      for m in (HumanMessage(f"{i} {QUESTION}"), AIMessage(f"{i} {ANSWER}"))]
            store.append(sid, filler)
            lc_history(sid).add_messages(
                [LcHuman(m.text) if m.type == "human" else LcAI(m.text) for m in filler])

            def tl_turn(sid: str = sid) -> None:
                history = store.history(sid)
                history.get_messages(last=LAST)
                history.add_messages([HumanMessage(QUESTION), AIMessage(ANSWER)])

            def lc_turn(sid: str = sid) -> None:
                history = lc_history(sid)
                _ = history.messages[-LAST:]  # it has no "last N": it reads all
                history.add_messages([LcHuman(QUESTION), LcAI(ANSWER)])

            tl_turn(), lc_turn()  # warm up (clients, connections)
            tl = _median_ms(timed(tl_turn, TURNS))
            lc = _median_ms(timed(lc_turn, TURNS))
            rows.append([f"turn at {size} messages", fmt_ms(tl), fmt_ms(lc), fmt_ratio(lc, tl)])

        def race(append: Callable[[int, int], None]) -> float:
            barrier = threading.Barrier(WRITERS + 1)

            def writer(w: int) -> None:
                barrier.wait()
                for i in range(WRITER_TURNS):
                    append(w, i)

            threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
            for thread in threads:
                thread.start()
            barrier.wait()
            start = time.perf_counter()
            for thread in threads:
                thread.join()
            return time.perf_counter() - start

        # A table of its own: moto copies the whole table on every TransactWriteItems
        # (to roll back on failure), a cost the real service does not have.
        race_store = open_store(server.url(f"tl_race_{secrets.token_hex(4)}"))
        opened.append(race_store)
        race_store.setup()

        def tl_append(w: int, i: int) -> None:
            race_store.history("race").add_messages([HumanMessage(f"{w}:{i}"),
                                                     AIMessage("a")])

        def lc_append(w: int, i: int) -> None:
            lc_history("race").add_messages([LcHuman(f"{w}:{i}"), LcAI("a")])

        total = WRITERS * WRITER_TURNS
        tl_s, lc_s = race(tl_append), race(lc_append)
        tl_kept = len(race_store.get_messages("race"))
        lc_kept = len(lc_history("race").messages)
        rows.append([f"{WRITERS} writers, one session (turns/s)", f"{total / tl_s:,.0f}",
                     f"{total / lc_s:,.0f}", fmt_ratio(lc_s, tl_s)])
        rows.append(["  messages kept of " + str(total * 2), str(tl_kept), str(lc_kept), ""])
        print_table(f"DynamoDB on moto ({server.endpoint}), ms per turn (median of {TURNS})",
                    ["case", "threadline", "LangChain", "LangChain / threadline"], rows)
        print("\nEmulator figures: compare the ratios, not the milliseconds.")
    finally:
        for each in opened:
            each.destroy()  # type: ignore[attr-defined]
            each.close()
        client.delete_table(TableName=lc_table)
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
