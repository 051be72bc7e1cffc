"""file:// specifics: safe file names, the on-disk layout, URL forms, lost metadata,
damaged sessions and their repair, counts that never drift, leftovers of killed writes."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from threadline import (
    AIMessage,
    ConfigurationError,
    FileChatMessageHistory,
    HumanMessage,
    InputError,
    MessageFormatError,
    SkippedMessageWarning,
)
from threadline.stores import open_store
from threadline.stores._base import encode_message
from threadline.stores.file._store import MAX_ENCODED, FileStore, decode_name, encode_name

from .scenarios import POISON, turn
from .test_file_history import note_write_of

IDS = ["plain", "Case", "case", "../../etc/passwd", "/abs", ".", "..", ".hidden", "CON",
       "nul.txt", "a%2Fb", "a/b", "back\\slash", "ünï 🚀", "sp ace", "~tilde", "x" * 60]


def test_names_are_safe_and_reversible() -> None:
    stems = [encode_name(sid) for sid in IDS]
    assert len({stem.lower() for stem in stems}) == len(IDS)  # no case-folding collisions
    for sid, stem in zip(IDS, stems, strict=True):
        assert stem.startswith("s_") and len(stem) <= MAX_ENCODED + 2
        assert all(c.isascii() and (c.isalnum() or c in "_-%") for c in stem), stem
        assert decode_name(stem) == sid
    long_id = "é" * 100
    assert encode_name(long_id).startswith("h_") and decode_name(encode_name(long_id)) is None
    with pytest.raises(InputError):
        encode_name("lone \ud800 surrogate")


def test_layout_is_history_files(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/s")
    store.append("Alice/../x", [HumanMessage("hi")])
    stem = encode_name("Alice/../x")
    data = tmp_path / "s" / f"{stem}.jsonl"
    assert [m.text for m in FileChatMessageHistory(data).messages] == ["hi"]
    meta = json.loads((tmp_path / "s" / f"{stem}.meta.json").read_text())
    assert meta["session_id"] == "Alice/../x" and meta["message_count"] == 1
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "s" / "x.jsonl").exists()
    assert isinstance(store, FileStore)
    store.destroy()
    assert not (tmp_path / "s").exists()


def test_relative_url_and_bad_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("file://./rel")
    assert isinstance(store, FileStore)
    store.append("s", [HumanMessage("hi")])
    assert (tmp_path / "rel" / "s_s.jsonl").exists()
    for url in ("file://server/share", "file://", "file:///"):
        with pytest.raises(ConfigurationError):
            open_store(url)


def test_lost_metadata_falls_back_to_the_file(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    store.append("s", [HumanMessage("a"), HumanMessage("b")])
    (tmp_path / "s_s.meta.json").write_text("{torn")
    info = store.session_info("s")
    assert info is not None and info.message_count == 2
    store.append("s", [HumanMessage("c")])  # rebuilds the metadata; keeps the messages
    assert [m.text for m in store.get_messages("s")] == ["a", "b", "c"]


def test_hashed_ids_are_listed_by_their_full_text(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    long_id = "conversation/" + "y" * 300
    store.append(long_id, [HumanMessage("hi")])
    assert store.list_sessions(prefix="conversation/").session_ids == [long_id]
    assert store.delete_session(long_id) is True
    assert store.list_sessions().session_ids == []


# --- damaged sessions, counts, leftovers (issue 13) ---------------------------------------


def insert_raw(store: FileStore, session_id: str, rows: list[str]) -> Path:
    """Write a session's file as another writer could have left it; its path."""
    data = store.directory / f"{encode_name(session_id)}.jsonl"
    store.directory.mkdir(parents=True, exist_ok=True)
    data.write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    (store.directory / f"{encode_name(session_id)}.meta.json").write_text(json.dumps(
        {"session_id": session_id, "created_at": 1.0, "updated_at": 1.0,
         "expires_at": None, "message_count": len(rows)}))
    return data


def test_a_damaged_session_is_named_skippable_refused_and_repaired(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    assert isinstance(store, FileStore)
    good = [encode_message(m) for m in turn(1)], [encode_message(m) for m in turn(2)]
    for n, (label, row) in enumerate(POISON):
        sid = f"poison/{n}"
        data = insert_raw(store, sid, [*good[0], row, *good[1]])
        with pytest.raises(MessageFormatError) as info:
            store.get_messages(sid)
        assert (info.value.session_id, info.value.position) == (sid, 2), label
        assert repr(sid) in str(info.value) and "message 2" in str(info.value)
        assert str(data) in str(info.value) and "line 3" in str(info.value)
        with pytest.raises(MessageFormatError) as info:
            store.get_messages(sid, last=3)
        assert info.value.position == -3
        with pytest.raises(MessageFormatError):
            asyncio.run(store.aget_messages(sid))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            kept = store.get_messages(sid, skip_invalid=True)
            assert asyncio.run(store.aget_messages(sid, skip_invalid=True)) == kept
        assert [m.text for m in kept] == ["q1", "a1", "q2", "a2"], label
        assert [type(w.message) for w in caught] == [SkippedMessageWarning] * 2
        # An append is refused with the read's error; the file stays as it was.
        content = data.read_bytes()
        with pytest.raises(MessageFormatError) as refused:
            store.append(sid, turn(3))
        assert refused.value.session_id == sid and refused.value.position == 2
        assert data.read_bytes() == content
        report = store.repair(sid)
        assert (report.kept, report.damaged) == (4, 1), label
        assert report.side_file is not None and report.side_file.read_text() == row + "\n"
        info_ = store.session_info(sid)
        assert info_ is not None and info_.message_count == 4
        store.append(sid, turn(3))
        assert [m.text for m in store.get_messages(sid, last=2)] == ["q3", "a3"]
        info_ = store.session_info(sid)
        assert info_ is not None and info_.message_count == 6
    assert store.list_sessions(prefix="poison/").session_ids == sorted(
        f"poison/{n}" for n in range(len(POISON)))
    assert store.repair("poison/0") == (6, 0, None)  # nothing damaged: untouched
    assert store.repair("no such session") == (0, 0, None)


def test_message_count_never_drifts_from_the_file(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    store.append("s", turn(1))
    data = tmp_path / "s_s.jsonl"

    def count() -> int:
        info = store.session_info("s")
        assert info is not None
        return info.message_count

    # A process killed between its append and its metadata update.
    FileChatMessageHistory(data).add_messages(turn(2))
    assert count() == 4 == len(store.get_messages("s"))
    store.append("s", turn(3))  # and the next append's count includes them
    assert json.loads((tmp_path / "s_s.meta.json").read_text())["message_count"] == 6
    # A retried append stores nothing new and counts nothing new.
    retry = [HumanMessage("q4", id="i4"), AIMessage("a4", id="i5")]
    store.append("s", retry)
    store.append("s", retry)
    assert count() == 8
    # A kill inside an append: the torn turn is neither read nor counted.
    before = data.read_bytes()
    store.append("s", turn(5))
    written = data.read_bytes()[len(before):]
    with data.open("r+b") as f:  # the question's line whole, the answer's torn
        f.truncate(len(before) + written.index(b"\n") + 10)
    note_write_of(data, len(before), written)
    with pytest.warns(RuntimeWarning, match="torn"):
        assert len(store.get_messages("s")) == 8
    assert count() == 8
    with pytest.warns(RuntimeWarning, match="cut off"):
        store.append("s", turn(6))
    assert count() == 10 == len(store.get_messages("s"))
    # Metadata written by an older version (no size / inode): counted from the file.
    meta = tmp_path / "s_s.meta.json"
    old = json.loads(meta.read_text())
    del old["size"], old["inode"]
    old["message_count"] = 99
    meta.write_text(json.dumps(old))
    assert count() == 10



def test_opening_the_store_removes_leftovers_of_killed_rewrites(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    store.append("s", turn(1))
    store.append("busy", turn(1))
    store.close()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftovers = {
        f".s_s.meta.json.{dead.pid}.0123456789ab.tmp": False,  # killed mid-metadata write
        f".s_s.jsonl.{dead.pid}.0123456789ab.tmp": False,  # killed mid-repair
        f".s_s.jsonl.{os.getpid()}.0123456789ab.tmp": True,  # a live writer's
        f".s_busy.jsonl.{dead.pid}.0123456789ab.tmp": True,  # its session is locked
        f".s_s.jsonl.{dead.pid}.tmp": True,  # not a name threadline makes
        f".unrelated.json.{dead.pid}.0123456789ab.tmp": True,
    }
    for name in leftovers:
        (tmp_path / name).write_bytes(b"partial")
    fd = os.open(tmp_path / "s_busy.session.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process is writing session "busy"
    try:
        reopened = open_store(f"file://{tmp_path}")
        assert [m.text for m in reopened.get_messages("s")] == ["q1", "a1"]
    finally:
        os.close(fd)
    assert {name: (tmp_path / name).exists() for name in leftovers} == leftovers
