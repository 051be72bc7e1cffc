"""A local Azure Cosmos DB emulator (``@vercel/cosmosdb-server``) for the tests.

``make test`` installs it with ``npm ci`` from the committed package-lock.json into
node_modules/. :class:`CosmosServer` runs its CLI with node on 127.0.0.1 with
``--port 0`` and reads the port from the ready line; the server speaks HTTPS with a
self-signed certificate and accepts any base64 key. It keeps everything in memory, so a
restart starts empty. Skipped locally (failed in CI) when node or the package is missing.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "node_modules" / "@vercel" / "cosmosdb-server" / "lib" / "cli.js"
#: Any base64 text is a valid key for the emulator.
KEY = base64.b64encode(b"threadline-test-key-0123456789ab").decode()
_READY = re.compile(rb"connections at [^\s]*:(\d+)")


class CosmosServer:
    """``with CosmosServer() as server:`` — ``server.url(container)``, ``stop()``, ``start()``."""

    def __init__(self) -> None:
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        atexit.register(self.stop)

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}/"

    def url(self, container: str, database: str = "test", key: str = KEY) -> str:
        from urllib.parse import quote

        return (f"cosmos://emulator:{quote(key, safe='')}@127.0.0.1:{self.port}/{database}/"
                f"{container}?verify=false&emulator=true")

    def start(self) -> None:
        node = shutil.which("node")
        if node is None or not CLI.exists():
            message = ("the Cosmos DB emulator needs node and `npm ci` (make test runs it); "
                       f"missing: {'node' if node is None else CLI}")
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        # The same port again after a restart, so stores that are open reconnect.
        args = [node, str(CLI), "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        env={**os.environ, "NODE_NO_WARNINGS": "1"})
        assert self.process.stdout is not None
        deadline = time.monotonic() + 30
        line = b""
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            match = _READY.search(line)
            if match:
                self.port = int(match.group(1))
                # Keep draining the pipe so the server never blocks on a full one.
                threading.Thread(target=self.process.stdout.read, daemon=True).start()
                return
            if not line and self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"the Cosmos DB emulator did not start: {line!r}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        with contextlib.suppress(Exception):
            if process.stdout is not None:
                process.stdout.close()

    def __enter__(self) -> CosmosServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


_shared: CosmosServer | None = None
_shared_lock = threading.Lock()


def shared_server() -> CosmosServer:
    """The emulator every test of this session shares (started once, stopped at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.process is None:
            server = CosmosServer()
            server.start()
            _shared = server
        return _shared
