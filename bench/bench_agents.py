"""One OpenAI Agents SDK turn on SQLite: the SDK's own ``SQLiteSession`` vs ``ThreadlineSession``.

A turn is what ``Runner.run(agent, input, session=...)`` asks of its session: read the
last 20 items (``get_items(limit=20)``), then append the new user item and the model's
answer (``add_items`` of 2 items). Each session starts with 1,000 items (user messages and
model answers as the SDK stores them: ``{"role": "user", "content": ...}`` and a dumped
``ResponseOutputMessage`` with its id, status and ``output_text`` part).

Both sides keep a file database with the same durability: WAL and ``synchronous=NORMAL``
(``SQLiteSession`` switches to WAL itself and leaves SQLite's default ``FULL``; here a
subclass adds ``NORMAL`` on each of its connections, which is what threadline's SQLite store
uses). The sides run in the same process and event loop, in alternating rounds, and every
figure is the median of all their turns.

A second table: threadline's SQLite store itself, one turn (``get_messages(last=20)`` +
``append`` of 2 messages) through its sync API and through its async API
(``aget_messages`` + ``aappend``), for the issue's "async path <= 1.5x sync" target.

    python bench/bench_agents.py              # tables and targets
    python bench/bench_agents.py --strict     # exit 1 if a target is missed
    python bench/bench_agents.py --turns 500  # turns per side per round (default 1000)
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _util import Target, finish, fmt_ratio, fmt_us, median, print_table

STORED = 1000
WINDOW = 20
ROUNDS = 5
QUESTION = "What is the capital of France, and what is it famous for?"
ANSWER = ("Paris is the capital of France, famous for the Eiffel Tower, the Louvre, "
          "its cafes, fashion houses and long history.")


def user_item(n: int) -> dict[str, Any]:
    return {"role": "user", "content": f"{QUESTION} ({n})"}


def answer_item(n: int) -> dict[str, Any]:
    """A model answer as the SDK stores it (``ResponseOutputMessage.model_dump``)."""
    return {"id": f"msg_{uuid.uuid4().hex}", "content": [
        {"annotations": [], "text": f"{ANSWER} ({n})", "type": "output_text", "logprobs": []}],
        "role": "assistant", "status": "completed", "type": "message"}


def seed_items() -> list[dict[str, Any]]:
    return [user_item(n) if n % 2 == 0 else answer_item(n) for n in range(STORED)]


def sdk_session(path: Path) -> Any:
    from agents import SQLiteSession

    class NormalSQLiteSession(SQLiteSession):
        """``SQLiteSession`` with ``synchronous=NORMAL``, threadline's durability."""

        @staticmethod
        def _configure_connection(conn: sqlite3.Connection) -> None:
            SQLiteSession._configure_connection(conn)
            conn.execute("PRAGMA synchronous = NORMAL")

    return NormalSQLiteSession("bench", path)


def check_pragmas(path: Path, url_path: Path) -> list[str]:
    """The journal mode and synchronous level each side's connections run with."""
    rows = []
    sdk = sdk_session(path)
    conn = sdk._get_connection()
    rows.append(f"SQLiteSession: journal_mode={conn.execute('PRAGMA journal_mode').fetchone()[0]}"
                f", synchronous={conn.execute('PRAGMA synchronous').fetchone()[0]}")
    sdk.close()
    from threadline import open_store

    store = open_store(f"sqlite:///{url_path}")
    store.get_messages("x")
    with store._connection() as conn:  # type: ignore[attr-defined]
        rows.append(f"threadline:    journal_mode="
                    f"{conn.execute('PRAGMA journal_mode').fetchone()[0]}, "
                    f"synchronous={conn.execute('PRAGMA synchronous').fetchone()[0]}")
    store.close()
    return rows


async def timed_turns(turn: Callable[[int], Awaitable[None]], turns: int,
                      start: int) -> list[float]:
    clock = time.perf_counter
    times = []
    for n in range(start, start + turns):
        began = clock()
        await turn(n)
        times.append(clock() - began)
    return times


async def sessions_table(directory: Path, turns: int) -> tuple[float, float]:
    from threadline.agents import ThreadlineSession

    sdk = sdk_session(directory / "sdk.db")
    ours = ThreadlineSession(f"sqlite:///{directory / 'threadline.db'}", "bench")
    seed = seed_items()
    await sdk.add_items(seed)
    await ours.add_items(seed)
    assert await ours.get_items(limit=WINDOW) == await sdk.get_items(limit=WINDOW)

    def turn_of(session: Any) -> Callable[[int], Awaitable[None]]:
        async def turn(n: int) -> None:
            history = await session.get_items(limit=WINDOW)
            assert len(history) == WINDOW
            await session.add_items([user_item(n), answer_item(n)])
        return turn

    sides = {"SQLiteSession (agents)": turn_of(sdk), "ThreadlineSession": turn_of(ours)}
    times: dict[str, list[float]] = {name: [] for name in sides}
    for turn in sides.values():  # warm-up: connections, statement caches
        await timed_turns(turn, 50, 0)
    for round_ in range(ROUNDS):
        for name, turn in sides.items():
            times[name] += await timed_turns(turn, turns, (round_ + 1) * turns)
    sdk.close()
    ours.store.close()
    medians = {name: median(values) for name, values in times.items()}
    print_table(
        f"One Agents SDK turn: get_items(limit={WINDOW}) + add_items(2 items), "
        f"{STORED:,} items stored, SQLite file (WAL, synchronous=NORMAL); "
        f"median of {ROUNDS} x {turns} turns",
        ["session", "µs per turn", "vs ThreadlineSession"],
        [[name, fmt_us(value), fmt_ratio(value, medians["ThreadlineSession"])]
         for name, value in medians.items()])
    return medians["SQLiteSession (agents)"], medians["ThreadlineSession"]


async def store_table(directory: Path, turns: int) -> tuple[float, float]:
    from threadline import AIMessage, HumanMessage, open_store

    store = open_store(f"sqlite:///{directory / 'store.db'}")
    store.append("bench", [HumanMessage(f"{QUESTION} ({n})", id=uuid.uuid4().hex)
                           if n % 2 == 0 else AIMessage(f"{ANSWER} ({n})", id=uuid.uuid4().hex)
                           for n in range(STORED)])

    def pair(n: int) -> list[Any]:
        return [HumanMessage(f"{QUESTION} ({n})", id=uuid.uuid4().hex),
                AIMessage(f"{ANSWER} ({n})", id=uuid.uuid4().hex)]

    def sync_turn(n: int) -> None:
        store.get_messages("bench", last=WINDOW)
        store.append("bench", pair(n))

    async def async_turn(n: int) -> None:
        await store.aget_messages("bench", last=WINDOW)
        await store.aappend("bench", pair(n))

    async def sync_as_async(n: int) -> None:
        sync_turn(n)

    sides = {"sync (get_messages + append)": sync_as_async,
             "async (aget_messages + aappend)": async_turn}
    times: dict[str, list[float]] = {name: [] for name in sides}
    for turn in sides.values():
        await timed_turns(turn, 50, 0)
    for round_ in range(ROUNDS):
        for name, turn in sides.items():
            times[name] += await timed_turns(turn, turns, (round_ + 1) * turns)
    store.close()
    medians = {name: median(values) for name, values in times.items()}
    sync, async_ = medians.values()
    print_table(
        f"threadline's SQLite store, one turn: last {WINDOW} + append 2, {STORED:,} stored",
        ["path", "µs per turn", "vs sync"],
        [[name, fmt_us(value), fmt_ratio(value, sync)] for name, value in medians.items()])
    return sync, async_


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--turns", type=int, default=1000,
                        help="turns per side per round (default 1000)")
    args = parser.parse_args()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for line in check_pragmas(directory / "p1.db", directory / "p2.db"):
            print(f"  {line}")
        sdk, ours = asyncio.run(sessions_table(directory, args.turns))
        sync, async_ = asyncio.run(store_table(directory, args.turns))
    targets = [
        Target("ThreadlineSession turn <= 150 µs on SQLite", ours <= 150e-6,
               f"{fmt_us(ours)} µs"),
        Target("ThreadlineSession >= 2.5x faster than SQLiteSession", sdk >= 2.5 * ours,
               fmt_ratio(sdk, ours)),
        Target("threadline's async store turn <= 1.5x its sync turn", async_ <= 1.5 * sync,
               fmt_ratio(async_, sync)),
    ]
    return finish(targets, [], time.perf_counter() - began, strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
