"""The ASGI application: :func:`create_app`.

One FastAPI app per store: the routers of :mod:`~threadline.server._conversations`
(Conversations API and what OpenAI lacks: listing, search, fork, export),
:mod:`~threadline.server._responses` (Responses API), :mod:`~threadline.server._chat`
(Chat Completions, models) and :mod:`~threadline.server._web` (the web chat at ``/``),
sharing one :class:`~threadline.server._state.ServerState`. The wire format is pydantic
models, so ``/openapi.json`` and ``/docs`` describe every route.

The app holds no state of its own beyond the store's connection pool: any number of
processes on one store serve the same conversations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from threadline._errors import InputError
from threadline.models._base import BaseChatModel
from threadline.server._errors import error_body, install_handlers
from threadline.server._keys import KeyRing
from threadline.server._state import ServerState
from threadline.stores import Store, open_store

__all__ = ["DEFAULT_MAX_BODY", "create_app"]

#: Request bodies larger than this are refused with a 413 (bytes).
DEFAULT_MAX_BODY = 4 * 1024 * 1024


def _models(model: BaseChatModel | str | Sequence[BaseChatModel | str] | Mapping[
        str, BaseChatModel | str]) -> dict[str, BaseChatModel]:
    from threadline.models._names import get_chat_model

    if isinstance(model, Mapping):
        pairs = list(model.items())
    else:
        many = [model] if isinstance(model, str | BaseChatModel) else list(model)
        pairs = [(m if isinstance(m, str) else m.model_name, m) for m in many]
    if not pairs:
        raise InputError("the server needs at least one model")
    models: dict[str, BaseChatModel] = {}
    for name, value in pairs:
        if name in models:
            raise InputError(f"the model id {name!r} is served twice")
        models[name] = get_chat_model(value) if isinstance(value, str) else value
    return models


class _BodyLimit:
    """Refuses request bodies over ``limit`` bytes (declared or streamed) with a 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send)
                return
        seen = 0
        refused = False

        async def limited() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    refused = True
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            if refused:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        import json

        body = json.dumps(error_body(f"The request body is larger than {self.limit:,} bytes.",
                                     code="request_too_large")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def create_app(store: Store | str, model: BaseChatModel | str | Sequence[BaseChatModel | str]
               | Mapping[str, BaseChatModel | str] = "echo", *, system: str | None = None,
               require_keys: bool = False, max_body: int = DEFAULT_MAX_BODY,
               web: bool = True, **options: Any) -> FastAPI:
    """The OpenAI-compatible server on ``store`` (a :class:`Store` or a store URL),
    serving ``model`` (a model name such as ``"openai:gpt-4o-mini"``, a chat model, a
    list of them, or a dict of model id -> model).

    >>> app = create_app("sqlite:///chat.db", "echo")   # doctest: +SKIP
    >>> # uvicorn.run(app, host="127.0.0.1", port=8000)

    ``system`` is put before every conversation the model reads; ``require_keys`` asks
    for a key even while none exists; ``max_body`` bounds request bodies (bytes);
    ``web=False`` leaves out the web chat.
    """
    from threadline.server import _chat, _conversations, _responses, _web

    owned = isinstance(store, str)
    the_store = open_store(store) if isinstance(store, str) else store
    state = ServerState(the_store, _models(model), KeyRing(the_store), system=system,
                        require_keys=require_keys, options=dict(options))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await the_store.asetup()
        try:
            yield
        finally:
            if owned:
                await the_store.aclose()

    from threadline import __version__

    app = FastAPI(title="threadline", version=__version__, lifespan=lifespan,
                  description="OpenAI-compatible conversations on a threadline store.")
    app.state.threadline = state
    install_handlers(app)

    @app.get("/v1/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        """For load balancers and ``threadline serve``'s own start check; no key needed."""
        return {"status": "ok"}

    app.include_router(_conversations.router)
    app.include_router(_responses.router)
    app.include_router(_chat.router)
    if web:
        app.include_router(_web.router)
    app.add_middleware(_BodyLimit, limit=max_body)
    return app
