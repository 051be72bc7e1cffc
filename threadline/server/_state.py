"""What every route shares: the store, the models, the keys, and who is calling.

:class:`ServerState` lives on ``app.state.threadline``; routes get it, and the
:class:`Caller`, through FastAPI dependencies (:func:`get_state`, :func:`get_caller`).

Who is calling: with keys in the store (``threadline keys create USER``) every request
needs ``Authorization: Bearer <key>`` and acts as that key's user; a missing or wrong key
is a 401. With no key at all the server serves one local user, who sees every session
(the terminal's too), and answers only requests from a loopback address (403 otherwise):
``threadline serve`` refuses to bind another address without keys, and this check holds
for apps mounted by hand as well.

Ownership: a session belongs to the user who created it (``SessionInfo.owner``). Every
route that takes an id loads the session with :func:`owned_session`, which answers 404
for an id that does not exist and for another user's alike, so ids cannot be probed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from threadline._errors import InputError
from threadline.models._base import BaseChatModel
from threadline.server._errors import ApiError, not_found
from threadline.server._keys import RESERVED_PREFIX, KeyRing
from threadline.stores import SessionInfo, Store
from threadline.stores._checks import validate_session_id

__all__ = ["Caller", "CallerDep", "ServerState", "StateDep", "get_caller", "get_state",
           "is_loopback", "owned_session", "session_id_param"]


@dataclass
class ServerState:
    store: Store
    #: Served model ids -> models; requests name one in ``model`` (or get the first).
    models: dict[str, BaseChatModel]
    keys: KeyRing
    #: A system prompt put before every conversation the server runs a model on.
    system: str | None = None
    #: Keys are required even when none exists yet (nobody can call until one does).
    require_keys: bool = False
    options: dict[str, object] = field(default_factory=dict)

    @property
    def default_model(self) -> str:
        return next(iter(self.models))

    def model(self, name: str | None, param: str = "model") -> tuple[str, BaseChatModel]:
        """The served model a request names (``None``: the default), else a 404."""
        if name is None or name == "":
            name = self.default_model
        model = self.models.get(name)
        if model is None:
            raise ApiError(404, f"The model '{name:.200}' does not exist; this server serves "
                           f"{', '.join(sorted(self.models))} (GET /v1/models).",
                           param=param, code="model_not_found")
        return name, model


@dataclass(frozen=True)
class Caller:
    """The user a request acts for; ``user=None`` is the local user of a server without
    keys, who sees every session."""

    user: str | None

    @property
    def owner(self) -> str | None:
        """The owner the caller's new sessions get."""
        return self.user

    def may_see(self, info: SessionInfo | None) -> bool:
        if info is None or info.session_id.startswith(RESERVED_PREFIX):
            return False
        return self.user is None or info.owner == self.user


async def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.threadline
    return state


StateDep = Annotated[ServerState, Depends(get_state)]


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host in ("localhost", "testclient"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, code="invalid_api_key")


async def get_caller(request: Request, state: StateDep) -> Caller:
    """The caller (see the module docstring); 401/403 when they may not call at all."""
    if state.require_keys or await state.keys.any():
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("You didn't provide an API key. Send it as "
                                "'Authorization: Bearer <key>' (threadline keys create USER).")
        user = await state.keys.user_of(token.strip())
        if user is None:
            raise _unauthorized("Incorrect API key provided.")
        return Caller(user)
    client = request.client.host if request.client else None
    if not is_loopback(client):
        raise ApiError(403, "This server has no API keys, so it serves only its own machine "
                       "(a loopback address). Create a key with `threadline keys create "
                       "USER`.", type="permission_error", code="forbidden")
    return Caller(None)


CallerDep = Annotated[Caller, Depends(get_caller)]


def session_id_param(value: str, param: str, kind: str = "Conversation") -> str:
    """A session id from a path or body, validated; a reserved id is a 404."""
    try:
        validate_session_id(value)
    except InputError as exc:
        raise ApiError(400, f"Invalid '{param}': {exc}", param=param,
                       code="invalid_value") from None
    if value.startswith(RESERVED_PREFIX):
        raise not_found(kind, value, param)
    return value


async def owned_session(state: ServerState, caller: Caller, session_id: str, *,
                        param: str = "conversation_id", kind: str = "Conversation"
                        ) -> SessionInfo:
    """The session's info if the caller may see it, else the same 404 either way."""
    session_id_param(session_id, param, kind)
    info = await state.store.asession_info(session_id)
    if info is None or not caller.may_see(info):
        raise not_found(kind, session_id, param)
    return info
