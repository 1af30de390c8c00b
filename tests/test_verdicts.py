"""The verdict rules on hand-made inputs (the page on tiny real runs: tests/test_analysis.py)."""

import numpy as np
import pandas as pd
import pytest

from fmer.analysis import estimates as est
from fmer.analysis import verdicts as v
from fmer.config import ALGO_DEFAULTS


@pytest.mark.parametrize(("low", "high", "n", "threshold", "expected"), [
    (0.1, 0.5, 3, 0.0, v.SUPPORTS),
    (-0.5, -0.1, 3, 0.0, v.CONTRADICTS),
    (-0.1, 0.5, 3, 0.0, v.CANNOT_TELL),
    (-0.05, 0.2, 3, -0.1, v.SUPPORTS),  # non-inferiority margin
    (np.nan, np.nan, 0, 0.0, "cannot tell (n=0)"),
    (0.1, 0.1, 1, 0.0, v.CANNOT_TELL),  # one pair decides nothing
])
def test_generic_rule(low, high, n, threshold, expected):
    assert v.verdict(low, high, n, threshold) == expected


def test_all_of_and_multimodal_rules():
    assert v.all_of([v.SUPPORTS, v.SUPPORTS]) == v.SUPPORTS
    assert v.all_of([v.SUPPORTS, v.CONTRADICTS]) == v.CONTRADICTS
    assert v.all_of([v.SUPPORTS, v.CANNOT_TELL]) == v.CANNOT_TELL
    assert v.multimodal_verdict([True, True, True]) == v.SUPPORTS
    assert v.multimodal_verdict([False, False, False]) == v.CONTRADICTS
    assert v.multimodal_verdict([True, False, True]) == v.CANNOT_TELL
    assert v.multimodal_verdict([]) == "cannot tell (n=0)"
    assert v.multimodal_verdict([True]) == v.CANNOT_TELL


def _estimates(values: dict[str, list[float]], steps: int, env="Hopper-v5") -> pd.DataFrame:
    rows = [{"env": env, "variant": var, "seed": s, "step": steps, "return_mean": x,
             "wall_time_s": 10.0, "tasks_completed_mean": np.nan, "total_steps": steps}
            for var, xs in values.items() for s, x in enumerate(xs)]
    return est.cell_estimates(pd.DataFrame(rows))


def _row(values, claim, steps=1_000_000):
    empty = pd.DataFrame(columns=["env", "variant", "seed", "path", "status"])
    return v.verdict_rows(_estimates(values, steps), empty, "paper").set_index("claim").loc[claim]


def test_claims_at_the_papers_length_are_decided_by_the_rule():
    claim = "the tanh entropy correction helps"
    better = {"fmer": [110, 112, 114], "fmer-no-tanh": [100, 100, 100]}
    assert _row(better, claim)["verdict"] == v.SUPPORTS
    worse = {"fmer": [50, 60, 55], "fmer-no-tanh": [100, 101, 99]}
    assert _row(worse, claim)["verdict"] == v.CONTRADICTS
    mixed = {"fmer": [50, 160, 100], "fmer-no-tanh": [100, 100, 100]}
    assert _row(mixed, claim)["verdict"] == v.CANNOT_TELL
    assert "+12% [" in _row(better, claim)["numbers"]  # relative at the paper's length


def test_a_shorter_budget_cannot_test_a_performance_claim_and_shows_units():
    better = {"fmer": [110, 112, 114], "fmer-no-tanh": [100, 100, 100]}
    row = _row(better, "the tanh entropy correction helps", steps=20_000)
    assert row["verdict"] == v.NOT_TESTABLE
    assert "Hopper-v5: +12.0 [" in row["numbers"]  # the observation, in return units
    assert "20,000 steps; the paper's: 1,000,000" in row["note"]


def test_fmer_is_compared_with_sac_at_its_own_alpha_and_the_published_sac_is_beside():
    values = {"fmer": [100, 101, 102], v.SAC: [200, 199, 201], "sac": [50, 49, 51]}
    row = _row(values, "MuJoCo: FMER's returns are competitive with SAC's")
    assert row["verdict"] == v.CONTRADICTS  # decided by sac-fmer-alpha, not by sac
    assert "beside it, fmer − sac" in row["numbers"]


def test_the_compared_agents_differ_in_the_algorithm_only():
    assert v.confounds() == []
    ALGO_DEFAULTS["fmer"]["critic.lr"] = 1e-3  # a second [ours] difference would be named
    try:
        assert v.confounds() == ["critic.lr"]
    finally:
        del ALGO_DEFAULTS["fmer"]["critic.lr"]


def test_the_generic_rule_errs_at_its_nominal_rate():
    rates = v.error_rates(3, 1, reps=40_000)
    assert rates["wrong supports"] == pytest.approx(0.025, abs=0.004)
    assert v.error_rates(5, 1)["power at +1 spread"] > rates["power at +1 spread"]


def test_multimodality_row_reads_each_seeds_goals(tmp_path):
    rows = []
    for variant, goals in (("fmer", [0] * 50 + [2] * 50), ("sac", [1] * 100)):
        for seed in (0, 1):
            run = tmp_path / variant / f"seed{seed}"
            run.mkdir(parents=True)
            pd.DataFrame({"episode": range(100), "goal": goals}).to_csv(run / "goals.csv")
            rows.append({"env": "multigoal-2d", "variant": variant, "seed": seed,
                         "path": str(run), "status": "complete"})
    completeness = pd.DataFrame(rows)
    estimates = _estimates({"fmer": [1, 2], "sac": [1, 2]}, 20_000, env="multigoal-2d")
    row = v.verdict_rows(estimates, completeness, "mini").set_index("claim").loc[
        "FMER's policy is multimodal (multigoal-2d)"]
    assert row["verdict"] == v.SUPPORTS
    assert "seed 0: multimodal (reach 100%, 2 modes, goal entropy 0.69)" in row["numbers"]
    assert "sac: seed 0: not (reach 100%, 1 modes" in row["numbers"]
