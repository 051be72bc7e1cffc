"""``threadline sessions rename/search/fork/stats/purge``, ``list --recent`` and the chat's
/rename, /search, /fork and /edit, with automatic titles (issue 15)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from threadline import AIMessage, HumanMessage, InputError, open_store
from threadline.cli._main import main
from threadline.cli._titles import first_words, make_title
from threadline.models._fake import EchoChatModel, FakeListChatModel


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _seed(url: str) -> None:
    with open_store(url) as store:
        store.append("trip", [HumanMessage("What is the weather in Oslo?"),
                              AIMessage("Cold, with snow.")])
        time.sleep(0.02)
        store.append("code", [HumanMessage("How do I reverse a list in Python?"),
                              AIMessage("Use reversed().")])
        store.update_session("code", owner="u2", metadata={"kind": "work"})


def test_rename_list_recent_and_json(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{home / 'x.db'}"
    _seed(url)
    assert _run(capsys, "sessions", "rename", "trip", "Oslo trip", "--store", url) == (
        0, "renamed trip: Oslo trip\n", "")
    code, out, _ = _run(capsys, "sessions", "list", "--recent", "--store", url)
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["code", "trip"]
    assert lines[1].endswith("  Oslo trip")
    code, out, _ = _run(capsys, "sessions", "list", "--json", "--store", url, "--owner", "u2")
    row = json.loads(out)
    assert (row["session_id"], row["owner"], row["metadata"], row["title"]) == (
        "code", "u2", {"kind": "work"}, None)
    code, out, _ = _run(capsys, "sessions", "list", "--meta", "kind=work", "--store", url)
    assert out.split()[0] == "code" and len(out.splitlines()) == 1
    code, out, err = _run(capsys, "sessions", "rename", "nope", "x", "--store", url)
    assert code == 1 and "no session 'nope'" in err
    with pytest.raises(SystemExit):
        main(["sessions", "list", "--meta", "novalue", "--store", url])
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_search_fork_and_stats(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{home / 'x.db'}"
    _seed(url)
    code, out, _ = _run(capsys, "sessions", "search", "oslo", "weather", "--store", url)
    assert (code, out) == (0, "trip #0: What is the weather in Oslo?\n")
    code, out, _ = _run(capsys, "sessions", "search", "python", "--json", "--store", url)
    assert json.loads(out) == {"session_id": "code", "position": 0,
                               "snippet": "How do I reverse a list in Python?"}
    assert _run(capsys, "sessions", "search", "oslo", "--owner", "u2", "--store", url)[1] == (
        "no messages match oslo\n")
    code, out, _ = _run(capsys, "sessions", "fork", "trip", "trip2", "--at", "1",
                        "--store", url)
    assert (code, out) == (0, "forked trip into trip2 (1 messages)\n")
    with open_store(url) as store:
        info = store.session_info("trip2")
        assert info is not None and (info.parent, info.fork_point) == ("trip", 1)
    code, _, err = _run(capsys, "sessions", "fork", "trip", "trip2", "--store", url)
    assert code == 1 and "already exists" in err
    code, out, _ = _run(capsys, "sessions", "stats", "--json", "--store", url)
    stats = json.loads(out)
    assert (stats["sessions"], stats["messages"]) == (3, 5)
    code, out, _ = _run(capsys, "sessions", "stats", "--store", url)
    assert out.startswith(f"{url}: 3 sessions, 5 messages")


def test_purge_with_a_retention_policy(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{home / 'x.db'}"
    _seed(url)
    code, out, _ = _run(capsys, "sessions", "purge", "--max-sessions", "1", "--dry-run",
                        "--store", url)
    assert (code, out) == (0, "would delete trip\nwould delete 1 sessions by the retention "
                              "policy\n")
    code, out, _ = _run(capsys, "sessions", "purge", "--max-sessions", "1", "--store", url)
    assert out == "purged 0 expired sessions\ndeleted 1 sessions by the retention policy\n"
    assert _run(capsys, "sessions", "list", "--store", url)[1].split()[0] == "code"
    assert _run(capsys, "sessions", "purge", "--store", url)[1] == (
        "purged 0 expired sessions\n")
    with pytest.raises(SystemExit):
        main(["sessions", "purge", "--max-age", "soon", "--store", url])
    assert "expected a positive duration" in capsys.readouterr().err


def test_chat_titles_renames_searches_forks_and_edits(
        home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{home / 'x.db'}"
    monkeypatch.setattr("sys.stdin", io.StringIO(
        "tell me about teapots please\nand kettles\n/search teapots\n/rename Teapot talk\n"
        "/fork side\nonly in the fork\n/switch main\n/edit and mugs\n/sessions\n"))
    code, out, err = _run(capsys, "chat", "--model", "echo", "--store", url,
                          "--session", "main")
    assert (code, err) == (0, "")
    assert "main #0: tell me about teapots please" in out
    assert "renamed session main (4 messages) · Teapot talk" in out
    assert "forked main into session side (4 messages) · Teapot talk" in out
    with open_store(url) as store:
        main_info, side = store.session_info("main"), store.session_info("side")
        assert main_info is not None and side is not None
        assert main_info.title == "Teapot talk" and main_info.message_count == 4
        assert side.parent == "main" and side.message_count == 6
        edited = [sid for sid in store.list_sessions() if sid.startswith("chat-")]
        assert len(edited) == 1
        messages = store.get_messages(edited[0])
        assert [m.text for m in messages] == ["tell me about teapots please",
                                              "tell me about teapots please",
                                              "and mugs", "and mugs"]
        info = store.session_info(edited[0])
        assert info is not None and (info.parent, info.fork_point) == ("main", 2)
    assert "  Teapot talk" in out  # /sessions shows titles


def test_a_new_chat_is_named_from_its_first_question(
        home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{home / 'x.db'}"
    monkeypatch.setattr("sys.stdin", io.StringIO("Plan a weekend in Bergen\nsecond\n"))
    assert _run(capsys, "chat", "--model", "echo", "--store", url, "--session", "s")[0] == 0
    with open_store(url) as store:
        info = store.session_info("s")
        assert info is not None and info.title == "Plan a weekend in Bergen"
        store.update_session("s", title="Mine")
    monkeypatch.setattr("sys.stdin", io.StringIO("third\n"))
    _run(capsys, "chat", "--model", "echo", "--store", url, "--session", "s")
    with open_store(url) as store:
        info = store.session_info("s")
        assert info is not None and info.title == "Mine"  # never over the user's title


def test_titles_are_one_short_line() -> None:
    assert first_words("a\nb\x1b[31m c") == "a b [31m c"
    long = "word " * 40
    title = first_words(long)
    assert len(title) <= 61 and title.endswith("…")
    assert make_title(EchoChatModel(), "  Hello\tthere  ") == "Hello there"
    assert make_title(EchoChatModel(), "") == "untitled"


def test_compact_chat_summarises_instead_of_cutting(
        home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from threadline.cli._conversation import Conversation

    url = f"sqlite:///{home / 'x.db'}"
    store = open_store(url)
    # A 192-token prompt budget (8,192-token window less 8,000 for the answer).
    # The fake model answers and summarises with the same short text.
    chat = Conversation(store, "s", FakeListChatModel(["A short summary."]), max_tokens=8000,
                        compact=True)
    for number in range(12):
        turn = chat.turn(f"question {number}: " + "words of a long question " * 6)
        assert turn.trimmed == 0 and turn.notes == []
    summary = chat.summary()
    assert summary is not None and summary.covers > 0
    assert len(store.get_messages("s")) == 24  # every message kept
    sent, _ = chat.prompt("next")
    assert sent[0].type == "system" and sent[0].text.startswith("Summary of the earlier")
    assert len(sent) < 24
    store.close()
    monkeypatch.setattr("sys.stdin", io.StringIO("/history 2\n"))
    code, out, _ = _run(capsys, "chat", "--model", "echo", "--store", url, "--session", "s",
                        "--compact")
    assert code == 0
    assert f"[summary of the first {summary.covers} messages, sent to the model" in out
    with pytest.raises(InputError, match="no store that keeps records"):
        Conversation(None, None, EchoChatModel(), compact=True)  # ask without a session
