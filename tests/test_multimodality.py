"""The multimodality measure on policies whose answer is known, in the real multigoal env.

Each hand-written policy is a function of the observation, like a trained one; the episodes
are the measure's own (fmer.analysis.rollouts.reached_goals). The wide squashed Gaussians are
the case the old measure (directions of the action samples) could not tell from a flow.
"""

import numpy as np
import pytest
from conftest import run_fmer

from fmer.analysis import multimodality as mm
from fmer.analysis.rollouts import goal_rollouts, reached_goals
from fmer.multigoal import GOALS

SEEDS = list(range(1000, 1200))


def _toward(pos, goal):
    d = GOALS[goal] - pos
    return np.clip(d / max(np.linalg.norm(d), 1e-9), -1, 1)


def _measure(act):
    goals, _ = reached_goals(act, SEEDS)
    return mm.goal_shares(goals)


def test_a_policy_heading_for_one_goal_has_one_mode():
    shares = _measure(lambda obs: _toward(obs, 0))
    assert shares[0] == 1.0 and mm.modes(shares) == 1
    assert mm.goal_entropy(shares) == 0.0 and not mm.is_multimodal(shares)


def test_a_policy_that_picks_one_of_two_goals_at_the_start_has_two():
    rng = np.random.default_rng(0)

    def act(obs):
        if np.linalg.norm(obs) < 0.5:  # undecided at the start: goal 0 or goal 2
            return _toward(obs, 0 if rng.random() < 0.5 else 2)
        return _toward(obs, int(np.argmin(((GOALS - obs) ** 2).sum(1))))

    shares = _measure(act)
    assert shares.sum() == 1.0 and mm.modes(shares) == 2 and mm.is_multimodal(shares)
    assert mm.goal_entropy(shares) == pytest.approx(np.log(2), abs=0.02)


@pytest.mark.parametrize("width", [1.0, 3.0, 10.0])
def test_a_wide_squashed_gaussian_wanders_and_is_not_multimodal(width):
    rng = np.random.default_rng(1)
    shares = _measure(lambda obs: np.tanh(width * rng.standard_normal(2)))
    # it reaches each goal by chance, about equally, so it has "modes" but no direction
    assert shares.sum() < mm.REACH_MIN
    assert not mm.is_multimodal(shares)
    if width >= 3:
        assert mm.modes(shares) == 4  # which is why the reach rate is part of the measure


def test_a_crescent_between_two_goals_that_never_commits_reaches_none():
    rng = np.random.default_rng(2)

    def act(obs):
        angle = np.pi / 4 + rng.normal(0, 0.6)  # spread over goals 0 and 2, no dip between
        return np.array([np.cos(angle), np.sin(angle)])

    shares = _measure(act)
    assert shares.sum() < 0.1 and not mm.is_multimodal(shares)


def test_shares_entropy_and_error_rate_by_hand():
    shares = mm.goal_shares(np.array([0, 0, 1, -1]))
    np.testing.assert_array_equal(shares, [0.5, 0.25, 0, 0])
    assert mm.goal_entropy(shares) == pytest.approx(-(2 / 3) * np.log(2 / 3) - np.log(1 / 3) / 3)
    assert np.isnan(mm.goal_entropy(np.zeros(4)))
    assert mm.misclassification((0.5, 0.5, 0, 0)) == 0.0
    # binomial(100, 0.05) >= 10: the one-sided tail, 2.8%
    assert mm.misclassification((0.95, 0.05, 0, 0)) == pytest.approx(0.028, abs=0.005)


def test_goal_rollouts_of_a_saved_policy_are_a_function_of_the_run(tmp_path):
    run = tmp_path / "mg"
    proc = run_fmer("train", "--env", "multigoal-2d", "--algo", "fmer", "--seed", "0",
                    "--budget", "smoke", "--out", run, timeout=300)
    assert proc.returncode == 0, proc.stderr
    first, again = goal_rollouts(run, 20), goal_rollouts(run, 20)
    assert len(first) == 20 and set(first["goal"]) <= {-1, 0, 1, 2, 3}
    assert first.equals(again)
    proc = run_fmer("goals", run, "--out", tmp_path / "goals.csv", "--episodes", "20")
    assert proc.returncode == 0, proc.stderr
