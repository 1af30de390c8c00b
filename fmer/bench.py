"""``fmer bench``: what one SAC, one FMER and one QVPO update cost, side by side in one process.

Per network size (an env's observation and action dims) and torch thread count, it times
raw env steps, a SAC update, an FMER update and a QVPO update (the paper's diffusion baseline,
at its authors' settings) at the config defaults (or ``--set`` overrides), interleaved round by
round so that a busy machine slows them alike, and reports medians after warm-up, and QVPO's
update over FMER's as the mean of the per-round log ratios with its 95% t interval (what the
cost claim's rule reads: fmer.analysis.cost_claim). It counts the matmul FLOPs of one update
(backward included) and sets the achieved rate beside a large fp32 matmul's on the same
threads: a rate near the matmul's means the update is compute bound and only fewer FLOPs can
make it cheaper.

Clock: on one thread, the main thread's CPU time (``time.thread_time``), which other
processes on a shared machine cannot inflate; on more threads, wall time. ``--device cuda``
times the agents' updates and the matmul on the GPU in wall time, read after the GPU has
finished (``cuda_wall``); the CUDA path is untested on real hardware.

``--budget NAME`` also times FMER under each of that budget's own variants (their config
overrides, e.g. the defaults study's cost settings); ``--whole-run NAME`` trains whole runs
of each algorithm (``--repeats`` seeds) on that budget's schedule and compares wall times.
This module measures the rows (their format, and the CSV they go to: fmer.benchlog);
``fmer.analysis.performance`` reads them: the summaries, the tables printed, the cost claim's
line and the Markdown page.
"""

from __future__ import annotations

import csv
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from fmer import agent as agent_module
from fmer import qvpo as qvpo_module
from fmer.analysis.stats import t_interval
from fmer.benchlog import (
    DEFAULT_ENVS,
    DEFAULT_THREADS,
    DEFAULTS,
    EXECUTIONS,
    PARTS,
    QVPO_RATIO,
    REST,
)
from fmer.buffer import Batch
from fmer.config import make_config
from fmer.device import resolve_device
from fmer.envs import make_env
from fmer.nets import ActionBox
from fmer.train import make_agent

MATMUL_N = 1024


@dataclass
class Timing:
    ms: float  # median, on the clock named by ``clock``
    wall_ms: float | None  # median wall time (None for the parts of an update)
    clock: str
    reps: int
    samples: tuple[float, ...] = ()  # the timed rounds, in order (ms on ``clock``)


CPU = torch.device("cpu")


def _clock(threads: int, device: torch.device = CPU) -> tuple[str, Callable[[], float]]:
    if device.type == "cuda":
        def synchronized() -> float:  # kernels run asynchronously: wait for them first
            torch.cuda.synchronize(device)
            return time.perf_counter()

        return "cuda_wall", synchronized
    return ("thread_cpu", time.thread_time) if threads == 1 else ("wall", time.perf_counter)


def interleaved(fns: dict[str, Callable[[], object]], reps: int, warmup: int,
                threads: int, device: torch.device = CPU) -> dict[str, Timing]:
    """Median time of each callable over ``reps`` rounds after ``warmup``; every round runs
    all of them once, in order, so that slow phases of a shared machine hit each alike."""
    if reps < 1 or warmup < 0:
        raise ValueError(f"need reps >= 1 and warmup >= 0, got reps={reps}, warmup={warmup}")
    name, clock = _clock(threads, device)
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in fns}
    for r in range(warmup + reps):
        for key, fn in fns.items():
            w0, c0 = time.perf_counter(), clock()
            fn()
            c1, w1 = clock(), time.perf_counter()
            if r >= warmup:
                samples[key].append(((c1 - c0) * 1e3, (w1 - w0) * 1e3))
    return {k: Timing(statistics.median(c for c, _ in v), statistics.median(w for _, w in v),
                      name, reps, tuple(c for c, _ in v)) for k, v in samples.items()}


class FlopCounter(TorchDispatchMode):
    """Matmul-like FLOPs (torch's own formulas) of everything run inside, backward included.

    torch's FlopCounterMode also tracks modules, which breaks ``autograd.grad``; this does not."""

    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.flops += formula(*args, **kwargs, out_val=out)
        return out


def count_flops(fn: Callable[[], object]) -> int:
    with FlopCounter() as counter:
        fn()
    return counter.flops


def matmul_timing(reps: int, threads: int, device: torch.device = CPU) -> Timing:
    a = torch.randn(MATMUL_N, MATMUL_N, device=device)
    b = torch.randn(MATMUL_N, MATMUL_N, device=device)
    return interleaved({"mm": lambda: a @ b}, reps, 2, threads, device)["mm"]


def env_step_timing(env_name: str, steps: int, threads: int) -> Timing:
    """Raw ``env.step`` with uniform random actions, resetting at episode ends."""
    env = make_env(env_name, seed=0)
    env.action_space.seed(0)
    env.reset(seed=0)

    def step():
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()

    timing = interleaved({"step": step}, steps, 10, threads)["step"]
    env.close()
    return timing


def random_batch(obs_dim: int, act_dim: int, size: int, gen: torch.Generator) -> Batch:
    """A replay-shaped batch; an update's cost does not depend on the values."""
    return Batch(obs=torch.randn(size, obs_dim, generator=gen),
                 actions=torch.rand(size, act_dim, generator=gen) * 2 - 1,
                 rewards=torch.randn(size, generator=gen),
                 next_obs=torch.randn(size, obs_dim, generator=gen),
                 terminated=(torch.rand(size, generator=gen) < 0.01).float())


def _env_dims(env_name: str) -> tuple[int, ActionBox]:
    env = make_env(env_name, seed=0)
    obs_dim = env.observation_space.shape[0]
    box = ActionBox(env.action_space.low, env.action_space.high)
    env.close()
    return obs_dim, box


def _row(env, obs_dim, act_dim, threads, item, timing: Timing, gflop=None, setting=DEFAULTS):
    rate = gflop / (timing.ms / 1e3) if gflop is not None else None
    return {"env": env, "obs_dim": obs_dim, "act_dim": act_dim, "threads": threads,
            "setting": setting, "item": item, "reps": timing.reps, "ms": timing.ms,
            "clock": timing.clock, "wall_ms": timing.wall_ms, "gflop": gflop,
            "gflop_per_s": rate, "ratio": None, "ratio_low": None, "ratio_high": None}


def paired_ratio(num: Timing, den: Timing) -> tuple[float, float, float]:
    """(ratio, low, high): the mean of the per-round log ratios num/den, exponentiated, with
    its 95% t interval (rounds paired as ``interleaved`` ran them)."""
    return tuple(float(np.exp(x)) for x in t_interval(
        np.log(np.asarray(num.samples) / np.asarray(den.samples))))


def bench(envs: Iterable[str] = DEFAULT_ENVS, threads: Iterable[int] = DEFAULT_THREADS,
          reps: int = 10, warmup: int = 3, env_steps: int = 1000, batch_size: int = 256,
          overrides: dict | None = None, seed: int = 0,
          settings: dict[str, dict] | None = None, device: str = "cpu",
          executions: Iterable[str] = ()) -> list[dict]:
    """Long-format rows (``CSV_COLUMNS``): per thread count the matmul rate, per env and thread
    count the raw env step, SAC, FMER and QVPO updates and QVPO's over FMER's; then, on the
    first env and the fewest threads, the SAC and FMER updates under each named setting
    (overrides on top of ``overrides``) and each named execution (``EXECUTIONS``). The agents
    and the matmul run on ``device``.
    Restores torch's thread count."""
    envs, threads = list(envs), sorted(set(threads))
    if not envs or not threads or min(threads) < 1:
        raise ValueError(f"need at least one env and positive thread counts, got envs={envs}, "
                         f"threads={threads}")
    dev = resolve_device(device)
    overrides = {**(overrides or {}), "train.device": device}
    dims = {name: _env_dims(name) for name in envs}
    before = torch.get_num_threads()
    rows = []
    try:
        # One thread first: OpenMP workers left spinning by a parallel block would otherwise
        # share the core with the one-thread measurements.
        for n in threads:
            torch.set_num_threads(n)
            mm = matmul_timing(max(reps, 5), n, dev)
            rows.append(_row("", None, None, n, "matmul", mm, 2 * MATMUL_N**3 / 1e9))
            for name in envs:
                obs_dim, box = dims[name]
                if n == threads[0]:  # torch's threads do not step the simulator
                    rows.append(_row(name, obs_dim, box.dim, n, "env_step",
                                     env_step_timing(name, env_steps, n)))
                rows += _bench_updates(name, obs_dim, box, n, reps, warmup, batch_size,
                                       overrides, seed, dev)
            if n == threads[0]:
                obs_dim, box = dims[envs[0]]
                for setting, extra in (settings or {}).items():
                    rows += _bench_updates(envs[0], obs_dim, box, n, reps, warmup, batch_size,
                                           {**overrides, **extra}, seed, dev, setting,
                                           algos=("sac", "fmer"))
                for name in executions:
                    extra, mode = EXECUTIONS[name]
                    rows += _bench_updates(envs[0], obs_dim, box, n, reps, warmup, batch_size,
                                           {**overrides, **extra}, seed, dev, name,
                                           algos=("sac", "fmer"), mode=mode)
    finally:
        torch.set_num_threads(before)
    return rows


# where each agent's record_function is looked up (its labels: fmer.benchlog.PARTS)
LABELLED = {"fmer": agent_module, "qvpo": qvpo_module}


class PartClock:
    """Stands in for ``record_function`` in an agent's module while an update is timed: the
    clock time spent inside each label. torch's profiler would read the same labels, but
    its per-op overhead would swamp an update of many small ops."""

    def __init__(self, threads: int, device: torch.device = CPU):
        self.clock = _clock(threads, device)[1]
        self.times: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t0 = self.clock()
        try:
            yield
        finally:
            self.times[name] = self.times.get(name, 0.0) + (self.clock() - t0) * 1e3


def update_parts(update: Callable[[], object], reps: int, threads: int,
                 device: torch.device = CPU, algo: str = "fmer") -> dict[str, float]:
    """Median ms per labelled part of ``update`` (of agent ``algo``) over ``reps`` calls, and
    ``rest``: the time outside every part (reading the metrics out)."""
    module, labels = LABELLED[algo], PARTS[algo]
    clock = _clock(threads, device)[1]
    per_update = []
    for _ in range(reps):
        parts = PartClock(threads, device)
        with patch.object(module, "record_function", parts):
            t0 = clock()
            update()
            total = (clock() - t0) * 1e3
        per_update.append({**parts.times, REST: total - sum(parts.times.values())})
    return {name: statistics.median(t.get(name, 0.0) for t in per_update)
            for name in (*labels, REST)}


def _bench_updates(name, obs_dim, box, threads, reps, warmup, batch_size, overrides, seed,
                   device: torch.device = CPU, setting=DEFAULTS, algos=("sac", "fmer", "qvpo"),
                   mode: str | None = None):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    batch = Batch(**{k: v.to(device) for k, v in
                     vars(random_batch(obs_dim, box.dim, batch_size, gen)).items()})
    agents = {}
    for algo in algos:
        cfg = make_config(name, algo, seed, overrides={**overrides,
                                                       "train.batch_size": batch_size})
        agents[algo] = make_agent(cfg, obs_dim, box, compile_mode=mode)
    # FMER is timed and counted over a cycle of actor.update_every updates, per update: the
    # delayed actor's cost is spread over the updates that skip it, as in a run.
    cycles = {a: agents[a].actor_every if a == "fmer" else 1 for a in agents}

    def cycle(algo):
        return lambda: [agents[algo].update(batch) for _ in range(cycles[algo])]

    rows = []
    if setting in EXECUTIONS:  # the same FLOPs as eager float32: counted there
        flops = dict.fromkeys(cycles)
        if cfg.train.compile:  # the first call compiles: its wall time
            for algo in agents:
                t0 = time.perf_counter()
                cycle(algo)()
                first = (time.perf_counter() - t0) * 1e3
                rows.append(_row(name, obs_dim, box.dim, threads, f"{algo}_compile",
                                 Timing(first, first, "wall", 1), None, setting))
    else:
        flops = {algo: count_flops(cycle(algo)) / 1e9 / k for algo, k in cycles.items()}
    timings = {algo: Timing(t.ms / cycles[algo], t.wall_ms / cycles[algo], t.clock, t.reps,
                            tuple(x / cycles[algo] for x in t.samples))
               for algo, t in interleaved({a: cycle(a) for a in agents}, reps, warmup,
                                          threads, device).items()}
    rows += [_row(name, obs_dim, box.dim, threads, f"{algo}_update", timings[algo],
                  flops[algo], setting) for algo in agents]
    if "qvpo" in agents:
        ratio = _row(name, obs_dim, box.dim, threads, QVPO_RATIO, timings["qvpo"], None, setting)
        ratio.update(ms=None, wall_ms=None, **dict(zip(
            ("ratio", "ratio_low", "ratio_high"),
            paired_ratio(timings["qvpo"], timings["fmer"]), strict=True)))
        rows.append(ratio)
    if setting == DEFAULTS:
        for algo in [a for a in LABELLED if a in agents]:
            parts = update_parts(cycle(algo), reps, threads, device, algo)
            k = cycles[algo]
            rows += [_row(name, obs_dim, box.dim, threads, f"{algo}_{part}",
                          Timing(ms / k, None, _clock(threads, device)[0], reps))
                     for part, ms in parts.items()]
    return rows


# --- whole runs ------------------------------------------------------------------------------
def whole_run(env: str, algo: str, budget: str, overrides: dict | None = None,
              seed: int = 0) -> dict:
    """Wall time of one complete ``fmer train`` run (a subprocess, one thread) on the
    schedule of ``budget``, read from its eval.csv: what a grid run costs, random steps,
    evaluations and process start included."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "fmer", "train", "--env", env, "--algo", algo,
               "--seed", str(seed), "--budget", budget, "--out", tmp + "/run"]
        for k, v in (overrides or {}).items():
            cmd += ["--set", f"{k}={v}"]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        with open(Path(tmp) / "run" / "eval.csv") as f:
            last = list(csv.DictReader(f))[-1]
    return {"algo": algo, "seed": seed, "steps": int(last["step"]),
            "minutes": float(last["wall_time_s"]) / 60}


WHOLE_RUN_ALGOS = ("sac", "fmer", "qvpo")


def whole_runs(env: str, budget: str, overrides: dict | None = None,
               repeats: int = 1) -> list[dict]:
    """``whole_run`` of each algorithm for seeds 0..repeats-1, seed by seed (so that a change
    of the machine's load during the measurement falls on all algorithms alike)."""
    return [whole_run(env, algo, budget, overrides, seed) for seed in range(repeats)
            for algo in WHOLE_RUN_ALGOS]
