"""Export, import and copy: formats, errors with line numbers, idempotent copies."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import stat
import threading
import warnings
from pathlib import Path

import pytest

from threadline import (
    AIMessage,
    FileChatMessageHistory,
    HumanMessage,
    InputError,
    MessageFormatError,
    SkippedMessageWarning,
    StoreError,
    copy_sessions,
    export_sessions,
    file_source,
    import_sessions,
    messages_to_dict,
)
from threadline.stores import Store, open_store


def _filled() -> object:
    store = open_store("memory://")
    store.append("s1", [HumanMessage("q1"), AIMessage("a1")])
    store.append("s2", [HumanMessage("q2")])
    return store


def test_export_format_and_progress(tmp_path: Path) -> None:
    store = _filled()
    calls: list[tuple[int, int]] = []
    path = tmp_path / "export.jsonl"
    assert export_sessions(store, path, progress=lambda d, t: calls.append((d, t))) == 3
    assert calls == [(1, 2), (2, 2)]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(x["session_id"], x["type"], x["data"]["content"]) for x in lines] == [
        ("s1", "human", "q1"), ("s1", "ai", "a1"), ("s2", "human", "q2")]
    out = io.StringIO()
    assert export_sessions(store, out, session_ids=["s2"]) == 1
    with pytest.raises(InputError):
        export_sessions(store, out, session_ids="s2")  # type: ignore[arg-type]

    target = open_store("memory://")
    assert import_sessions(target, path) == 3
    assert [m.text for m in target.get_messages("s1")] == ["q1", "a1"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"session_id":"s","type":"human","data":{"content":"a"}}\nnot json\n', "line 2"),
        ('{"type":"human","data":{"content":"a"}}\n', 'line 1: no "session_id"'),
        ('[1, 2]\n', "line 1: a JSON list"),
        ('{"session_id":"s","type":"martian","data":{}}\n', "line 1"),
        ('{"session_id":"","type":"human","data":{"content":"a"}}\n', "line 1"),
        ('{"session_id":"s","type":"human","data":{"content":"a"}}\n'
         '{"session_id":"s","type":"human","da', "line 2.*truncated"),
        ('{"session_id":"s","type":"human","data":{"content":' + "[" * 100_000
         + "]" * 100_000 + "}}\n", "line 1: JSON nested too deeply"),
    ],
)
def test_import_errors_name_the_line_and_import_nothing(text: str, match: str) -> None:
    store = open_store("memory://")
    with pytest.raises(MessageFormatError, match=match):
        import_sessions(store, io.StringIO(text))
    assert store.list_sessions().session_ids == []


def test_copy_is_idempotent_and_reports_conflicts(tmp_path: Path) -> None:
    src = _filled()
    dst = open_store(f"sqlite:///{tmp_path}/chat.db")
    seen: list[tuple[int, int]] = []
    first = copy_sessions(src, dst, progress=lambda d, t: seen.append((d, t)))
    assert (first.sessions, first.copied, first.messages, first.conflicts) == (2, 2, 3, [])
    assert seen == [(1, 2), (2, 2)]
    second = copy_sessions(src, dst)
    assert (second.messages, second.up_to_date) == (0, 2)
    dst.append("s2", [AIMessage("only in dst")])
    third = copy_sessions(src, dst)
    assert third.conflicts == ["s2"] and third.messages == 0
    assert [m.text for m in dst.get_messages("s2")] == ["q2", "only in dst"]


def test_file_sources(tmp_path: Path) -> None:
    dst = open_store("memory://")
    # LangChain's JSON array file
    array = tmp_path / "lc.json"
    array.write_text(json.dumps(messages_to_dict([HumanMessage("a"), AIMessage("b")])))
    assert copy_sessions(file_source(array, session_id="lc"), dst).messages == 2
    # threadline's JSON Lines history file; the session is named after the file
    lines = tmp_path / "conv-7.jsonl"
    FileChatMessageHistory(lines).add_messages([HumanMessage("c")])
    assert copy_sessions(file_source(lines), dst).messages == 1
    assert [m.text for m in dst.get_messages("conv-7")] == ["c"]
    # an export: resuming it with copy_sessions appends nothing twice
    export = tmp_path / "export.jsonl"
    export_sessions(_filled(), export)
    assert copy_sessions(file_source(export), dst).messages == 3
    assert copy_sessions(file_source(export), dst).messages == 0
    with pytest.raises(InputError, match="several sessions"):
        file_source(export, session_id="x")
    with pytest.raises(InputError, match="no such file"):
        file_source(tmp_path / "missing.jsonl")


def test_large_sessions_copy_in_chunks(tmp_path: Path) -> None:
    src = open_store("memory://")
    src.append("big", [HumanMessage(str(i)) for i in range(2500)])
    dst = open_store(f"file://{tmp_path}/files")
    assert copy_sessions(src, dst).messages == 2500
    assert [m.text for m in dst.get_messages("big", last=2)] == ["2498", "2499"]


def test_a_message_of_an_unknown_type_is_imported_as_a_chat_message() -> None:
    # A newer LangChain's type must not block the rest of the file (nor of a history).
    store = open_store("memory://")
    text = ('{"session_id":"s","type":"human","data":{"content":"a"}}\n'
            '{"session_id":"s","type":"martian","data":{"content":"b"}}\n')
    with pytest.warns(RuntimeWarning, match="unknown type 'martian'"):
        assert import_sessions(store, io.StringIO(text)) == 2
    assert [(m.type, m.text) for m in store.get_messages("s")] == [("human", "a"),
                                                                    ("chat", "b")]


# -- atomic exports (issue 13, point 1) --------------------------------------------------------


def _poisoned_sqlite(path: Path) -> Store:
    """Sessions ``s1`` (readable) and ``s2``: a message, a row that is not JSON (position
    1, written raw as another program could), another message."""
    store = open_store(f"sqlite:///{path}")
    store.append("s1", [HumanMessage("q1"), AIMessage("a1")])
    store.append("s2", [HumanMessage("q2")])
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO threadline_messages (session_id, message) VALUES (?, ?)",
                     ("s2", "{not json"))
    conn.close()
    store.append("s2", [AIMessage("a2")])
    return store


def _entries(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def test_a_failed_export_leaves_the_earlier_file_as_it_was(tmp_path: Path) -> None:
    store = _poisoned_sqlite(tmp_path / "chat.db")
    target = tmp_path / "out" / "export.jsonl"
    target.parent.mkdir()
    target.write_bytes(b"the earlier export\n")
    done: list[int] = []
    with pytest.raises(MessageFormatError) as info:
        export_sessions(store, target, progress=lambda d, t: done.append(d))
    assert (info.value.session_id, info.value.position) == ("s2", 1)
    assert done == [1]  # s1 was written (to the temporary file) before s2 failed
    assert target.read_bytes() == b"the earlier export\n"
    assert _entries(target.parent) == ["export.jsonl"]  # the temporary file is gone

    # With skip_invalid the export completes, and replaces the file.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert export_sessions(store, target, skip_invalid=True) == 4
    assert [w.message.error.position for w in caught  # type: ignore[union-attr]
            if isinstance(w.message, SkippedMessageWarning)] == [1]
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [x["data"]["content"] for x in lines] == ["q1", "a1", "q2", "a2"]
    assert _entries(target.parent) == ["export.jsonl"]
    store.close()


def test_a_store_that_fails_part_way_or_ctrl_c_leaves_the_file(tmp_path: Path) -> None:
    target = tmp_path / "export.jsonl"
    target.write_bytes(b"keep\n")
    store = open_store(f"sqlite:///{tmp_path / 'chat.db'}")
    store.append("s1", [HumanMessage("q1")])
    store.append("s2", [HumanMessage("q2")])

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_sessions(store, target, progress=interrupt)
    assert target.read_bytes() == b"keep\n"
    # The store goes away after the first session (its connections closed under it).
    with pytest.raises(StoreError):
        export_sessions(store, target, progress=lambda done, total: store.close())
    assert target.read_bytes() == b"keep\n"
    assert _entries(tmp_path) == ["chat.db", "export.jsonl"]


def test_a_successful_export_replaces_the_file_keeping_its_mode_and_links(
        tmp_path: Path) -> None:
    store = _filled()
    target = tmp_path / "export.jsonl"
    target.write_text("old\n" * 1000)
    os.chmod(target, 0o640)
    link = tmp_path / "latest.jsonl"
    link.symlink_to(target.name)
    assert export_sessions(store, link) == 3
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert len(target.read_text().splitlines()) == 3
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert _entries(tmp_path) == ["export.jsonl", "latest.jsonl"]

    fresh = tmp_path / "new.jsonl"
    umask = os.umask(0o022)
    try:
        export_sessions(store, fresh)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o644  # what open(path, "w") gives


def test_an_export_into_a_fifo_writes_through_it(tmp_path: Path) -> None:
    # Not a regular file (like /dev/stdout): written in place, never replaced.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    assert export_sessions(_filled(), fifo) == 3
    reader.join(10)
    assert len(received[0].splitlines()) == 3
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert _entries(tmp_path) == ["pipe"]


def test_an_export_to_a_missing_directory_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "export.jsonl"
    with pytest.raises(FileNotFoundError) as info:
        export_sessions(_filled(), target)
    assert info.value.filename == str(target)
