"""FileChatMessageHistory: formats, LangChain files both ways, locking, crashes, bad files.

Every test works on real files in ``tmp_path``; the concurrency and crash tests run real
child processes (``sys.executable``) that import threadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest

from threadline import (
    AIMessage,
    AIMessageChunk,
    BaseChatMessageHistory,
    FileChatMessageHistory,
    HistoryFileError,
    HumanMessage,
    InputError,
    MessageFormatError,
    SkippedMessageWarning,
    SystemMessage,
    ToolMessage,
)
from threadline.messages._serialization import message_to_dict
from threadline.stores.file import DamagedMessageError, RepairReport, _cache, repair_history_file
from threadline.stores.file._files import note_rewrite, note_write

from .scenarios import POISON

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # langchain-community warns that it is being sunset
    import langchain_core.messages as lc
    from langchain_community.chat_message_histories import (
        FileChatMessageHistory as LCFileHistory,
    )

TOOL_CALL = {"name": "search", "args": {"query": "weather", "n": 3}, "id": "call_1",
             "type": "tool_call"}
USAGE = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}

# (class name, content, fields): built as threadline messages and as langchain_core ones.
SPECS: list[tuple[str, Any, dict[str, Any]]] = [
    ("SystemMessage", "You are terse.", {"id": "s1"}),
    ("HumanMessage", "Hi — ça va? 日本語\u2028next", {"name": "ana", "id": "h1",
                                                     "additional_kwargs": {"k": [1, 2]}}),
    ("AIMessage", "", {"tool_calls": [TOOL_CALL], "usage_metadata": USAGE, "id": "a1",
                       "response_metadata": {"model": "m", "finish_reason": "tool_calls"}}),
    ("ToolMessage", "sunny", {"tool_call_id": "call_1", "name": "search",
                              "artifact": {"raw": [1, 2, 3]}, "status": "error"}),
    ("HumanMessage", [{"type": "text", "text": "look"},
                      {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}],
     {}),
    ("AIMessage", "line one\nline two\r\n\ttabbed \"quoted\" {braces}", {"name": "bot"}),
]


def ours() -> list[Any]:
    classes = {"SystemMessage": SystemMessage, "HumanMessage": HumanMessage,
               "AIMessage": AIMessage, "ToolMessage": ToolMessage}
    return [classes[name](content, **fields) for name, content, fields in SPECS]


def theirs() -> list[Any]:
    return [getattr(lc, name)(content=content, **fields) for name, content, fields in SPECS]


def history(path: Path, **kwargs: Any) -> FileChatMessageHistory:
    return FileChatMessageHistory(path, **kwargs)


def run_child(code: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args],
                            stdout=subprocess.PIPE, text=True, **kwargs)


# --- round trips and formats ------------------------------------------------------------


@pytest.mark.parametrize("fmt", [None, "jsonl", "json"])
def test_round_trip_every_message_type(
    tmp_path: Path, fmt: Literal["jsonl", "json"] | None
) -> None:
    path = tmp_path / "chat.txt"
    writer = history(path, format=fmt)
    writer.add_messages(ours()[:3])
    writer.add_message(ours()[3])
    writer.add_messages(ours()[4:])
    chunk = AIMessageChunk("part", tool_call_chunks=[{"name": "f", "args": "{\"a\"",
                                                      "id": "c9", "index": 0}])
    writer.add_messages([chunk])
    expected = [*ours(), chunk]
    assert FileChatMessageHistory(path).get_messages() == expected
    assert FileChatMessageHistory(path, format=fmt).messages == expected
    for last in (1, 3, len(expected), 100):
        assert history(path).get_messages(last=last) == expected[-last:]
    assert history(path).get_messages(last=0) == []
    if fmt != "json":  # a new file is JSON Lines unless format="json"
        lines = path.read_text(encoding="utf-8").split("\n")
        assert lines[-1] == "" and len(lines) == len(expected) + 1
        assert [json.loads(line) for line in lines[:-1]] == [message_to_dict(m)
                                                             for m in expected]
        assert "日本語" in path.read_text(encoding="utf-8")  # ensure_ascii=False by default


def test_constructor_keeps_langchain_shape(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    plain = FileChatMessageHistory("our_conversation.txt")
    plain.add_user_message("hi")
    keyword = FileChatMessageHistory(file_path=tmp_path / "our_conversation.txt",
                                     encoding="utf-8", ensure_ascii=True)
    keyword.add_ai_message("héllo")
    assert isinstance(keyword, BaseChatMessageHistory)
    assert keyword.file_path == Path(tmp_path / "our_conversation.txt")
    assert plain.messages == [HumanMessage("hi"), AIMessage("héllo")]
    assert "h\\u00e9llo" in (tmp_path / "our_conversation.txt").read_text(encoding="ascii")
    latin = history(tmp_path / "latin.txt", encoding="latin-1")
    latin.add_user_message("olé")
    assert (tmp_path / "latin.txt").read_bytes().count("olé".encode("latin-1")) == 1
    assert latin.messages == [HumanMessage("olé")]
    for bad in ({"format": "yaml"}, {"encoding": "utf-16"}, {"encoding": "no-such-codec"}):
        with pytest.raises(InputError):
            history(tmp_path / "x", **bad)
    with pytest.raises(InputError):
        FileChatMessageHistory(42)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        plain.add_messages(["not a message"])  # type: ignore[list-item]
    with pytest.raises(InputError):
        plain.get_messages(last="2")  # type: ignore[arg-type]


def test_reads_a_file_written_by_langchain(tmp_path: Path) -> None:
    path = tmp_path / "lc.json"
    theirs_history = LCFileHistory(str(path))
    theirs_history.add_messages(theirs())
    before = path.read_bytes()
    assert before.startswith(b"[")
    assert history(path).get_messages() == ours()
    assert history(path).get_messages(last=2) == ours()[-2:]
    # Reading changes nothing and creates nothing (not even the lock file).
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lc.json"]
    # LangChain's constructor writes "[]" into a new file: an empty history.
    LCFileHistory(str(tmp_path / "empty.json"))
    assert history(tmp_path / "empty.json").get_messages() == []


def test_json_format_is_read_back_by_langchain(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    ours_history = history(path, format="json")
    ours_history.add_messages(ours()[:2])
    ours_history.add_messages(ours()[2:])
    assert LCFileHistory(str(path), encoding="utf-8").messages == theirs()
    # Both libraries keep writing the same file in turns.
    LCFileHistory(str(path), encoding="utf-8").add_message(lc.HumanMessage(content="from lc"))
    ours_history.add_ai_message("from threadline")
    assert LCFileHistory(str(path), encoding="utf-8").messages == [
        *theirs(), lc.HumanMessage(content="from lc"), lc.AIMessage(content="from threadline")]
    ours_history.clear()
    assert LCFileHistory(str(path)).messages == []
    assert not list(tmp_path.glob("*.tmp"))


def lc_dicts(path: Path) -> list[dict[str, Any]]:
    """The file's messages as LangChain's own FileChatMessageHistory reads them."""
    return lc.messages_to_dict(LCFileHistory(str(path), encoding="utf-8").messages)


def test_langchain_file_stays_a_langchain_file_after_our_appends(tmp_path: Path) -> None:
    path = tmp_path / "lc.json"
    LCFileHistory(str(path)).add_messages(theirs())
    os.chmod(path, 0o640)
    chat = history(path)  # the default format: keep the file's
    chat.add_messages([HumanMessage("new"), AIMessage("reply", id="r1")])
    chat.add_user_message("one more")
    assert path.read_bytes().startswith(b"[")
    expected = [*theirs(), lc.HumanMessage(content="new"), lc.AIMessage(content="reply", id="r1"),
                lc.HumanMessage(content="one more")]
    assert lc_dicts(path) == lc.messages_to_dict(expected)
    assert LCFileHistory(str(path)).messages == expected
    assert chat.get_messages() == [*ours(), HumanMessage("new"), AIMessage("reply", id="r1"),
                                   HumanMessage("one more")]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not list(tmp_path.glob("*.tmp"))
    # Both libraries keep writing it in turns, and clear() leaves LangChain's empty array.
    LCFileHistory(str(path)).add_message(lc.AIMessage(content="from lc"))
    history(path).add_ai_message("from threadline")
    assert lc_dicts(path)[-2:] == lc.messages_to_dict(
        [lc.AIMessage(content="from lc"), lc.AIMessage(content="from threadline")])
    chat.clear()
    assert path.read_bytes() == b"[]" and LCFileHistory(str(path)).messages == []
    chat.add_user_message("after clear")
    assert lc_dicts(path) == lc.messages_to_dict([lc.HumanMessage(content="after clear")])


def test_new_and_empty_files_become_json_lines(tmp_path: Path) -> None:
    new, empty, blank = tmp_path / "new", tmp_path / "empty", tmp_path / "blank"
    empty.write_bytes(b"")
    blank.write_bytes(b" \n\n")
    for path in (new, empty, blank):
        history(path).add_messages([HumanMessage("a"), AIMessage("b")])
        lines = path.read_text(encoding="utf-8").split("\n")
        assert [json.loads(line)["type"] for line in lines if line.strip()] == ["human", "ai"]
        history(path).add_user_message("c")  # and it stays JSON Lines
        assert path.read_bytes().lstrip().startswith(b"{")
        assert history(path).get_messages()[-1] == HumanMessage("c")
        history(path).clear()
        assert path.read_bytes() == b""
    # LangChain's constructor writes "[]" into a new file: that is an array file.
    LCFileHistory(str(tmp_path / "lc-new.json"))
    history(tmp_path / "lc-new.json").add_user_message("hi")
    assert lc_dicts(tmp_path / "lc-new.json") == lc.messages_to_dict(
        [lc.HumanMessage(content="hi")])


def test_repr_names_the_format() -> None:
    assert repr(FileChatMessageHistory("chat.json")) == (
        "FileChatMessageHistory('chat.json', format=None (keep the file's; new: jsonl))")
    assert repr(FileChatMessageHistory("c", format="json")) == (
        "FileChatMessageHistory('c', format='json')")


def test_explicit_jsonl_migrates_a_langchain_file_on_first_append(tmp_path: Path) -> None:
    path = tmp_path / "lc.json"
    LCFileHistory(str(path)).add_messages(theirs())
    os.chmod(path, 0o640)
    old_items = json.loads(path.read_text(encoding="utf-8"))
    ours_history = history(path, format="jsonl")
    ours_history.get_messages()
    assert path.read_bytes().startswith(b"[")  # reading never migrates
    ours_history.add_messages([HumanMessage("new")])
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    # The old dicts are kept as LangChain wrote them, one per line, then the new one.
    assert [json.loads(line) for line in lines[:-1]] == old_items
    assert history(path).get_messages() == [*ours(), HumanMessage("new")]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not list(tmp_path.glob("*.tmp"))
    # LangChain rewriting the file in place (same inode) after our append is noticed.
    LCFileHistory(str(path)).clear()
    LCFileHistory(str(path)).add_message(lc.HumanMessage(content="lc again"))
    ours_history.add_ai_message("still fine")
    assert history(path).get_messages() == [HumanMessage("lc again"), AIMessage("still fine")]


def test_get_messages_last_reads_backwards_on_large_files(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    messages = [HumanMessage(f"{i} " + "x" * (i % 50) * 20) if i % 2 else AIMessage(str(i))
                for i in range(3000)]
    history(path).add_messages(messages)
    assert path.stat().st_size > 4 * 64 * 1024
    reader = history(path)
    for last in (1, 2, 7, 500, 2999, 3000, 5000):
        assert reader.get_messages(last=last) == messages[-last:]
    # A bad line far from the end is not read by last=N; one inside the range is named.
    lines = path.read_bytes().split(b"\n")
    lines[-3] = b"not json"
    path.write_bytes(b"\n".join(lines))
    assert reader.get_messages(last=1) == messages[-1:]
    with pytest.raises(HistoryFileError, match=r"line 2999\b"):
        reader.get_messages(last=5)


def test_missing_file_is_empty_and_created_on_first_write_only(tmp_path: Path) -> None:
    path = tmp_path / "new.jsonl"
    fresh = history(path)
    assert fresh.get_messages() == [] and fresh.get_messages(last=3) == []
    fresh.clear()
    fresh.add_messages([])
    assert list(tmp_path.iterdir()) == []
    fresh.add_user_message("first")
    assert path.exists() and fresh.messages == [HumanMessage("first")]
    nowhere = history(tmp_path / "no" / "such" / "dir" / "chat.jsonl")
    assert nowhere.get_messages() == []
    with pytest.raises(HistoryFileError, match="does not exist") as info:
        nowhere.add_user_message("x")
    assert "no/such/dir" in str(info.value)
    assert not (tmp_path / "no").exists()


def test_clear_replaces_the_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    first = history(path)
    first.add_messages(ours())
    inode = path.stat().st_ino
    second = history(path)
    second.clear()
    assert path.read_bytes() == b"" and path.stat().st_ino != inode
    assert first.get_messages() == []
    first.add_user_message("again")  # the first object's knowledge of the old inode is moot
    assert second.get_messages() == [HumanMessage("again")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.jsonl", "chat.jsonl.lock"]


def test_symlinks_are_refused_and_directories_too(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    LCFileHistory(str(real)).add_message(lc.HumanMessage(content="hi"))
    before = real.read_bytes()
    link = tmp_path / "link.json"
    link.symlink_to(real)
    for use in (lambda: history(link).add_ai_message("yo"), lambda: history(link).messages,
                lambda: history(link, format="jsonl").convert("jsonl"),
                lambda: history(link).clear()):
        with pytest.raises(HistoryFileError, match=r"link\.json' is a symbolic link"):
            use()
    assert link.is_symlink() and real.read_bytes() == before  # neither written nor emptied
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(HistoryFileError, match="folder"):
        history(folder).get_messages()
    with pytest.raises(HistoryFileError, match="folder"):
        history(folder).add_user_message("x")


def test_async_methods(tmp_path: Path) -> None:
    async def main() -> tuple[list[Any], list[Any], list[Any]]:
        chat = history(tmp_path / "async.jsonl")
        await chat.aadd_messages(ours())
        everything = await chat.aget_messages()
        tail = await chat.aget_messages(last=2)
        await chat.aclear()
        return everything, tail, await chat.aget_messages()

    everything, tail, after_clear = asyncio.run(main())
    assert everything == ours() and tail == ours()[-2:] and after_clear == []


# --- damaged and foreign files ------------------------------------------------------------


def test_torn_last_line_is_skipped_with_a_warning_and_cut_by_the_next_append(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.jsonl"
    history(path).add_messages([HumanMessage("one"), AIMessage("two")])
    intact = path.read_bytes()
    torn = json.dumps(message_to_dict(HumanMessage("three é"))).encode()[:-9]
    path.write_bytes(intact + torn)
    reader = history(path)
    with pytest.warns(RuntimeWarning, match=r"chat\.jsonl.*torn"):
        assert reader.get_messages() == [HumanMessage("one"), AIMessage("two")]
    with pytest.warns(RuntimeWarning, match="torn"):
        assert reader.get_messages(last=1) == [AIMessage("two")]
    assert path.read_bytes() == intact + torn  # reading never repairs
    with pytest.warns(RuntimeWarning, match="cut off a torn"):
        history(path).add_ai_message("four")
    assert path.read_bytes().startswith(intact)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert history(path).get_messages() == [HumanMessage("one"), AIMessage("two"),
                                                 AIMessage("four")]
    # A write cut inside a multi-byte character is torn too.
    cut = json.dumps(message_to_dict(HumanMessage("日本")), ensure_ascii=False).encode()
    path.write_bytes(intact + cut[:cut.index("本".encode()) + 1])
    with pytest.warns(RuntimeWarning, match="torn"):
        assert history(path).get_messages() == [HumanMessage("one"), AIMessage("two")]


def test_complete_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "hand.jsonl"
    lines = [json.dumps(message_to_dict(m)) for m in (HumanMessage("a"), AIMessage("b"))]
    path.write_text("\n".join(lines), encoding="utf-8")  # no final newline
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert history(path).get_messages() == [HumanMessage("a"), AIMessage("b")]
        history(path).add_user_message("c")
        assert history(path).get_messages() == [HumanMessage("a"), AIMessage("b"),
                                                 HumanMessage("c")]


JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffdb004300") + bytes(range(256))
GOOD = json.dumps(message_to_dict(HumanMessage("ok"))).encode() + b"\n"


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (JPEG, "not a chat history"),
        (b"\xef\xbb\xbf" + GOOD, "not a chat history"),
        (GOOD + b'{"type": "human", "data": {"content": "caf\xe9"}}\n' + GOOD, "line 2"),
        (GOOD + b"garbage in the middle\n" + GOOD, "line 2"),
        (GOOD + b'{"some": "json"}\n' + GOOD, "line 2"),
        (b'{"type": "alien", "data": {}}\n', "line 1"),
        (b'{"config": true, "retries": 3}', "unknown message type"),
        (b'[{"type": "human", "data": {"content": "hi"}}, 42]', "message 1"),
        (b'[{"type": "human", "data": {"content": "unfinished"', "not valid JSON"),
        ('[{"type": "human", "data": {"content": "é"}}]'.encode("latin-1"), "utf-8"),
    ],
)
def test_unreadable_file_raises_and_is_never_touched(
    tmp_path: Path, content: bytes, where: str
) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    for fmt in (None, "jsonl", "json"):
        chat = history(path, format=fmt)
        with pytest.raises(HistoryFileError, match=r"photo\.jpg") as info:
            chat.get_messages()
        assert where in str(info.value)
        with pytest.raises(HistoryFileError, match=r"photo\.jpg"):
            chat.add_user_message("please don't")
        assert path.read_bytes() == content
    if content.lstrip()[:1] not in (b"[", b"{"):
        with pytest.raises(HistoryFileError, match="not a chat history"):
            history(path).clear()
        assert path.read_bytes() == content


def test_garbage_appended_by_another_program_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    chat = history(path)
    chat.add_user_message("one")  # now the process knows the file is valid up to here
    with path.open("ab") as f:
        f.write(b"written by something else\n")
    content = path.read_bytes()
    with pytest.raises(HistoryFileError, match=r"chat\.jsonl', line 2"):
        chat.add_user_message("two")
    assert path.read_bytes() == content


# --- concurrency and crashes --------------------------------------------------------------

WRITER = """
    import os, sys, time
    from threadline import AIMessage, FileChatMessageHistory, HumanMessage
    path, name, go = sys.argv[1], sys.argv[2], sys.argv[3]
    shared = FileChatMessageHistory(path)
    while not os.path.exists(go):
        time.sleep(0.001)
    for i in range(200):
        # One writer reuses its object, the other makes one per batch (per request).
        chat = shared if name == "A" else FileChatMessageHistory(path)
        chat.add_messages([HumanMessage(f"{name} {i} q " + "x" * (i % 13) * 300),
                           AIMessage(f"{name} {i} a")])
"""


def test_two_processes_append_concurrently(tmp_path: Path) -> None:
    path, go = tmp_path / "shared.jsonl", tmp_path / "go"
    history(path).add_user_message("start")
    writers = [run_child(WRITER, str(path), name, str(go)) for name in "AB"]
    time.sleep(0.3)  # let both import threadline, then start them together
    go.touch()
    for proc in writers:
        assert proc.wait(timeout=60) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        messages = history(path).get_messages()
    assert messages[0] == HumanMessage("start") and len(messages) == 1 + 2 * 2 * 200
    seen: dict[str, list[int]] = {"A": [], "B": []}
    for question, answer in zip(messages[1::2], messages[2::2], strict=True):
        name, i, kind, *_ = question.text.split(" ")
        assert kind == "q" and answer == AIMessage(f"{name} {i} a")  # batches not split
        assert question.text == f"{name} {i} q " + "x" * (int(i) % 13) * 300
        seen[name].append(int(i))
    assert seen == {"A": list(range(200)), "B": list(range(200))}


def test_threads_append_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "threads.jsonl"

    def write(name: str) -> None:
        for i in range(40):
            history(path).add_messages([HumanMessage(f"{name} {i}"), AIMessage(f"{name} {i}")])

    threads = [threading.Thread(target=write, args=(str(n),)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    messages = history(path).get_messages()
    assert len(messages) == 4 * 40 * 2
    for question, answer in zip(messages[::2], messages[1::2], strict=True):
        assert question.text == answer.text
    for n in range(4):
        assert [m.text for m in messages[::2] if m.text.split()[0] == str(n)] == [
            f"{n} {i}" for i in range(40)]


ARRAY_WRITER = """
    import os, sys, time
    from threadline import AIMessage, FileChatMessageHistory, HumanMessage
    path, name, go = sys.argv[1], sys.argv[2], sys.argv[3]
    while not os.path.exists(go):
        time.sleep(0.001)
    for i in range(40):
        FileChatMessageHistory(path).add_messages([HumanMessage(f"{name} {i} q"),
                                                   AIMessage(f"{name} {i} a")])
"""


def check_pairs(path: Path, writers: str, count: int, start: int) -> None:
    """LangChain reads every batch of every writer, whole and in order, after ``start``."""
    messages = LCFileHistory(str(path)).messages
    assert len(messages) == start + len(writers) * count * 2
    seen: dict[str, list[int]] = {name: [] for name in writers}
    for question, answer in zip(messages[start::2], messages[start + 1::2], strict=True):
        name, i, kind = str(question.content).split(" ")
        assert kind == "q" and isinstance(question, lc.HumanMessage)
        assert isinstance(answer, lc.AIMessage) and answer.content == f"{name} {i} a"
        seen[name].append(int(i))
    assert seen == {name: list(range(count)) for name in writers}


def check_array(path: Path, seen: list[int]) -> None:
    """Read the file as LangChain does: always a whole array, never shorter than before."""
    items = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(items, list)
    assert not seen or len(items) >= seen[-1]
    seen.append(len(items))


def test_threads_append_concurrently_to_a_langchain_file(tmp_path: Path) -> None:
    path = tmp_path / "lc.json"
    LCFileHistory(str(path)).add_messages(theirs())
    stop, seen = threading.Event(), list[int]()
    errors: list[BaseException] = []

    def watch() -> None:
        try:
            while not stop.is_set():
                check_array(path, seen)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def write(name: str) -> None:
        for i in range(30):
            history(path).add_messages([HumanMessage(f"{name} {i} q"), AIMessage(f"{name} {i} a")])

    watcher = threading.Thread(target=watch)
    watcher.start()
    writers = [threading.Thread(target=write, args=(name,)) for name in "ABCD"]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    watcher.join()
    assert not errors and len(seen) > 1
    check_pairs(path, "ABCD", 30, len(theirs()))
    assert lc_dicts(path)[:len(theirs())] == lc.messages_to_dict(theirs())
    assert not list(tmp_path.glob("*.tmp"))


def test_processes_append_concurrently_to_a_langchain_file(tmp_path: Path) -> None:
    path, go = tmp_path / "lc.json", tmp_path / "go"
    LCFileHistory(str(path)).add_message(lc.SystemMessage(content="start"))
    writers = [run_child(ARRAY_WRITER, str(path), name, str(go)) for name in "ABC"]
    time.sleep(0.3)  # let them import threadline, then start them together
    go.touch()
    seen: list[int] = []
    while any(proc.poll() is None for proc in writers):
        check_array(path, seen)
    assert [proc.wait(timeout=60) for proc in writers] == [0, 0, 0]
    assert len(set(seen)) > 2  # the reads really ran while the writers wrote
    check_pairs(path, "ABC", 40, 1)
    assert not list(tmp_path.glob("*.tmp"))


# --- converting on purpose ----------------------------------------------------------------


def test_convert_between_formats(tmp_path: Path) -> None:
    path = tmp_path / "lc.json"
    LCFileHistory(str(path)).add_messages(theirs())
    os.chmod(path, 0o640)
    chat = history(path)
    before = path.read_bytes()
    inode = path.stat().st_ino
    same = chat.convert("json")  # already an array: left as it is
    assert same == ("json", "json", len(ours())) and not same.changed
    assert path.read_bytes() == before and path.stat().st_ino == inode
    done = chat.convert("jsonl")
    assert done == ("json", "jsonl", len(ours())) and done.changed
    assert path.stat().st_ino != inode and stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_bytes().startswith(b"{") and chat.get_messages() == ours()
    chat.add_user_message("kept as lines")  # the default keeps what it was converted to
    assert path.read_bytes().startswith(b"{")
    assert chat.convert("json") == ("jsonl", "json", len(ours()) + 1)
    assert lc_dicts(path) == lc.messages_to_dict(
        [*theirs(), lc.HumanMessage(content="kept as lines")])
    assert not list(tmp_path.glob("*.tmp"))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert history(empty).convert("jsonl") == ("jsonl", "jsonl", 0)
    assert history(empty).convert("json") == ("jsonl", "json", 0)
    assert empty.read_bytes() == b"[]"
    with pytest.raises(InputError, match="'yaml'"):
        chat.convert("yaml")  # type: ignore[arg-type]


def test_convert_refuses_what_is_not_a_history(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(JPEG)
    with pytest.raises(HistoryFileError, match=r"photo\.jpg' is not a chat history"):
        history(photo).convert("json")
    assert photo.read_bytes() == JPEG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.jpg"]  # no lock file either
    with pytest.raises(HistoryFileError, match="No such file"):
        history(tmp_path / "missing.json").convert("jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(GOOD + b"shopping list\n")
    with pytest.raises(HistoryFileError, match="line 2"):
        history(bad).convert("json")
    assert bad.read_bytes() == GOOD + b"shopping list\n"
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(GOOD + GOOD[:10])
    with pytest.warns(RuntimeWarning, match="dropped a torn"):
        assert history(torn).convert("json") == ("jsonl", "json", 1)
    assert json.loads(torn.read_text()) == [json.loads(GOOD)]


KILLED = """
    import sys
    from threadline import AIMessage, FileChatMessageHistory, HumanMessage
    path, i = sys.argv[1], int(sys.argv[2])
    chat = FileChatMessageHistory(path)
    print("ready", flush=True)
    while True:
        # Large messages make a write long enough for the kill to land inside it.
        chat.add_messages([HumanMessage(f"{i} q " + "x" * (i % 2) * 2_000_000),
                           AIMessage(f"{i} a")])
        print(i, flush=True)
        i += 1
"""


def test_sigkill_at_any_moment_loses_no_stored_message(tmp_path: Path) -> None:
    path = tmp_path / "killed.jsonl"
    rng = random.Random()
    reported: list[int] = []
    kills = torn = 0
    deadline = time.monotonic() + 8
    # Kill at least 6 times, and on until a kill has torn a write so that the repair is
    # exercised too (one kill in ten or so does; test_torn_last_line... covers it surely).
    while kills < 6 or (not torn and kills < 24 and time.monotonic() < deadline):
        child = run_child(KILLED, str(path), str(kills * 100_000))
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.005, 0.06))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL
        reported += [int(line) for line in child.stdout.read().split()]
        child.stdout.close()
        kills += 1
        torn += not path.read_bytes().endswith(b"\n")
    assert reported
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a torn last line is allowed
        messages = history(path).get_messages()
        history(path).add_user_message("after the crashes")  # cuts a torn tail off
    stored = []
    for message in messages:
        i, kind, *_ = message.text.split(" ", 2)
        if kind == "q":
            assert message == HumanMessage(f"{i} q " + "x" * (int(i) % 2) * 2_000_000)
            stored.append(int(i))
        else:
            assert message == AIMessage(f"{i} a") and stored[-1] == int(i)
    assert stored == sorted(set(stored))  # in order, nothing twice
    assert set(reported) <= set(stored)
    # Only a batch in flight at a kill may be there without having been reported.
    assert len(set(stored) - set(reported)) <= kills
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert history(path).get_messages(last=1) == [HumanMessage("after the crashes")]


def test_fsync_option_and_json_format_leave_no_temp_files(tmp_path: Path) -> None:
    durable = history(tmp_path / "d.jsonl", fsync=True)
    durable.add_messages(ours())
    assert durable.get_messages() == ours()
    array = history(tmp_path / "a.json", format="json", fsync=True)
    for message in ours():
        array.add_message(message)
    assert json.loads((tmp_path / "a.json").read_text(encoding="utf-8")) == [
        message_to_dict(m) for m in ours()]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.json", "a.json.lock", "d.jsonl", "d.jsonl.lock"]


# --- damaged lines: named, skippable, never appended to, repaired -----------------------------


def poisoned(path: Path, row: str, fmt: str) -> bytes:
    """Write a file of a good turn, ``row`` and another good turn; its bytes."""
    good = [json.dumps(message_to_dict(m)) for m in (HumanMessage("q1"), AIMessage("a1"))]
    more = [json.dumps(message_to_dict(m)) for m in (HumanMessage("q2"), AIMessage("a2"))]
    rows = [*good, row, *more]
    content = ("\n".join(rows) + "\n" if fmt == "jsonl" else "[" + ", ".join(rows) + "]")
    path.write_bytes(content.encode())
    return content.encode()


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
@pytest.mark.parametrize(("label", "row"), POISON, ids=[label for label, _ in POISON])
def test_a_damaged_message_is_named_skippable_and_never_appended_to(
    tmp_path: Path, fmt: str, label: str, row: str
) -> None:
    path = tmp_path / f"chat.{fmt}"
    content = poisoned(path, row, fmt)
    chat = history(path)
    with pytest.raises(DamagedMessageError) as info:
        chat.get_messages()  # never RecursionError, AttributeError...
    error = info.value
    assert isinstance(error, MessageFormatError) and isinstance(error, HistoryFileError)
    assert error.position == 2 and error.session_id is None
    assert "message 2 cannot be read" in str(error) and "chat." in str(error)
    if fmt == "jsonl":
        assert error.line == 3 and "line 3" in str(error)
    with pytest.raises(DamagedMessageError) as info:
        chat.get_messages(last=3)
    assert info.value.position == -3
    assert chat.get_messages(last=2) == [HumanMessage("q2"), AIMessage("a2")]  # not read
    with pytest.raises(DamagedMessageError):
        asyncio.run(chat.aget_messages())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = chat.get_messages(skip_invalid=True)
        assert asyncio.run(chat.aget_messages(skip_invalid=True)) == kept
        assert chat.get_messages(last=3, skip_invalid=True) == kept[-2:]
    assert [m.text for m in kept] == ["q1", "a1", "q2", "a2"]
    skipped = [w.message for w in caught if isinstance(w.message, SkippedMessageWarning)]
    assert len(skipped) == 3 and skipped[0].error.position == 2
    # An append fails with the read's error and leaves the file as it was, in any format.
    for write_fmt in (None, "jsonl", "json"):
        with pytest.raises(DamagedMessageError) as failed:
            history(path, format=write_fmt).add_user_message("lost?")
        assert str(failed.value) == str(error)
        assert path.read_bytes() == content


def test_deeply_nested_json_anywhere_is_a_message_format_error(tmp_path: Path) -> None:
    deep = '{"type": "human", "data": {"content": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    cases = {"line": deep + "\n", "last line": GOOD.decode() + deep,
             "array item": f"[{GOOD.decode()}, {deep}]", "torn array": f"[{deep}",
             "unbalanced": "[" * 100_000}
    for name, content in cases.items():
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        with pytest.raises(MessageFormatError):
            history(path).get_messages()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert len(history(path).get_messages(skip_invalid=True)) <= 1, name
        with pytest.raises(MessageFormatError):
            history(path).add_user_message("x")
        assert path.read_text(encoding="utf-8") == content, name


APPEND = """
    import sys
    from threadline import FileChatMessageHistory, HumanMessage, ThreadlineError
    try:
        FileChatMessageHistory(sys.argv[1]).add_messages([HumanMessage("q"), HumanMessage("a")])
    except ThreadlineError as exc:
        print(exc)
"""


def test_a_damaged_line_far_from_the_end_fails_appends_of_a_new_process(
    tmp_path: Path,
) -> None:
    """Issue 13, point 3: reads failed but a new process's appends were acknowledged."""
    path = tmp_path / "long.jsonl"
    history(path).add_messages([HumanMessage(f"{i} " + "x" * 300) for i in range(1500)])
    assert path.stat().st_size > 256 * 1024
    at = path.read_bytes().index(b"\n", 5000) - 5
    with path.open("r+b") as f:  # damaged in place: same inode, same size
        f.seek(at)
        f.write(b"\x00\x00")
    content = path.read_bytes()
    with pytest.raises(DamagedMessageError) as info:
        history(path).get_messages()
    assert info.value.line == content[:at].count(b"\n") + 1
    child = run_child(APPEND, str(path))
    out, _ = child.communicate(timeout=60)
    assert out.strip() == str(info.value)
    assert path.read_bytes() == content
    # The same in this process, once it has forgotten what it knew of the file.
    _cache.CHECKED.clear()
    with pytest.raises(DamagedMessageError):
        history(path).add_user_message("q")
    assert path.read_bytes() == content


def test_repair_sets_damaged_lines_aside_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    chat = history(path)
    chat.add_messages([HumanMessage("q1"), AIMessage("a1")])
    with path.open("ab") as f:
        f.write(b"garbage from an editor\n" + b'{"type": "alien"}\n')
    good = path.read_bytes()
    # A turn killed mid-write: its question line is whole, its answer torn.
    with pytest.raises(DamagedMessageError):
        chat.add_messages([HumanMessage("q2")])
    _cache.CHECKED.clear()
    turn = encode_turn("q3", "a3")
    path.write_bytes(good + turn[:-20])
    note_write_of(path, len(good), turn)
    stamp = datetime.now(UTC)
    taken = [path.with_name(f"chat.jsonl.damaged-{(stamp + timedelta(seconds=s)):%Y%m%dT%H%M%SZ}")
             for s in range(3)]
    for side in taken:
        side.write_bytes(b"an earlier repair's\n")
    report = repair_history_file(path)
    assert (report.kept, report.damaged) == (2, 4)
    assert report.side_file is not None and report.side_file not in taken
    assert report.side_file.name.startswith("chat.jsonl.damaged-")
    assert all(side.read_bytes() == b"an earlier repair's\n" for side in taken)
    assert report.side_file.read_bytes() == (
        b"garbage from an editor\n" + b'{"type": "alien"}\n' + turn.split(b"\n")[0] + b"\n"
        + turn[:-20].split(b"\n")[1] + b"\n")
    assert history(path).get_messages() == [HumanMessage("q1"), AIMessage("a1")]
    history(path).add_messages([HumanMessage("q4"), AIMessage("a4")])
    inode, before = path.stat().st_ino, path.read_bytes()
    assert repair_history_file(path) == RepairReport(4, 0, None)  # nothing damaged
    assert path.stat().st_ino == inode and path.read_bytes() == before
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(JPEG)
    with pytest.raises(HistoryFileError, match="not a chat history"):
        repair_history_file(photo)
    with pytest.raises(HistoryFileError, match="No such file"):
        repair_history_file(tmp_path / "missing.jsonl")
    assert photo.read_bytes() == JPEG and not (tmp_path / "photo.jpg.lock").exists()


def test_repair_keeps_a_langchain_file_an_array(tmp_path: Path) -> None:
    path = tmp_path / "lc.json"
    LCFileHistory(str(path)).add_messages(theirs()[:3])
    items = path.read_text(encoding="utf-8")
    bad = '{"type": "human", "data": {"content": "x", "tool_calls": ' + "[" * 5000 + "}"
    cut = '{"type": "ai", "data": {"content": "killed mid-wri'
    path.write_text(items[:-1] + ", " + bad + ", " + items[1:-1] + ", " + cut,
                    encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert history(path).get_messages(skip_invalid=True) == [*ours()[:3], *ours()[:3]]
    report = repair_history_file(path)
    assert (report.kept, report.damaged) == (6, 2) and report.side_file is not None
    assert report.side_file.read_text(encoding="utf-8") == bad + "\n" + cut + "\n"
    assert LCFileHistory(str(path)).messages == [*theirs()[:3], *theirs()[:3]]


def encode_turn(question: str, answer: str) -> bytes:
    return b"".join(json.dumps(message_to_dict(m)).encode() + b"\n"
                    for m in (HumanMessage(question), AIMessage(answer)))


def note_write_of(path: Path, offset: int, data: bytes) -> None:
    """What a writer notes in the lock file before an append (see _files.note_write)."""
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT)
    try:
        note_write(fd, path.stat().st_ino, offset, data)
    finally:
        os.close(fd)


@pytest.mark.parametrize("cut", ["in the question", "after the question", "in the answer"])
def test_a_torn_turn_is_skipped_whole_and_cut_off_whole(tmp_path: Path, cut: str) -> None:
    """A kill mid-append can leave the question's line whole and the answer's torn:
    reads must not show a question without its answer."""
    path = tmp_path / "chat.jsonl"
    chat = history(path)
    chat.add_messages([HumanMessage("q1"), AIMessage("a1")])
    intact = path.read_bytes()
    chat.add_messages([HumanMessage("q2 " + "x" * 5000), AIMessage("a2 " + "y" * 5000)])
    whole = path.read_bytes()
    question_end = whole.index(b"\n", len(intact)) + 1
    at = {"in the question": question_end - 100, "after the question": question_end,
          "in the answer": question_end + 100}[cut]
    # What a SIGKILL inside the write leaves: part of the batch, and the writer's note.
    with path.open("r+b") as f:
        f.truncate(at)
    note_write_of(path, len(intact), whole[len(intact):])
    with pytest.warns(RuntimeWarning, match="torn"):
        assert chat.get_messages() == [HumanMessage("q1"), AIMessage("a1")]
    with pytest.warns(RuntimeWarning, match="torn"):
        assert chat.get_messages(last=1) == [AIMessage("a1")]
    with pytest.warns(RuntimeWarning, match="cut off a torn"):
        history(path).add_messages([HumanMessage("q3"), AIMessage("a3")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [m.text for m in history(path).get_messages()] == ["q1", "a1", "q3", "a3"]
    assert path.read_bytes().startswith(intact)


def test_appends_are_idempotent_by_message_id(tmp_path: Path) -> None:
    formats: list[Literal["jsonl", "json"]] = ["jsonl", "json"]
    for fmt in formats:
        path = tmp_path / f"ids.{fmt}"
        chat = history(path, format=fmt)
        turn = [HumanMessage("q1", id="m1"), AIMessage("a1", id="m2")]
        chat.add_messages(turn)
        chat.add_messages(turn)  # a retry
        history(path).add_messages([AIMessage("a1", id="m2"), HumanMessage("q2", id="m3"),
                                    HumanMessage("q2 again", id="m3"), HumanMessage("no id"),
                                    HumanMessage("no id")])
        _cache.CHECKED.clear()  # a new process knows nothing: it reads the ids
        history(path).add_messages(turn)
        child = run_child(APPEND.replace('HumanMessage("q")', 'HumanMessage("q", id="m1")'),
                          str(path))
        assert child.communicate(timeout=60)[0] == ""
        assert [m.text for m in history(path).get_messages()] == [
            "q1", "a1", "q2", "no id", "no id", "a"], fmt
        history(path).clear()  # a cleared history forgets its ids
        chat.add_messages(turn)
        assert [m.text for m in chat.get_messages()] == ["q1", "a1"]


def test_a_killed_rewrite_leaves_no_temporary_file_after_the_next_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.json"
    history(path, format="json").add_messages(
        [HumanMessage("x" * 100_000) for _ in range(40)])
    leftovers: list[Path] = []
    for _ in range(40):  # until a kill lands inside a rewrite
        child = run_child(REWRITER, str(path))
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        # A rewrite's temporary file exists for a few milliseconds of each ~40 ms turn:
        # watch for it and kill the writer then (a random delay rarely hit the window).
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(tmp_path.glob(".big.json.*.tmp")):
            pass
        child.kill()
        child.wait(timeout=10)
        child.stdout.close()
        leftovers = list(tmp_path.glob(".big.json.*.tmp"))
        if leftovers:
            break
    assert leftovers, "no kill landed inside a rewrite"
    history(path).get_messages()  # the next open, even a read, removes them
    assert not list(tmp_path.glob("*.tmp"))
    assert len(history(path).get_messages()) >= 40


REWRITER = """
    import sys
    from threadline import FileChatMessageHistory, HumanMessage
    chat = FileChatMessageHistory(sys.argv[1], format="json", fsync=True)
    print("ready", flush=True)
    while True:
        chat.add_messages([HumanMessage("more")])
"""


def test_only_the_noted_temporary_file_of_a_killed_rewrite_is_removed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.json"
    history(path, format="json").add_user_message("hi")
    lock = tmp_path / "chat.json.lock"
    names = {
        ".chat.json.123.0123456789ab.tmp": False,  # noted by a writer killed mid-rewrite
        ".chat.json.123.ba9876543210.tmp": True,  # not noted: not provably a leftover
        ".other.json.123.0123456789ab.tmp": True,  # another file's
    }
    for name in names:
        (tmp_path / name).write_bytes(b"[]")

    def note(name: str) -> None:
        fd = os.open(lock, os.O_RDWR)
        try:
            note_rewrite(fd, tmp_path / name)
        finally:
            os.close(fd)

    note(".chat.json.123.0123456789ab.tmp")
    history(path).get_messages()  # opening it, even to read, removes the leftover
    assert {name: (tmp_path / name).exists() for name in names} == names
    note(".other.json.123.0123456789ab.tmp")  # a damaged note never names another file
    history(path).add_user_message("again")
    assert {name: (tmp_path / name).exists() for name in names} == names
    assert [m.text for m in history(path).get_messages()] == ["hi", "again"]
