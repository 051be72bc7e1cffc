"""The ``threadline`` command line.

Each subcommand is a :class:`Command`: a name, a one-line help, a function that adds its
arguments, and a function that runs it and returns the exit code. The commands live in
:mod:`threadline.cli` (``chat``, ``ask``, ``sessions``, ``db``, ``doctor``); adding one means
writing those two functions and appending one entry to ``COMMANDS``; ``main`` needs no
change. Settings (store, model, system prompt) come from flags, the environment and a
config file, in that order (:mod:`threadline.cli._config`).

Errors are handled here, once for every command: whatever a command raises is printed as
one line on stderr, ``threadline: error: what is wrong; what to do`` (URLs redacted, see
:func:`~threadline.cli._common.error_text`), never as a traceback. The exit code is 2 for
usage errors (an unknown flag, a flag value of the wrong form, a bad ``--store`` URL, no
question: argparse and :class:`~threadline.cli._common.UsageError`), 1 for failures (a
store, model or file that does not work, unreadable input), 130 for Ctrl-C. ``--debug``
(anywhere on the command line) also prints the traceback, for bug reports. Warnings that
threadline logs while a command runs (a model request retried) are printed the same way,
``threadline: warning: ...``, through the same redaction.

The package never imports this module, so it does not slow down ``import threadline``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, NoReturn, TextIO

from threadline.cli._chat import add_ask_arguments, add_chat_arguments, run_ask, run_chat
from threadline.cli._doctor import add_doctor_arguments, run_doctor
from threadline.cli._report import UsageError, error_text, scrub
from threadline.cli._serve import add_keys_arguments, add_serve_arguments, run_keys, run_serve
from threadline.cli._sessions import (
    add_db_arguments,
    add_sessions_arguments,
    run_db,
    run_sessions,
)
from threadline.cli._visible import visible

__all__ = ["COMMANDS", "Command", "Parser", "main"]


class Command(NamedTuple):
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, TextIO], int]


# -- threadline demo ---------------------------------------------------------------------

# (question, the fake model's canned answer) per turn of the scripted conversation.
_DEMO_TURNS = [
    ("Hi! I'm Ada and I collect teapots.", "Nice to meet you, Ada! How many teapots?"),
    ("Forty-two. What's my name?", "Your name is Ada, and you own 42 teapots."),
    ("Thanks, bye!", "Bye, Ada!"),
]


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--session", default="demo",
                        help="the session id the conversation is stored under (default: demo)")


def _run_demo(args: argparse.Namespace, out: TextIO) -> int:
    # Imported here so `threadline --help` stays instant.
    from threadline import (
        ChatPromptTemplate,
        ChatPromptValue,
        FakeListChatModel,
        InMemoryChatMessageHistory,
        RunnableLambda,
        RunnableWithMessageHistory,
        StrOutputParser,
    )

    store: dict[str, InMemoryChatMessageHistory] = {}

    def get_session_history(session_id: str) -> InMemoryChatMessageHistory:
        return store.setdefault(session_id, InMemoryChatMessageHistory())

    seen: list[int] = []

    def count_messages(prompt: ChatPromptValue) -> ChatPromptValue:
        seen.append(len(prompt.to_messages()))  # what the model is sent this turn
        return prompt

    prompt = ChatPromptTemplate.from_messages([
        ("system", "You are a friendly assistant."),
        ("placeholder", "{chat_history}"),
        ("human", "{question}"),
    ])
    model = FakeListChatModel(responses=[answer for _, answer in _DEMO_TURNS])
    chain = RunnableWithMessageHistory(
        prompt | RunnableLambda(count_messages) | model | StrOutputParser(),
        get_session_history,
        input_messages_key="question",
        history_messages_key="chat_history",
    )

    out.write("threadline demo: a scripted conversation with FakeListChatModel, kept in an\n"
              "in-memory history by RunnableWithMessageHistory. The answers are canned (no\n"
              "network); the memory is real: each turn the model is sent the history.\n\n")
    for number, (question, _) in enumerate(_DEMO_TURNS, 1):
        answer = chain.invoke({"question": question}, session_id=args.session)
        out.write(f"turn {number}  (the model was sent {seen[-1]} messages: the system "
                  f"prompt, {seen[-1] - 2} from the history, the question)\n"
                  f"  human: {question}\n  ai:    {answer}\n")

    history = store[args.session]
    messages = history.get_messages()
    out.write(f"\nstored history of session {args.session!r} ({len(messages)} messages):\n")
    for line in str(history).splitlines():
        out.write(f"  {line}\n")
    return 0


COMMANDS: list[Command] = [
    Command("chat", "chat with a model; the conversation is stored and continued next time",
            add_chat_arguments, run_chat),
    Command("ask", "ask one question and print the answer (reads piped stdin too)",
            add_ask_arguments, run_ask),
    Command("sessions", "list, show, export, import, copy, delete, purge, convert and repair "
            "sessions",
            add_sessions_arguments, run_sessions),
    Command("db", "set up a store: threadline db init [--store URL]",
            add_db_arguments, run_db),
    Command("serve", "run the OpenAI-compatible server and web chat on the store",
            add_serve_arguments, run_serve),
    Command("keys", "create, list and revoke the server's API keys",
            add_keys_arguments, run_keys),
    Command("doctor", "show what is installed and configured, and check store and model",
            add_doctor_arguments, run_doctor),
    Command("demo", "run a short scripted conversation that shows the memory at work",
            _add_demo_arguments, _run_demo),
]


class Parser(argparse.ArgumentParser):
    """The parser of ``threadline`` and, through argparse's ``parser_class``, of each
    (sub)command: every one accepts ``--debug``, and a usage error is one line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # SUPPRESS: a subcommand's parser must not reset what the main parser saw.
        self.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                          help="print the Python traceback of an error (for bug reports)")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {visible(message)} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    from threadline import __version__

    parser = Parser(
        prog="threadline",
        description="Memory for LLM applications: stateful conversations in pluggable, "
                    "persistent chat message histories.",
    )
    parser.add_argument("--version", action="version", version=f"threadline {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


class _StderrLines(logging.Handler):
    """Log records of threadline as ``threadline: warning: ...`` lines on stderr (the
    current one: tests swap it), redacted like errors."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = visible(scrub(" ".join(record.getMessage().split("\n"))))
            sys.stderr.write(f"threadline: {record.levelname.lower()}: {text}\n")
            sys.stderr.flush()
        except Exception:  # a logging failure must not end the command
            self.handleError(record)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (``main(["sessions", "list"])``)."""
    logger = logging.getLogger("threadline")
    handler = _StderrLines(logging.WARNING)
    logger.addHandler(handler)
    try:
        return _main(argv)
    finally:
        logger.removeHandler(handler)


def _main(argv: Sequence[str] | None) -> int:
    args: argparse.Namespace | None = None
    try:
        parser = _parser()
        if not (sys.argv[1:] if argv is None else argv):
            parser.print_help(sys.stderr)  # `threadline` alone: what can it do?
            return 2
        args = parser.parse_args(argv)
        code: int = args.run(args, sys.stdout)
    except BrokenPipeError:
        # The reader went away (`threadline demo | head`): nothing left to tell anyone.
        # Point stdout at devnull so the interpreter's final flush does not fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        _traceback(args)
        print("threadline: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        _traceback(args)
        can_skip = args is not None and hasattr(args, "skip_invalid")
        print(f"threadline: error: {error_text(exc, can_skip=can_skip)}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    return code


def _traceback(args: argparse.Namespace | None) -> None:
    if args is not None and getattr(args, "debug", False):
        traceback.print_exc()
