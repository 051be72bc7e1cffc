"""``threadline sessions convert FILE --to jsonl|json``: a history file's format, on purpose."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from threadline import AIMessage, FileChatMessageHistory, HumanMessage
from threadline.cli._main import main
from threadline.messages._serialization import message_to_dict

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # langchain-community warns that it is being sunset
    import langchain_core.messages as lc
    from langchain_community.chat_message_histories import (
        FileChatMessageHistory as LCFileHistory,
    )

THEIRS = [lc.SystemMessage(content="Be brief."), lc.HumanMessage(content="Hi, I'm Ada."),
          lc.AIMessage(content="Hello Ada!", id="a1")]
OURS = [message.__class__.__name__ for message in THEIRS]


@pytest.fixture(autouse=True)
def _no_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No store or config from the environment: convert must not need any."""
    for name in ("THREADLINE_STORE", "THREADLINE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("THREADLINE_HOME", str(tmp_path / "home"))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["sessions", "convert", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _langchain_file(path: Path) -> Path:
    LCFileHistory(str(path)).add_messages(THEIRS)
    return path


def test_converts_a_langchain_file_to_json_lines_and_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _langchain_file(tmp_path / "ada.json")
    assert _run(capsys, str(path), "--to", "jsonl") == (
        0, f"converted {path}: 3 messages, json -> jsonl\n", "")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == lc.messages_to_dict(THEIRS)
    history = FileChatMessageHistory(path)
    assert [type(m).__name__ for m in history.messages] == OURS
    history.add_user_message("and now?")  # the default keeps the converted format
    assert path.read_bytes().startswith(b"{")

    assert _run(capsys, str(path), "--to", "json") == (
        0, f"converted {path}: 4 messages, jsonl -> json\n", "")
    assert LCFileHistory(str(path)).messages == [*THEIRS, lc.HumanMessage(content="and now?")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ada.json", "ada.json.lock"]


def test_already_in_that_format_is_a_no_op(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = _langchain_file(tmp_path / "ada.json")
    before, inode = path.read_bytes(), path.stat().st_ino
    assert _run(capsys, str(path), "--to", "json") == (
        0, f"{path} is already json (3 messages); nothing to do\n", "")
    assert path.read_bytes() == before and path.stat().st_ino == inode
    lines = tmp_path / "chat.jsonl"
    FileChatMessageHistory(lines).add_messages([HumanMessage("q"), AIMessage("a")])
    assert _run(capsys, str(lines), "--to", "jsonl")[1] == (
        f"{lines} is already jsonl (2 messages); nothing to do\n")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert _run(capsys, str(empty), "--to", "json")[1] == (
        f"converted {empty}: 0 messages, jsonl -> json\n")
    assert empty.read_bytes() == b"[]"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "is not a chat history"),
        (b"shopping list: eggs\n", "is not a chat history"),
        (b'{"type": "human", "data": {"content": "ok"}}\nnot json\n', "line 2"),
        (b'{"name": "a config file", "retries": 3}\n', "line 1"),
        (b'[{"type": "human", "data": {"content": "cut', "not valid JSON"),
    ],
)
def test_refuses_a_file_that_is_not_a_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    for to in ("jsonl", "json"):
        code, out, err = _run(capsys, str(path), "--to", to)
        assert code == 1 and out == ""
        assert err.startswith("threadline: error: ")
        assert f"chat history file {str(path)!r}" in err
        assert message in err and err.count("\n") == 1
        assert path.read_bytes() == content


def test_missing_file_and_bad_target(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, str(tmp_path / "nope.json"), "--to", "jsonl")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "nope.json" in err and "No such file" in err
    assert not (tmp_path / "nope.json").exists()
    assert not (tmp_path / "nope.json.lock").exists()
    for argv in (["x.json", "--to", "yaml"], ["x.json"]):
        with pytest.raises(SystemExit) as info:
            main(["sessions", "convert", *argv])
        assert info.value.code == 2
    assert "--to" in capsys.readouterr().err


def test_a_torn_last_line_is_reported_on_stderr(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "killed.jsonl"
    good = json.dumps(message_to_dict(HumanMessage("kept"))) + "\n"
    path.write_text(good + good[:12], encoding="utf-8")
    code, out, err = _run(capsys, str(path), "--to", "json")
    assert (code, out) == (0, f"converted {path}: 1 messages, jsonl -> json\n")
    assert err == (f"threadline: warning: chat history file {str(path)!r}: dropped a torn last "
                   "line (left by an interrupted write)\n")
    assert LCFileHistory(str(path)).messages == [lc.HumanMessage(content="kept")]


def test_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(bytes(range(256)))
    done = subprocess.run([sys.executable, "-m", "threadline", "sessions", "convert", str(path),
                           "--to", "jsonl"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("threadline: error: ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
