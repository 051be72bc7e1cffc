"""Shared helpers for the benchmark scripts: timing, medians and table printing.

The benchmarks are plain scripts (``python bench/bench_x.py``), not tests. Each one times
threadline and langchain_core doing the same job and prints a table of medians and the
ratio between them. The machine is shared and noisy, so every figure is a median of
many runs, and each side gets its own repetition count (a threadline turn takes tens of
microseconds, a LangChain turn tens of milliseconds) bounded by a time budget.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence

__all__ = [
    "Target",
    "finish",
    "fmt_bytes",
    "fmt_ms",
    "fmt_ratio",
    "fmt_us",
    "median",
    "print_table",
    "quiet_langchain",
    "report_targets",
    "run_threads",
    "time_repeated",
]


def quiet_langchain() -> None:
    """Silence LangChain's deprecation warnings (RunnableWithMessageHistory and
    InMemoryChatMessageHistory are deprecated in langchain-core 1.x but still shipped):
    they would bury the tables.

    langchain_core installs its own "default" filter for these warnings when imported,
    ahead of any earlier one, so it is imported first and our filter goes in front.
    """
    from langchain_core._api.deprecation import LangChainDeprecationWarning

    warnings.filterwarnings("ignore", category=LangChainDeprecationWarning)


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence."""
    if not values:
        raise ValueError("median of no values")
    return statistics.median(values)


def time_repeated(
    call: Callable[[], object],
    *,
    min_runs: int,
    max_runs: int,
    budget_s: float,
    after: Callable[[], object] | None = None,
) -> list[float]:
    """Seconds taken by each of up to ``max_runs`` calls of ``call``.

    Runs at least ``min_runs`` times, then stops at ``max_runs`` or once ``budget_s``
    seconds have passed, whichever comes first. ``after`` runs after each call, outside
    the timed region (used to put state back, e.g. trim a history to its size).
    """
    clock = time.perf_counter
    times: list[float] = []
    deadline = clock() + budget_s
    for run in range(max_runs):
        start = clock()
        call()
        times.append(clock() - start)
        if after is not None:
            after()
        if run + 1 >= min_runs and clock() > deadline:
            break
    return times


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f}"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f}"


def fmt_bytes(value: float) -> str:
    return f"{value:,.0f}"


def fmt_ratio(slow: float, fast: float) -> str:
    """``slow / fast`` as e.g. ``"512x"``."""
    if fast <= 0:
        return "inf"
    ratio = slow / fast
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.2f}x"


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print a Markdown-style table (readable in a terminal, pasteable in a report)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        # First column left-aligned (labels), the rest right-aligned (numbers).
        parts = [cells[0].ljust(widths[0])]
        parts += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "| " + " | ".join(parts) + " |"

    print(f"\n{title}\n")
    print(line(headers))
    print("|" + "|".join(("-" * (w + 1)) + ":" if i else "-" * (w + 2)
                         for i, w in enumerate(widths)) + "|")
    for row in rows:
        print(line(row))
    sys.stdout.flush()


class Target:
    """One stated goal (``threadline <= 100 µs``) and whether this run met it."""

    def __init__(self, label: str, met: bool, measured: str) -> None:
        self.label = label
        self.met = met
        self.measured = measured


def report_targets(targets: Sequence[Target], *, strict: bool) -> int:
    """Print each target as met or MISSED; the exit status a script should return.

    Missing a target is reported but not an error unless ``strict`` is set: timings on
    a shared two-core machine vary, and ``make bench`` should fail only when a script
    breaks.
    """
    print("\nTargets:")
    for target in targets:
        status = "met   " if target.met else "MISSED"
        print(f"  [{status}] {target.label} (measured {target.measured})")
    sys.stdout.flush()
    missed = [t for t in targets if not t.met]
    return 1 if strict and missed else 0


def run_threads(turns: Sequence[Callable[[], object]], duration: float) -> tuple[int, float]:
    """Call each of ``turns`` in a loop on a thread of its own for ``duration`` seconds,
    all released together after one untimed warm-up call each (connections, caches);
    returns the calls made and the seconds they took."""
    counts = [0] * len(turns)
    gate = threading.Barrier(len(turns) + 1)
    stop_at = [time.perf_counter() + 120.0]  # until the gate opens: a bound, not a goal

    def worker(i: int) -> None:
        turns[i]()
        gate.wait()
        while time.perf_counter() < stop_at[0]:
            turns[i]()
            counts[i] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(len(turns))]
    for thread in pool:
        thread.start()
    gate.wait()
    began = time.perf_counter()
    stop_at[0] = began + duration
    for thread in pool:
        thread.join()
    return sum(counts), time.perf_counter() - began


def finish(targets: Sequence[Target], notes: Sequence[str], elapsed: float, *,
           strict: bool) -> int:
    """The end of a run: the notes (contenders that could not run), the run's time and
    the targets; the exit status (see :func:`report_targets`)."""
    for note in notes:
        print(f"  {note}")
    print(f"\nwhole run: {elapsed:.0f} s")
    return report_targets(targets, strict=strict)
