"""The command line under faults and bad input (issue 13, points 1, 3, 5, 7, 9 and 10).

Every case goes through ``main([...])`` (or the real ``python -m threadline``) against real
stores: a failed export keeps the earlier file, a poisoned row is named with its session
and position (and ``--skip-invalid`` reads past it), secrets never reach the screen, and
bad input gets one line and exit code 2 (usage) or 1 (failure), never a traceback.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path
from typing import TextIO

import pytest
from conftest import require_server
from openai_server import OpenAIServer, Status

from threadline import AIMessage, HumanMessage, SkippedMessageWarning, open_store
from threadline.cli._conversation import Conversation
from threadline.cli._main import COMMANDS, Command, main
from threadline.messages._values import BaseMessage

BAD_ROW = "{not json"
SECRET = "PROXYSECRET-pw/with#odd?chars"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The stderr of a command line argparse (or a command) refuses with exit code 2."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = exit_.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert code == 2, err
    _one_line(err)
    return err


def _one_line(err: str) -> None:
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def _poisoned_db(path: Path) -> str:
    """A SQLite store: session ``good`` (2 messages), and session ``bad``: a turn, a row
    that is not JSON written by some other program (position 2), another turn."""
    url = f"sqlite:///{path}"
    with open_store(url) as store:
        store.append("good", [HumanMessage("hello"), AIMessage("hi")])
        store.append("bad", [HumanMessage("q1"), AIMessage("a1")])
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO threadline_messages (session_id, message) VALUES (?, ?)",
                     ("bad", BAD_ROW))
    conn.close()
    with open_store(url) as store:
        store.append("bad", [HumanMessage("q2"), AIMessage("a2")])
    return url


def _texts(url: str, session: str) -> list[str]:
    """The readable messages' texts (the poisoned row left out, quietly)."""
    with open_store(url) as store, warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedMessageWarning)
        return [m.text for m in store.get_messages(session, skip_invalid=True)]


# -- point 1: a failed export keeps the earlier one ---------------------------------------------


def test_a_failed_export_leaves_the_earlier_file_and_no_temporary_file(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = _poisoned_db(home / "chat.db")
    target = home / "out" / "export.jsonl"
    target.parent.mkdir()
    target.write_text("the earlier export\n")
    code, out, err = _run(capsys, "sessions", "export", str(target), "--store", url)
    assert (code, out) == (1, "")
    _one_line(err)
    assert err.startswith("threadline: error: message 2 of session 'bad' cannot be read: ")
    assert err.rstrip().endswith(
        "; pass --skip-invalid to read the other messages, or recover a damaged history "
        "file with `threadline sessions repair FILE`")
    assert target.read_text() == "the earlier export\n"
    assert os.listdir(target.parent) == ["export.jsonl"]


def test_chat_export_of_an_unreadable_session_keeps_the_file(
        home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = _poisoned_db(home / "chat.db")
    target = home / "export.jsonl"
    target.write_text("keep me\n")
    _stdin(monkeypatch, f"/switch bad\n/export {target}\n/switch good\n/export {target}\n")
    code, out, err = _run(capsys, "chat", "--model", "echo", "--store", url, "--new")
    assert (code, err) == (0, "")
    assert "error: message 2 of session 'bad' cannot be read" in out
    assert "wrote 2 messages of session good" in out
    assert [json.loads(line)["session_id"] for line in target.read_text().splitlines()] == [
        "good", "good"]
    # No temporary file left ("data" holds the record of the last chat).
    assert sorted(os.listdir(home)) == ["chat.db", "data", "export.jsonl"]


def test_export_with_skip_invalid_writes_the_rest_and_says_what_it_skipped(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = _poisoned_db(home / "chat.db")
    target = home / "export.jsonl"
    code, out, err = _run(capsys, "sessions", "export", str(target), "--store", url,
                          "--skip-invalid")
    assert (code, out) == (0, f"exported 6 messages to {target}\n")
    _one_line(err)
    assert err.startswith("threadline: warning: skipped 1 unreadable message of session "
                          "'bad' at position 2 (first: message 2 of session 'bad' cannot ")
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [x["data"]["content"] for x in lines if x["session_id"] == "bad"] == [
        "q1", "a1", "q2", "a2"]


# -- point 5: poisoned rows in show, chat and ask ----------------------------------------------


def test_show_names_the_bad_message_or_skips_it(home: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    url = _poisoned_db(home / "chat.db")
    code, out, err = _run(capsys, "sessions", "show", "bad", "--store", url)
    assert (code, out) == (1, "")
    _one_line(err)
    assert "message 2 of session 'bad' cannot be read" in err and "--skip-invalid" in err
    code, out, err = _run(capsys, "sessions", "show", "bad", "--store", url, "--last", "3")
    assert code == 1 and "message -3 (counting back from the newest, -1)" in err
    code, out, err = _run(capsys, "sessions", "show", "bad", "--store", url, "--skip-invalid")
    assert (code, out) == (0, "You: q1\nAI: a1\nYou: q2\nAI: a2\n")
    assert err.startswith("threadline: warning: skipped 1 unreadable message of session "
                          "'bad' at position 2")
    assert _run(capsys, "sessions", "show", "good", "--store", url) == (
        0, "You: hello\nAI: hi\n", "")


def test_chat_resuming_an_unreadable_session(home: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    url = _poisoned_db(home / "chat.db")
    _stdin(monkeypatch, "again\n")
    code, out, err = _run(capsys, "chat", "--model", "echo", "--store", url, "--session", "bad")
    assert (code, out) == (1, "")
    _one_line(err)
    assert "message 2 of session 'bad' cannot be read" in err and "--skip-invalid" in err

    _stdin(monkeypatch, "again\n/history\nonce more\n")
    code, out, err = _run(capsys, "chat", "--model", "echo", "--store", url, "--session", "bad",
                          "--skip-invalid")
    assert (code, err) == (0, "")
    # Reported once, although every turn and /history read the session again.
    assert out.count("warning: skipped 1 unreadable message of session 'bad' at position "
                     "2") == 1
    assert "continuing session bad" in out and "\nagain\n" in out
    assert _texts(url, "bad") == ["q1", "a1", "q2", "a2", "again", "again", "once more",
                                  "once more"]


def test_ask_with_an_unreadable_session(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = _poisoned_db(home / "chat.db")
    code, out, err = _run(capsys, "ask", "--model", "echo", "--store", url, "--session", "bad",
                          "hi")
    assert (code, out) == (1, "")
    _one_line(err)
    assert "message 2 of session 'bad' cannot be read" in err and "--skip-invalid" in err
    code, out, err = _run(capsys, "ask", "--model", "echo", "--store", url, "--session", "bad",
                          "--skip-invalid", "hi")
    assert (code, out) == (0, "hi\n")
    assert err.startswith("threadline: warning: skipped 1 unreadable message of session 'bad'")
    assert _texts(url, "bad")[-2:] == ["hi", "hi"]


def test_copy_with_skip_invalid(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _poisoned_db(home / "src.db")
    dst = f"sqlite:///{home / 'dst.db'}"
    code, _, err = _run(capsys, "sessions", "copy", src, dst)
    assert code == 1 and "message 2 of session 'bad' cannot be read" in err
    code, out, err = _run(capsys, "sessions", "copy", src, dst, "--skip-invalid")
    assert (code, out) == (0, "2 sessions: 2 copied (6 messages), 0 already up to date, "
                              "0 conflicts\n")
    assert "skipped 1 unreadable message of session 'bad'" in err
    assert _texts(dst, "bad") == ["q1", "a1", "q2", "a2"]


# -- point 3: sessions repair -------------------------------------------------------------------


def test_sessions_repair(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from threadline import FileChatMessageHistory

    path = home / "history.jsonl"
    FileChatMessageHistory(path).add_messages(
        [HumanMessage("q1"), AIMessage("a1"), HumanMessage("q2"), AIMessage("a2")])
    assert _run(capsys, "sessions", "repair", str(path)) == (
        0, f"{path}: nothing damaged (4 messages); nothing to do\n", "")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(1, "{damaged line\n")
    path.write_text("".join(lines), encoding="utf-8")
    code, out, err = _run(capsys, "sessions", "repair", str(path))
    assert (code, err) == (0, "")
    assert out.startswith(f"repaired {path}: kept 4 messages; moved 1 damaged line to ")
    side = Path(out.rstrip("\n").rpartition(" to ")[2])
    assert "{damaged line" in side.read_text(encoding="utf-8")
    assert [m.text for m in FileChatMessageHistory(path).messages] == ["q1", "a1", "q2", "a2"]
    code, _, err = _run(capsys, "sessions", "repair", str(home / "missing.jsonl"))
    assert code == 1
    _one_line(err)
    assert err == (f"threadline: error: cannot open chat history file "
                   f"'{home / 'missing.jsonl'}': No such file or directory\n")


# -- point 9: secrets ---------------------------------------------------------------------------


def test_doctor_and_chat_banner_never_show_the_store_password(
        home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A server store URL with a password, on a closed port: the checks fail, showing it.
    url = f"redis://:{SECRET}@127.0.0.1:1/0"
    code, out, err = _run(capsys, "doctor", "--model", "echo", "--store", url)
    assert code == 1
    assert "store   redis://:***@127.0.0.1:1/0  (from --store)" in out
    assert "store   FAILED: " in out
    assert "PROXYSECRET" not in out + err
    monkeypatch.setenv("THREADLINE_STORE", url)
    code, out, err = _run(capsys, "doctor", "--model", "echo")
    assert "(from THREADLINE_STORE)" in out and "PROXYSECRET" not in out + err
    code, out, err = _run(capsys, "chat", "--model", "echo")
    assert code == 1 and "PROXYSECRET" not in out + err
    _one_line(err)



def test_a_working_store_with_a_password_in_banner_and_doctor(
        home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # PostgreSQL on 127.0.0.1 trusts local connections: the password is sent, not needed.
    pytest.importorskip("psycopg")
    require_server("127.0.0.1", 5432, "PostgreSQL")
    url = "postgresql://postgres:PROXYSECRET@127.0.0.1:5432/test"
    monkeypatch.setenv("THREADLINE_STORE", url)
    code, out, err = _run(capsys, "chat", "--model", "echo", "--new")
    assert (code, err) == (0, "")
    assert out.startswith("threadline chat · model echo · context 8,192 tokens (default) · store "
                          "postgresql://postgres:***@127.0.0.1:5432/test\n")
    code, out, err = _run(capsys, "doctor", "--model", "echo")
    assert code == 0
    assert "  store   postgresql://postgres:***@127.0.0.1:5432/test  (from THREADLINE_STORE)" in out
    assert "  store   ok: postgresql://postgres:***@127.0.0.1:5432/test answers" in out
    assert "PROXYSECRET" not in out + err


def test_secret_options_and_passwords_in_url_errors_are_redacted(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for url in (f"postgresql://bob:{SECRET}@localhost/db?nonsense=1",
                f"nosuch://bob:{SECRET}@host/x",
                f"redis://bob:{SECRET}@host:notaport/0"):
        err = _usage_error(capsys, "sessions", "list", "--store", url)
        assert "PROXYSECRET" not in err and "argument --store" in err


def test_ask_errors_and_retry_warnings_never_show_the_base_url_password(
        home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    with OpenAIServer() as server:
        base = server.base_url.replace("http://", "http://user:PROXYSECRET@")
        monkeypatch.setenv("OPENAI_BASE_URL", base)
        server.script(Status(500, "overloaded", headers={"Retry-After": "0"}),
                      Status(500, "overloaded", headers={"Retry-After": "0"}),
                      Status(500, "still overloaded", headers={"Retry-After": "0"}))
        code, out, err = _run(capsys, "ask", "--model", "openai:m", "hi")
        assert (code, out) == (1, "")
        assert "retry 1 of 2" in err and "answered HTTP 500" in err
        assert "http://user:***@127.0.0.1:" in err
        assert "PROXYSECRET" not in err
        assert err.splitlines()[-1].startswith("threadline: error: ")

        code, out, err = _run(capsys, "doctor", "--model", "openai:m", "--store", "memory://")
        assert code == 0, out
        assert "  server  http://user:***@127.0.0.1:" in out
        assert "PROXYSECRET" not in out + err

    # Unescaped '/', '#', '?' in the password: httpx cannot parse it, nor quote it here.
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://user:{SECRET}@127.0.0.1:9/v1")
    code, out, err = _run(capsys, "ask", "--model", "openai:m", "hi")
    assert code == 1
    assert err == ("threadline: error: OPENAI_BASE_URL 'http://user:***@127.0.0.1:9/v1' is not a "
                   "valid URL; percent-encode '/', '#', '?', '@' and ':' inside a user name or "
                   "password\n")


# -- point 10: bad input ------------------------------------------------------------------------


def test_history_with_a_bad_count_is_one_line_and_the_chat_goes_on(
        home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _stdin(monkeypatch, "hi\n/history 0\n/history abc\n/history -3\n/history 2147483648\n"
                        "/history 1\n")
    code, out, err = _run(capsys, "chat", "--model", "echo", "--store", "memory://",
                          "--session", "s")
    assert (code, err) == (0, "")
    for bad in ("0", "abc", "-3", "2147483648"):  # the most a store reads is 2**31-1
        assert (f"error: /history N shows the last N messages, N a whole number from 1 to "
                f"2,147,483,647, got '{bad}'; /history alone shows them all\n") in out
    assert out.endswith("AI: hi\n\n")
    assert "Traceback" not in out


def test_ask_with_invalid_utf8_on_stdin(home: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"caf\xe9 au lait\n"),
                                                      encoding="utf-8"))
    code, out, err = _run(capsys, "ask", "--model", "echo")
    assert (code, out) == (1, "")
    assert err == ("threadline: error: the text piped in is not UTF-8 (byte 0xe9 at offset "
                   "3); convert it first, e.g. iconv -f LATIN1 -t UTF-8\n")


def test_ask_with_invalid_utf8_through_the_real_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THREADLINE_", "OPENAI_"))}
    env["THREADLINE_HOME"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-m", "threadline", "ask", "--model", "echo"],
                            input=b"\xff\xfe bytes", capture_output=True, timeout=60,
                            env=env, check=False)
    assert result.returncode == 1
    assert result.stderr.decode().startswith("threadline: error: the text piped in is not UTF-8")
    assert b"Traceback" not in result.stderr and result.stdout == b""


def test_ask_with_a_bad_store_is_a_usage_error_session_or_not(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _usage_error(capsys, "ask", "--model", "echo", "--store", "nosuch://x", "hi")
    assert err.startswith("threadline ask: error: argument --store: unknown store scheme "
                          "'nosuch'; valid schemes: [")
    assert err.endswith("(see `threadline ask --help`)\n")
    _usage_error(capsys, "ask", "--model", "echo", "--store", "nosuch://x", "--session", "s",
                 "hi")
    # A good store without --session would be ignored: say so instead.
    err = _usage_error(capsys, "ask", "--model", "echo", "--store", "memory://", "hi")
    assert err == ("threadline: error: --store is used with --session or --continue only (a "
                   "question without a session is not stored); add --session NAME to store "
                   "the turn\n")
    err = _usage_error(capsys, "ask", "--model", "echo")
    assert err.startswith("threadline: error: no question: pass it as an argument")


@pytest.mark.parametrize(("argv", "expected"), [
    (["sessions", "show", "s", "--last", "abc"],
     "argument --last: expected a whole number >= 1, got 'abc'"),
    (["sessions", "show", "s", "--last", "-1"],
     "argument --last: expected a whole number >= 1, got '-1'"),
    (["sessions", "list", "--limit", "-5"],
     "argument --limit: expected a whole number >= 0, got '-5'"),
    (["chat", "--max-tokens", "many"],
     "argument --max-tokens: expected a whole number >= 1, got 'many'"),
    # The stores' own limits (issue 21, point 4): at most 10,000 sessions a page, 2**31-1
    # messages a read.
    (["sessions", "list", "--limit", "10001"],
     "argument --limit: expected a whole number <= 10,000 (the most a store accepts), got "
     "'10001'"),
    (["sessions", "show", "s", "--last", "2147483648"],
     "argument --last: expected a whole number <= 2,147,483,647 (the most a store accepts), "
     "got '2147483648'"),
    (["sessions", "show", "s", "--last", "9" * 5000],
     "argument --last: expected a whole number >= 1, got '" + "9" * 39),
    (["ask", "--max-tokens", str(2**63), "hi"],
     "argument --max-tokens: expected a whole number <= 2,147,483,647"),
    (["sessions", "list", "--store", "sqlite:///x.db?ttl=abc"],
     "argument --store: invalid value for option 'ttl'"),
    (["sessions", "list", "--store", "sqlite:///x.db?ttl=-5"], "argument --store: "),
    (["sessions", "list", "--store", "sqlite:///x.db?bogus=1"],
     "argument --store: unknown option(s) ['bogus'] for sqlite:// stores; valid options: "),
    (["sessions", "list", "--store", "not a url"],
     "argument --store: a store URL looks like 'sqlite:///chat.db'"),
    (["sessions", "copy", "sqlite:///a.db", "nosuch://x"],
     "argument DST_URL: unknown store scheme 'nosuch'"),
    (["sessions", "copy", "bogus://a", "memory://"],
     "argument SRC: unknown store scheme 'bogus'"),
    (["db", "init", "--store", "memory://?ttl=0"], "argument --store: "),
    (["sessions", "frobnicate"], "argument ACTION: invalid choice: 'frobnicate'"),
])
def test_bad_flag_values_are_one_line_usage_errors(
        home: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> None:
    err = _usage_error(capsys, *argv)
    prog = "threadline " + " ".join(argv[:2] if argv[0] in ("sessions", "db") else argv[:1])
    if argv[1:2] == ["frobnicate"]:
        prog = "threadline sessions"
    assert err.startswith(f"{prog}: error: {expected}"), err
    assert err.endswith(f"(see `{prog} --help`)\n")
    assert list(home.iterdir()) == []  # nothing was created: the checks come first


def test_bad_store_from_the_environment_is_a_failure_naming_its_source(
        home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_STORE", "sqlite:///x.db?bogus=1")
    code, _, err = _run(capsys, "sessions", "list")
    assert code == 1
    _one_line(err)
    assert err.startswith("threadline: error: unknown option(s) ['bogus'] for sqlite://")
    assert err.rstrip().endswith("(store from THREADLINE_STORE)")


def test_files_that_cannot_be_used(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{home / 'x.db'}"
    with open_store(url) as store:
        store.append("s", [HumanMessage("hi")])
    missing_dir = home / "no" / "such" / "dir" / "out.jsonl"
    code, out, err = _run(capsys, "sessions", "export", str(missing_dir), "--store", url)
    assert (code, out) == (1, "")
    assert err == (f"threadline: error: No such file or directory: '{missing_dir}'; check the "
                   "path and its permissions\n")
    code, _, err = _run(capsys, "sessions", "export", str(home), "--store", url)
    assert code == 1
    _one_line(err)
    assert "Is a directory" in err
    code, _, err = _run(capsys, "sessions", "convert", str(home), "--to", "json")
    assert code == 1
    _one_line(err)


def test_an_export_nested_too_deeply_and_a_bad_fake_sleep(
        home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    deep = home / "deep.jsonl"
    deep.write_text('{"session_id":"s","type":"human","data":{"content":'
                    + "[" * 100_000 + "]" * 100_000 + "}}\n")
    for argv in (["import", str(deep), "--store", "memory://"],
                 ["copy", str(deep), "memory://"]):
        code, _, err = _run(capsys, "sessions", *argv)
        assert (code, err) == (1, f"threadline: error: export file '{deep}', line 1: JSON "
                                  "nested too deeply to read\n")
    monkeypatch.setenv("THREADLINE_FAKE_SLEEP", "soon")
    code, _, err = _run(capsys, "ask", "--model", "fake", "hi")
    assert (code, err) == (1, "threadline: error: THREADLINE_FAKE_SLEEP must be a number of "
                              "seconds >= 0, got 'soon'; unset it, or set it to e.g. 0.05\n")


class _CtrlCThenLines(io.StringIO):
    """A stdin whose first read is interrupted by Ctrl-C."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.interrupted = False

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        return super().readline()

    def read(self, size: int | None = -1) -> str:
        raise KeyboardInterrupt


def test_ctrl_c_at_the_prompt_and_while_reading_stdin(
        home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", _CtrlCThenLines("still here\n"))
    code, out, err = _run(capsys, "chat", "--model", "echo", "--store", "memory://")
    assert (code, err) == (0, "")
    assert "\nstill here\n" in out  # the chat went on after Ctrl-C at the prompt
    monkeypatch.setattr("sys.stdin", _CtrlCThenLines(""))
    assert _run(capsys, "ask", "--model", "echo") == (130, "", "threadline: interrupted\n")


def _broken(args: argparse.Namespace, out: TextIO) -> int:
    raise RuntimeError("an internal invariant broke")


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(
        home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("threadline.cli._main.COMMANDS",
                        [*COMMANDS, Command("broken", "fails", _no_arguments, _broken)])
    code, _, err = _run(capsys, "broken")
    assert code == 1
    assert err == ("threadline: error: unexpected RuntimeError: an internal invariant broke "
                   "(a bug in threadline: run the command again with --debug and report the "
                   "traceback)\n")
    for argv in (["--debug", "broken"], ["broken", "--debug"]):
        code, _, err = _run(capsys, *argv)
        assert code == 1
        assert err.startswith("Traceback (most recent call last):\n")
        assert "RuntimeError: an internal invariant broke\n" in err
        assert err.splitlines()[-1].startswith("threadline: error: unexpected RuntimeError")
    code, _, err = _run(capsys, "sessions", "show", "nope", "--store", "memory://", "--debug")
    assert code == 1 and "Traceback" in err and "InputError: no session 'nope'" in err


# -- point 7: every stored message has an id ----------------------------------------------------


def test_a_turn_stores_messages_with_ids_and_a_retried_append_stores_nothing_twice(
        tmp_path: Path) -> None:
    from threadline import EchoChatModel

    with open_store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        chat = Conversation(store, "s", EchoChatModel())
        chat.turn("one")
        chat.turn("two")
        stored: list[BaseMessage] = store.get_messages("s")
        ids = [m.id for m in stored]
        assert all(isinstance(i, str) and len(i) == 32 for i in ids)
        assert len(set(ids)) == 4
        store.append("s", stored[2:])  # what a store's retry after a lost answer does
        assert [m.text for m in store.get_messages("s")] == ["one", "one", "two", "two"]
        info = store.session_info("s")
        assert info is not None and info.message_count == 4
