"""``threadline sessions ...`` and ``threadline db init``: managing stored conversations.

Every action on a store takes ``--store URL`` (resolved like the chat's: flag,
THREADLINE_STORE, config file, default). Exports are JSON Lines, one message per line in
LangChain's dict format plus ``session_id`` (:mod:`threadline.stores._transfer`); ``copy``
is idempotent, so an interrupted migration is finished by running it again. ``convert``
works on one history file, no store: it switches it between JSON Lines and LangChain's
JSON array (:meth:`~threadline.FileChatMessageHistory.convert`); ``repair`` recovers the
readable messages of a damaged one, keeping the damaged lines in a side file.

Actions that read messages (``show``, ``export``, ``copy``) stop at a stored message that
cannot be decoded, naming its session and position; with ``--skip-invalid`` they leave
it out and say on stderr what they skipped. Exports to a file replace it atomically: a
failed export leaves an earlier one as it was.

What a store holds is shown through :func:`~threadline.cli._visible.visible` (ids one a
line, messages with their line breaks, control characters shown, not sent), messages as a
chat shows them (:func:`~threadline.cli._visible.message_lines`: tool calls and results
included, a streamed row as an answer); ``--json`` prints it exactly, through
:func:`~threadline.cli._visible.json_text`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from threadline._errors import InputError
from threadline.cli._common import (
    add_skip_invalid_argument,
    add_store_argument,
    config_from,
    count,
    format_time,
    open_configured_store,
    read_messages,
    shown_url,
    store_url,
)
from threadline.cli._config import resolve
from threadline.cli._report import reporting_skips, to_stderr
from threadline.cli._session_meta import add_session_actions, metadata_pair, require_session
from threadline.cli._visible import json_text, message_lines, visible

if TYPE_CHECKING:
    from threadline.stores import Store
    from threadline.stores._transfer import Progress

__all__ = ["add_db_arguments", "add_sessions_arguments", "run_db", "run_sessions"]

Action = Callable[[argparse.Namespace, TextIO], int]


def _action(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str,
            run: Action) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help)
    parser.set_defaults(action=run)
    return parser


def _store(args: argparse.Namespace) -> Store:
    return open_configured_store(config_from(args))


_require = require_session


@contextmanager
def _progress(label: str) -> Iterator[Progress | None]:
    """A rich progress bar on stderr when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    try:
        from rich.progress import Progress as Bar
    except ImportError:
        yield None
        return
    with Bar(transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


# -- actions -------------------------------------------------------------------------------


def _list(args: argparse.Namespace, out: TextIO) -> int:
    metadata = dict(args.meta) if args.meta else None
    with _store(args) as store:
        rows = []
        for sid in store.iter_sessions(args.prefix, order="recent" if args.recent else "id",
                                       owner=args.owner, metadata=metadata):
            info = store.session_info(sid)
            if info is not None:
                rows.append(info)
            if args.limit and len(rows) >= args.limit:
                break
    if args.json:
        for info in rows:
            out.write(json_text({
                "session_id": info.session_id, "messages": info.message_count,
                "created_at": info.created_at.isoformat() if info.created_at else None,
                "updated_at": info.updated_at.isoformat() if info.updated_at else None,
                "title": info.title, "metadata": dict(info.metadata), "owner": info.owner,
                "parent": info.parent, "fork_point": info.fork_point,
            }) + "\n")
        return 0
    if not rows:
        out.write("no sessions\n")
        return 0
    # One id per line, shown as text: a newline or an escape sequence in an id cannot
    # forge a row or command the terminal.
    shown = [visible(info.session_id) for info in rows]
    width = max(map(len, shown))
    for sid, info in zip(shown, rows, strict=True):
        title = f"  {visible(info.title)}" if info.title else ""
        out.write(f"{sid:<{width}}  {info.message_count:>5} messages  "
                  f"last {format_time(info.updated_at)}{title}\n")
    return 0


def _show(args: argparse.Namespace, out: TextIO) -> int:
    from threadline.messages._serialization import message_to_dict

    with _store(args) as store, reporting_skips(to_stderr):
        _require(store, args.session)
        messages = read_messages(store, args.session, last=args.last,
                                 skip_invalid=args.skip_invalid)
    if args.json:
        for message in messages:
            out.write(json_text(message_to_dict(message)) + "\n")
    else:
        for line in message_lines(messages):
            out.write(line + "\n")
    return 0


def _export(args: argparse.Namespace, out: TextIO) -> int:
    from threadline.stores._transfer import export_sessions

    with _store(args) as store, reporting_skips(to_stderr):
        for sid in args.session or ():
            _require(store, sid)
        ids = args.session or None
        if args.file == "-":
            export_sessions(store, out, ids, skip_invalid=args.skip_invalid)
            return 0
        with _progress("exporting") as progress:
            written = export_sessions(store, args.file, ids, progress=progress,
                                      skip_invalid=args.skip_invalid)
    out.write(f"exported {written} messages to {visible(args.file)}\n")
    return 0


def _import(args: argparse.Namespace, out: TextIO) -> int:
    from threadline.stores._transfer import import_sessions

    path = Path(args.file)
    if not path.is_file():
        raise InputError(f"cannot read {args.file!r}: no such file; pass a JSON Lines "
                         "export made by `threadline sessions export`")
    with _store(args) as store, _progress("importing") as progress:
        try:
            imported = import_sessions(store, path, progress=progress)
        except UnicodeDecodeError as exc:
            raise InputError(f"cannot read {args.file!r}: not UTF-8 text; expected a JSON "
                             "Lines export") from exc
    out.write(f"imported {imported} messages into {shown_url(store)}\n")
    return 0


def _copy(args: argparse.Namespace, out: TextIO) -> int:
    from threadline.stores import open_store
    from threadline.stores._transfer import copy_sessions, file_source

    if "://" in args.source:
        src = open_store(args.source)
    else:
        if not Path(args.source).is_file():
            raise InputError(f"source {args.source!r} is neither a store URL nor a file; "
                             "pass a URL (sqlite:///chat.db) or an export / history file")
        src = file_source(args.source, session_id=args.as_session)
    try:
        dst = open_configured_store(resolve(store=args.destination))
    except BaseException:
        src.close()
        raise
    try:
        with reporting_skips(to_stderr), _progress("copying") as progress:
            report = copy_sessions(src, dst, args.session or None, progress=progress,
                                   skip_invalid=args.skip_invalid)
    finally:
        src.close()
        dst.close()
    out.write(f"{report.sessions} sessions: {report.copied} copied ({report.messages} "
              f"messages), {report.up_to_date} already up to date, "
              f"{len(report.conflicts)} conflicts\n")
    if report.conflicts:
        out.write("conflicts (the destination differs from the source; left alone): "
                  + ", ".join(map(visible, report.conflicts)) + "\n")
        return 1
    return 0


def _delete(args: argparse.Namespace, out: TextIO) -> int:
    with _store(args) as store:
        for sid in args.session:
            _require(store, sid)
        for sid in args.session:
            store.delete_session(sid)
            out.write(f"deleted {visible(sid)}\n")
    return 0


def _convert(args: argparse.Namespace, out: TextIO) -> int:
    from threadline.stores.file._history import FileChatMessageHistory

    # A torn last line (left by a killed writer) is dropped by the conversion: say so on
    # stderr as one line, not as a Python warning with a source location.
    with reporting_skips(to_stderr):
        done = FileChatMessageHistory(args.file).convert(args.to)
    name = visible(args.file)
    if done.changed:
        out.write(f"converted {name}: {done.messages} messages, "
                  f"{done.source} -> {done.target}\n")
    else:
        out.write(f"{name} is already {done.target} ({done.messages} messages); "
                  "nothing to do\n")
    return 0


def _repair(args: argparse.Namespace, out: TextIO) -> int:
    from threadline.stores.file import repair_history_file

    report = repair_history_file(args.file)
    name = visible(args.file)
    kept = f"{report.kept} message{'s' if report.kept != 1 else ''}"
    if not report.damaged:
        out.write(f"{name}: nothing damaged ({kept}); nothing to do\n")
        return 0
    with open(args.file, "rb") as handle:  # a JSON array holds items, JSON Lines lines
        unit = "item" if handle.read(64).lstrip().startswith(b"[") else "line"
    out.write(f"repaired {name}: kept {kept}; moved {report.damaged} damaged "
              f"{unit}{'s' if report.damaged != 1 else ''} to {visible(str(report.side_file))}\n")
    return 0


def _copy_source(text: str) -> str:
    """argparse ``type=`` of ``copy``'s SRC: a URL is checked like ``--store``."""
    return store_url(text) if "://" in text else text


# -- registration --------------------------------------------------------------------------


def add_sessions_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="sessions_action", metavar="ACTION", required=True)

    p = _action(sub, "list", "list the stored sessions (by id, or most recent first)", _list)
    p.add_argument("--prefix", default="", help="only ids starting with this")
    p.add_argument("--recent", action="store_true",
                   help="most recently active first (default: by id)")
    p.add_argument("--owner", metavar="OWNER", help="only this owner's sessions")
    p.add_argument("--meta", action="append", type=metadata_pair, metavar="KEY=VALUE",
                   help="only sessions whose metadata holds KEY=VALUE (repeatable)")
    p.add_argument("--limit", type=count(0, up_to="MAX_PAGE_LIMIT"), default=0, metavar="N",
                   help="at most this many, up to 10,000 (default: 0, all)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    add_store_argument(p)

    p = _action(sub, "show", "print a session's messages", _show)
    p.add_argument("session", metavar="SESSION")
    p.add_argument("--last", type=count(1), metavar="N", help="only the last N messages")
    p.add_argument("--json", action="store_true", help="LangChain message dicts, one a line")
    add_skip_invalid_argument(p)
    add_store_argument(p)

    p = _action(sub, "export", "write sessions as JSON Lines (LangChain's message dicts)",
                _export)
    p.add_argument("file", nargs="?", default="-", metavar="FILE",
                   help="where to write (default: - for stdout)")
    p.add_argument("--session", action="append", metavar="SESSION",
                   help="only this session (repeatable; default: all)")
    add_skip_invalid_argument(p)
    add_store_argument(p)

    p = _action(sub, "import", "append the sessions of a JSON Lines export", _import)
    p.add_argument("file", metavar="FILE")
    add_store_argument(p)

    p = _action(sub, "copy", "copy sessions between stores, idempotently (re-run to resume)",
                _copy)
    p.add_argument("source", metavar="SRC", type=_copy_source,
                   help="a store URL, an export file, or a LangChain JSON / threadline JSONL "
                        "history file")
    p.add_argument("destination", metavar="DST_URL", type=store_url,
                   help="the store URL to copy into")
    p.add_argument("--session", action="append", metavar="SESSION",
                   help="only this session (repeatable; default: all)")
    p.add_argument("--as-session", metavar="NAME",
                   help="the session id for a single-history file (default: the file name)")
    add_skip_invalid_argument(p)

    p = _action(sub, "delete", "delete sessions", _delete)
    p.add_argument("session", nargs="+", metavar="SESSION")
    add_store_argument(p)

    add_session_actions(sub)

    p = _action(sub, "convert", "rewrite a history file as JSON Lines or as LangChain's JSON "
                "array, atomically", _convert)
    p.add_argument("file", metavar="FILE", help="a FileChatMessageHistory file")
    p.add_argument("--to", required=True, choices=("jsonl", "json"),
                   help="jsonl: one message a line, O(1) appends; json: the array "
                        "LangChain's FileChatMessageHistory reads")

    p = _action(sub, "repair", "recover the readable messages of a damaged history file; "
                "the damaged lines go to a side file, never deleted", _repair)
    p.add_argument("file", metavar="FILE", help="a FileChatMessageHistory file (JSON Lines)")


def run_sessions(args: argparse.Namespace, out: TextIO) -> int:
    action: Action = args.action
    return action(args, out)


def add_db_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    p = _action(sub, "init", "create or migrate the store's tables (idempotent)", _db_init)
    add_store_argument(p)


def _db_init(args: argparse.Namespace, out: TextIO) -> int:
    with open_configured_store(config_from(args), check=False) as store:
        store.setup()
        out.write(f"ready: {shown_url(store)}\n")
    return 0


def run_db(args: argparse.Namespace, out: TextIO) -> int:
    action: Action = args.action
    return action(args, out)
