"""Real threadline servers for tests: uvicorn on a real port, in a thread or a process.

- :func:`serving`: ``with serving(app) as base_url:`` runs an ASGI app under uvicorn in a
  thread of this process, on a free loopback port, and stops it after the block.
- :func:`serve_process`: ``with serve_process(["--store", url, "--model", "echo"]) as
  base_url:`` runs ``threadline serve`` as its own process (what users run), waits until
  it answers, and terminates it after the block.
- :func:`client`: the official ``openai`` SDK pointed at a server (no retries, so a
  failure is seen at once).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import openai
import uvicorn


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def serving(app: Any, *, timeout: float = 15.0) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    sock = _bound_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


def free_port() -> int:
    with contextlib.closing(_bound_socket()) as sock:
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_process(args: Sequence[str], *, env: dict[str, str] | None = None,
                  timeout: float = 30.0, port: int | None = None) -> Iterator[str]:
    """Run ``threadline serve ARGS --port P`` as a process; yields its base URL."""
    port = port or free_port()
    command = [sys.executable, "-m", "threadline", "serve", *args, "--port", str(port)]
    process = subprocess.Popen(command, env={**os.environ, **(env or {})},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise RuntimeError(f"threadline serve exited with {process.returncode}: "
                                   f"{output}")
            try:
                httpx.get(f"{base}/v1/health", timeout=1.0)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("threadline serve did not answer in time") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def client(base_url: str, key: str = "local") -> openai.OpenAI:
    """The official SDK on a threadline server (``key`` for servers with keys)."""
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=30)
