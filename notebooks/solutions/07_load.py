"""Reference solutions for the exercises of notebook 07."""

# p95 between the two builds (about 1 ms vs 100 ms), with room for a busy machine; and an error budget.
SLOS = ["p95<40ms", "errors<1%"]


def error_rate(result):
    """Everything scheduled that did not complete, over everything scheduled."""
    if result.scheduled == 0:
        return 0.0
    return (result.failed + result.timed_out + result.dropped) / result.scheduled


def sustainable_rate(steps, slo_p99_ms):
    """The highest rate held by most of >= 3 rounds, with no failing rate below it (the knee)."""
    outcomes = {}
    for step in steps:
        passed = step["achieved_rps"] >= 0.95 * step["offered_rps"] and step["p99_ms"] < slo_p99_ms
        outcomes.setdefault(step["offered_rps"], []).append(passed)
    best = None
    for rate in sorted(outcomes):
        rounds = outcomes[rate]
        if sum(rounds) * 2 <= len(rounds):
            break  # most of this rate's rounds failed: no rate above it is the knee
        if len(rounds) >= 3:
            best = rate
    return best
