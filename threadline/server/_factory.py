"""The app of one ``threadline serve --workers N`` process, built from the environment.

uvicorn starts each worker as a fresh interpreter that imports the app by name
(``threadline.server._factory:app``, ``factory=True``): nothing but the environment
crosses into it. So the command resolves its settings once (flags, environment, config
file), checks them, and hands them down as :data:`ENVIRONMENT` variables that
:func:`app` reads; every worker then serves the same store, models and key policy. The
workers share nothing else: the store is the one place state lives (see
:mod:`threadline.server._app`), so any worker may answer any request.

Model names are resolved here by :func:`~threadline.models._names.get_chat_model`, the
same names ``--model`` takes (``echo``, ``openai:gpt-4o-mini``...); the command has
loaded each once already, so a bad name fails there, before any worker starts. (The
test knob ``THREADLINE_FAKE_SLEEP`` of the command line is not read here: it belongs to
:mod:`threadline.cli`, which a server module may not import.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

from fastapi import FastAPI

from threadline._errors import InputError
from threadline.server._app import create_app

__all__ = ["ENVIRONMENT", "MODELS_ENV", "REQUIRE_KEYS_ENV", "STORE_ENV", "SYSTEM_ENV",
           "app", "environment"]

STORE_ENV = "THREADLINE_SERVE_STORE"
#: A JSON list of model names; the first is the default.
MODELS_ENV = "THREADLINE_SERVE_MODELS"
#: Absent: no system prompt (an empty value is an empty prompt).
SYSTEM_ENV = "THREADLINE_SERVE_SYSTEM"
#: "1" or "0".
REQUIRE_KEYS_ENV = "THREADLINE_SERVE_REQUIRE_KEYS"
ENVIRONMENT = (STORE_ENV, MODELS_ENV, SYSTEM_ENV, REQUIRE_KEYS_ENV)


def environment(store_url: str, models: Sequence[str], *, system: str | None = None,
                require_keys: bool = False) -> dict[str, str]:
    """The variables that make :func:`app` build this app (``SYSTEM_ENV`` only when set)."""
    values = {STORE_ENV: store_url, MODELS_ENV: json.dumps(list(models)),
              REQUIRE_KEYS_ENV: "1" if require_keys else "0"}
    if system is not None:
        values[SYSTEM_ENV] = system
    return values


def app(environ: Mapping[str, str] | None = None) -> FastAPI:
    """The app the :data:`ENVIRONMENT` describes (``os.environ`` by default).

    A missing or malformed variable is an :class:`InputError` naming it: uvicorn prints
    it and the worker does not start (rather than serving other settings)."""
    environ = os.environ if environ is None else environ
    store = environ.get(STORE_ENV)
    if not store:
        raise InputError(f"{STORE_ENV} is not set: start the workers with `threadline serve "
                         "--workers N`, which sets it")
    try:
        models = json.loads(environ.get(MODELS_ENV, ""))
    except ValueError:
        models = None
    if not isinstance(models, list) or not models or not all(
            isinstance(name, str) for name in models):
        raise InputError(f"{MODELS_ENV} must be a JSON list of model names, e.g. "
                         f'["echo"]; got {environ.get(MODELS_ENV)!r:.100}')
    require = environ.get(REQUIRE_KEYS_ENV, "0")
    if require not in ("0", "1"):
        raise InputError(f"{REQUIRE_KEYS_ENV} must be 0 or 1, got {require!r:.20}")
    return create_app(store, list(models), system=environ.get(SYSTEM_ENV),
                      require_keys=require == "1")
