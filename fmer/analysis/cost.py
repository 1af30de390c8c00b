"""What a run costs on one laptop core, from measured speeds: for the README's size table and
the workflow's per-job ``runtime``/``mem_mb`` (cluster schedulers need both up front).

Speeds, measured on one idle laptop core at batch 256 (``fmer bench`` measures them again on
any machine; docs/FMER.md §4): env steps per second with random actions; SAC's update ~12 ms
and FMER's ~173 ms on HalfCheetah-sized nets, scaled per benchmark
by the FMER/SAC update times measured side by side on this package's agents (Humanoid's
348-d observation doubles FMER's update, FrankaKitchen's 59-d one adds 60%). Acting costs one
flow sample (~1.5 ms) or one Gaussian sample (~0.3 ms) per step. These are estimates to within
a factor of about 1.5; a run's own train.csv records its real speed.
"""

from __future__ import annotations

import math

from fmer.budgets import Run
from fmer.envs import KITCHEN_BENCHMARKS, KITCHEN_STEPS, MULTIGOAL
from fmer.multigoal import EPISODE_STEPS

# benchmark: (env steps/s, FMER update s, obs dim, action dim, max episode steps)
SPEEDS = {
    "Hopper-v5": (6200, 0.173, 11, 3, 1000),
    "HalfCheetah-v5": (13000, 0.173, 17, 6, 1000),
    "Walker2d-v5": (6700, 0.173, 17, 6, 1000),
    "Humanoid-v5": (2200, 0.35, 348, 17, 1000),
    **dict.fromkeys(KITCHEN_BENCHMARKS, (220, 0.28, 59, 9, KITCHEN_STEPS)),
    MULTIGOAL: (20000, 0.17, 2, 2, EPISODE_STEPS),
}
SAC_UPDATE_S = 0.012
ACT_S = {"fmer": 0.0015, "sac": 0.0003}
STARTUP_S = 5.0
BASE_MEM_MB = 1000  # python, torch, mujoco; FrankaKitchen peaks near 800 MB


def core_seconds(run: Run) -> float:
    """Estimated single-core seconds of one run, evaluation included (episodes at full length,
    so an upper bound where agents fall early)."""
    cfg = run.config()
    env_speed, fmer_update, _, _, episode = SPEEDS[run.env]
    t = cfg.train
    update = fmer_update if cfg.algo == "fmer" else SAC_UPDATE_S
    act = ACT_S[cfg.algo]
    updates = max(0, t.total_steps - max(t.learning_starts, t.batch_size - 1))
    evals = math.ceil(t.total_steps / t.eval_every)
    eval_steps = evals * t.eval_episodes * episode
    return (STARTUP_S + t.total_steps / env_speed + updates * update
            + (t.total_steps - min(t.learning_starts, t.total_steps)) * act
            + eval_steps * (act + 1.0 / env_speed))


def mem_mb(run: Run) -> int:
    """Replay buffer (float32 obs, next obs, action, reward, done) plus the process, with a
    quarter spare for the checkpoint's copy of new rows."""
    cfg = run.config()
    _, _, obs, act, _ = SPEEDS[run.env]
    capacity = cfg.train.buffer_size or cfg.train.total_steps
    buffer_mb = capacity * (2 * obs + act + 2) * 4 / 2**20
    return int(math.ceil((BASE_MEM_MB + 1.25 * buffer_mb) / 100) * 100)


def runtime_minutes(run: Run) -> int:
    """Wall-clock limit for a scheduler: 1.5x the estimate plus 10 minutes; a run that hits it
    resumes from its checkpoint on the next attempt."""
    return int(math.ceil(1.5 * core_seconds(run) / 60 + 10))


def budget_size(runs: list[Run]) -> dict[str, float]:
    steps = sum(r.config().train.total_steps
                for r in runs)
    return {"runs": len(runs), "env_steps": steps,
            "core_hours": sum(core_seconds(r) for r in runs) / 3600}
