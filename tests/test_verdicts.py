"""The verdict rules on hand-made inputs (the page on tiny real runs: tests/test_analysis.py)."""

import numpy as np
import pandas as pd
import pytest

from fmer.analysis import estimates
from fmer.analysis import verdicts as v
from fmer.multigoal import GOALS


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


def test_both_and_multimodal_rules():
    assert v.both(v.SUPPORTS, v.SUPPORTS) == v.SUPPORTS
    assert v.both(v.SUPPORTS, v.CONTRADICTS) == v.CONTRADICTS
    assert v.both(v.SUPPORTS, v.CANNOT_TELL) == v.CANNOT_TELL
    assert v.multimodal_verdict([2, 4, 3]) == v.SUPPORTS
    assert v.multimodal_verdict([1, 1, 0]) == v.CONTRADICTS
    assert v.multimodal_verdict([1, 2, 1]) == v.CANNOT_TELL
    assert v.multimodal_verdict([]) == "cannot tell (n=0)"
    assert v.multimodal_verdict([3]) == v.CANNOT_TELL


def test_modes_counts_goal_directions_with_a_tenth_of_the_samples():
    unit = GOALS / 5
    assert v.modes(np.repeat(unit[:1], 100, axis=0)) == 1
    assert v.modes(np.concatenate([np.repeat(unit[:1], 50, axis=0),
                                   np.repeat(unit[2:3], 45, axis=0),
                                   np.repeat(unit[3:], 5, axis=0)])) == 2  # 5% is not a mode


def _summary(values: dict[str, list[float]], env="Hopper-v5"):
    rows = [{"env": env, "variant": var, "seed": s, "step": 100, "return_mean": x,
             "wall_time_s": 10.0, "tasks_completed_mean": np.nan, "total_steps": 100}
            for var, xs in values.items() for s, x in enumerate(xs)]
    return pd.DataFrame(rows)


def _row(summary, claim):
    completeness = summary[["env", "variant", "seed", "step"]].rename(
        columns={"step": "last_step"}).assign(path="", status="complete")
    df = v.verdict_rows(estimates.cell_estimates(summary), completeness, "mini")
    return df.set_index("claim").loc[claim]


def test_claims_from_hand_made_runs():
    claim = "the tanh entropy correction helps"
    better = _summary({"fmer": [110, 120, 130], "fmer-no-tanh": [100, 100, 100]})
    assert _row(better, claim)["verdict"] == v.SUPPORTS
    worse = _summary({"fmer": [50, 60, 55], "fmer-no-tanh": [100, 101, 99]})
    assert _row(worse, claim)["verdict"] == v.CONTRADICTS
    mixed = _summary({"fmer": [50, 160, 100], "fmer-no-tanh": [100, 100, 100]})
    assert _row(mixed, claim)["verdict"] == v.CANNOT_TELL
    row = _row(better, "MuJoCo: FMER's returns are competitive with SAC's")
    assert row["verdict"] == "cannot tell (n=0)" and "n=0" in row["numbers"]
    assert "100 steps vs the paper's 1,000,000" in _row(better, claim)["note"]
