"""L2: a namespaced Redis cache on ``redis.asyncio``, with TTLs, tags and versions.

Key layout for ``namespace="products"``::

    products:v3:<key>            an entry (v3 = the namespace version, see bump_version)
    products:meta:version        the namespace version (INCR to invalidate everything)
    products:meta:tag:<tag>      a SET of entry keys carrying that tag
    products:meta:lock:<key>     a single-flight lease

Each entry is ``struct(expires_at, delta) + serialized value``: the wall-clock expiry
and the loader's duration ride along so any process can apply XFetch.

``delete("products:*")`` (the seed's invalidation) deletes nothing: ``DEL`` takes key
*names*, not patterns. Patterns need :meth:`RedisCache.clear` (``SCAN`` + ``UNLINK`` in
batches; never ``KEYS``, which blocks the server while it walks every key), and tags
avoid scanning altogether. Every Redis write of the multi-level cache goes through a
method here (entries, tags, deletes, versions, invalidation messages). Errors from Redis
propagate: :class:`~perf.cache.guard.RedisGuard` decides whether to fail open.
"""

from __future__ import annotations

import asyncio
import builtins
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
from perf.cache.serializers import OrjsonSerializer, Serializer

_HEADER = struct.Struct("!dd")
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-]+)*$")

# SET the entry, add it to each tag set, and make each tag set live at least as long.
# With ARGV[3] (a lease token) the last key is the load lease: released if that token holds it.
_SET_WITH_TAGS = """
local ttl = tonumber(ARGV[2])
local last = #KEYS
if ARGV[3] then last = last - 1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
for i = 2, last do
  redis.call('SADD', KEYS[i], KEYS[1])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
if ARGV[3] and redis.call('GET', KEYS[#KEYS]) == ARGV[3] then redis.call('DEL', KEYS[#KEYS]) end
return 1
"""

# A read that misses takes the load lease in the same round trip: {1, entry} on a hit,
# {0, 1} when this caller now holds the lease (KEYS[2], token ARGV[1], ARGV[2] ms), {0, 0}
# when another caller holds it.
_GET_OR_LEASE = """
local entry = redis.call('GET', KEYS[1])
if entry then return {1, entry} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0, 1} end
return {0, 0}
"""

# Collect the members of every tag set, UNLINK them and the sets;
# return {number of entries that existed, member, member, ...}.
_INVALIDATE_TAGS = """
local out = {0}
for i = 1, #KEYS do
  for _, member in ipairs(redis.call('SMEMBERS', KEYS[i])) do out[#out + 1] = member end
end
for i = 2, #out, 500 do out[1] = out[1] + redis.call('UNLINK', unpack(out, i, math.min(i + 499, #out))) end
if #KEYS > 0 then redis.call('UNLINK', unpack(KEYS)) end
return out
"""


@dataclass(slots=True)
class L2Entry:
    """A value read from Redis with its metadata."""

    value: Any
    expires_at: float  # wall clock (time.time())
    delta: float  # seconds the loader took

    def time_to_expire(self, now: float | None = None) -> float:
        """Seconds until this entry expires in Redis."""
        return self.expires_at - (time.time() if now is None else now)


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
    object owns and closes in :meth:`close`.
    """

    def __init__(self, client: redis.Redis, *, namespace: str = "cache",
                 serializer: Serializer | None = None, owns_client: bool = False) -> None:
        self.client = client
        self.namespace = validate_namespace(namespace)
        self.serializer: Serializer = serializer or OrjsonSerializer()
        self._prefix = ""
        self.version = 0
        self._owns_client = owns_client
        self._set_with_tags = client.register_script(_SET_WITH_TAGS)
        self._get_or_lease = client.register_script(_GET_OR_LEASE)
        self._invalidate_tags = client.register_script(_INVALIDATE_TAGS)

    @classmethod
    def from_url(cls, url: str, *, namespace: str = "cache", serializer: Serializer | None = None,
                 timeout: float = 0.25, max_connections: int = 32) -> RedisCache:
        """A cache with its own client (see :func:`create_redis_client`)."""
        return cls(create_redis_client(url, timeout=timeout, max_connections=max_connections), namespace=namespace,
                   serializer=serializer, owns_client=True)

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
        """The Redis key of the set holding the entries tagged ``tag``."""
        return f"{self.namespace}:meta:tag:{tag}"

    def lock_key(self, key: str) -> str:
        """The Redis key of the single-flight lease for ``key``."""
        return f"{self.namespace}:meta:lock:{key}"

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
        """``header(expires_at, delta) + serializer.dumps(value)``."""
        return _HEADER.pack(time.time() + ttl, delta) + self.serializer.dumps(value)

    def decode(self, data: bytes) -> L2Entry:
        """Inverse of :meth:`encode`; raises :class:`SerializationError` on bad bytes."""
        if len(data) < _HEADER.size:
            raise SerializationError(f"cached entry has {len(data)} bytes, shorter than its {_HEADER.size}-byte header")
        expires_at, delta = _HEADER.unpack_from(data)
        return L2Entry(self.serializer.loads(memoryview(data)[_HEADER.size:].tobytes()), expires_at, delta)

    # reads -----------------------------------------------------------------------------
    async def get_raw(self, full_key: str) -> bytes | None:
        """The bytes stored at ``full_key`` (already namespaced), or None."""
        return cast(bytes | None, await self.client.get(full_key))

    async def get(self, key: str) -> L2Entry | None:
        """The entry for ``key``, or None. Raises :class:`SerializationError` on undecodable bytes."""
        data = await self.get_raw(self.full_key(key))
        return None if data is None else self.decode(data)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Values of the keys present, in one ``MGET`` round trip (undecodable ones are left out)."""
        keys = list(keys)
        if not keys:
            return {}
        found: dict[str, Any] = {}
        values = cast(list[bytes | None], await self.client.mget([self.full_key(k) for k in keys]))
        for key, data in zip(keys, values, strict=True):
            if data is not None:
                try:
                    found[key] = self.decode(data).value
                except SerializationError:
                    continue
        return found

    # writes ----------------------------------------------------------------------------
    async def set(self, key: str, value: Any, ttl: float, *, tags: Iterable[str] = (), delta: float = 0.0) -> None:
        """Store ``value`` for ``ttl`` seconds, tagged with ``tags`` (one round trip either way)."""
        await self.store(self.full_key(key), value, ttl, tags=tags, delta=delta)

    async def store(self, full_key: str, value: Any, ttl: float, *, tags: Iterable[str] = (),
                    delta: float = 0.0, encoded: bytes | None = None, release: tuple[str, str] | None = None) -> None:
        """Like :meth:`set` for an already namespaced ``full_key``; ``encoded`` is
        ``encode(value, ttl, delta)`` when the caller already has it. ``release``: a load
        lease ``(lock_key, token)`` from :meth:`get_or_lease`, released in the same round trip."""
        if ttl <= 0:
            raise ValueError(f"ttl={ttl!r} must be > 0 seconds")
        data = self.encode(value, ttl, delta) if encoded is None else encoded
        px = max(int(ttl * 1000), 1)
        tag_keys = [self.tag_key(t) for t in tags]
        if release is not None:
            await self._set_with_tags(keys=[full_key, *tag_keys, release[0]], args=[data, px, release[1]])
        elif tag_keys:
            await self._set_with_tags(keys=[full_key, *tag_keys], args=[data, px])
        else:
            await self.client.set(full_key, data, px=px)

    async def get_or_lease(self, full_key: str, token: str, lease: float) -> tuple[bytes | None, bool]:
        """``(entry bytes, False)`` on a hit; on a miss ``(None, True)`` if ``token`` now holds the load
        lease on ``full_key`` (:meth:`lock_key`, for ``lease`` seconds), ``(None, False)`` if another does.

        One round trip where a read, a lease and a re-read took three. If this call fails (a
        timeout), Redis may still take the lease later: the caller then releases ``token``
        once Redis answers.
        """
        found, payload = await self._get_or_lease(keys=[full_key, self.lock_key(full_key)],
                                                  args=[token, max(int(lease * 1000), 1)])
        if found:
            return cast(bytes, payload), False
        return None, bool(payload)

    async def unlink(self, *full_keys: str) -> int:
        """Delete already namespaced keys (memory freed in the background); returns how many existed."""
        return int(await self.client.unlink(*full_keys)) if full_keys else 0

    async def publish(self, payload: bytes) -> int:
        """Send ``payload`` on this namespace's invalidation :attr:`channel`; returns how many received it."""
        return int(await self.client.publish(self.channel, payload))

    async def set_many(self, mapping: Mapping[str, Any], ttl: float) -> None:
        """Store several values in one pipelined round trip."""
        if ttl <= 0:
            raise ValueError(f"ttl={ttl!r} must be > 0 seconds")
        async with self.client.pipeline(transaction=False) as pipe:
            for key, value in mapping.items():
                pipe.set(self.full_key(key), self.encode(value, ttl), px=max(int(ttl * 1000), 1))
            await pipe.execute()

    async def delete(self, key: str) -> bool:
        """Delete ``key``; True if it existed."""
        return bool(await self.client.unlink(self.full_key(key)))

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete several keys in one round trip; returns how many existed."""
        return await self.unlink(*(self.full_key(k) for k in keys))

    async def clear(self, pattern: str = "*", *, batch: int = 500) -> int:
        """Delete every entry (of any version) whose key matches the glob ``pattern``.

        ``SCAN`` walks the keyspace incrementally and ``UNLINK`` frees memory in the
        background, ``batch`` keys at a time, so the server never blocks. Returns the count.
        """
        if batch < 1:
            raise ValueError(f"batch={batch!r} must be >= 1 (e.g. 500)")
        deleted = 0
        pending: list[str] = []
        async for name in self.client.scan_iter(match=f"{self.namespace}:v*:{pattern}", count=batch):
            pending.append(name.decode() if isinstance(name, bytes) else name)
            if len(pending) >= batch:
                deleted += await self.unlink(*pending)
                pending.clear()
        if pending:
            deleted += await self.unlink(*pending)
        return deleted

    async def purge(self, *, batch: int = 500) -> int:
        """Delete everything under the namespace: entries of every version, tags, locks, the version."""
        deleted = 0
        async for name in self.client.scan_iter(match=f"{self.namespace}:*", count=batch):
            deleted += int(await self.client.unlink(name))
        return deleted

    async def get_many_pipelined(self, keys: Iterable[str]) -> dict[str, Any]:
        """Like :meth:`get_many` but with one GET per key sent in a single pipeline (one round trip)."""
        keys = list(keys)
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(self.full_key(key))
            results = cast(list[bytes | None], await pipe.execute())
        return {key: self.decode(data).value for key, data in zip(keys, results, strict=True) if data is not None}

    async def invalidate_tags(self, tags: Iterable[str]) -> tuple[int, list[str]]:
        """Delete every entry carrying any of ``tags`` (atomically, no scan).

        Returns ``(entries deleted, full keys that were tagged)``; the keys may include
        entries already expired or deleted, which other processes' L1 should drop anyway.
        """
        tag_keys = [self.tag_key(t) for t in tags]
        if not tag_keys:
            return 0, []
        deleted, *members = await self._invalidate_tags(keys=tag_keys)
        return int(deleted), [m.decode() if isinstance(m, bytes) else m for m in members]

    async def tag_members(self, tag: str) -> builtins.set[str]:
        """The full keys currently recorded under ``tag``."""
        members = cast(set[bytes], await self.client.smembers(self.tag_key(tag)))
        return {m.decode() for m in members}

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
