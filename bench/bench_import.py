"""Import time: ``import threadline`` vs ``import langchain_core.runnables.history``.

Each statement runs in a fresh ``python -c`` subprocess (the venv's interpreter), timed
wall-clock from spawn to exit, median of N runs; ``python -c pass`` is the baseline
(interpreter start-up alone). Runs are interleaved round-robin so a burst of load on the
shared machine hits every row alike.

An editable install (``pip install -e .``) puts a ``.pth`` file in site-packages that
imports setuptools' editable finder at *every* interpreter start-up, so it is inside the
baseline too, not only in threadline's figure. The second table is what
``-X importtime`` attributes to the package itself (the cumulative time of its top-level
import entries), and to the editable finder, so the figure does not depend on how the
package was installed.

    python bench/bench_import.py [--runs 10] [--strict]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _util import Target, fmt_ms, fmt_ratio, median, print_table, report_targets

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parent.parent
STATEMENTS = {
    "baseline": "pass",
    "threadline": "import threadline",
    "langchain": "import langchain_core.runnables.history",
}


def wall(statement: str, *extra: str) -> float:
    """Seconds from spawning ``python -c statement`` to its exit."""
    start = time.perf_counter()
    subprocess.run([PYTHON, *extra, "-c", statement], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    return time.perf_counter() - start


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # Bytecode must come from the caches, as for a user; no warnings filters or
    # startup scripts of the caller's shell.
    for key in ("PYTHONDONTWRITEBYTECODE", "PYTHONSTARTUP", "PYTHONWARNINGS",
                "PYTHONPROFILEIMPORTTIME"):
        env.pop(key, None)
    return env


def importtime_entries(statement: str) -> list[tuple[int, str, float, float]]:
    """``(depth, module, self s, cumulative s)`` for each line of ``-X importtime``."""
    result = subprocess.run([PYTHON, "-X", "importtime", "-c", statement], check=True,
                            cwd=ROOT, capture_output=True, text=True, env=_env())
    entries = []
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not line.startswith("import time:"):
            continue
        own = parts[0].removeprefix("import time:").strip()
        if not own.isdigit():  # the header line
            continue
        name = parts[2].strip()
        # Nesting is shown as two spaces of indent per level after "| ".
        depth = (len(parts[2]) - len(parts[2].lstrip()) - 1) // 2
        entries.append((depth, name, int(own) / 1e6, int(parts[1]) / 1e6))
    return entries


def importtime(statement: str, prefix: str) -> tuple[float, float]:
    """Seconds ``-X importtime`` gives (1) the top-level entries of package ``prefix``
    and (2) the editable finder (imported by site), in one run."""
    package = finder = 0.0
    for depth, name, _, cumulative in importtime_entries(statement):
        if depth == 0 and (name == prefix or name.startswith(prefix + ".")):
            package += cumulative
        elif name.startswith("__editable__"):
            finder += cumulative
    return package, finder


def heaviest(statement: str, prefix: str, count: int) -> list[tuple[str, float]]:
    """The modules with the most self time among those imported for package ``prefix``."""
    inside = False
    found: list[tuple[str, float]] = []
    # importtime prints a module after its children, so scan backwards from the
    # package's top-level line down through its indented children.
    for depth, name, own, _ in reversed(importtime_entries(statement)):
        if depth == 0:
            inside = name == prefix or name.startswith(prefix + ".")
        if inside:
            found.append((name, own))
    return sorted(found, key=lambda item: -item[1])[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="subprocesses per row")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    for statement in STATEMENTS.values():  # warm the bytecode and OS file caches
        wall(statement)
    times: dict[str, list[float]] = {key: [] for key in STATEMENTS}
    no_site: dict[str, list[float]] = {"baseline": [], "threadline": []}
    for _ in range(args.runs):
        for key, statement in STATEMENTS.items():
            times[key].append(wall(statement))
        # Without site-packages (-S, the package found on sys.path as cwd): what a
        # regular, non-editable install would cost, with no .pth files at start-up.
        for key in no_site:
            no_site[key].append(wall(STATEMENTS[key], "-S"))

    med = {key: median(values) for key, values in times.items()}
    base = med["baseline"]
    rows = [
        [f"python -c {STATEMENTS[key]!r}", fmt_ms(med[key]),
         fmt_ms(med[key] - base) if key != "baseline" else "-"]
        for key in STATEMENTS
    ]
    ns_base, ns_tl = median(no_site["baseline"]), median(no_site["threadline"])
    rows.append(["python -S -c 'pass'", fmt_ms(ns_base), "-"])
    rows.append(["python -S -c 'import threadline'", fmt_ms(ns_tl), fmt_ms(ns_tl - ns_base)])
    print_table(f"Import wall time, fresh subprocess, median of {args.runs} (ms)",
                ["command", "wall ms", "minus its baseline ms"], rows)
    print(f"\nthreadline vs langchain_core import (minus baseline): "
          f"{fmt_ratio(med['langchain'] - base, med['threadline'] - base)} faster")

    samples = [importtime(STATEMENTS["threadline"], "threadline") for _ in range(5)]
    lc_samples = [importtime(STATEMENTS["langchain"], "langchain_core") for _ in range(3)]
    tl_self = median([s[0] for s in samples])
    finder = median([s[1] for s in samples])
    lc_self = median([s[0] for s in lc_samples])
    print_table("-X importtime, cumulative (ms; median of 5 runs, langchain of 3)",
                ["entry", "ms"],
                [["threadline package (all its imports)", fmt_ms(tl_self)],
                 ["langchain_core package (all its imports)", fmt_ms(lc_self)],
                 ["editable finder (.pth, at every start-up)", fmt_ms(finder)]])
    print_table("Heaviest modules imported by `import threadline` (self time, one run)",
                ["module", "self ms"],
                [[name, f"{own * 1e3:.2f}"]
                 for name, own in heaviest(STATEMENTS["threadline"], "threadline", 8)])

    return report_targets([
        Target("import threadline <= 100 ms wall (fresh process, raw)",
               med["threadline"] <= 0.100, f"{fmt_ms(med['threadline'])} ms"),
    ], strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
