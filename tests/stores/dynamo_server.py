"""A local DynamoDB for the tests and benchmarks: moto in server mode on 127.0.0.1.

``moto_endpoint()`` starts one server per test process (on first use; stopped at exit)
and returns its URL. The server runs in a child process (``python dynamo_server.py``) so
the test's own threads do not share a GIL with it, listens on a free port (port 0: the
child prints the port it got) and exits when its stdin closes, so it never outlives the
tests.

moto handles requests on concurrent threads without locking its tables, and rolls a
failed transaction back by restoring a copy of the whole table — which would undo other
clients' writes made meanwhile. The real service applies each request atomically. The
child therefore serialises requests with one lock: the emulator then gives the
per-request atomicity the store relies on (and no more isolation than that).

Credentials are fake (``testing``) and passed in the URLs; nothing reaches AWS.
"""

from __future__ import annotations

import atexit
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

REGION = "us-east-1"
KEY_ID = "testing"
SECRET = "testing"

_server: MotoServer | None = None
_server_lock = threading.Lock()


class MotoServer:
    """A moto server in a child process: ``start()``, ``endpoint``, ``stop()``."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> MotoServer:
        self.process = subprocess.Popen(
            [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        result: list[bytes] = []
        reader = threading.Thread(target=lambda: result.append(self.process.stdout.readline()),  # type: ignore[union-attr]
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        if not result or not result[0].strip().isdigit():
            self.stop()
            raise RuntimeError(f"the moto server did not start in {timeout} s: {result!r}")
        self.port = int(result[0])
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()  # the child exits when its stdin closes
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def url(self, table: str, **options: str) -> str:
        """A ``dynamodb://`` URL of ``table`` on this server, with fake credentials."""
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in
                         {"region": REGION, "endpoint_url": self.endpoint, **options}.items())
        return f"dynamodb://{KEY_ID}:{SECRET}@{table}?{query}"


def moto_server() -> MotoServer:
    """The test process's shared moto server, started on first use."""
    global _server
    with _server_lock:
        if _server is None:
            _server = MotoServer().start()
            atexit.register(_server.stop)
        return _server


def _serialised(app: Callable[..., Iterable[bytes]]) -> Callable[..., list[bytes]]:
    lock = threading.Lock()

    def serialised(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with lock:
            return list(app(environ, start_response))

    return serialised


def main() -> None:
    import logging

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = _serialised(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True,
                         request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # until the parent closes our stdin (or exits)
    server.shutdown()


if __name__ == "__main__":
    main()
