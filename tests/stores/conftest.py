"""Fixtures shared by the store tests: one isolated store per backend id.

Every contract test takes the ``backend`` fixture (a :class:`BackendSpec`) or the
``store`` / ``store_factory`` fixtures built on it, and so runs once per backend id in
:data:`BACKEND_IDS`. Each test gets its own data: a temporary directory for ``file`` and
``sqlite``, a unique ``table`` for PostgreSQL and MySQL, a unique ``key_prefix`` for
Redis. Everything is destroyed afterwards (``store.destroy()``), never a whole database.

Run one backend with ``.venv/bin/pytest tests/stores -k sqlite``; server backends are
skipped locally (and fail in CI) when their server is not up.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import require_server

from threadline.stores import Store, open_store

BACKEND_IDS = ["memory", "file", "sqlite", "sqlite-memory", "postgresql", "mysql", "redis",
               "redis-cluster", "cosmos", "dynamodb"]

# Where the shared servers listen (see STORES.md); tests use unique tables / prefixes.
SERVERS: dict[str, tuple[str, int, str]] = {
    "postgresql": ("127.0.0.1", 5432, "PostgreSQL"),
    "mysql": ("127.0.0.1", 3306, "MariaDB"),
    "redis": ("127.0.0.1", 6379, "Redis"),
}


@dataclass
class BackendSpec:
    """How to reach one isolated instance of a backend, and what it can do."""

    id: str
    #: A URL every store opened in this test shares (same table / prefix / directory).
    url: str
    #: Other processes can open ``url`` and see the same data.
    shared_across_processes: bool = True
    #: The option naming the storage area ("table", "key_prefix") or None.
    name_option: str | None = None
    #: The server expires keys by itself, so purge_expired() may return 0.
    server_expires: bool = False
    #: A URL of this backend with a password in it (the store is never used).
    password_url: str | None = None
    #: A URL of this backend whose server is certainly down (for connection errors).
    unreachable_url: str | None = None
    #: Each ``open()`` gets its own, separate data (memory:// and sqlite:// in memory).
    separate_opens: bool = False
    #: A TTL (seconds) short enough to wait out, long enough for a dozen of this
    #: backend's round trips even on a loaded machine (the emulators take ~30 ms each).
    short_ttl: float = 1.0
    opened: list[Store] = field(default_factory=list)

    def open(self, **options: Any) -> Store:
        """Open a store on this test's data; closed and destroyed after the test."""
        store = open_store(self.url, **options)
        self.opened.append(store)
        return store

    def cleanup(self) -> None:
        if not self.opened:
            # Tests that hand the URL to other processes open a store here first.
            return
        # One destroy() drops shared data; separate in-memory stores each hold their own.
        targets = self.opened if self.separate_opens else self.opened[:1]
        try:
            for target in targets:
                destroy = getattr(target, "destroy", None)
                if destroy is not None:
                    destroy()
        finally:
            for store in self.opened:
                with contextlib.suppress(Exception):  # close all the others anyway
                    store.close()


def _unique() -> str:
    return secrets.token_hex(5)


def make_spec(backend_id: str, tmp_path: Path) -> BackendSpec:
    """The :class:`BackendSpec` of a fresh, isolated instance of ``backend_id``."""
    if backend_id in SERVERS:
        host, port, name = SERVERS[backend_id]
        require_server(host, port, name)
    if backend_id == "memory":
        return BackendSpec("memory", "memory://", shared_across_processes=False,
                           separate_opens=True)
    if backend_id == "file":
        return BackendSpec("file", f"file://{tmp_path / 'sessions'}")
    if backend_id == "sqlite":
        return BackendSpec("sqlite", f"sqlite:///{tmp_path / 'chat.db'}", name_option="table")
    if backend_id == "sqlite-memory":
        return BackendSpec("sqlite-memory", "sqlite://", shared_across_processes=False,
                           name_option="table", separate_opens=True)
    if backend_id == "postgresql":
        return BackendSpec(
            "postgresql",
            f"postgresql://postgres@127.0.0.1:5432/test?table=t_{_unique()}",
            name_option="table",
            password_url="postgresql://postgres:s3cr3t-pw@127.0.0.1:5432/test",
            unreachable_url="postgresql://postgres:s3cr3t-pw@127.0.0.1:1/test",
        )
    if backend_id == "mysql":
        return BackendSpec(
            "mysql",
            f"mysql://root@127.0.0.1:3306/test?table=t_{_unique()}",
            name_option="table",
            password_url="mysql://root:s3cr3t-pw@127.0.0.1:3306/test",
            unreachable_url="mysql://root:s3cr3t-pw@127.0.0.1:1/test",
        )
    if backend_id == "redis":
        return BackendSpec(
            "redis",
            f"redis://127.0.0.1:6379/0?key_prefix=t{_unique()}:",
            name_option="key_prefix",
            server_expires=True,
            password_url="redis://:s3cr3t-pw@127.0.0.1:6379/0",
            unreachable_url="redis://:s3cr3t-pw@127.0.0.1:1/0",
        )
    if backend_id == "redis-cluster":
        from .redis_cluster import shared_cluster

        cluster = shared_cluster()
        return BackendSpec(
            "redis-cluster",
            cluster.url(key_prefix=f"t{_unique()}:"),
            name_option="key_prefix",
            server_expires=True,
            password_url="redis+cluster://:s3cr3t-pw@127.0.0.1:7000,127.0.0.1:7001/",
            unreachable_url="redis+cluster://:s3cr3t-pw@127.0.0.1:1/?connect_timeout=1",
        )
    if backend_id == "cosmos":
        from .cosmos_server import shared_server

        server = shared_server()
        return BackendSpec(
            "cosmos",
            server.url(f"t_{_unique()}"),
            password_url=f"cosmos://acct:s3cr3t-pw@127.0.0.1:{server.port}/test/c",
            unreachable_url="cosmos://acct:s3cr3t-pw@127.0.0.1:1/test/c?verify=false",
            short_ttl=3.0,
        )
    if backend_id == "dynamodb":
        from .dynamo_server import moto_server

        moto = moto_server()
        return BackendSpec(
            "dynamodb",
            moto.url(f"t_{_unique()}"),
            # DynamoDB table names allow '-' and leading digits: test_dynamodb.py checks them.
            name_option=None,
            password_url="dynamodb://AKID:s3cr3t-pw@chat?region=us-east-1",
            unreachable_url="dynamodb://AKID:s3cr3t-pw@chat?region=us-east-1"
                            "&endpoint_url=http://127.0.0.1:1&max_attempts=2",
            short_ttl=3.0,
        )
    raise ValueError(f"unknown backend id {backend_id!r}")


@pytest.fixture(params=BACKEND_IDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendSpec]:
    """One isolated instance of each backend; everything opened on it is destroyed."""
    spec = make_spec(request.param, tmp_path)
    try:
        yield spec
    finally:
        spec.cleanup()


@pytest.fixture
def store_factory(backend: BackendSpec) -> Callable[..., Store]:
    """``store_factory(**options)`` opens a store on this test's isolated data."""
    return backend.open


@pytest.fixture
def store(backend: BackendSpec) -> Store:
    """A store on this test's isolated data (no default TTL)."""
    return backend.open()


@pytest.fixture
def raw() -> Iterator[Any]:
    """A plain redis-py client on the shared Redis (the Redis tests look at raw keys)."""
    require_server("127.0.0.1", 6379, "Redis")
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    yield client
    client.close()


@pytest.fixture
def base(raw: Any) -> Iterator[str]:
    """A unique Redis key prefix; every key starting with it is deleted afterwards."""
    value = f"t{secrets.token_hex(5)}:"
    yield value
    for key in raw.scan_iter(match=value + "*", count=1000):
        raw.delete(key)
