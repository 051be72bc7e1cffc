"""``threadline sessions rename / search / fork / stats / purge``: sessions as objects.

The actions on what a store keeps *about* sessions (titles, full-text search, forks,
size, retention; see :mod:`threadline.stores._sessions`), registered by
:func:`add_session_actions` beside the message actions of :mod:`threadline.cli._sessions`.
Everything a store holds is shown through :func:`~threadline.cli._visible.visible`;
``--json`` prints it exactly.
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, TextIO

from threadline._errors import InputError
from threadline.cli._common import (
    add_store_argument,
    config_from,
    count,
    open_configured_store,
    shown_url,
)
from threadline.cli._visible import json_text, visible

if TYPE_CHECKING:
    from threadline.stores import Store

__all__ = ["add_session_actions", "duration", "metadata_pair", "require_session"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(text: str) -> float:
    """argparse ``type=`` of ``--max-age``: ``90`` (seconds), ``45m``, ``12h``, ``30d``,
    ``2w``."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive duration such as 3600, 45m, 12h, 30d or 2w, got {text!r:.40}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def metadata_pair(text: str) -> tuple[str, str]:
    """argparse ``type=`` of ``--meta KEY=VALUE``."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r:.80}")
    return key, value


def require_session(store: Store, session_id: str) -> None:
    if store.session_info(session_id) is None:
        raise InputError(f"no session {session_id!r} in {shown_url(store)}; "
                         "`threadline sessions list` shows the stored sessions")


def _store(args: argparse.Namespace) -> Store:
    return open_configured_store(config_from(args))


def _rename(args: argparse.Namespace, out: TextIO) -> int:
    with _store(args) as store:
        require_session(store, args.session)
        store.update_session(args.session, title=args.title or None)
    out.write(f"renamed {visible(args.session)}: {visible(args.title or '(no title)')}\n")
    return 0


def _search(args: argparse.Namespace, out: TextIO) -> int:
    query = " ".join(args.query)
    with _store(args) as store:
        hits = store.search(query, owner=args.owner, limit=args.limit)
        titles = {}
        if not args.json:
            for hit in hits:
                if hit.session_id not in titles:
                    info = store.session_info(hit.session_id)
                    titles[hit.session_id] = info.title if info else None
    if args.json:
        for hit in hits:
            out.write(json_text({"session_id": hit.session_id, "position": hit.position,
                                 "snippet": hit.snippet}) + "\n")
        return 0
    if not hits:
        out.write(f"no messages match {visible(query)}\n")
        return 0
    for hit in hits:
        title = titles.get(hit.session_id)
        named = f"{visible(hit.session_id)}" + (f" ({visible(title)})" if title else "")
        out.write(f"{named} #{hit.position}: {visible(hit.snippet)}\n")
    return 0


def _fork(args: argparse.Namespace, out: TextIO) -> int:
    with _store(args) as store:
        info = store.fork(args.session, args.new, at=args.at)
    out.write(f"forked {visible(args.session)} into {visible(args.new)} "
              f"({info.message_count} messages)\n")
    return 0


def _stats(args: argparse.Namespace, out: TextIO) -> int:
    with _store(args) as store:
        stats = store.stats()
        url = shown_url(store)
    if args.json:
        out.write(json_text({"store": url, "sessions": stats.sessions,
                             "messages": stats.messages, "bytes": stats.bytes}) + "\n")
        return 0
    size = "" if stats.bytes is None else f", {stats.bytes / 1e6:,.1f} MB"
    out.write(f"{url}: {stats.sessions:,} sessions, {stats.messages:,} messages{size}\n")
    return 0


def _purge(args: argparse.Namespace, out: TextIO) -> int:
    with _store(args) as store:
        expired = 0 if args.dry_run else store.purge_expired()
        doomed = store.purge_sessions(max_age=args.max_age, max_sessions=args.max_sessions,
                                      owner=args.owner, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    if args.dry_run:
        for sid in doomed:
            out.write(f"would delete {visible(sid)}\n")
    else:
        out.write(f"purged {expired} expired sessions\n")
    if args.max_age or args.max_sessions or doomed:
        out.write(f"{verb} {len(doomed)} sessions by the retention policy\n")
    return 0


def _action(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str,
            run: object) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help)
    parser.set_defaults(action=run)
    return parser


def add_session_actions(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register rename, search, fork, stats and purge."""
    p = _action(sub, "rename", "set a session's title", _rename)
    p.add_argument("session", metavar="SESSION")
    p.add_argument("title", metavar="TITLE", help='the new title ("" removes it)')
    add_store_argument(p)

    p = _action(sub, "search", "find messages holding every word of QUERY", _search)
    p.add_argument("query", nargs="+", metavar="QUERY")
    p.add_argument("--owner", metavar="OWNER", help="only this owner's sessions")
    p.add_argument("--limit", type=count(1, up_to="MAX_PAGE_LIMIT"), default=20,
                   metavar="N", help="at most N messages, up to 1,000 (default: 20)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    add_store_argument(p)

    p = _action(sub, "fork", "copy a session (its first N messages) into a new one", _fork)
    p.add_argument("session", metavar="SESSION")
    p.add_argument("new", metavar="NEW", help="the new session's id")
    p.add_argument("--at", type=count(0), metavar="N",
                   help="keep the first N messages (default: all)")
    add_store_argument(p)

    p = _action(sub, "stats", "how many sessions and messages the store holds", _stats)
    p.add_argument("--json", action="store_true", help="as one JSON object")
    add_store_argument(p)

    p = _action(sub, "purge", "delete expired sessions now, and apply a retention policy",
                _purge)
    p.add_argument("--max-age", type=duration, metavar="AGE",
                   help="delete sessions idle for longer (3600, 45m, 12h, 30d, 2w; default: "
                        "the store's max_age option)")
    p.add_argument("--max-sessions", type=count(1), metavar="N",
                   help="keep only the N most recently active sessions (default: the "
                        "store's max_sessions option)")
    p.add_argument("--owner", metavar="OWNER", help="apply the policy to this owner's only")
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted")
    add_store_argument(p)
