"""LangGraph checkpointers: ThreadlineSaver next to LangGraph's own SqliteSaver / PostgresSaver.

Two measurements, each side by side in one run:

1. **Time per turn**: one ``put`` (a new checkpoint whose ``messages`` channel changed,
   as a graph step writes it) and one ``get_tuple`` (the latest checkpoint, as the next
   invoke reads it), on a thread whose ``messages`` channel holds 100 messages and grows
   by one per turn. Both savers get the same checkpoints. SQLite: a file in a temporary
   directory for each; PostgreSQL: the local server, LangGraph's tables in a fresh
   schema, threadline's in a fresh table (``--no-postgres`` skips it); also without the
   session mirror (``messages_key=None``), the work LangGraph's savers do.
2. **Bytes per turn**: a real ``StateGraph(MessagesState)`` conversation of ``--turns``
   turns (default 1,000) on SQLite, with ThreadlineSaver(keep_last=10) and SqliteSaver.
   "stored" is the growth over one turn of the payload bytes kept (LangGraph: its
   checkpoint, metadata and write blobs; threadline: its record values and the session's
   messages as JSON), measured at turns 10, 100 and the last; "written" is the payload
   of the rows written in that turn.

    python bench/bench_langgraph.py                # both (about a minute)
    python bench/bench_langgraph.py --turns 200    # a shorter conversation
    python bench/bench_langgraph.py --strict       # exit 1 if a target is missed
"""

from __future__ import annotations

import argparse
import secrets
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from _util import (
    Target,
    fmt_bytes,
    fmt_ratio,
    fmt_us,
    median,
    print_table,
    quiet_langchain,
    report_targets,
    time_repeated,
)

quiet_langchain()

from langchain_core.messages import AIMessage, HumanMessage  # noqa: E402
from langgraph.checkpoint.base import empty_checkpoint  # noqa: E402
from langgraph.checkpoint.base.id import uuid6  # noqa: E402
from langgraph.checkpoint.sqlite import SqliteSaver  # noqa: E402
from langgraph.graph import START, MessagesState, StateGraph  # noqa: E402

from threadline.langgraph import ThreadlineSaver  # noqa: E402
from threadline.stores import open_store  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432/test"
TURNS_TIMED = 100


def _message(i: int) -> Any:
    text = f"message {i}: a sentence of about the length people type in a chat window."
    return HumanMessage(text, id=f"m{i}") if i % 2 == 0 else AIMessage(text, id=f"m{i}")


class Turns:
    """The same sequence of checkpoints for every saver: turn k puts a checkpoint whose
    messages channel holds 100 + k messages, child of the previous one."""

    def __init__(self, saver: Any, thread: str) -> None:
        self.saver = saver
        self.thread = thread
        self.messages = [_message(i) for i in range(100)]
        self.config: dict[str, Any] = {"configurable": {"thread_id": thread,
                                                        "checkpoint_ns": ""}}
        self.versions: dict[str, Any] = {}
        self.turn = 0
        self.put()

    def put(self) -> None:
        self.turn += 1
        self.messages = [*self.messages, _message(100 + self.turn)]
        checkpoint = empty_checkpoint()
        checkpoint["id"] = str(uuid6(clock_seq=-1))
        new = {}
        for channel in ("messages", "step") if self.turn > 1 else (
                "messages", "step", "__start__", "branch:to:model"):
            new[channel] = self.versions[channel] = self.saver.get_next_version(
                self.versions.get(channel), None)
        checkpoint["channel_values"] = {"messages": self.messages, "step": self.turn,
                                        "__start__": {"messages": []},
                                        "branch:to:model": None}
        checkpoint["channel_versions"] = dict(self.versions)
        checkpoint["versions_seen"] = {"model": {"branch:to:model": self.versions.get(
            "branch:to:model", 1)}}
        self.config = self.saver.put(self.config, checkpoint,
                                     {"source": "loop", "step": self.turn, "parents": {}},
                                     new)

    def turn_once(self) -> None:
        self.put()
        got = self.saver.get_tuple({"configurable": {"thread_id": self.thread,
                                                     "checkpoint_ns": ""}})
        assert got is not None and len(got.checkpoint["channel_values"]["messages"]) == len(
            self.messages)


def time_pair(ours: Any, theirs: Any) -> tuple[float, float]:
    """Median seconds per turn of each saver, measured in alternating rounds (so a slow
    spell of the shared machine hits both sides alike)."""
    sides = [Turns(saver, f"bench-{secrets.token_hex(4)}") for saver in (ours, theirs)]
    for turns in sides:
        for _ in range(10):
            turns.turn_once()  # warm up
    samples: list[list[float]] = [[], []]
    for _ in range(TURNS_TIMED // 10):
        for side, turns in enumerate(sides):
            samples[side] += time_repeated(turns.turn_once, min_runs=10, max_runs=10,
                                           budget_s=30)
    return median(samples[0]), median(samples[1])


def speed(tmp: Path, postgres: bool) -> list[Target]:
    rows: list[list[str]] = []
    targets: list[Target] = []
    pairs: list[tuple[str, Any, Any]] = []
    ours_sqlite = ThreadlineSaver(f"sqlite:///{tmp / 'threadline.db'}")
    theirs_sqlite = SqliteSaver(sqlite3.connect(tmp / "langgraph.db", check_same_thread=False))
    theirs_sqlite.setup()
    pairs.append(("SQLite", ours_sqlite, theirs_sqlite))
    cleanup: list[Any] = []
    if postgres:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver

        schema = f"bench_lg_{secrets.token_hex(4)}"
        admin = psycopg.connect(PG, autocommit=True)
        admin.execute(f"CREATE SCHEMA {schema}")
        conn = psycopg.connect(PG, autocommit=True, prepare_threshold=0,
                               options=f"-c search_path={schema}")
        theirs_pg = PostgresSaver(conn)
        theirs_pg.setup()
        ours_pg = ThreadlineSaver(f"{PG}?table=bench_lg_{secrets.token_hex(4)}")
        pairs.append(("PostgreSQL", ours_pg, theirs_pg))
        # LangGraph's savers keep no session: ours without the mirror does the same work
        bare_pg = ThreadlineSaver(ours_pg.store, messages_key=None)
        pairs.append(("PostgreSQL, no session mirror", bare_pg, theirs_pg))
        cleanup = [lambda: ours_pg.store.destroy(),  # type: ignore[attr-defined]
                   lambda: conn.close(),
                   lambda: admin.execute(f"DROP SCHEMA {schema} CASCADE"),
                   lambda: admin.close()]
    try:
        for name, ours, theirs in pairs:
            t_ours, t_theirs = time_pair(ours, theirs)
            rows.append([name, fmt_us(t_ours), fmt_us(t_theirs), fmt_ratio(t_ours, t_theirs)])
            if "mirror" not in name:
                targets.append(Target(
                    f"{name}: put + get_tuple per turn <= 1.0x LangGraph's "
                    f"{type(theirs).__name__}", t_ours <= t_theirs,
                    f"{t_ours / t_theirs:.2f}x"))
    finally:
        for step in cleanup:
            step()
    print_table("put + get_tuple per turn, 100-message thread (µs, median)",
                ["store", "ThreadlineSaver", "LangGraph's saver", "ours / theirs"], rows)
    return targets


def _graph(saver: Any) -> Any:
    def answer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(f"answer {len(state['messages'])}: a sentence of "
                                       "about the length a model answers with in a chat.")]}

    builder = StateGraph(MessagesState)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    return builder.compile(checkpointer=saver)


def _their_bytes(db: sqlite3.Connection) -> int:
    one = db.execute("SELECT coalesce(sum(length(checkpoint) + length(metadata)), 0) "
                     "FROM checkpoints").fetchone()[0]
    two = db.execute("SELECT coalesce(sum(length(value)), 0) FROM writes").fetchone()[0]
    return int(one + two)


def _our_bytes(store: Any, thread: str) -> int:
    from threadline.stores._base import encode_message

    records = sum(len(value) for _, value in store.scan_records(thread))
    return records + sum(len(encode_message(m).encode()) for m in store.get_messages(thread))


def storage(tmp: Path, turns: int) -> list[Target]:
    checkpoints_at = sorted({10, 100, turns} & set(range(1, turns + 1)))
    theirs_conn = sqlite3.connect(tmp / "bytes-langgraph.db", check_same_thread=False)
    theirs = SqliteSaver(theirs_conn)
    store = open_store(f"sqlite:///{tmp / 'bytes-threadline.db'}")
    ours = ThreadlineSaver(store, keep_last=10)
    sides = {"theirs": (_graph(theirs), lambda: _their_bytes(theirs_conn)),
             "ours": (_graph(ours), lambda: _our_bytes(store, "t"))}
    stored: dict[str, dict[int, int]] = {"theirs": {}, "ours": {}}
    written: dict[str, dict[int, int]] = {"theirs": {}, "ours": {}}
    for name, (graph, measure) in sides.items():
        config = {"configurable": {"thread_id": "t"}}
        for turn in range(1, turns + 1):
            if turn in checkpoints_at:
                before = measure()
                before_written = _written(name, theirs_conn, store)
            graph.invoke({"messages": [("user", f"question {turn}: what do you think?")]},
                         config)
            if turn in checkpoints_at:
                stored[name][turn] = measure() - before
                written[name][turn] = _written(name, theirs_conn, store) - before_written
    rows = []
    for turn in checkpoints_at:
        rows.append([f"turn {turn:,}", fmt_bytes(stored["ours"][turn]),
                     fmt_bytes(stored["theirs"][turn]),
                     fmt_ratio(stored["theirs"][turn], max(stored["ours"][turn], 1)),
                     fmt_bytes(written["ours"][turn]), fmt_bytes(written["theirs"][turn])])
    print_table(f"bytes per turn of a {turns:,}-turn conversation, SQLite "
                "(ThreadlineSaver keep_last=10 vs SqliteSaver)",
                ["turn", "ours stored", "theirs stored", "theirs / ours", "ours written",
                 "theirs written"], rows)
    last = checkpoints_at[-1]
    first = checkpoints_at[0]
    return [
        Target(f"bytes stored per turn at turn {last:,} <= 1/5 of SqliteSaver's",
               stored["ours"][last] * 5 <= stored["theirs"][last],
               f"{stored['ours'][last]:,} vs {stored['theirs'][last]:,}"),
        Target(f"bytes stored per turn flat (turn {last:,} <= 2x turn {first})",
               stored["ours"][last] <= 2 * max(stored["ours"][first], 1),
               f"{stored['ours'][first]:,} -> {stored['ours'][last]:,}"),
    ]


_write_totals: dict[str, int] = {}


def _written(name: str, conn: sqlite3.Connection, store: Any) -> int:
    """Payload bytes written so far: SQLite's total_changes does not weigh rows, so the
    savers are wrapped (see main) and count what they hand to the database."""
    return _write_totals.get(name, 0)


def _count_writes() -> None:
    """Count payload bytes written by both savers (wrapping their write methods)."""
    from threadline.stores.sql._sqlite import SQLiteStore

    put_records = SQLiteStore.put_records
    append = SQLiteStore.append

    def counting_put(self: Any, sid: str, records: Any, **kw: Any) -> None:
        _write_totals["ours"] = _write_totals.get("ours", 0) + sum(
            len(v) for v in records.values())
        put_records(self, sid, records, **kw)

    def counting_append(self: Any, sid: str, messages: Any, **kw: Any) -> None:
        from threadline.stores._base import encode_message

        _write_totals["ours"] = _write_totals.get("ours", 0) + sum(
            len(encode_message(m).encode()) for m in messages)
        append(self, sid, messages, **kw)

    SQLiteStore.put_records = counting_put  # type: ignore[method-assign]
    SQLiteStore.append = counting_append  # type: ignore[method-assign]
    put = SqliteSaver.put
    put_writes = SqliteSaver.put_writes

    def their_put(self: Any, config: Any, checkpoint: Any, metadata: Any, new: Any) -> Any:
        _write_totals["theirs"] = _write_totals.get("theirs", 0) + len(
            self.serde.dumps_typed(checkpoint)[1]) + len(self.serde.dumps_typed(metadata)[1])
        return put(self, config, checkpoint, metadata, new)

    def their_writes(self: Any, config: Any, writes: Any, task_id: str, task_path: str = ""
                     ) -> None:
        _write_totals["theirs"] = _write_totals.get("theirs", 0) + sum(
            len(self.serde.dumps_typed(v)[1]) for _, v in writes)
        put_writes(self, config, writes, task_id, task_path)

    SqliteSaver.put = their_put  # type: ignore[method-assign]
    SqliteSaver.put_writes = their_writes  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        targets = speed(Path(tmp), postgres=not args.no_postgres)
        _count_writes()
        targets += storage(Path(tmp), args.turns)
    return report_targets(targets, strict=args.strict)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
