"""``threadline serve``: an OpenAI-compatible conversation server with a web chat.

>>> from threadline.server import create_app
>>> app = create_app("sqlite:///chat.db", "echo")   # doctest: +SKIP

Needs ``pip install "threadline[server]"`` (FastAPI and uvicorn). See docs/server.md.
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    from threadline._errors import MissingDependencyError

    raise MissingDependencyError("fastapi", "server") from exc

from threadline.server._app import DEFAULT_MAX_BODY, create_app
from threadline.server._keys import ApiKey, KeyRing

__all__ = ["DEFAULT_MAX_BODY", "ApiKey", "KeyRing", "create_app"]
