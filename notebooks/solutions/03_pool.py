"""Reference solutions for the exercises of notebook 03."""


async def run_query(pool, x):
    """Borrow with ``async with``: the connection goes back whatever happens inside."""
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT 1 / $1::int", x)


async def bounded_fetch(pool, sql, seconds):
    """asyncpg's ``timeout=`` cancels the statement on the server, so the connection stays clean."""
    async with pool.acquire() as conn:
        return await conn.fetch(sql, timeout=seconds)
