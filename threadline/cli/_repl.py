"""The interactive chat's state and its slash commands (``/new``, ``/retry``, ``/copy``...).

:class:`ChatState` holds one chat: its configuration, its
:class:`~threadline.cli._conversation.Conversation` and its
:class:`~threadline.cli._terminal.Screen`; each command is a method taking the text after
the command's name and returning ``False`` to leave the chat. The loop that reads lines
and calls them is :func:`threadline.cli._chat.run_chat`'s. Errors are raised as
:class:`~threadline.InputError` and friends; the loop prints them as one line and the chat
goes on.

Commands that take the chat elsewhere in the store (``/new``, ``/switch``, ``/fork``,
``/edit``, ``/retry``, ``/undo``) change ``chat.session_id``; :meth:`ChatState.remember`
then records the session as the last chat (:mod:`threadline.cli._recent`). ``/edit``,
``/retry`` and ``/undo`` never rewrite stored messages (a store has no way to take
messages back, and nothing should be lost): they continue in a fork made before the last
question, and the original session keeps the last turn under its id.
"""

from __future__ import annotations

import argparse
import contextlib
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from threadline._errors import ConfigurationError, InputError
from threadline.cli._common import (
    count,
    format_time,
    load_model,
    new_session_id,
    read_messages,
)
from threadline.cli._config import Config, data_dir
from threadline.cli._conversation import Conversation
from threadline.cli._report import error_text, reporting_skips
from threadline.cli._visible import message_lines, visible

if TYPE_CHECKING:
    from threadline.cli._terminal import Screen
    from threadline.messages._values import BaseMessage
    from threadline.stores import Store

__all__ = ["HELP", "ChatState", "describe_model"]

T = TypeVar("T")

HELP = """\
/new             start a new session
/sessions        list the sessions in the store, most recent first
/switch NAME     continue session NAME (a new one if it does not exist)
/history [N]     show this session's messages (the last N)
/rename TITLE    set this session's title
/search WORDS    find the messages holding every word, in every session
/fork [NAME]     copy this session into a new one and continue there
/edit TEXT       ask TEXT instead of your last question, in a fork (the original stays)
/retry           ask your last question again, in a fork (the earlier answer stays in
                 the original session, under its id)
/undo            drop the last turn: continue in a fork without it (the original
                 session keeps it, under its id: /switch back to it)
/copy            copy the last answer to the clipboard (else print it plainly)
/clear           delete this session's messages
/export FILE     write this session to FILE (JSON Lines, LangChain's message dicts)
/model [NAME]    show the model, or switch to another (local, gguf:PATH, openai:NAME, ...)
/help            this list
/quit            leave (or Ctrl-D)
Enter sends; Esc Enter (Alt-Enter) starts a new line; Up/Down recall earlier input;
Ctrl-C stops an answer (the question and the partial answer are kept)."""


def describe_model(name: str, chat: Conversation) -> str:
    """``openai:gpt-4o-mini · context 128,000 tokens (known for gpt-4o-mini)``."""
    own = getattr(chat.model, "model_name", "") or ""
    shown = bool(own) and own not in (name, name.partition(":")[2])  # not openai:m (m)
    detail = f" ({visible(own)})" if shown else ""
    window = chat.window_info
    return f"{visible(name)}{detail} · context {window.tokens:,} tokens ({window.source})"


class ChatState:
    """The state of one interactive chat and its slash commands."""

    def __init__(self, config: Config, chat: Conversation, screen: Screen, *,
                 debug: bool = False) -> None:
        self.config = config
        self.chat = chat
        self.screen = screen
        self.debug = debug
        self.model_name = config.model_name
        self.warned_trim = False
        # The session last written to the last-chat record; None: not yet.
        self.remembered: str | None = None
        self.record_failed = False
        # (session, position) of the unreadable messages already reported: every turn
        # reads the history again, and says so once.
        self.reported: set[tuple[str | None, int | None]] = set()
        self.commands: dict[str, Callable[[str], bool]] = {
            "/help": self.help, "/new": self.new, "/sessions": self.sessions,
            "/switch": self.switch, "/history": self.history, "/rename": self.rename,
            "/search": self.search, "/fork": self.fork, "/edit": self.edit,
            "/retry": self.retry, "/undo": self.undo, "/copy": self.copy,
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

    def remember(self) -> None:
        """Record the session the chat is in as the last chat (once per change), so a
        bare ``threadline chat`` comes back to it; a failure is said once."""
        from threadline.cli._recent import remember_chat

        if self.chat.session_id is None or self.chat.session_id == self.remembered:
            return
        try:
            remember_chat(data_dir(), self.config.store_url, self.chat.session_id)
        except OSError as exc:
            if not self.record_failed:
                self.record_failed = True
                self.screen.note(f"(cannot record the last chat in {data_dir()}: "
                                 f"{exc.strerror or exc}; the next chat may continue "
                                 "another session)")
            return
        self.remembered = self.chat.session_id

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
        self.show_last(2)
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
        for line in message_lines(messages):
            self.screen.line(line)
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
        source = self._fork(argument, at=at)
        self.screen.note(f"forked {visible(source)} into {self.session_line()}")
        return True

    def _fork(self, argument: str, *, at: int | None = None) -> str:
        """Continue in a fork (named ``argument``, else a new id) of the session's first
        ``at`` messages; returns the source session's id."""
        from threadline.stores._base import validate_session_id

        new = validate_session_id(argument) if argument else new_session_id(self.store)
        if self.store.session_info(self.session) is None:
            raise InputError("this session holds nothing to fork yet")
        source = self.session
        self.store.fork(source, new, at=at)
        self.chat.session_id = new
        return source

    def _last_question(self, doing: str) -> tuple[int, BaseMessage]:
        """The position and message of the session's last question."""
        messages = read_messages(self.store, self.session, skip_invalid=self.chat.skip_invalid)
        questions = [i for i, m in enumerate(messages) if m.type == "human"]
        if not questions:
            raise InputError(f"this session has no question to {doing} yet")
        return questions[-1], messages[questions[-1]]

    def edit(self, argument: str) -> bool:
        if not argument:
            raise InputError("/edit needs the new question, e.g. /edit and in Bergen?")
        at, _ = self._last_question("edit")
        self.fork("", at=at)
        self.ask(argument)
        return True

    def retry(self, argument: str) -> bool:
        at, question = self._last_question("ask again")
        source = self._fork("", at=at)
        self.screen.note(f"asking again in {self.session_line()}, a fork of "
                         f"{visible(source)} (which keeps the earlier answer)")
        self.ask(question.text)
        return True

    def undo(self, argument: str) -> bool:
        at, _ = self._last_question("undo")
        source = self._fork("", at=at)
        self.screen.note(f"undone: now in {self.session_line()}, a fork of "
                         f"{visible(source)} without its last turn; {visible(source)} keeps "
                         f"it (/switch {visible(source)} to go back)")
        return True

    def copy(self, argument: str) -> bool:
        from threadline.cli._clipboard import copy

        answers = [m for m in read_messages(self.store, self.session, last=20,
                                            skip_invalid=self.chat.skip_invalid)
                   if m.type == "ai" and m.text.strip()]
        if not answers:
            raise InputError("this session has no answer to copy yet")
        text = answers[-1].text
        how = copy(text, self.screen.out)
        if how is None:
            self.screen.note("no clipboard here (wl-copy, xclip, xsel, pbcopy, or a "
                             "terminal known to take OSC 52); the last answer, to select:")
            self.screen.plain(text)
        else:
            self.screen.note(f"copied the last answer ({len(text):,} characters) with {how}")
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
            self.chat.set_model(load_model(argument))  # its own or known window
            self.model_name = argument
        self.screen.note(f"model {describe_model(self.model_name, self.chat)}")
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

    def show_last(self, number: int) -> None:
        for line in message_lines(read_messages(self.store, self.session, last=number,
                                                skip_invalid=self.chat.skip_invalid)):
            self.screen.note(line)

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


