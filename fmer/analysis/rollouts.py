"""Numbers the figures need that the training logs do not hold: action samples of a run's
saved policy (fmer.policy; the multimodality figure) and the return of a uniform random policy
(the lower end of the normalised score)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

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


def random_score(env_name: str, episodes: int = RANDOM_EPISODES, seed: int = 0) -> dict:
    """Mean return of uniform random actions over ``episodes`` seeded episodes."""
    from fmer.envs import make_env, run_episode

    env = make_env(env_name, seed)
    env.action_space.seed(seed)
    returns = [run_episode(env, lambda _: env.action_space.sample(), seed + ep)[0]
               for ep in range(episodes)]
    return {"env": env_name, "episodes": episodes, "return_mean": float(np.mean(returns)),
            "return_std": float(np.std(returns))}


def samples_main(args) -> int:
    torch.set_num_threads(1)
    try:
        table = action_samples(args.run_dir, args.n)
    except RunLogError as exc:
        print(f"fmer samples: error: {exc}", file=sys.stderr)
        return 2
    table.to_csv(args.out, index=False)
    print(f"{len(table)} action samples -> {args.out}")
    return 0


def random_scores_main(args) -> int:
    table = pd.DataFrame([random_score(env) for env in args.envs])
    table.to_csv(args.out, index=False)
    print(json.dumps(table.set_index("env")["return_mean"].to_dict()))
    return 0
