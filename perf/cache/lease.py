"""The load lease: one Redis key per cache key, taken by one random token for a bounded time.

Every rule about leases lives here, in Python and in the Lua the cache's scripts are built
from, so a rule cannot change in one place and not the other:

* **take**: ``SET key token NX PX lease``: one holder at a time, and the lease expires on
  its own if its holder dies, so a crashed worker never blocks a key for longer than
  ``lease`` seconds;
* **release**: compare-and-delete, so a slow holder never deletes a lease that has already
  passed to someone else (its own expired, another took it).

:class:`RedisLease` runs them as commands of their own; the L2 cache
(:class:`~perf.cache.redis_cache.RedisCache`) holds one and runs the same rules inside its
read script (:data:`TAKE_LUA`: a miss takes the lease in the round trip that found the miss)
and its store script (:data:`RELEASE_LUA`: the store is refused unless the lease is still
this load's, and releases it).
"""

from __future__ import annotations

import secrets

import redis.asyncio as redis

#: ``take_lease(key, token, ms)``: truthy if ``token`` now holds the lease on ``key`` for ``ms``.
TAKE_LUA = """
local function take_lease(key, token, ms)
  return redis.call('SET', key, token, 'NX', 'PX', ms)
end
"""

#: ``release_lease(key, token)``: 1 if ``token`` held the lease on ``key`` (now released), else 0.
RELEASE_LUA = """
local function release_lease(key, token)
  if redis.call('GET', key) == token then return redis.call('DEL', key) end
  return 0
end
"""

_RELEASE = RELEASE_LUA + "return release_lease(KEYS[1], ARGV[1])\n"


class RedisLease:
    """Leases in Redis: keys ``prefix + name``, random tokens, ``lease`` seconds at most.

    >>> leases = RedisLease(client, lease=5.0, prefix="products:meta:lock:")
    >>> token = leases.new_token()
    >>> if await leases.acquire(leases.key("page:1"), token):
    ...     await leases.release(leases.key("page:1"), token)
    """

    def __init__(self, client: redis.Redis, *, lease: float = 5.0, prefix: str = "") -> None:
        if lease <= 0:
            raise ValueError(f"lease={lease!r} must be > 0 seconds: longer than your slowest loader (e.g. 10)")
        self.client = client
        self.lease = lease
        self.prefix = prefix
        self._release = client.register_script(_RELEASE)

    @property
    def lease_ms(self) -> int:
        """The lease in milliseconds, as ``PX`` takes it (at least 1)."""
        return max(int(self.lease * 1000), 1)

    def key(self, name: str) -> str:
        """The Redis key of the lease on ``name``."""
        return self.prefix + name

    @staticmethod
    def new_token() -> str:
        """A random token naming one holder of a lease."""
        return secrets.token_hex(8)

    async def acquire(self, key: str, token: str) -> bool:
        """Try once to take the lease on ``key`` for ``token``; False if someone else holds it.

        If this call fails (a timeout), Redis may still run the ``SET`` later: the caller
        should then release ``token`` once Redis answers, or it holds a lease nobody uses.
        """
        return bool(await self.client.set(key, token, nx=True, px=self.lease_ms))

    async def release(self, key: str, token: str) -> bool:
        """Release the lease if ``token`` still holds it; True if released."""
        return bool(await self._release(keys=[key], args=[token]))
