"""`fmer train` from the command line: the files it writes, and bad input refused up front."""

import csv
import json

import pytest
from conftest import run_fmer, smoke_args

from fmer.cli import build_parser, main
from fmer.runlog import EVAL_COLUMNS, TRAIN_TIMING_COLUMNS
from fmer.sac import SAC


def test_train_writes_documented_files(smoke_run):
    with open(smoke_run / "eval.csv", newline="") as f:
        eval_rows = list(csv.DictReader(f))
    with open(smoke_run / "train.csv", newline="") as f:
        reader = csv.DictReader(f)
        train_header, train_rows = reader.fieldnames, list(reader)
    assert tuple(eval_rows[0]) == EVAL_COLUMNS
    assert tuple(train_header) == ("step", *SAC.metric_names, *TRAIN_TIMING_COLUMNS)
    # smoke budget: 300 steps, eval every 150, log every 50, updates from step 200
    assert [int(r["step"]) for r in eval_rows] == [150, 300]
    assert [int(r["step"]) for r in train_rows] == [50, 100, 150, 200, 250, 300]
    assert all(r["critic_loss"] == "" for r in train_rows[:3])
    assert all(r["critic_loss"] != "" for r in train_rows[3:])
    assert all(r["tasks_completed_mean"] == "" and r["success_rate"] == "" for r in eval_rows)
    meta = json.loads((smoke_run / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["error"] is None
    assert (meta["env"], meta["algo"], meta["variant"], meta["budget"], meta["seed"]) == (
        "Pendulum-v1", "sac", "sac", "smoke", 0)
    assert meta["config"]["train"]["total_steps"] == 300
    assert meta["config"]["actor"]["hidden"] == [32, 32]
    assert {"python", "torch", "numpy", "gymnasium", "mujoco", "gymnasium_robotics",
            "fmer"} <= set(meta["versions"])
    assert set(meta["git"]) == {"commit", "dirty"}
    assert meta["started"] <= meta["ended"]
    assert set(meta["sha256"]) == {"eval.csv", "train.csv"}
    assert not (smoke_run / "checkpoint").exists()


def test_help_lists_subcommands():
    text = build_parser().format_help()
    assert "train" in text and "verify" in text


def _with(args: list[str], change: list[str]) -> list[str]:
    """Replace an option's value, or add a --set."""
    args = list(args)
    if change[0] != "--set" and change[0] in args:
        args[args.index(change[0]) + 1] = change[1]
    else:
        args += change
    return args


# one subprocess per class of bad input: unknown env, variant, budget, key; wrong type; range
@pytest.mark.parametrize(
    ("change", "names"),
    [
        (["--env", "NoSuchEnv-v0"], ["NoSuchEnv-v0", "env"]),
        (["--algo", "ppo"], ["ppo", "algo"]),
        (["--budget", "huge"], ["huge", "budget"]),
        (["--set", "train.no_such_key=1"], ["train.no_such_key"]),
        (["--set", "train.total_steps=many"], ["train.total_steps", "integer"]),
        (["--set", "train.total_steps=-5"], ["train.total_steps", "-5"]),
    ],
)
def test_bad_input_is_refused_before_any_work(tmp_path, change, names):
    proc = run_fmer(*_with(smoke_args(tmp_path / "run"), change))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fmer train: error:"), proc.stderr
    for name in names:
        assert name in lines[0]
    assert not (tmp_path / "run").exists()


# more out-of-range values, through the same entry point in-process (no interpreter start-up)
@pytest.mark.parametrize(
    ("change", "names"),
    [
        (["--set", "temperature.ess_target=1.5"], ["temperature.ess_target", "(0, 1]"]),
        (["--set", "temperature.ess_target=0"], ["temperature.ess_target", "(0, 1]"]),
        (["--set", "actor.candidates=0"], ["actor.candidates", "> 0"]),
        (["--set", "train.learning_starts=-1"], ["train.learning_starts"]),
        (["--set", "critic.gamma=true"], ["critic.gamma", "number"]),
        (["--set", "actor.weighting=best"], ["actor.weighting", "best"]),
        (["--set", "nokey"], ["nokey", "key=value"]),
        (["--seed", "-1"], ["seed"]),
    ],
)
def test_out_of_range_values_are_refused(tmp_path, capsys, change, names):
    assert main(_with(smoke_args(tmp_path / "run"), change)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("fmer train: error:"), err
    for name in names:
        assert name in err
    assert not (tmp_path / "run").exists()
