"""Run every ``bench/bench_*.py`` script in turn (``make bench``).

Scripts are discovered, not listed, so a new benchmark only has to be named
``bench_<what>.py``. Each runs as its own subprocess with this interpreter (a fresh
process: no warm caches or imports shared between benchmarks), its output passed straight
through. The exit status is non-zero if any script failed.

    python bench/run_all.py              # all of them
    python bench/run_all.py wrapper mem  # only those whose name contains a word given
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(word in s.stem for word in argv)]
    if not scripts:
        print(f"no bench/bench_*.py script matches {argv}", file=sys.stderr)
        return 2
    results: list[tuple[str, int, float]] = []
    for script in scripts:
        print(f"\n=== {script.name} " + "=" * max(0, 70 - len(script.name)), flush=True)
        start = time.perf_counter()
        code = subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode
        results.append((script.name, code, time.perf_counter() - start))

    print("\n=== summary " + "=" * 66)
    for name, code, seconds in results:
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"  {name:<32} {seconds:7.1f} s  {status}")
    failed = [name for name, code, _ in results if code != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
