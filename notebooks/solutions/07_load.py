"""Reference solutions for the exercises of notebook 07."""

# p95 between the two builds (about 1 ms vs 100 ms), with room for a busy machine; and an error budget.
SLOS = ["p95<40ms", "errors<1%"]


def error_rate(result):
    """Everything scheduled that did not complete, over everything scheduled."""
    if result.scheduled == 0:
        return 0.0
    return (result.failed + result.timed_out + result.dropped) / result.scheduled
