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
of each algorithm (``--repeats`` seeds) on that budget's schedule and compares wall times. The
Markdown page is written by ``fmer.analysis.performance``.
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
from fmer.analysis import cost_claim
from fmer.analysis.stats import t_interval
from fmer.buffer import Batch
from fmer.config import make_config
from fmer.device import resolve_device
from fmer.envs import make_env
from fmer.execution import bf16_matrix_units
from fmer.markdown import table as markdown_table
from fmer.nets import ActionBox
from fmer.train import make_agent

DEFAULT_ENVS = ("HalfCheetah-v5", "kitchen-4", "Humanoid-v5")
DEFAULT_THREADS = (1, 2)
MATMUL_N = 1024
CSV_COLUMNS = ("env", "obs_dim", "act_dim", "threads", "setting", "item", "reps", "ms",
               "clock", "wall_ms", "gflop", "gflop_per_s", "ratio", "ratio_low", "ratio_high")
DEFAULTS = "defaults"  # the ``setting`` of rows measured at the package defaults (+ --set)
# How the updates run besides eager float32 (fmer.execution): ``--execution`` names; each is
# config overrides and a compile mode. Their rows' ``setting`` is the name; a compiled one
# also has ``sac_compile`` / ``fmer_compile`` rows: the wall time of the first call, which
# compiles.
EXECUTIONS: dict[str, tuple[dict, str | None]] = {
    "compiled": ({"train.compile": True}, "default"),
    "cuda-graphs": ({"train.compile": True}, "reduce-overhead"),
    "bfloat16": ({"train.precision": "bfloat16"}, None),
    "compiled-bfloat16": ({"train.compile": True, "train.precision": "bfloat16"}, "default"),
}
HEADLINE = "FMER/SAC update time ratio"
QVPO_HEADLINE = "QVPO/FMER update time ratio"
QVPO_RATIO = "qvpo_over_fmer"  # the item of the rows that hold that ratio and its interval
EFFICIENCY = "FMER update efficiency"


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


# The labels FMER.update and QVPO.update give their parts (torch.profiler.record_function),
# in update order.
FMER_PARTS = ("critic_target", "critic_step", "candidates", "temperature", "cfm", "entropy",
              "actor_step", "alpha")
QVPO_PARTS = ("critic_target", "critic_step", "candidates", "weights", "denoising",
              "actor_step", "actor_target")
# where each agent's record_function is looked up, and its labels
LABELLED = {"fmer": (agent_module, FMER_PARTS), "qvpo": (qvpo_module, QVPO_PARTS)}


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
    module, labels = LABELLED[algo]
    clock = _clock(threads, device)[1]
    per_update = []
    for _ in range(reps):
        parts = PartClock(threads, device)
        with patch.object(module, "record_function", parts):
            t0 = clock()
            update()
            total = (clock() - t0) * 1e3
        per_update.append({**parts.times, "rest": total - sum(parts.times.values())})
    return {name: statistics.median(t.get(name, 0.0) for t in per_update)
            for name in (*labels, "rest")}


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


# --- what the rows say -----------------------------------------------------------------------
def lookup(rows: list[dict], env: str, threads: int, item: str,
           setting: str = DEFAULTS) -> dict | None:
    for r in rows:
        if (r["env"], r["threads"], r["item"], r["setting"]) == (env, threads, item, setting):
            return r
    return None


def _record(rows, env, n, setting=DEFAULTS) -> dict:
    sac, fmer = (lookup(rows, env, n, f"{a}_update", setting) for a in ("sac", "fmer"))
    mm = lookup(rows, "", n, "matmul")
    return {"env": env, "dims": f"{sac['obs_dim']}/{sac['act_dim']}", "threads": n,
            "setting": setting, "sac_ms": sac["ms"], "fmer_ms": fmer["ms"],
            "ratio": fmer["ms"] / sac["ms"], "sac_gflop": sac["gflop"],
            "fmer_gflop": fmer["gflop"], "fmer_gflop_per_s": fmer["gflop_per_s"],
            "matmul_gflop_per_s": mm["gflop_per_s"],
            "efficiency": fmer["gflop_per_s"] / mm["gflop_per_s"], "clock": sac["clock"],
            "floor_ratio": fmer["gflop"] / mm["gflop_per_s"] * 1e3 / sac["ms"],
            **_qvpo_record(rows, env, n, setting)}


def _qvpo_record(rows, env, n, setting) -> dict:
    """QVPO's update beside FMER's, where it was timed (None elsewhere)."""
    qvpo, ratio = (lookup(rows, env, n, item, setting) for item in ("qvpo_update", QVPO_RATIO))
    if qvpo is None or ratio is None:
        return dict.fromkeys(("qvpo_ms", "qvpo_gflop", "qvpo_ratio", "qvpo_ratio_low",
                              "qvpo_ratio_high", "qvpo_rounds"))
    return {"qvpo_ms": qvpo["ms"], "qvpo_gflop": qvpo["gflop"], "qvpo_ratio": ratio["ratio"],
            "qvpo_ratio_low": ratio["ratio_low"], "qvpo_ratio_high": ratio["ratio_high"],
            "qvpo_rounds": ratio["reps"]}


def summary(rows: list[dict]) -> list[dict]:
    """One wide record per (env, threads) at the defaults, in the order benched, with the
    env's raw step rate."""
    out = []
    for env, n in dict.fromkeys((r["env"], r["threads"]) for r in rows
                                if r["env"] and r["setting"] == DEFAULTS):
        step = next(r for r in rows if r["env"] == env and r["item"] == "env_step")
        out.append({**_record(rows, env, n), "env_steps_per_s": 1e3 / step["ms"]})
    return out


def settings_summary(rows: list[dict]) -> list[dict]:
    """One wide record per named setting (first env, fewest threads)."""
    return [_record(rows, r["env"], r["threads"], r["setting"]) for r in rows
            if r["setting"] not in (DEFAULTS, *EXECUTIONS) and r["item"] == "fmer_update"]


def execution_note(device: str) -> str:
    """Where bf16 matmuls run natively here, as the execution table's caption says."""
    units = bf16_matrix_units(resolve_device(device))
    return (f"bf16 matrix units: {units}" if units else
            "no bf16 matrix units: bf16 matmuls are emulated")


def execution_summary(rows: list[dict]) -> list[dict]:
    """Eager float32 and each benched execution (first env, fewest threads): the update
    times, FMER's against eager's, and for a compiled one the first call's wall time and the
    updates after which a compiled FMER has paid for it (None: it does not pay)."""
    runs = [r for r in rows if r["item"] == "fmer_update" and r["setting"] in EXECUTIONS]
    if not runs:
        return []
    env, n = runs[0]["env"], runs[0]["threads"]
    eager = lookup(rows, env, n, "fmer_update")["ms"]
    out = []
    for setting in (DEFAULTS, *(r["setting"] for r in runs)):
        sac, fmer = (lookup(rows, env, n, f"{a}_update", setting)["ms"] for a in ("sac", "fmer"))
        compile_s = {a: (r["wall_ms"] / 1e3 if r else None) for a, r in
                     ((a, lookup(rows, env, n, f"{a}_compile", setting)) for a in ("sac", "fmer"))}
        saved = eager - fmer
        payback = (compile_s["fmer"] * 1e3 / saved if compile_s["fmer"] and saved > 0
                   else None)
        out.append({"setting": "eager float32" if setting == DEFAULTS else setting,
                    "sac_ms": sac, "fmer_ms": fmer, "ratio": fmer / sac,
                    "vs_eager": fmer / eager, "sac_compile_s": compile_s["sac"],
                    "fmer_compile_s": compile_s["fmer"], "payback": payback})
    return out


def parts_summary(rows: list[dict], algo: str = "fmer") -> list[dict]:
    """The FMER (or QVPO) update's parts (ms) per (env, threads), at the defaults."""
    labels = (*LABELLED[algo][1], "rest")
    out = []
    for rec in summary(rows):
        if rec.get(f"{algo}_ms") is None:
            continue
        parts = {r["item"].removeprefix(f"{algo}_"): r["ms"] for r in rows
                 if (r["env"], r["threads"], r["setting"]) == (rec["env"], rec["threads"],
                                                               DEFAULTS)
                 and r["item"] in {f"{algo}_{p}" for p in labels}}
        out.append({"env": rec["env"], "threads": rec["threads"],
                    f"{algo}_ms": rec[f"{algo}_ms"], **parts})
    return out


TABLE_COLUMNS = (
    ("env", "env", "{}"), ("obs/act", "dims", "{}"), ("threads", "threads", "{}"),
    ("env steps/s", "env_steps_per_s", "{:,.0f}"), ("SAC ms", "sac_ms", "{:.1f}"),
    ("FMER ms", "fmer_ms", "{:.1f}"), ("FMER/SAC", "ratio", "{:.2f}"),
    ("SAC GFLOP", "sac_gflop", "{:.2f}"), ("FMER GFLOP", "fmer_gflop", "{:.2f}"),
    ("FMER GFLOP/s", "fmer_gflop_per_s", "{:.0f}"),
    ("matmul GFLOP/s", "matmul_gflop_per_s", "{:.0f}"), ("efficiency", "efficiency", "{:.0%}"),
    ("floor/SAC", "floor_ratio", "{:.2f}"),
)
QVPO_COLUMNS = (
    ("env", "env", "{}"), ("threads", "threads", "{}"), ("FMER ms", "fmer_ms", "{:.1f}"),
    ("QVPO ms", "qvpo_ms", "{:.0f}"), ("QVPO/FMER", "qvpo_ratio", "{:.1f}"),
    ("95% interval", "qvpo_interval", "{}"), ("rounds", "qvpo_rounds", "{}"),
    ("QVPO GFLOP", "qvpo_gflop", "{:.1f}"), ("FMER GFLOP", "fmer_gflop", "{:.2f}"),
)
SETTING_COLUMNS = (
    ("setting", "setting", "{}"), ("SAC ms", "sac_ms", "{:.1f}"), ("FMER ms", "fmer_ms", "{:.1f}"),
    ("FMER/SAC", "ratio", "{:.2f}"), ("FMER GFLOP", "fmer_gflop", "{:.2f}"),
    ("efficiency", "efficiency", "{:.0%}"),
)
PART_COLUMNS = (("env", "env", "{}"), ("threads", "threads", "{}"),
                ("FMER ms", "fmer_ms", "{:.1f}"),
                *((p.replace("_", " "), p, "{:.1f}") for p in (*FMER_PARTS, "rest")))
QVPO_PART_COLUMNS = (("env", "env", "{}"), ("threads", "threads", "{}"),
                     ("QVPO ms", "qvpo_ms", "{:.0f}"),
                     *((p.replace("_", " "), p, "{:.0f}") for p in (*QVPO_PARTS, "rest")))
WHOLE_RUN_COLUMNS = (("algo", "algo", "{}"), ("seed", "seed", "{}"),
                     ("env steps", "steps", "{:,}"), ("wall time (min)", "minutes", "{:.1f}"))
EXECUTION_COLUMNS = (
    ("execution", "setting", "{}"), ("SAC ms", "sac_ms", "{:.1f}"),
    ("FMER ms", "fmer_ms", "{:.1f}"), ("FMER/SAC", "ratio", "{:.2f}"),
    ("FMER / eager", "vs_eager", "{:.2f}"), ("SAC compile s", "sac_compile_s", "{:.0f}"),
    ("FMER compile s", "fmer_compile_s", "{:.0f}"),
    ("FMER pays back after (updates)", "payback", "{:,.0f}"),
)


def format_table(records: list[dict], columns=TABLE_COLUMNS, markdown: bool = False) -> str:
    header = [h for h, _, _ in columns]
    body = [["" if rec[key] is None else fmt.format(rec[key]) for _, key, fmt in columns]
            for rec in records]
    if markdown:
        return markdown_table(header, body)
    widths = [max(len(c) for c in col) for col in zip(header, *body, strict=True)]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True))
                     for line in [header, *body])


def qvpo_summary(rows: list[dict]) -> list[dict]:
    """QVPO's update beside FMER's per (env, threads), at the defaults, with the interval."""
    return [{**rec, "qvpo_interval": f"[{rec['qvpo_ratio_low']:.1f}, "
                                     f"{rec['qvpo_ratio_high']:.1f}]"}
            for rec in summary(rows) if rec["qvpo_ms"] is not None]


def qvpo_ratio(rows: list[dict]) -> tuple[float, float, float, int] | None:
    """What the cost claim's rule reads (fmer.analysis.cost_claim): QVPO's update over FMER's,
    its 95% interval and the rounds, on the first env at one thread (None if not timed)."""
    recs = [r for r in summary(rows) if r["threads"] == 1 and r["qvpo_ms"] is not None]
    if not recs:
        return None
    r = recs[0]
    return r["qvpo_ratio"], r["qvpo_ratio_low"], r["qvpo_ratio_high"], int(r["qvpo_rounds"])


def cost_claim_line(rows: list[dict]) -> str:
    """The cost claim's rule applied to these rows, as one line."""
    measured = qvpo_ratio(rows)
    if measured is None:
        return (f"Cost claim against QVPO: {cost_claim.verdict(np.nan, np.nan, np.nan, 0)} "
                "(no one-thread QVPO timing)")
    r, low, high, n = measured
    return (f"Cost claim against QVPO (fmer.analysis.cost_claim): "
            f"{cost_claim.verdict(r, low, high, n)}, {cost_claim.magnitude(low, high)} "
            f"({QVPO_HEADLINE} {r:.1f} [{low:.1f}, {high:.1f}], n = {n} rounds)")


def headline(records: list[dict]) -> tuple[dict, list[str]]:
    """The first env on the fewest threads, and the last two lines of every bench: the
    efficiency, then the ratio."""
    fewest = min(r["threads"] for r in records)
    rec = next(r for r in records if r["threads"] == fewest)
    return rec, [f"{EFFICIENCY}: {rec['efficiency']:.0%} of the matmul rate",
                 f"{HEADLINE}: {rec['ratio']:.2f}"]


INT_COLUMNS = ("obs_dim", "act_dim", "threads", "reps")
TEXT_COLUMNS = ("env", "setting", "item", "clock")


def read_csv(path: str | Path) -> list[dict]:
    """Rows as ``write_csv`` wrote them: numbers as numbers, empty cells None (``env`` of the
    matmul rows stays "")."""
    def value(column, text):
        if column in TEXT_COLUMNS:
            return text
        if text == "":
            return None
        return int(text) if column in INT_COLUMNS else float(text)

    with Path(path).open(newline="") as f:
        return [{c: value(c, r.get(c, "")) for c in CSV_COLUMNS} for r in csv.DictReader(f)]


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r[k] is None else r[k]) for k in CSV_COLUMNS})


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


def whole_run_ratios(runs: list[dict]) -> list[str]:
    """FMER over SAC and QVPO over FMER in wall time: the geometric mean over the seeds both
    have, with a 95% t interval of the log ratios from two seeds on."""
    minutes = {(r["algo"], r["seed"]): r["minutes"] for r in runs}
    lines = []
    for num, den in (("fmer", "sac"), ("qvpo", "fmer")):
        seeds = sorted(s for a, s in minutes if a == num and (den, s) in minutes)
        if not seeds:
            continue
        logs = [np.log(minutes[num, s] / minutes[den, s]) for s in seeds]
        mean, low, high = (float(np.exp(x)) for x in t_interval(logs))
        interval = f" [{low:.2f}, {high:.2f}]" if len(seeds) > 1 else ""
        lines.append(f"{num.upper()}/{den.upper()} whole-run wall time: {mean:.2f}{interval} "
                     f"(n = {len(seeds)} seed(s))")
    return lines
