"""`fmer train` from the command line: the files it writes, and bad input refused up front."""

import argparse
import csv
import json
import subprocess
import sys

import pytest
from conftest import rows_without_timing, run_fmer, smoke_args

from fmer.cli import build_parser, main
from fmer.config import VARIANTS
from fmer.envs import ENV_NAMES
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
    assert set(meta["sha256"]) == {"eval.csv", "train.csv", "policy.pt"}
    assert (smoke_run / "policy.pt").is_file()
    assert not (smoke_run / "checkpoint").exists()


def test_help_lists_subcommands():
    text = build_parser().format_help()
    assert "train" in text and "verify" in text


def test_parsing_any_command_and_verifying_a_run_do_not_import_torch(smoke_run):
    """torch costs every process seconds of CPU at import: the command layer imports it where a
    command needs it (training, benching, retraining), not to parse or to check a run's logs."""
    argv = [["train", "--env", "Hopper-v5", "--algo", "fmer", "--seed", "0", "--out", "x"],
            ["verify", "--rerun", "x"], ["bench", "--envs", "Hopper-v5"], ["eval", "x"],
            ["status", "--budget", "smoke"], ["plan"]]
    code = (f"import sys\nfrom fmer.cli import build_parser, main\n"
            f"for argv in {argv!r}:\n    build_parser().parse_args(argv)\n"
            f"assert main(['verify', {str(smoke_run)!r}]) == 0\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]", proc.stdout


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


def test_help_names_the_environments_variants_and_examples():
    # fmer --version: tests/test_packaging.py
    parser = build_parser()
    text = " ".join(parser.format_help().split())
    for name in (*ENV_NAMES, *VARIANTS):
        assert name in text
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, p in sub.choices.items():
        assert f"examples:\n  fmer {name}" in p.format_help(), name


@pytest.mark.parametrize(("change", "suggestion"), [
    (["--set", "train.total_step=5"], "did you mean train.total_steps?"),
    (["--set", "temprature.fixed=0.1"], "did you mean temperature?"),
    (["--env", "Hoper-v5"], "did you mean Hopper-v5?"),
    (["--budget", "smok"], "did you mean smoke?"),
])
def test_a_misspelled_name_gets_a_suggestion(tmp_path, capsys, change, suggestion):
    assert main(_with(smoke_args(tmp_path / "run"), change)) == 2
    assert suggestion in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_plan_of_an_unknown_budget_prints_nothing_but_the_error(capsys):
    assert main(["plan", "nosuch"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "nosuch" in err


def test_tensorboard_holds_the_csv_scalars_and_changes_no_number(smoke_run, tmp_path):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    out = tmp_path / "run"
    proc = run_fmer(*smoke_args(out), "--set", "train.tensorboard=true")
    assert proc.returncode == 0, proc.stderr
    for name in ("eval.csv", "train.csv"):
        assert rows_without_timing(out / name) == rows_without_timing(smoke_run / name)
    # in a file (not a terminal): one plain line per train.csv row, no carriage returns
    assert "\r" not in proc.stderr
    assert [line.split(": step ")[1].split("/")[0] for line in proc.stderr.splitlines()] == [
        "50", "100", "150", "200", "250", "300"]
    events = event_accumulator.EventAccumulator(str(out / "tb"))
    events.Reload()
    for group in ("train", "eval"):
        with open(out / f"{group}.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        for column in ("critic_loss", "env_steps_per_s") if group == "train" else (
                "return_mean", "wall_time_s"):
            logged = [(int(r["step"]), float(r[column])) for r in rows if r[column] != ""]
            scalars = [(e.step, e.value) for e in events.Scalars(f"{group}/{column}")]
            assert [s for s, _ in scalars] == [s for s, _ in logged], column
            assert [v for _, v in scalars] == pytest.approx([v for _, v in logged], rel=1e-6)


def test_tensorboard_without_the_package_is_refused_naming_the_extra(tmp_path, capsys,
                                                                      monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    args = [*smoke_args(tmp_path / "run"), "--set", "train.tensorboard=true"]
    assert main(args) == 2
    assert ".[tensorboard]" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_plot_of_a_run_outside_the_grid(smoke_run, tmp_path):
    out = tmp_path / "page.png"
    assert main(["plot", str(smoke_run), "--out", str(out)]) == 0
    assert out.stat().st_size > 20_000
