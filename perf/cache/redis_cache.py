"""L2: a namespaced Redis cache on ``redis.asyncio``, with TTLs, tags and versions.

Key layout for ``namespace="products"``::

    products:v3:<key>            an entry (v3 = the namespace version, see bump_version)
    products:meta:version        the namespace version (INCR to invalidate everything)
    products:meta:seq            the invalidation sequence (one counter, no TTL)
    products:meta:tag:<tag>      the tag's version: the sequence number of its last invalidation
    products:meta:lock:<key>     a single-flight lease

An entry is ``b"<seq> <tag> <tag>...\n" + struct(expires_at, delta) + serialized value``:
the sequence its load began at and its tags (so Redis can check it), then the wall-clock
expiry and the loader's duration (so any process can apply XFetch).

**Tags are versions, not membership sets.** Invalidating a tag gives it the next sequence
number (O(tags), however many entries carry it); a read checks, in the same script, that
each of the entry's tags still exists at a version no newer than the entry's load
(:data:`perf.cache.lua.READ`), and a store is refused if a tag moved since its load began or its lease
was deleted (:data:`perf.cache.lua.STORE`): a reader that loaded the old row before a write committed can
no longer store it after the write's invalidation. Nothing needs every key of a tag, so an
evicted tag key costs misses, never a stale read, and Redis may run with ``maxmemory`` and
``volatile-lru`` (everything but the sequence and the namespace version has a TTL).

``delete("products:*")`` (the seed's invalidation) deletes nothing: ``DEL`` takes key
*names*, not patterns. Patterns need :meth:`RedisCache.clear` (``SCAN`` + ``UNLINK`` in
batches; never ``KEYS``, which blocks the server while it walks every key), and tags
avoid scanning altogether. Every Redis write of the multi-level cache goes through a
method here (entries, tags, deletes, versions, invalidation messages). Errors from Redis
propagate: :class:`~perf.cache.guard.RedisGuard` decides whether to fail open.
"""

from __future__ import annotations

import asyncio
import re
import struct
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from perf.cache.errors import SerializationError
from perf.cache.lease import RedisLease
from perf.cache.lua import DELETE, INVALIDATE, READ, STORE
from perf.cache.serializers import OrjsonSerializer, Serializer

_HEADER = struct.Struct("!dd")
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-]+)*$")

@dataclass(slots=True)
class L2Entry:
    """A value read from Redis with its metadata."""

    value: Any
    expires_at: float  # wall clock (time.time())
    delta: float  # seconds the loader took
    seq: int = 0  # the invalidation sequence its load began at
    tags: tuple[str, ...] = ()

    def time_to_expire(self, now: float | None = None) -> float:
        """Seconds until this entry expires in Redis."""
        return self.expires_at - (time.time() if now is None else now)


def validate_tags(tags: Iterable[str]) -> list[str]:
    """``tags`` as a list, each a non-empty str without whitespace (an entry lists its tags
    separated by spaces, and Redis checks them from there)."""
    checked = list(tags)
    for tag in checked:
        if not isinstance(tag, str) or not tag or any(c.isspace() for c in tag):
            raise ValueError(f"tag={tag!r} must be a non-empty str without whitespace, e.g. 'product:42'")
    return checked


def no_wait_retry() -> Retry:
    """One immediate retry on a broken connection, none on timeouts.

    After a Redis restart every pooled connection is dead and fails once; the immediate
    retry reconnects. A timeout is not retried: a slow Redis costs one timeout, not
    redis-py's default backoff loop of several.
    """
    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


def create_redis_client(url: str, *, timeout: float = 0.25, max_connections: int = 32) -> redis.Redis:
    """A ``redis.asyncio`` client for caching: short socket timeouts, :func:`no_wait_retry`, and
    at most ``max_connections`` connections.

    redis-py's default pool opens a new connection for every concurrent command: a burst
    of 100 uncoordinated misses opens 100 connections at once, and on a busy machine the
    connects time out. A blocking pool makes the burst queue (up to ``timeout``) for a
    connection instead.
    """
    if timeout <= 0:
        raise ValueError(f"timeout={timeout!r} must be > 0 seconds (e.g. 0.25)")
    if max_connections < 1:
        raise ValueError(f"max_connections={max_connections!r} must be >= 1 (e.g. 32)")
    pool = BoundedConnectionPool.from_url(
        url, max_connections=max_connections, wait_timeout=timeout, socket_timeout=timeout,
        socket_connect_timeout=timeout, retry=no_wait_retry(), health_check_interval=0)
    return redis.Redis.from_pool(pool)


class BoundedConnectionPool(redis.ConnectionPool):
    """A connection pool that makes callers wait (up to ``wait_timeout``) when all
    ``max_connections`` are in use, instead of raising "Too many connections".

    redis-py's ``BlockingConnectionPool`` does the same but takes a condition variable and
    a timeout on *every* command (~15% of a GET here); a semaphore costs nothing until it
    is actually exhausted.
    """

    def __init__(self, *, wait_timeout: float, max_connections: int, **kwargs: Any) -> None:
        super().__init__(max_connections=max_connections, **kwargs)
        self._slots = asyncio.Semaphore(max_connections)
        self._wait_timeout = wait_timeout

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        """A connection, waiting up to ``wait_timeout`` for a free slot."""
        if self._slots.locked():
            try:
                async with asyncio.timeout(self._wait_timeout):
                    await self._slots.acquire()
            except TimeoutError as exc:
                raise RedisConnectionError(f"no Redis connection free within {self._wait_timeout}s "
                                           f"(max_connections={self.max_connections})") from exc
        else:
            await self._slots.acquire()
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except BaseException:
            self._slots.release()
            raise

    async def release(self, connection: Any) -> None:
        """Return ``connection`` and free its slot."""
        try:
            await super().release(connection)
        finally:
            self._slots.release()


def validate_namespace(namespace: str) -> str:
    """Check ``namespace`` holds only letters, digits, ``_.-`` and ``:`` separators (no glob characters)."""
    if not isinstance(namespace, str) or not _NAMESPACE_RE.match(namespace):
        raise ValueError(f"namespace={namespace!r} must match {_NAMESPACE_RE.pattern} (e.g. 'products'); "
                         "glob characters like * ? [ ] would break SCAN-based clearing")
    return namespace


class RedisCache:
    """The L2 cache: namespaced, versioned, tagged entries in Redis.

    ``client`` is borrowed (the caller closes it); :meth:`from_url` creates one this
    object owns and closes in :meth:`close`. ``lease``: seconds a load lease lasts at most
    (:attr:`leases`, the :class:`~perf.cache.lease.RedisLease` every lease rule comes from).
    """

    def __init__(self, client: redis.Redis, *, namespace: str = "cache",
                 serializer: Serializer | None = None, owns_client: bool = False, lease: float = 5.0) -> None:
        self.client = client
        self.namespace = validate_namespace(namespace)
        self.leases = RedisLease(client, lease=lease, prefix=f"{self.namespace}:meta:lock:")
        self.serializer: Serializer = serializer or OrjsonSerializer()
        self._prefix = ""
        self.version = 0
        self._owns_client = owns_client
        self._read = client.register_script(READ)
        self._store = client.register_script(STORE)
        self._invalidate = client.register_script(INVALIDATE)
        self._delete = client.register_script(DELETE)

    @classmethod
    def from_url(cls, url: str, *, namespace: str = "cache", serializer: Serializer | None = None,
                 timeout: float = 0.25, max_connections: int = 32, lease: float = 5.0) -> RedisCache:
        """A cache with its own client (see :func:`create_redis_client`)."""
        return cls(create_redis_client(url, timeout=timeout, max_connections=max_connections), namespace=namespace,
                   serializer=serializer, owns_client=True, lease=lease)

    async def close(self) -> None:
        """Close the client if this object created it."""
        if self._owns_client:
            await self.client.aclose()

    async def __aenter__(self) -> RedisCache:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # keys ------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        """The namespace version entries are read and written under (see :meth:`bump_version`)."""
        return self._version

    @version.setter
    def version(self, value: int) -> None:
        self._version = value
        self._prefix = f"{self.namespace}:v{value}:"  # full_key runs on every read: build the prefix once

    def full_key(self, key: str) -> str:
        """The Redis key of entry ``key`` under the current version."""
        return self._prefix + key

    def tag_key(self, tag: str) -> str:
        """The Redis key holding ``tag``'s version (the sequence number of its last invalidation)."""
        return f"{self.namespace}:meta:tag:{tag}"

    @property
    def seq_key(self) -> str:
        """The Redis key holding the invalidation sequence (tag versions and loads are stamped from it)."""
        return f"{self.namespace}:meta:seq"

    @property
    def version_key(self) -> str:
        """The Redis key holding the namespace version."""
        return f"{self.namespace}:meta:version"

    @property
    def channel(self) -> str:
        """The pub/sub channel carrying this namespace's invalidations."""
        return f"{self.namespace}:meta:invalidate"

    # encoding --------------------------------------------------------------------------
    def encode(self, value: Any, ttl: float, delta: float = 0.0) -> bytes:
        """``header(expires_at, delta) + serializer.dumps(value)`` (the store prepends the
        sequence and the tags)."""
        return _HEADER.pack(time.time() + ttl, delta) + self.serializer.dumps(value)

    def decode(self, data: bytes) -> L2Entry:
        """Inverse of the stored form (``b"<seq> <tags>\\n" + encode(...)``, or ``encode(...)``
        alone); raises :class:`SerializationError` on bad bytes."""
        seq, tags = 0, tuple[str, ...]()
        if data[:1].isdigit():
            line, newline, rest = data.partition(b"\n")
            words = line.split()
            if not newline or not words or not words[0].isdigit():
                raise SerializationError(f"cached entry starts with {line[:40]!r}, not '<seq> <tags>\\n'")
            seq, tags, data = int(words[0]), tuple(w.decode() for w in words[1:]), rest
        if len(data) < _HEADER.size:
            raise SerializationError(f"cached entry has {len(data)} bytes, shorter than its {_HEADER.size}-byte header")
        expires_at, delta = _HEADER.unpack_from(data)
        value = self.serializer.loads(memoryview(data)[_HEADER.size:].tobytes())
        return L2Entry(value, expires_at, delta, seq, tags)

    # reads -----------------------------------------------------------------------------
    async def read(self, full_key: str, token: str = "") -> tuple[bytes | None, bool, int]:
        """One round trip: ``(entry bytes, False, 0)`` if ``full_key`` holds a valid entry, else
        ``(None, leased, seq)``: ``seq`` is the invalidation sequence a load starting now
        passes to :meth:`store`, and with a ``token`` the miss also tried to take the load
        lease ``leases.key(full_key)`` (``leased``: it did; False: another caller holds it).

        An entry a tag invalidation made stale is unlinked here and read as a miss. If this
        call fails (a timeout), Redis may still take the lease later: the caller then
        releases ``token`` once Redis answers.
        """
        reply = await self._read(keys=[full_key, self.leases.key(full_key), self.seq_key],
                                 args=[self.tag_key(""), token, self.leases.lease_ms])
        if reply[0]:
            return cast(bytes, reply[1]), False, 0
        return None, bool(reply[1]), int(reply[2])

    async def get_raw(self, full_key: str) -> bytes | None:
        """The bytes stored at ``full_key`` (already namespaced) if its tags are still valid, or None."""
        return (await self.read(full_key))[0]

    async def get(self, key: str) -> L2Entry | None:
        """The valid entry for ``key``, or None. Raises :class:`SerializationError` on undecodable bytes."""
        data = await self.get_raw(self.full_key(key))
        return None if data is None else self.decode(data)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Values of the keys holding valid entries, with one ``MGET`` (undecodable ones are left out).

        Entries that carry tags are checked with a second ``MGET`` of their tags' versions:
        an entry valid then was valid at the first read too (versions only move forward).
        """
        keys = list(keys)
        if not keys:
            return {}
        values = cast(list[bytes | None], await self.client.mget([self.full_key(k) for k in keys]))
        return await self._valid(keys, values)

    async def get_many_pipelined(self, keys: Iterable[str]) -> dict[str, Any]:
        """Like :meth:`get_many` but with one ``GET`` per key sent in a single pipeline (one round trip)."""
        keys = list(keys)
        if not keys:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(self.full_key(key))
            values = cast(list[bytes | None], await pipe.execute())
        return await self._valid(keys, values)

    async def _valid(self, keys: list[str], values: list[bytes | None]) -> dict[str, Any]:
        """Decode ``values`` and keep those whose tags still exist at versions no newer than their load."""
        entries: dict[str, L2Entry] = {}
        for key, data in zip(keys, values, strict=True):
            if data is not None:
                try:
                    entries[key] = self.decode(data)
                except SerializationError:
                    continue
        tags = sorted({tag for entry in entries.values() for tag in entry.tags})
        if tags:
            raw = cast(list[bytes | None], await self.client.mget([self.tag_key(t) for t in tags]))
            versions = {tag: int(v) for tag, v in zip(tags, raw, strict=True) if v is not None}
            entries = {key: e for key, e in entries.items()
                       if all(versions.get(t, e.seq + 1) <= e.seq for t in e.tags)}
        return {key: entry.value for key, entry in entries.items()}

    # writes ----------------------------------------------------------------------------
    async def set(self, key: str, value: Any, ttl: float, *, tags: Iterable[str] = (), delta: float = 0.0) -> None:
        """Store ``value`` for ``ttl`` seconds, tagged with ``tags``, unconditionally (one round trip)."""
        await self.store(self.full_key(key), value, ttl, tags=tags, delta=delta)

    async def store(self, full_key: str, value: Any, ttl: float, *, tags: Iterable[str] = (),
                    delta: float = 0.0, encoded: bytes | None = None, since: int | None = None,
                    release: tuple[str, str] | None = None) -> bool:
        """Store an already namespaced ``full_key``; False if the store was refused.

        ``since``: the sequence the load began at (from :meth:`read`): the store is refused
        if any of ``tags`` was invalidated after it. ``release``: the load lease
        ``(leases.key(full_key), token)`` from :meth:`read`: released in the same round trip, and the
        store is refused if the token no longer holds it (a delete took it). Neither
        (``set``): stored unconditionally. ``encoded`` is ``encode(value, ttl, delta)`` when
        the caller already has it.
        """
        if ttl <= 0:
            raise ValueError(f"ttl={ttl!r} must be > 0 seconds")
        tags = validate_tags(tags)
        data = self.encode(value, ttl, delta) if encoded is None else encoded
        px = max(int(ttl * 1000), 1)
        prefix = (" " + " ".join(tags) + "\n").encode() if tags else b"\n"
        keys = [full_key, self.seq_key] + ([release[0]] if release is not None else [])
        args = [prefix + data, px, "" if since is None else since, self.tag_key(""),
                release[1] if release is not None else "", *tags]
        return bool(await self._store(keys=keys, args=args))

    async def unlink(self, *full_keys: str) -> int:
        """Delete already namespaced entries and their load leases (a load in flight then
        cannot store what it read before); returns how many entries existed."""
        existed = 0
        for start in range(0, len(full_keys), 500):  # Lua's unpack() has a stack limit
            batch = list(full_keys[start:start + 500])
            existed += int(await self._delete(keys=[*batch, *(self.leases.key(k) for k in batch)], args=[len(batch)]))
        return existed

    async def publish(self, payload: bytes) -> int:
        """Send ``payload`` on this namespace's invalidation :attr:`channel`; returns how many received it."""
        return int(await self.client.publish(self.channel, payload))

    async def set_many(self, mapping: Mapping[str, Any], ttl: float) -> None:
        """Store several untagged values unconditionally, in one pipelined round trip."""
        if ttl <= 0:
            raise ValueError(f"ttl={ttl!r} must be > 0 seconds")
        px = max(int(ttl * 1000), 1)
        async with self.client.pipeline(transaction=False) as pipe:
            for key, value in mapping.items():
                await self._store(keys=[self.full_key(key), self.seq_key],
                            args=[b"\n" + self.encode(value, ttl), px, "", self.tag_key(""), ""], client=pipe)
            await pipe.execute()

    async def delete(self, key: str) -> bool:
        """Delete ``key``; True if it existed."""
        return bool(await self.unlink(self.full_key(key)))

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete several keys in one round trip; returns how many existed."""
        return await self.unlink(*(self.full_key(k) for k in keys))

    async def clear(self, pattern: str = "*", *, batch: int = 500) -> int:
        """Delete every entry (of any version) whose key matches the glob ``pattern``.

        ``SCAN`` walks the keyspace incrementally and ``UNLINK`` frees memory in the
        background, ``batch`` keys at a time, so the server never blocks. Returns the count.
        Not race-proof against loads in flight (they may store afterwards): invalidate by
        tag or :meth:`bump_version` for that.
        """
        if batch < 1:
            raise ValueError(f"batch={batch!r} must be >= 1 (e.g. 500)")
        deleted = 0
        pending: list[str] = []
        async for name in self.client.scan_iter(match=f"{self.namespace}:v*:{pattern}", count=batch):
            pending.append(name.decode() if isinstance(name, bytes) else name)
            if len(pending) >= batch:
                deleted += int(await self.client.unlink(*pending))
                pending.clear()
        if pending:
            deleted += int(await self.client.unlink(*pending))
        return deleted

    async def purge(self, *, batch: int = 500) -> int:
        """Delete everything under the namespace: entries of every version, tags, locks, the version."""
        deleted = 0
        async for name in self.client.scan_iter(match=f"{self.namespace}:*", count=batch):
            deleted += int(await self.client.unlink(name))
        return deleted

    async def invalidate_tags(self, tags: Iterable[str]) -> int:
        """Make every entry carrying any of ``tags`` unreadable, and fail every store of a load
        that began before (atomically, O(tags), no scan). Returns the new sequence number.

        The entries themselves stay until their TTL (or eviction, or the next read of them,
        which unlinks them).
        """
        tag_keys = [self.tag_key(t) for t in validate_tags(tags)]
        return int(await self._invalidate(keys=[self.seq_key, *tag_keys]))

    async def tag_version(self, tag: str) -> int | None:
        """``tag``'s version (the sequence number of its last invalidation or first store), None if unknown."""
        raw = await self.client.get(self.tag_key(tag))
        return None if raw is None else int(raw)

    # versions --------------------------------------------------------------------------
    async def load_version(self) -> int:
        """Read the namespace version from Redis (0 if never bumped) and use it."""
        raw = await self.client.get(self.version_key)
        self.version = int(raw) if raw is not None else 0
        return self.version

    async def bump_version(self) -> int:
        """Increment the namespace version: every existing entry becomes unreachable at once
        (and expires by its TTL). Returns the new version."""
        self.version = int(await self.client.incr(self.version_key))
        return self.version
