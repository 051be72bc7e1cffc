"""A private Redis Cluster for the tests: 3 masters and 3 replicas from ``redis-server``.

:func:`shared_cluster` starts it once per test session (in a temporary directory, on
free ports, persistence off, ``cluster-node-timeout`` 1000 ms so a replica takes over
from a failed master in about two seconds), joins it with ``redis-cli --cluster create
--cluster-replicas 1``, waits for ``cluster_state:ok`` on every node, and stops it at
exit. Skipped locally (failed in CI) when ``redis-server`` or ``redis-cli`` is missing.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import IN_CI

NODE_TIMEOUT_MS = 1000


def _free_ports(count: int) -> list[int]:
    """Ports free now whose cluster bus port (+10000) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


class RedisCluster:
    """Six ``redis-server`` processes joined as a cluster: ``url(**options)``,
    ``kill(port)`` (SIGKILL), ``restart(port)``, ``masters()``, ``serving(key)``,
    ``wait_ok()``, ``stop()``."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.dir = Path(tempfile.mkdtemp(prefix="threadline-cluster-"))
        atexit.register(self.stop)

    def url(self, **options: str) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.ports[:3])
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"redis+cluster://{hosts}/" + (f"?{query}" if query else "")

    def _cli(self, port: int, *args: str, timeout: float = 10) -> str:
        done = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
                              capture_output=True, timeout=timeout, check=False)
        return done.stdout.decode(errors="replace")

    def start(self) -> None:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            message = "the Redis Cluster tests need redis-server and redis-cli on the PATH"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        self.ports = _free_ports(6)
        for port in self.ports:
            self.restart(port)
        for port in self.ports:
            self._wait(lambda p=port: "PONG" in self._cli(p, "PING"), f"node {port} to start")
        create = subprocess.run(
            [cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
             "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True, timeout=60, check=False)
        if create.returncode != 0:
            self.stop()
            raise RuntimeError(f"redis-cli --cluster create failed: {create.stdout!r}")
        self.wait_ok()
        self.wait_replicas_online()

    def _wait(self, check: object, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():  # type: ignore[operator]
                return
            time.sleep(0.05)
        raise RuntimeError(f"timed out waiting for {what}")

    def wait_ok(self, timeout: float = 30) -> None:
        """Until every live node says ``cluster_state:ok`` and knows 3 masters."""
        def ok() -> bool:
            for port in self.alive():
                info = self._cli(port, "CLUSTER", "INFO")
                if "cluster_state:ok" not in info or "cluster_size:3" not in info:
                    return False
            return True

        self._wait(ok, "cluster_state:ok", timeout)

    def wait_replicas_online(self, timeout: float = 30) -> None:
        """Until every live master has a replica whose link is up (WAIT counts on it)."""
        def online() -> bool:
            masters = self.masters()
            return len(masters) == 3 and all(
                "state=online" in self._cli(port, "INFO", "replication") for port in masters)

        self._wait(online, "every master's replica to be online", timeout)

    def alive(self) -> list[int]:
        return [p for p, proc in self.processes.items() if proc.poll() is None]

    def masters(self) -> list[int]:
        """The ports of the live masters (CLUSTER NODES of a live node)."""
        found: list[int] = []
        for line in self._cli(self.alive()[0], "CLUSTER", "NODES").splitlines():
            parts = line.split()
            if len(parts) > 2 and "master" in parts[2] and "fail" not in parts[2]:
                port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
                if port in self.alive():
                    found.append(port)
        return sorted(found)

    def serving(self, key: str) -> int | None:
        """The port of the master that serves ``key``'s slot and is not marked failed
        (None while a failover is under way)."""
        slot = int(self._cli(self.alive()[0], "CLUSTER", "KEYSLOT", key).strip())
        for line in self._cli(self.alive()[0], "CLUSTER", "NODES").splitlines():
            parts = line.split()
            if len(parts) > 8 and "master" in parts[2] and "fail" not in parts[2]:
                for span in parts[8:]:
                    low, _, high = span.partition("-")
                    if low.isdigit() and int(low) <= slot <= int(high or low):
                        return int(parts[1].split("@")[0].rsplit(":", 1)[1])
        return None

    def kill(self, port: int) -> None:
        """SIGKILL one node (no shutdown, nothing saved): its replica takes over."""
        process = self.processes.pop(port)
        process.kill()
        process.wait(10)

    def restart(self, port: int) -> None:
        """Start node ``port`` (again: its nodes file keeps its identity, so a master that
        was failed over comes back as a replica of its successor)."""
        server = shutil.which("redis-server") or "redis-server"
        self.processes[port] = subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", f"nodes-{port}.conf",
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--save", "", "--appendonly",
             "no", "--dir", str(self.dir), "--logfile", f"redis-{port}.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        for port in list(self.processes):
            process = self.processes.pop(port)
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


_shared: RedisCluster | None = None
_shared_lock = threading.Lock()


def shared_cluster() -> RedisCluster:
    """The cluster every test of this session shares (started once, stopped at exit).

    Tests that kill a node use their own :class:`RedisCluster` instead."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.processes:
            cluster = RedisCluster()
            cluster.start()
            _shared = cluster
        return _shared
