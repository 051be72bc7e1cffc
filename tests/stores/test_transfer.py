"""Export, import and copy: formats, errors with line numbers, idempotent copies."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from threadline import (
    AIMessage,
    FileChatMessageHistory,
    HumanMessage,
    InputError,
    MessageFormatError,
    copy_sessions,
    export_sessions,
    file_source,
    import_sessions,
    messages_to_dict,
)
from threadline.stores import open_store


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
