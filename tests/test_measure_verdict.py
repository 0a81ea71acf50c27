"""The verdict API against known truth: seeded synthetic rounds where we know the answer.

Noise model: each round's time is ``base * weather[r] * lognormal(0, sigma)`` per variant,
``weather`` shared by both sides of a round (interleaving), plus an occasional 3x stall.
The machine's noise, measured on this 2-core machine shared by six engineers: an A/A
``compare_sync`` of a CPU-bound batch (30 interleaved rounds, three times) gave a per-round
sd of log(A/B) of 0.20, 0.25 and 0.34, i.e. sigma = 0.14-0.24 a side. At 0.18 a true 1.5x
needs about 15 rounds to be found 95% of the time (10 rounds: 87%, 5 rounds: 23%): the
price of never calling noise a direction. Fewer rounds answer "inconclusive", not wrong.
"""

from __future__ import annotations

import math
import random

import pytest

from perf.measure import Verdict, combine, compare, crossover, rank, tail, trend
from perf.measure.intervals import slope_interval, t_quantile

SIGMA = 0.18  # per side; see the module docstring
TRIALS = 1000


def _rounds(rng: random.Random, n: int, factor: float = 1.0, *, stalls: bool = True,
            sigma: float = SIGMA) -> tuple[list[float], list[float]]:
    a, b = [], []
    for _ in range(n):
        weather = math.exp(rng.gauss(0, 0.3))
        for side, scale in ((a, factor), (b, 1.0)):
            stall = 3.0 if stalls and rng.random() < 0.03 else 1.0
            side.append(1e-3 * scale * weather * stall * math.exp(rng.gauss(0, sigma)))
    return a, b


def test_t_quantiles_match_the_tables() -> None:
    # values from any Student's t table: the interval is only as right as these
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(0.995, 4) == pytest.approx(4.604, abs=1e-3)
    assert t_quantile(0.9975, 9) == pytest.approx(3.690, abs=1e-3)
    assert t_quantile(0.975, 1000) == pytest.approx(1.962, abs=1e-3)


@pytest.mark.parametrize("n", [3, 5, 10])
def test_pure_noise_never_gets_a_direction_in_99_percent_of_trials(n: int) -> None:
    rng = random.Random(2500 + n)
    directions = 0
    for _ in range(TRIALS):
        a, b = _rounds(rng, n)
        directions += compare(a, b).kind in ("faster", "slower")
    assert directions <= TRIALS // 100, f"{directions} of {TRIALS} noise-only trials got a direction (n={n})"


@pytest.mark.parametrize(("n", "sigma", "factor", "kind"), [(15, SIGMA, 1 / 1.5, "faster"),
                                                            (15, SIGMA, 1.5, "slower"),
                                                            (10, 0.14, 1 / 1.5, "faster")])
def test_a_true_one_and_a_half_x_is_found_in_95_percent_of_trials(n: int, sigma: float, factor: float,
                                                                  kind: str) -> None:
    rng = random.Random(7 + n)
    right = wrong = 0
    for _ in range(TRIALS):
        a, b = _rounds(rng, n, factor, stalls=False, sigma=sigma)
        verdict = compare(a, b)
        right += verdict.kind == kind
        wrong += verdict.kind in ("faster", "slower") and verdict.kind != kind
    assert right >= 0.95 * TRIALS, f"only {right} of {TRIALS} trials found the 1.5x (n={n})"
    assert wrong == 0


def test_fewer_than_three_rounds_never_give_a_direction() -> None:
    verdict = compare([1.0, 1.0], [10.0, 10.0], a="fast", b="slow")
    assert verdict.kind == "inconclusive" and "a direction needs 3" in str(verdict)
    assert compare([1.0, 1.01, 0.99], [10.0, 10.1, 9.9]).kind == "faster"


def test_wording_states_the_interval_and_the_rounds() -> None:
    faster = compare([1.0, 1.1, 0.9, 1.0, 1.05], [2.0, 2.1, 1.9, 2.05, 2.0], a="pool", b="connect")
    assert str(faster).startswith("pool was 1.9") and "x faster than connect (interval " in str(faster)
    assert "n=5 rounds" in str(faster) and faster.low < faster.estimate < faster.high < 1
    rates = compare([200, 210, 190], [100, 105, 95], a="pool", b="connect", larger_is_better=True)
    assert rates.kind == "faster"
    same = compare([1.0, 1.001, 0.999, 1.0], [1.0, 1.0, 1.0, 1.001])
    assert same.kind == "same" and str(same).startswith("no difference we can detect")
    overlap = compare([93, 88, 98], [102, 95, 104], a="PostgreSQL", b="Redis")  # notebook 00's run
    assert overlap.kind == "inconclusive" and "3 rounds, intervals overlap" in str(overlap)


def test_compare_names_the_bad_value() -> None:
    with pytest.raises(ValueError, match=r"b_samples\[1\] must be a positive"):
        compare([1.0, 1.0, 1.0], [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="paired=True needs one sample per round"):
        compare([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0], paired=True)


def test_unpaired_samples_use_each_sides_spread() -> None:
    rng = random.Random(3)
    a = [math.exp(rng.gauss(0, 0.1)) for _ in range(30)]
    b = [2 * math.exp(rng.gauss(0, 0.1)) for _ in range(20)]
    verdict = compare(a, b)
    assert verdict.kind == "faster" and verdict.low < 0.5 < verdict.high


def test_trend_tells_rising_from_levelled_and_refuses_three_noisy_points() -> None:
    # notebook 01's RSS series (3 sizes) cannot say "stopped": one degree of freedom
    assert trend([1, 2, 3], [3.98, 4.17, 4.56], what="RSS").kind == "inconclusive"
    rng = random.Random(1)
    xs = [x for x in range(1, 7) for _ in range(3)]
    rising = trend(xs, [4.0 + 0.2 * x + rng.gauss(0, 0.05) for x in xs], what="RSS", unit="MiB")
    assert rising.kind == "rising" and "still rising" in str(rising)
    flat = trend(xs, [4.0 + rng.gauss(0, 0.01) for _ in xs], what="RSS")
    assert flat.kind == "levelled" and "levelled off" in str(flat)
    assert slope_interval([1, 2, 3, 4], [4, 3, 2, 1]).high < 0


def test_crossover_only_where_the_curves_cross_in_the_data() -> None:
    bandwidths = [1, 10, 100]
    slower_everywhere = crossover(bandwidths, [[2.0, 2.1, 1.9]] * 3, [[1.0, 1.1, 0.9]] * 3,
                                  a="br-11", b="br-4", x_name="bandwidth", x_unit="Mbit/s")
    assert slower_everywhere.kind == "no crossing" and str(slower_everywhere).startswith("br-4 was faster")
    crosses = crossover(bandwidths, [[1.0, 1.1, 0.9], [2.0, 2.1, 2.0], [3.0, 3.1, 2.9]],
                        [[2.0, 2.1, 1.9], [2.0, 2.05, 2.0], [1.0, 1.1, 0.9]], a="A", b="B", x_name="x")
    assert crosses.kind == "crosses" and 1 < crosses.estimate < 100
    single_rounds = crossover(bandwidths, [[2.0]] * 3, [[1.0]] * 3)
    assert single_rounds.kind == "inconclusive"


def test_rank_ties_what_it_cannot_separate() -> None:
    rng = random.Random(5)
    samples = {name: [m * math.exp(rng.gauss(0, 0.02)) for _ in range(5)]
               for name, m in (("slow", 3.0), ("fast", 1.0), ("mid", 2.0))}
    ranked = rank(samples)
    assert ranked.kind == "ranked" and ranked.figures["order"] == ["fast", "mid", "slow"]
    one_round = rank({"a": [1.0], "b": [2.0], "c": [3.0]})
    assert one_round.kind == "inconclusive"
    tied = rank({"a": [1.0, 1.1, 0.9], "b": [1.05, 0.95, 1.0], "c": [3.0, 3.1, 2.9]})
    assert tied.kind == "partly ranked" and tied.figures["groups"][-1] == ["c"]


def test_combine_needs_the_interval_to_exclude_the_alternative() -> None:
    assert combine({"a": [2.0, 2.1, 1.9], "b": [3.0, 2.9, 3.1]}, [6.0, 6.1, 5.9]).kind == "multiply"
    assert combine({"a": [2.0, 2.1, 1.9], "b": [3.0, 2.9, 3.1]}, [4.0, 4.0, 4.0]).kind == "add"
    overlap = combine({"a": [2.7] * 4, "b": [4.1, 4.2, 4.0, 4.1]}, [8.0, 8.2, 7.9, 8.1])
    assert overlap.kind == "overlap"
    # notebook 05's case: product 1.36 and sum 1.34 are too close for 1.21 to pick either
    noisy = combine({"compression": [1.08, 0.98, 1.02], "keyset": [0.95, 1.04, 0.99], "cache": [1.3, 1.4, 1.25]},
                    [1.21, 1.3, 1.15])
    assert noisy.kind in ("inconclusive", "interfere") and noisy.kind != "multiply"
    assert combine({"a": [2.0]}, [2.0]).kind == "inconclusive"
    # four switches that each cost 30%: their gains "add up" below zero, the product is 0.24x
    losing = combine({k: [0.7, 0.72, 0.69] for k in "abcd"}, [0.25, 0.24, 0.26])
    assert losing.kind == "multiply" and "sum of -0.2" in str(losing)


def test_tail_from_rounds() -> None:
    assert tail([1.0, 1.1, 1.0], [5.0, 5.4, 5.1]).kind == "long tail"
    assert tail([1.0, 1.1, 1.0], [1.4, 1.5, 1.45]).kind == "short tail"
    assert tail([1.0], [5.0]).kind == "inconclusive"


def test_verdict_renders_as_its_sentence() -> None:
    verdict = compare([1.0, 1.1, 0.9], [3.0, 3.1, 2.9])
    assert isinstance(verdict, Verdict) and verdict._repr_markdown_() == str(verdict) and verdict.decided
