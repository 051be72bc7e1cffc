"""What the subcommands share: the common flags, opening the configured store and model,
picking a session, and printing messages.

Failures become :class:`ThreadlineError` subclasses whose message ends with the fix
(``threadline.cli._main.main`` prints them as one line); nothing here prints a traceback.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

from threadline._errors import StoreConnectionError
from threadline.cli._config import Config, data_dir, default_store_url, resolve

if TYPE_CHECKING:
    from threadline.messages._values import BaseMessage
    from threadline.models._base import BaseChatModel
    from threadline.stores import Store

__all__ = [
    "FAKE_SLEEP_ENV",
    "add_model_argument",
    "add_store_argument",
    "config_from",
    "format_message",
    "format_time",
    "load_model",
    "most_recent_session",
    "new_session_id",
    "open_configured_store",
]

#: Seconds the ``fake``/``echo`` models wait per streamed word: lets tests (and demos)
#: interrupt an answer halfway. Read only for those two models.
FAKE_SLEEP_ENV = "THREADLINE_FAKE_SLEEP"


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="URL",
                        help="store URL, e.g. sqlite:///chat.db, postgresql://host/db, "
                             "redis://host:6379/0 (default: $THREADLINE_STORE, the config "
                             "file, else a SQLite file in the data directory)")


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="NAME",
                        help="local (default), gguf:/path/model.gguf, openai:MODEL, fake or "
                             "echo (default: $THREADLINE_MODEL, the config file, else local)")


def config_from(args: argparse.Namespace) -> Config:
    return resolve(store=getattr(args, "store", None), model=getattr(args, "model", None),
                   system=getattr(args, "system", None))


def open_configured_store(config: Config, *, check: bool = True) -> Store:
    """Open the configured store; with ``check``, make sure it answers.

    The default SQLite file's folder is created on first use; any other URL is used as
    given.
    """
    from threadline.stores import open_store

    url = config.store_url
    if url == default_store_url():
        data_dir().mkdir(parents=True, exist_ok=True)
    store = open_store(url)
    if check:
        try:
            store.ping()
        except StoreConnectionError as exc:
            store.close()
            raise StoreConnectionError(
                f"{exc} (store from {config.store.source}); start the server, or choose "
                "another store with --store URL or THREADLINE_STORE") from exc
    return store


def load_model(name: str) -> BaseChatModel:
    """The chat model a name stands for; ``fake``/``echo`` honour ``THREADLINE_FAKE_SLEEP``."""
    from threadline.models._names import get_chat_model

    kind = name.strip().partition(":")[0].lower()
    sleep = os.environ.get(FAKE_SLEEP_ENV)
    if kind in ("fake", "echo") and sleep:
        return get_chat_model(name, sleep=float(sleep))
    return get_chat_model(name)


def new_session_id(store: Store, prefix: str = "chat") -> str:
    """A fresh, readable, sortable session id: ``chat-20260101-120000`` (``-2``, ``-3``...
    if that second is taken)."""
    base = f"{prefix}-{datetime.now():%Y%m%d-%H%M%S}"
    candidate, number = base, 1
    while store.session_info(candidate) is not None:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def most_recent_session(store: Store, *, scan: int = 2000) -> str | None:
    """The session written to last (among the first ``scan``), or ``None`` if none.

    Stores keep no index by time, so this asks each session's info: fine for the
    personal stores ``threadline chat`` defaults to.
    """
    best: tuple[datetime, str] | None = None
    for number, sid in enumerate(store.iter_sessions()):
        if number >= scan:
            break
        info = store.session_info(sid)
        if info is None or info.updated_at is None:
            continue
        if best is None or info.updated_at > best[0]:
            best = (info.updated_at, sid)
    return best[1] if best else None


def format_time(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else "-"


_ROLES = {"human": "You", "ai": "AI", "system": "System", "tool": "Tool"}


def format_message(message: BaseMessage) -> str:
    """``You: text`` / ``AI: text``; an interrupted answer is marked."""
    role = _ROLES.get(message.type, message.type)
    text = message.text.rstrip()
    if (message.response_metadata or {}).get("interrupted"):
        text = f"{text} [interrupted]" if text else "[interrupted]"
    return f"{role}: {text}"


def print_messages(messages: Sequence[BaseMessage], out: TextIO) -> None:
    for message in messages:
        out.write(format_message(message) + "\n")
