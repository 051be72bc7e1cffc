"""Shared test configuration: tests never reach the internet; `home`, a private THREADLINE_HOME."""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_server(host: str, port: int, name: str) -> None:
    """Skip (locally) or fail (in CI) when a server the test needs is not up."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError:
        message = f"{name} is not reachable on {host}:{port}; start it as DEVELOPERS.md says"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


#: Settings a developer's environment may hold that would change what a command does.
LEAKY = ("THREADLINE_STORE", "THREADLINE_MODEL", "THREADLINE_SYSTEM", "THREADLINE_CONFIG",
         "THREADLINE_FAKE_SLEEP", "THREADLINE_CONTEXT_WINDOW", "OPENAI_API_KEY",
         "OPENAI_BASE_URL", "OPENAI_API_BASE",
         "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private THREADLINE_HOME, none of :data:`LEAKY` set, and an empty stdin (a test
    that types into a command replaces it)."""
    for name in LEAKY:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("THREADLINE_HOME", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    return tmp_path
