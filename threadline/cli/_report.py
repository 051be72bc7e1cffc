"""What the command line tells the user when something is wrong: the one line of an
error, warnings, and the stored messages a ``--skip-invalid`` read left out.

:func:`error_text` turns any exception into ``what is wrong; what to do`` (a bug into a
line that asks for ``--debug``); ``threadline.cli._main.main`` prints it for every command,
the chat loop for each failed turn. Everything printed goes through :func:`scrub`, which
renders each URL in a text with :func:`~threadline._redact.redact_url`: messages should
already show URLs redacted, this is the last line of defence. Then through
:func:`~threadline.cli._visible.visible`: an error may quote stored text or a server's
answer, whose control characters must not reach the terminal.

The library's errors speak to a Python caller, in arguments (``pass api_key=...``); the
command line speaks in flags and environment variables (``--model``, ``OPENAI_API_KEY``,
``OPENAI_BASE_URL``). :func:`cli_wording` rewrites the known library hints at this one
boundary, so the library keeps its wording and no library module knows about flags; each
rewrite is tested against the error the library really raises (tests/cli/
test_cli_newcomer.py), so a reworded library message cannot slip through unnoticed.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from threadline._errors import (
    InputError,
    MessageFormatError,
    SkippedMessageWarning,
    ThreadlineError,
)
from threadline._redact import redact_text
from threadline.cli._visible import visible

__all__ = [
    "UsageError",
    "check_utf8",
    "cli_wording",
    "error_text",
    "not_utf8",
    "reporting_skips",
    "scrub",
    "skip_lines",
    "to_stderr",
]


class UsageError(InputError):
    """The command line asks for something that cannot be done as asked (exit code 2,
    like argparse's own errors): a missing question, options that do not go together."""


# -- errors ----------------------------------------------------------------------------------

# Anything that looks like a URL inside a message: its password and secret options go.
def scrub(text: str) -> str:
    """``text`` with every URL in it rendered by :func:`redact_url` (a last line of
    defence: messages should already show redacted URLs)."""
    return redact_text(text)


# (a library hint, as a pattern) -> the same hint in the command line's terms. Compiled
# on first use (re caches them), not when the command line starts.
_QUOTED = r"""(?P<quoted>'[^\n]*'|"[^\n]*")"""
_CLI_WORDING: tuple[tuple[str, str], ...] = (
    # LocalChatModel(model_path=...), from --model gguf:PATH
    (rf"model_path {_QUOTED} is not a file; pass the path of a \.gguf model, or None "
     r"for the default SmolLM2 model",
     r"the model file \g<quoted> does not exist (or is not a file); pass "
     r"--model gguf:/path/to/model.gguf with an existing .gguf file, or --model local "
     r"for the default SmolLM2 model"),
    (r"\(or pass model_path= to LocalChatModel\)",
     r"(or choose a model file with --model gguf:/path/to/model.gguf)"),
    (r"^n_ctx (?=must be )", "--context-window "),
    (r"\(n_ctx=(?P<n_ctx>\d+), n_threads=(?P<threads>\d+)\)",
     r"(a \g<n_ctx>-token context window, \g<threads> threads)"),
    # Model options (-o NAME VALUE) that may be left out, which Python spells None.
    (r"(?P<accepted> must be an int >= \d+) or None(?=, got )", r"\g<accepted>"),
    (r"; trim it first, e\.g\. trim_messages\(.*?\), or load the model with a larger "
     r"n_ctx",
     r"; start a new session (--session NAME) or choose a model with a larger context "
     r"(--model)"),
    # ChatOpenAI(api_key=..., base_url=...), from OPENAI_API_KEY / OPENAI_BASE_URL
    (r"ChatOpenAI needs an API key for the OpenAI API: pass api_key=\.\.\. or set "
     r"OPENAI_API_KEY \(for a server that needs no key, pass its base_url=\.\.\.\)",
     r"the OpenAI API needs a key: set OPENAI_API_KEY (for a server that needs no key, "
     r"set OPENAI_BASE_URL to its URL, e.g. http://localhost:8000/v1)"),
    (r"^base_url (?=must be |'|\")", "OPENAI_BASE_URL "),
    (r"is the server running and base_url right\?",
     "is the server running and OPENAI_BASE_URL right?"),
    (r"; check api_key / OPENAI_API_KEY", "; check OPENAI_API_KEY"),
    (r" and base_url \(usually ends in /v1\)",
     " (--model openai:NAME) and OPENAI_BASE_URL (usually ends in /v1)"),
    (r"did not answer within timeout=(?P<seconds>[0-9.]+)s",
     r"did not answer within \g<seconds> s"),
    # get_chat_model's list of model names
    (r" \(responses=\[\.\.\.\] to choose them\)", ""),
    (r"\(base_url=/OPENAI_BASE_URL, ", "(OPENAI_BASE_URL, "),
)


def cli_wording(text: str) -> str:
    """``text`` (a library error's message) with its hints in the command line's terms:
    ``pass api_key=...`` becomes ``set OPENAI_API_KEY``, ``model_path`` ``--model
    gguf:PATH``. Text without such a hint is returned as it is."""
    for pattern, replacement in _CLI_WORDING:
        text = re.sub(pattern, replacement, text)
    return text


def error_text(exc: BaseException, *, can_skip: bool = False) -> str:
    """The one line that tells the user what went wrong and what to do."""
    if isinstance(exc, UnicodeDecodeError):
        text = str(not_utf8(exc, "the input"))
    elif isinstance(exc, OSError) and not isinstance(exc, ThreadlineError) \
            and exc.strerror and exc.filename is not None:
        text = f"{exc.strerror}: {str(exc.filename)!r}; check the path and its permissions"
    elif isinstance(exc, ThreadlineError):
        text = cli_wording(str(exc)) or type(exc).__name__
    elif isinstance(exc, OSError):
        text = str(exc) or type(exc).__name__
    else:
        text = (f"unexpected {type(exc).__name__}: {exc} (a bug in threadline: run the "
                "command again with --debug and report the traceback)")
    if isinstance(exc, MessageFormatError) and exc.position is not None:  # a stored one
        repair = "recover a damaged history file with `threadline sessions repair FILE`"
        text += (f"; pass --skip-invalid to read the other messages, or {repair}"
                 if can_skip else f"; {repair}")
    return visible(scrub(" ".join(text.split("\n"))))


# -- warnings and skipped messages --------------------------------------------------------


def _positions(errors: Sequence[MessageFormatError]) -> str:
    shown = [str(e.position) for e in errors[:10] if e.position is not None]
    more = f" and {len(errors) - 10} more" if len(errors) > 10 else ""
    return (f" at position{'s' if len(errors) > 1 else ''} {', '.join(shown)}{more}"
            if shown else "")


def skip_lines(errors: Sequence[MessageFormatError]) -> list[str]:
    """One line per session: how many unreadable messages were skipped, and where."""
    by_session: dict[str | None, list[MessageFormatError]] = {}
    for error in errors:
        by_session.setdefault(error.session_id, []).append(error)
    lines = []
    for session_id, found in by_session.items():
        where = f" of session {session_id!r}" if session_id is not None else ""
        noun = "message" if len(found) == 1 else "messages"
        lines.append(f"skipped {len(found)} unreadable {noun}{where}{_positions(found)} "
                     f"(first: {found[0]})")
    return lines


@contextmanager
def reporting_skips(report: Callable[[str], object], *,
                    seen: set[tuple[str | None, int | None]] | None = None,
                    ) -> Iterator[list[MessageFormatError]]:
    """Collect the :class:`SkippedMessageWarning` s of the reads inside, then ``report``
    each session's as one line (also when the block fails). Other warnings are reported
    as one line each too: the command line shows no Python warning with a source line.
    ``seen`` holds the ``(session, position)`` of errors reported before: not again."""
    skipped: list[MessageFormatError] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # each one, even if seen before in this process
        try:
            yield skipped
        finally:
            others = []
            for warning in caught:
                if not isinstance(warning.message, SkippedMessageWarning):
                    others.append(str(warning.message))
                    continue
                error = warning.message.error
                if seen is not None:
                    if (error.session_id, error.position) in seen:
                        continue
                    seen.add((error.session_id, error.position))
                skipped.append(error)
            for text in others:
                report(f"warning: {visible(scrub(text))}")
            for line in skip_lines(skipped):
                report(f"warning: {visible(scrub(line))}")


def check_utf8(text: str | bytes, what: str) -> str:
    """``text`` as a str, if it is (or decodes as) UTF-8; else an :class:`InputError`
    saying where the first bad byte is. Text read with ``surrogateescape`` (arguments,
    the C locale's stdin) holds the bad bytes as lone surrogates: refused too."""
    try:
        data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
        return data.decode("utf-8")
    except UnicodeError as exc:
        raise not_utf8(exc, what) from exc


def not_utf8(exc: UnicodeError, what: str) -> InputError:
    """The error for text that is not UTF-8, pointing at the first bad byte."""
    where = ""
    if isinstance(exc, UnicodeDecodeError):
        where = f" (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
    return InputError(f"{what} is not UTF-8{where}; convert it first, e.g. "
                      "iconv -f LATIN1 -t UTF-8")


def to_stderr(text: str) -> None:
    """``threadline: text`` on stderr: warnings and notes that are not the output."""
    sys.stderr.write(f"threadline: {text}\n")
    sys.stderr.flush()
