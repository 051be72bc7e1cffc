"""Issue 18, items 3, 5, 6 and 10: which chat a bare ``threadline chat`` continues, the
short flags and ``-o`` model options, the context window's figure and source, and the
``/retry``, ``/undo`` and ``/copy`` commands.

The interactive tests drive the real command through a pseudo-terminal (pexpect, as
tests/cli/test_chat_interactive.py does); the model options are checked where they
arrive, in the requests a real local OpenAI-compatible server (tests/openai_server.py)
records. The rest runs ``main()`` in-process.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
from openai_server import OpenAIServer
from test_chat_interactive import NEXT_PROMPT, THREADLINE, _quit, _spawn, _stored

from threadline import AIMessage, HumanMessage, open_store
from threadline.cli._clipboard import copy, osc52_terminal
from threadline.cli._main import main
from threadline.cli._options import parse_options
from threadline.cli._recent import RECORD_NAME, chat_to_continue, last_chat, remember_chat
from threadline.cli._report import UsageError

FAKE_FIRST = "Hello! I'm a fake model: I answer from a fixed list, offline."
FAKE_SECOND = "Good question. (I'm still a fake model, so I can't really answer it.)"


def _db(home: Path) -> str:
    return f"sqlite:///{home / 'data' / 'threadline.db'}"


def _ask(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("THREADLINE_", "OPENAI_"))}
    env["THREADLINE_HOME"] = str(home)
    return subprocess.run([THREADLINE, "ask", *args], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=30, check=False)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- item 3: a bare chat continues the last chat, whatever `ask` did --------------------------


def test_a_bare_chat_continues_the_last_chat_not_the_last_ask(tmp_path: Path) -> None:
    child = _spawn(tmp_path, "-m", "echo")
    child.expect(r"new session (chat-[\d-]+) \(0 messages\)")
    first = child.match.group(1)
    child.expect(NEXT_PROMPT)
    child.sendline("the chat I was in")
    child.expect(NEXT_PROMPT)
    _quit(child)

    # `ask --session` writes s1 last: it is the store's most recent session now.
    done = _ask(tmp_path, "-m", "echo", "-S", "s1", "asked aside")
    assert (done.returncode, done.stdout) == (0, "asked aside\n"), done.stderr

    child = _spawn(tmp_path, "-m", "echo")
    child.expect(f"continuing session {first} \\(2 messages\\)")
    child.expect(NEXT_PROMPT)
    child.sendline("/switch s1")  # the user's choice is what the next chat continues
    child.expect("switched to session s1 \\(2 messages\\)")
    child.expect(NEXT_PROMPT)
    _quit(child)

    child = _spawn(tmp_path, "-c", "-m", "echo")
    child.expect("continuing session s1 \\(2 messages\\)")
    child.expect(NEXT_PROMPT)
    _quit(child)

    # `ask -c` asks in that same chat, and does not move it.
    done = _ask(tmp_path, "-m", "echo", "-c", "and a follow-up")
    assert done.returncode == 0, done.stderr
    assert [m.text for m in _stored(tmp_path)["s1"]][-2:] == ["and a follow-up"] * 2
    record = tmp_path / "data" / RECORD_NAME
    assert stat.S_IMODE(os.stat(record).st_mode) == 0o600
    text = record.read_text(encoding="utf-8")
    assert '"session": "s1"' in text and "threadline.db" not in text and "sqlite" not in text


def test_the_last_chat_record(tmp_path: Path) -> None:
    old = os.umask(0)  # the record is private whatever the umask
    try:
        remember_chat(tmp_path / "data", "postgresql://bob:SECRET@db/app", "chat-1")
    finally:
        os.umask(old)
    record = tmp_path / "data" / RECORD_NAME
    assert stat.S_IMODE(os.stat(record).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(record.parent).st_mode) == 0o700
    assert "SECRET" not in record.read_text() and "bob" not in record.read_text()
    assert last_chat(tmp_path / "data", "postgresql://bob:SECRET@db/app") == "chat-1"
    assert last_chat(tmp_path / "data", "sqlite:///other.db") is None
    remember_chat(tmp_path / "data", "sqlite:///other.db", "chat-2")
    assert last_chat(tmp_path / "data", "postgresql://bob:SECRET@db/app") == "chat-1"
    assert [p.name for p in record.parent.iterdir()] == [RECORD_NAME]  # no temporary left
    remember_chat(tmp_path / "data", "memory://", "odd\udcff\x1b id")  # any id a store holds
    assert last_chat(tmp_path / "data", "memory://") == "odd\udcff\x1b id"

    with open_store("memory://") as store:
        store.append("recent", [HumanMessage("a"), AIMessage("b")])
        # A recorded session that is gone: the store's most recent one instead.
        assert chat_to_continue(store, "sqlite:///other.db", tmp_path / "data") == "recent"
        store.append("chat-2", [HumanMessage("c"), AIMessage("d")])
        store.append("recent", [HumanMessage("e"), AIMessage("f")])
        assert chat_to_continue(store, "sqlite:///other.db", tmp_path / "data") == "chat-2"
        record.write_text("{not json")  # a damaged record is ignored, not an error
        assert chat_to_continue(store, "sqlite:///other.db", tmp_path / "data") == "recent"


def test_ask_continue_without_any_chat_is_a_usage_error(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "ask", "-m", "echo", "-c", "hi")
    assert (code, out) == (2, "")
    assert err.startswith("threadline: error: no chat to continue in sqlite:///")
    assert err.endswith("start one with `threadline chat`, or name a session with "
                        "--session NAME\n")


# -- items 5 and 6: short flags, -o options, the context window ---------------------------


def test_short_flags_and_model_options_reach_the_model(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        child = _spawn(tmp_path, "-m", "openai:gpt-4o-mini", "-S", "flags", "-s", "Be terse.",
                       "-o", "temperature", "0.2", "-o", "max_tokens", "50", "-o", "seed", "7",
                       env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-test",
                            "NO_PROXY": "127.0.0.1"}, columns=400)
        child.expect(re.escape("model openai:gpt-4o-mini · context 128,000 tokens (known for "
                               "gpt-4o-mini)"))
        child.expect(NEXT_PROMPT)
        child.sendline("hello")
        child.expect("echo: hello")
        child.expect(NEXT_PROMPT)
        _quit(child)
        [body] = [r.body for r in server.requests if r.body.get("stream")]
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.2, 50, 7)
    assert body["messages"][0] == {"role": "system", "content": "Be terse."}
    stored = _stored(tmp_path)["flags"]
    assert [m.text for m in stored] == ["hello", "echo: hello"]
    assert "temperature" not in json.dumps([m.response_metadata for m in stored])


def test_model_option_errors_name_the_option(home: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "ask", "-m", "echo", "-o", "temprature", "1", "hi")
    assert code == 2
    assert err == ("threadline: error: unknown model option 'temprature' (-o NAME VALUE); "
                   "accepted: frequency_penalty, max_tokens, presence_penalty, seed, stop, "
                   "temperature, top_p\n")
    for name, value, accepted in [("temperature", "hot", "a number from 0 to 2"),
                                  ("temperature", "3", "a number from 0 to 2"),
                                  ("top_p", "nan", "a number from 0 to 1"),
                                  ("max_tokens", "0", "a whole number >= 1"),
                                  ("seed", "1.5", "a whole number >= 0"),
                                  ("stop", "", "a non-empty string")]:
        code, _, err = _run(capsys, "ask", "-m", "echo", "-o", name, value, "hi")
        assert (code, err) == (2, f"threadline: error: model option {name} must be "
                                  f"{accepted}, got {value!r}\n")
    code, _, err = _run(capsys, "ask", "-m", "echo", "-o", "max_tokens", "5",
                        "--max-tokens", "6", "hi")
    assert (code, err) == (2, "threadline: error: -o max_tokens 5 and --max-tokens 6 "
                              "disagree; give one of them\n")
    with pytest.raises(SystemExit) as info:
        main(["ask", "-m", "echo", "-o", "temperature"])
    assert info.value.code == 2
    assert "argument -o/--option: expected 2 arguments" in capsys.readouterr().err
    assert parse_options([["Top-P", " 0.5 "], ["stop", "END"]]) == {"top_p": 0.5,
                                                                    "stop": ["END"]}
    with pytest.raises(UsageError):
        parse_options([["frequency_penalty", "-3"]])


def test_the_banner_says_where_the_context_window_came_from(
        home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    def banner(*args: str) -> str:
        code, out, err = _run(capsys, "chat", "-m", "echo", "--new", *args)
        assert (code, err) == (0, "")
        return out.splitlines()[0]

    assert "model echo · context 8,192 tokens (default) · store" in banner()
    assert "context 4,096 tokens (--context-window)" in banner("--context-window", "4096")
    (home / "config").mkdir()
    (home / "config" / "config.toml").write_text("context_window = 32768\n")
    assert "context 32,768 tokens (config)" in banner()
    monkeypatch.setenv("THREADLINE_CONTEXT_WINDOW", "16000")
    assert "context 16,000 tokens (THREADLINE_CONTEXT_WINDOW)" in banner()
    assert "context 1,000 tokens (--context-window)" in banner("--context-window", "1000")
    monkeypatch.setenv("THREADLINE_CONTEXT_WINDOW", "lots")
    code, _, err = _run(capsys, "chat", "-m", "echo", "--new")
    assert (code, err) == (1, "threadline: error: THREADLINE_CONTEXT_WINDOW must be a whole "
                              "number of tokens >= 1, e.g. 32768, got 'lots'\n")


def test_a_context_window_too_small_for_the_question_says_so(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "ask", "-m", "echo", "--context-window", "520",
                        "--max-tokens", "500", "a question longer than twenty tokens " * 3)
    assert code == 1
    assert "does not fit the model's context window (520 tokens, 20 for the prompt)" in err


# -- item 10: /retry, /undo, /copy ----------------------------------------------------------


def test_retry_undo_and_copy(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    clipboard = tmp_path / "clipboard.txt"
    xclip = bin_dir / "xclip"  # stands in for the real one: takes the text on stdin
    xclip.write_text(f'#!/bin/sh\n[ "$1 $2" = "-selection clipboard" ] || exit 9\n'
                     f'cat > "{clipboard}"\n')
    xclip.chmod(0o755)
    child = _spawn(tmp_path, "-m", "fake", "-S", "r",
                   env={"DISPLAY": ":0", "PATH": f"{bin_dir}:{os.environ['PATH']}"},
                   columns=400)  # the notes on one line each
    child.expect(NEXT_PROMPT)
    child.sendline("/help")
    child.expect(r"/retry +ask your last question again, in a fork")
    child.expect(r"/undo +drop the last turn: continue in a fork without it")
    child.expect(r"/copy +copy the last answer to the clipboard")
    child.expect(NEXT_PROMPT)
    child.sendline("first question")
    child.expect(re.escape(FAKE_FIRST))
    child.expect(NEXT_PROMPT)

    child.sendline("/retry")
    child.expect(r"asking again in session (chat-[\d-]+) \(0 messages\).*, a fork of r "
                 r"\(which keeps the earlier answer\)")
    retried = child.match.group(1)
    child.expect(re.escape(FAKE_SECOND))
    child.expect(NEXT_PROMPT)

    child.sendline("/copy")
    child.expect(f"copied the last answer \\({len(FAKE_SECOND)} characters\\) with xclip")
    child.expect(NEXT_PROMPT)
    assert clipboard.read_text(encoding="utf-8") == FAKE_SECOND

    child.sendline("/undo")
    child.expect(r"undone: now in session (chat-[\d-]+) \(0 messages\)")
    undone = child.match.group(1)
    child.expect(f"a fork of {retried} without its last turn; {retried} keeps it "
                 f"\\(/switch {retried} to go back\\)")
    child.expect(NEXT_PROMPT)
    child.sendline("/copy")
    child.expect("error: this session has no answer to copy yet")
    child.expect(NEXT_PROMPT)
    child.sendline("/undo")
    child.expect("error: this session has no question to undo yet")
    child.expect(NEXT_PROMPT)
    _quit(child)

    stored = _stored(tmp_path)
    assert [m.text for m in stored["r"]] == ["first question", FAKE_FIRST]
    assert [m.text for m in stored[retried]] == ["first question", FAKE_SECOND]
    with open_store(_db(tmp_path)) as store:
        info = store.session_info(undone)
        assert info is not None and info.message_count == 0 and info.parent == retried
    # The next chat continues where the user was: the fork /undo moved to.
    child = _spawn(tmp_path, "-m", "echo")
    child.expect(f"continuing session {undone} ")
    child.expect(NEXT_PROMPT)
    _quit(child)


def test_copy_without_a_clipboard_prints_the_answer_plainly(
        home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(home))  # no clipboard program to find
    monkeypatch.setattr("sys.stdin", io.StringIO("**bold** and \x1b[2J\n/copy\n"))
    code, out, err = _run(capsys, "chat", "-m", "echo", "-S", "c")
    assert (code, err) == (0, "")
    assert out.endswith("no clipboard here (wl-copy, xclip, xsel, pbcopy, or a terminal "
                        "known to take OSC 52); the last answer, to select:\n"
                        "**bold** and ^[[2J\n\n")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_osc_52_only_on_terminals_known_to_take_it(tmp_path: Path) -> None:
    empty = {"PATH": str(tmp_path)}
    assert not osc52_terminal({**empty, "TERM": "xterm-256color"})
    assert osc52_terminal({**empty, "TERM": "xterm-kitty"})
    assert osc52_terminal({**empty, "TERM_PROGRAM": "WezTerm"})
    assert not osc52_terminal({**empty, "TERM": "xterm-kitty", "TMUX": "/tmp/tmux-1/default"})
    out = _Terminal()
    assert copy("héllo", out, {**empty, "TERM": "alacritty"}) == "OSC 52"
    assert out.getvalue() == "\x1b]52;c;aMOpbGxv\x07"
    assert copy("héllo", _Terminal(), {**empty, "TERM": "xterm-256color"}) is None
    assert copy("héllo", io.StringIO(), {**empty, "TERM": "alacritty"}) is None  # not a tty
