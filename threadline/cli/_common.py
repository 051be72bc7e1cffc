"""What the subcommands share: the common flags and their checks, opening the configured
store and model, reading sessions, picking a session, and printing messages.

Failures become :class:`ThreadlineError` subclasses whose message ends with the fix
(:mod:`threadline.cli._report` words them; nothing here prints a traceback). Flag values
are checked by argparse ``type=`` functions (:func:`store_url`, :func:`count`), so bad
input is a usage error (exit 2) before a command does any work.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from threadline._errors import (
    ConfigurationError,
    InputError,
    StoreConnectionError,
    ThreadlineError,
)
from threadline._redact import redact_url
from threadline.cli._config import Config, data_dir, default_store_url, resolve
from threadline.cli._report import scrub

if TYPE_CHECKING:
    from threadline.messages._values import BaseMessage
    from threadline.models._base import BaseChatModel
    from threadline.stores import Store

__all__ = [
    "FAKE_SLEEP_ENV",
    "add_model_argument",
    "add_skip_invalid_argument",
    "add_store_argument",
    "config_from",
    "count",
    "format_time",
    "load_model",
    "most_recent_session",
    "new_session_id",
    "open_configured_store",
    "read_messages",
    "shown_url",
    "store_url",
]

#: Seconds the ``fake``/``echo`` models wait per streamed word: lets tests (and demos)
#: interrupt an answer halfway. Read only for those two models.
FAKE_SLEEP_ENV = "THREADLINE_FAKE_SLEEP"


# -- flag values, checked before a command runs ----------------------------------------------


def count(minimum: int, *, up_to: str = "MAX_LAST", what: str = "a whole number"
          ) -> Callable[[str], int]:
    """An argparse ``type=``: an int from ``minimum`` to the store limit named ``up_to``
    (a constant of :mod:`threadline.stores._base`: ``MAX_LAST``, 2**31-1, the most
    messages a read asks for; ``MAX_PAGE_LIMIT``, 10,000 sessions), else a one-line
    error. The limit is looked up when a value is checked: ``--help`` imports no store."""
    def parse(text: str) -> int:
        from threadline.stores import _base

        maximum: int = getattr(_base, up_to)
        try:
            value = int(text)
        except ValueError:  # also more than 4,300 digits
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what} >= {minimum}, got {text!r:.40}")
        if value > maximum:
            raise argparse.ArgumentTypeError(
                f"expected {what} <= {maximum:,} (the most a store accepts), got {text!r:.40}")
        return value

    return parse


def store_url(text: str) -> str:
    """An argparse ``type=`` for a store URL: its scheme and options are checked by
    opening the store, which does not connect (so it costs no round trip). A backend
    whose driver is missing passes here and fails, with the fix, when the command opens
    the store."""
    from threadline.stores import open_store

    try:
        open_store(text).close()
    except (InputError, ConfigurationError) as exc:
        raise argparse.ArgumentTypeError(scrub(str(exc))) from exc
    except ThreadlineError:
        pass
    except (TypeError, ValueError) as exc:
        # argparse would quote the value, password and all: say it here, redacted.
        raise argparse.ArgumentTypeError(
            f"invalid store URL {redact_url(text)!r}: {scrub(str(exc))}") from exc
    return text


def add_store_argument(parser: argparse.ArgumentParser, *, check: bool = True) -> None:
    """``--store URL``; with ``check``, a bad URL is a usage error before anything runs
    (``doctor`` reports it as a failed check instead)."""
    parser.add_argument("--store", metavar="URL", type=store_url if check else str,
                        help="store URL, e.g. sqlite:///chat.db, postgresql://host/db, "
                             "redis://host:6379/0 (default: $THREADLINE_STORE, the config "
                             "file, else a SQLite file in the data directory)")


def add_skip_invalid_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-invalid", action="store_true",
                        help="leave out stored messages that cannot be read (reported on "
                             "stderr) instead of stopping at the first")


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", metavar="NAME",
                        help="local (default), gguf:/path/model.gguf, openai:MODEL, fake or "
                             "echo (default: $THREADLINE_MODEL, the config file, else local)")


def config_from(args: argparse.Namespace) -> Config:
    return resolve(store=getattr(args, "store", None), model=getattr(args, "model", None),
                   system=getattr(args, "system", None),
                   context_window=getattr(args, "context_window", None))


def open_configured_store(config: Config, *, check: bool = True) -> Store:
    """Open the configured store; with ``check``, make sure it answers.

    The default SQLite file's folder, the data directory, is created on first use, and
    kept private (0700: every conversation is in it); any other URL is used as given.
    """
    from threadline.cli._files import private_dir
    from threadline.stores import open_store

    url = config.store_url
    if url == default_store_url():
        private_dir(data_dir())
    try:
        store = open_store(url)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc} (store from {config.store.source})") from exc
    if check:
        try:
            store.ping()
        except StoreConnectionError as exc:
            store.close()
            # Only a server that did not answer needs starting (issue 18 item 9).
            fix = "start the server, or choose" if exc.part == "server" else "or choose"
            raise StoreConnectionError(
                f"{exc} (store from {config.store.source}); {fix} another store with "
                "--store URL or THREADLINE_STORE", part=exc.part) from exc
    return store


# -- sessions ------------------------------------------------------------------------


def read_messages(store: Store, session_id: str, *, last: int | None = None,
                  skip_invalid: bool = False) -> list[BaseMessage]:
    """A session's messages; ``skip_invalid`` is passed only when set, so a third-party
    store written before the keyword existed still reads."""
    if skip_invalid:
        return store.get_messages(session_id, last=last, skip_invalid=True)
    return store.get_messages(session_id, last=last)


def shown_url(store: Store) -> str:
    """The store's URL as messages and banners show it: through the one redaction."""
    return redact_url(store.url.render())


def load_model(name: str, *, context_window: int | None = None) -> BaseChatModel:
    """The chat model a name stands for; ``fake``/``echo`` honour ``THREADLINE_FAKE_SLEEP``.

    ``context_window`` (``--context-window``) is the size the local model allocates
    (``n_ctx``), so the figure the chat trims to is the model's real one; other models
    are only told it by the conversation (see :class:`~threadline.cli._conversation.Conversation`).
    """
    from threadline.models._names import get_chat_model

    kind = name.strip().partition(":")[0].lower()
    if kind in ("local", "gguf") and context_window is not None:
        return get_chat_model(name, n_ctx=context_window)
    sleep = os.environ.get(FAKE_SLEEP_ENV)
    if kind in ("fake", "echo") and sleep:
        try:
            seconds = float(sleep)
        except ValueError:
            seconds = -1.0
        if not seconds >= 0:
            raise InputError(f"{FAKE_SLEEP_ENV} must be a number of seconds >= 0, got "
                             f"{sleep!r}; unset it, or set it to e.g. 0.05")
        return get_chat_model(name, sleep=seconds)
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


def most_recent_session(store: Store) -> str | None:
    """The session written to last, or ``None`` if none (the recent-first listing)."""
    page = store.list_sessions(order="recent", limit=1)
    return page.session_ids[0] if page.session_ids else None


def format_time(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else "-"
