"""Numbers the figures and verdicts need that the training logs do not hold, drawn from a run's
saved policy (fmer.policy): action samples (the multimodality figure) and the goals its
episodes reach (the multimodality measure); and the return of a uniform random policy (the
lower end of the normalised score)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fmer.analysis.multimodality import EPISODES
from fmer.envs import MULTIGOAL
from fmer.evaluation import GOAL_ROLLOUTS, derive_seed
from fmer.policy import load_policy
from fmer.runlog import RunLogError, read_meta

# Where the multigoal figure looks: the start (equidistant from the four goals) and points
# part-way to two of them, where a good policy is no longer undecided.
SAMPLE_STATES = ((0.0, 0.0), (2.5, 0.0), (0.0, -2.5))
RANDOM_EPISODES = 10


def action_samples(run_dir: str | Path, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` stochastic actions (env units) of the run's final policy at each SAMPLE_STATES."""
    policy = load_policy(run_dir)
    torch.manual_seed(seed)
    rows = []
    for x, y in SAMPLE_STATES:
        obs = np.array([x, y], dtype=np.float32)
        for i in range(n):
            a = policy.act(obs, deterministic=False)
            rows.append({"state_x": x, "state_y": y, "sample": i,
                         "action_x": float(a[0]), "action_y": float(a[1])})
    table = pd.DataFrame(rows)
    table.insert(0, "seed", policy.config.seed)
    table.insert(0, "variant", read_meta(Path(run_dir) / "meta.json")["variant"])
    return table


def reached_goals(act, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """One multigoal-2d episode of ``act(obs) -> action`` per reset seed: the goal index each
    ends at (-1: none) and its return."""
    from fmer.envs import make_env, run_episode

    env = make_env(MULTIGOAL)
    out = [run_episode(env, act, seed) for seed in seeds]
    return (np.array([int(info["goal"]) for _, info in out]),
            np.array([total for total, _ in out]))


def goal_rollouts(run_dir: str | Path, episodes: int = EPISODES) -> pd.DataFrame:
    """``episodes`` stochastic episodes of a multigoal run's saved policy from the start state:
    the goal each ends at (-1: none) and its return (fmer.analysis.multimodality). Episode
    resets and action samples are seeded from the run's seed (their own stream), so the table
    is a function of the run."""
    policy = load_policy(run_dir)
    run_seed = policy.config.seed
    if policy.config.env != MULTIGOAL:
        raise RunLogError(f"{run_dir}: goal rollouts need a {MULTIGOAL} run, not "
                          f"{policy.config.env}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(run_seed, GOAL_ROLLOUTS))
        goals, returns = reached_goals(
            lambda obs: policy.act(obs, deterministic=False),
            [derive_seed(run_seed, GOAL_ROLLOUTS, ep) for ep in range(episodes)])
    rows = {"episode": range(episodes), "goal": goals, "return": returns}
    table = pd.DataFrame(rows)
    table.insert(0, "seed", run_seed)
    table.insert(0, "variant", read_meta(Path(run_dir) / "meta.json")["variant"])
    return table


def random_score(env_name: str, episodes: int = RANDOM_EPISODES, seed: int = 0) -> dict:
    """Mean return of uniform random actions over ``episodes`` seeded episodes."""
    from fmer.envs import make_env, run_episode

    env = make_env(env_name, seed)
    env.action_space.seed(seed)
    returns = [run_episode(env, lambda _: env.action_space.sample(), seed + ep)[0]
               for ep in range(episodes)]
    return {"env": env_name, "episodes": episodes, "return_mean": float(np.mean(returns)),
            "return_std": float(np.std(returns))}
