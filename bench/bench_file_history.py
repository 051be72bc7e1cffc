"""Appending to a file-backed chat history of 10,000 messages: threadline vs LangChain.

threadline's ``FileChatMessageHistory`` (JSON Lines, one ``write()`` per batch under an
``flock``) next to ``langchain_community.chat_message_histories.FileChatMessageHistory``
(which reads, parses and rewrites the whole JSON array on every message). Both start
from a file of 10,000 messages (alternating questions and ~400-character answers with
response metadata, the same text on both sides) in a temporary directory; the timed
appends let it grow by at most a few percent. Cases:

- append 1 message, same history object (the steady state of a long-lived object);
- append 1 message, a new history object each time, without reading first (a
  ``get_session_history`` factory per request; threadline checks a file whole the first
  time the process writes to it, and afterwards only what was added since);
- the same with ``fsync=True`` (threadline only; compared with LangChain's unsynced append);
- the same when this process has never read or written the file before (threadline
  only): the first write checks the whole file, once per process;
- one RunnableWithMessageHistory turn: read every message, then store question and answer
  with one ``add_messages`` call (LangChain's stores them one by one);
- ``get_messages(last=10)`` vs LangChain's ``messages[-10:]``.

Figures are medians; LangChain gets fewer runs (each takes a third of a second).

    python bench/bench_file_history.py            # the table and the targets
    python bench/bench_file_history.py --quick    # fewer runs, for a smoke run
    python bench/bench_file_history.py --strict   # exit 1 if a target is missed
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
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

SIZE = 10_000
QUESTION = "Question {i}: what should I pack for a week of hiking in the Alps in late June?"
ANSWER = ("Answer {i}: " + "Layers, a rain shell, broken-in boots, a warm hat and sun cream; "
          "plan for cold mornings above 2,000 m and hot afternoons in the valleys. " * 3)
METADATA = {"model_name": "fake-model", "finish_reason": "stop"}
USAGE = {"input_tokens": 812, "output_tokens": 96, "total_tokens": 908}

# (min runs, max runs, seconds per case) for each side.
RUNS = {"threadline": (50, 200, 1.0), "langchain": (5, 9, 2.5)}


def messages(side: str, start: int, count: int) -> list[Any]:
    if side == "threadline":
        from threadline import AIMessage, HumanMessage
    else:
        from langchain_core.messages import AIMessage, HumanMessage
    return [
        HumanMessage(content=QUESTION.format(i=i)) if i % 2 == 0
        else AIMessage(content=ANSWER.format(i=i), response_metadata=METADATA,
                       usage_metadata=USAGE, id=f"run-{i}")
        for i in range(start, start + count)
    ]


def history_class(side: str) -> Callable[..., Any]:
    if side == "threadline":
        from threadline import FileChatMessageHistory
        return FileChatMessageHistory
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # langchain-community warns that it is being sunset
        from langchain_community.chat_message_histories import FileChatMessageHistory
    return FileChatMessageHistory  # type: ignore[no-any-return]


def fill(side: str, path: Path) -> None:
    """Write the 10,000-message file the fastest way each format allows."""
    if side == "threadline":
        history_class(side)(path).add_messages(messages(side, 0, SIZE))
    else:
        from langchain_core.messages import messages_to_dict
        path.write_text(json.dumps(messages_to_dict(messages(side, 0, SIZE))),
                        encoding="utf-8")


class Case:
    """One timed operation on a fresh 10,000-message file of each side."""

    def __init__(self, label: str, sides: tuple[str, ...] = ("threadline", "langchain"),
                 **options: Any) -> None:
        self.label = label
        self.sides = sides
        self.options = options

    def prepare(self, side: str, path: Path) -> Callable[[], object]:
        cls = history_class(side)
        options = self.options if side == "threadline" else {}
        counter = iter(range(SIZE, 10**9, 2))
        same = cls(path, **options)
        label = self.label
        if label.startswith("append 1 message, same object"):
            return lambda: same.add_message(messages(side, next(counter), 1)[0])
        if label.startswith("append 1 message, new object"):  # all three variants
            return lambda: cls(path, **options).add_message(messages(side, next(counter), 1)[0])
        if label.startswith("turn"):
            def turn() -> None:
                history = cls(path, **options)
                assert len(history.messages) >= SIZE
                history.add_messages(messages(side, next(counter), 2))
            return turn
        if label.startswith("last 10"):
            if side == "threadline":
                return lambda: same.get_messages(last=10)
            return lambda: same.messages[-10:]
        raise ValueError(label)


CASES = [
    Case("append 1 message, same object"),
    Case("append 1 message, new object each time"),
    Case("append 1 message, new object, fsync=True", fsync=True),
    Case("append 1 message, new object, file new to the process", sides=("threadline",)),
    Case("turn: read all, add question + answer"),
    Case("last 10 messages"),
]


def forget() -> None:
    """Make threadline forget which files this process has checked (outside the timing)."""
    from threadline.stores.file import _history

    _history._CHECKED.clear()


def check(directory: Path) -> None:
    """Both sides really store: same messages after the same appends; files cross-read."""
    for side in RUNS:
        path = directory / f"check-{side}.json"
        fill(side, path)
        history_class(side)(path).add_messages(messages(side, SIZE, 2))
        stored = history_class(side)(path).messages
        assert len(stored) == SIZE + 2 and stored[-1].content == ANSWER.format(i=SIZE + 1)
    # threadline reads the LangChain file as the same messages.
    from threadline import FileChatMessageHistory
    ours = FileChatMessageHistory(directory / "check-threadline.json").get_messages()
    theirs = FileChatMessageHistory(directory / "check-langchain.json").get_messages()
    assert ours == theirs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--quick", action="store_true", help="few runs, for a smoke run")
    args = parser.parse_args(argv)
    quiet_langchain()
    if args.quick:
        RUNS.update({"threadline": (10, 20, 0.1), "langchain": (2, 2, 0.1)})

    started = time.perf_counter()
    medians: dict[tuple[str, str], float] = {}
    counts: dict[tuple[str, str], int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-file-history-") as tmp:
        directory = Path(tmp)
        check(directory)
        sizes = {}
        for n, case in enumerate(CASES):
            for side in case.sides:
                path = directory / f"{n}-{side}.json"
                fill(side, path)
                sizes[side] = path.stat().st_size
                call = case.prepare(side, path)
                min_runs, max_runs, budget = RUNS[side]
                after = forget if "new to the process" in case.label else None
                if after is not None and side == "threadline":
                    after()
                times = time_repeated(call, min_runs=min_runs, max_runs=max_runs,
                                      budget_s=budget, after=after)
                medians[side, case.label] = median(times)
                counts[side, case.label] = len(times)

    rows = []
    for case in CASES:
        tl = medians["threadline", case.label]
        lc = medians.get(("langchain", case.label))
        if lc is None:  # a threadline-only option: compare with LangChain's plain append
            lc = medians["langchain", "append 1 message, new object each time"]
        rows.append([case.label, fmt_us(tl), fmt_us(lc), fmt_ratio(lc, tl),
                     f"{counts['threadline', case.label]}/"
                     f"{counts.get(('langchain', case.label), 0)}"])
    print_table(
        f"File-backed history of {SIZE:,} messages (threadline JSONL file "
        f"{sizes['threadline'] / 1e6:.1f} MB, LangChain JSON file "
        f"{sizes['langchain'] / 1e6:.1f} MB), median µs",
        ["operation", "threadline µs", "langchain µs", "ratio", "runs tl/lc"],
        rows,
    )
    print("\n(the fsync and 'new to the process' rows have no LangChain run of their own: "
          "they are set against LangChain's append with a new object)")
    print(f"\n({time.perf_counter() - started:.0f} s; Python {sys.version.split()[0]})")

    def ratio(label: str) -> float:
        return medians["langchain", label] / medians["threadline", label]

    same, fresh = CASES[0].label, CASES[1].label
    return report_targets([
        Target("threadline append >= 100x faster than LangChain at 10,000 messages "
               "(same object)", ratio(same) >= 100, f"{ratio(same):,.0f}x"),
        Target("threadline append >= 100x faster than LangChain at 10,000 messages "
               "(new object each time)", ratio(fresh) >= 100, f"{ratio(fresh):,.0f}x"),
    ], strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
