"""The threadline command line (threadline._cli)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import TextIO

import pytest

from threadline import InputError
from threadline._cli import COMMANDS, Command, main


def test_demo_shows_each_turn_and_the_stored_history(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    # Each turn the model is sent the system prompt, the history so far and the question.
    for number, sent, from_history in ((1, 2, 0), (2, 4, 2), (3, 6, 4)):
        assert (f"turn {number}  (the model was sent {sent} messages: the system prompt, "
                f"{from_history} from the history, the question)") in out
    assert "  human: Forty-two. What's my name?\n  ai:    Your name is Ada" in out
    stored = out.split("stored history of session 'demo' (6 messages):\n", 1)[1]
    assert stored.splitlines() == [
        "  Human: Hi! I'm Ada and I collect teapots.",
        "  AI: Nice to meet you, Ada! How many teapots?",
        "  Human: Forty-two. What's my name?",
        "  AI: Your name is Ada, and you own 42 teapots.",
        "  Human: Thanks, bye!",
        "  AI: Bye, Ada!",
    ]


def test_demo_session_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--session", "s-42"]) == 0
    assert "stored history of session 's-42' (6 messages)" in capsys.readouterr().out


def test_python_dash_m_threadline_demo() -> None:
    result = subprocess.run([sys.executable, "-m", "threadline", "demo"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "stored history of session 'demo' (6 messages):" in result.stdout


def test_bad_subcommand_exits_2_with_a_usage_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: threadline ")
    assert "invalid choice: 'no-such-command'" in err


def test_no_subcommand_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage: threadline " in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from threadline import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"threadline {__version__}\n"


def _failing(args: argparse.Namespace, out: TextIO) -> int:
    raise InputError("the thing was wrong; expected another thing")


def _add_nothing(parser: argparse.ArgumentParser) -> None:
    pass


def test_errors_print_one_line_and_exit_1(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # A command registered the way later commands will be, failing on purpose.
    monkeypatch.setattr("threadline._cli.COMMANDS",
                        [*COMMANDS, Command("fail", "fails", _add_nothing, _failing)])
    assert main(["fail"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "threadline: error: the thing was wrong; expected another thing\n"
    assert captured.out == ""


def test_the_package_does_not_import_the_cli() -> None:
    code = "import sys, threadline; print('threadline._cli' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "False"
