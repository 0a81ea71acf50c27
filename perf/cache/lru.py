"""L1: an in-process LRU bounded by entry count, with a TTL per entry.

Values are stored as the objects themselves (no copy, no decoding on a hit: that is
what makes L1 ~100x faster than Redis), so callers must treat cached values as
read-only. Expired entries are dropped when read and when the LRU evicts.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

_MISSING = object()


@dataclass(slots=True)
class L1Entry:
    """One L1 entry: the value, when it expires (monotonic clock), and L2 metadata for XFetch."""

    value: Any
    expires_at: float
    l2_expires_at: float = 0.0  # wall clock; 0 = unknown
    delta: float = 0.0  # seconds the loader took


class LRUCache:
    """A bounded LRU with per-entry TTL.

    ``max_entries`` bounds the size (least recently *used* is evicted first);
    ``clock`` is injectable so tests can move time.
    """

    def __init__(self, max_entries: int = 10_000, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries={max_entries!r} must be an int >= 1; to disable L1 pass l1_max_entries=0 "
                             "to MultiLevelCache instead")
        self.max_entries = max_entries
        self._clock = clock
        self._data: OrderedDict[str, L1Entry] = OrderedDict()
        self.evictions = 0
        self.expirations = 0

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
            del self._data[key]
            self.expirations += 1
            return None
        self._data.move_to_end(key)
        return entry

    def get(self, key: str, default: Any = None) -> Any:
        """The value for ``key``, or ``default`` if absent or expired."""
        entry = self.get_entry(key)
        return default if entry is None else entry.value

    def set(self, key: str, value: Any, ttl: float, *, l2_expires_at: float = 0.0, delta: float = 0.0) -> None:
        """Store ``value`` for ``ttl`` seconds, evicting the least recently used entry if full."""
        if ttl <= 0:
            raise ValueError(f"ttl={ttl!r} must be > 0 seconds")
        data = self._data
        data[key] = L1Entry(value, self._clock() + ttl, l2_expires_at, delta)
        data.move_to_end(key)
        while len(data) > self.max_entries:
            data.popitem(last=False)
            self.evictions += 1

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was present."""
        return self._data.pop(key, _MISSING) is not _MISSING

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove every key in ``keys``; returns how many were present."""
        pop = self._data.pop
        return sum(pop(key, _MISSING) is not _MISSING for key in keys)

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix`` (a local scan: L1 is small and in memory)."""
        doomed = [key for key in self._data if key.startswith(prefix)]
        return self.delete_many(doomed)

    def clear(self) -> None:
        """Remove everything."""
        self._data.clear()
