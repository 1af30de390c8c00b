"""What a run costs on one laptop core, from measured speeds: for the README's size table and
the workflow's per-job ``runtime``/``mem_mb`` (cluster schedulers need both up front).

Speeds (one idle core, batch 256): env steps per second with random actions; SAC's update
~12 ms; FMER's update on HalfCheetah-sized nets by part, as ``fmer bench`` measured it at 16
candidates for all 256 states and the entropy term on 256 (paper/performance.md of 2026-11,
169 ms): the critic's parts are fixed, the candidates' and the CFM loss's grow with
candidates × candidate states, the entropy term's with its states, and the actor's parts are
spread over ``actor.update_every`` updates. Per benchmark the FMER update is scaled by the
FMER update times measured side by side (Humanoid's 348-d observation doubles it,
FrankaKitchen's 59-d one adds 60%). Acting costs one flow sample (~1.5 ms) or one Gaussian
sample (~0.3 ms) per step. QVPO (the paper's diffusion baseline, fmer.qvpo) is costed from its
update time over FMER's as ``fmer bench`` measured them side by side (QVPO_* below). These are
estimates to within a factor of about 1.5; a run's own train.csv records its real speed.
"""

from __future__ import annotations

import math
from statistics import mean

from fmer.budgets import Run
from fmer.config import ALGOS, Config
from fmer.envs import KITCHEN_BENCHMARKS, KITCHEN_STEPS, MULTIGOAL
from fmer.multigoal import EPISODE_STEPS

# benchmark: (env steps/s, FMER update over HalfCheetah's, obs dim, action dim,
# max episode steps)
SPEEDS = {
    "Hopper-v5": (6200, 1.0, 11, 3, 1000),
    "HalfCheetah-v5": (13000, 1.0, 17, 6, 1000),
    "Walker2d-v5": (6700, 1.0, 17, 6, 1000),
    "Humanoid-v5": (2200, 2.0, 348, 17, 1000),
    **dict.fromkeys(KITCHEN_BENCHMARKS, (220, 1.6, 59, 9, KITCHEN_STEPS)),
    MULTIGOAL: (20000, 1.0, 2, 2, EPISODE_STEPS),
}
SAC_UPDATE_S = 0.012
# FMER's update parts on HalfCheetah-sized nets (seconds) at the reference knobs below
FMER_CRITIC_S = 0.0178  # critic target (a flow sample with its log-density) and step
FMER_ACTOR_FIXED_S = 0.0025  # τ, α, the optimiser step
FMER_CANDIDATES_S = 0.1043  # candidates sampled and scored, the CFM loss
FMER_ENTROPY_S = 0.0418  # the entropy term through the sampler
REFERENCE_CANDIDATE_ROWS = 16 * 256
REFERENCE_ENTROPY_STATES = 256
# QVPO at its authors' settings: ``fmer bench --envs HalfCheetah-v5 kitchen-4 Humanoid-v5
# --threads 1`` (thread CPU time, updates interleaved round by round in one process; on a
# loaded 2-core AMD EPYC, 2026-12) measured its update at QVPO_OVER_FMER times FMER's at the
# defaults on HalfCheetah-sized nets; taken against FMER's reference update above, since a
# ratio measured side by side carries across machines better than either time. Of the update,
# QVPO_SAMPLING_SHARE is the actions drawn through the denoising chain (the candidates and the
# TD target's samples), which grows with (train + target samples) × denoising steps × batch;
# the rest (the critic's step, the loss on 11 actions per state, the optimiser) is fixed.
# Per benchmark its update scales by QVPO_SCALE, measured the same way. Acting draws the best
# of 4 samples through 20 steps: ~4x FMER's flow sample, measured side by side.
QVPO_OVER_FMER = 14.3  # 95% interval [13.2, 15.5] over 10 rounds; kitchen-4 14.1, Humanoid 14.0
QVPO_SAMPLING_SHARE = 0.97  # candidates 5,038 ms and TD-target samples 338 of 5,500 by part
QVPO_REFERENCE_ROWS = (64 + 4) * 20 * 256
QVPO_SCALE = {"Humanoid-v5": 1.26, **dict.fromkeys(KITCHEN_BENCHMARKS, 1.06)}
ACT_S = {"fmer": 0.0015, "sac": 0.0003, "qvpo": 0.006}
STARTUP_S = 5.0
BASE_MEM_MB = 1000  # python, torch, mujoco; FrankaKitchen peaks near 800 MB


def core_seconds(run: Run) -> float:
    """Estimated single-core seconds of one run, evaluation included (episodes at full length,
    so an upper bound where agents fall early)."""
    cfg = run.config()
    env_speed, fmer_scale, _, _, episode = SPEEDS[run.env]
    t = cfg.train
    update = {"fmer": lambda: fmer_scale * fmer_update_seconds(cfg),
              "qvpo": lambda: QVPO_SCALE.get(run.env, 1.0) * qvpo_update_seconds(cfg),
              "sac": lambda: SAC_UPDATE_S}[cfg.algo]()
    act = ACT_S[cfg.algo]
    updates = max(0, t.total_steps - max(t.learning_starts, t.batch_size - 1))
    evals = math.ceil(t.total_steps / t.eval_every)
    eval_steps = evals * t.eval_episodes * episode
    return (STARTUP_S + t.total_steps / env_speed + updates * update
            + (t.total_steps - min(t.learning_starts, t.total_steps)) * act
            + eval_steps * (act + 1.0 / env_speed))


def fmer_update_seconds(cfg) -> float:
    """One FMER update on HalfCheetah-sized nets, from its cost knobs (see the module doc)."""
    a, batch = cfg.actor, cfg.train.batch_size
    rows = a.candidates * (a.candidate_states or batch)
    states = a.entropy_batch or batch
    actor = (FMER_ACTOR_FIXED_S + FMER_CANDIDATES_S * rows / REFERENCE_CANDIDATE_ROWS
             + FMER_ENTROPY_S * states / REFERENCE_ENTROPY_STATES)
    return FMER_CRITIC_S + actor / a.update_every


def qvpo_update_seconds(cfg: Config) -> float:
    """One QVPO update on HalfCheetah-sized nets, from its sample counts (see QVPO_*)."""
    q = cfg.qvpo
    rows = (q.train_samples + q.target_samples) * q.diffusion_steps * cfg.train.batch_size
    at_defaults = QVPO_OVER_FMER * fmer_update_seconds(Config())
    return at_defaults * (1 - QVPO_SAMPLING_SHARE + QVPO_SAMPLING_SHARE
                          * rows / QVPO_REFERENCE_ROWS)


def core_hours_per_run(runs: list[Run]) -> dict[str, float]:
    """The mean estimated core-hours of one run of each algorithm (its plain variant: sac,
    fmer, qvpo) over the benchmarks where every one of them has runs: like for like."""
    plain = [r for r in runs if r.variant == r.algo and r.algo in ALGOS]
    algos = sorted({r.algo for r in plain}, key=ALGOS.index)
    shared = set.intersection(*({r.env for r in plain if r.algo == a} for a in algos)) \
        if algos else set()
    return {a: mean(core_seconds(r) for r in plain if r.algo == a and r.env in shared) / 3600
            for a in algos if shared}


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


def wall_seconds(runs: list[Run], cores: int) -> float:
    """Estimated wall-clock seconds of ``runs`` on ``cores`` cores, one core per run (the
    workflow's ``threads: 1``): longest run first onto the core that frees up first (the
    classic LPT schedule, within 4/3 of the best order). Nothing else sharing the cores."""
    free = [0.0] * max(1, min(cores, len(runs)))
    for seconds in sorted((core_seconds(r) for r in runs), reverse=True):
        i = free.index(min(free))
        free[i] += seconds
    return max(free) if runs else 0.0


def plan_line(runs: list[Run], cores: int, where: str) -> str:
    """What the workflow says before its first job: the runs it will train and their
    estimated cost; ``where`` says what ``cores`` is (e.g. "--cores 8")."""
    if not runs:
        return "Plan: no run to train."
    hours = sum(core_seconds(r) for r in runs) / 3600
    wall = wall_seconds(runs, cores)
    return (f"Plan: {len(runs)} run{'s' * (len(runs) != 1)} to train, est. "
            f"{f'{hours:,.1f}' if hours >= 1 else f'{hours:.2g}'} core-hours, est. wall time "
            f"{f'{wall / 3600:,.1f} h' if wall >= 3600 else f'{max(1, round(wall / 60))} min'}"
            f" at {where} (estimates: fmer.analysis.cost's model, as fmer plan's, one laptop "
            "core per run)")
