"""``fmer status``: how far the grid of a budget is, from the run directories alone.

Each run of the budget (fmer.budgets) is one of
- complete: ``RUN/`` holds a verified run (or ``RUN/.train/`` does: killed before the move);
  "no policy saved" if it completed before runs saved their final policy (fmer.policy);
- stale: complete, but trained with a config other than the one the budget now gives it (on a
  key that can change its numbers; fmer.analysis.aggregate): delete it to retrain;
- running: ``RUN/.train/meta.json`` says running and its process is alive: on this host, its
  pid names a live ``fmer`` process; on another host (a cluster node), its logs changed in the
  last ``--stale-minutes``;
- stopped: it says running but the process is gone (SIGKILL, a crash, a lost node), or it was
  interrupted (SIGTERM); the next attempt resumes from its checkpoint;
- failed: it stopped on an error; a non-finite value will not resume (delete it to retrain);
- missing: nothing on disk.
Done and left are counted in env steps and in the estimated core-hours of fmer.analysis.cost
(the model of ``fmer plan``): a partial run counts as done up to its checkpoint.
"""

from __future__ import annotations

import csv
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from fmer import budgets
from fmer.analysis import cost
from fmer.analysis.aggregate import config_change
from fmer.checkpoint import Checkpointer, CheckpointError
from fmer.runlog import POLICY_FILE, RunLogError, read_meta, verify_run

STATES = ("complete", "stale", "running", "stopped", "failed", "missing")


@dataclass
class RunStatus:
    run: budgets.Run
    state: str
    total: int  # train.total_steps
    done: int  # env steps that will not be trained again
    detail: str


def _last_train_row(path: Path) -> dict[str, str] | None:
    if not path.exists():
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows[-1] if rows else None


def _alive(meta: dict, where: Path, stale_s: float) -> tuple[bool, str]:
    """Whether the run's process still trains, and how that was decided."""
    host = meta["resumes"][-1]["host"] if meta.get("resumes") else meta.get("host")
    pid = meta.get("pid")
    if host == socket.gethostname() and pid is not None:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False, f"process {pid} is gone"
        return b"fmer" in cmdline, f"pid {pid}"
    newest = max(p.stat().st_mtime for p in where.iterdir())
    age = time.time() - newest
    return age < stale_s, f"on {host}, last write {age / 60:.0f} min ago"


def run_status(root: Path, run: budgets.Run, stale_s: float) -> RunStatus:
    expected = run.config()
    total = expected.train.total_steps
    run_dir = root / run.path
    for where, note in ((run_dir, ""), (run_dir / ".train", " (logs not yet moved out of .train)")):
        if not (where / "meta.json").exists():
            continue
        try:
            meta = read_meta(where / "meta.json")
        except RunLogError as exc:
            return RunStatus(run, "failed", total, 0, str(exc))
        if meta["status"] == "complete":
            problems = verify_run(where)
            if problems:
                return RunStatus(run, "failed", total, 0, problems[0])
            changed = config_change(meta, expected)
            if changed:
                return RunStatus(run, "stale", total, 0, f"trained with another config: "
                                 f"{changed}; delete {run_dir} to retrain")
            policy = "" if (where / POLICY_FILE).exists() else ", no policy saved"
            return RunStatus(run, "complete", total, total, f"{total:,} steps{policy}{note}")
        return _partial(run, meta, where, total, stale_s)
    return RunStatus(run, "missing", total, 0, "")


def _partial(run: budgets.Run, meta: dict, where: Path, total: int, stale_s: float) -> RunStatus:
    try:
        saved = Checkpointer(where / "checkpoint").step() or 0
    except CheckpointError as exc:
        return RunStatus(run, "failed", total, 0, str(exc))
    row = _last_train_row(where / "train.csv")
    logged = int(row["step"]) if row else 0
    if meta["status"] == "failed":
        if meta.get("failure"):
            return RunStatus(run, "failed", total, 0,
                             f"{meta['error']}; will not resume: delete {where} to retrain")
        return RunStatus(run, "failed", total, saved,
                         f"{meta['error']}; resumes from step {saved:,} of {total:,}")
    alive, how = _alive(meta, where, stale_s)
    if alive:
        step = max(logged, saved)
        speed = f", {float(row['env_steps_per_s']):.1f} env steps/s" if row else ""
        return RunStatus(run, "running", total, saved,
                         f"step {step:,} of {total:,} ({100 * step / total:.0f}%){speed}; {how}")
    return RunStatus(run, "stopped", total, saved,
                     f"killed at step {logged:,} or later ({how}); resumes from its checkpoint "
                     f"at step {saved:,} of {total:,}")


def report(statuses: list[RunStatus]) -> list[str]:
    """The lines of ``fmer status``: one per run, then the totals."""
    width = max(len(s.run.path) for s in statuses)
    lines = [f"{s.state:9s} {s.run.path:{width}s}  {s.detail}".rstrip() for s in statuses]
    counts = {state: sum(s.state == state for s in statuses) for state in STATES}
    steps_done = sum(s.done for s in statuses)
    steps_all = sum(s.total for s in statuses)
    core_h = [cost.core_seconds(s.run) / 3600 for s in statuses]
    h_done = sum(h * s.done / s.total for h, s in zip(core_h, statuses, strict=True))
    h_all = sum(core_h)
    lines.append(f"runs: {len(statuses)}: " + ", ".join(f"{n} {state}"
                                                         for state, n in counts.items()))
    lines.append(f"env steps: {steps_done:,} done, {steps_all - steps_done:,} left "
                 f"(of {steps_all:,})")
    lines.append(f"est. core-hours (fmer plan's model): {cost.hours(h_done)} done, "
                 f"{cost.hours(h_all - h_done)} left (of {cost.hours(h_all)})")
    return lines
