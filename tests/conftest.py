"""Shared helpers: the ``fmer`` command as a subprocess, a tiny schedule, CSV comparison."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fmer.runlog import TIMING_COLUMNS

REPO = Path(__file__).resolve().parents[1]

# Small networks keep the real loop fast (the smoke budget sets the same ones)
TINY_NETS = ["--set", "actor.hidden=[32,32]", "--set", "critic.hidden=[32,32]"]


def run_fmer(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "fmer", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env=env, **kwargs)


def popen_fmer(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "fmer", *map(str, args)], cwd=REPO, env=env,
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
