"""Per-turn time of a chain wrapped in RunnableWithMessageHistory: threadline vs LangChain.

The chain is the one the LangChain docs use::

    ChatPromptTemplate.from_messages([("system", ...), ("placeholder", "{chat_history}"),
                                      ("human", "{input}")])
    | FakeListChatModel(responses=[RESPONSE]) | StrOutputParser()

wrapped in ``RunnableWithMessageHistory(..., input_messages_key="input",
history_messages_key="chat_history")`` over an in-memory history pre-filled with N
messages (10, 100, 1000). Each timed turn reads the N stored messages, runs the chain and
stores the new question and answer; after it, outside the timed region, the history is
trimmed back to N so every turn sees the same size. Figures are medians over many turns.

Both sides get the same response text (21 words). Note that LangChain's fake model
streams one character per chunk and threadline's one word per chunk; that is each
library's own fake model, unchanged.

    python bench/bench_wrapper.py             # the table and the targets
    python bench/bench_wrapper.py --profile   # plus a cProfile of threadline at 1000
    python bench/bench_wrapper.py --strict    # exit 1 if a target is missed
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import time
from collections.abc import Callable
from typing import Any

from _util import (
    Target,
    fmt_ratio,
    fmt_us,
    median,
    print_table,
    quiet_langchain,
    report_targets,
    time_repeated,
)

SIZES = (10, 100, 1000)
MODES = ("invoke", "stream", "ainvoke")
SYSTEM = "You are a helpful assistant. Answer in one short paragraph."
QUESTION = "What is the capital of France, and what is it famous for?"
RESPONSE = ("Paris is the capital of France, famous for the Eiffel Tower, the Louvre, "
            "its cafes, fashion houses and long history.")
CONFIG = {"configurable": {"session_id": "bench"}}

# (min turns, max turns, seconds per (size, mode) cell) for each side.
RUNS = {"threadline": (300, 3000, 0.5), "langchain": (15, 300, 2.5)}


def build(side: str, size: int) -> tuple[Any, list[Any]]:
    """The wrapped chain and the stored-messages list its history uses, filled to ``size``."""
    if side == "threadline":
        from threadline import (
            AIMessage,
            ChatPromptTemplate,
            FakeListChatModel,
            HumanMessage,
            InMemoryChatMessageHistory,
            RunnableWithMessageHistory,
            StrOutputParser,
        )
    else:
        from langchain_core.chat_history import InMemoryChatMessageHistory
        from langchain_core.language_models.fake_chat_models import FakeListChatModel
        from langchain_core.messages import AIMessage, HumanMessage
        from langchain_core.output_parsers import StrOutputParser
        from langchain_core.prompts import ChatPromptTemplate
        from langchain_core.runnables.history import RunnableWithMessageHistory

    history = InMemoryChatMessageHistory()
    history.add_messages([
        HumanMessage(f"question {i}: {QUESTION}") if i % 2 == 0
        else AIMessage(f"answer {i}: {RESPONSE}")
        for i in range(size)
    ])
    store = {"bench": history}
    prompt = ChatPromptTemplate.from_messages(
        [("system", SYSTEM), ("placeholder", "{chat_history}"), ("human", "{input}")]
    )
    chain = prompt | FakeListChatModel(responses=[RESPONSE]) | StrOutputParser()
    wrapped = RunnableWithMessageHistory(
        chain,
        lambda session_id: store[session_id],
        input_messages_key="input",
        history_messages_key="chat_history",
    )
    # Both libraries' in-memory ``messages`` is the stored list itself, so trimming it
    # in place keeps the history at ``size``.
    stored = history.messages
    assert len(stored) == size
    return wrapped, stored


def turn_function(wrapped: Any, mode: str) -> Callable[[], object]:
    payload = {"input": QUESTION}
    if mode == "invoke":
        return lambda: wrapped.invoke(payload, config=CONFIG)
    if mode == "stream":
        def stream() -> str:
            return "".join(wrapped.stream(payload, config=CONFIG))
        return stream
    raise ValueError(mode)


def time_turns(side: str, size: int, mode: str) -> list[float]:
    wrapped, stored = build(side, size)
    min_runs, max_runs, budget = RUNS[side]

    def trim() -> None:
        del stored[size:]

    if mode == "ainvoke":
        return asyncio.run(_time_async(wrapped, trim, min_runs, max_runs, budget))
    turn = turn_function(wrapped, mode)
    for _ in range(3):  # warm-up: first-call caches, lazy imports
        turn()
        trim()
    return time_repeated(turn, min_runs=min_runs, max_runs=max_runs, budget_s=budget,
                         after=trim)


async def _time_async(wrapped: Any, trim: Callable[[], None], min_runs: int,
                      max_runs: int, budget: float) -> list[float]:
    payload = {"input": QUESTION}
    for _ in range(3):
        await wrapped.ainvoke(payload, config=CONFIG)
        trim()
    clock = time.perf_counter
    times: list[float] = []
    deadline = clock() + budget
    for run in range(max_runs):
        start = clock()
        await wrapped.ainvoke(payload, config=CONFIG)
        times.append(clock() - start)
        trim()
        if run + 1 >= min_runs and clock() > deadline:
            break
    return times


def check_answer(side: str) -> None:
    """Both sides must really do the work: the answer is stored and returned."""
    wrapped, stored = build(side, 10)
    assert wrapped.invoke({"input": QUESTION}, config=CONFIG) == RESPONSE
    assert "".join(wrapped.stream({"input": QUESTION}, config=CONFIG)) == RESPONSE
    assert len(stored) == 14, len(stored)
    assert stored[-1].content == RESPONSE and stored[-2].content == QUESTION


def profile_threadline(size: int = 1000, turns: int = 2000) -> None:
    wrapped, stored = build("threadline", size)
    payload = {"input": QUESTION}
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(turns):
        wrapped.invoke(payload, config=CONFIG)
        del stored[size:]
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(18)
    print(f"\ncProfile of {turns} threadline invoke turns at {size} messages "
          "(sorted by own time; includes the trim):")
    print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of threadline's turn at 1000 messages")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--quick", action="store_true", help="few turns, for a smoke run")
    args = parser.parse_args(argv)
    quiet_langchain()
    if args.quick:
        RUNS.update({"threadline": (20, 200, 0.05), "langchain": (3, 10, 0.1)})

    for side in RUNS:
        check_answer(side)

    medians: dict[tuple[str, int, str], float] = {}
    counts: dict[tuple[str, int, str], int] = {}
    started = time.perf_counter()
    for size in SIZES:
        for mode in MODES:
            for side in RUNS:
                times = time_turns(side, size, mode)
                medians[side, size, mode] = median(times)
                counts[side, size, mode] = len(times)

    rows = []
    for size in SIZES:
        for mode in MODES:
            tl, lc = medians["threadline", size, mode], medians["langchain", size, mode]
            rows.append([
                f"{size} msgs, {mode}",
                fmt_us(tl),
                fmt_us(lc),
                fmt_ratio(lc, tl),
                f"{counts['threadline', size, mode]}/{counts['langchain', size, mode]}",
            ])
    print_table(
        "Per-turn time of RunnableWithMessageHistory(prompt | FakeListChatModel | "
        "StrOutputParser), median µs",
        ["history, call", "threadline µs", "langchain µs", "ratio", "turns tl/lc"],
        rows,
    )
    print(f"\n({time.perf_counter() - started:.0f} s; Python {sys.version.split()[0]})")

    if args.profile:
        profile_threadline()

    worst_tl = max(medians["threadline", 1000, mode] for mode in MODES)
    worst_ratio = min(medians["langchain", 1000, m] / medians["threadline", 1000, m]
                      for m in MODES)
    return report_targets([
        Target("threadline <= 100 µs per turn at 1000 messages (slowest call kind)",
               worst_tl <= 100e-6, f"{fmt_us(worst_tl)} µs"),
        Target("threadline >= 100x faster than LangChain at 1000 messages (smallest ratio)",
               worst_ratio >= 100, f"{worst_ratio:,.0f}x"),
    ], strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
