"""A user's keys that every test session must leave alone.

The README lets ``REDIS_URL`` point at a user's own Redis, so no test may flush a database or
delete by a broad pattern. :class:`RedisSentinels` writes a few keys under names such a delete
would take (``customer:…``, ``demo:…``, ``cache:…``) in every database when the session starts,
and fails the session at its end if any is gone or changed.
"""

from __future__ import annotations

import uuid
from typing import Self

import redis
from redis.exceptions import ResponseError

PREFIXES = ("customer", "demo", "test", "api", "cache", "perf", "products", "t")


class RedisSentinels:
    """Sentinel keys in databases 0-15 of ``redis_url`` (those the server has), checked by :meth:`check`."""

    def __init__(self, redis_url: str) -> None:
        self.base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") >= 3 else redis_url
        self.tag = f"sentinel-{uuid.uuid4().hex[:8]}"
        self.written: dict[int, dict[str, bytes]] = {}

    def _client(self, db: int) -> redis.Redis:
        return redis.Redis.from_url(f"{self.base}/{db}", socket_timeout=5)

    def write(self) -> Self:
        for db in range(16):
            keys = {f"{prefix}:{self.tag}:{db}": f"a user's value in db {db}".encode() for prefix in PREFIXES}
            with self._client(db) as client:
                try:
                    client.mset(keys)  # type: ignore[arg-type]
                except ResponseError:  # a server configured with fewer databases
                    break
            self.written[db] = keys
        return self

    def missing(self) -> list[str]:
        """The sentinels that are gone or changed, as ``db/name``."""
        lost = []
        for db, keys in self.written.items():
            with self._client(db) as client:
                now = client.mget(list(keys))
            lost += [f"{db}/{name}" for (name, value), seen in zip(keys.items(), now, strict=True) if seen != value]
        return lost

    def remove(self) -> None:
        for db, keys in self.written.items():
            with self._client(db) as client:
                client.delete(*keys)

    def check(self) -> None:
        """Raise if a test deleted or changed a sentinel; remove them either way."""
        try:
            lost = self.missing()
        finally:
            self.remove()
        if lost:
            raise AssertionError(f"the tests deleted or changed keys they did not write (a user's keys, with "
                                 f"REDIS_URL on their own Redis): {lost[:10]}{' …' if len(lost) > 10 else ''}")
