"""ThreadlineSaver: a LangGraph checkpointer on any threadline store.

Design. A LangGraph thread is a threadline session with the same id. Its checkpoints,
channel blobs and pending writes are the session's records (layout in
:mod:`threadline.langgraph._records`), so every backend that keeps records (SQLite,
PostgreSQL, MySQL/MariaDB, Redis, DynamoDB, Cosmos DB, memory) is a checkpointer without
a schema of its own, and deleting or expiring the session deletes or expires its
checkpoints. The graph's ``messages`` channel (root namespace) is also appended to the
session's messages, so ``threadline sessions list/show/export``, the chat and the server
see LangGraph conversations.

A ``put`` is one ``put_records`` (the changed channels' blobs, then the checkpoint: one
transaction, or the checkpoint written last where a backend splits a batch), then the
mirror append (``store.append_with_records``: one round trip on PostgreSQL; after the
checkpoint, so a crash between the two loses nothing: the next put appends what is
missing, appends being idempotent by message id). ``get_tuple`` is a
scan that reads the checkpoint and its writes, then one read of the channel values it uses
(none when they are in this saver's blob cache: a graph reads back what it just wrote).

The session's messages are a log of every message that appeared in the channel, in the
order first seen: a message edited in place (same id) or removed from the channel stays
as first written there; the checkpoints hold the graph's exact state. Which messages are
new is remembered per thread in this process (a hint: the count and last id mirrored),
checked against the channel each time; without a matching hint the whole channel is
appended, which stores nothing twice.

Sync and async: the sync methods do the work; the async ones run them in a worker thread
through :func:`threadline._concurrency.run_sync`, the one sync->async adapter.
"""

from __future__ import annotations

import builtins
import threading
import uuid
import warnings
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, NamedTuple

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from threadline._concurrency import iterate_in_thread, run_sync
from threadline._errors import InputError
from threadline._foreign import convert
from threadline.messages._values import BaseMessage
from threadline.stores import Store, open_store
from threadline.stores._base import validate_session_id, validate_ttl
from threadline.stores._records import MAX_RECORD_BATCH, escape_key_part

from . import _records as rec
from ._cache import BlobCache

__all__ = ["ThreadlineSaver"]

_PAGE = 100  # checkpoints read per scan while listing
_HINTS = 10_000  # threads whose mirror position this process remembers


class _Inventory(NamedTuple):
    """A thread's checkpoints (newest first) and their writes' keys by checkpoint."""

    checkpoints: list[rec.StoredCheckpoint]
    writes: dict[tuple[str, str], list[str]]


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns,
                             "checkpoint_id": checkpoint_id}}


def _thread_of(config: RunnableConfig) -> tuple[str, str | None, str | None]:
    configurable = config.get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None:
        raise InputError('the config needs {"configurable": {"thread_id": ...}}')
    validate_session_id(str(thread_id))
    ns = configurable.get("checkpoint_ns")
    if ns is not None and not isinstance(ns, str):
        raise InputError(f"checkpoint_ns must be a str, got {type(ns).__name__}")
    checkpoint_id = get_checkpoint_id(config)
    return str(thread_id), ns, checkpoint_id


class ThreadlineSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer on a threadline store URL (or an open :class:`Store`).

    >>> saver = ThreadlineSaver("sqlite:///chat.db", keep_last=20)
    >>> graph = builder.compile(checkpointer=saver)
    >>> graph.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "t1"}})

    ``ttl`` (seconds) expires a thread (checkpoints and messages) that many seconds
    after its last write; ``keep_last`` keeps only the newest N checkpoints of each
    namespace of a thread (and the channel values they use); ``messages_key`` names the
    channel mirrored into the session (``None``: none). The serializer is LangGraph's,
    in strict mode: only the safe types (and those you allow) are rebuilt, and pickle is
    never read. ``blob_cache_bytes`` bounds the cache of channel values this saver wrote
    or read (see :mod:`threadline.langgraph._cache`; 0 turns it off).
    """

    def __init__(self, url_or_store: str | Store, *, ttl: float | None = None,
                 keep_last: int | None = None, messages_key: str | None = "messages",
                 serde: SerializerProtocol | None = None,
                 blob_cache_bytes: int = 32 * 1024 * 1024) -> None:
        super().__init__(serde=serde or JsonPlusSerializer(allowed_msgpack_modules=None))
        self._owns_store = not isinstance(url_or_store, Store)
        self.store: Store = (url_or_store if isinstance(url_or_store, Store)
                             else open_store(url_or_store))
        if not self.store.supports_records:
            raise self.store._no_records()
        self.ttl = validate_ttl(ttl)
        if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(
                keep_last, int) or keep_last < 1):
            raise InputError(f"keep_last must be None or an int >= 1, got {keep_last!r}")
        self.keep_last = keep_last
        self.messages_key = messages_key
        self._lock = threading.Lock()
        self._mirrored: OrderedDict[str, tuple[int, str | None]] = OrderedDict()
        self._indexed: OrderedDict[tuple[str, str], None] = OrderedDict()
        if isinstance(blob_cache_bytes, bool) or not isinstance(blob_cache_bytes, int) \
                or blob_cache_bytes < 0:
            raise InputError(f"blob_cache_bytes must be an int >= 0, got {blob_cache_bytes!r}")
        self._blobs = BlobCache(blob_cache_bytes)

    def __repr__(self) -> str:
        return f"ThreadlineSaver({self.store!r})"

    # -- reading ---------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, ns, checkpoint_id = _thread_of(config)
        ns = ns or ""
        if checkpoint_id is None:  # the latest: its writes, then itself, in one short scan
            found = next(self._walk(thread_id, rec.checkpoint_prefix(ns), page=16), None)
        else:  # the one asked for and its writes (and ids it is a prefix of, skipped)
            found = next((item for item in self._walk(
                thread_id, rec.checkpoint_key(ns, checkpoint_id), page=16)
                if item[0].checkpoint_id == checkpoint_id), None)
        if found is None:
            return None
        stored, writes = found
        return self._tuple(thread_id, stored, self.serde.loads_typed(stored.metadata), writes)

    def _walk(self, thread_id: str, prefix: str, *, before: str | None = None,
              page: int = _PAGE
              ) -> Iterator[tuple[rec.StoredCheckpoint, builtins.list[rec.StoredWrite]]]:
        """The checkpoints under ``prefix`` (newest first by key), each with its writes,
        read with reverse scans of ``page`` keys: a checkpoint's writes sort after it,
        so they have been read when it is met."""
        pending: dict[tuple[str, str], builtins.list[rec.StoredWrite]] = {}
        while True:
            rows = self.store.scan_records(thread_id, prefix, before=before, reverse=True,
                                           limit=page)
            for key, data in rows:
                is_write, owner = rec.classify(key)
                if is_write:
                    pending.setdefault(owner, []).append(rec.unpack_write(data))
                else:
                    yield rec.unpack_checkpoint(data), pending.pop(owner, [])
            if len(rows) < page:
                return
            before = rows[-1][0]

    def _tuple(self, thread_id: str, stored: rec.StoredCheckpoint, metadata: Any,
               writes: builtins.list[rec.StoredWrite]) -> CheckpointTuple:
        ns, cid = stored.ns, stored.checkpoint_id
        blob_keys = {rec.blob_key(ns, ch, ver): ch for ch, ver in stored.versions.items()}
        blobs = self._blobs.get_many(thread_id, blob_keys)
        missing = [key for key in blob_keys if key not in blobs]
        if missing:
            fetched = self.store.get_records(thread_id, missing)
            self._blobs.put_many(thread_id, fetched)
            blobs.update(fetched)
        values: dict[str, Any] = {}
        for key, data in blobs.items():
            typed = rec.unpack_blob(data)
            if typed[0] != "empty":
                values[blob_keys[key]] = rec.load_typed(self.serde, typed)
        writes = sorted(writes, key=lambda w: writes_sort_key(w.task_path, w.task_id, w.idx))
        checkpoint: Checkpoint = rec.load_typed(self.serde, stored.checkpoint)
        return CheckpointTuple(
            config=_config(thread_id, ns, cid),
            checkpoint={**checkpoint, "channel_values": values},
            metadata=metadata,
            parent_config=(_config(thread_id, ns, stored.parent_id)
                           if stored.parent_id else None),
            pending_writes=[(w.task_id, w.channel, rec.load_typed(self.serde, w.value))
                            for w in writes],
        )

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None
             ) -> Iterator[CheckpointTuple]:
        """A thread's checkpoints, newest first (each namespace in turn when the config
        names none). Listing across all threads is not offered: list the threads as
        sessions (``store.list_sessions()``)."""
        if config is None:
            raise InputError(
                "ThreadlineSaver.list() needs a config with a thread_id; list threads "
                "with saver.store.list_sessions()")
        thread_id, ns, only_id = _thread_of(config)
        before_id = get_checkpoint_id(before) if before else None
        if limit is not None and limit <= 0:
            return
        bound = (rec.checkpoint_key(ns, before_id) if before_id is not None and ns is not None
                 else None)
        left = limit
        for stored, writes in self._walk(thread_id, rec.checkpoint_prefix(ns), before=bound):
            if only_id is not None and stored.checkpoint_id != only_id:
                continue
            if before_id is not None and stored.checkpoint_id >= before_id:
                continue
            metadata = self.serde.loads_typed(stored.metadata)
            if filter and not all(metadata.get(k) == v for k, v in filter.items()):
                continue
            yield self._tuple(thread_id, stored, metadata, writes)
            if left is not None:
                left -= 1
                if left <= 0:
                    return

    # -- writing ---------------------------------------------------------------------------

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        thread_id, ns, parent_id = _thread_of(config)
        ns = ns or ""
        cid = checkpoint["id"]
        saved = checkpoint.copy()
        values: dict[str, Any] = saved.pop("channel_values")  # type: ignore[misc]
        records: dict[str, bytes] = {}
        for channel, version in new_versions.items():
            typed = (self.serde.dumps_typed(values[channel]) if channel in values
                     else ("empty", b""))
            records[rec.blob_key(ns, channel, version)] = rec.pack_blob(typed)
        blobs = dict(records)
        full_metadata = get_checkpoint_metadata(config, metadata)
        run_id = full_metadata.get("run_id")
        stored = rec.StoredCheckpoint(
            ns, cid, self.serde.dumps_typed(saved), self.serde.dumps_typed(full_metadata),
            parent_id, str(run_id) if run_id is not None else None,
            dict(saved["channel_versions"]))
        records[rec.checkpoint_key(ns, cid)] = rec.pack_checkpoint(stored)  # the commit: last
        mirror: builtins.list[BaseMessage] = []
        hint: tuple[int, str | None] | None = None
        if ns == "" and self.messages_key is not None and self.messages_key in new_versions:
            mirror, hint = self._to_mirror(thread_id, values.get(self.messages_key))
        try:
            if mirror:  # the checkpoint, then the new messages (one round trip on PG)
                self.store.append_with_records(thread_id, mirror, records, ttl=self.ttl)
            else:
                self.store.put_records(thread_id, records, ttl=self.ttl)
        except BaseException:
            self._blobs.forget(thread_id, blobs)  # an earlier value may be cached
            raise
        self._blobs.put_many(thread_id, blobs)
        if hint is not None:
            self._remember(self._mirrored, thread_id, hint)
        if stored.run_id is not None:
            self._index_run(stored.run_id, thread_id)
        if self.keep_last is not None:
            self._keep_newest(thread_id, ns, self.keep_last)
        return _config(thread_id, ns, cid)

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                   task_id: str, task_path: str = "") -> None:
        thread_id, ns, cid = _thread_of(config)
        if cid is None:
            raise InputError("put_writes needs a config with a checkpoint_id")
        ns = ns or ""
        records: dict[str, bytes] = {}
        for idx, (channel, value) in enumerate(writes):
            index = WRITES_IDX_MAP.get(channel, idx)
            records[rec.write_key(ns, cid, task_id, index)] = rec.pack_write(rec.StoredWrite(
                task_id, channel, self.serde.dumps_typed(value), task_path, index))
        if records:
            self.store.put_records(thread_id, records, ttl=self.ttl)

    # -- the thread as a session -----------------------------------------------------------

    def _remember(self, cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        with self._lock:
            cache[key] = value
            cache.move_to_end(key)
            while len(cache) > _HINTS:
                cache.popitem(last=False)

    def _to_mirror(self, thread_id: str, value: Any
                   ) -> tuple[builtins.list[BaseMessage], tuple[int, str | None] | None]:
        """The channel's messages the session does not hold yet (as threadline messages),
        and the hint to remember once they are stored."""
        if not isinstance(value, builtins.list) or not value:
            return [], None
        with self._lock:
            hint = self._mirrored.get(thread_id)
        start = 0
        if hint is not None and 0 < hint[0] <= len(value) \
                and getattr(value[hint[0] - 1], "id", None) == hint[1]:
            start = hint[0]
        batch: builtins.list[BaseMessage] = []
        skipped = 0
        for position in range(start, len(value)):
            message = value[position]
            ours = message if isinstance(message, BaseMessage) else convert("message", message)
            if not isinstance(ours, BaseMessage):
                skipped += 1
                continue
            if ours.id is None:  # the same id for the same position, so retries add it once
                ours = ours.__copy__() if ours is message else ours
                ours.id = str(uuid.uuid5(uuid.NAMESPACE_URL,
                                         f"threadline:{thread_id}:{position}"))
            batch.append(ours)
        if skipped:
            warnings.warn(
                f"{skipped} item(s) of the {self.messages_key!r} channel of thread "
                f"{thread_id!r} are not messages; they are kept in the checkpoints but not "
                "in the session's messages", UserWarning, stacklevel=4)
        return batch, (len(value), getattr(value[-1], "id", None))

    def _index_run(self, run_id: str, thread_id: str) -> None:
        with self._lock:
            if (run_id, thread_id) in self._indexed:
                return
        self.store.put_records(rec.run_index_session(run_id), {
            rec.run_index_key(thread_id): thread_id.encode("utf-8", "surrogatepass")},
            ttl=self.ttl)
        self._remember(self._indexed, (run_id, thread_id), None)

    # -- deleting and pruning --------------------------------------------------------------

    def _keys(self, thread_id: str, prefix: str) -> builtins.list[str]:
        keys: builtins.list[str] = []
        after: str | None = None
        while True:
            rows = self.store.scan_records(thread_id, prefix, after=after, keys_only=True,
                                           limit=MAX_RECORD_BATCH)
            keys.extend(key for key, _ in rows)
            if len(rows) < MAX_RECORD_BATCH:
                return keys
            after = rows[-1][0]

    def _inventory(self, thread_id: str, ns: str | None = None, *,
                   keys: builtins.list[str] | None = None) -> _Inventory:
        """Every checkpoint of a thread (of one namespace), newest first, and the keys of
        their writes; ``keys``: the ``c/`` keys when the caller has read them already."""
        if keys is None:
            keys = self._keys(thread_id, rec.checkpoint_prefix(ns))
        record_keys: builtins.list[str] = []
        writes: dict[tuple[str, str], builtins.list[str]] = {}
        for key in keys:
            is_write, owner = rec.classify(key)
            if is_write:
                writes.setdefault(owner, []).append(key)
            else:
                record_keys.append(key)
        record_keys.reverse()
        values: dict[str, bytes] = {}
        for start in range(0, len(record_keys), MAX_RECORD_BATCH):
            values.update(self.store.get_records(
                thread_id, record_keys[start:start + MAX_RECORD_BATCH]))
        return _Inventory([rec.unpack_checkpoint(values[key]) for key in record_keys
                           if key in values], writes)

    def _drop(self, thread_id: str, doomed: Sequence[rec.StoredCheckpoint],
              kept: Sequence[rec.StoredCheckpoint], ns: str | None,
              writes: dict[tuple[str, str], builtins.list[str]]) -> None:
        """Delete checkpoints, their writes, and the blobs no kept checkpoint uses (except
        each channel's newest version), then forget the runs the thread no longer has."""
        if not doomed:
            return
        blob_keys = self._keys(thread_id, rec.blob_prefix(ns))  # before reading what is used
        used = {rec.blob_key(cp.ns, ch, ver) for cp in kept for ch, ver in cp.versions.items()}
        used |= rec.newest_versions(blob_keys)
        keys = [rec.checkpoint_key(cp.ns, cp.checkpoint_id) for cp in doomed]
        for cp in doomed:
            keys += writes.get((escape_key_part(cp.ns), escape_key_part(cp.checkpoint_id)), [])
        keys += [key for key in blob_keys if key not in used]
        self._blobs.forget(thread_id, [key for key in keys if key.startswith("b/")])
        for start in range(0, len(keys), MAX_RECORD_BATCH):
            self.store.delete_records(thread_id, keys[start:start + MAX_RECORD_BATCH])
        live_runs = {cp.run_id for cp in kept}
        for run_id in {cp.run_id for cp in doomed} - live_runs:
            if run_id is not None:
                self.store.delete_records(rec.run_index_session(run_id),
                                          [rec.run_index_key(thread_id)])
                with self._lock:
                    self._indexed.pop((run_id, thread_id), None)

    def _keep_newest(self, thread_id: str, ns: str, keep: int) -> None:
        keys = self._keys(thread_id, rec.checkpoint_prefix(ns))
        if sum(1 for key in keys if not rec.classify(key)[0]) <= keep:
            return
        every = self._inventory(thread_id, ns, keys=keys)
        self._drop(thread_id, every.checkpoints[keep:], every.checkpoints[:keep], ns,
                   every.writes)

    def delete_thread(self, thread_id: str) -> None:
        """Delete the thread's checkpoints and writes, and its session (messages too)."""
        validate_session_id(thread_id)
        runs = {cp.run_id for cp in self._inventory(thread_id).checkpoints}
        self._blobs.forget(thread_id)
        self.store.delete_session(thread_id)
        for run_id in runs:
            if run_id is not None:
                self.store.delete_records(rec.run_index_session(run_id),
                                          [rec.run_index_key(thread_id)])
        with self._lock:
            self._mirrored.pop(thread_id, None)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete every checkpoint (and its writes) that these runs wrote, in any thread."""
        for run_id in run_ids:
            index = rec.run_index_session(str(run_id))
            threads = [value.decode("utf-8", "surrogatepass")
                       for _, value in self.store.scan_records(index)]
            for thread_id in threads:
                every = self._inventory(thread_id)
                self._drop(thread_id, [cp for cp in every.checkpoints if cp.run_id == run_id],
                           [cp for cp in every.checkpoints if cp.run_id != run_id], None,
                           every.writes)
            self.store.delete_records(index)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, blob and write of a thread, and its messages."""
        validate_session_id(source_thread_id)
        validate_session_id(target_thread_id)
        self._blobs.forget(target_thread_id)
        after: str | None = None
        runs: set[str] = set()
        while True:
            rows = self.store.scan_records(source_thread_id, after=after, limit=500)
            if not rows:
                break
            for key, data in rows:
                if key.startswith("c/") and not rec.classify(key)[0]:
                    run_id = rec.unpack_checkpoint(data).run_id
                    if run_id is not None:
                        runs.add(run_id)
            self.store.put_records(target_thread_id, dict(rows), ttl=self.ttl)
            after = rows[-1][0]
        for run_id in runs:
            self._index_run(run_id, target_thread_id)
        batch: builtins.list[BaseMessage] = []
        for message in self.store.iter_messages(source_thread_id):
            batch.append(message)
            if len(batch) >= 500:
                self.store.append(target_thread_id, batch, ttl=self.ttl)
                batch = []
        if batch:
            self.store.append(target_thread_id, batch, ttl=self.ttl)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``"keep_latest"``: keep each namespace's newest checkpoint; ``"delete"``: delete
        the threads."""
        if strategy not in ("keep_latest", "delete"):
            raise InputError(f"strategy must be 'keep_latest' or 'delete', got {strategy!r}")
        for thread_id in thread_ids:
            if strategy == "delete":
                self.delete_thread(thread_id)
                continue
            every = self._inventory(thread_id)
            kept: dict[str, rec.StoredCheckpoint] = {}
            for cp in every.checkpoints:  # newest first within each namespace
                kept.setdefault(cp.ns, cp)
            keep_ids = {id(cp) for cp in kept.values()}
            self._drop(thread_id, [cp for cp in every.checkpoints if id(cp) not in keep_ids],
                       builtins.list(kept.values()), None, every.writes)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Zero-padded increasing versions (as LangGraph's own savers make), so they sort."""
        if current is None:
            number = 0
        elif isinstance(current, int):
            number = current
        else:
            number = int(str(current).split(".")[0])
        return f"{number + 1:032}.{uuid.uuid4().int % 10**16:016}"

    def close(self) -> None:
        """Close the store if this saver opened it from a URL."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> ThreadlineSaver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- async twins: the sync methods in a worker thread ----------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await run_sync(self.get_tuple, config)

    async def alist(self, config: RunnableConfig | None, *,
                    filter: dict[str, Any] | None = None, before: RunnableConfig | None = None,
                    limit: int | None = None) -> AsyncIterator[CheckpointTuple]:
        async for item in iterate_in_thread(self.list(config, filter=filter, before=before,
                                                      limit=limit)):
            yield item

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint,
                   metadata: CheckpointMetadata, new_versions: ChannelVersions
                   ) -> RunnableConfig:
        return await run_sync(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                          task_id: str, task_path: str = "") -> None:
        await run_sync(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await run_sync(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await run_sync(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await run_sync(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest"
                     ) -> None:
        await run_sync(lambda: self.prune(thread_ids, strategy=strategy))

