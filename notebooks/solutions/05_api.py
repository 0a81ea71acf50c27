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


def recommend_next(m):
    """The first rule that fires, in the order of perf.load.analysis.recommend.recommend()."""
    if m["client_bound"]:
        return "fix the load generator"  # the server's figures are a floor: nothing else can be read
    if m["error_rate"] > 0.01:
        return "fix errors"
    if m["cpu_per_worker"] is not None and m["cpu_per_worker"] >= 0.9:
        return "add a worker"
    if m["pool_wait_p99_ms"] is not None and m["pool_wait_p99_ms"] > 5:
        return "bigger pool"
    if m["hit_ratio"] is not None and m["hit_ratio"] < 0.8:
        return "cache more"
    if m["db_share"] >= 0.5:
        return "add an index / fewer queries"
    if m["app_share"] >= 0.5:
        return "trim the framework"
    return "nothing to do"
