"""Evaluation episodes: which ones a run is evaluated on, and running a policy through them.

One owner for both the training loop (each row of eval.csv) and ``fmer eval`` (a saved
policy), so that a loaded policy evaluated on a run's own episodes gives that run's numbers
bit for bit. Every evaluation episode is reset with its own seed, a pure function of (run
seed, evaluation number, episode number); the evaluation env itself is built once per run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from fmer.envs import make_env, run_episode

EVAL_ENV_SEED_OFFSET = 10_000
# first element of the SeedSequence spawn key of each random stream of a run; GOAL_ROLLOUTS:
# the multimodality measure's episodes (fmer.analysis.rollouts), drawn after training
TRAIN_EPISODE, EVAL_EPISODE, LOOP_RNG, GOAL_ROLLOUTS = 0, 1, 2, 3


def derive_seed(seed: int, *keys: int) -> int:
    """An independent 32-bit seed for the stream named by ``keys``."""
    return int(np.random.SeedSequence(seed, spawn_key=keys).generate_state(1)[0])


def make_eval_env(env_name: str, run_seed: int) -> gym.Env:
    """The evaluation env of the run with seed ``run_seed``, as the training loop builds it."""
    return make_env(env_name, run_seed + EVAL_ENV_SEED_OFFSET)


def episode_seeds(run_seed: int, evaluation: int, episodes: int) -> list[int]:
    """The reset seeds of the episodes of a run's ``evaluation``-th evaluation (0-based)."""
    return [derive_seed(run_seed, EVAL_EPISODE, evaluation, ep) for ep in range(episodes)]


@dataclass(frozen=True)
class Episodes:
    """Per-episode outcomes of one evaluation; kitchen and multigoal fill the last two."""

    returns: np.ndarray
    tasks_completed: np.ndarray | None
    success: np.ndarray | None


def run_episodes(env: gym.Env, act: Callable[[np.ndarray], np.ndarray],
                 seeds: list[int]) -> Episodes:
    """One episode of ``act(obs) -> env action`` per reset seed."""
    returns, tasks, successes = [], [], []
    for seed in seeds:
        total, info = run_episode(env, act, seed)
        returns.append(total)
        if "tasks_completed" in info:
            tasks.append(info["tasks_completed"])
        if "success" in info:
            successes.append(float(info["success"]))
    return Episodes(np.array(returns), np.array(tasks) if tasks else None,
                    np.array(successes) if successes else None)


def eval_row(episodes: Episodes) -> dict[str, float | int | None]:
    """The columns of an eval.csv row that describe the episodes (fmer.runlog.EVAL_COLUMNS)."""
    r = episodes.returns
    return {
        "episodes": len(r),
        "return_mean": float(r.mean()), "return_std": float(r.std()),
        "return_min": float(r.min()), "return_max": float(r.max()),
        "tasks_completed_mean": (float(np.mean(episodes.tasks_completed))
                                 if episodes.tasks_completed is not None else None),
        "success_rate": (float(np.mean(episodes.success))
                         if episodes.success is not None else None),
    }
