"""The multimodality measure: which goals a policy's episodes reach from the start state.

The paper's claim is that a flow policy represents several goals at once. On multigoal-2d
(four equally good goals, fmer.multigoal) we measure it by behaviour: ``EPISODES`` stochastic
episodes of the run's saved policy from the start state (near the origin, equidistant from
the goals), each ending at a goal or at none after 30 steps (fmer.analysis.rollouts writes
them to the run's ``goals.csv``). Per run:
- the share of episodes that end at each goal, and the reach rate (their sum);
- the entropy of the reached goal over the episodes that reach one (0 for one goal, ln 2 for
  an even split between two, ln 4 for all four);
- the modes: the goals reached by at least ``MODE_SHARE`` of all episodes.
A run is multimodal when it is goal-directed (its reach rate is at least ``REACH_MIN``) and
has ``MIN_MODES`` or more modes.

Why not the action samples' directions (the earlier measure): a wide Gaussian spreads its
samples over several directions, and a tanh-squashed one with a large pre-squash width piles
them up at the box's edges, so direction counts score a unimodal Gaussian as several modes.
Episodes count only goals actually reached. A policy that wanders also reaches goals by
chance, evenly: a tanh-squashed Gaussian of any width at every state, with no regard to the
state, ends 13-61% of its episodes at a goal, about equally at each (tests/test_multimodality.py
measures it), so it has up to four "modes" but is not goal-directed, and the reach rate
excludes it; a policy that heads for one goal reaches it in every episode (one mode), one that
picks one of two goals at the start and keeps to it splits its episodes between them (two).
What the measure does count as multimodal is any policy whose episodes from one state end at
several goals — also a Gaussian policy whose noise at the start breaks the tie and whose
state-dependent mean then commits to the nearest goal. That is a policy representing several
goals, so it counts; the action samples at the start state, drawn beside it, show whether a
run's action distribution is itself multimodal.
"""

from __future__ import annotations

import numpy as np

from fmer.multigoal import GOALS

EPISODES = 100  # per run
MODE_SHARE = 0.10  # a goal is a mode when at least this share of the episodes ends there
MIN_MODES = 2
# goal-directed: a wandering policy reaches at most ~61% (a squashed Gaussian, any width)
REACH_MIN = 0.8


def goal_shares(goals: np.ndarray, n_goals: int = len(GOALS)) -> np.ndarray:
    """The share of episodes ending at each goal; ``goals`` holds each episode's goal index,
    -1 for none."""
    goals = np.asarray(goals, dtype=int)
    if goals.size == 0:
        return np.zeros(n_goals)
    return np.bincount(goals[goals >= 0], minlength=n_goals)[:n_goals] / goals.size


def goal_entropy(shares: np.ndarray) -> float:
    """Entropy (nats) of the reached goal among the episodes that reach one; nan if none."""
    reached = shares.sum()
    if reached == 0:
        return float("nan")
    p = shares[shares > 0] / reached
    return float(-(p * np.log(p)).sum())


def modes(shares: np.ndarray, share: float = MODE_SHARE) -> int:
    return int(np.sum(shares >= share))


def is_multimodal(shares: np.ndarray) -> bool:
    return bool(shares.sum() >= REACH_MIN and modes(shares) >= MIN_MODES)


def misclassification(true_shares, episodes: int = EPISODES, reps: int = 20_000,
                      seed: int = 0) -> float:
    """The probability that ``episodes`` episodes of a policy with ``true_shares`` (goals, then
    none) are classified otherwise than the true shares are: the measure's own error rate."""
    p = np.asarray(true_shares, dtype=float)
    p = np.append(p, max(0.0, 1.0 - p.sum()))
    counts = np.random.default_rng(seed).multinomial(episodes, p, size=reps)[:, :len(GOALS)]
    measured = [is_multimodal(c / episodes) for c in counts]
    return float(np.mean(np.array(measured) != is_multimodal(np.asarray(true_shares, float))))
