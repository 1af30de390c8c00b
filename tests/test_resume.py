"""Resumption: a run killed at an arbitrary moment and resumed writes the logs of a run that was
never interrupted; damaged checkpoints and foreign directories are refused, nothing overwritten.
"""

import json
import random
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_NETS, popen_fmer, rows_without_timing, smoke_args

from fmer.buffer import ReplayBuffer
from fmer.checkpoint import Checkpointer
from fmer.cli import main
from fmer.device import float_fingerprint
from fmer.runlog import POLICY_FILE, RUN_FILES, verify_run

# 900 steps of Pendulum (4.5 episodes): checkpoints every 100 steps fall inside episodes
SCHEDULE = ["--set", "train.total_steps=900", "--set", "train.learning_starts=200",
            "--set", "train.eval_every=250", "--set", "train.eval_episodes=1",
            "--set", "train.log_every=50", "--set", "train.batch_size=64",
            "--set", "train.checkpoint_every=100"]
# the actor every second update: a stop between an actor update and the next critic-only one
# must resume with the update count and the last actor metrics (k = 1 is the same code path)
CHEAP_FMER = ["--set", "actor.flow_steps=3", "--set", "actor.candidates=4",
              "--set", "actor.update_every=2"]
CHEAP_QVPO = ["--set", "qvpo.train_samples=4", "--set", "qvpo.diffusion_steps=3"]
ALGOS = ["sac", pytest.param("fmer", marks=pytest.mark.slow),
         pytest.param("qvpo", marks=pytest.mark.slow)]


def _args(out: Path, algo: str) -> list[str]:
    extra = {"fmer": CHEAP_FMER, "qvpo": CHEAP_QVPO}.get(algo, [])
    return ["train", "--env", "Pendulum-v1", "--algo", algo, "--seed", "3", "--out", str(out),
            *TINY_NETS, *SCHEDULE, *extra]


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _start_and_stop(args, train_lines: int, stop, delay: float) -> int:
    """Start a run, wait until train.csv has ``train_lines`` lines, wait ``delay`` s, stop it."""
    out = Path(args[args.index("--out") + 1])
    proc = popen_fmer(*args)
    deadline = time.monotonic() + 120
    while _lines(out / "train.csv") < train_lines and proc.poll() is None:
        assert time.monotonic() < deadline, "run made no progress"
        time.sleep(0.02)
    time.sleep(delay)
    stop(proc)
    proc.communicate(timeout=60)
    return proc.returncode


def _skip_without_fmer(algo: str) -> None:
    if algo == "fmer":
        pytest.importorskip("fmer.agent")


@pytest.fixture(scope="module", params=ALGOS)
def reference(request, tmp_path_factory):
    """An uninterrupted run of the resume schedule (in-process: the same entry point)."""
    algo = request.param
    _skip_without_fmer(algo)
    out = tmp_path_factory.mktemp(f"ref-{algo}") / "run"
    assert main(_args(out, algo)) == 0
    return algo, out


def _assert_same_logs(out: Path, reference_dir: Path) -> None:
    for name in ("eval.csv", "train.csv"):
        assert rows_without_timing(out / name) == rows_without_timing(reference_dir / name), name
    assert verify_run(out) == []


def test_stopped_at_arbitrary_moments_then_resumed_gives_identical_logs(reference, tmp_path):
    """SIGTERM (checkpoint at that step, marked interrupted), resume, SIGKILL (no warning:
    back to the last periodic checkpoint), resume: the logs of a run never interrupted."""
    algo, ref = reference
    out = tmp_path / "run"
    seed = 20240611  # arbitrary moments, but seeded: a failure happens again on a rerun
    rng = random.Random(seed)
    total_lines = _lines(ref / "train.csv")  # header + 18 rows, one per 50 steps
    # the second stop leaves >= 350 steps to go, so that a fast machine cannot finish first
    first = rng.randrange(2, total_lines // 2 - 2)
    second = rng.randrange(first + 2, total_lines - 7)

    code = _start_and_stop(_args(out, algo), first, lambda p: p.send_signal(signal.SIGTERM),
                           rng.uniform(0, 0.1))
    assert code == 128 + signal.SIGTERM, f"seed {seed}"
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "failed" and meta["interrupted"] and "SIGTERM" in meta["error"]
    assert (out / "checkpoint" / "state.pt").is_file()

    code = _start_and_stop(_args(out, algo), second, lambda p: p.kill(), rng.uniform(0, 0.1))
    assert code == -signal.SIGKILL, f"run ended before the kill (seed {seed})"
    assert json.loads((out / "meta.json").read_text())["status"] == "running"

    assert main(_args(out, algo)) == 0, f"seed {seed}"
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "complete" and len(meta["resumes"]) == 2, f"seed {seed}"
    assert meta["error"] is None and not meta["interrupted"]
    _assert_same_logs(out, ref)
    assert not (out / "checkpoint").exists()


@pytest.mark.parametrize("reference", ["sac"], indirect=True)  # the loop's part: one agent
def test_stopped_on_one_device_setting_resumes_on_another(reference, tmp_path, monkeypatch):
    """train.device says where a run trains, not what it is: a run stopped under --device cpu
    resumes under --device auto (the CPU here) with the logs of a run never interrupted, and
    meta.json records each session's device. (A GPU's sessions would not repeat the CPU's
    bits; this machine has none, so auto is kept on the CPU wherever the test runs.)"""
    algo, ref = reference
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "run"
    code = _start_and_stop([*_args(out, algo), "--device", "cpu"], 4,
                           lambda p: p.send_signal(signal.SIGTERM), 0.0)
    assert code == 128 + signal.SIGTERM
    assert main([*_args(out, algo), "--device", "auto"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["config"]["train"]["device"] == "cpu"  # what the run was started with
    cpu = {"type": "cpu", "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "float_fingerprint": float_fingerprint()}
    assert meta["device"] == cpu
    assert [r["device"] for r in meta["resumes"]] == [cpu]
    _assert_same_logs(out, ref)


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory) -> Path:
    """An unfinished smoke-sized run with a committed checkpoint. Copy before changing."""
    out = tmp_path_factory.mktemp("killed") / "run"
    args = smoke_args(out) + ["--set", "train.total_steps=100000"]
    proc = popen_fmer(*args)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint" / "state.pt").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.kill()
    proc.communicate()
    return out


def _snapshot(run: Path) -> dict[str, bytes]:
    """Every file but the lock, which a refusing call may take and drops again: the killed
    run's stale one goes, none is left behind (test_complete_run_is_not_overwritten)."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and p.name != ".lock"}


@pytest.mark.parametrize("victim", ["state.pt", "buffer"])
def test_corrupt_checkpoint_is_named_and_nothing_is_overwritten(killed_run, tmp_path, capsys,
                                                                victim):
    run = tmp_path / "run"
    shutil.copytree(killed_run, run)
    ckpt = run / "checkpoint"
    path = ckpt / "state.pt" if victim == "state.pt" else sorted(ckpt.glob("buffer-*"))[0]
    path.write_bytes(path.read_bytes()[:-100])  # truncated
    before = _snapshot(run)
    # refusals do no training: the entry point runs in-process (no interpreter start-up)
    assert main([*smoke_args(run), "--set", "train.total_steps=100000"]) == 2
    err = capsys.readouterr().err.strip()
    assert path.name in err and "corrupt" in err and len(err.splitlines()) == 1, err
    assert _snapshot(run) == before


def test_resume_with_different_config_is_refused_naming_keys(killed_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(killed_run, run)
    before = _snapshot(run)
    assert main([*smoke_args(run), "--set", "train.total_steps=100000",
                 "--set", "critic.gamma=0.9", "--set", "train.eval_episodes=2"]) == 2
    err = capsys.readouterr().err
    assert "differs in: critic.gamma, train.eval_episodes" in err, err
    assert _snapshot(run) == before


def test_complete_run_is_not_overwritten(smoke_run, capsys):
    before = _snapshot(smoke_run)
    assert main(smoke_args(smoke_run)) == 2
    assert "complete run" in capsys.readouterr().err
    assert _snapshot(smoke_run) == before
    # not even a lock file: the workflow moves RUN/.train/* up and then removes .train
    assert sorted(p.name for p in smoke_run.iterdir()) == sorted([*RUN_FILES, POLICY_FILE])


def test_directory_with_logs_but_no_meta_is_not_overwritten(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "eval.csv").write_text("somebody else's\n")
    assert main(smoke_args(run)) == 2
    assert "no meta.json" in capsys.readouterr().err
    assert (run / "eval.csv").read_text() == "somebody else's\n"


def _fill(buffer: ReplayBuffer, start: int, n: int) -> None:
    for t in range(start, start + n):
        buffer.add(np.full(3, t), np.full(2, -t), float(t), np.full(3, t + 1), t % 7 == 0)


def test_buffer_chunks_restore_the_ring_exactly_after_wrapping(tmp_path):
    """Three incremental checkpoints of a ring that wraps; reload equals the original."""
    buf, ckpt = ReplayBuffer(3, 2, capacity=10), Checkpointer(tmp_path / "ckpt")
    for n in (4, 9, 15):
        _fill(buf, buf.added, n)
        ckpt.save({"step": buf.added}, buf)
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert "buffer-000000000000-000000000004.pt" not in files  # fully overwritten: dropped
    restored = ReplayBuffer(3, 2, capacity=10)
    state = Checkpointer(tmp_path / "ckpt").load(restored)
    assert state == {"step": 28} and restored.added == buf.added == 28
    for k, v in buf.data.items():
        np.testing.assert_array_equal(restored.data[k], v, err_msg=k)
    rng1, rng2 = np.random.default_rng(0), np.random.default_rng(0)
    b1, b2 = buf.sample(5, rng1, "cpu"), restored.sample(5, rng2, "cpu")
    assert all((getattr(b1, f) == getattr(b2, f)).all() for f in ("obs", "rewards"))
