"""``threadline chat`` (the interactive chat) and ``threadline ask`` (one question).

The chat loop is a thin shell: :class:`~threadline.cli._conversation.Conversation` does a
turn (trim, stream, store), :mod:`~threadline.cli._terminal` reads and draws, and this
module maps slash commands to store operations. Errors inside the loop (a model that
fails, a bad ``/switch`` name or ``/history`` count) print one line and the chat goes on;
errors before it starts (no model, no store, a stored session that cannot be read) end
the command with one line and the fix (see :mod:`threadline.cli._main`).

Session ids are shown through :func:`~threadline.cli._visible.visible` where they are put
into a line (one line each); the chat's :class:`~threadline.cli._terminal.Screen` renders
every line and answer the same way. ``ask`` writes the streamed answer through it too,
whether stdout is a terminal or not (a pipe into ``tee`` still reaches one); ``--json``
is the exact answer.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from threadline._errors import ConfigurationError, InputError
from threadline.cli._common import (
    add_model_argument,
    add_skip_invalid_argument,
    add_store_argument,
    config_from,
    count,
    format_message,
    format_time,
    load_model,
    most_recent_session,
    new_session_id,
    open_configured_store,
    read_messages,
    shown_url,
)
from threadline.cli._config import Config, data_dir
from threadline.cli._conversation import Conversation
from threadline.cli._report import UsageError, check_utf8, error_text, reporting_skips, to_stderr
from threadline.cli._visible import json_text, visible

if TYPE_CHECKING:
    from threadline.cli._terminal import LineReader, Screen
    from threadline.stores import Store

__all__ = ["add_ask_arguments", "add_chat_arguments", "run_ask", "run_chat"]

T = TypeVar("T")

PROMPT = ">>> "
HELP = """\
/new             start a new session
/sessions        list the sessions in the store, most recent first
/switch NAME     continue session NAME (a new one if it does not exist)
/history [N]     show this session's messages (the last N)
/rename TITLE    set this session's title
/search WORDS    find the messages holding every word, in every session
/fork [NAME]     copy this session into a new one and continue there
/edit TEXT       ask TEXT instead of your last question, in a fork (the original stays)
/clear           delete this session's messages
/export FILE     write this session to FILE (JSON Lines, LangChain's message dicts)
/model [NAME]    show the model, or switch to another (local, gguf:PATH, openai:NAME, ...)
/help            this list
/quit            leave (or Ctrl-D)
Enter sends; Esc Enter (Alt-Enter) starts a new line; Up/Down recall earlier input;
Ctrl-C stops an answer (the question and the partial answer are kept)."""


def _add_common(parser: argparse.ArgumentParser) -> None:
    add_model_argument(parser)
    add_store_argument(parser)
    parser.add_argument("--system", metavar="TEXT",
                        help="system prompt (default: $THREADLINE_SYSTEM, the config file, "
                             "else none)")
    parser.add_argument("--max-tokens", type=count(1), metavar="N",
                        help="longest answer, in tokens (default: the model's own limit)")
    add_skip_invalid_argument(parser)


def add_chat_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--compact", action="store_true",
                        help="summarise what outgrows the model's context instead of "
                             "leaving it out (the messages are all kept)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--session", metavar="NAME",
                       help="continue (or start) session NAME (default: the most recent)")
    which.add_argument("--new", action="store_true", help="start a new session")
    _add_common(parser)


def add_ask_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", nargs="*",
                        help="the question; piped stdin is read too (echo hi | threadline ask)")
    parser.add_argument("--session", metavar="NAME",
                        help="read this session's history and store the turn in it "
                             "(default: a one-off question, nothing stored)")
    parser.add_argument("--json", action="store_true",
                        help='print {"answer", "model", "session", ...} as JSON')
    _add_common(parser)


def _describe_model(name: str, chat: Conversation) -> str:
    own = getattr(chat.model, "model_name", "") or ""
    detail = f"{own}, " if own and own != name else ""
    return f"{name} ({detail}{chat.window}-token context)"


# -- threadline chat ----------------------------------------------------------------------


class _Chat:
    """The state of one interactive chat and its slash commands."""

    def __init__(self, config: Config, chat: Conversation, screen: Screen, *,
                 debug: bool = False) -> None:
        self.config = config
        self.chat = chat
        self.screen = screen
        self.debug = debug
        self.model_name = config.model_name
        self.warned_trim = False
        # (session, position) of the unreadable messages already reported: every turn
        # reads the history again, and says so once.
        self.reported: set[tuple[str | None, int | None]] = set()
        self.commands: dict[str, Callable[[str], bool]] = {
            "/help": self.help, "/new": self.new, "/sessions": self.sessions,
            "/switch": self.switch, "/history": self.history, "/rename": self.rename,
            "/search": self.search, "/fork": self.fork, "/edit": self.edit,
            "/clear": self.clear, "/export": self.export, "/model": self.model,
            "/quit": self.quit, "/exit": self.quit,
        }

    @property
    def store(self) -> Store:
        assert self.chat.store is not None
        return self.chat.store

    @property
    def session(self) -> str:
        assert self.chat.session_id is not None
        return self.chat.session_id

    def session_line(self) -> str:
        info = self.store.session_info(self.session)
        count = info.message_count if info else 0
        title = f" · {visible(info.title)}" if info and info.title else ""
        return f"session {visible(self.session)} ({count} messages){title}"

    # Each command returns False to leave the chat.
    def help(self, argument: str) -> bool:
        for line in HELP.splitlines():
            self.screen.note(line)
        return True

    def new(self, argument: str) -> bool:
        self.chat.session_id = argument or new_session_id(self.store)
        self.screen.note(f"new {self.session_line()}")
        return True

    def sessions(self, argument: str) -> bool:
        found = False
        for sid in self.store.iter_sessions(argument, order="recent"):
            info = self.store.session_info(sid)
            if info is None:
                continue
            found = True
            mark = "*" if sid == self.session else " "
            title = f"  {visible(info.title)}" if info.title else ""
            self.screen.line(f"{mark} {visible(sid)}  {info.message_count} messages, "
                             f"last {format_time(info.updated_at)}{title}")
        if not found:
            self.screen.note("no sessions stored yet")
        return True

    def switch(self, argument: str) -> bool:
        from threadline.stores._base import validate_session_id

        if not argument:
            raise InputError("/switch needs a session name; /sessions lists them")
        self.chat.session_id = validate_session_id(argument)
        self.screen.note(f"switched to {self.session_line()}")
        self._show_last(2)
        return True

    def history(self, argument: str) -> bool:
        from threadline.stores._base import MAX_LAST

        last = None
        if argument:
            try:
                last = count(1)(argument)
            except argparse.ArgumentTypeError:
                raise InputError(f"/history N shows the last N messages, N a whole number "
                                 f"from 1 to {MAX_LAST:,}, got {argument!r:.40}; /history "
                                 "alone shows them all") from None
        messages = read_messages(self.store, self.session, last=last,
                                 skip_invalid=self.chat.skip_invalid)
        summary = self.chat.summary()
        if summary is not None:
            self.screen.note(f"[summary of the first {summary.covers} messages, sent to the "
                             f"model in their place] {summary.text}")
        if not messages:
            self.screen.note("this session has no messages yet")
        for message in messages:
            self.screen.line(format_message(message))
        return True

    def rename(self, argument: str) -> bool:
        if not argument:
            raise InputError("/rename needs a title, e.g. /rename Trip to Oslo")
        self.store.update_session(self.session, title=argument)
        self.screen.note(f"renamed {self.session_line()}")
        return True

    def search(self, argument: str) -> bool:
        if not argument:
            raise InputError("/search needs words to look for, e.g. /search oslo weather")
        hits = self.store.search(argument, limit=10)
        if not hits:
            self.screen.note(f"no messages hold {visible(argument)}")
        for hit in hits:
            mark = "*" if hit.session_id == self.session else " "
            self.screen.line(f"{mark} {visible(hit.session_id)} #{hit.position}: "
                             f"{visible(hit.snippet)}")
        return True

    def fork(self, argument: str, *, at: int | None = None) -> bool:
        from threadline.stores._base import validate_session_id

        new = validate_session_id(argument) if argument else new_session_id(self.store)
        if self.store.session_info(self.session) is None:
            raise InputError("this session holds nothing to fork yet")
        source = self.session
        self.store.fork(source, new, at=at)
        self.chat.session_id = new
        self.screen.note(f"forked {visible(source)} into {self.session_line()}")
        return True

    def edit(self, argument: str) -> bool:
        if not argument:
            raise InputError("/edit needs the new question, e.g. /edit and in Bergen?")
        messages = read_messages(self.store, self.session, skip_invalid=self.chat.skip_invalid)
        questions = [i for i, m in enumerate(messages) if m.type == "human"]
        if not questions:
            raise InputError("this session has no question to edit yet")
        self.fork("", at=questions[-1])
        self.ask(argument)
        return True

    def clear(self, argument: str) -> bool:
        self.store.delete_session(self.session)
        self.screen.note(f"cleared session {visible(self.session)}")
        return True

    def export(self, argument: str) -> bool:
        from threadline.stores._transfer import export_sessions

        if not argument:
            raise InputError("/export needs a file name, e.g. /export chat.jsonl")
        written = export_sessions(self.store, argument, [self.session],
                                  skip_invalid=self.chat.skip_invalid)
        self.screen.note(f"wrote {written} messages of session {visible(self.session)} to "
                         f"{visible(argument)}")
        return True

    def model(self, argument: str) -> bool:
        if argument:
            self.chat.set_model(load_model(argument))
            self.model_name = argument
        self.screen.note(f"model {_describe_model(self.model_name, self.chat)}")
        return True

    def quit(self, argument: str) -> bool:
        return False

    def _name_new_session(self, question: str) -> None:
        """Title a session after its first exchange (never over a title the user set)."""
        from threadline.cli._titles import make_title

        info = self.store.session_info(self.session)
        if info is None or info.title is not None or info.message_count > 2:
            return
        with contextlib.suppress(ConfigurationError):  # a store that keeps no titles
            self.store.update_session(self.session,
                                      title=make_title(self.chat.model, question))

    def _show_last(self, number: int) -> None:
        for message in read_messages(self.store, self.session, last=number,
                                     skip_invalid=self.chat.skip_invalid):
            self.screen.note(format_message(message))

    def report(self, text: str) -> None:
        self.screen.note(text)

    def run(self, action: Callable[..., T], *args: Any) -> T:
        """``action(*args)``, reporting the unreadable messages its reads skipped (once
        each)."""
        with reporting_skips(self.report, seen=self.reported):
            return action(*args)

    def command(self, text: str) -> bool:
        name, _, argument = text.partition(" ")
        handler = self.commands.get(name.lower())
        if handler is None:
            raise InputError(f"unknown command {name}; commands: {', '.join(self.commands)}")
        return handler(argument.strip())

    def error(self, exc: Exception) -> None:
        if self.debug:
            traceback.print_exc()
        self.screen.error(error_text(exc, can_skip=True))

    def ask(self, text: str) -> None:
        with self.screen.answer() as feed:
            turn = self.chat.turn(text, feed)
        self._name_new_session(text)
        if turn.interrupted:
            self.screen.note("[interrupted: the question and the partial answer are stored]")
        for note in turn.notes:
            self.screen.note(f"(summary not updated: {note})")
        if turn.trimmed and not self.warned_trim:
            self.warned_trim = True
            self.screen.note(f"(the conversation outgrew the model's context: the oldest "
                             f"{turn.trimmed} messages are no longer sent; the store keeps all)")


def run_chat(args: argparse.Namespace, out: TextIO) -> int:
    from threadline.cli._terminal import Screen, make_reader

    config = config_from(args)
    store = open_configured_store(config)
    try:
        model = load_model(config.model_name)
        if args.session is not None:
            from threadline.stores._base import validate_session_id

            session = validate_session_id(args.session)
        else:
            session = (None if args.new else most_recent_session(store)) \
                or new_session_id(store)
        chat = Conversation(store, session, model, system=config.system.value,
                            max_tokens=args.max_tokens, skip_invalid=args.skip_invalid,
                            compact=args.compact)
        screen = Screen(out)
        state = _Chat(config, chat, screen, debug=getattr(args, "debug", False))
        resumed = store.session_info(session) is not None
        skipped: list[str] = []
        if resumed:
            # A session that cannot be read fails now, with the fix, not at every turn.
            with reporting_skips(skipped.append, seen=state.reported):
                chat.history()
        screen.header(f"threadline chat · model {_describe_model(config.model_name, chat)} · "
                      f"store {shown_url(store)}")
        screen.note(f"{'continuing' if resumed else 'new'} {state.session_line()} · /help for "
                    "commands, Ctrl-D to quit")
        for line in skipped:
            screen.note(line)
        if resumed:
            state.run(state._show_last, 2)
        reader = make_reader(data_dir() / "input-history", out)
        _loop(state, reader, screen)
    finally:
        store.close()
    return 0


def _loop(state: _Chat, reader: LineReader, screen: Screen) -> None:
    while True:
        try:
            text = reader.read(PROMPT).strip()
        except KeyboardInterrupt:
            continue  # Ctrl-C at the prompt drops the line, as in a shell
        except EOFError:
            screen.line()
            return
        if not text:
            continue
        try:
            if text.startswith("/"):
                if not state.run(state.command, text):
                    return
            else:
                state.run(state.ask, text)
        except Exception as exc:
            state.error(exc)
        except KeyboardInterrupt:
            # Before the answer began (a turn catches its own): nothing was stored.
            screen.note("[interrupted]")


# -- threadline ask -----------------------------------------------------------------------


def _question(args: argparse.Namespace) -> str:
    question = check_utf8(" ".join(args.question), "the question")
    if not sys.stdin.isatty():
        # The bytes, decoded here: how sys.stdin would decode them depends on the locale
        # (the C locale lets invalid bytes through as surrogates).
        buffer = getattr(sys.stdin, "buffer", None)
        piped = check_utf8(buffer.read() if buffer is not None else sys.stdin.read(),
                           "the text piped in")
        if piped.strip():
            question = f"{question}\n\n{piped}" if question else piped
    if not question.strip():
        raise UsageError('no question: pass it as an argument (threadline ask "...") or '
                         "pipe it in (echo hi | threadline ask)")
    return question.strip()


def run_ask(args: argparse.Namespace, out: TextIO) -> int:
    if args.store is not None and args.session is None:
        raise UsageError("--store is used with --session only (a question without a "
                         "session is not stored); add --session NAME to store the turn")
    question = _question(args)
    config = config_from(args)
    store = open_configured_store(config) if args.session is not None else None
    try:
        chat = Conversation(store, args.session, load_model(config.model_name),
                            system=config.system.value, max_tokens=args.max_tokens,
                            skip_invalid=args.skip_invalid)

        def write(text: str) -> None:
            out.write(visible(text, lines=True))  # --json is the exact form
            out.flush()

        with reporting_skips(to_stderr):
            turn = chat.turn(question, None if args.json else write)
        if args.json:
            out.write(json_text({
                "answer": turn.answer.text,
                "model": config.model_name,
                "session": args.session,
                "interrupted": turn.interrupted,
                "trimmed": turn.trimmed,
                "usage": turn.answer.usage_metadata,
            }) + "\n")
        else:
            out.write("\n")
    finally:
        if store is not None:
            store.close()
    return 130 if turn.interrupted else 0
