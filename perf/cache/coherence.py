"""Which L1 entries a process may trust: the bookkeeping behind "no L1 read another worker may
have invalidated".

An L1 entry is a copy only this process holds; it stays right only while every invalidation
reaches the process. Three rules, each closing one hole:

* **Deaf means no L1.** A process hears invalidations on one or more *buses* (Redis pub/sub,
  PostgreSQL ``LISTEN``: :mod:`perf.cache.pg_invalidation`). While none is connected it
  serves and fills no L1 entry, and when it loses the last one (or any bus reconnects, having
  missed what was sent meanwhile) its L1 is cleared: no entry older than the outage survives.
* **A fill must not undo an invalidation that overtook it.** A read or load that began
  before an invalidation of one of its tags (or its key) arrived, and finishes after, does
  not fill L1: the message was already applied, so nothing would drop that copy. Each
  invalidation gets a local *epoch*; a fill carries the epoch it began at.
  A ``set`` announces the value it wrote (a digest of its bytes): a read it overtook that
  returned exactly that value is served, since what the message invalidates is what came
  before it (without this, every read racing a set's own message was a spurious miss).
* **A tag still being invalidated in Redis is not read from Redis** (:attr:`pending`): a
  message from another bus says the writer may not have reached Redis.

Bounded: the epochs of the last ``memory`` tags and keys are kept; a fill older than the
oldest forgotten one is refused (a miss, never a stale copy).
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping


def value_digest(encoded: bytes) -> str:
    """A short digest of a stored value's bytes: names, in an invalidation message, the value a set wrote."""
    return hashlib.blake2b(encoded, digest_size=8).hexdigest()


class L1Coherence:
    """Invalidation epochs, bus states and pending tags of one cache (see the module doc).

    >>> c = L1Coherence()
    >>> start = c.epoch
    >>> c.invalidated(["product:1"])
    >>> c.fresh_since(start, ["product:1"]), c.fresh_since(start, ["product:2"])
    (False, True)
    """

    def __init__(self, *, memory: int = 65_536) -> None:
        if memory < 1:
            raise ValueError(f"memory={memory!r} must be >= 1 (how many recent invalidations to remember)")
        self.epoch = 0
        self.memory = memory
        self.pending: Counter[str] = Counter()
        self._recent: OrderedDict[str, int] = OrderedDict()
        self._written: dict[str, str] = {}  # key -> digest of the value its last heard invalidation wrote
        self._forgotten = 0  # the newest epoch dropped from _recent
        self._cleared = 0  # the epoch of the last clear
        self._buses: dict[str, bool] = {}
        self._hearing = True

    @property
    def hearing(self) -> bool:
        """True if some bus is connected (or none is registered: a cache alone in its process)."""
        return self._hearing  # read on every L1 hit: kept up to date by bus(), not recomputed

    def bus(self, name: str, connected: bool, *, resumed: bool = True) -> bool:
        """Record bus ``name``'s state; True if L1 must be cleared now: no bus is heard any more, or
        this one came back after a gap in which it may have missed messages (``resumed``: a
        resubscription; False when only the process's own calls failed while it stayed subscribed)."""
        before, was = self.hearing, self._buses.get(name)
        self._buses[name] = connected
        self._hearing = any(self._buses.values())
        lost = before and not self.hearing
        back = connected and was is False and resumed
        if lost or back:
            self.cleared()
        return lost or back

    def invalidated(self, names: Iterable[str], *, written: Mapping[str, str] | None = None) -> None:
        """Tags or keys invalidated now: a fill that began earlier and carries one is refused, unless
        it holds the value this invalidation wrote (``written``: key -> digest of the new value)."""
        self.epoch += 1
        recent, digests = self._recent, self._written
        for name in names:
            recent.pop(name, None)
            recent[name] = self.epoch
            digests.pop(name, None)
        if written:
            digests.update(written)
        while len(recent) > self.memory:
            name, old = recent.popitem(last=False)
            digests.pop(name, None)
            self._forgotten = max(self._forgotten, old)

    def cleared(self) -> None:
        """Everything invalidated now (a version bump, a clear, a lost bus)."""
        self.epoch += 1
        self._cleared = self.epoch

    def hold(self, tags: Iterable[str]) -> None:
        """``tags`` are being invalidated in Redis by this process: entries carrying them are not trusted."""
        self.pending.update(tags)

    def release(self, tags: Iterable[str]) -> None:
        """The invalidation of ``tags`` in Redis is done (or queued behind a guard that reads nothing)."""
        for tag in tags:
            self.pending[tag] -= 1
            if self.pending[tag] <= 0:
                del self.pending[tag]

    def overtaken(self, start: int, names: Iterable[str], *, digest: str | None = None) -> bool:
        """Was a value read since epoch ``start``, carrying tags/keys ``names``, invalidated since
        (or is one of them still being invalidated)? Then it is not served: the caller loads.
        ``digest`` (of the value read): a key whose last invalidation wrote exactly it does not count."""
        if start < self._cleared or start < self._forgotten:
            return True
        recent, pending, written = self._recent, self.pending, self._written
        return any((recent.get(name, 0) > start and (digest is None or written.get(name) != digest))
                   or name in pending for name in names)

    def fresh_since(self, start: int, names: Iterable[str], *, digest: str | None = None) -> bool:
        """May a value read or loaded since epoch ``start``, carrying tags/keys ``names``, fill L1?"""
        return self.hearing and not self.overtaken(start, names, digest=digest)
