"""``fmer verify --rerun RUN_DIR [--steps N]``: retrain a run from its meta.json and compare.

The run is trained again from the config its meta.json records (same env, algorithm, seed and
every setting) into a temporary directory, and its eval.csv and train.csv rows are compared
with the run's own, value by value as written, timing columns aside (``TIMING_COLUMNS``: they
depend on the machine's speed). Identical logs need the same package, library versions and
CPU float kernels as the original (meta.json records them); a difference names the first row
and column where the two part. A run whose meta.json records another float fingerprint
(fmer.device) than this machine's is not retrained: its logs are reproducible on a machine like
the one that made it, and a difference here would say nothing about the code. A run made
before fingerprints were recorded is retrained, and a difference says that it may be the
machine's.

The config carries how the run's updates ran (``train.compile``, ``train.precision``:
fmer.execution), so the rerun runs them the same way; a compiled run's rerun was identical
when checked (once, by hand: the suite compiles once, tests/test_execution.py).

``--steps N`` trains only up to step N (``train.total_steps`` = N; the eval, log and checkpoint
cadences, the replay buffer's size and the horizon of QVPO's entropy weight stay the
original's, so the steps before N see the same computation) and compares the rows with step
<= N; a row at step N that only one side has (the shortened run evaluates and logs at its last
step) is left out.

make test checks two shipped runs this way (tests/test_shipped.py).
"""

from __future__ import annotations

import copy
import csv
import tempfile
from pathlib import Path

import torch

from fmer.config import config_from_dict
from fmer.device import float_fingerprint
from fmer.runlog import LOG_FILES, TIMING_COLUMNS, RunLogError, read_meta
from fmer.train import train


def _rows(path: Path) -> tuple[list[str], dict[int, dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = [c for c in reader.fieldnames or [] if c not in TIMING_COLUMNS]
        rows = {int(r["step"]): {c: r[c] for c in columns} for r in reader}
    return columns, rows


def compare_logs(shipped: str | Path, rerun: str | Path, steps: int | None = None) -> str | None:
    """The first difference between the logs of two run directories, timing columns aside, or
    None. With ``steps``, only rows with step <= steps count, and a row at step ``steps``
    that only one side has is left out (a shortened run logs its last step)."""
    for name in LOG_FILES:
        a_cols, a = _rows(Path(shipped) / name)
        b_cols, b = _rows(Path(rerun) / name)
        if a_cols != b_cols:
            return f"{name}: columns differ: shipped {a_cols}, rerun {b_cols}"
        keep = (lambda s: True) if steps is None else (lambda s: s <= steps)
        a_steps = {s for s in a if keep(s)}
        b_steps = {s for s in b if keep(s)}
        if steps is not None and (steps in a_steps) != (steps in b_steps):
            a_steps.discard(steps)
            b_steps.discard(steps)
        for step in sorted(a_steps | b_steps):
            if step not in b_steps:
                return f"{name}: step {step}: a row in the shipped log only"
            if step not in a_steps:
                return f"{name}: step {step}: a row in the rerun only"
            for column in a_cols:
                if a[step][column] != b[step][column]:
                    return (f"{name}: step {step}, column {column}: shipped "
                            f"{a[step][column]!r}, rerun {b[step][column]!r}")
    return None


def other_machine(meta: dict) -> str | None:
    """Why this machine cannot reproduce the run of ``meta`` bit for bit, or None: it was
    made on a CPU whose float kernels round differently (another float fingerprint)."""
    made_on = meta.get("device") or {}
    if made_on.get("type") != "cpu" or "float_fingerprint" not in made_on:
        return None
    here = float_fingerprint()
    if made_on["float_fingerprint"] == here:
        return None
    return (f"made on a CPU whose float kernels round differently (float fingerprint "
            f"{made_on['float_fingerprint']}, {made_on.get('cpu_capability')} kernels) from "
            f"this one ({here}, {torch.backends.cpu.get_cpu_capability()}): its logs are "
            "reproducible on a machine like the one that made it, not here")


def rerun_config(meta: dict, steps: int | None = None) -> dict:
    """The config (as meta.json stores it) of the rerun: the run's own, up to ``steps``."""
    config = copy.deepcopy(meta["config"])
    train = config["train"]
    if steps is not None:
        if not 0 < steps <= train["total_steps"]:
            raise RunLogError(f"--steps {steps}: must be in 1..{train['total_steps']} "
                              "(the run's train.total_steps)")
        train["buffer_size"] = train.get("buffer_size") or train["total_steps"]
        # QVPO's entropy weight decays over the run's length: keep the original's
        qvpo = config.setdefault("qvpo", {})
        qvpo["entropy_decay_steps"] = qvpo.get("entropy_decay_steps") or train["total_steps"]
        train["total_steps"] = steps
    train.update(keep_checkpoint=False, tensorboard=False)  # neither changes the logs
    return config


def rerun(run_dir: str | Path, steps: int | None = None) -> str | None:
    """Retrain ``run_dir`` (to ``steps``) in a temporary directory; the first difference
    between the logs (as ``compare_logs``), or None when they are identical."""
    meta = read_meta(Path(run_dir) / "meta.json")
    cfg = config_from_dict(rerun_config(meta, steps))
    with tempfile.TemporaryDirectory(prefix="fmer-rerun-") as tmp:
        out = train(cfg, Path(tmp) / "run", variant=meta.get("variant"),
                    budget=meta.get("budget"))
        return compare_logs(run_dir, out, steps)
