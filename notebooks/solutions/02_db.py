"""Reference solutions for the exercises of notebook 02."""

# WHERE price >= $1 ORDER BY price: one b-tree on price finds the first matching row and
# walks the rest in order, so the LIMIT stops after 20 index entries.
INDEX_SQL = "CREATE INDEX products_price_idx ON products (price)"


async def products_with_images(conn, ids):
    """Every product, its category name and its image urls (by position), in one statement."""
    rows = await conn.fetch(
        """
        SELECT p.id, p.name, p.price, c.name AS category,
               coalesce(array_agg(i.url ORDER BY i.position) FILTER (WHERE i.id IS NOT NULL), '{}') AS image_urls
        FROM products p
        JOIN categories c ON c.id = p.category_id
        LEFT JOIN product_images i ON i.product_id = p.id
        WHERE p.id = ANY($1::bigint[])
        GROUP BY p.id, c.name
        ORDER BY p.id
        """, list(ids))
    return [dict(r) for r in rows]


async def insert_products(conn, rows):
    """One COPY: every row in one statement, and one statement is one transaction (all or nothing)."""
    await conn.copy_records_to_table("products", records=rows, columns=["name", "category_id", "price"])
