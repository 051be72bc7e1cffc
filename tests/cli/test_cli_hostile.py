"""The command line with hostile data and on a shared machine (issue 21, points 6 and 8).

Stored session ids and messages, and a model's answers, may hold terminal escape
sequences: the command line shows them (``^[``, ``<U+009B>``) instead of sending them, one
id per line, while ``--json`` stays exact. What it creates for the user (data directory,
input history, exports) is private whatever the umask.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import stat
from pathlib import Path

import pytest

from threadline import AIMessage, HumanMessage, InputError, open_store
from threadline.cli._files import private_dir, private_file
from threadline.cli._main import COMMANDS, Command, main
from threadline.cli._terminal import Screen
from threadline.cli._visible import json_text, visible

OSC52 = "\x1b]52;c;ZXZpbA==\x07"  # writes "evil" to the clipboard
OSC8 = "\x1b]8;;https://evil.example\x1b\\bank.example\x1b]8;;\x1b\\"  # a hidden link
CLEAR = "\x1b[2J\x1b[H"  # clears the screen
TITLE = "\x1b]0;pwned\x07"  # sets the window title
C1_CLEAR = "\x9b2J"  # the same with the 8-bit CSI
FORGED = "x\nforged      99 messages  last 2020-01-01 00:00"  # a fake row of `sessions list`
HOSTILE_IDS = [f"a{OSC52}", f"b{OSC8}", f"c{CLEAR}", f"d{TITLE}", f"e{C1_CLEAR}", FORGED]
# Anything a terminal acts on, but the newline and tab of a message's layout.
_ACTIVE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _inert(text: str) -> None:
    found = _ACTIVE.search(text)
    assert found is None, f"{found[0]!r} reached the output: {text!r}"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- point 6: terminal escape injection ---------------------------------------------------------


def test_visible_shows_control_characters_instead_of_sending_them() -> None:
    assert visible(OSC52) == "^[]52;c;ZXZpbA==^G"
    assert visible(OSC8) == "^[]8;;https://evil.example^[\\bank.example^[]8;;^[\\"
    assert visible(CLEAR) == "^[[2J^[[H"
    assert visible(TITLE) == "^[]0;pwned^G"
    assert visible(C1_CLEAR) == "<U+009B>2J"
    assert visible(FORGED) == "x^Jforged      99 messages  last 2020-01-01 00:00"
    assert visible("tab\there\x7f\u202eevil\ud800") == "tab^Ihere^?<U+202E>evil<U+D800>"
    # Message text keeps its layout: newlines and tabs; CR LF is a newline, a lone CR
    # (which would overwrite the line) is shown.
    assert visible("one\r\ntwo\tx\rY\x1b[2J", lines=True) == "one\ntwo\tx^MY^[[2J"
    assert visible("plain text, ünïcödé, 表") == "plain text, ünïcödé, 表"
    value = {"a": f"{OSC52}{C1_CLEAR}\u2028\ud800é"}
    _inert(json_text(value))
    assert json.loads(json_text(value)) == value


def _hostile_store(url: str) -> None:
    with open_store(url) as store:
        for sid in HOSTILE_IDS:
            store.append(sid, [HumanMessage(f"hi {TITLE}"), AIMessage(f"ok {OSC52}")])


def test_sessions_list_shows_one_line_per_hostile_id(home: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{home / 'shared.db'}"
    _hostile_store(url)
    code, out, err = _run(capsys, "sessions", "list", "--store", url, "--limit", "10000")
    assert (code, err) == (0, "")
    _inert(out)
    lines = out.splitlines()
    assert len(lines) == len(HOSTILE_IDS)  # no forged row
    shown = [visible(sid) for sid in HOSTILE_IDS]
    width = max(map(len, shown))
    assert [line[:width].rstrip() for line in lines] == shown
    assert all(line[width:].startswith("      2 messages  last ") for line in lines)
    assert lines[-1].startswith("x^Jforged      99 messages  last 2020-01-01 00:00  ")
    code, out, _ = _run(capsys, "sessions", "list", "--store", url, "--json")
    _inert(out)
    assert [json.loads(line)["session_id"] for line in out.splitlines()] == HOSTILE_IDS


def test_sessions_show_renders_stored_content_and_json_is_exact(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{home / 'shared.db'}"
    content = f"line one\nline two\tend {OSC52}{OSC8}{CLEAR}{TITLE}{C1_CLEAR}\u202egnp.exe"
    with open_store(url) as store:
        store.append("s", [HumanMessage("hi"), AIMessage(content)])
    code, out, err = _run(capsys, "sessions", "show", "s", "--store", url,
                          "--last", "2147483647")
    assert (code, err) == (0, "")
    _inert(out)
    assert out == f"You: hi\nAI: {visible(content, lines=True)}\n"
    assert "AI: line one\nline two\tend ^[]52;c;ZXZpbA==^G^[]8;;https://evil" in out
    code, out, _ = _run(capsys, "sessions", "show", "s", "--store", url, "--json")
    _inert(out)
    assert json.loads(out.splitlines()[1])["data"]["content"] == content


def test_chat_lines_history_and_sessions_are_inert(home: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{home / 'shared.db'}"
    with open_store(url) as store:
        store.append(f"a{OSC52}", [HumanMessage(f"q {CLEAR}"), AIMessage(f"a {OSC8}")])
    export = home / "out.jsonl"
    monkeypatch.setattr("sys.stdin", io.StringIO(
        f"/history\n/sessions\n/export {export}\nsay {TITLE}\n/clear\n"))
    # The store's only session is the most recent: the chat continues it.
    code, out, err = _run(capsys, "chat", "--model", "echo", "--store", url)
    assert (code, err) == (0, "")
    _inert(out)
    assert "continuing session a^[]52;c;ZXZpbA==^G (2 messages)" in out
    assert "You: q ^[[2J^[[H\nAI: a ^[]8;;https://evil.example" in out
    assert "* a^[]52;c;ZXZpbA==^G  2 messages" in out
    assert "wrote 2 messages of session a^[]52;c;ZXZpbA==^G to " in out
    assert "\nsay ^[]0;pwned^G\n" in out  # the model's streamed answer (echo)
    assert "cleared session a^[]52;c;ZXZpbA==^G" in out


def test_ask_streams_an_inert_answer_and_json_is_exact(home: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    question = f"repeat {OSC52}{C1_CLEAR} please"  # the echo model answers with it
    code, out, err = _run(capsys, "ask", "--model", "echo", question)
    assert (code, err) == (0, "")
    assert out == "repeat ^[]52;c;ZXZpbA==^G<U+009B>2J please\n"
    code, out, _ = _run(capsys, "ask", "--model", "echo", "--json", question)
    _inert(out)
    assert json.loads(out)["answer"] == question


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_rich_screen_sends_no_escape_from_data_and_no_hidden_links() -> None:
    pytest.importorskip("rich")
    out = _Terminal()
    screen = Screen(out)
    assert screen.console is not None
    screen.line(f"You: {OSC52}{CLEAR}")
    with screen.answer() as feed:
        for part in ("See [your bank](https://evil.example/login) ", TITLE, OSC8, C1_CLEAR):
            feed(part)
    shown = out.getvalue()
    for sequence in ("\x1b]52", "\x1b]8;", "\x1b[2J", "\x1b]0;", "\x9b"):
        assert sequence not in shown
    assert "^[]52;c;ZXZpbA==^G" in shown and "^[]0;pwned^G" in shown
    assert "https://evil.example/login" in shown  # a link shows where it goes


def test_errors_and_warnings_are_inert(home: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def hostile(args: object, out: object) -> int:
        logging.getLogger("threadline.models").warning("the server said %s", OSC52)
        raise InputError(f"the server answered {TITLE}{C1_CLEAR}")

    monkeypatch.setattr("threadline.cli._main.COMMANDS", [
        *COMMANDS, Command("hostile", "fails", lambda parser: None, hostile)])
    code, _, err = _run(capsys, "hostile")
    assert code == 1
    _inert(err)
    assert err == ("threadline: warning: the server said ^[]52;c;ZXZpbA==^G\n"
                   "threadline: error: the server answered ^[]0;pwned^G<U+009B>2J\n")


# -- point 8: private by default ----------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> object:
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def test_the_data_directory_and_exports_are_private(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, umask: int) -> None:
    for name in ("THREADLINE_STORE", "THREADLINE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"  # not there yet: created with the data directory
    monkeypatch.setenv("THREADLINE_HOME", str(home))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert _run(capsys, "ask", "--model", "echo", "--session", "s", "hi")[0] == 0
    assert _mode(home) == _mode(home / "data") == 0o700
    assert (home / "data" / "threadline.db").is_file()
    export = tmp_path / "export.jsonl"
    assert _run(capsys, "sessions", "export", str(export))[0] == 0
    assert _mode(export) == 0o600


def test_an_existing_data_directory_is_tightened_unless_it_is_someone_elses(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = home / "data"
    data.mkdir()
    os.chmod(data, 0o755)  # made by an earlier version
    assert _run(capsys, "sessions", "list")[0] == 0
    assert _mode(data) == 0o700
    theirs = home / "theirs"
    theirs.mkdir(mode=0o755)
    os.chmod(theirs, 0o755)
    os.chown(theirs, 4321, 4321)  # we run as root: pretend another user made it
    private_dir(theirs)
    assert _mode(theirs) == 0o755


def test_the_input_history_is_private(tmp_path: Path, umask: int) -> None:
    history = tmp_path / "data" / "input-history"
    private_file(history)
    assert _mode(history) == 0o600 and _mode(history.parent) == 0o700
    history.write_text("typed\n")
    private_file(history)
    assert history.read_text() == "typed\n"  # an existing history is kept
    os.chmod(history, 0o644)  # written by an earlier version
    private_file(history)
    assert _mode(history) == 0o600
    theirs = tmp_path / "theirs"
    theirs.write_text("")
    os.chmod(theirs, 0o644)
    os.chown(theirs, 4321, 4321)
    private_file(theirs)
    assert _mode(theirs) == 0o644
