"""``/copy``: the last answer onto the system clipboard, where there is one.

Tried in order: the clipboard program of the session's display (``wl-copy`` under
Wayland, ``xclip`` or ``xsel`` under X11, ``pbcopy`` on macOS, ``clip.exe`` on Windows and
WSL), each found on ``PATH``, given the text on stdin, never through a shell; then OSC 52,
the escape sequence that asks the terminal itself to set the clipboard (which works over
SSH), but only on terminals known to honour it: many ignore it silently, and then the
user would believe the text copied. With neither, :func:`copy` returns ``None`` and the
chat prints the answer plainly, for the user to select.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from typing import TextIO

__all__ = ["copy", "osc52_terminal"]

#: How long a clipboard program may take before it is given up on (xclip forks and stays
#: to serve the selection; its parent returns at once).
TIMEOUT = 5.0

# TERM values and TERM_PROGRAM names of terminals that set the clipboard on OSC 52.
_OSC52_TERMS = ("xterm-kitty", "alacritty", "foot", "wezterm", "xterm-ghostty", "contour")
_OSC52_PROGRAMS = ("iTerm.app", "WezTerm", "ghostty", "vscode", "Tabby", "rio")


def _programs(environ: Mapping[str, str]) -> list[list[str]]:
    programs = []
    if environ.get("WAYLAND_DISPLAY"):
        programs.append(["wl-copy"])
    if environ.get("DISPLAY"):
        programs += [["xclip", "-selection", "clipboard"], ["xsel", "--clipboard", "--input"]]
    if sys.platform == "darwin":
        programs.append(["pbcopy"])
    programs.append(["clip.exe"])  # Windows, and WSL's bridge to it
    return programs


def osc52_terminal(environ: Mapping[str, str]) -> bool:
    """Whether the terminal is one known to set the clipboard on OSC 52 (not under tmux
    or screen, which swallow it unless configured to pass it on)."""
    if environ.get("TMUX") or environ.get("STY"):
        return False
    term = environ.get("TERM", "")
    return (term.startswith(_OSC52_TERMS) or environ.get("TERM_PROGRAM") in _OSC52_PROGRAMS
            or bool(environ.get("KITTY_WINDOW_ID")))


def copy(text: str, out: TextIO, environ: Mapping[str, str] | None = None) -> str | None:
    """Put ``text`` on the clipboard; returns how (the program's name, or ``"OSC 52"``),
    or ``None`` if there is no way here."""
    environ = os.environ if environ is None else environ
    for command in _programs(environ):
        found = shutil.which(command[0], path=environ.get("PATH"))
        if found is None:
            continue
        try:
            done = subprocess.run([found, *command[1:]], input=text.encode("utf-8"),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  timeout=TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return command[0]
    if out.isatty() and osc52_terminal(environ):
        encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
        out.write(f"\x1b]52;c;{encoded}\x07")
        out.flush()
        return "OSC 52"
    return None
