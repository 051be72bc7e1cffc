"""How a LangGraph thread is laid out in a threadline session's records (pure functions).

One thread is one session; its checkpoints, channel blobs and pending writes are records
(see :mod:`threadline.stores._records`) under these keys, every part escaped with
:func:`~threadline.stores._records.escape_key_part` so ``/`` only ever separates parts::

    c/{ns}/{checkpoint_id}                  the checkpoint (without channel values),
                                            its metadata and its parent's id
    c/{ns}/{checkpoint_id}/{task_id}/{idx}  one pending write of a task to it
    b/{ns}/{channel}/{version}              one version of one channel's value

Checkpoint ids are time-ordered (uuid6), so the newest checkpoint of a namespace is the
last checkpoint key under ``c/{ns}/``. A checkpoint's writes sort right after it (a key
sorts before its own extensions), so a reverse scan meets a checkpoint's writes and then
the checkpoint: "the latest checkpoint and its writes" is one short scan, and listing
reads each checkpoint's writes in the same scan (:func:`classify` tells the two kinds
apart, and which checkpoint a write belongs to). A channel value is stored once per
version (an unchanged channel is not written again), which is what lets ``keep_last``
bound a thread's size.

Values are msgpack arrays of LangGraph's typed serialization (``(type, bytes)`` pairs
from the saver's serializer), never pickle: :func:`load_typed` refuses the ``pickle``
type whatever serializer is configured.

A run's checkpoints can be deleted without knowing their thread (``delete_for_runs``),
so each run keeps an index: the session :func:`run_index_session` holds one record per
thread the run wrote to (key: a digest of the thread id; value: the thread id).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, NamedTuple

import ormsgpack

from threadline._errors import MessageFormatError
from threadline.stores._records import escape_key_part

__all__ = [
    "StoredCheckpoint",
    "StoredWrite",
    "blob_key",
    "blob_prefix",
    "checkpoint_key",
    "checkpoint_prefix",
    "classify",
    "load_typed",
    "newest_versions",
    "pack_blob",
    "pack_checkpoint",
    "pack_write",
    "run_index_key",
    "run_index_session",
    "unpack_blob",
    "unpack_checkpoint",
    "unpack_write",
    "write_key",
]

Typed = tuple[str, bytes]


def checkpoint_prefix(ns: str | None) -> str:
    """Keys of one namespace's checkpoints (all namespaces' for ``None``)."""
    return "c/" if ns is None else f"c/{escape_key_part(ns)}/"


def checkpoint_key(ns: str, checkpoint_id: str) -> str:
    return f"c/{escape_key_part(ns)}/{escape_key_part(checkpoint_id)}"


def blob_prefix(ns: str | None) -> str:
    return "b/" if ns is None else f"b/{escape_key_part(ns)}/"


def blob_key(ns: str, channel: str, version: str | int | float) -> str:
    return f"b/{escape_key_part(ns)}/{escape_key_part(channel)}/{escape_key_part(str(version))}"


def write_key(ns: str, checkpoint_id: str, task_id: str, idx: int) -> str:
    return f"{checkpoint_key(ns, checkpoint_id)}/{escape_key_part(task_id)}/{idx}"


def classify(key: str) -> tuple[bool, tuple[str, str]]:
    """``(is a write, (escaped ns, escaped checkpoint id))`` of a key under ``c/``: the
    checkpoint itself, or the one a write belongs to."""
    parts = key.split("/")
    if len(parts) == 3:
        return False, (parts[1], parts[2])
    if len(parts) == 5:
        return True, (parts[1], parts[2])
    raise MessageFormatError(f"a LangGraph record has an unknown key {key[:80]!r}")


def run_index_session(run_id: str) -> str:
    """The session holding a run's index; the unit separators keep it apart from the
    sessions of threads (and it has records only, so it is never listed)."""
    return f"\x1flanggraph-run\x1f{run_id}"


def run_index_key(thread_id: str) -> str:
    return hashlib.sha256(thread_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]


class StoredCheckpoint(NamedTuple):
    """A checkpoint record, its parts still serialized."""

    ns: str
    checkpoint_id: str
    checkpoint: Typed
    metadata: Typed
    parent_id: str | None
    run_id: str | None
    #: channel -> version of the checkpoint's channels (to find its blobs without
    #: deserializing the checkpoint).
    versions: dict[str, Any]


class StoredWrite(NamedTuple):
    task_id: str
    channel: str
    value: Typed
    task_path: str
    idx: int


def _unpack(data: bytes, what: str) -> list[Any]:
    try:
        value = ormsgpack.unpackb(data)
    except (ormsgpack.MsgpackDecodeError, ValueError, TypeError) as exc:
        raise MessageFormatError(f"a stored LangGraph {what} is not msgpack: {exc}") from exc
    if not isinstance(value, list):
        raise MessageFormatError(f"a stored LangGraph {what} is not an array")
    return value


def _typed(value: Any, what: str) -> Typed:
    if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], bytes)):
        return value[0], value[1]
    raise MessageFormatError(f"a stored LangGraph {what} has no (type, bytes) value")


def pack_checkpoint(cp: StoredCheckpoint) -> bytes:
    return ormsgpack.packb([1, cp.ns, cp.checkpoint_id, list(cp.checkpoint),
                            list(cp.metadata), cp.parent_id, cp.run_id, cp.versions])


def unpack_checkpoint(data: bytes) -> StoredCheckpoint:
    row = _unpack(data, "checkpoint")
    if len(row) != 8 or row[0] != 1 or not isinstance(row[1], str) \
            or not isinstance(row[2], str) or not isinstance(row[7], dict):
        raise MessageFormatError("a stored LangGraph checkpoint has an unknown layout")
    parent, run_id = row[5], row[6]
    if not isinstance(parent, str | None) or not isinstance(run_id, str | None):
        raise MessageFormatError("a stored LangGraph checkpoint has an unknown layout")
    return StoredCheckpoint(row[1], row[2], _typed(row[3], "checkpoint"),
                            _typed(row[4], "checkpoint's metadata"), parent, run_id, row[7])


def pack_blob(value: Typed) -> bytes:
    return ormsgpack.packb(list(value))


def unpack_blob(data: bytes) -> Typed:
    return _typed(_unpack(data, "channel value"), "channel value")


def pack_write(write: StoredWrite) -> bytes:
    return ormsgpack.packb([write.task_id, write.channel, list(write.value), write.task_path,
                            write.idx])


def unpack_write(data: bytes) -> StoredWrite:
    row = _unpack(data, "pending write")
    if len(row) != 5 or not all(isinstance(row[i], str) for i in (0, 1, 3)) \
            or not isinstance(row[4], int):
        raise MessageFormatError("a stored LangGraph pending write has an unknown layout")
    return StoredWrite(row[0], row[1], _typed(row[2], "pending write"), row[3], row[4])


def load_typed(serde: Any, value: Typed) -> Any:
    """``serde.loads_typed(value)``, refusing pickle whatever the serializer allows:
    nothing read from a store may run code."""
    if value[0] == "pickle":
        raise MessageFormatError(
            "a stored LangGraph value is a pickle; threadline never unpickles stored data")
    return serde.loads_typed(value)


def _version_order(version: Any) -> tuple[int, Any]:
    return (0, version) if isinstance(version, int | float) else (1, str(version))


def newest_versions(keys: Iterable[str]) -> set[str]:
    """Of blob keys, those holding the newest version of their (ns, channel): kept by
    every clean-up, since a checkpoint being written concurrently may reference them
    without writing them again (its channel did not change)."""
    newest: dict[str, tuple[tuple[int, Any], str]] = {}
    for key in keys:
        channel_key, _, version = key.rpartition("/")
        order = _version_order(int(version) if version.isdigit() else version)
        if channel_key not in newest or order > newest[channel_key][0]:
            newest[channel_key] = (order, key)
    return {key for _, key in newest.values()}
