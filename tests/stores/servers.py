"""Private PostgreSQL and MariaDB servers for restart tests.

The shared servers on 5432/3306 are used by everyone, so tests that stop and start a
server get their own instance: a data directory initialised once (a few seconds) in a
temporary directory, listening on a free port on 127.0.0.1. ``with PrivatePostgres() as
server:`` initialises and starts it; ``server.stop()`` / ``server.start()`` restart it;
leaving the block (or the interpreter, through atexit) stops it and removes the files.

``primary.standby()`` makes a streaming standby of a private PostgreSQL with
``pg_basebackup -R`` (on its own port); :class:`PgBouncer` is a private PgBouncer in
transaction mode in front of a PostgreSQL server.

Skipped (``pytest.skip``) when the server binaries are not installed; in CI (``CI=true``)
a missing PgBouncer fails instead, as ``.ci/run`` installs it.
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
from conftest import IN_CI

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
    """A PostgreSQL 15 instance run as the ``postgres`` user, trust authentication.

    initdb's pg_hba.conf already lets replication connections in from 127.0.0.1 (trust),
    and PostgreSQL 15's defaults (``wal_level=replica``, ``max_wal_senders=10``) allow a
    streaming standby (:meth:`standby`).
    """

    name = "pg"

    def __init__(self, primary: PrivatePostgres | None = None) -> None:
        super().__init__()
        self.primary = primary

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
        if self.primary is not None:  # a copy of the primary that streams its changes
            self._as_postgres(str(PG_BIN / "pg_basebackup"), "-D", str(self.dir / "data"),
                              "-h", "127.0.0.1", "-p", str(self.primary.port), "-U",
                              "postgres", "-R", "--no-sync", "-X", "stream")
            return
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.dir / "data"), "-A", "trust",
                          "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C")

    def standby(self) -> PrivatePostgres:
        """A streaming standby of this (running) server, started; stop it with
        ``cleanup()`` (or leave it to atexit)."""
        standby = PrivatePostgres(primary=self)
        standby.__enter__()
        return standby

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
                   " -c fsync=off -c full_page_writes=off -c max_connections=30")
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-o", options,
                          "-l", str(self.dir / "log"), "-w", "-t", "30", "start")
        self.running = True
        _wait_for_port(self.port, 10)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clients disconnected, a clean shutdown) or
        ``immediate`` (as a crash)."""
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode,
                          "-w", "-t", "30", "stop")
        self.running = False

    def promote(self) -> None:
        """Make this standby a primary (waits until it accepts writes)."""
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-w",
                          "-t", "30", "promote")


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


class PgBouncer:
    """A private PgBouncer in transaction mode (Debian's ``pgbouncer``), listening on a
    free port of 127.0.0.1, in front of database ``database`` of the PostgreSQL server on
    ``port``; trust authentication, ``pool_size`` server connections per user and
    database (few, so that clients do share them). ``with PgBouncer() as bouncer:``
    starts it; ``bouncer.url`` is a store URL through it (without options)."""

    def __init__(self, port: int = 5432, database: str = "test", pool_size: int = 2) -> None:
        self.server_port = port
        self.database = database
        self.pool_size = pool_size
        self.dir = Path(tempfile.mkdtemp(prefix="threadline-pgbouncer-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        atexit.register(self.cleanup)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def __enter__(self) -> PgBouncer:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    def start(self) -> None:
        binary = shutil.which("pgbouncer") or (
            "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
        if binary is None:
            message = "pgbouncer is not installed (apt-get install pgbouncer; .ci/run does)"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        (self.dir / "userlist.txt").write_text('"postgres" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"{self.database} = host=127.0.0.1 port={self.server_port} dbname={self.database}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.dir / 'userlist.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {self.pool_size}\n"
            "max_client_conn = 200\nadmin_users = postgres\n"
            f"logfile = {self.dir / 'log'}\npidfile = {self.dir / 'pid'}\n")
        command = [binary, str(self.dir / "pgbouncer.ini")]
        if os.geteuid() == 0:  # pgbouncer refuses to run as root
            shutil.chown(self.dir, "postgres", "postgres")
            for name in ("userlist.txt", "pgbouncer.ini"):
                shutil.chown(self.dir / name, "postgres", "postgres")
            command[1:1] = ["-u", "postgres"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        try:
            _wait_for_port(self.port, 10)
        except TimeoutError:
            log = (self.dir / "log").read_text() if (self.dir / "log").exists() else ""
            raise RuntimeError(f"pgbouncer did not start: {log[-2000:]}") from None

    def cleanup(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
