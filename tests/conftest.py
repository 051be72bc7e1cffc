"""Shared test configuration: tests never reach the internet."""

from __future__ import annotations

import os
import socket

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
