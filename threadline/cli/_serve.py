"""``threadline serve`` and ``threadline keys ...``: the OpenAI-compatible server.

``serve`` resolves its store, models and system prompt like ``chat`` (flag, environment,
config file, default: :mod:`threadline.cli._config`), so it serves the conversations the
terminal stores. It checks everything a user can get wrong before uvicorn starts: the
store answers (and its tables exist: one setup, not one per worker), the models load,
and an address other machines can reach is not bound while the store holds no API key
(the app would answer them 403 anyway; refusing says why at once). Then one banner line
on stderr, and uvicorn: the app object itself with one worker, or with ``--workers N``
the import string of :mod:`threadline.server._factory`, whose workers read the resolved
settings from the environment. Ctrl-C and SIGTERM stop it gracefully, exit code 0.

``keys`` administers the API keys (:class:`~threadline.server._keys.KeyRing`), which
live in the store itself: a key made on one machine works on every server of that
store. ``keys create`` prints the key once, alone on its last line, so scripts take
``| tail -n 1``; only its SHA-256 is stored.

FastAPI and uvicorn are the ``server`` extra: without them both commands fail with the
one line that says what to install.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from threadline._errors import InputError, MissingDependencyError
from threadline.cli._common import (
    add_store_argument,
    format_time,
    load_model,
    open_configured_store,
    shown_url,
)
from threadline.cli._config import Config, resolve
from threadline.cli._report import UsageError
from threadline.cli._visible import visible

if TYPE_CHECKING:
    from threadline.models._base import BaseChatModel
    from threadline.server._keys import KeyRing
    from threadline.stores import Store

__all__ = ["add_keys_arguments", "add_serve_arguments", "run_keys", "run_serve"]

MAX_WORKERS = 256
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _require_server_extra() -> None:
    """FastAPI and uvicorn, or the one-line error naming the extra."""
    for module in ("fastapi", "uvicorn"):
        try:
            __import__(module)
        except ImportError as exc:
            raise MissingDependencyError(module, "server") from exc


# -- flag values ------------------------------------------------------------------------------


def _number(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse ``type=``: an int from ``low`` to ``high``, else a one-line error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {what} from {low} to {high}, "
                                             f"got {text!r:.40}")
        return value

    return parse


def is_loopback_host(host: str) -> bool:
    """Whether binding ``host`` serves this machine only (127.0.0.0/8, ::1, localhost)."""
    from threadline.server._state import is_loopback

    host = host.strip().strip("[]").lower().rstrip(".")
    return host == "localhost" or (host != "testclient" and is_loopback(host))


def _base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}"


# -- threadline serve ---------------------------------------------------------------------------


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    add_store_argument(parser)
    parser.add_argument("--model", metavar="NAME", action="append",
                        help="a model to serve: local, gguf:/path/model.gguf, openai:MODEL, "
                             "fake or echo; repeat to serve several, the first is the "
                             "default (default: $THREADLINE_MODEL, the config file, else "
                             "local)")
    parser.add_argument("--system", metavar="TEXT",
                        help="system prompt put before every conversation (default: "
                             "$THREADLINE_SYSTEM, the config file, else none)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only; "
                             "any other needs an API key: threadline keys create USER)")
    parser.add_argument("--port", type=_number(0, 65535, "a port"), default=8000,
                        help="port to listen on (default: 8000)")
    parser.add_argument("--workers", type=_number(1, MAX_WORKERS, "a number of processes"),
                        default=1, metavar="N",
                        help="server processes sharing the port (default: 1)")
    parser.add_argument("--require-keys", action="store_true",
                        help="require an API key even while the store holds none (nobody "
                             "can call until `threadline keys create USER`)")
    parser.add_argument("--log-level", choices=_LOG_LEVELS, default="warning",
                        help="uvicorn's log level; info logs every request "
                             "(default: warning)")


def _settings(args: argparse.Namespace) -> tuple[Config, list[str]]:
    """The resolved settings (``--model`` given: its first is the one ``chat`` would
    resolve) and the model names to serve."""
    names: list[str] = list(args.model or [])
    config = resolve(store=args.store, model=names[0] if names else None, system=args.system)
    if not names:
        names = [config.model_name]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UsageError(f"--model {name!r} is given twice; name each model once")
        seen.add(name)
    return config, names


def run_serve(args: argparse.Namespace, out: TextIO) -> int:
    _require_server_extra()
    config, names = _settings(args)
    models: dict[str, BaseChatModel] = {name: load_model(name) for name in names}
    store = open_configured_store(config)
    try:
        keys = _check_store(args, store)
        # A server started with keys keeps requiring one, even after the last is revoked:
        # behind a reverse proxy every caller looks local, so falling back to the
        # key-less local user would open every conversation.
        args.require_keys = args.require_keys or keys > 0
        policy = (f"API keys required ({keys} in the store)" if keys or args.require_keys
                  else "no API keys: this machine only")
        banner = (f"threadline serve · {_base_url(args.host, args.port)} · store "
                  f"{shown_url(store)} · model{'s' if len(names) > 1 else ''} "
                  f"{', '.join(names)} · {policy}")
        sys.stderr.write(visible(banner) + "\n")
        sys.stderr.flush()
        if args.workers == 1:
            _serve_one(args, store, models, config.system.value)
            return 0
    finally:
        store.close()
    _serve_many(args, config.store_url, names, config.system.value)
    return 0


def _check_store(args: argparse.Namespace, store: Store) -> int:
    """Set up ``store`` and refuse what cannot work; the number of keys it holds."""
    from threadline.server._keys import KeyRing

    if args.workers > 1 and (store.url.scheme == "memory" or getattr(store, "memory", False)):
        raise UsageError(f"the store {shown_url(store)} lives in one process's memory: with "
                         "--workers each worker would have its own; use one worker, or a "
                         "store in a file or on a server (sqlite:///chat.db)")
    store.setup()  # once here, not raced by every worker's start
    keys = len(KeyRing(store).list())
    if not keys and not args.require_keys and not is_loopback_host(args.host):
        raise UsageError(
            f"no API keys: binding {visible(args.host)!r} would open the conversations to "
            "other machines, and a server without keys cannot tell its users apart; "
            "create one with `threadline keys create USER`, or bind 127.0.0.1 (or pass "
            "--require-keys to start anyway, refusing every call until a key exists)")
    return keys


@contextmanager
def _graceful() -> Iterator[None]:
    """Ctrl-C and SIGTERM end the server with exit code 0.

    uvicorn catches both, shuts down gracefully, and then raises the signal again for
    whoever handled it before; without this, that would be the default handler (the
    process killed by SIGTERM, a KeyboardInterrupt for SIGINT) and the exit code a
    failure. Here the raised-again signal finds a handler that only notes it."""
    def noted(signum: int, frame: FrameType | None) -> None:
        pass

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread handles signals (uvicorn then installs none)
        return
    before = {sig: signal.signal(sig, noted) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _not_started(args: argparse.Namespace) -> OSError:
    return OSError(f"the server did not start on {_base_url(args.host, args.port)} (uvicorn "
                   "says why above); choose another --port or --host")


@contextmanager
def _start_failure(args: argparse.Namespace) -> Iterator[None]:
    """uvicorn ends the process when it cannot bind (``sys.exit``): one error line instead."""
    try:
        yield
    except SystemExit as exc:
        if exc.code in (0, None):
            raise
        raise _not_started(args) from None


def _serve_one(args: argparse.Namespace, store: Store, models: dict[str, BaseChatModel],
               system: str | None) -> None:
    import uvicorn

    from threadline.server._app import create_app

    app = create_app(store, models, system=system, require_keys=args.require_keys)
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port,
                                           log_level=args.log_level, lifespan="on"))
    with _graceful(), _start_failure(args):
        server.run()
    if not server.started:
        raise _not_started(args)


def _serve_many(args: argparse.Namespace, store_url: str, names: list[str],
                system: str | None) -> None:
    import uvicorn

    from threadline.server._factory import ENVIRONMENT, environment

    # The workers are new interpreters: the settings reach them through the environment.
    saved = {name: os.environ.get(name) for name in ENVIRONMENT}
    for name in ENVIRONMENT:
        os.environ.pop(name, None)
    os.environ.update(environment(store_url, names, system=system,
                                  require_keys=args.require_keys))
    try:
        with _graceful(), _start_failure(args):
            uvicorn.run("threadline.server._factory:app", factory=True, host=args.host,
                        port=args.port, workers=args.workers, log_level=args.log_level)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- threadline keys --------------------------------------------------------------------------

_WHOLE_KEY = re.compile(r"tl-([0-9a-f]{12})-.*", re.DOTALL)


def add_keys_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="keys_action", metavar="ACTION", required=True)

    text = "make an API key for USER (printed once, alone on the last line; stored hashed)"
    p = sub.add_parser("create", help=text, description=text)
    p.set_defaults(action=_create)
    p.add_argument("user", metavar="USER",
                   help="who the key is for: letters, digits and _.@+- (their "
                        "conversations are theirs alone)")
    add_store_argument(p)

    text = "list the API keys: key id, user, created (never the keys)"
    p = sub.add_parser("list", help=text, description=text)
    p.set_defaults(action=_list)
    p.add_argument("--user", metavar="USER", help="only this user's keys")
    add_store_argument(p)

    text = "revoke an API key, by its key id or the key itself"
    p = sub.add_parser("revoke", help=text, description=text)
    p.set_defaults(action=_revoke)
    p.add_argument("key", metavar="KEY_ID_OR_KEY")
    add_store_argument(p)


def run_keys(args: argparse.Namespace, out: TextIO) -> int:
    _require_server_extra()
    from threadline.server._keys import KeyRing

    with open_configured_store(resolve(store=args.store)) as store:
        store.setup()
        code: int = args.action(args, KeyRing(store), store, out)
    return code


def _create(args: argparse.Namespace, ring: KeyRing, store: Store, out: TextIO) -> int:
    key, text = ring.create(args.user)
    out.write(f"key id {key.key_id} for {visible(key.user)} in {shown_url(store)}; shown "
              "once, stored hashed (revoke: threadline keys revoke "
              f"{key.key_id})\n{text}\n")
    return 0


def _list(args: argparse.Namespace, ring: KeyRing, store: Store, out: TextIO) -> int:
    from datetime import UTC, datetime

    keys = ring.list(args.user)
    if not keys:
        out.write("no keys" + (f" for {visible(args.user)}" if args.user else "") +
                  "; create one with `threadline keys create USER`\n")
        return 0
    width = max(4, *(len(visible(key.user)) for key in keys))
    out.write(f"{'KEY ID':<12}  {'USER':<{width}}  CREATED\n")
    for key in keys:
        created = format_time(datetime.fromtimestamp(key.created_at, UTC))
        out.write(f"{key.key_id:<12}  {visible(key.user):<{width}}  {created}\n")
    return 0


def _revoke(args: argparse.Namespace, ring: KeyRing, store: Store, out: TextIO) -> int:
    whole = _WHOLE_KEY.fullmatch(args.key)
    # A key given whole is never echoed: only its id, which names it without granting.
    key_id = whole.group(1) if whole else args.key
    if whole is None and args.key.startswith("tl-"):
        raise InputError("not a key or a key id: a key reads tl-<12 hex digits>-<secret>; "
                         "`threadline keys list` shows the key ids")
    if not ring.revoke(key_id):
        raise InputError(f"no key with id {visible(key_id)!r:.40} in {shown_url(store)}; "
                         "`threadline keys list` shows the keys")
    out.write(f"revoked key {key_id}\n")
    if not ring.list():
        # Without keys a server turns back into the local user's: say so, it matters.
        out.write("that was the last key: running servers on this store refuse every call "
                  "until a new key exists; a server started now without keys answers only "
                  "this machine, without a key\n")
    return 0
