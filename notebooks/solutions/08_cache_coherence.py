"""Reference solutions for the exercises of notebook 08."""

import asyncio


async def update_price(shop, product_id, price):
    """Store the new price, then drop every cached page that shows the product, in every process."""
    async with shop.pool.acquire() as conn:
        category = await conn.fetchval(
            f"UPDATE {shop.schema}.catalog SET price = $2 WHERE id = $1 RETURNING category", product_id, price)
    # after the commit: invalidating before it would let a concurrent read cache the old row again
    await shop.cache.invalidate_tags(f"product:{product_id}", f"category:{category}")


class SingleFlight:
    """One loading task per key; every caller awaits it; it is forgotten when it ends."""

    def __init__(self):
        self.loading = {}

    async def run(self, key, loader):
        task = self.loading.get(key)
        if task is None:
            task = asyncio.ensure_future(loader())
            self.loading[key] = task
            task.add_done_callback(lambda _done: self.loading.pop(key, None))
        # shielded: a caller that gives up (cancelled) must not cancel the load the others wait for
        return await asyncio.shield(task)
