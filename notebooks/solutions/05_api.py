"""Reference solutions for the exercises of notebook 05."""

from perf.load import time_breakdown

# time_breakdown(run) of the slowed server: /products (list) has most of its server time in `app`
# (neither PostgreSQL nor Redis); its flame graph shows format_listing wide above list_products.
BOTTLENECK = {"route": "GET /products", "phase": "app", "function": "format_listing"}


def db_share(result):
    """Database time over client latency, each endpoint weighted by how many responses it had."""
    breakdown = time_breakdown(result)
    counts = [result.histograms[endpoint].count for endpoint in breakdown.index]
    db = sum(ms * n for ms, n in zip(breakdown["db_ms"], counts))
    client = sum(ms * n for ms, n in zip(breakdown["client_ms"], counts))
    return db / client
