"""file:// sessions as objects: the session fields live in the metadata file, survive
appends, other store objects, other processes, concurrent writers and killed ones; a
hostile metadata file is ignored field by field (or whole), never crashes a listing, and
is never deserialised as anything but JSON. (The contract itself: test_sessions.py.)"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from threadline import HumanMessage, InputError, StoreError
from threadline.stores import open_store
from threadline.stores._sessions import recent_cursor
from threadline.stores.file._meta import MAX_META_BYTES
from threadline.stores.file._store import FileStore, encode_name

from .scenarios import turn

FIELDS = {"title": "Trip to Oslo", "metadata": {"lang": "en", "k": "v"}, "owner": "u1"}


def _open(path: Path, **options: Any) -> FileStore:
    store = open_store(f"file://{path}", **options)
    assert isinstance(store, FileStore)
    return store


def _fields(store: FileStore, sid: str) -> tuple[Any, ...]:
    info = store.session_info(sid)
    assert info is not None
    return info.title, dict(info.metadata), info.owner, info.message_count


def _run(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _meta(store: FileStore, sid: str) -> Path:
    return store.directory / f"{encode_name(sid)}.meta.json"


# -- the fields survive ------------------------------------------------------------------


def test_fields_survive_appends_and_another_store_object(tmp_path: Path) -> None:
    store = _open(tmp_path)
    store.append("s", turn(1))
    store.update_session("s", **FIELDS)
    store.append("s", turn(2))
    store.expire("s", 3600)
    store.append("s", turn(3), ttl=60)
    assert store.repair("s").damaged == 0
    other = _open(tmp_path)
    assert _fields(other, "s") == ("Trip to Oslo", {"lang": "en", "k": "v"}, "u1", 6)
    other.append("s", turn(4))
    assert _fields(store, "s") == ("Trip to Oslo", {"lang": "en", "k": "v"}, "u1", 8)
    assert other.list_sessions(order="recent", owner="u1").session_ids == ["s"]


def test_fields_survive_another_process(tmp_path: Path) -> None:
    store = _open(tmp_path)
    store.update_session("s", **FIELDS)
    _run("""
        import sys
        from threadline import HumanMessage
        from threadline.stores import open_store
        store = open_store(sys.argv[1])
        store.append("s", [HumanMessage("from another process")])
        store.update_session("t", title="made there", metadata={"by": "child"})
    """, f"file://{tmp_path}")
    assert _fields(store, "s") == ("Trip to Oslo", {"lang": "en", "k": "v"}, "u1", 1)
    assert _fields(store, "t") == ("made there", {"by": "child"}, None, 0)
    out = _run("""
        import json, sys
        from threadline.stores import open_store
        info = open_store(sys.argv[1]).session_info("s")
        print(json.dumps([info.title, dict(info.metadata), info.owner, info.message_count]))
    """, f"file://{tmp_path}")
    assert json.loads(out) == ["Trip to Oslo", {"lang": "en", "k": "v"}, "u1", 1]


def test_concurrent_appends_and_updates_lose_nothing(tmp_path: Path) -> None:
    store = _open(tmp_path)
    store.update_session("s", owner="u1", metadata={"n": "0"})
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys
        from threadline import HumanMessage
        from threadline.stores import open_store
        store = open_store(sys.argv[1])
        for i in range(60):
            store.append("s", [HumanMessage(f"m{i}")])
    """), f"file://{tmp_path}"], stderr=subprocess.PIPE)
    threads = [threading.Thread(target=lambda: [store.append("s", [HumanMessage("t")])
                                                for _ in range(30)])]
    for thread in threads:
        thread.start()
    for i in range(1, 61):
        store.update_session("s", title=f"title {i}", metadata={"n": str(i)})
    for thread in threads:
        thread.join()
    _, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert _fields(store, "s") == ("title 60", {"n": "60"}, "u1", 90)
    assert len(store.get_messages("s")) == 90


_KILLED = """
    import os, sys
    from threadline import HumanMessage
    from threadline.stores import open_store
    store = open_store(sys.argv[1])
    def die(*args, **kwargs):
        os._exit(9)  # killed after the temporary file is written, before the rename
    os.replace = die
    if sys.argv[2] == "append":
        store.append("s", [HumanMessage("lost?")])
    else:
        store.update_session("s", title="never stored")
"""


@pytest.mark.parametrize("step", ["append", "update"])
def test_a_killed_writer_loses_no_field(tmp_path: Path, step: str) -> None:
    store = _open(tmp_path)
    store.append("s", turn(1))
    store.update_session("s", **FIELDS)
    killed = subprocess.run([sys.executable, "-c", textwrap.dedent(_KILLED),
                             f"file://{tmp_path}", step], check=False, timeout=60)
    assert killed.returncode == 9
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # its leftover
    title, metadata, owner, _ = _fields(store, "s")
    assert (title, metadata, owner) == ("Trip to Oslo", {"lang": "en", "k": "v"}, "u1")
    store.append("s", turn(2))  # the next writer removes the leftover
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    assert _fields(store, "s")[:3] == ("Trip to Oslo", {"lang": "en", "k": "v"}, "u1")


def test_session_fields_are_fsynced_and_plain_sessions_are_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _open(tmp_path)
    store.append("plain", turn(1))
    store.append("titled", turn(1))
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    store.append("plain", turn(2))
    assert synced == []  # its metadata can be rebuilt from the history file
    store.update_session("titled", title="T")
    assert len(synced) == 2  # the file before the rename, the directory after
    synced.clear()
    store.append("titled", turn(2))
    assert len(synced) == 1  # the file: a power loss keeps the old one or the new one


# -- sessions created by update_session ----------------------------------------------------


def test_update_creates_an_empty_session_that_lists_and_expires(tmp_path: Path) -> None:
    store = _open(tmp_path, ttl=0.5)
    store.update_session("empty", title="nothing yet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s_empty.meta.json",
                                                          "s_empty.session.lock"]
    assert oct(os.stat(_meta(store, "empty")).st_mode & 0o777) == "0o600"
    info = store.session_info("empty")
    assert info is not None and info.message_count == 0 and info.expires_at is not None
    assert info.created_at == info.updated_at
    assert store.list_sessions(order="recent").session_ids == ["empty"]
    assert store.stats() == (1, 0, 0)
    time.sleep(0.7)
    assert store.session_info("empty") is None
    assert store.list_sessions().session_ids == []
    store.update_session("empty", owner="u2")  # created afresh: the old title is gone
    assert _fields(store, "empty") == (None, {}, "u2", 0)


def test_stats_bytes_are_the_history_files(tmp_path: Path) -> None:
    store = _open(tmp_path)
    store.append("a", turn(1))
    store.append("b", turn(2))
    store.update_session("c", title="empty")
    size = sum(p.stat().st_size for p in tmp_path.glob("*.jsonl"))
    assert store.stats() == (3, 4, size)


def test_recent_cursors_this_store_did_not_make_are_refused(tmp_path: Path) -> None:
    store = _open(tmp_path)
    store.append("a", turn(1))
    for cursor in [recent_cursor("2024-01-01", "a"), recent_cursor(float("nan"), "a")]:
        with pytest.raises(InputError):
            store.list_sessions(order="recent", cursor=cursor)
    assert store.list_sessions(order="recent", cursor=recent_cursor(time.time() + 9, "z")
                               ).session_ids == ["a"]


# -- hostile metadata files ----------------------------------------------------------------


class _Planted:
    """Would create ``path`` if it were ever unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def _hostile(marker: Path) -> dict[str, bytes]:
    wrong_types = {"session_id": "h", "created_at": "yesterday", "updated_at": [1],
                   "expires_at": "never", "message_count": -5, "size": "big",
                   "title": 42, "metadata": ["a"], "owner": {"x": 1}, "parent": 7,
                   "fork_point": "3"}
    return {
        "invalid JSON": b"{torn",
        "not an object": b'["a", "b"]',
        "huge": b'{"title": "' + b"x" * (MAX_META_BYTES + 10) + b'"}',
        "deep": b"[" * 100_000 + b"]" * 100_000,
        "pickle": pickle.dumps(_Planted(marker)),
        "wrong types": json.dumps(wrong_types).encode(),
        "NaN times": b'{"created_at": NaN, "updated_at": Infinity, "expires_at": -Infinity}',
        "huge numbers": b'{"updated_at": 1e400, "created_at": ' + b"9" * 5000 + b"}",
        "metadata not str": json.dumps({"metadata": {"a": 1, "b": {"c": "d"}}}).encode(),
        "too much metadata": json.dumps({"metadata": {f"k{i}": "v" for i in range(40)},
                                         "title": "x" * 600, "owner": ""}).encode(),
        "control title": json.dumps({"title": "two\nlines", "owner": "a\x00b"}).encode(),
        "not UTF-8": b'{"title": "\xff\xfe"}',
    }


@pytest.mark.parametrize("label", list(_hostile(Path("/nonexistent"))))
def test_a_hostile_metadata_file_never_crashes_anything(tmp_path: Path, label: str) -> None:
    marker = tmp_path / "unpickled"
    store = _open(tmp_path / "store")
    for sid in ["a", "h", "z"]:
        store.append(sid, turn(1))
        store.update_session(sid, owner="u1")
        time.sleep(0.01)
    _meta(store, "h").write_bytes(_hostile(marker)[label])
    for order in ("id", "recent"):
        listed = store.list_sessions(order=order).session_ids
        assert sorted(listed) == ["a", "h", "z"], label  # "h" listed from its file
        assert "a" in store.list_sessions(order=order, owner="u1")
        assert "h" not in store.list_sessions(order=order, owner="u1")  # its owner is lost
    info = store.session_info("h")
    assert info is not None and info.message_count == 2
    assert info.title is None and dict(info.metadata) == {} and info.owner is None
    assert info.parent is None and info.fork_point is None
    assert info.updated_at is not None and info.expires_at is None
    assert [m.text for m in store.get_messages("h")] == ["q1", "a1"]
    assert store.stats()[:2] == (3, 6)
    assert [hit.session_id for hit in store.search("q1")] != []
    store.append("h", turn(2))  # the next write rebuilds a clean metadata file
    store.update_session("h", title="clean again")
    assert _fields(store, "h") == ("clean again", {}, None, 4)
    assert json.loads(_meta(store, "h").read_text())["title"] == "clean again"
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_metadata_file_that_is_no_file_is_ignored(tmp_path: Path, kind: str) -> None:
    store = _open(tmp_path)
    store.append("a", turn(1))
    store.append("h", turn(1))
    meta = _meta(store, "h")
    meta.unlink()
    os.mkfifo(meta) if kind == "fifo" else meta.mkdir()
    assert sorted(store.list_sessions(order="recent")) == ["a", "h"]  # never hangs
    info = store.session_info("h")
    assert info is not None and info.message_count == 2 and info.title is None


def test_a_metadata_file_naming_another_session_lists_nothing(tmp_path: Path) -> None:
    store = _open(tmp_path)
    store.append("real", turn(1))
    long_id = "x" * 300  # stored under a hashed name, its id read from the metadata
    store.append(long_id, turn(1))
    meta = _meta(store, long_id)
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "session_id": "forged"}))
    (tmp_path / "s_ABC.meta.json").write_text("{}")  # not the name "ABC" is stored under
    assert store.list_sessions().session_ids == ["real"]


# -- records: one file per session ---------------------------------------------------------


def _records_file(store: FileStore, sid: str) -> Path:
    return store.directory / f"{encode_name(sid)}.records.json"


def test_records_are_one_private_file_per_session(tmp_path: Path) -> None:
    store = _open(tmp_path / "store")
    store.append("s", turn(1))
    store.put_records("s", {"b": b"\x00\xff", "a": b""})
    path = _records_file(store, "s")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert json.loads(path.read_text()) == {"session_id": "s", "expires_at": None,
                                             "records": {"a": "", "b": "AP8="}}
    assert _open(tmp_path / "store").scan_records("s") == [("a", b""), ("b", b"\x00\xff")]
    out = _run("""
        import sys
        from threadline.stores import open_store
        store = open_store(sys.argv[1])
        print(store.get_records("s", ["b"]) == {"b": b"\\x00\\xff"})
        store.put_records("s", {"c": b"from a child"})
    """, f"file://{tmp_path / 'store'}")
    assert out.strip() == "True"
    assert store.get_records("s", ["c"]) == {"c": b"from a child"}
    store.delete_records("s")
    assert not path.exists()  # no records, no file
    assert _fields(store, "s") == (None, {}, None, 2)  # the messages stay
    store.put_records("r", {"k": b"v"})
    store.destroy()
    assert not (tmp_path / "store").exists()


def test_records_only_sessions_are_not_listed_and_are_deleted(tmp_path: Path) -> None:
    store = _open(tmp_path)
    store.put_records("only", {"k": b"v"})
    store.append("both", turn(1))
    store.put_records("both", {"k": b"v"})
    assert store.list_sessions().session_ids == ["both"]
    assert store.list_sessions(order="recent").session_ids == ["both"]
    assert store.stats()[:2] == (1, 2)
    assert store.delete_session("only") is True
    assert store.delete_session("both") is True
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == []


def test_expired_records_files_are_purged(tmp_path: Path) -> None:
    store = _open(tmp_path)
    store.put_records("short", {"k": b"v"}, ttl=0.3)
    store.put_records("kept", {"k": b"v"})
    store.append("s", turn(1))
    store.put_records("s", {"k": b"v"})
    store.expire("s", 0.3)
    time.sleep(0.5)
    assert store.get_records("short", ["k"]) == {} and store.scan_records("s") == []
    assert _records_file(store, "short").exists()  # until purged
    store.purge_expired()
    assert not _records_file(store, "short").exists()
    assert not _records_file(store, "s").exists()
    assert store.get_records("kept", ["k"]) == {"k": b"v"}


_KILLED_RECORDS = """
    import os, sys
    from threadline.stores import open_store
    store = open_store(sys.argv[1])
    def die(*args, **kwargs):
        os._exit(9)
    os.replace = die
    store.put_records("s", {"new": b"never stored"}, delete=["old"])
"""


def test_a_killed_records_writer_keeps_the_old_records(tmp_path: Path) -> None:
    store = _open(tmp_path)
    store.put_records("s", {"old": b"1"})
    killed = subprocess.run([sys.executable, "-c", textwrap.dedent(_KILLED_RECORDS),
                             f"file://{tmp_path}"], check=False, timeout=60)
    assert killed.returncode == 9
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    assert store.scan_records("s") == [("old", b"1")]
    store.update_session("s", title="t")  # any writer of the session removes the leftover
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    assert store.scan_records("s") == [("old", b"1")]


@pytest.mark.parametrize("content", [b"{torn", b"[]", b'{"records": {"k": "not base64!"}}',
                                     b'{"session_id": "other", "records": {}}',
                                     b'{"session_id": "s", "records": {"bad key": ""}}'])
def test_a_damaged_records_file_is_an_error_naming_it(tmp_path: Path, content: bytes
                                                      ) -> None:
    store = _open(tmp_path)
    store.put_records("s", {"k": b"v"})
    path = _records_file(store, "s")
    path.write_bytes(content)
    for call in (lambda: store.get_records("s", ["k"]), lambda: store.scan_records("s"),
                 lambda: store.put_records("s", {"k": b"w"})):
        with pytest.raises(StoreError, match=r"records file .* is damaged"):
            call()
    assert path.read_bytes() == content  # never overwritten
    store.purge_expired()  # left alone, no crash
    assert store.delete_session("s") is True and not path.exists()


def test_a_link_where_the_records_file_goes_is_refused(tmp_path: Path) -> None:
    store = _open(tmp_path / "store")
    store.setup()
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    _records_file(store, "s").symlink_to(victim)
    for call in (lambda: store.get_records("s", ["k"]),
                 lambda: store.put_records("s", {"k": b"v"})):
        with pytest.raises(StoreError, match="symbolic link"):
            call()
    assert victim.read_bytes() == b"precious"
