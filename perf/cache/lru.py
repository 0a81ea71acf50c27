"""L1: an in-process LRU bounded by entry count and, optionally, by bytes, with a TTL per entry.

Values are stored as the objects themselves (no copy, no decoding on a hit: that is
what makes L1 ~100x faster than Redis), so callers must treat cached values as
read-only. Expired entries are dropped when read and when the LRU evicts.

**The byte bound** (``max_bytes``) counts an *estimate* of each entry's size, not its real
footprint: measuring the real size of a nested object (walking every dict, list and
string) costs more than the cache hit it would guard. The estimate is the length of the
entry's serialized form, which :class:`~perf.cache.multilevel.MultiLevelCache` already has
in hand (the bytes it writes to or reads from Redis) and passes as ``set(..., size=n)``;
without one, :func:`estimate_size` serializes the value once (orjson, else pickle).
Decoded Python objects are bigger than their JSON: notebook 01 measures the real allocated
bytes (tracemalloc) at **~2.5x** the estimate for the catalog's product dicts (215 B of
JSON, 553 B decoded) and category reports (4.2 KB, 10.3 KB): every small str, int and
float carries a ~30-50 byte object header. Each entry also costs ~300 B of its own (key,
entry record, LRU slot), so a product entry measured ~855 B of RSS, **~4x** its estimate.
``max_bytes`` therefore bounds the serialized volume; budget the process's RSS at 2.5-4x
``max_bytes`` (the smaller the payloads, the higher the factor).
"""

from __future__ import annotations

import pickle
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson


def estimate_size(value: Any) -> int:
    """A cheap size estimate for ``value`` in bytes: the length of its JSON (orjson), else
    of its pickle, else ``sys.getsizeof`` (shallow). See the module doc for how it
    compares with the real in-memory size."""
    try:
        return len(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
    except TypeError:
        try:
            return len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception:
            return sys.getsizeof(value)


@dataclass(slots=True)
class L1Entry:
    """One L1 entry: the value, when it expires (monotonic clock), and L2 metadata for XFetch."""

    value: Any
    expires_at: float
    l2_expires_at: float = 0.0  # wall clock; 0 = unknown
    delta: float = 0.0  # seconds the loader took
    size: int = 0  # estimated bytes (see the module doc); 0 when the cache is not bounded by bytes
    tags: tuple[str, ...] = ()
    seq: int = 0  # the L2 invalidation sequence its load began at (0: unknown)


class LRUCache:
    """A bounded LRU with per-entry TTL.

    ``max_entries`` bounds the number of entries; ``max_bytes`` (optional) bounds the sum
    of their estimated sizes (see the module doc). Whichever is hit first evicts, least
    recently *used* first. A value whose estimate alone exceeds ``max_bytes`` is not stored
    (counted in ``oversize``). ``clock`` is injectable so tests can move time.

    Entries may carry tags (``set(..., tags=...)``); :meth:`delete_tags` drops every entry
    carrying one, from an index that lives and dies with the entries (bounded with them).
    """

    def __init__(self, max_entries: int = 10_000, *, max_bytes: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries={max_entries!r} must be an int >= 1; to disable L1 pass l1_max_entries=0 "
                             "to MultiLevelCache instead")
        if max_bytes is not None and (not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 1):
            raise ValueError(f"max_bytes={max_bytes!r} must be an int >= 1 (estimated bytes, e.g. 64 * 2**20) "
                             "or None for no byte bound")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._data: OrderedDict[str, L1Entry] = OrderedDict()
        self._by_tag: dict[str, set[str]] = {}
        self.bytes = 0  # sum of the entries' estimated sizes
        self.evictions = 0
        self.expirations = 0
        self.oversize = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: str) -> bool:
        return self.get_entry(key) is not None

    def get_entry(self, key: str) -> L1Entry | None:
        """The live entry for ``key`` (marking it recently used), or None."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            self._drop(key)
            self.expirations += 1
            return None
        self._data.move_to_end(key)
        return entry

    def get(self, key: str, default: Any = None) -> Any:
        """The value for ``key``, or ``default`` if absent or expired."""
        entry = self.get_entry(key)
        return default if entry is None else entry.value

    def set(self, key: str, value: Any, ttl: float, *, l2_expires_at: float = 0.0, delta: float = 0.0,
            size: int | None = None, tags: Iterable[str] = (), seq: int = 0) -> bool:
        """Store ``value`` for ``ttl`` seconds, evicting least recently used entries while over a bound.

        ``size`` is the entry's estimated bytes (e.g. the length of its serialized form);
        when the cache is bounded by bytes and ``size`` is None, :func:`estimate_size`
        computes it. Returns False (and drops any older value of ``key``) if the entry
        alone is larger than ``max_bytes``.
        """
        if ttl <= 0:
            raise ValueError(f"ttl={ttl!r} must be > 0 seconds")
        if size is None:
            size = estimate_size(value) if self.max_bytes is not None else 0
        elif size < 0:
            raise ValueError(f"size={size!r} must be >= 0 bytes (the entry's estimated size)")
        data = self._data
        self._drop(key)
        if self.max_bytes is not None and size > self.max_bytes:
            self.oversize += 1
            return False
        entry_tags = tuple(tags)
        data[key] = L1Entry(value, self._clock() + ttl, l2_expires_at, delta, size, entry_tags, seq)
        for tag in entry_tags:
            self._by_tag.setdefault(tag, set()).add(key)
        self.bytes += size
        max_bytes = self.max_bytes
        while len(data) > self.max_entries or (max_bytes is not None and self.bytes > max_bytes):
            self._drop(next(iter(data)))
            self.evictions += 1
        return True

    def _drop(self, key: str) -> L1Entry | None:
        """Remove ``key`` and its tag index entries; the entry, or None if absent."""
        entry = self._data.pop(key, None)
        if entry is None:
            return None
        self.bytes -= entry.size
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]
        return entry

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was present."""
        return self._drop(key) is not None

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove every key in ``keys``; returns how many were present."""
        return sum(self.delete(key) for key in keys)

    def delete_tags(self, tags: Iterable[str]) -> int:
        """Remove every entry carrying any of ``tags``; returns how many were present."""
        doomed = set().union(*(self._by_tag.get(tag, ()) for tag in tags))
        return self.delete_many(doomed)

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix`` (a local scan: L1 is small and in memory)."""
        doomed = [key for key in self._data if key.startswith(prefix)]
        return self.delete_many(doomed)

    def clear(self) -> None:
        """Remove everything."""
        self._data.clear()
        self._by_tag.clear()
        self.bytes = 0
