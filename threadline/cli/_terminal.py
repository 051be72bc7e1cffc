"""The chat's terminal: reading what the user types, showing what the model writes.

Two flavours of each, chosen once at start:

- On a terminal, with the ``cli`` extra: prompt_toolkit reads input (line editing, Up/Down
  recall of earlier lines, kept in a file across runs; Esc Enter or Alt-Enter for a new
  line, pasted text stays multi-line), and rich renders the answer as Markdown, redrawn
  as it streams.
- Otherwise (stdin or stdout not a terminal, or the extra missing): one line of stdin is
  one message, and the answer's text is written as it arrives. That is what makes
  ``printf 'hi\\n/history\\n' | threadline chat`` scriptable.

Either way every line and every piece of an answer goes through
:func:`~threadline.cli._visible.visible` (keeping line breaks): what a store holds or a
model writes cannot send the terminal commands. Markdown links are shown with their
target, ``text (https://...)``, never as terminal hyperlinks (OSC 8), whose target a
reader cannot see. The typed lines are kept in a private (0600) file.

While an answer is drawn on a terminal, the terminal's echo is off (:func:`_quiet_input`):
rich redraws the answer by moving the cursor back over the lines it drew, and anything
the terminal echoed meanwhile, ``^C`` above all, moved the cursor behind rich's back (a
full-width line plus ``^C`` wraps), so the partial answer was drawn a second time below
the first. Keys typed during an answer are still read, at the next prompt.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TextIO

from threadline.cli._visible import visible

__all__ = ["LineReader", "Screen", "make_reader"]


class LineReader(Protocol):
    def read(self, prompt: str) -> str:
        """One message; raises EOFError at the end (Ctrl-D), KeyboardInterrupt on Ctrl-C."""
        ...


class _PlainReader:
    def __init__(self, stdin: TextIO, out: TextIO, *, echo_prompt: bool) -> None:
        self.stdin, self.out, self.echo_prompt = stdin, out, echo_prompt

    def read(self, prompt: str) -> str:
        if self.echo_prompt:
            self.out.write(prompt)
            self.out.flush()
        from threadline.cli._report import check_utf8, not_utf8

        try:
            line = self.stdin.readline()
        except UnicodeDecodeError as exc:
            raise not_utf8(exc, "the input") from exc
        if not line:
            raise EOFError
        return check_utf8(line, "a line of the input").rstrip("\n")


class _PromptReader:
    def __init__(self, history_file: Path) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory
        from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

        bindings = KeyBindings()

        @bindings.add("escape", "enter")
        def _newline(event: KeyPressEvent) -> None:
            event.current_buffer.insert_text("\n")

        from threadline.cli._files import private_file

        private_file(history_file)  # everything typed: 0600, in a 0700 folder
        self.session: Any = PromptSession(
            history=FileHistory(str(history_file)), key_bindings=bindings,
            prompt_continuation=lambda width, line, soft: "." * (width - 1) + " ",
        )

    def read(self, prompt: str) -> str:
        return str(self.session.prompt(prompt))


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def make_reader(history_file: Path, out: TextIO) -> LineReader:
    """prompt_toolkit on a terminal (when installed), plain lines otherwise."""
    interactive = sys.stdin.isatty() and out.isatty()
    if interactive and _has("prompt_toolkit"):
        return _PromptReader(history_file)
    return _PlainReader(sys.stdin, out, echo_prompt=interactive)


@contextmanager
def _quiet_input() -> Iterator[None]:
    """Terminal echo off (``^C`` included) inside, when stdin is a terminal; restored
    after, whatever happens."""
    try:
        import termios

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd) if sys.stdin.isatty() else None
    except (ImportError, OSError, ValueError):  # no termios (Windows), stdin replaced
        saved = None
    if saved is None:
        yield
        return
    quiet = list(saved)
    quiet[3] &= ~(termios.ECHO | termios.ECHOCTL)  # lflag
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            termios.tcsetattr(fd, termios.TCSANOW, saved)


class Screen:
    """Where the chat writes: rich on a terminal (when installed), plain text otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.console: Any = None
        if out.isatty() and _has("rich"):
            from rich.console import Console

            self.console = Console(file=out, highlight=False)

    def line(self, text: str = "", style: str | None = None) -> None:
        text = visible(text, lines=True)
        if self.console is not None:
            self.console.print(text, style=style, markup=False)
        else:
            self.out.write(text + "\n")
            self.out.flush()

    def note(self, text: str) -> None:
        """Something about the chat rather than in it (dim on a terminal)."""
        self.line(text, style="dim")

    def error(self, text: str) -> None:
        self.line(f"error: {text}", style="bold red")

    def header(self, text: str) -> None:
        self.line(text, style="bold")

    def plain(self, text: str) -> None:
        """``text`` as it is (control characters shown, not sent), without Markdown or
        wrapping: for the user to select and copy."""
        self.out.write(visible(text, lines=True) + "\n")
        self.out.flush()

    @contextmanager
    def answer(self) -> Iterator[Callable[[str], None]]:
        """A callback to feed the answer's text to, as it streams."""
        if self.console is None:
            def write(text: str) -> None:
                self.out.write(visible(text, lines=True))
                self.out.flush()

            try:
                yield write
            finally:
                self.out.write("\n")
                self.out.flush()
            return

        from rich.live import Live
        from rich.markdown import Markdown

        parts: list[str] = []
        # Redrawn at most 12 times a second whatever the token rate; what overflows the
        # screen scrolls ("visible") instead of being cut.
        with _quiet_input(), Live(Markdown(""), console=self.console, refresh_per_second=12,
                  vertical_overflow="visible") as live:
            def feed(text: str) -> None:
                parts.append(visible(text, lines=True))
                live.update(Markdown("".join(parts), hyperlinks=False))

            try:
                yield feed
            finally:
                live.update(Markdown("".join(parts), hyperlinks=False), refresh=True)
