"""The web chat: ``GET /`` and its files under ``/static/``.

The page is plain files shipped in the package (``threadline/server/static``): HTML, CSS
and vanilla JavaScript modules, no build step and nothing fetched from elsewhere, so it
works offline. It is static, so it needs no key; everything it shows comes from the
``/v1`` API, which does (the page asks for a key on a 401 and keeps it in the browser).

Serving is deliberately narrow: a name is served only if it is one of the files listed in
the static directory (no path is ever joined from the request, so nothing outside can be
reached), with a content type from a fixed table. Every answer carries a strict
Content-Security-Policy: scripts and styles only from this origin and never inline, so
even a bug in the page's Markdown rendering could not run a script from model output.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from threadline.server._errors import ApiError

__all__ = ["SECURITY_HEADERS", "STATIC_DIR", "router"]

router = APIRouter()

STATIC_DIR = Path(__file__).with_name("static")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The files change with the package version: revalidate rather than serve stale code.
    "Cache-Control": "no-cache",
}

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}


def _static_files() -> dict[str, Path]:
    """The servable files by name: regular files of the static dir with a known type."""
    if not STATIC_DIR.is_dir():
        return {}
    return {path.name: path for path in STATIC_DIR.iterdir()
            if path.is_file() and path.suffix in _TYPES and not path.name.startswith(".")}


def _file(name: str) -> Response:
    path = _static_files().get(name)
    if path is None:
        raise ApiError(404, f"No static file named '{name:.100}'.", code="not_found")
    return Response(path.read_bytes(), media_type=_TYPES[path.suffix],
                    headers=SECURITY_HEADERS)


# Sync routes: FastAPI runs them in its thread pool, so reading a file never blocks the loop.
@router.get("/", include_in_schema=False)
def index() -> Response:
    return _file("index.html")


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    return _file(name)
