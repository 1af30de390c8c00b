"""Shared helpers: one torch thread, the ``fmer`` command as a subprocess, a tiny schedule,
CSV comparison, and Pendulum learning against a random policy."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from fmer.config import load_yaml, make_config
from fmer.envs import make_env, run_episode
from fmer.runlog import TIMING_COLUMNS
from fmer.train import train

REPO = Path(__file__).resolve().parents[1]

# One torch thread in every test and in every process a test starts, as runs train
# (train.threads): `make test` gives each of its two workers a core, and the suite's small ops
# on two threads per process only wait on each other.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)

SNAKEFILE = REPO / "workflow" / "Snakefile"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
CONFIG = load_yaml(REPO / "config" / "config.yaml")

# Small networks keep the real loop fast (the smoke budget sets the same ones)
TINY_NETS = ["--set", "actor.hidden=[32,32]", "--set", "critic.hidden=[32,32]"]


def run_fmer(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmer", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, **kwargs)


def snakemake(workdir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """The workflow on `workdir` (-d), as a user runs it."""
    cmd = [str(SNAKEMAKE), "-s", str(SNAKEFILE), "-d", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def popen_fmer(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fmer", *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows_without_timing(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS}
                for row in csv.DictReader(f)]


def smoke_args(out: Path, seed: int = 0, algo: str = "sac") -> list[str]:
    return ["train", "--env", "Pendulum-v1", "--algo", algo, "--seed", str(seed),
            "--budget", "smoke", "--out", str(out)]


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """A complete SAC run on the smoke budget (seed 0). Copy it before changing anything."""
    out = tmp_path_factory.mktemp("smoke") / "run"
    proc = run_fmer(*smoke_args(out))
    assert proc.returncode == 0, proc.stderr
    return out


def another_value(value):
    """Another valid value of a config key's type."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, list):
        return [v * 2 for v in value]
    if isinstance(value, str):
        return {"silu": "relu", "mish": "relu", "sinusoidal": "linear", "softmax": "top1",
                "hutchinson": "exact", "trace": "exact"}[value]
    return value * 2 if value else 1


def random_pendulum_return(seed: int, episodes: int) -> float:
    """The mean return of uniformly random actions on Pendulum-v1: what learning must beat."""
    env = make_env("Pendulum-v1")
    rng = np.random.default_rng(seed)
    returns = [run_episode(env, lambda _: rng.uniform(-2, 2, 1).astype(np.float32),
                           10_000 * seed + ep)[0] for ep in range(episodes)]
    return float(np.mean(returns))


def learn_pendulum(out: Path, algo: str, seed: int, overrides: dict,
                   from_step: int) -> tuple[float, float, dict[int, float]]:
    """Trains `algo` on Pendulum-v1 and returns the best evaluation from `from_step` on, a
    random policy's return over as many episodes, and every evaluation by step. Learning
    tests ask for the best of a window, not a value at one step: where a run takes off depends
    on float rounding, and single evaluations dip after take-off."""
    cfg = make_config("Pendulum-v1", algo, seed, overrides=overrides)
    train(cfg, out)
    with open(out / "eval.csv", newline="") as f:
        returns = {int(r["step"]): float(r["return_mean"]) for r in csv.DictReader(f)}
    random_return = random_pendulum_return(seed, cfg.train.eval_episodes)
    assert random_return < -900  # sanity: the random policy really is bad
    return max(r for step, r in returns.items() if step >= from_step), random_return, returns


def pytest_collection_modifyitems(items):
    """Files with the most slow tests first, each file's order kept: on two workers (make
    test: pytest-xdist, --dist loadfile, a file each at a time, so that a file's module
    fixtures are built once) the long files start early and the short ones fill in around
    them, rather than a long file running alone at the end. Not --dist loadgroup with groups
    per fixture: pytest-xdist 3.8 names a test's group in its node id, which pytest 9 no
    longer lets a plugin change, so every test became a unit of its own and a module fixture
    (the smoke grid) was built again on each worker, after each switch of file."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])
