"""Reference solutions for the exercises of notebook 01."""

from perf.cache.warming import warm


async def update_price(shop, product_id, price):
    """Store the new price, then drop every cached page that shows the product, in every process."""
    async with shop.pool.acquire() as conn:
        category = await conn.fetchval(
            f"UPDATE {shop.schema}.catalog SET price = $2 WHERE id = $1 RETURNING category", product_id, price)
    # after the commit: invalidating before it would let a concurrent read cache the old row again
    await shop.cache.invalidate_tags(f"product:{product_id}", f"category:{category}")


async def warm_top(shop, ids):
    """Load the products concurrently and store them under the shop's keys and tags."""
    await warm(shop.cache, [shop.product_key(i) for i in ids],
               lambda key: shop.load_product(int(key.split(":")[1])),
               tags=lambda key: [key])
