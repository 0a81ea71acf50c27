"""Exercise 05.recommend states the product's rules: on every case of known answer, what
``perf.load.analysis.recommend.recommend()`` says first maps to the label the check expects.
A change to the product's order or thresholds fails here, before the starter's text goes stale."""

from __future__ import annotations

import pytest

from perf.exercises.api import LABELS, NOTHING, RECOMMEND_CASES, Figures, product_label


@pytest.mark.parametrize(("text", "figures", "label"), RECOMMEND_CASES, ids=[c[0] for c in RECOMMEND_CASES])
def test_the_product_recommends_first_what_the_check_expects(text: str, figures: Figures, label: str) -> None:
    assert product_label(figures) == label, text


def test_every_label_is_some_case_s_answer() -> None:
    assert {label for _, _, label in RECOMMEND_CASES} == {*LABELS.values(), NOTHING}
