"""``threadline serve`` next to the store's own cost and a bare Starlette endpoint.

Three measurements, in one run (medians; the issue's targets checked at the end):

1. **Overhead per turn**: ``POST /v1/responses`` (echo model, ``conversation=`` a
   conversation of 100 items) to ``threadline serve`` on a real port, against the same
   store work called directly in this process (session info, read the messages and the
   deleted-item records, append the question, the answer and the response record): the
   difference is what the server adds (HTTP, JSON, validation, auth, trimming, events).
   SQLite and PostgreSQL. Each timed turn goes to the next of 20 conversations, so each
   stays near 100 items.
2. **Throughput**: 64 concurrent clients, ``threadline serve --workers 4`` on
   PostgreSQL, next to ``bench/_bare_server.py`` (Starlette, the same store read and
   append, nothing else) under uvicorn with 4 workers; turns/s over a fixed time.
3. **Streaming**: time from the model yielding its first token to the client reading
   the first ``response.output_text.delta`` event (server in a thread of this process,
   so both instants are on one clock).

    python bench/bench_server.py                 # all three
    python bench/bench_server.py --skip-throughput --turns 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from _util import Target, fmt_ratio, median, print_table, report_targets

from threadline import AIMessage, HumanMessage
from threadline.messages._chunks import AIMessageChunk
from threadline.messages._values import BaseMessage
from threadline.models._base import BaseChatModel
from threadline.server import create_app
from threadline.server._items import META_PREFIX, RESPONSE_PREFIX, read_conversation
from threadline.stores import Store, open_store

HERE = Path(__file__).resolve().parent
PG = "postgresql://postgres@127.0.0.1:5432/test"
POOL = 20


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _in_thread(app: Any) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _fill(store: Store, prefix: str) -> list[str]:
    ids = [f"{prefix}{n}" for n in range(POOL)]
    for sid in ids:
        store.update_session(sid, owner=None)
        store.append(sid, [m for k in range(50) for m in (
            HumanMessage(f"question {k} about the weather in Oslo", id=uuid.uuid4().hex),
            AIMessage(f"answer {k}: it rains, as it often does there", id=uuid.uuid4().hex))])
    return ids


def _direct_turn(store: Store, sid: str) -> None:
    """The store work of one turn, called directly (sync)."""
    store.session_info(sid)
    store.get_messages(sid)
    store.scan_records(sid, META_PREFIX)
    answer = AIMessage("hi", id=uuid.uuid4().hex)
    record = json.dumps({"id": "resp_x", "output": [{"text": "hi"}]}).encode()
    store.append_with_records(sid, [HumanMessage("hi", id=uuid.uuid4().hex), answer],
                              {RESPONSE_PREFIX + uuid.uuid4().hex: record})


async def _adirect_turn(store: Store, sid: str) -> None:
    """The same through the store's async API, as the server calls it."""
    await read_conversation(store, sid)
    answer = AIMessage("hi", id=uuid.uuid4().hex)
    record = json.dumps({"id": "resp_x", "output": [{"text": "hi"}]}).encode()
    await store.aappend_with_records(sid, [HumanMessage("hi", id=uuid.uuid4().hex), answer],
                                     {RESPONSE_PREFIX + uuid.uuid4().hex: record})


def overhead(url: str, turns: int) -> tuple[float, float, float]:
    """(server turn p50, direct store work p50, the same through the async API p50),
    seconds. The server is its own process (``threadline serve``), as users run it, so
    the client does not share its GIL."""
    store = open_store(url)
    store.setup()
    run = uuid.uuid4().hex[:6]
    served, direct = _fill(store, f"bs{run}s"), _fill(store, f"bs{run}d")
    server_times: list[float] = []
    direct_times: list[float] = []
    async_times: list[float] = []
    loop = asyncio.new_event_loop()
    port = _free_port()
    serve = [sys.executable, "-m", "threadline", "serve", "--store", url, "--model", "echo",
             "--port", str(port)]
    with _process(serve, {}, port), \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for n in range(turns + 20):
            sid = served[n % POOL]
            start = time.perf_counter()
            reply = client.post("/v1/responses", json={
                "model": "echo", "input": "hi", "conversation": sid})
            elapsed = time.perf_counter() - start
            reply.raise_for_status()
            start = time.perf_counter()
            _direct_turn(store, direct[n % POOL])
            direct_elapsed = time.perf_counter() - start
            start = time.perf_counter()
            loop.run_until_complete(_adirect_turn(store, direct[n % POOL]))
            async_elapsed = time.perf_counter() - start
            if n >= 20:  # warm-up
                server_times.append(elapsed)
                direct_times.append(direct_elapsed)
                async_times.append(async_elapsed)
    for sid in served + direct:
        store.delete_session(sid)
    loop.run_until_complete(store.aclose())
    loop.close()
    store.close()
    return median(server_times), median(direct_times), median(async_times)


# -- throughput --------------------------------------------------------------------------

@contextlib.contextmanager
def _process(command: list[str], env: dict[str, str], port: int) -> Iterator[None]:
    process = subprocess.Popen(command, env={**os.environ, **env}, cwd=HERE.parent,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                error = process.stderr.read() if process.stderr else ""
                raise RuntimeError(f"{command[:4]} exited: {error}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[:4]} did not start")
            time.sleep(0.2)
        time.sleep(1.0)  # every worker up
        yield
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


async def _load(base: str, path: str, body: Any, clients: int, seconds: float) -> float:
    """Turns per second that ``clients`` concurrent clients get over ``seconds``."""
    done = 0
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        async def one(n: int) -> None:
            nonlocal done
            while time.monotonic() < stop:
                reply = await client.post(path, json=body(n))
                reply.raise_for_status()
                done += 1

        start = time.monotonic()
        await asyncio.gather(*(one(n) for n in range(clients)))
        return done / (time.monotonic() - start)


def throughput(seconds: float, clients: int = 64, workers: int = 4) -> tuple[float, float]:
    table = f"bench_serve_{uuid.uuid4().hex[:6]}"
    url = f"{PG}?table={table}"
    store = open_store(url)
    store.setup()
    ids = [f"tp{n}" for n in range(clients)]
    for sid in ids:
        store.append(sid, [HumanMessage("hello", id=uuid.uuid4().hex),
                           AIMessage("hi", id=uuid.uuid4().hex)])
    try:
        port = _free_port()
        serve = [sys.executable, "-m", "threadline", "serve", "--store", url, "--model",
                 "echo", "--port", str(port), "--workers", str(workers)]
        with _process(serve, {}, port):
            served = asyncio.run(_load(
                f"http://127.0.0.1:{port}", "/v1/responses",
                lambda n: {"model": "echo", "input": "hi", "conversation": ids[n]},
                clients, seconds))
        port = _free_port()
        bare = [sys.executable, "-m", "uvicorn", "_bare_server:app", "--factory",
                "--app-dir", str(HERE), "--port", str(port), "--workers", str(workers),
                "--log-level", "warning"]
        with _process(bare, {"BARE_STORE": url}, port):
            raw = asyncio.run(_load(f"http://127.0.0.1:{port}", "/turn",
                                    lambda n: {"input": "hi", "conversation": ids[n]},
                                    clients, seconds))
    finally:
        store.close()
        _drop(table)
    return served, raw


def _drop(table: str) -> None:
    """Drop a PostgreSQL store's tables (``<table>``, ``<table>_sessions``...)."""
    import psycopg

    with psycopg.connect(PG,
                         autocommit=True) as conn:
        names = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename = %s OR tablename LIKE %s",
            (table, table + "\\_%"))]
        for name in names:
            conn.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')


# -- streaming ---------------------------------------------------------------------------

class _Timed(BaseChatModel):
    """Streams ten words, noting when it yields the first."""

    model_name = "timed"

    def __init__(self) -> None:
        self.first: float | None = None

    async def _astream(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                       **kwargs: Any) -> AsyncIterator[AIMessageChunk]:
        await asyncio.sleep(0.005)
        for n in range(10):
            if n == 0:
                self.first = time.perf_counter()
            yield AIMessageChunk(f"word{n} ")
            await asyncio.sleep(0.001)

    def _generate(self, messages: list[BaseMessage], *, stop: list[str] | None = None,
                  **kwargs: Any) -> AIMessage:
        return AIMessage(" ".join(f"word{n}" for n in range(10)))


def first_delta(runs: int) -> float:
    """Median seconds from the model's first token to the client's first delta event."""
    model = _Timed()
    with tempfile.TemporaryDirectory() as tmp, \
            _in_thread(create_app(f"sqlite:///{tmp}/s.db", model, web=False)) as base, \
            httpx.Client(base_url=base, timeout=30) as client:
        gaps: list[float] = []
        for n in range(runs + 5):
            with client.stream("POST", "/v1/responses", json={
                    "model": "timed", "input": "hi", "stream": True}) as reply:
                lines = reply.iter_lines()
                for line in lines:
                    if line.startswith("data:") and "output_text.delta" in line:
                        arrived = time.perf_counter()
                        break
                for _ in lines:
                    pass
            assert model.first is not None
            if n >= 5:
                gaps.append(arrived - model.first)
    return median(gaps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args()
    targets: list[Target] = []
    rows = []
    table = f"bench_serve_{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp:
        for name, url in (("SQLite", f"sqlite:///{tmp}/bench.db"),
                          ("PostgreSQL", f"{PG}?table={table}")):
            try:
                served, direct, through_async = overhead(url, args.turns)
            finally:
                if name == "PostgreSQL":
                    _drop(table)
            extra = (served - direct) * 1e3
            async_extra = (served - through_async) * 1e3
            rows.append([name, f"{served * 1e3:.2f}", f"{direct * 1e3:.2f}",
                         f"{through_async * 1e3:.2f}", f"{extra:.2f}", f"{async_extra:.2f}",
                         fmt_ratio(served, direct)])
            targets.append(Target(f"{name}: server overhead per turn <= 2 ms (over the sync "
                                  "store work)", extra <= 2.0, f"{extra:.2f} ms"))
    print_table(f"POST /v1/responses, 100-item conversation, echo model ({args.turns} turns, "
                "median ms)", ["store", "server turn", "store work (sync)",
                               "store work (async API)", "overhead", "over async",
                               "ratio"], rows)
    if not args.skip_throughput:
        served, raw = throughput(args.seconds)
        print_table(f"64 concurrent clients, 4 workers, PostgreSQL, {args.seconds:.0f} s "
                    "each (turns/s)",
                    ["server", "turns/s"], [["threadline serve", f"{served:,.0f}"],
                                            ["bare Starlette, same store work", f"{raw:,.0f}"],
                                            ["ratio (bare / threadline)", fmt_ratio(raw, served)]])
    gap = first_delta(50)
    print_table("Streaming: model's first token -> client's first delta (median ms)",
                ["", "ms"], [["threadline serve", f"{gap * 1e3:.2f}"]])
    targets.append(Target("first delta <= 5 ms after the model's first token",
                          gap * 1e3 <= 5.0, f"{gap * 1e3:.2f} ms"))
    return report_targets(targets, strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
