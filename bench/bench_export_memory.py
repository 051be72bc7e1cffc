"""Peak memory of exporting one long session from SQLite to JSON Lines: read whole vs streamed.

One session of N short messages (default 10**6, alternating questions and answers of a
few words) is written to a SQLite database in a temporary directory; then each way of
exporting it to a JSON Lines file runs in a fresh subprocess, which reports its peak
resident set size (``resource.getrusage(...).ru_maxrss``, the high-water mark) and the
same just before the export began (interpreter, threadline and the open store):

- ``get_messages``: the old export — the whole session read with ``get_messages``, every
  line built, then written in one ``write`` (what ``export_sessions`` did before it
  streamed);
- ``iter_messages``: the session read with ``store.iter_messages`` (a page of 1000
  messages per SELECT), each line written as it comes;
- ``export_sessions``: the library's own ``threadline.stores._transfer.export_sessions``
  as it is now.

"peak - before" of 0.0 means the export never took the process above the high-water
mark it had already reached while importing and opening the store.

    python bench/bench_export_memory.py                    # 10**6 messages (~1 minute)
    python bench/bench_export_memory.py --messages 100000  # smaller, faster
    python bench/bench_export_memory.py --strict           # exit 1 if a target is missed
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _util import Target, fmt_ratio, print_table, report_targets

MODES = ("get_messages", "iter_messages", "export_sessions")
SESSION = "long-session"
TARGET_MB = 100


def peak_rss() -> int:
    """This process's peak resident set size so far, in bytes (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def build(db: Path, count: int) -> float:
    """Write one session of ``count`` short messages; the seconds it took."""
    from threadline import AIMessage, HumanMessage
    from threadline.stores import open_store

    started = time.perf_counter()
    store = open_store(f"sqlite:///{db}")
    batch = 10_000
    for start in range(0, count, batch):
        store.append(SESSION, [HumanMessage(f"question {i}: how are you?") if i % 2 == 0
                               else AIMessage(f"answer {i}: fine, thanks.")
                               for i in range(start, min(start + batch, count))])
    store.close()
    return time.perf_counter() - started


def export(mode: str, db: Path, out: Path) -> dict[str, float]:
    """Export the session the ``mode`` way (in this fresh process); what it measured."""
    from threadline.messages._serialization import message_to_dict
    from threadline.stores import open_store
    from threadline.stores._transfer import export_sessions

    store = open_store(f"sqlite:///{db}")
    store.setup()
    before = peak_rss()
    started = time.perf_counter()

    def line(message: object) -> str:
        return json.dumps({"session_id": SESSION, **message_to_dict(message)},  # type: ignore[arg-type]
                          ensure_ascii=False, separators=(",", ":")) + "\n"

    if mode == "get_messages":
        with open(out, "w", encoding="utf-8", newline="") as handle:
            lines = [line(message) for message in store.get_messages(SESSION)]
            handle.write("".join(lines))
            written = len(lines)
    elif mode == "iter_messages":
        written = 0
        with open(out, "w", encoding="utf-8", newline="") as handle:
            for message in store.iter_messages(SESSION):
                handle.write(line(message))
                written += 1
    else:
        written = export_sessions(store, out, [SESSION])
    seconds = time.perf_counter() - started
    store.close()
    return {"before": before, "peak": peak_rss(), "seconds": seconds, "messages": written,
            "bytes": out.stat().st_size}


def run_child(mode: str, db: Path, out: Path) -> dict[str, float]:
    """:func:`export` in a fresh interpreter (so no peak of another mode counts)."""
    done = subprocess.run([sys.executable, __file__, "--child", mode, "--db", str(db),
                           "--out", str(out)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {mode} export failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def mb(value: float) -> str:
    return f"{value / 1e6:,.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10**6,
                        help="messages in the session (default 1,000,000)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(export(args.child, args.db, args.out)))
        return 0

    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
        db = Path(tmp) / "chat.db"
        print(f"writing one session of {args.messages:,} messages to SQLite ...", flush=True)
        print(f"  done in {build(db, args.messages):.1f} s "
              f"({db.stat().st_size / 1e6:,.0f} MB database)", flush=True)
        results = {}
        for mode in MODES:
            out = Path(tmp) / f"{mode}.jsonl"
            results[mode] = run_child(mode, db, out)
            out.unlink()
    rows = [[mode, mb(r["peak"]), mb(r["peak"] - r["before"]), mb(r["before"]),
             f"{r['seconds']:.1f}", f"{r['messages']:,.0f}", mb(r["bytes"])]
            for mode, r in results.items()]
    print_table(f"Exporting one session of {args.messages:,} messages from SQLite to JSON Lines "
                "(MB; each mode in a fresh process)",
                ["read with", "peak RSS", "peak - before", "before export", "seconds",
                 "messages", "export MB"], rows)
    old, new = results["get_messages"]["peak"], results["iter_messages"]["peak"]
    print(f"\nget_messages / iter_messages peak RSS: {fmt_ratio(old, new)}")
    targets = [Target(f"iter_messages export peak RSS < {TARGET_MB} MB", new < TARGET_MB * 1e6,
                      f"{mb(new)} MB"),
               Target(f"export_sessions peak RSS < {TARGET_MB} MB",
                      results["export_sessions"]["peak"] < TARGET_MB * 1e6,
                      f"{mb(results['export_sessions']['peak'])} MB")]
    if args.messages < 10**6:
        print(f"\n(targets are for 10**6 messages; this run has {args.messages:,})")
    return report_targets(targets, strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
