"""``threadline chat`` (the interactive chat) and ``threadline ask`` (one question).

The chat loop is a thin shell: :class:`~threadline.cli._conversation.Conversation` does a
turn (trim, stream, store), :mod:`~threadline.cli._terminal` reads and draws, and
:class:`~threadline.cli._repl.ChatState` maps slash commands to store operations. The
flags of both commands are here: ``-m/--model``, ``-s/--system``, ``-S/--session``,
``-c/--continue``, ``-o NAME VALUE`` (:mod:`~threadline.cli._options`) and
``--context-window N``. Errors inside the loop (a model that
fails, a bad ``/switch`` name or ``/history`` count) print one line and the chat goes on;
errors before it starts (no model, no store, a stored session that cannot be read) end
the command with one line and the fix (see :mod:`threadline.cli._main`).

A bare ``threadline chat`` continues the session the chat was last in
(:mod:`~threadline.cli._recent`), not merely the store's most recently written one
(``ask --session`` writes too); every command that moves the chat to another session
updates that record (``ask`` only reads it, for ``ask -c``).

Session ids are shown through :func:`~threadline.cli._visible.visible` where they are put
into a line (one line each); the chat's :class:`~threadline.cli._terminal.Screen` renders
every line and answer the same way. ``ask`` writes the streamed answer through it too,
whether stdout is a terminal or not (a pipe into ``tee`` still reaches one); ``--json``
is the exact answer.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from threadline.cli._common import (
    add_model_argument,
    add_skip_invalid_argument,
    add_store_argument,
    config_from,
    count,
    load_model,
    new_session_id,
    open_configured_store,
    shown_url,
)
from threadline.cli._config import Config, data_dir
from threadline.cli._conversation import Conversation, Window
from threadline.cli._options import MODEL_OPTIONS, parse_options
from threadline.cli._repl import ChatState, describe_model
from threadline.cli._report import UsageError, check_utf8, reporting_skips, to_stderr
from threadline.cli._visible import json_text, visible

if TYPE_CHECKING:
    from threadline.cli._terminal import LineReader, Screen
    from threadline.stores import Store

__all__ = ["add_ask_arguments", "add_chat_arguments", "run_ask", "run_chat"]

PROMPT = ">>> "


def _add_common(parser: argparse.ArgumentParser) -> None:
    add_model_argument(parser)
    add_store_argument(parser)
    parser.add_argument("-s", "--system", metavar="TEXT",
                        help="system prompt (default: $THREADLINE_SYSTEM, the config file, "
                             "else none)")
    parser.add_argument("--max-tokens", type=count(1), metavar="N",
                        help="longest answer, in tokens (default: the model's own limit)")
    parser.add_argument("-o", "--option", nargs=2, action="append", dest="options",
                        metavar=("NAME", "VALUE"),
                        help="a model option, repeatable: -o temperature 0.2 -o max_tokens "
                             f"200 (options: {', '.join(MODEL_OPTIONS)})")
    parser.add_argument("--context-window", type=count(1, what="a number of tokens"),
                        metavar="N",
                        help="the model's context window in tokens (default: "
                             "$THREADLINE_CONTEXT_WINDOW, the config file, else the "
                             "model's own or the one known for its name, else 8192)")
    add_skip_invalid_argument(parser)


def add_chat_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--compact", action="store_true",
                        help="summarise what outgrows the model's context instead of "
                             "leaving it out (the messages are all kept)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("-S", "--session", metavar="NAME",
                       help="continue (or start) session NAME (default: the last chat)")
    which.add_argument("-c", "--continue", action="store_true", dest="resume",
                       help="continue the last chat (the default): the session this chat "
                            "was last in, whatever `ask` did since")
    which.add_argument("--new", action="store_true", help="start a new session")
    _add_common(parser)


def add_ask_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", nargs="*",
                        help="the question; piped stdin is read too (echo hi | threadline ask)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("-S", "--session", metavar="NAME",
                       help="read this session's history and store the turn in it "
                            "(default: a one-off question, nothing stored)")
    which.add_argument("-c", "--continue", action="store_true", dest="resume",
                       help="ask in the last chat (the session `threadline chat` would "
                            "continue), and store the turn there")
    parser.add_argument("--json", action="store_true",
                        help='print {"answer", "model", "session", ...} as JSON')
    _add_common(parser)


def _window(config: Config) -> Window | None:
    """The context window set by flag, environment or config file, or ``None``."""
    tokens = config.context_tokens
    return None if tokens is None else Window(tokens, config.context_source)


def _model_options(args: argparse.Namespace) -> tuple[dict[str, object], int | None]:
    """The checked ``-o`` options, and the answer limit (``-o max_tokens`` or
    ``--max-tokens``, which must agree when both are given)."""
    options = parse_options(args.options)
    limit = options.pop("max_tokens", None)
    if limit is not None and args.max_tokens is not None and limit != args.max_tokens:
        raise UsageError(f"-o max_tokens {limit} and --max-tokens {args.max_tokens} "
                         "disagree; give one of them")
    return options, limit if limit is not None else args.max_tokens


# -- threadline chat ----------------------------------------------------------------------


def run_chat(args: argparse.Namespace, out: TextIO) -> int:
    from threadline.cli._recent import chat_to_continue
    from threadline.cli._terminal import Screen, make_reader

    config = config_from(args)
    options, max_tokens = _model_options(args)
    window = _window(config)
    store = open_configured_store(config)
    try:
        model = load_model(config.model_name, context_window=config.context_tokens)
        if args.session is not None:
            from threadline.stores._base import validate_session_id

            session = validate_session_id(args.session)
        else:
            session = (None if args.new else chat_to_continue(store, config.store_url,
                                                              data_dir())) \
                or new_session_id(store)
        chat = Conversation(store, session, model, system=config.system.value,
                            max_tokens=max_tokens, skip_invalid=args.skip_invalid,
                            compact=args.compact, options=options, window=window)
        screen = Screen(out)
        state = ChatState(config, chat, screen, debug=getattr(args, "debug", False))
        resumed = store.session_info(session) is not None
        skipped: list[str] = []
        if resumed:
            # A session that cannot be read fails now, with the fix, not at every turn.
            with reporting_skips(skipped.append, seen=state.reported):
                chat.history()
        screen.header(f"threadline chat · model {describe_model(config.model_name, chat)} · "
                      f"store {shown_url(store)}")
        screen.note(f"{'continuing' if resumed else 'new'} {state.session_line()} · /help for "
                    "commands, Ctrl-D to quit")
        for line in skipped:
            screen.note(line)
        if resumed:
            state.run(state.show_last, 2)
        reader = make_reader(data_dir() / "input-history", out)
        state.remember()
        _loop(state, reader, screen)
    finally:
        store.close()
    return 0


def _loop(state: ChatState, reader: LineReader, screen: Screen) -> None:
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
        finally:
            state.remember()  # /new, /switch, /fork... moved the chat


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


def _continued_chat(store: Store, config: Config) -> str:
    from threadline.cli._recent import chat_to_continue

    session = chat_to_continue(store, config.store_url, data_dir())
    if session is None:
        raise UsageError(f"no chat to continue in {shown_url(store)}: start one with "
                         "`threadline chat`, or name a session with --session NAME")
    return session


def run_ask(args: argparse.Namespace, out: TextIO) -> int:
    if args.store is not None and args.session is None and not args.resume:
        raise UsageError("--store is used with --session or --continue only (a question "
                         "without a session is not stored); add --session NAME to store "
                         "the turn")
    question = _question(args)
    config = config_from(args)
    options, max_tokens = _model_options(args)
    window = _window(config)
    stored = args.session is not None or args.resume
    store = open_configured_store(config) if stored else None
    try:
        session = args.session
        if args.resume:
            assert store is not None
            session = _continued_chat(store, config)
        model = load_model(config.model_name, context_window=config.context_tokens)
        chat = Conversation(store, session, model, system=config.system.value,
                            max_tokens=max_tokens, skip_invalid=args.skip_invalid,
                            options=options, window=window)

        def write(text: str) -> None:
            out.write(visible(text, lines=True))  # --json is the exact form
            out.flush()

        with reporting_skips(to_stderr):
            turn = chat.turn(question, None if args.json else write)
        if args.json:
            out.write(json_text({
                "answer": turn.answer.text,
                "model": config.model_name,
                "session": session,
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
