"""Reference solutions for the exercises of notebook 01."""

import json
import time
from collections import OrderedDict

from perf.cache.warming import warm


class TwoLevelCache:
    """An LRU of (value, expiry) in front of Redis, holding JSON; counts what each get found."""

    def __init__(self, redis, prefix, max_entries=100):
        self.redis, self.prefix, self.max_entries = redis, prefix, max_entries
        self.l1 = OrderedDict()
        self.counts = {"l1_hits": 0, "l2_hits": 0, "misses": 0}

    async def get(self, key):
        entry = self.l1.get(key)
        if entry is not None and entry[1] > time.monotonic():
            self.l1.move_to_end(key)
            self.counts["l1_hits"] += 1
            return entry[0]
        self.l1.pop(key, None)  # expired, or absent
        data = await self.redis.get(self.prefix + key)
        if data is None:
            self.counts["misses"] += 1
            return None
        self.counts["l2_hits"] += 1
        ttl = await self.redis.ttl(self.prefix + key)  # keep it in L1 no longer than Redis does
        value = json.loads(data)
        self._keep(key, value, max(ttl, 0))
        return value

    async def set(self, key, value, ttl):
        await self.redis.set(self.prefix + key, json.dumps(value), ex=ttl)
        self._keep(key, value, ttl)

    def _keep(self, key, value, ttl):
        self.l1[key] = (value, time.monotonic() + ttl)
        self.l1.move_to_end(key)
        while len(self.l1) > self.max_entries:
            self.l1.popitem(last=False)  # the least recently used

    def stats(self):
        gets = sum(self.counts.values())
        return {**self.counts, "hit_ratio": (self.counts["l1_hits"] + self.counts["l2_hits"]) / gets if gets else 0.0}


async def warm_top(shop, ids):
    """Load the products concurrently and store them under the shop's keys and tags."""
    await warm(shop.cache, [shop.product_key(i) for i in ids],
               lambda key: shop.load_product(int(key.split(":")[1])),
               tags=lambda key: [key])
