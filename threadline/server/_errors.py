"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

Routes raise :class:`ApiError` (or let threadline's own errors through); the handlers
that :func:`install_handlers` adds turn every failure into that body with the status
code OpenAI uses, so the official SDKs raise their usual exceptions
(``openai.NotFoundError``, ``openai.BadRequestError``...). Nothing of a driver error
reaches the client but its one-line, redacted message; the traceback stays in the log.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from threadline._errors import (
    InputError,
    ModelError,
    ModelRateLimitError,
    ModelTimeoutError,
    StoreConnectionError,
    StoreError,
    StoreTimeoutError,
    ThreadlineError,
)
from threadline._redact import redact_text

__all__ = ["ApiError", "error_body", "install_handlers", "not_found"]

logger = logging.getLogger("threadline.server")


class ApiError(Exception):
    """An error answered in OpenAI's shape with ``status``."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code


def not_found(kind: str, ident: str, param: str | None = None) -> ApiError:
    """The 404 for an id the caller may not see: absent and another user's look alike."""
    return ApiError(404, f"{kind} with id '{ident:.200}' not found.", param=param,
                    code="not_found")


def error_body(message: str, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _json(error: ApiError) -> JSONResponse:
    return JSONResponse(error_body(error.message, error.type, error.param, error.code),
                        status_code=error.status)


def as_api_error(exc: Exception) -> ApiError:
    """threadline's errors as the status a client can act on."""
    if isinstance(exc, ApiError):
        return exc
    text = redact_text(str(exc)) if isinstance(exc, ThreadlineError) else "internal error"
    if isinstance(exc, InputError):
        return ApiError(400, text)
    if isinstance(exc, StoreTimeoutError | ModelTimeoutError):
        return ApiError(504, text, type="server_error", code="timeout")
    if isinstance(exc, ModelRateLimitError):
        return ApiError(429, text, type="rate_limit_error", code="rate_limit_exceeded")
    if isinstance(exc, StoreConnectionError):
        return ApiError(503, text, type="server_error", code="store_unavailable")
    if isinstance(exc, ModelError):
        return ApiError(502, text, type="server_error", code="model_error")
    if isinstance(exc, StoreError):
        return ApiError(500, text, type="server_error", code="store_error")
    return ApiError(500, "internal error (see the server's log)", type="server_error")


def _field(location: tuple[Any, ...]) -> str | None:
    parts = [str(part) for part in location if part not in ("body", "query", "path")]
    return ".".join(parts) or None


def install_handlers(app: FastAPI) -> None:
    """Every error of ``app`` answered in OpenAI's shape."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return _json(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        param = _field(tuple(first.get("loc", ())))
        message = str(first.get("msg", "invalid request"))
        text = f"Invalid value for '{param}': {message}" if param else message
        return _json(ApiError(400, text, param=param, code="invalid_value"))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return _json(ApiError(exc.status_code, str(exc.detail), code=code))

    @app.exception_handler(ThreadlineError)
    async def _threadline(request: Request, exc: ThreadlineError) -> JSONResponse:
        error = as_api_error(exc)
        if error.status >= 500:
            logger.warning("%s %s failed: %s", request.method, request.url.path, error.message)
        return _json(error)

    @app.exception_handler(Exception)
    async def _other(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return _json(as_api_error(exc))
