"""Export, import and copy: formats, errors with line numbers, idempotent copies."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import stat
import threading
import tracemalloc
import warnings
from collections.abc import Iterator
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
from threadline.messages._values import BaseMessage
from threadline.stores import Store, open_store
from threadline.stores._transfer import CHUNK


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


@pytest.mark.parametrize("umask", [0o022, 0o000, 0o277])
def test_a_new_export_is_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    # Issue 21, point 8: an export holds whole conversations.
    fresh = tmp_path / "new.jsonl"
    previous = os.umask(umask)
    try:
        assert export_sessions(_filled(), fresh) == 3
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o600
    assert len(fresh.read_text().splitlines()) == 3


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


# -- streaming and printable exports (issue 21, points 6 and 9) ---------------------------------


class _Generated:
    """A source of one long session whose messages are made as they are read (as a
    store's paged read makes them), with a hook called before each one."""

    def __init__(self, count: int, size: int = 10,
                 before: object = None) -> None:
        self.count, self.size, self.before = count, size, before
        self.page_sizes: list[int] = []

    def iter_sessions(self, prefix: str = "", *, page_size: int = 500) -> Iterator[str]:
        yield "big"

    def get_messages(self, session_id: str, *, last: int | None = None,
                     skip_invalid: bool = False) -> list[BaseMessage]:
        raise AssertionError("a whole session was read at once")

    def iter_messages(self, session_id: str, *, page_size: int = 1000,
                      skip_invalid: bool = False) -> Iterator[BaseMessage]:
        self.page_sizes.append(page_size)
        for number in range(self.count):
            if callable(self.before):
                self.before(number)
            yield HumanMessage(f"{number:08d}" + "x" * self.size)


def test_export_writes_as_it_reads_and_memory_stays_flat(tmp_path: Path) -> None:
    out = io.StringIO()

    def check(number: int) -> None:
        if number == 2 * CHUNK + 100:  # two pages are written before the third is read
            assert out.getvalue().count("\n") >= 2 * CHUNK

    source = _Generated(2500, before=check)
    assert export_sessions(source, out) == 2500
    assert source.page_sizes == [CHUNK]
    assert json.loads(out.getvalue().splitlines()[-1])["data"]["content"].startswith("00002499")

    # 10,000 messages of 1 KB (10 MB of export): the peak is a few pages, not the session.
    source = _Generated(10_000, size=1000)
    tracemalloc.start()
    try:
        assert export_sessions(source, tmp_path / "big.jsonl") == 10_000
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert os.path.getsize(tmp_path / "big.jsonl") > 10_000_000
    assert peak < 6_000_000, peak

    class WholeSessions:  # a source without iter_messages, nor the skip_invalid keyword
        def iter_sessions(self, prefix: str = "", *, page_size: int = 500) -> Iterator[str]:
            yield "s"

        def get_messages(self, session_id: str, *, last: int | None = None
                         ) -> list[BaseMessage]:
            return [HumanMessage("q"), AIMessage("a")]

    assert export_sessions(WholeSessions(), io.StringIO()) == 2  # type: ignore[arg-type]


def test_copy_appends_as_it_reads(tmp_path: Path) -> None:
    dst = open_store(f"sqlite:///{tmp_path / 'dst.db'}")

    def check(number: int) -> None:
        if number == 2 * CHUNK + 100:
            info = dst.session_info("big")
            assert info is not None and info.message_count == 2 * CHUNK

    report = copy_sessions(_Generated(2500, before=check), dst)
    assert (report.copied, report.messages) == (1, 2500)
    assert copy_sessions(_Generated(2500), dst).up_to_date == 1  # compared page by page
    assert copy_sessions(_Generated(2600), dst).messages == 100
    assert copy_sessions(_Generated(2599), dst).conflicts == ["big"]  # the destination is longer
    dst.close()


def _export_text(count: int, size: int, sessions: int = 1) -> str:
    return "".join(
        json.dumps({"session_id": f"s{number % sessions}",
                    **messages_to_dict([HumanMessage(f"{number:08d}" + "x" * size)])[0]}) + "\n"
        for number in range(count))


class _Pipe(io.StringIO):
    """Text that can be read once only, like a pipe."""

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        raise OSError("underlying stream is not seekable")


def test_import_checks_first_then_appends_in_chunks_with_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text(_export_text(10_000, 1000), encoding="utf-8")
    store = open_store(f"sqlite:///{tmp_path / 'chat.db'}")
    tracemalloc.start()
    try:
        assert import_sessions(store, path) == 10_000
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 6_000_000, peak  # the file is 10.5 MB
    assert [m.text[:8] for m in store.get_messages("s0", last=1)] == ["00009999"]
    store.close()

    # Sessions interleaved, from a stream that cannot seek back: in order per session.
    store = open_store("memory://")
    done: list[tuple[int, int]] = []
    assert import_sessions(store, _Pipe(_export_text(2500, 1, sessions=2)),
                           progress=lambda d, t: done.append((d, t))) == 2500
    assert done == [(1, 2), (2, 2)]
    texts = [m.text[:8] for m in store.get_messages("s1")]
    assert texts == [f"{n:08d}" for n in range(1, 2500, 2)]
    # A bad last line from a pipe: still nothing imported.
    with pytest.raises(MessageFormatError, match="line 3"):
        import_sessions(store, _Pipe(_export_text(2, 1, sessions=1) + "{bad\n"))
    assert sorted(store.list_sessions()) == ["s0", "s1"]
    assert len(store.get_messages("s0")) == 1250
    # Read twice, but a message of an unknown type is reported once.
    text = '{"session_id":"m","type":"martian","data":{"content":"b"}}\n'
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert import_sessions(store, io.StringIO(text)) == 1
    assert ["martian" in str(w.message) for w in caught] == [True]


def test_exports_escape_what_a_terminal_acts_on_and_read_back_the_same(tmp_path: Path) -> None:
    # C1 controls (8-bit CSI), DEL, bidi overrides, U+2028 and a lone surrogate (which
    # UTF-8 cannot hold): escaped the JSON way, the values unchanged.
    content = "a\x9b2J b\x7f c\u202eevil d\u2028 e\ud800 f\x1b]52;c;eA==\x07 ünï"
    store = open_store("memory://")
    store.append("s", [HumanMessage(content)])
    path = tmp_path / "export.jsonl"
    assert export_sessions(store, path) == 1
    text = path.read_text(encoding="utf-8")
    assert "\\u009b" in text and "\\ud800" in text and "\\u001b" in text and "ünï" in text
    assert not any(0x7f <= ord(c) <= 0x9f or c in "\u202e\u2028" or ord(c) < 0x20
                   for c in text.rstrip("\n"))
    target = open_store("memory://")
    assert import_sessions(target, path) == 1
    assert target.get_messages("s")[0].text == content
