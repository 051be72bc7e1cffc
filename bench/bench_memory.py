"""Memory per stored message: threadline vs langchain_core vs a plain list of dicts.

Each side stores N messages (alternating human / AI, each with its own 200-character
ASCII text) in an in-memory history; ``tracemalloc`` counts the bytes still allocated
afterwards, divided by N. The figure includes everything one message keeps alive: the
text itself (a 200-character ASCII ``str`` is 249 bytes of that), the message object,
any dicts it holds, and its slot in the history's list.

- threadline: ``threadline.InMemoryChatMessageHistory`` of ``HumanMessage``/``AIMessage``
- langchain: ``langchain_core.chat_history.InMemoryChatMessageHistory`` of its messages
- dicts: a ``list`` of ``{"role": ..., "content": ...}`` — the floor a library competes with

    python bench/bench_memory.py [--count 100000] [--strict]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable

from _util import Target, fmt_bytes, fmt_ratio, print_table, quiet_langchain, report_targets

TEXT_LENGTH = 200
FILLER = "The quick brown fox jumps over the lazy dog. " * 5


def text(i: int) -> str:
    """A distinct 200-character ASCII string (built fresh, so it is counted)."""
    head = f"message {i:09d}: "
    return head + FILLER[: TEXT_LENGTH - len(head)]


def threadline_history(count: int) -> object:
    from threadline import AIMessage, HumanMessage, InMemoryChatMessageHistory

    history = InMemoryChatMessageHistory()
    history.add_messages([HumanMessage(text(i)) if i % 2 == 0 else AIMessage(text(i))
                          for i in range(count)])
    return history


def langchain_history(count: int) -> object:
    from langchain_core.chat_history import InMemoryChatMessageHistory
    from langchain_core.messages import AIMessage, HumanMessage

    history = InMemoryChatMessageHistory()
    history.add_messages([HumanMessage(text(i)) if i % 2 == 0 else AIMessage(text(i))
                          for i in range(count)])
    return history


def dict_list(count: int) -> object:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": text(i)}
            for i in range(count)]


def measure(build: Callable[[int], object], count: int) -> tuple[float, float]:
    """(bytes per message, seconds to build) for ``build(count)``."""
    build(4)  # warm-up: imports and first-use caches are not per-message costs
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    kept = build(count)
    elapsed = time.perf_counter() - start
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) / count, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="messages per side")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    quiet_langchain()

    assert len(text(0)) == TEXT_LENGTH and text(0).isascii()
    str_size = sys.getsizeof(text(0))
    sides = {"threadline": threadline_history, "langchain": langchain_history,
             "list of dicts": dict_list}
    per_message = {}
    rows = []
    for name, build in sides.items():
        size, elapsed = measure(build, args.count)
        per_message[name] = size
        rows.append([name, fmt_bytes(size), fmt_bytes(size - str_size), f"{elapsed:.2f}"])
    tl = per_message["threadline"]
    for row, name in zip(rows, sides, strict=True):
        row.insert(2, "1.00x" if name == "threadline" else fmt_ratio(per_message[name], tl))
    print_table(
        f"Memory per stored {TEXT_LENGTH}-char message, {args.count:,} messages "
        f"(tracemalloc; the str alone is {str_size} bytes)",
        ["history", "bytes/msg", "vs threadline", "beyond the str", "build s (traced)"],
        rows,
    )
    return report_targets([
        Target("threadline <= 450 bytes per 200-char message", tl <= 450,
               f"{fmt_bytes(tl)} bytes"),
    ], strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
