"""``fmer bench``: what one SAC and one FMER update cost, side by side in one process.

Per network size (an env's observation and action dims) and torch thread count, it times
raw env steps, a SAC update and an FMER update at the config defaults (or ``--set``
overrides), interleaved round by round so that a busy machine slows both alike, and reports
medians after warm-up. It counts the matmul FLOPs of one update (backward included) and sets
the achieved rate beside a large fp32 matmul's on the same threads: a rate near the matmul's
means the update is compute bound and only fewer FLOPs can make it cheaper.

Clock: on one thread, the main thread's CPU time (``time.thread_time``), which other
processes on a shared machine cannot inflate; on more threads, wall time. ``--device cuda``
times the agents' updates and the matmul on the GPU in wall time, read after the GPU has
finished (``cuda_wall``); the CUDA path is untested on real hardware.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from fmer import flow
from fmer.buffer import Batch
from fmer.config import DEVICES, ConfigError, make_config, parse_overrides
from fmer.device import resolve_device
from fmer.envs import make_env
from fmer.nets import ActionBox
from fmer.train import make_agent

DEFAULT_ENVS = ("HalfCheetah-v5", "kitchen-4", "Humanoid-v5")
DEFAULT_THREADS = (1, 2)
MATMUL_N = 1024
CSV_COLUMNS = ("env", "obs_dim", "act_dim", "threads", "item", "reps", "ms", "clock",
               "wall_ms", "gflop", "gflop_per_s")
HEADLINE = "FMER/SAC update time ratio"
# Cheaper [ours] settings, timed for the generated page only: the defaults stay the spec's
# until learning with these is shown to be unaffected (shared/spec/FMER.md §4).
ALTERNATIVES = {
    "entropy term on 64 states": {"actor.entropy_batch": 64},
    "candidates for 64 states": {"actor.candidate_states": 64},
    "8 candidates for 64 states, entropy term on 64": {
        "actor.candidates": 8, "actor.candidate_states": 64, "actor.entropy_batch": 64},
    # the Pendulum learning test's setting (tests/test_agent.py), at full width and batch
    "8 candidates for 32 states, entropy term on 32": {
        "actor.candidates": 8, "actor.candidate_states": 32, "actor.entropy_batch": 32},
}
ENTROPY_BATCHES = (256, 128, 64)


@dataclass
class Timing:
    ms: float  # median, on the clock named by ``clock``
    wall_ms: float | None  # median wall time (None for the parts of an update)
    clock: str
    reps: int


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
                      name, reps) for k, v in samples.items()}


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


def _row(env, obs_dim, act_dim, threads, item, timing: Timing, gflop=None):
    rate = gflop / (timing.ms / 1e3) if gflop is not None else None
    return {"env": env, "obs_dim": obs_dim, "act_dim": act_dim, "threads": threads,
            "item": item, "reps": timing.reps, "ms": timing.ms, "clock": timing.clock,
            "wall_ms": timing.wall_ms, "gflop": gflop, "gflop_per_s": rate}


def bench(envs: Iterable[str] = DEFAULT_ENVS, threads: Iterable[int] = DEFAULT_THREADS,
          reps: int = 10, warmup: int = 3, env_steps: int = 1000, batch_size: int = 256,
          overrides: dict | None = None, seed: int = 0, device: str = "cpu") -> list[dict]:
    """Long-format rows (``CSV_COLUMNS``): per thread count the matmul rate, per env and thread
    count the raw env step, SAC and FMER updates (the agents and the matmul on ``device``).
    Restores torch's thread count."""
    envs, threads = list(envs), sorted(set(threads))
    if not envs or not threads or min(threads) < 1:
        raise ValueError(f"need at least one env and positive thread counts, got envs={envs}, "
                         f"threads={threads}")
    dims = {name: _env_dims(name) for name in envs}
    dev = resolve_device(device)
    overrides = {**(overrides or {}), "train.device": device}
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
    finally:
        torch.set_num_threads(before)
    return rows


class Sections:
    """Receives an agent's ``timer(name)`` calls: the time of each named part of an update.

    The caller times the whole update as ``"update"`` and ends it with ``close_update()``;
    ``medians(skip)`` drops the first ``skip`` updates and adds ``rest``, the time no part
    covers, per update (medians of parts do not add up)."""

    def __init__(self, threads: int, device: torch.device = CPU):
        self.clock_name, self.clock = _clock(threads, device)
        self.current: dict[str, float] = {}
        self.updates: list[dict[str, float]] = []

    @contextmanager
    def __call__(self, name: str):
        t0 = self.clock()
        try:
            yield
        finally:
            self.current[name] = self.current.get(name, 0.0) + (self.clock() - t0) * 1e3

    def close_update(self) -> None:
        self.updates.append(self.current)
        self.current = {}

    def medians(self, skip: int) -> dict[str, float]:
        kept = self.updates[skip:]
        names = [k for k in dict.fromkeys(k for u in kept for k in u) if k != "update"]
        out = {k: statistics.median(u.get(k, 0.0) for u in kept) for k in names}
        if names:
            out["rest"] = statistics.median(u["update"] - sum(u.get(k, 0.0) for k in names)
                                            for u in kept)
        return out


def _bench_updates(name, obs_dim, box, threads, reps, warmup, batch_size, overrides, seed,
                   device: torch.device = CPU):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    batch = Batch(**{k: v.to(device) for k, v in
                     vars(random_batch(obs_dim, box.dim, batch_size, gen)).items()})
    agents = {}
    for algo in ("sac", "fmer"):
        cfg = make_config(name, algo, seed, overrides={**overrides,
                                                       "train.batch_size": batch_size})
        agents[algo] = make_agent(cfg, obs_dim, box)
    flops = {algo: count_flops(lambda a=agent: a.update(batch)) / 1e9
             for algo, agent in agents.items()}
    sections = Sections(threads, device)
    agents["fmer"].timer = sections

    def fmer_update():
        with sections("update"):
            agents["fmer"].update(batch)
        sections.close_update()

    timings = interleaved({"sac": lambda: agents["sac"].update(batch), "fmer": fmer_update},
                          reps, warmup, threads, device)
    parts = sections.medians(warmup)
    if not parts:
        raise RuntimeError("the FMER agent timed no parts of its update through its `timer`")
    rows = [_row(name, obs_dim, box.dim, threads, f"{algo}_update", timings[algo], flops[algo])
            for algo in agents]
    for part, ms in parts.items():
        rows.append(_row(name, obs_dim, box.dim, threads, f"fmer_{part}",
                         Timing(ms, None, sections.clock_name, reps)))
    return rows


def entropy_noise(env_name: str, sizes: Iterable[int] = ENTROPY_BATCHES, draws: int = 32,
                  overrides: dict | None = None, seed: int = 0) -> list[dict]:
    """What an entropy term on fewer states costs in noise, for a fresh policy on states the
    env visits under random actions: per sub-batch size, the std over ``draws`` of the
    estimate −mean log π and the gradient's relative std, sqrt(E||g − ḡ||²)/||ḡ||."""
    env = make_env(env_name, seed=seed)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    states = []
    for _ in range(2000):
        states.append(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    states = torch.as_tensor(np.asarray(states), dtype=torch.float32)
    torch.manual_seed(seed)
    box = ActionBox(env.action_space.low, env.action_space.high)
    cfg = make_config(env_name, "fmer", seed, overrides=overrides)
    agent = make_agent(cfg, states.shape[1], box)
    v, e = agent.velocity, cfg.entropy
    gen = torch.Generator().manual_seed(seed)
    out = []
    for n in sizes:
        values, grads = [], []
        for _ in range(draws):
            s = states[torch.randint(0, len(states), (n,), generator=gen)]
            z0 = torch.randn(n, box.dim, generator=gen)
            _, logp = flow.log_prob(v, s, z0, cfg.actor.flow_steps, e.divergence, e.logdet,
                                    e.tanh_correction, e.probes, gen)
            v.zero_grad(set_to_none=True)
            logp.mean().backward()
            values.append(-logp.mean().item())
            grads.append(torch.cat([p.grad.flatten() for p in v.parameters()]))
        g = torch.stack(grads)
        spread = (g - g.mean(0)).pow(2).sum(1).mean().sqrt() / g.mean(0).norm()
        out.append({"entropy_batch": n, "estimate_std": statistics.stdev(values),
                    "grad_rel_std": spread.item()})
    return out


# --- reporting -------------------------------------------------------------------------------
def _lookup(rows, env, threads, item) -> dict | None:
    for r in rows:
        if r["env"] == env and r["threads"] == threads and r["item"] == item:
            return r
    return None


def summary(rows: list[dict]) -> list[dict]:
    """One wide record per (env, threads), in the order benched."""
    out = []
    keys = dict.fromkeys((r["env"], r["threads"]) for r in rows if r["env"])
    for env, n in keys:
        sac, fmer = _lookup(rows, env, n, "sac_update"), _lookup(rows, env, n, "fmer_update")
        step = next(r for r in rows if r["env"] == env and r["item"] == "env_step")
        mm = _lookup(rows, "", n, "matmul")
        out.append({
            "env": env, "dims": f"{sac['obs_dim']}/{sac['act_dim']}", "threads": n,
            "env_steps_per_s": 1e3 / step["ms"], "sac_ms": sac["ms"], "fmer_ms": fmer["ms"],
            "ratio": fmer["ms"] / sac["ms"], "sac_gflop": sac["gflop"],
            "fmer_gflop": fmer["gflop"], "fmer_gflop_per_s": fmer["gflop_per_s"],
            "matmul_gflop_per_s": mm["gflop_per_s"], "clock": sac["clock"],
            "floor_ratio": fmer["gflop"] / mm["gflop_per_s"] * 1e3 / sac["ms"],
        })
    return out


TABLE_COLUMNS = (
    ("env", "env", "{}"), ("obs/act", "dims", "{}"), ("threads", "threads", "{}"),
    ("env steps/s", "env_steps_per_s", "{:,.0f}"), ("SAC ms", "sac_ms", "{:.1f}"),
    ("FMER ms", "fmer_ms", "{:.1f}"), ("FMER/SAC", "ratio", "{:.2f}"),
    ("SAC GFLOP", "sac_gflop", "{:.2f}"), ("FMER GFLOP", "fmer_gflop", "{:.2f}"),
    ("FMER GFLOP/s", "fmer_gflop_per_s", "{:.0f}"),
    ("matmul GFLOP/s", "matmul_gflop_per_s", "{:.0f}"), ("floor/SAC", "floor_ratio", "{:.2f}"),
)


ALTERNATIVE_COLUMNS = (("setting", "setting", "{}"), ("SAC ms", "sac_ms", "{:.1f}"),
                       ("FMER ms", "fmer_ms", "{:.1f}"), ("FMER/SAC", "ratio", "{:.2f}"))
NOISE_COLUMNS = (("entropy_batch", "entropy_batch", "{}"),
                 ("std of -mean log pi", "estimate_std", "{:.3f}"),
                 ("gradient relative std", "grad_rel_std", "{:.2f}"))


def parts_summary(rows: list[dict]) -> tuple[list[dict], tuple]:
    """The FMER update's parts per (env, threads) and the columns to print them with."""
    names = list(dict.fromkeys(r["item"][5:] for r in rows if r["item"].startswith("fmer_")
                               and r["item"] != "fmer_update"))
    out = []
    for env, n in dict.fromkeys((r["env"], r["threads"]) for r in rows if r["env"]):
        total = _lookup(rows, env, n, "fmer_update")["ms"]
        rec = {"env": env, "threads": n, "fmer_ms": total}
        for part in names:
            found = _lookup(rows, env, n, f"fmer_{part}")
            rec[part] = found["ms"] if found else 0.0
        out.append(rec)
    columns = (("env", "env", "{}"), ("threads", "threads", "{}"),
               ("FMER ms", "fmer_ms", "{:.1f}"),
               *((p.replace("_", " "), p, "{:.1f}") for p in names))
    return out, columns


def format_table(records: list[dict], columns=TABLE_COLUMNS, markdown: bool = False) -> str:
    header = [h for h, _, _ in columns]
    body = [[fmt.format(rec[key]) for _, key, fmt in columns] for rec in records]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])
    widths = [max(len(c) for c in col) for col in zip(header, *body, strict=True)]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True))
                     for line in [header, *body])


def headline(records: list[dict]) -> tuple[dict, str]:
    """The first env on the fewest threads, and the last line of every bench."""
    rec = min(records, key=lambda r: r["threads"])
    rec = next(r for r in records if r["threads"] == rec["threads"])
    return rec, f"{HEADLINE}: {rec['ratio']:.2f}"


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r[k] is None else r[k]) for k in CSV_COLUMNS})


# --- end to end and the generated page -------------------------------------------------------
def end_to_end(env: str, algo: str, steps: int, learning_starts: int = 1000,
               overrides: dict | None = None) -> float:
    """Env steps/s of ``fmer train`` (a subprocess, one thread) over ``steps`` steps that each
    make an update, read from the run's train.csv."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    total = learning_starts + steps
    sets = {"train.total_steps": total, "train.learning_starts": learning_starts,
            "train.log_every": learning_starts, "train.eval_every": total,
            "train.eval_episodes": 1, "train.checkpoint_every": total, **(overrides or {})}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "fmer", "train", "--env", env, "--algo", algo,
               "--seed", "0", "--out", tmp + "/run"]
        for k, v in sets.items():
            cmd += ["--set", f"{k}={v}"]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        with open(Path(tmp) / "run" / "train.csv") as f:
            last = list(csv.DictReader(f))[-1]
    return float(last["env_steps_per_s"])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    return {"cpu": _cpu_model(), "logical cores": str(os.cpu_count()),
            "load average (1 min) at start": f"{os.getloadavg()[0]:.1f}",
            "python": platform.python_version(), "torch": torch.__version__,
            "os": platform.platform()}


def markdown(records: list[dict], info: dict[str, str], command: str,
             e2e: dict[str, float] | None = None, alternatives: list[dict] | None = None,
             noise: list[dict] | None = None, by_part: tuple | None = None) -> str:
    rec, line = headline(records)
    parts = [
        "# Performance: one SAC and one FMER update, side by side",
        "",
        f"Generated by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; do not edit by hand.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        "",
        "CPU only. `fmer bench --device cuda` times the same updates on a GPU; that path is "
        "untested on real hardware (docs/cluster.md).",
        "",
        "## Update cost (batch 256, config defaults, median after warm-up)",
        "",
        "One thread: the main thread's CPU time, which other processes on a shared machine "
        "cannot inflate; more threads: wall time, which needs as many idle cores to mean "
        "anything (see the load average above). GFLOP counts the matmuls of one update, "
        "backward included; `matmul GFLOP/s` is a 1024³ fp32 matmul on the same threads, and "
        "`floor/SAC` is the FMER update's FLOPs at that rate over the SAC update's time: no "
        "implementation of the same float32 math on this machine gets below it.",
        "",
        format_table(records, markdown=True),
        "",
        f"**{line}** ({rec['env']}, {rec['threads']} thread(s)). FMER's matmuls alone, at the "
        f"matmul rate, take {rec['floor_ratio']:.2f}× SAC's update there.",
        "",
    ]
    if by_part:
        parts += ["### FMER's update by part (ms, same clock)", "",
                  "Each part as the agent times it inside the update; `rest` is what no part "
                  "covers (reading the metrics out).", "",
                  format_table(*by_part, markdown=True), ""]
    if alternatives:
        parts += [f"## Cheaper settings ({rec['env']}, {rec['threads']} thread(s))", "",
                  "Not the defaults: the spec keeps these [ours] knobs at all states and 16 "
                  "candidates until learning with fewer is shown to be unaffected.", "",
                  format_table(alternatives, ALTERNATIVE_COLUMNS, markdown=True), ""]
    if noise:
        parts += [f"## The entropy term on fewer states: its noise ({rec['env']})", "",
                  "A fresh policy on states visited under random actions; spread over draws "
                  "of states and z0.", "", format_table(noise, NOISE_COLUMNS, markdown=True),
                  ""]
    if e2e:
        parts += ["## End to end: `fmer train` on HalfCheetah-v5 (one thread, wall time)", "",
                  "| algo | env steps/s (one update per step) |", "|---|---|",
                  *[f"| {algo} | {rate:.1f} |" for algo, rate in e2e.items()], ""]
    return "\n".join(parts)


# --- command line ----------------------------------------------------------------------------
def alternatives(env: str, reps: int, warmup: int, batch_size: int, overrides: dict,
                 seed: int = 0) -> list[dict]:
    """FMER/SAC on one thread for each of ``ALTERNATIVES`` on top of ``overrides``."""
    obs_dim, box = _env_dims(env)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = []
        for name, alt in ALTERNATIVES.items():
            rows = _bench_updates(env, obs_dim, box, 1, reps, warmup, batch_size,
                                  {**overrides, **alt}, seed)
            sac, fmer = (_lookup(rows, env, 1, f"{a}_update") for a in ("sac", "fmer"))
            out.append({"setting": name, "sac_ms": sac["ms"], "fmer_ms": fmer["ms"],
                        "ratio": fmer["ms"] / sac["ms"]})
    finally:
        torch.set_num_threads(before)
    return out


def _cli(args: argparse.Namespace) -> int:
    if args.markdown and args.device != "cpu":
        raise ConfigError("--markdown writes the CPU page (paper/performance.md); "
                          f"run it without --device {args.device}")
    overrides = parse_overrides(args.set)
    rows = bench(args.envs, args.threads, args.reps, args.warmup, args.env_steps,
                 args.batch_size, overrides, device=args.device)
    records = summary(rows)
    parts, part_columns = parts_summary(rows)
    write_csv(rows, Path(args.csv))
    print(format_table(records))
    print("FMER's update by part, ms:")
    print(format_table(parts, part_columns))
    print(f"CSV: {args.csv}")
    rec, line = headline(records)
    if args.markdown:
        alts = alternatives(rec["env"], args.reps, args.warmup, args.batch_size, overrides)
        print(format_table(alts, ALTERNATIVE_COLUMNS))
        noise = entropy_noise(rec["env"], overrides=overrides)
        print(format_table(noise, NOISE_COLUMNS))
        e2e = {algo: end_to_end("HalfCheetah-v5", algo, args.train_steps, overrides=overrides)
               for algo in ("sac", "fmer")} if args.train_steps else {}
        command = "fmer bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] \
            else "fmer bench"
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(markdown(records, machine(), command, e2e, alts, noise,
                                                (parts, part_columns)))
        print(f"Markdown: {args.markdown}")
    print(f"headline: {rec['env']}, {rec['threads']} thread(s), {rec['clock']} clock")
    print(line)
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="time SAC and FMER updates side by side",
        description="Time raw env steps, a SAC update and an FMER update per network size and "
                    "thread count in one process; print a table, write CSV; the last line is "
                    f"'{HEADLINE}: R' (first env, fewest threads).",
    )
    p.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS),
                   help="envs whose network sizes to bench (default: %(default)s)")
    p.add_argument("--threads", nargs="+", type=_positive, default=list(DEFAULT_THREADS),
                   help="torch thread counts (default: %(default)s)")
    p.add_argument("--reps", type=_positive, default=10, help="timed rounds (default: 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default: 3)")
    p.add_argument("--env-steps", type=_positive, default=1000,
                   help="raw env steps timed per env (default: 1000)")
    p.add_argument("--batch-size", type=_positive, default=256)
    p.add_argument("--csv", default="results/bench/bench.csv", help="long-format CSV output")
    p.add_argument("--markdown", metavar="PATH",
                   help="also write a page with the table, the machine and end-to-end "
                        "`fmer train` env steps/s on HalfCheetah-v5 (e.g. paper/performance.md)")
    p.add_argument("--train-steps", type=int, default=200,
                   help="updating steps per algorithm in the end-to-end runs (0: skip them)")
    p.add_argument("--device", choices=DEVICES, default="cpu",
                   help="where the agents and the matmul run (default: cpu); not with "
                        "--markdown")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for both agents, e.g. --set actor.entropy_batch=64")
    p.set_defaults(func=_cli)
