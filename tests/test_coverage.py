"""The coverage study of the intervals over seeds (paper/intervals.md): its key numbers, and
that the committed page is what the code gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from scipy import stats as sps

from fmer.analysis import coverage


def test_t_interval_covers_95_percent_of_normal_seeds_at_3_and_5():
    for n in (3, 5):
        assert coverage.coverage("normal", n, "t", trials=4000) == pytest.approx(0.95, abs=0.015)


def test_percentile_bootstrap_of_3_seeds_is_their_range_and_covers_three_quarters():
    x = coverage.samples("normal", 3, trials=300)
    low, high = coverage.intervals("bootstrap", x)
    # (to the rounding of a mean of three equal values)
    np.testing.assert_allclose(low, x.min(axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(high, x.max(axis=1), rtol=1e-12, atol=1e-12)
    assert coverage.coverage("normal", 3, "bootstrap", trials=2000) == pytest.approx(0.75,
                                                                                    abs=0.025)
    # skewed: 1 - q^3 - (1 - q)^3 with q = P(X < mean) = P(Z < 1/2) for exp(N(0, 1))
    expected = coverage.range_coverage(sps.norm.cdf(0.5), 3)
    assert expected == pytest.approx(0.64, abs=0.01)
    assert coverage.coverage("skewed", 3, "bootstrap", trials=2000) == pytest.approx(
        expected, abs=0.03)


def test_bimodal_seeds_defeat_both_intervals_at_3_seeds():
    # no interval from 3 seeds contains the mean when none (30%) or all (4%) take off
    assert coverage.coverage("bimodal", 3, "t", trials=4000) < 0.70


def test_committed_page_is_the_codes_and_the_labels_quote_it():
    committed = pd.read_csv(REPO / "paper" / "intervals.csv")
    t = committed[committed["method"] == "t"].reset_index(drop=True)
    assert set(committed["method"]) == set(coverage.METHODS)
    assert (t["trials"] == coverage.TRIALS).all()
    fresh = coverage.study(methods=("t",))
    pd.testing.assert_frame_equal(fresh, t)
    page = (REPO / coverage.PAGE).read_text()
    at3 = t[t["n"] == 3].set_index("population")["coverage"]
    for population, value in at3.items():
        assert f"| {population} | 3 | {100 * value:.1f}% |" in page
        assert f"{100 * value:.0f}% {population}" in coverage.label(3)
