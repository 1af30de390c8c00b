"""The run directory around the training loop (fmer.train): one process per directory (a lock
file), what an existing directory may hold (a run of the same config to resume, or a refusal),
the provenance meta.json records (versions, git state, host, device, execution), and the
signals that stop a run.

Resuming, the checkpoint and the logs are fmer.train's and fmer.checkpoint's; the log formats
fmer.runlog's.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import os
import platform
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from fmer import execution
from fmer.config import PLACEMENT_KEYS, Config, ConfigError, config_from_dict, diff
from fmer.device import describe
from fmer.runlog import LOG_FILES, RunLogError, read_meta

PACKAGES = ("torch", "numpy", "gymnasium", "mujoco", "gymnasium_robotics", "fmer")

class RunDirError(RuntimeError):
    """The output directory cannot take this run (complete, different, foreign or busy)."""

def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# What makes a run: a change here marks meta.json's git state dirty. results/, figures/ and
# paper/ are not among them: the workflow itself rewrites those.
CODE_PATHS = ("fmer", "workflow", "pyproject.toml")
_CHECKOUT = Path(__file__).resolve().parents[1]  # the repository, if the package runs from one


def git_state(root: Path = _CHECKOUT) -> dict[str, Any]:
    """Commit of the checkout the package is imported from, and whether its code
    (CODE_PATHS) differs from that commit; None if it is not a checkout."""
    root = root.resolve()

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                 text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    commit = git("rev-parse", "HEAD") if top and Path(top).resolve() == root else None
    if commit is None:
        return {"commit": None, "dirty": None}
    changed = git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
    return {"commit": commit, "dirty": None if changed is None else bool(changed)}


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out

@contextmanager
def exclusive(out: Path):
    """One process per run directory; the OS drops the lock if the process dies.

    The lock file exists only while a process holds it: it is removed on every way out
    (complete, failed, refused), so that a refused call leaves the directory as it found it
    (the workflow moves ``RUN/.train/*`` up and removes ``.train``: a dot file left behind
    fails that job). Since the path is unlinked, a process that opened it just before must
    check that its lock is still on the file at the path, or two could both hold a lock.
    """
    path = out / ".lock"
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if not path.exists() or os.stat(path).st_ino != os.fstat(f.fileno()).st_ino:
                raise BlockingIOError
        except BlockingIOError as exc:
            raise RunDirError(f"{out}: another process is training in this directory") from exc
        try:
            yield
        finally:
            path.unlink()

def previous_run(out: Path, cfg: Config) -> dict | None:
    """The meta.json of an unfinished run of this config in ``out`` (to resume), None if
    ``out`` holds no run; RunDirError if it holds one we must not touch."""
    meta_path = out / "meta.json"
    if not meta_path.exists():
        leftovers = [n for n in (*LOG_FILES, "checkpoint") if (out / n).exists()]
        if leftovers:
            raise RunDirError(f"{out}: holds {', '.join(leftovers)} but no meta.json; "
                              "refusing to overwrite, choose another --out")
        return None
    try:
        meta = read_meta(meta_path)
        old = config_from_dict(meta["config"])
    except (RunLogError, ConfigError) as exc:
        raise RunDirError(f"{out}: holds a run this version cannot read ({exc}); "
                          "choose another --out") from exc
    keys = diff(cfg, old, ignore=PLACEMENT_KEYS)
    if keys:
        raise RunDirError(f"{out}: holds a run with a different config (differs in: "
                          f"{', '.join(keys)}); choose another --out")
    if meta["status"] == "complete":
        raise RunDirError(f"{out}: holds a complete run of this config; nothing to do "
                          "(delete it to train again)")
    # a non-finite value would recur on resumption (the run is deterministic); signals, kills
    # and errors of the machine (disk full, ...) would not
    if meta["status"] == "failed" and meta.get("failure"):
        raise RunDirError(f"{out}: holds a failed run ({meta.get('error')}); delete it to "
                          "train again")
    return meta

@contextmanager
def stop_on_signals(stop: Callable[[int], None]):
    """While inside, SIGTERM and SIGINT call ``stop(signum)`` (the loop then checkpoints and
    stops at the end of the current step) instead of killing the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        stop(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class StopFile:
    """A file whose appearance asks a run to stop as a signal would: the workflow writes into
    it the number of the signal it got (workflow/rules/stop.smk), for a run it started just
    after that signal, which the run never got. Read at most every ``every`` seconds."""

    def __init__(self, path: str | Path, every: float = 0.05):
        self.path, self.every = Path(path), every
        self._next = 0.0

    def signal(self) -> int | None:
        """The signal the file names, once it is there; None before."""
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + self.every
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else signal.SIGTERM


def session(cfg: Config, device: torch.device) -> dict[str, Any]:
    """Where and how this session trains: meta.json records it for the run's first session
    and for each resumption."""
    return {"host": socket.gethostname(), "device": describe(device),
            "execution": execution.describe(cfg.train)}


def new_meta(cfg: Config, device: torch.device, variant: str | None,
             budget: str | None) -> dict[str, Any]:
    """meta.json of a run's first session: what it is, and its provenance."""
    return {"config": cfg.to_dict(), "variant": variant or cfg.algo, "budget": budget,
            "seed": cfg.seed, "env": cfg.env, "algo": cfg.algo, "versions": versions(),
            "git": git_state(), **session(cfg, device), "started": now(), "resumes": []}


def resumption(cfg: Config, device: torch.device, step: int) -> dict[str, Any]:
    """meta.json's record of a session that resumes the run at ``step``."""
    return {"step": step, "time": now(), **session(cfg, device)}
