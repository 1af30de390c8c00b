"""The bench CSV's format: what ``fmer bench`` (fmer.bench) writes and its readers
(fmer.analysis.performance, fmer.analysis.cost) read, without torch.

One long-format row per measurement (``CSV_COLUMNS``): an ``item`` (``env_step``,
``sac_update``, ``fmer_update``, ``qvpo_update``, an update's part ``fmer_PART`` /
``qvpo_PART``, ``matmul``, ...) of an ``env`` (with its ``obs_dim`` and ``act_dim``) at a torch
thread count and a ``setting``: ``DEFAULTS`` (the package defaults, plus the command's
``--set``), a budget's own variant (``--budget``) or an execution (``EXECUTIONS``).
"""

from __future__ import annotations

import csv
from pathlib import Path

# The envs benched by default: one per benchmark family the budgets use (fmer.analysis.cost
# costs runs from their rows; kitchen-4 stands for every FrankaKitchen N), HalfCheetah first:
# the first env is the headline's, and the one the named settings and executions are timed on
DEFAULT_ENVS = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Humanoid-v5", "kitchen-4",
                "multigoal-2d")
DEFAULT_THREADS = (1, 2)
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
QVPO_RATIO = "qvpo_over_fmer"  # the item of the rows that hold QVPO/FMER and its interval

# The labels FMER.update and QVPO.update give their parts (torch.profiler.record_function),
# in update order; each part's row is the item ``{algo}_{label}``, and ``{algo}_{REST}`` the
# time outside every label.
FMER_PARTS = ("critic_target", "critic_step", "candidates", "temperature", "cfm", "entropy",
              "actor_step", "alpha")
QVPO_PARTS = ("critic_target", "critic_step", "candidates", "weights", "denoising",
              "actor_step", "actor_target")
PARTS = {"fmer": FMER_PARTS, "qvpo": QVPO_PARTS}
REST = "rest"

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


def lookup(rows: list[dict], env: str, threads: int, item: str,
           setting: str = DEFAULTS) -> dict | None:
    """The row of ``item`` for (env, threads, setting), or None."""
    for r in rows:
        if (r["env"], r["threads"], r["item"], r["setting"]) == (env, threads, item, setting):
            return r
    return None
