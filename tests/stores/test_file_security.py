"""Files on a shared machine and hostile data: links planted in a store directory or
beside a history, store directories other users can write to, histories addressed by
session id, private modes whatever the umask, size limits, and streaming reads whose
memory stays flat in the session's length (issue 21, points 2-4, 7-9).

Tests run as root here, so a directory "of another user" is one chowned to a free uid.
"""

from __future__ import annotations

import os
import re
import stat
import threading
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from threadline import (
    FileChatMessageHistory,
    HistoryFileError,
    HumanMessage,
    InputError,
    MessageFormatError,
    SkippedMessageWarning,
    StoreError,
)
from threadline.messages._serialization import message_to_dict
from threadline.stores import open_store
from threadline.stores.file import history_path, repair_history_file
from threadline.stores.file._format import encode_lines
from threadline.stores.file._store import FileStore, encode_name

from .scenarios import turn

OTHER_UID = 54_321  # no such user: a directory chowned to it belongs to "someone else"
PRECIOUS = b'{"precious": true}\n'


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


# --- point 2: links planted in a store directory ---------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".meta.json", ".session.lock", ".jsonl.lock"])
def test_links_planted_in_a_store_directory_are_refused(tmp_path: Path, suffix: str) -> None:
    directory, outside = tmp_path / "store", tmp_path / "outside"
    outside.mkdir()
    store = open_store(f"file://{directory}")
    store.setup()
    planted = directory / (encode_name("x") + suffix)
    victim = outside / "victim"
    victim.write_bytes(PRECIOUS)
    for target in (outside / "dangling", victim):  # a link to nothing, then to a file
        planted.unlink(missing_ok=True)
        planted.symlink_to(target)
        with pytest.raises(StoreError, match=re.escape(f"{planted.name}' is a symbolic link")):
            store.append("x", turn(1))
        assert not (outside / "dangling").exists() and victim.read_bytes() == PRECIOUS
    if suffix in (".jsonl", ".meta.json"):  # what reads open: never read through it either
        for read in (lambda: store.get_messages("x"), lambda: list(store.iter_messages("x")),
                     lambda: store.session_info("x")):
            with pytest.raises(StoreError, match="symbolic link"):
                read()
    assert planted.is_symlink() and victim.read_bytes() == PRECIOUS


def test_a_link_swapped_in_for_an_existing_session_file_is_refused(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path / 'store'}")
    store.append("s", turn(1))
    data = tmp_path / "store" / "s_s.jsonl"
    victim = tmp_path / "victim.jsonl"
    victim.write_bytes(encode_lines([message_to_dict(HumanMessage("not yours"))], "utf-8",
                                    False))
    data.unlink()
    data.symlink_to(victim)
    with pytest.raises(StoreError, match=r"s_s\.jsonl' is a symbolic link"):
        store.get_messages("s")  # before: the victim's messages, read as the session's
    with pytest.raises(StoreError, match="symbolic link"):
        store.append("s", turn(2))
    assert [m.text for m in FileChatMessageHistory(victim).messages] == ["not yours"]


def test_links_beside_a_history_file_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    path, lock = tmp_path / "chat.jsonl", tmp_path / "chat.jsonl.lock"
    lock.symlink_to(outside)  # a dangling link where the lock file goes
    with pytest.raises(HistoryFileError, match=r"lock file .* is a symbolic link"):
        FileChatMessageHistory(path).add_user_message("hi")
    with pytest.raises(HistoryFileError, match="symbolic link"):
        FileChatMessageHistory(path).get_messages()
    assert not outside.exists() and not path.exists()
    lock.unlink()
    path.symlink_to(outside)  # and where the history goes
    with pytest.raises(HistoryFileError, match=r"chat\.jsonl' is a symbolic link"):
        FileChatMessageHistory(path).add_user_message("hi")
    assert not outside.exists()


# --- point 3: clear() never writes through a link ----------------------------------------------


@pytest.mark.parametrize("content", [b"", b'{"theme": "dark"}\n', b'["a", "b"]'])
def test_clear_never_empties_the_target_of_a_link(tmp_path: Path, content: bytes) -> None:
    settings = tmp_path / "settings.json"
    settings.write_bytes(content)
    link = tmp_path / "chat.json"
    link.symlink_to(settings)
    with pytest.raises(HistoryFileError, match="symbolic link"):
        FileChatMessageHistory(link).clear()
    assert settings.read_bytes() == content and link.is_symlink()


# --- point 4 and 7: one safe path per session id; NUL in paths ---------------------------------


def test_history_path_keeps_every_session_id_inside_its_directory(tmp_path: Path) -> None:
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    for sid in ("../../other/planted", "/etc/passwd", "..", "a/b", "CON", "é" * 100):
        path = history_path(sessions, sid)
        assert path.parent == sessions and path.name.endswith(".jsonl")
        assert path.name.startswith(("s_", "h_")) and "/" not in path.name
        FileChatMessageHistory(path).add_user_message(sid)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sessions"]
    # The file:// store's own name for the session: a store on the directory reads it.
    assert history_path(sessions, "a/b", suffix=".json").name == encode_name("a/b") + ".json"
    store = open_store(f"file://{tmp_path / 'store'}")
    store.append("a/b", turn(1))
    assert history_path(tmp_path / "store", "a/b").exists()
    for bad in ("", "a\x00b", "lone \ud800"):
        with pytest.raises(InputError):
            history_path(sessions, bad)
    for suffix in ("/../x", ".json\x00", "json", "." + "x" * 40):
        with pytest.raises(InputError, match="suffix"):
            history_path(sessions, "s", suffix=suffix)
    with pytest.raises(InputError, match="NUL"):
        history_path("sess\x00ions", "s")


def test_a_nul_or_an_unencodable_character_in_a_history_path_is_an_input_error(
    tmp_path: Path,
) -> None:
    for bad in (f"{tmp_path}/a\x00b.jsonl", Path(f"{tmp_path}/a\x00b.jsonl"),
                f"{tmp_path}/\ud800.jsonl"):
        with pytest.raises(InputError, match="file_path"):
            FileChatMessageHistory(bad)
    with pytest.raises(InputError):
        repair_history_file(f"{tmp_path}/x\x00.jsonl")


# --- point 2: store directories other users can write to ---------------------------------------


@pytest.mark.parametrize("bits", [0o777, 0o1777, 0o770])
def test_a_directory_others_can_write_to_and_we_do_not_own_is_refused(
    tmp_path: Path, bits: int,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chown(shared, OTHER_UID, OTHER_UID)
    os.chmod(shared, bits)
    store = open_store(f"file://{shared}")
    with pytest.raises(StoreError, match=r"writable by other users.*chmod 700.*another dir"):
        store.setup()
    with pytest.raises(StoreError, match="writable by other users"):  # on first use too
        store.append("s", turn(1))
    assert list(shared.iterdir()) == []


def test_directories_that_are_safe_to_use_are_accepted(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"  # another user's, that nobody else can write to
    theirs.mkdir(mode=0o755)
    os.chown(theirs, OTHER_UID, OTHER_UID)
    ours = tmp_path / "ours"  # our own, whatever its mode
    ours.mkdir()
    os.chmod(ours, 0o777)
    for directory in (theirs, ours):
        store = open_store(f"file://{directory}")
        store.append("s", turn(1))
        assert [m.text for m in store.get_messages("s")] == ["q1", "a1"]
    file_instead = tmp_path / "file"
    file_instead.write_text("")
    with pytest.raises(StoreError, match="not a directory"):
        open_store(f"file://{file_instead}").setup()


# --- point 8: private by default ---------------------------------------------------------------


def test_store_directories_and_files_are_private_whatever_the_umask(
    tmp_path: Path, umask: int,
) -> None:
    directory = tmp_path / "a" / "b" / "sessions"
    store = open_store(f"file://{directory}")
    store.append("s", turn(1))
    store.append("s", turn(2), ttl=60)  # the metadata rewritten
    store.repair("s")
    for path in (tmp_path / "a", tmp_path / "a" / "b", directory):
        assert mode(path) == 0o700, path
    names = sorted(p.name for p in directory.iterdir())
    assert names == ["s_s.jsonl", "s_s.jsonl.lock", "s_s.meta.json", "s_s.session.lock"]
    for name in names:
        assert mode(directory / name) == 0o600, name
    os.chmod(directory / "s_s.meta.json", 0o640)  # an existing file keeps its mode
    store.append("s", turn(3))
    assert mode(directory / "s_s.meta.json") == 0o640


def test_history_files_are_private_and_existing_ones_keep_their_mode(
    tmp_path: Path, umask: int,
) -> None:
    new = tmp_path / "new.json"
    FileChatMessageHistory(new, format="json").add_user_message("hi")  # a rewrite
    FileChatMessageHistory(tmp_path / "lines.jsonl").add_user_message("hi")  # an append
    for name in ("new.json", "new.json.lock", "lines.jsonl", "lines.jsonl.lock"):
        assert mode(tmp_path / name) == 0o600, name
    shared = tmp_path / "shared.json"
    shared.write_text("[]")
    os.chmod(shared, 0o644)
    history = FileChatMessageHistory(shared)
    history.add_user_message("hi")  # rewrites the array
    assert mode(shared) == 0o644 and mode(tmp_path / "shared.json.lock") == 0o644
    history.convert("jsonl")
    history.clear()
    assert mode(shared) == 0o644


# --- point 9 and 7: sizes, streaming reads ------------------------------------------------------


def test_a_history_refuses_a_message_larger_than_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    assert FileChatMessageHistory(path).max_message_bytes == 16 * 1024 * 1024
    small = FileChatMessageHistory(path, max_message_bytes=1_000)
    small.add_user_message("é" * 300)  # about 600 bytes of text
    before = path.read_bytes()
    with pytest.raises(InputError, match="max_message_bytes"):
        small.add_messages([HumanMessage("ok"), HumanMessage("é" * 600)])
    assert path.read_bytes() == before
    for bad in (0, -1, 1.5, True, 2**40):
        with pytest.raises(InputError, match="max_message_bytes"):
            FileChatMessageHistory(path, max_message_bytes=bad)  # type: ignore[arg-type]


def test_text_the_file_cannot_hold_is_an_input_error_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.jsonl"
    FileChatMessageHistory(path).add_user_message("before")
    before = path.read_bytes()
    with pytest.raises(InputError, match="nothing was stored"):
        FileChatMessageHistory(path).add_messages([HumanMessage("ok"), HumanMessage("\ud800")])
    with pytest.raises(InputError, match="ensure_ascii=True"):
        FileChatMessageHistory(path, encoding="latin-1").add_user_message("€")
    assert path.read_bytes() == before
    FileChatMessageHistory(path, ensure_ascii=True).add_user_message("\ud800 €")


def _write_session(store: FileStore, sid: str, texts: list[str]) -> Path:
    """A session written straight to its file (fast), as appends would write it."""
    store.append(sid, [HumanMessage(texts[0])])
    data = store.directory / (encode_name(sid) + ".jsonl")
    with data.open("ab") as handle:
        handle.write(encode_lines([message_to_dict(HumanMessage(t)) for t in texts[1:]],
                                  "utf-8", False))
    return data


def _peak(consume: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        consume()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_file_store_streams_a_long_session_in_flat_memory(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    assert isinstance(store, FileStore)
    texts = [f"message {i:06d} " + "x" * 400 for i in range(25_000)]  # ~11 MB of lines
    _write_session(store, "long", texts)
    seen: list[int] = [0]

    def stream() -> None:
        for message in store.iter_messages("long", page_size=100):
            assert message.text == texts[seen[0]]
            seen[0] += 1

    peak = _peak(stream)
    assert seen[0] == len(texts)
    assert peak < 6_000_000, f"peak {peak:,} bytes"  # a whole read holds the 11 MB file


def test_streamed_errors_name_the_position_in_the_session(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    assert isinstance(store, FileStore)
    data = _write_session(store, "s", [f"m{i}" for i in range(10)])
    with data.open("ab") as handle:  # a blank line, then message 10..29 with 25 damaged
        handle.write(b"\n" + encode_lines(
            [message_to_dict(HumanMessage(f"m{i}")) for i in range(10, 25)], "utf-8", False)
            + b"{damaged\n" + encode_lines(
            [message_to_dict(HumanMessage(f"m{i}")) for i in range(26, 30)], "utf-8", False))
    got: list[str] = []
    with pytest.raises(MessageFormatError) as info:
        for message in store.iter_messages("s", page_size=10):
            got.append(message.text)
    assert got == [f"m{i}" for i in range(20)]  # pages before the damaged one came first
    assert info.value.position == 25 and info.value.session_id == "s"
    assert "line 27" in str(info.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = [m.text for m in store.iter_messages("s", page_size=7, skip_invalid=True)]
    assert kept == [f"m{i}" for i in range(30) if i != 25]
    assert [w.category for w in caught] == [SkippedMessageWarning]


def test_a_stream_reads_a_snapshot_and_never_blocks_writers(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    history = FileChatMessageHistory(path)
    history.add_messages([HumanMessage(f"m{i}") for i in range(50)])
    stream = history.iter_messages(page_size=10)
    assert next(stream).text == "m0"
    writer = threading.Thread(target=history.add_user_message, args=("later",))
    writer.start()
    writer.join(timeout=5)
    assert not writer.is_alive()  # the stream holds no lock while it is consumed
    FileChatMessageHistory(path).clear()  # replaces the file: the stream keeps the old one
    assert [m.text for m in stream] == [f"m{i}" for i in range(1, 50)]
    assert list(history.iter_messages()) == []
    with pytest.raises(InputError):
        history.iter_messages(page_size=0)
