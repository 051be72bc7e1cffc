"""The threadline command line (threadline.cli._main)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import TextIO

import pytest

from threadline import InputError
from threadline.cli._main import COMMANDS, Command, main


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
    assert err.startswith("threadline: error: argument COMMAND: invalid choice: "
                          "'no-such-command' (choose from 'chat', ")
    assert err.endswith(" (see `threadline --help`)\n") and err.count("\n") == 1


def test_no_subcommand_shows_the_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: threadline ") and "sessions" in err and "--debug" in err


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
    monkeypatch.setattr("threadline.cli._main.COMMANDS",
                        [*COMMANDS, Command("fail", "fails", _add_nothing, _failing)])
    assert main(["fail"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "threadline: error: the thing was wrong; expected another thing\n"
    assert captured.out == ""


def test_the_package_does_not_import_the_cli() -> None:
    code = "import sys, threadline; print('threadline.cli._main' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "False"


# -- the commands of issue 5, through main([...]) ----------------------------------------

import io  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

from threadline import AIMessage, HumanMessage, open_store  # noqa: E402
from threadline.cli._conversation import Conversation, Window  # noqa: E402
from threadline.messages._values import BaseMessage  # noqa: E402


def _db(home: Path) -> str:
    return f"sqlite:///{home / 'data' / 'threadline.db'}"


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _messages(url: str, session: str) -> list[BaseMessage]:
    with open_store(url) as store:
        return store.get_messages(session)


def test_chat_scripted_through_stdin(home: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    export = home / "one.jsonl"
    _stdin(monkeypatch, "hi\n\n/history\n/export " + str(export) + "\n/switch other\n"
                        "ping\n/sessions\n/model\n/model echo\nlast\n/clear\n/history\n"
                        "/switch\n/bogus\n/help\n")
    code, out, err = _run(capsys, "chat", "--model", "fake", "--session", "first")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == (f"threadline chat · model fake · context 8,192 tokens (default) · "
                        f"store {_db(home)}")
    assert lines[1] == "new session first (0 messages) · /help for commands, Ctrl-D to quit"
    assert lines[2] == "Hello! I'm a fake model: I answer from a fixed list, offline."
    assert lines[3:5] == ["You: hi", "AI: Hello! I'm a fake model: I answer from a fixed "
                                     "list, offline."]
    assert f"wrote 2 messages of session first to {export}" in out
    assert "switched to session other (0 messages)" in out
    assert "* other  2 messages" in out and "  first  2 messages" in out
    assert "model fake · context 8,192 tokens (default)" in out
    assert "model echo · context 8,192 tokens (default)" in out
    assert "\nlast\n" in out  # the echo model answered
    assert "cleared session other" in out and "this session has no messages yet" in out
    assert "error: /switch needs a session name; /sessions lists them" in out
    assert "error: unknown command /bogus; commands: /help, /new" in out
    assert "/export FILE     write this session to FILE" in out
    assert [m.text for m in _messages(_db(home), "first")] == [
        "hi", "Hello! I'm a fake model: I answer from a fixed list, offline."]
    assert _messages(_db(home), "other") == []
    assert len(export.read_text().splitlines()) == 2


def test_chat_continues_the_most_recent_session_or_starts_new(
        home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "data").mkdir()
    with open_store(_db(home)) as store:
        store.append("old", [HumanMessage("a"), AIMessage("b")])
        store.append("recent", [HumanMessage("c"), AIMessage("d")])
    _stdin(monkeypatch, "")
    code, out, _ = _run(capsys, "chat", "--model", "echo")
    assert code == 0
    assert "continuing session recent (2 messages)" in out
    assert "You: c\nAI: d\n" in out  # the last exchange, to pick up the thread
    _stdin(monkeypatch, "/sessions\n")
    code, out, _ = _run(capsys, "chat", "--model", "echo", "--new")
    assert "new session chat-" in out
    assert "  recent  2 messages" in out


def test_chat_errors_are_one_line_with_the_fix(home: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "chat", "--model", "gguf:/no/such/model.gguf")
    assert (code, out) == (1, "")
    assert err.startswith("threadline: error: the model file '/no/such/model.gguf' does not "
                          "exist (or is not a file); pass --model gguf:/path/to/model.gguf")
    assert err.count("\n") == 1
    with pytest.raises(SystemExit) as info:
        main(["chat", "--store", "nosuch://x"])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith(
        "threadline chat: error: argument --store: unknown store scheme 'nosuch'; valid "
        "schemes:")
    code, _, err = _run(capsys, "chat", "--model", "nonsense")
    assert code == 1 and "unknown model name 'nonsense'; accepted:" in err
    with pytest.raises(SystemExit) as info:
        main(["chat", "--max-tokens", "0"])
    assert info.value.code == 2
    assert "expected a whole number >= 1, got '0'" in capsys.readouterr().err


def test_chat_unreachable_store_names_the_fix(home: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("redis")
    code, _, err = _run(capsys, "chat", "--model", "echo", "--store", "redis://127.0.0.1:1/0")
    assert code == 1
    assert err.startswith("threadline: error: ")
    assert err.rstrip().endswith("(store from --store); start the server, or choose another "
                                 "store with --store URL or THREADLINE_STORE")
    assert err.count("\n") == 1


def test_ask_one_question(home: Path, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    _stdin(monkeypatch, "")
    assert _run(capsys, "ask", "--model", "echo", "what", "is", "this?") == (
        0, "what is this?\n", "")
    # Without --session nothing is stored: the store is not even opened.
    assert not (home / "data" / "threadline.db").exists()


def test_ask_reads_piped_stdin(home: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    _stdin(monkeypatch, "hi from a pipe\n")
    assert _run(capsys, "ask", "--model", "echo") == (0, "hi from a pipe\n", "")
    _stdin(monkeypatch, "the text\n")
    assert _run(capsys, "ask", "--model", "echo", "Summarise:")[1] == "Summarise:\n\nthe text\n"
    _stdin(monkeypatch, "  \n")
    code, _, err = _run(capsys, "ask", "--model", "echo")
    assert code == 2  # a usage error
    assert err == ('threadline: error: no question: pass it as an argument (threadline ask '
                   '"...") or pipe it in (echo hi | threadline ask)\n')


def test_ask_json_with_a_session(home: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _stdin(monkeypatch, "")
    for question in ("one", "two"):
        code, out, _ = _run(capsys, "ask", "--model", "echo", "--session", "s", "--json",
                            question)
        assert code == 0
    assert json.loads(out) == {"answer": "two", "model": "echo", "session": "s",
                               "interrupted": False, "trimmed": 0, "usage": None}
    assert [m.text for m in _messages(_db(home), "s")] == ["one", "one", "two", "two"]


def test_settings_flag_beats_env_beats_config_file(home: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "config").mkdir()
    (home / "config" / "config.toml").write_text(
        'model = "fake"\nsystem = "Be brief."\nstore = "memory://"\n')
    _stdin(monkeypatch, "")
    assert _run(capsys, "ask", "hi")[1] == ("Hello! I'm a fake model: I answer from a "
                                            "fixed list, offline.\n")
    monkeypatch.setenv("THREADLINE_MODEL", "echo")
    assert _run(capsys, "ask", "hi")[1] == "hi\n"
    assert _run(capsys, "ask", "--model", "fake", "hi")[1].startswith("Hello! I'm a fake")
    _, out, _ = _run(capsys, "doctor")
    assert "  store   memory://  (from config file " in out
    assert "  model   echo  (from THREADLINE_MODEL)" in out
    assert "  system  'Be brief.'  (from config file" in out


def test_bad_config_file_is_one_line(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "config").mkdir()
    (home / "config" / "config.toml").write_text('modle = "fake"\n')
    code, _, err = _run(capsys, "chat")
    assert code == 1
    assert err == (f"threadline: error: config file '{home / 'config' / 'config.toml'}' has "
                   "unknown keys ['modle']; accepted keys: ['context_window', 'model', 'store', "
                   "'system']\n")


def _seed(url: str) -> None:
    with open_store(url) as store:
        store.append("alpha", [HumanMessage("hi"), AIMessage("hello")])
        store.append("beta", [HumanMessage("one"), AIMessage("two"), HumanMessage("three")])


def test_sessions_list_show_delete(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{home / 'x.db'}"
    _seed(url)
    code, out, _ = _run(capsys, "sessions", "list", "--store", url)
    assert code == 0
    assert [line.split()[:3] for line in out.splitlines()] == [
        ["alpha", "2", "messages"], ["beta", "3", "messages"]]
    code, out, _ = _run(capsys, "sessions", "list", "--store", url, "--json", "--prefix", "b")
    assert json.loads(out)["session_id"] == "beta" and json.loads(out)["messages"] == 3
    assert _run(capsys, "sessions", "show", "beta", "--store", url, "--last", "2")[1] == (
        "AI: two\nYou: three\n")
    code, out, _ = _run(capsys, "sessions", "show", "alpha", "--store", url, "--json")
    first = json.loads(out.splitlines()[0])
    assert (first["type"], first["data"]["content"]) == ("human", "hi")
    code, out, err = _run(capsys, "sessions", "show", "gamma", "--store", url)
    assert code == 1
    assert err == (f"threadline: error: no session 'gamma' in {url}; `threadline sessions "
                   "list` shows the stored sessions\n")
    assert _run(capsys, "sessions", "delete", "alpha", "--store", url) == (
        0, "deleted alpha\n", "")
    assert _run(capsys, "sessions", "delete", "alpha", "--store", url)[0] == 1
    assert _run(capsys, "sessions", "list", "--store", url)[1].split()[0] == "beta"
    assert _run(capsys, "sessions", "purge", "--store", url)[1] == "purged 0 expired sessions\n"


def test_sessions_export_import_round_trip(home: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = f"sqlite:///{home / 'src.db'}", f"sqlite:///{home / 'dst.db'}"
    _seed(src)
    code, out, _ = _run(capsys, "sessions", "export", "--store", src)
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(x["session_id"], x["type"]) for x in lines] == [
        ("alpha", "human"), ("alpha", "ai"), ("beta", "human"), ("beta", "ai"),
        ("beta", "human")]
    path = home / "export.jsonl"
    assert _run(capsys, "sessions", "export", str(path), "--store", src,
                "--session", "beta") == (0, f"exported 3 messages to {path}\n", "")
    assert _run(capsys, "sessions", "import", str(path), "--store", dst) == (
        0, f"imported 3 messages into {dst}\n", "")
    assert [m.text for m in _messages(dst, "beta")] == ["one", "two", "three"]


def test_sessions_import_bad_files(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{home / 'x.db'}"
    code, _, err = _run(capsys, "sessions", "import", str(home / "missing.jsonl"),
                        "--store", url)
    assert code == 1 and "no such file; pass a JSON Lines export" in err
    garbage = home / "garbage.jsonl"
    garbage.write_text('{"session_id": "a", "type": "human", "data": {"content": "x"}}\n'
                       "not json\n")
    code, _, err = _run(capsys, "sessions", "import", str(garbage), "--store", url)
    assert code == 1
    assert err.startswith(f"threadline: error: export file '{garbage}', line 2: ")
    binary = home / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    code, _, err = _run(capsys, "sessions", "import", str(binary), "--store", url)
    assert code == 1 and err.count("\n") == 1 and "not UTF-8 text" in err
    with open_store(url) as store:
        assert list(store.iter_sessions()) == []  # a bad file imports nothing
    code, _, err = _run(capsys, "sessions", "export", "--store", url, "--session", "nope")
    assert code == 1 and "no session 'nope'" in err


def test_sessions_copy_is_idempotent(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = f"sqlite:///{home / 'src.db'}", f"sqlite:///{home / 'dst.db'}"
    _seed(src)
    assert _run(capsys, "sessions", "copy", src, dst) == (
        0, "2 sessions: 2 copied (5 messages), 0 already up to date, 0 conflicts\n", "")
    assert _run(capsys, "sessions", "copy", src, dst)[1] == (
        "2 sessions: 0 copied (0 messages), 2 already up to date, 0 conflicts\n")
    with open_store(dst) as store:
        store.append("alpha", [HumanMessage("diverged")])
    with open_store(src) as store:
        store.append("alpha", [HumanMessage("new in src")])
    code, out, _ = _run(capsys, "sessions", "copy", src, dst)
    assert code == 1
    assert out.endswith("conflicts (the destination differs from the source; left alone): "
                        "alpha\n")


def test_sessions_copy_from_a_langchain_file(home: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    history = home / "ada.json"
    history.write_text(json.dumps([
        {"type": "human", "data": {"content": "Hi, I'm Ada."}},
        {"type": "ai", "data": {"content": "Hello Ada!"}},
    ]))
    dst = f"sqlite:///{home / 'dst.db'}"
    assert _run(capsys, "sessions", "copy", str(history), dst)[1].startswith(
        "1 sessions: 1 copied (2 messages)")
    assert [m.text for m in _messages(dst, "ada")] == ["Hi, I'm Ada.", "Hello Ada!"]
    _run(capsys, "sessions", "copy", str(history), dst, "--as-session", "other")
    assert len(_messages(dst, "other")) == 2
    code, _, err = _run(capsys, "sessions", "copy", str(home / "nope.json"), dst)
    assert code == 1 and "is neither a store URL nor a file" in err
    with pytest.raises(SystemExit) as info:
        main(["sessions", "copy", str(history), "bogus://x"])
    assert info.value.code == 2
    assert "argument DST_URL: unknown store scheme 'bogus'" in capsys.readouterr().err


def test_db_init(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{home / 'new.db'}"
    assert _run(capsys, "db", "init", "--store", url) == (0, f"ready: {url}\n", "")
    assert _run(capsys, "db", "init", "--store", url)[0] == 0  # idempotent
    assert (home / "new.db").is_file()


def test_doctor(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "doctor", "--model", "fake", "--store", "memory://")
    assert code == 0
    assert f"data dir:    {home / 'data'}" in out
    assert "\nextras:\n  cli       " in out
    assert "  store   ok: memory:// answers, 0 sessions, 0 messages" in out
    assert "  model   ok: fake (fake)" in out
    assert out.endswith("all good\n")
    code, out, _ = _run(capsys, "doctor", "--model", "gguf:/nope.gguf", "--store", "x://")
    assert code == 1
    assert "  store   FAILED: unknown store scheme 'x'" in out
    assert "  model   FAILED: the model file '/nope.gguf' does not exist" in out


def test_conversation_trims_what_the_model_sees_but_stores_everything() -> None:
    from threadline import EchoChatModel

    store = open_store("memory://")
    seen: list[int] = []

    class Counting(EchoChatModel):
        def _stream(self, messages, *, stop=None, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(len(messages))
            return super()._stream(messages, stop=stop, **kwargs)

    # A tiny context window: ~4 short turns fit.
    chat = Conversation(store, "s", Counting(), system="Be brief.", max_tokens=10,
                        window=Window(60, "test"))
    for number in range(12):
        turn = chat.turn(f"question number {number} " + "x" * 20)
    assert len(store.get_messages("s")) == 24
    assert turn.trimmed > 0 and seen[-1] < 24
    assert seen[0] == 2  # the system prompt and the question
    sent = chat.prompt("last one")[0]
    assert sent[0].text == "Be brief." and sent[1].type == "human"
    with pytest.raises(InputError, match="does not fit the model's context window"):
        chat.turn("y" * 1000)


def test_the_package_imports_no_terminal_libraries() -> None:
    code = ("import sys, threadline; print(sorted(m for m in ('rich', 'prompt_toolkit', "
            "'threadline.cli', 'threadline.cli._config') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"
