# %% [markdown]
# # 02 · PostgreSQL: batch writes, chunked reads, EXPLAIN, indexes and N+1
#
# The database is often where web-service time goes, and it is often lost the same few
# ways: one round trip (and one commit) per row, pages read with an ever-growing `OFFSET`,
# a missing index nobody noticed, a query per item in a loop (N+1), and independent
# queries run one after the other. This notebook measures each on a real PostgreSQL
# with the product catalogue the API (notebook 05) serves.
#
# Everything here is implemented in `perf.db` (one module per idea: `schema`, `writes`,
# `reads`, `explain`, `indexes`, `queries`); the notebook only runs and measures it.
#
# **Before you start.** Nothing to run first: the notebook starts (or reuses) the embedded PostgreSQL and
# Redis itself. In run 20261205-025021-workbook (quick profile, the default; a 2-core machine shared with
# other work, load average ~5) it ran in **53 s**; the full profile took about **9 minutes** on a
# 2-core machine (measured before runs had ids). The profile is read once, when the
# kernel starts: to switch, start JupyterLab as `PERF_PROFILE=full python3 tasks.py lab`
# (or `quick`) and restart the kernel. Exercises with automatic checks are at the end.

# %% tags=["plumbing"]
import asyncpg
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from perf import charts, exercises
from perf.config import get_settings
from perf.measure import collect_machine_info
from perf.runs import current_run
from perf.services import ensure_services

current_run()  # this notebook's run: every chart below is recorded into it
settings = get_settings()
services = ensure_services(settings)
URLS = {"database_url": services.database_url, "redis_url": services.redis_url}  # for the exercises' checks
info = await collect_machine_info(database_url=services.database_url)
SCHEMA = "nb_db"  # this notebook's own schema: runs never collide with tests or other notebooks
PRODUCTS = settings.pick(100_000, 1_000_000)
print("profile:", settings.profile, "| products:", f"{PRODUCTS:,}")

# %% [markdown]
# ## The data
# `perf.db.schema` creates `categories`, `products` (price, `created_at`, description) and
# `product_images`, and generates reproducible rows from a seed, loaded with `COPY`.
# `ensure_seeded` skips the load when the schema already holds the same size and seed,
# so re-running the notebook starts in seconds.

# %%
from perf.db import ensure_seeded

admin = await asyncpg.connect(services.database_url)
await admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
await admin.close()
conn = await asyncpg.connect(services.database_url, server_settings={"search_path": SCHEMA})
seeded_now = await ensure_seeded(conn, products=PRODUCTS, categories=20, images_per_product=3, seed=0)
print("seeded just now" if seeded_now else "reused the data seeded by an earlier run")

# The sizes depend on the profile, so these counts are asserted, not compared as output.
counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ("categories", "products", "product_images")}
for table, count in counts.items():
    print(f"{table:<15} {count:>10,} rows")
assert counts == {"categories": 20, "products": PRODUCTS, "product_images": 3 * PRODUCTS}

# %% [markdown]
# ## 1 · Batch writes: how many round trips and commits per row?
# Five strategies from `perf.db.writes`, same interface, same rows, raced **interleaved**
# (`perf.db.demo_race.race_inserts`; each run starts from an empty table, untimed):
#
# * `row_by_row` — one `INSERT` per row, autocommit: a round trip **and a WAL flush** per row;
# * `rows_in_transaction` — one `INSERT` per row, one commit at the end;
# * `executemany` — one prepared statement, rows pipelined, a commit per 1,000 rows;
# * `unnest` — one `INSERT … SELECT FROM unnest($1::bigint[], $2::int[], …)` per batch;
# * `copy` — the `COPY` protocol (`copy_records_to_table`).

# %%
from perf.db import product_rows, race_inserts
from perf.measure import rate_summary

ROWS = settings.pick(2_000, 10_000)
inserts = await race_inserts(conn, product_rows(ROWS, seed=1), repeat=settings.pick(3, 5), warmup=1,
                             batch_size=1000)
rates = rate_summary(inserts.samples, work=ROWS, unit="rows/s")
rates["speedup_vs_row_by_row"] = inserts.summary()["speedup_vs_baseline"]
rates[["median", "q1", "q3", "speedup_vs_row_by_row"]].style.format(
    {"median": "{:,.0f}", "q1": "{:,.0f}", "q3": "{:,.0f}", "speedup_vs_row_by_row": "{:.1f}x"})

# %%
charts.bar_with_spread(rates, title=f"Inserting {ROWS:,} products", unit="", value_label="rows/s",
                       info=info, log=True)
plt.show()

# %%
def vs_rows(variant: str) -> str:
    return str(inserts.verdict(variant, "row_by_row", a=f"`{variant}`", b="row by row"))


display(Markdown(
    f"One `INSERT` per row in autocommit managed **{rates.loc['row_by_row', 'median']:,.0f} rows/s**: every row "
    f"pays a round trip and a commit, and a commit waits for the WAL to reach disk. Keeping the same "
    f"statements in one transaction removes the per-row flush ({vs_rows('rows_in_transaction')}); "
    f"`executemany` also stops waiting for each reply ({vs_rows('executemany')}); `unnest` sends a "
    f"whole batch as a few arrays in one statement ({vs_rows('unnest')}); `COPY` streams binary rows "
    f"with no per-row statement at all: **{rates.loc['copy', 'median']:,.0f} rows/s** ({vs_rows('copy')}). "
    f"Bulk loads belong in `COPY` (or `unnest` when you need "
    f"`ON CONFLICT`/`RETURNING`)."
))

# %% [markdown]
# ### A bad row rolls back its batch, and only its batch
# Each batch is its own transaction. Row 1,500 below has a NULL `name` (a NOT NULL
# column): batch 1 (rows 1,000–1,999) fails and is rolled back, batch 0 stays committed,
# and the error says exactly where to resume.

# %%
# NBVAL_CHECK_OUTPUT
from perf.db import PRODUCT_COLUMNS, BatchWriteError, insert_copy

await conn.execute("DROP TABLE IF EXISTS demo_writes")
await conn.execute("CREATE TABLE demo_writes (LIKE products INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
rows = product_rows(3_000, seed=2)
rows[1_500] = (rows[1_500][0], rows[1_500][1], None, *rows[1_500][3:])
try:
    await insert_copy(conn, "demo_writes", PRODUCT_COLUMNS, rows, batch_size=1_000)
except BatchWriteError as exc:
    print(exc)
    print("rows in the table:", await conn.fetchval("SELECT count(*) FROM demo_writes"))
    assert (exc.batch_index, exc.rows_written) == (1, 1_000)
else:
    raise AssertionError("the NULL name should have failed its batch")
_ = await conn.execute("DROP TABLE demo_writes")

# %% [markdown]
# ## 2 · Reading a big table in chunks: OFFSET vs keyset vs cursor
# `perf.db.reads` has three async generators with one interface. `LIMIT n OFFSET k` makes
# the server produce and discard `k` rows for every page; keyset (`WHERE id > $last ORDER
# BY id LIMIT n`) starts each page where the previous one ended, with an index range scan;
# a server-side cursor keeps one query open in a transaction and `FETCH`es `n` rows at a time.
# We read the whole `products` table with each and time every page.

# %%
from perf.db import page_growth, page_profile

CHUNK = settings.pick(500, 5_000)
profile = await page_profile(conn, "products", chunk_size=CHUNK, columns=("id", "name", "price", "created_at"))
profile["ms"] = profile["seconds"] * 1e3
# A rolling median over 5 pages hides the other processes' noise on a shared machine, not the trend.
profile["ms_smoothed"] = profile.groupby("reader")["ms"].transform(
    lambda ms: ms.rolling(5, center=True, min_periods=1).median())
charts.line_over(profile, x="page", y="ms_smoothed", hue="reader", title=f"Time per page of {CHUNK:,} rows",
                 xlabel="page number", ylabel="ms per page (rolling median of 5)", info=info)
plt.show()

# %%
paging, growth = await page_growth(conn, limit=100, repeat=settings.pick(9, 21))
totals = profile.groupby("reader")["seconds"].sum()
pages = profile.groupby("reader")["page"].max() + 1
offset_growth = paging.verdict("offset_last", "offset_first", a="the last OFFSET page", b="the first")
keyset_growth = paging.verdict("keyset_last", "keyset_first", a="the last keyset page", b="the first")
display(Markdown(
    f"Reading all {PRODUCTS:,} rows took **{totals['offset']:.2f} s with OFFSET**, {totals['keyset']:.2f} s with "
    f"keyset and {totals['cursor']:.2f} s with a cursor ({pages['offset']} pages each). By OFFSET, "
    f"page *k* makes the server produce and discard the *k* pages before it, so a full read does quadratic work. "
    f"Measured directly (interleaved, 100 rows a page), the **last** page by OFFSET took "
    f"**{growth['offset']:.0f}x** as long as the first (median of per-round ratios): {offset_growth}; by keyset "
    f"**{growth['keyset']:.2f}x**: {keyset_growth}. A cursor (not timed page by page here) also starts each "
    f"`FETCH` where the last ended, but holds a transaction "
    f"and a connection open for the whole read, so keyset is the choice for API pagination; OFFSET also "
    f"repeats or skips rows when rows are inserted meanwhile (see `tests/test_db_reads.py`)."
))

# %% [markdown]
# ### Memory: everything at once vs one chunk at a time
# The seed's `fetch_all()` reads every row into a list before the first one is used. We
# read growing slices of `products` three ways and record the **peak Python allocation**
# during each read (`perf.measure.peak_memory_async`, tracemalloc: what the read itself
# allocated, nothing else in the process); the consumer only counts rows, as an export or
# an aggregate would. Strategies are interleaved within each round.

# %%
from perf.db import read_memory

SIZES = settings.pick([2_000, 8_000, 20_000], [10_000, 100_000, 300_000, 1_000_000])
memory = await read_memory(conn, sizes=SIZES, chunk_size=1_000, repeat=3)  # a verdict needs >= 3 rounds
assert (memory.rows_read == memory.rows).all()
mem = memory.groupby(["strategy", "rows"], as_index=False)["python_peak_mib"].median()
charts.line_over(mem, x="rows", y="python_peak_mib", hue="strategy", title="Peak memory of a read",
                 xlabel="rows read", ylabel="peak Python allocation (MiB, median of rounds)", info=info)
plt.show()

from perf.measure import compare, trend

peak = mem.pivot(index="rows", columns="strategy", values="python_peak_mib")
small, large = SIZES[0], SIZES[-1]
at_large = memory[memory.rows == large].pivot(index="round", columns="strategy", values="python_peak_mib")
chunked_peak = compare(at_large["keyset chunks"].tolist(), at_large["fetch all"].tolist(), a="keyset chunks",
                       b="fetching all", words=("smaller", "larger"), paired=True)
keyset_mem = memory[memory.strategy == "keyset chunks"]
keyset_trend = trend(keyset_mem["rows"].tolist(), keyset_mem["python_peak_mib"].tolist(),
                     what="the keyset reader's peak", unit="MiB")
display(Markdown(
    f"Fetching all rows peaked at **{peak.loc[small, 'fetch all']:.1f} MiB** for {small:,} rows and "
    f"**{peak.loc[large, 'fetch all']:.1f} MiB** for {large:,} "
    f"(medians of {memory['round'].nunique()} rounds). Keyset chunks of 1,000 peaked at "
    f"**{peak.loc[large, 'keyset chunks']:.2f} MiB** "
    f"and the cursor at **{peak.loc[large, 'server-side cursor']:.2f} MiB** for {large:,} rows; "
    f"round by round at that size, {chunked_peak}. Across the sizes read, {keyset_trend}. "
    "A chunked reader holds one chunk at a time by construction; the verdicts say what this run could show of it."
))

# %% [markdown]
# ## 3 · EXPLAIN, and what an index changes
# `perf.db.plans.explain` runs `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` and returns a
# structured plan. ANALYZE *executes* the statement, so it always runs in a transaction that
# is rolled back, and anything but a single statement is refused:

# %%
# NBVAL_CHECK_OUTPUT
from perf.db import explain

before = await conn.fetchval("SELECT count(*) FROM product_images")
plan = await explain(conn, "DELETE FROM product_images WHERE product_id <= $1", 1_000)
print("plan root:", plan.root.node_type,
      "| rows it deleted (then rolled back):", f"{plan.root.children[0].actual_rows:,.0f}")
still_there = before == await conn.fetchval("SELECT count(*) FROM product_images")
print("rows still there:", still_there)
assert still_there
try:
    await explain(conn, "SELECT 1; DROP TABLE products")
except ValueError as exc:
    print("refused:", str(exc).split(";")[0])

# %% [markdown]
# The query: the next page of the catalogue **by creation date**, keyset style on the
# composite key `(created_at, id)` — what `read_keyset(..., key=("created_at", "id"))` sends.
# The schema has no index for that order, so `perf.db.indexes.compare_index` explains and
# times it, creates the index `CONCURRENTLY` (writes are not blocked), and does it again.

# %%
from perf.db import compare_index

middle = await conn.fetchrow("SELECT created_at, id FROM products ORDER BY id OFFSET $1 LIMIT 1", PRODUCTS // 2)
NEXT_PAGE = ("SELECT id, name, price, created_at FROM products "
             "WHERE (created_at, id) > ($1, $2) ORDER BY created_at, id LIMIT 100")
effect = await compare_index(conn, NEXT_PAGE, middle["created_at"], middle["id"], table="products",
                             columns=["created_at", "id"], name="products_created_at_id_idx",
                             repeat=settings.pick(5, 15), keep=True)
print("BEFORE\n" + effect.before.tree() + "\n\nAFTER\n" + effect.after.tree())

# %%
assert effect.before.seq_scanned, "without the index the planner must scan the table"
assert effect.after.indexes_used == ["products_created_at_id_idx"]
display(Markdown(
    f"Without the index PostgreSQL read all {PRODUCTS:,} rows "
    f"({effect.before.shared_hit + effect.before.shared_read:,} buffers) and sorted them to return 100: "
    f"**{effect.before_time.median * 1e3:.2f} ms**. With "
    f"`(created_at, id)` indexed the plan is an index range scan touching "
    f"{effect.after.shared_hit + effect.after.shared_read:,} buffers: **{effect.after_time.median * 1e3:.3f} ms** "
    f"(medians): "
    + str(compare(effect.after_time.samples, effect.before_time.samples, a="the query with the index",
                  b="without it", paired=False))
    + ". Estimated and actual rows are printed per node: when they "
    "disagree by orders of magnitude, run `ANALYZE` before blaming the plan."
))

# %% [markdown]
# ## 4 · N+1 vs one JOIN
# A product page needs the product, its category name and its image URLs. Fetching the
# products and then, per product, its category and its images is 1 + 2N queries;
# `perf.db.queries.get_products` does it in one query (JOIN + `array_agg`). Both return
# the same dicts.

# %%
from perf.db import get_products, get_products_n_plus_one
from perf.measure import compare_async

ids = list(range(1, 51))
assert await get_products(conn, ids) == await get_products_n_plus_one(conn, ids)
n_plus_one = await compare_async(
    {"N+1 (101 queries)": lambda: get_products_n_plus_one(conn, ids),
     "JOIN (1 query)": lambda: get_products(conn, ids)},
    warmup=2, repeat=settings.pick(15, 50))
charts.bar_with_spread(n_plus_one.summary(), title="50 products with category and images", unit="ms", info=info)
plt.show()

# %%
joined = n_plus_one.verdict("JOIN (1 query)", "N+1 (101 queries)", a="one JOIN", b="N+1")
summary = n_plus_one.summary()
display(Markdown(
    f"N+1 took **{summary.loc['N+1 (101 queries)', 'median'] * 1e3:.1f} ms** for 50 products, one JOIN "
    f"**{summary.loc['JOIN (1 query)', 'median'] * 1e3:.2f} ms** (medians): {joined}. Each of the 101 "
    f"queries is cheap for the server; the cost is 101 round trips through the driver and the event loop, "
    f"and their number grows with the page size (1 + 2N queries; this run timed N = 50 only)."
))

# %% [markdown]
# ## 5 · The list page: count + page, sequential vs concurrent
# The list endpoint needs the total count and one page. They are independent, so why not
# `asyncio.gather` them? On **one** asyncpg connection that fails: a connection runs one
# statement at a time.

# %%
# NBVAL_CHECK_OUTPUT
import asyncio

from perf.db import count_products, list_page, list_page_concurrent, list_products_keyset

# return_exceptions: the first query finishes, so the connection is idle again afterwards.
results = await asyncio.gather(count_products(conn), list_products_keyset(conn, limit=20), return_exceptions=True)
for result in results:
    if isinstance(result, Exception):
        print(f"{type(result).__name__}: {result}")
assert isinstance(results[1], asyncpg.InterfaceError) and "another operation is in progress" in str(results[1])

# %% [markdown]
# The fix is two connections from a pool: `list_page_concurrent(pool)` runs the count and
# the page on one connection each (the workbook's own pool is notebook 03; here asyncpg's).

# %%
pool = await asyncpg.create_pool(services.database_url, min_size=2, max_size=2,
                                 server_settings={"search_path": SCHEMA})
assert await list_page_concurrent(pool, limit=20) == await list_page(conn, limit=20)
CATEGORY = await conn.fetchval("SELECT min(id) FROM categories")
list_pages = await compare_async(
    {"sequential (1 connection)": lambda: list_page(conn, limit=20, category_id=CATEGORY),
     "concurrent (2 pooled)": lambda: list_page_concurrent(pool, limit=20, category_id=CATEGORY),
     "count alone": lambda: count_products(conn, category_id=CATEGORY),
     "page alone": lambda: list_products_keyset(conn, limit=20, category_id=CATEGORY)},
    warmup=3, repeat=settings.pick(30, 100))
charts.bar_with_spread(list_pages.summary(), title="List page of one category: count + page", unit="ms", info=info)
plt.show()

# %%
lp = list_pages.summary()["median"] * 1e3
overlap = list_pages.verdict("concurrent (2 pooled)", "sequential (1 connection)",
                             a="the concurrent page", b="the sequential one")
saving_at_best = min(lp["count alone"], lp["page alone"])
if overlap.kind == "faster":
    why = "the two queries overlap, so the page costs about the slower of the two instead of their sum"
elif overlap.kind == "inconclusive":
    why = "this run cannot tell them apart"
else:
    why = (f"the overlap cannot save more than the cheaper query ({saving_at_best:.2f} ms), and acquiring a "
           "second connection and scheduling two tasks costs about that much — parallelise only queries that "
           "each take a while")
display(Markdown(
    f"The count alone took **{lp['count alone']:.2f} ms** and the page alone **{lp['page alone']:.2f} ms**. "
    f"Sequential: **{lp['sequential (1 connection)']:.2f} ms**; concurrent on two pooled connections: "
    f"**{lp['concurrent (2 pooled)']:.2f} ms** (medians). {overlap.text[0].upper()}{overlap.text[1:]}: {why}. "
    f"Remember the cost either way: every concurrent request holds two connections."
))

# %% [markdown]
# ## 6 · Index report
# `pg_stat_user_indexes` counts how often each index was scanned. An index that is never
# scanned still costs space and slows every write; a big table read mostly by
# sequential scans may be missing one. (Counters accumulate across runs of this notebook.)

# %%
from perf.db import create_index, flush_stats, list_indexes, seq_scan_heavy_tables, unused_indexes

# An index added "just in case": nothing in this notebook ever queries by price.
await create_index(conn, "products", ["price"], name="products_price_idx")
await flush_stats(conn)
report = await list_indexes(conn)
display(report[["table", "index", "size", "scans", "tuples_read", "is_unique"]])
unused = await unused_indexes(conn)
heavy = await seq_scan_heavy_tables(conn, min_rows=10_000)
assert "products_price_idx" in set(unused["index"])
display(Markdown(
    "**Never scanned** (primary keys and unique constraints excluded, they enforce rules): "
    + ", ".join(f"`{row.index}` on `{row.table}` ({row.size})" for row in unused.itertuples())
    + ". Each one is written on every INSERT and UPDATE of its table for no reader. "
    + ("**Tables read mostly by sequential scans:** " + ", ".join(f"`{t}`" for t in heavy["table"])
       if len(heavy) else "No table with 10,000+ rows is read mostly by sequential scans: every big table "
       "here is reached through an index.")
))

# %% [markdown]
# ## Takeaways
# * Load in bulk with `COPY` (or `unnest`), in batches that commit or roll back as a unit.
# * Page with keyset on a unique, indexed key; OFFSET makes the server produce and discard every row before the page.
# * `EXPLAIN (ANALYZE, BUFFERS)` in a rolled-back transaction shows what the server does; add
#   the index the plan asks for (`CONCURRENTLY`), and drop the ones nobody scans.
# * Replace per-item queries with one JOIN.

# %%
display(Markdown(
    "* Independent queries on separate connections: in this run " + overlap.text
    + (": worth it when each query takes a while." if overlap.kind == "faster" else
       ": it pays only when each query takes long enough to hide the cost of a second connection.")
))

# %% [markdown]
# ## Exercises
# Edit each cell marked `# EXERCISE`, run it, then run the check under it: it runs your code
# against the real PostgreSQL and Redis (in a scratch schema and key prefix it drops
# afterwards) and answers with what passed, what failed and a hint. Reference solutions are in
# `notebooks/solutions/`; try first. `exercises.progress()` shows what you have done.

# %% [markdown]
# ### Exercise 02.index: find and add the missing index
# `exercises.SLOW_QUERY` (the 20 cheapest products above a price) scans the whole table. Read its
# plan with `explain()`, then write ONE `CREATE INDEX` statement that removes both the scan and the sort.

# %%
# EXERCISE 02.index: edit this cell, then run the check below
INDEX_SQL = ""  # e.g. "CREATE INDEX ... ON products (...)"

# %%
await exercises.check("02.index", INDEX_SQL, **URLS)

# %% [markdown]
# ### Exercise 02.one_query: turn an N+1 into one query
# The starter fetches each product, then its category, then its images: 1 + 3N statements. Return
# the same rows as `perf.db.queries.get_products` (ordered by id) in ONE statement.

# %%
# EXERCISE 02.one_query: edit this cell, then run the check below
async def products_with_images(conn, ids):
    rows = []
    for product_id in sorted(ids):
        p = await conn.fetchrow("SELECT id, name, price, category_id FROM products WHERE id = $1", product_id)
        if p is None:
            continue
        category = await conn.fetchval("SELECT name FROM categories WHERE id = $1", p["category_id"])
        urls = [r["url"] for r in await conn.fetch(
            "SELECT url FROM product_images WHERE product_id = $1 ORDER BY position, id", product_id)]
        rows.append({"id": p["id"], "name": p["name"], "price": p["price"], "category": category, "image_urls": urls})
    return rows

# %%
await exercises.check("02.one_query", products_with_images, **URLS)

# %% [markdown]
# ### Exercise 02.batch: batch a slow insert path
# The starter stores each row with its own `INSERT`: 5,000 rows, 5,000 statements and 5,000 commits.
# Make `insert_products(conn, rows)` store `rows` (`(name, category_id, price)` tuples) in `products`
# with **at most 3 statements**, and **all or nothing**: when one row is bad (a category that does not
# exist), no row of that call is stored and the error reaches the caller.

# %%
# EXERCISE 02.batch: edit this cell, then run the check below
async def insert_products(conn, rows):
    for name, category_id, price in rows:
        await conn.execute("INSERT INTO products (name, category_id, price) VALUES ($1, $2, $3)",
                           name, category_id, price)

# %%
await exercises.check("02.batch", insert_products, **URLS)

# %%
exercises.progress()

# %% tags=["plumbing"]
from perf.db import drop_index

for index in ("products_created_at_id_idx", "products_price_idx"):  # leave nb_db as seeded
    await drop_index(conn, index)
await pool.close()
await conn.close()
services.close()

# %% [markdown]
# ## This run against the previous one
# Every chart above also saved the numbers it shows into this run's folder
# (`build/runs/<run id>/02_db/`, one CSV per chart). This cell compares them with the
# previous run of this notebook, figure by figure (B/A), and marks a change only when it
# exceeds the noise of the repeats. `python3 tasks.py runs compare A B` does the same for any two runs.

# %%
from perf.runs import compare_with_previous

compare_with_previous("02_db")
