"""perf.cache.xfetch: the early-refresh rule."""

from __future__ import annotations

import math

import pytest

from perf.cache.xfetch import should_refresh_early


def test_refreshes_when_the_draw_reaches_time_to_expire() -> None:
    # -beta * delta * ln(1 - r): with r = 1 - e^-2 the left side is exactly 2 * beta * delta
    r = 1 - math.exp(-2)
    assert should_refresh_early(delta=1.0, time_to_expire=1.9, rand=lambda: r)
    assert not should_refresh_early(delta=1.0, time_to_expire=2.1, rand=lambda: r)
    assert should_refresh_early(delta=1.0, time_to_expire=3.9, beta=2.0, rand=lambda: r)


def test_edges() -> None:
    assert should_refresh_early(delta=0.0, time_to_expire=0.0)  # expired: always
    assert not should_refresh_early(delta=0.0, time_to_expire=5.0)  # unknown cost: never early
    assert not should_refresh_early(delta=5.0, time_to_expire=5.0, beta=0.0)
    with pytest.raises(ValueError, match="beta=-1"):
        should_refresh_early(delta=1.0, time_to_expire=1.0, beta=-1)


def test_probability_rises_near_expiry() -> None:
    draws = [i / 1000 for i in range(1000)]

    def share(tte: float) -> float:
        return sum(should_refresh_early(delta=0.1, time_to_expire=tte, rand=lambda d=d: d) for d in draws) / 1000

    assert share(0.01) > share(0.1) > share(0.3) > 0
    # P(refresh) = exp(-time_to_expire / (beta * delta))
    assert share(0.01) == pytest.approx(math.exp(-0.1), abs=0.01)
