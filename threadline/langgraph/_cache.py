"""A bounded cache of channel blobs, by thread and blob key (what a saver wrote or read).

A blob's key names its channel *version*, and ThreadlineSaver's versions are unique (a
counter and a random part), so the bytes under a key never change: the cache can skip the
store's round trip for the blobs of the checkpoint a graph just wrote and reads back at its
next step. It holds the stored bytes (never the objects handed to the graph, which the
graph may change) and is written through by the saver's own puts and deletes. Its only
assumption is that no one else writes *different* bytes under the same key of the same
thread (a caller that reuses version numbers with other values, in another process):
such a caller can pass ``blob_cache_bytes=0`` to ThreadlineSaver.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Mapping

__all__ = ["BlobCache"]


class BlobCache:
    """Least recently used blobs, at most ``max_bytes`` of them in all."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get_many(self, thread_id: str, keys: Collection[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        if not self.max_bytes:
            return found
        with self._lock:
            for key in keys:
                value = self._items.get((thread_id, key))
                if value is not None:
                    self._items.move_to_end((thread_id, key))
                    found[key] = value
        return found

    def put_many(self, thread_id: str, values: Mapping[str, bytes]) -> None:
        if not self.max_bytes:
            return
        with self._lock:
            for key, value in values.items():
                if len(value) > self.max_bytes // 4:
                    self._pop((thread_id, key))  # too large to be worth the room
                    continue
                self._pop((thread_id, key))
                self._items[(thread_id, key)] = value
                self._size += len(value)
            while self._size > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._size -= len(old)

    def forget(self, thread_id: str, keys: Collection[str] | None = None) -> None:
        """Drop these keys of a thread (all of its keys for ``None``)."""
        with self._lock:
            if keys is None:
                keys = [key for tid, key in self._items if tid == thread_id]
            for key in keys:
                self._pop((thread_id, key))

    def _pop(self, item: tuple[str, str]) -> None:
        value = self._items.pop(item, None)
        if value is not None:
            self._size -= len(value)
