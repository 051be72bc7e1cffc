"""Private PostgreSQL and MariaDB servers for restart tests.

The shared servers on 5432/3306 are used by everyone, so tests that stop and start a
server get their own instance: a data directory initialised once (a few seconds) in a
temporary directory, listening on a free port on 127.0.0.1. ``with PrivatePostgres() as
server:`` initialises and starts it; ``server.stop()`` / ``server.start()`` restart it;
leaving the block (or the interpreter, through atexit) stops it and removes the files.

Skipped (``pytest.skip``) when the server binaries are not installed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port() -> int:
    """A port nothing listens on (bound and released just now)."""
    return free_port()


def _wait_for_port(port: int, timeout: float, up: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not go {'up' if up else 'down'} in {timeout} s")


class _PrivateServer:
    name = "server"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"threadline-{self.name}-"))
        self.port = free_port()
        self.running = False
        atexit.register(self.cleanup)

    def __enter__(self) -> _PrivateServer:
        try:
            self.init()
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    def init(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            if self.running:
                self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivatePostgres(_PrivateServer):
    """A PostgreSQL 15 instance run as the ``postgres`` user, trust authentication."""

    name = "pg"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)

    def init(self) -> None:
        if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
            pytest.skip(f"PostgreSQL binaries not found in {PG_BIN}")
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.dir / "data"), "-A", "trust",
                          "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
                   " -c fsync=off -c full_page_writes=off -c max_connections=30")
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-o", options,
                          "-l", str(self.dir / "log"), "-w", "-t", "30", "start")
        self.running = True
        _wait_for_port(self.port, 10)

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast",
                          "-w", "-t", "30", "stop")
        self.running = False


class PrivateMariaDB(_PrivateServer):
    """A MariaDB instance with root and no password, and a ``test`` database."""

    name = "mariadb"

    def __init__(self) -> None:
        super().__init__()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/test"

    def init(self) -> None:
        if shutil.which("mariadb-install-db") is None or shutil.which("mariadbd") is None:
            pytest.skip("MariaDB binaries (mariadb-install-db, mariadbd) not found")
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.dir / 'data'}",
                        "--user=root", "--auth-root-authentication-method=normal",
                        "--skip-test-db", "--skip-name-resolve"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        self._first_start = True

    def start(self) -> None:
        log = open(self.dir / "log", "ab")  # noqa: SIM115 - the server keeps writing to it
        self.process = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={self.dir / 'data'}",
             f"--port={self.port}", f"--socket={self.dir / 'sock'}", "--bind-address=127.0.0.1",
             "--user=root", "--skip-name-resolve", "--skip-log-bin",
             "--innodb-buffer-pool-size=32M", "--innodb-flush-log-at-trx-commit=2",
             f"--pid-file={self.dir / 'pid'}", "--max-connections=30"],
            stdout=log, stderr=log)
        log.close()
        self.running = True
        _wait_for_port(self.port, 30)
        if getattr(self, "_first_start", False):
            import pymysql

            conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root")
            with conn.cursor() as cur:
                cur.execute("CREATE DATABASE IF NOT EXISTS test")
            conn.close()
            self._first_start = False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.terminate()  # SIGTERM: a clean shutdown that closes the connections
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self.running = False
        _wait_for_port(self.port, 10, up=False)
