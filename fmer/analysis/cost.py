"""What a run costs on one core, at the speeds ``fmer bench`` measured: for the README's size
table, ``fmer plan``, ``fmer status``, the workflow's plan line and its per-job
``runtime``/``mem_mb`` (cluster schedulers need both up front).

The speeds are the committed bench's, ``paper/performance.csv`` (fmer.benchlog's format): its
rows at the package defaults on one thread (the main thread's CPU time; batch 256), per
benchmark: a raw env step with random actions, the observation and action dims, SAC's update,
and FMER's and QVPO's updates by part. FrankaKitchen's N only changes which tasks are rewarded
(same simulator, same dims): kitchen-1 and kitchen-7 are costed by kitchen-4's rows. A
benchmark without rows is an error naming the ``fmer bench`` command that measures it.

FMER's update at a run's cost knobs is its whole update measured at the package defaults
(``fmer.config.Config()``), split by the parts' measured shares (``shares``), each part scaled
by what it grows with in ``FMER.update``:
- on every update, fixed: the critic's target and step, and what no label covers (``rest``);
- on every ``actor.update_every``-th update, so spread over that many updates:
  - ``candidates`` (N latents per candidate state drawn through the flow, scored by the
    critic) and ``cfm`` (the weighted CFM loss on them): with candidates × candidate states;
  - ``entropy`` (one action per state through the sampler with its log-density): with the
    entropy term's states;
  - ``actor_step``, the one backward pass through both losses: split between them in
    proportion to their forward times (``cfm``, ``entropy``), each share scaled as its loss;
  - ``temperature`` (bisection on the candidates' Q) and ``alpha``: fixed.
QVPO's update (``QVPO.update``): ``candidates`` with train samples × denoising steps × batch,
``critic_target`` (the best of the target samples through the denoising chain) with target
samples × denoising steps × batch, the other parts fixed. SAC's: its measured update. Network
widths scale no part, nor does the batch scale the fixed ones (smoke's 32-unit nets and batch
of 64 are costed as 256): an upper bound there.

Acting is not benched: ACT_S, measured by hand once (a flow sample, a Gaussian sample, QVPO's
best of 4 through 20 denoising steps). These are estimates to within a factor of about 1.5; a
run's own train.csv records its real speed.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

from fmer.benchlog import DEFAULTS, FMER_PARTS, QVPO_PARTS, REST, read_csv
from fmer.budgets import Run
from fmer.config import ALGOS, Config, ConfigError
from fmer.envs import KITCHEN_BENCHMARKS, episode_steps

# The committed bench (``fmer bench``, paper/performance.md names the command): the
# repository's, found from the package as fmer.rundir finds the checkout
PERFORMANCE = Path(__file__).resolve().parents[2] / "paper" / "performance.csv"
# FrankaKitchen-v1 is one simulator whatever its N (which tasks pay): one set of rows for all
MEASURED_AS = dict.fromkeys(KITCHEN_BENCHMARKS, "kitchen-4")
ACT_S = {"fmer": 0.0015, "sac": 0.0003, "qvpo": 0.006}  # seconds per acting step, by hand
STARTUP_S = 5.0
BASE_MEM_MB = 1000  # python, torch, mujoco; FrankaKitchen peaks near 800 MB


class NotBenchedError(ConfigError):
    """A benchmark whose speeds the bench CSV does not hold."""


@dataclass(frozen=True)
class Speeds:
    """What the bench measured of one benchmark: seconds, dims, and the updates' parts
    (seconds per update, by label, ``rest`` included)."""

    env_step: float
    obs_dim: int
    act_dim: int
    sac_update: float
    fmer: dict[str, float]
    qvpo: dict[str, float]


@functools.cache
def _read(path: Path, mtime_ns: int) -> tuple[dict, ...]:
    return tuple(r for r in read_csv(path) if r["setting"] == DEFAULTS and r["threads"] == 1)


def speeds(env: str, csv: str | Path = PERFORMANCE) -> Speeds:
    """Benchmark ``env``'s one-thread rows at the defaults in the bench CSV ``csv``."""
    measured, path = MEASURED_AS.get(env, env), Path(csv)
    command = f"`fmer bench --envs {measured} --threads 1` measures it"
    if not path.is_file():
        raise NotBenchedError(f"no bench CSV {str(path)!r} to cost {env} from: {command}")
    items = {r["item"]: r for r in _read(path, path.stat().st_mtime_ns) if r["env"] == measured}
    parts = {a: {p: f"{a}_{p}" for p in (*labels, REST)}
             for a, labels in (("fmer", FMER_PARTS), ("qvpo", QVPO_PARTS))}
    missing = [i for i in ("env_step", "sac_update", "fmer_update", "qvpo_update",
                           *parts["fmer"].values(), *parts["qvpo"].values()) if i not in items]
    if missing:
        what = f"the items {', '.join(missing)}" if items else "rows"
        as_kitchen = f" (as {measured})" if measured != env else ""
        raise NotBenchedError(f"{path} has no one-thread timing at the defaults of {env}"
                              f"{as_kitchen}: no {what}; {command}")
    step = items["env_step"]
    return Speeds(step["ms"] / 1e3, step["obs_dim"], step["act_dim"],
                  items["sac_update"]["ms"] / 1e3,
                  *(shares({p: items[item]["ms"] for p, item in parts[a].items()},
                           items[f"{a}_update"]["ms"] / 1e3) for a in ("fmer", "qvpo")))


def shares(parts_ms: dict[str, float], whole_s: float) -> dict[str, float]:
    """The parts of an update as shares of the whole update timed alone (seconds): each part
    is timed in calls of its own, with the timing around it, so the parts add up to more than
    the whole (by 16% for FMER on HalfCheetah-v5 in the committed bench)."""
    total = sum(parts_ms.values())
    return {p: whole_s * ms / total for p, ms in parts_ms.items()}


def core_seconds(run: Run, csv: str | Path = PERFORMANCE) -> float:
    """Estimated single-core seconds of one run, evaluation included (episodes at full length,
    so an upper bound where agents fall early)."""
    cfg = run.config()
    measured = speeds(run.env, csv)
    t = cfg.train
    update = {"fmer": fmer_update_seconds, "qvpo": qvpo_update_seconds,
              "sac": lambda _, m: m.sac_update}[cfg.algo](cfg, measured)
    act = ACT_S[cfg.algo]
    updates = max(0, t.total_steps - max(t.learning_starts, t.batch_size - 1))
    evals = math.ceil(t.total_steps / t.eval_every)
    eval_steps = evals * t.eval_episodes * episode_steps(run.env)
    return (STARTUP_S + t.total_steps * measured.env_step + updates * update
            + (t.total_steps - min(t.learning_starts, t.total_steps)) * act
            + eval_steps * (act + measured.env_step))


def fmer_update_seconds(cfg: Config, measured: Speeds) -> float:
    """One FMER update at ``cfg``'s cost knobs, from its parts at the defaults (module doc)."""
    p, a, ref = measured.fmer, cfg.actor, Config()
    rows = (a.candidates * (a.candidate_states or cfg.train.batch_size)
            / (ref.actor.candidates * (ref.actor.candidate_states or ref.train.batch_size)))
    states = ((a.entropy_batch or cfg.train.batch_size)
              / (ref.actor.entropy_batch or ref.train.batch_size))
    cfm_backward = p["actor_step"] * p["cfm"] / (p["cfm"] + p["entropy"])
    actor = ((p["candidates"] + p["cfm"] + cfm_backward) * rows
             + (p["entropy"] + p["actor_step"] - cfm_backward) * states
             + p["temperature"] + p["alpha"])
    return (p["critic_target"] + p["critic_step"] + p[REST]
            + actor * ref.actor.update_every / a.update_every)


def qvpo_update_seconds(cfg: Config, measured: Speeds) -> float:
    """One QVPO update at ``cfg``'s sample counts, from its parts at the defaults (module
    doc)."""
    p, q, ref = measured.qvpo, cfg.qvpo, Config()
    chain = (q.diffusion_steps * cfg.train.batch_size
             / (ref.qvpo.diffusion_steps * ref.train.batch_size))
    fixed = sum(v for k, v in p.items() if k not in ("candidates", "critic_target"))
    return (fixed + p["candidates"] * chain * q.train_samples / ref.qvpo.train_samples
            + p["critic_target"] * chain * q.target_samples / ref.qvpo.target_samples)


def core_hours_per_run(runs: list[Run]) -> dict[str, float]:
    """The mean estimated core-hours of one run of each algorithm (its plain variant: sac,
    fmer, qvpo) over the benchmarks where every one of them has runs: like for like."""
    plain = [r for r in runs if r.variant == r.algo and r.algo in ALGOS]
    algos = sorted({r.algo for r in plain}, key=ALGOS.index)
    shared = set.intersection(*({r.env for r in plain if r.algo == a} for a in algos)) \
        if algos else set()
    return {a: mean(core_seconds(r) for r in plain if r.algo == a and r.env in shared) / 3600
            for a in algos if shared}


def mem_mb(run: Run, csv: str | Path = PERFORMANCE) -> int:
    """Replay buffer (float32 obs, next obs, action, reward, done) plus the process, with a
    quarter spare for the checkpoint's copy of new rows."""
    cfg = run.config()
    measured = speeds(run.env, csv)
    capacity = cfg.train.buffer_size or cfg.train.total_steps
    buffer_mb = capacity * (2 * measured.obs_dim + measured.act_dim + 2) * 4 / 2**20
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


def hours(core_hours: float) -> str:
    """Core-hours as the package prints them: one decimal, or two significant digits below 1."""
    return f"{core_hours:,.1f}" if core_hours >= 1 else f"{core_hours:.2g}"


def plan_line(runs: list[Run], cores: int, where: str) -> str:
    """What the workflow says before its first job: the runs it will train and their
    estimated cost; ``where`` says what ``cores`` is (e.g. "--cores 8")."""
    if not runs:
        return "Plan: no run to train."
    core_hours = sum(core_seconds(r) for r in runs) / 3600
    wall = wall_seconds(runs, cores)
    return (f"Plan: {len(runs)} run{'s' * (len(runs) != 1)} to train, est. "
            f"{hours(core_hours)} core-hours, est. wall time "
            f"{f'{wall / 3600:,.1f} h' if wall >= 3600 else f'{max(1, round(wall / 60))} min'}"
            f" at {where} (estimates: fmer.analysis.cost's model, as fmer plan's, one core per "
            "run at the speeds of paper/performance.csv)")
