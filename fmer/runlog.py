"""The run directory's logs: CSV columns, writing, integrity checks and loading.

A run directory holds ``eval.csv``, ``train.csv`` and ``meta.json`` (see fmer.train). On
completion meta.json records the sha256 of both CSVs and of the final policy (``policy.pt``,
fmer.policy); ``verify_run`` checks them, the columns, the step order and the run's status,
and ``fmer verify`` exposes it on the command line (fmer.cli.verify).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

EVAL_COLUMNS = (
    "step", "episodes", "return_mean", "return_std", "return_min", "return_max",
    "tasks_completed_mean", "success_rate", "wall_time_s",
)
TRAIN_TIMING_COLUMNS = ("updates_per_s", "env_steps_per_s")
# Columns that depend on the machine's speed: everything else is a function of config and seed.
TIMING_COLUMNS = ("wall_time_s", *TRAIN_TIMING_COLUMNS)
LOG_FILES = ("eval.csv", "train.csv")
RUN_FILES = ("meta.json", *LOG_FILES)  # what every complete run directory holds
# The final policy (fmer.policy): in every run completed since policies are saved, its sha256
# in meta.json beside the logs'; runs completed before have none.
POLICY_FILE = "policy.pt"


class RunLogError(ValueError):
    """A run directory whose logs cannot be trusted; the message lists every problem."""


def train_columns(metric_names: tuple[str, ...]) -> tuple[str, ...]:
    return ("step", *metric_names, *TRAIN_TIMING_COLUMNS)


def _format(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest exact round-trip: identical runs give identical bytes
    return str(value)


class CsvLog:
    """Append-only CSV whose size in bytes is known, so a resumed run can cut it back to
    the size it had at the checkpoint. ``size=None`` starts a new file with a header."""

    def __init__(self, path: Path, columns: tuple[str, ...], size: int | None = None):
        self.path, self.columns = Path(path), columns
        if size is None:
            self.file = open(self.path, "wb")  # open for the whole run
            self._write_line(columns)
        else:
            actual = self.path.stat().st_size if self.path.exists() else -1
            if actual < size:
                raise RunLogError(f"{self.path}: {actual} bytes, but the checkpoint saw {size}; "
                                  "the log was truncated or replaced since")
            self.file = open(self.path, "r+b")
            self.file.truncate(size)
            self.file.seek(size)

    def _write_line(self, values) -> None:
        self.file.write((",".join(values) + "\n").encode())
        self.file.flush()

    def write(self, row: dict[str, Any]) -> None:
        if set(row) != set(self.columns):
            raise ValueError(f"{self.path.name}: row keys {sorted(row)} != {self.columns}")
        self._write_line(_format(row[c]) for c in self.columns)

    @property
    def size(self) -> int:
        return self.file.tell()

    def close(self) -> None:
        self.file.close()


TENSORBOARD_EXTRA = "pip install -e '.[tensorboard]'"


class TensorBoardLog:
    """The rows of train.csv and eval.csv, also as TensorBoard scalars in ``RUN/tb/`` (tags
    ``train/COLUMN``, ``eval/COLUMN``, x = env step), for researchers who watch runs there. The
    CSVs stay the record: figures and checks read them only. A resumed run writes to the same
    directory; ``purge_step`` hides what the killed session wrote after its checkpoint."""

    def __init__(self, directory: Path, resume_step: int):
        # optional (fmer.train checks that it is installed before any work)
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(directory),
                                    purge_step=resume_step if resume_step else None)

    def write(self, group: str, row: dict[str, Any]) -> None:
        for column, value in row.items():
            if column != "step" and value is not None and not (
                    isinstance(value, float) and math.isnan(value)):
                self.writer.add_scalar(f"{group}/{column}", value, row["step"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    """Atomic: readers see the old or the new meta.json, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunLogError(f"{path}: cannot read run metadata: {exc}") from exc
    if not isinstance(meta, dict) or "status" not in meta or "config" not in meta:
        raise RunLogError(f"{path}: not an fmer meta.json (no status or config)")
    return meta


def _check_csv(path: Path, expected_last_step: int | None) -> list[str]:
    name = path.name
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return [f"{path}: empty"]
    header, body = rows[0], rows[1:]
    problems = []
    if name == "eval.csv" and tuple(header) != EVAL_COLUMNS:
        problems.append(f"{path}: columns {header} != {list(EVAL_COLUMNS)}")
    if name == "train.csv" and (header[:1] != ["step"]
                                or tuple(header[-2:]) != TRAIN_TIMING_COLUMNS):
        problems.append(f"{path}: columns {header} do not start with step and end with "
                        f"{list(TRAIN_TIMING_COLUMNS)}")
    bad_width = [i + 2 for i, r in enumerate(body) if len(r) != len(header)]
    if bad_width:
        problems.append(f"{path}: line(s) {bad_width[:5]} have the wrong number of fields "
                        "(truncated or edited)")
    steps = []
    for i, r in enumerate(body):
        try:
            steps.append(int(r[0]))
        except (ValueError, IndexError):
            problems.append(f"{path}: line {i + 2}: step {r[:1]} is not an integer")
            return problems
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        problems.append(f"{path}: step column is not strictly increasing")
    if expected_last_step is not None and (not steps or steps[-1] != expected_last_step):
        last = steps[-1] if steps else "no rows"
        problems.append(f"{path}: last step is {last}, expected {expected_last_step} "
                        "(train.total_steps)")
    return problems


def verify_run(run_dir: str | Path) -> list[str]:
    """Every reason not to trust the run in ``run_dir``; empty when it is complete and intact."""
    run_dir = Path(run_dir)
    try:
        meta = read_meta(run_dir / "meta.json")
    except RunLogError as exc:
        return [str(exc)]
    problems = []
    if meta["status"] != "complete":
        why = f": {meta['error']}" if meta.get("error") else ""
        problems.append(f"{run_dir}: run is not marked complete (status {meta['status']}{why})")
    total = meta["config"].get("train", {}).get("total_steps")
    hashes = meta.get("sha256") or {}
    for name in LOG_FILES:
        path = run_dir / name
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        if meta["status"] == "complete":
            if name not in hashes:
                problems.append(f"{path}: meta.json records no sha256 for it")
            elif sha256_file(path) != hashes[name]:
                problems.append(f"{path}: sha256 differs from meta.json (edited or truncated)")
        problems += _check_csv(path, total if meta["status"] == "complete" else None)
    if POLICY_FILE in hashes:
        path = run_dir / POLICY_FILE
        if not path.is_file():
            problems.append(f"{path}: missing (meta.json records its sha256)")
        elif sha256_file(path) != hashes[POLICY_FILE]:
            problems.append(f"{path}: sha256 differs from meta.json (replaced or damaged)")
    return problems


def load_run(run_dir: str | Path):
    """``(meta, eval_df, train_df)`` of a verified run; RunLogError listing the problems
    otherwise. pandas is imported here only: training does not need it."""
    import pandas as pd

    run_dir = Path(run_dir)
    problems = verify_run(run_dir)
    if problems:
        raise RunLogError(f"{run_dir}: not a complete, intact run:\n  " + "\n  ".join(problems))
    meta = read_meta(run_dir / "meta.json")
    return meta, pd.read_csv(run_dir / "eval.csv"), pd.read_csv(run_dir / "train.csv")
