"""Stopping the workflow (README, "Stopping a grid"; workflow/rules/stop.smk): SIGTERM or
Ctrl-C to its process group, at moments a random stop rarely hits, then the same command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CONFIG, SNAKEFILE, SNAKEMAKE, snakemake

from fmer import budgets
from fmer.envs import MULTIGOAL
from fmer.runlog import verify_run

# Snakemake with a signal sent to its own process group at a moment a random stop hits rarely
# ($STOP_AT): "lock", while its scheduler holds its lock (selecting jobs: the ILP solver), where
# Snakemake 9.27's own SIGTERM handler deadlocks; "spawn", once the stop is handled but before
# a train job's process starts, so that the run never gets the signal.
STOP_AT = """
import os, signal, sys, time
from snakemake.shell import shell
from snakemake.scheduling import milp

fired = []

def fire(why):
    fired.append(why)
    print(f"stop-at: {why}", file=sys.stderr, flush=True)
    os.killpg(0, signal.SIGTERM)

if os.environ["STOP_AT"] == "lock":
    solve = milp.Scheduler._solve_ilp
    def solve_and_stop(self, *args, **kwargs):
        if not fired:
            fire("lock")
        return solve(self, *args, **kwargs)
    milp.Scheduler._solve_ilp = solve_and_stop
else:
    new = shell.__new__
    def spawn_after_stop(cls, cmd, *args, **kwargs):
        if "fmer train" in cmd and not fired:
            fire("spawn")
            deadline = time.monotonic() + 30  # the main thread handles the signal meanwhile
            while not os.path.exists(os.environ["FMER_STOP_FILE"]):
                assert time.monotonic() < deadline, "the stop was never handled"
                time.sleep(0.01)
        return new(cls, cmd, *args, **kwargs)
    shell.__new__ = spawn_after_stop

from snakemake.cli import main
sys.exit(main())
"""
STOP_WITHIN_S = 30  # measured on 2 cores busy with other jobs: 2-5 s, 18 s for a SIGINT that
# caught a run starting up (its `fmer verify` starts after it)


def _default_sigint():  # a shell's background job inherits SIGINT ignored: Ctrl-C must reach
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_grid(work: Path, args: list[str], stop_at: str | None = None) -> subprocess.Popen:
    """The grid in a process group of its own, as a terminal or `timeout` runs it."""
    env = dict(os.environ)
    cmd = [str(SNAKEMAKE)]
    if stop_at:
        script = work.parent / "stop_at.py"
        script.write_text(STOP_AT)
        cmd, env["STOP_AT"] = [sys.executable, str(script)], stop_at
    return subprocess.Popen([*cmd, "-s", str(SNAKEFILE), "-d", str(work), *args],
                            stdout=subprocess.DEVNULL, stderr=open(work.parent / "grid.log", "a"),
                            start_new_session=True, preexec_fn=_default_sigint, env=env)


def _wait_for(proc: subprocess.Popen, ready, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the grid exited {proc.returncode} before the stop"
        assert time.monotonic() < deadline, "the moment to stop never came"
        time.sleep(0.02)


def _group_gone(proc: subprocess.Popen, within: float = STOP_WITHIN_S) -> float:
    """Seconds until no process of the grid's group is left (SIGKILL to it past `within`)."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        proc.poll()  # reap Snakemake itself: a zombie still counts as a member
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return time.monotonic() - start
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    pytest.fail(f"the grid's process group was still there {within} s after the stop")


@pytest.mark.slow
def test_sigterm_or_ctrl_c_to_the_group_stops_the_grid_in_seconds_and_the_same_command_resumes(
        tmp_path):
    """README, "Stopping a grid". Two runs of the smoke grid, stopped four times: SIGTERM and
    SIGINT while they train, SIGTERM while Snakemake's scheduler holds its lock (Snakemake's
    own handler would wait there forever) and just before a run's process starts (that run
    never gets the signal: it stops on the workflow's stop file). Each time the whole group is
    gone within seconds, leaving no lock; then the same command completes both runs."""
    runs = [budgets.select(budgets.runs(CONFIG, "smoke"), envs=[env], variants=["sac"])[0]
            for env in ("Hopper-v5", MULTIGOAL)]
    work = tmp_path / "work"
    work.mkdir()
    args = [*(f"{r.path}/meta.json" for r in runs), "--cores", "2", "--config", "budget=smoke"]
    logs = [work / "logs" / "smoke" / r.env / r.variant / f"seed{r.seed}.log" for r in runs]

    def training():  # a run has logged steps in this session (a job's log starts empty)
        return any(log.exists() and "step " in log.read_text() for log in logs)

    def signalled(stop_at):
        return lambda: f"stop-at: {stop_at}" in (tmp_path / "grid.log").read_text()

    seconds = {}
    for name, signum, stop_at in [("SIGTERM", signal.SIGTERM, None),
                                  ("SIGINT", signal.SIGINT, None),
                                  ("SIGTERM in the lock", None, "lock"),
                                  ("SIGTERM before a spawn", None, "spawn")]:
        for log in logs:
            log.unlink(missing_ok=True)
        proc = _start_grid(work, args, stop_at)
        if signum is None:  # the grid signals itself
            _wait_for(proc, signalled(stop_at))
        else:
            _wait_for(proc, training)
            os.killpg(proc.pid, signum)
        seconds[name] = _group_gone(proc)
        assert proc.returncode != 0, name
        assert not (work / ".snakemake" / "locks").exists() or not any(
            (work / ".snakemake" / "locks").iterdir()), name
        assert not list((work / ".snakemake").glob("fmer-stop-*")), name
    print("group gone after: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))

    resumed = snakemake(work, *args)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    resumed_at = []
    for run in runs:
        assert verify_run(work / run.path) == [], run.path
        meta = json.loads((work / run.path / "meta.json").read_text())
        assert meta["status"] == "complete", run.path
        resumed_at += [r["step"] for r in meta["resumes"]]
    assert resumed_at and max(resumed_at) > 0  # from the checkpoints saved on the stops
