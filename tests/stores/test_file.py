"""file:// specifics: safe file names, the on-disk layout, URL forms, lost metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from threadline import ConfigurationError, FileChatMessageHistory, HumanMessage, InputError
from threadline.stores import open_store
from threadline.stores.file._store import MAX_ENCODED, FileStore, decode_name, encode_name

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
