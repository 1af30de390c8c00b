"""The real workflow, end to end, on the smoke budget, in a temporary directory."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest
import yaml
from conftest import CONFIG, SNAKEFILE, SNAKEMAKE, rows_without_timing, snakemake

from fmer import budgets
from fmer.analysis import cost, figures
from fmer.analysis.aggregate import read_cells
from fmer.envs import KITCHEN_BENCHMARKS, MULTIGOAL
from fmer.runlog import POLICY_FILE, RUN_FILES, verify_run

REPO = Path(__file__).resolve().parents[1]


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Job counts of a dry run's "Job stats" table; empty when nothing is to be done."""
    lines = proc.stdout.splitlines()
    if "Job stats:" not in lines:
        return {}
    counts = {}
    for line in lines[lines.index("Job stats:") + 3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    work = tmp_path_factory.mktemp("workflow")
    start = time.monotonic()
    proc = snakemake(work, "--cores", "2", "--config", "budget=smoke")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(f"smoke workflow: {time.monotonic() - start:.0f} s")
    (work.parent / "smoke-output.txt").write_text(proc.stdout + proc.stderr)
    return work


@pytest.mark.slow
def test_the_start_says_which_runs_it_trains_and_their_estimated_cost(smoke):
    """Before its first job the workflow says how many runs it will train and their cost by
    fmer plan's model (fmer.analysis.cost) at the given --cores: here every run of the grid."""
    lines = (smoke.parent / "smoke-output.txt").read_text().splitlines()
    said = [line for line in lines if line.startswith("Plan:")]
    runs = budgets.runs(CONFIG, "smoke")
    assert said == [cost.plan_line(runs, 2, "--cores 2")]
    assert f"Plan: {len(runs)} runs to train, est. " in said[0] and "at --cores 2" in said[0]
    first_job = next(i for i, line in enumerate(lines) if re.match(r"(local)?rule \w+:", line))
    assert lines.index(said[0]) < first_job


@pytest.mark.slow
def test_every_run_of_the_grid_is_complete_and_verified(smoke):
    runs = budgets.runs(CONFIG, "smoke")
    assert len(runs) == 9
    for run in runs:
        assert verify_run(smoke / run.path) == [], run.path
        assert (smoke / run.path / "benchmark.tsv").is_file()
        assert not (smoke / run.path / ".train").exists()
        # a log a file can hold: plain progress lines, no carriage-return redraws
        log = (smoke / "logs/smoke" / run.env / run.variant / f"seed{run.seed}.log").read_text()
        assert "\r" not in log and "step 300/300" in log, log[-500:]
    for run in budgets.select(runs, envs=[MULTIGOAL]):
        samples = pd.read_csv(smoke / run.path / "samples.csv")
        assert samples[["action_x", "action_y"]].abs().max().max() <= 1.0
        assert samples["state_x"].nunique() > 1


@pytest.mark.slow
def test_summary_tables_and_figures_hold_what_the_runs_logged(smoke):
    summary = pd.read_csv(smoke / "results/smoke/summary.csv")
    completeness = pd.read_csv(smoke / "results/smoke/completeness.csv")
    assert (completeness["status"] == "complete").all() and len(completeness) == 9
    # smoke: evaluations at 150 and 300 steps for each of the 9 runs
    assert len(summary) == 18
    assert sorted(summary["step"].unique()) == [150, 300]
    for run in budgets.runs(CONFIG, "smoke"):
        logged = pd.read_csv(smoke / run.path / "eval.csv")
        mine = summary[(summary["env"] == run.env) & (summary["variant"] == run.variant)]
        assert mine["return_mean"].tolist() == pytest.approx(logged["return_mean"].tolist())
    # the budget's summary is its cells', each made from that (env, variant)'s runs only
    cells = []
    for env, variant in dict.fromkeys((r.env, r.variant) for r in budgets.runs(CONFIG, "smoke")):
        cell = pd.read_csv(smoke / f"results/smoke/summary/{env}/{variant}.csv")
        assert set(zip(cell["env"], cell["variant"], strict=True)) == {(env, variant)}
        cells.append(cell)
    assert pd.concat(cells, ignore_index=True).equals(summary)
    fmer = summary[summary["variant"] == "fmer"]
    assert fmer["ess_frac"].dropna().between(0, 1).all()
    assert (fmer["tau"].dropna() > 0).all()

    for path in (smoke / "figures/smoke").glob("*.png"):
        image = mpimg.imread(path)
        assert image.shape[0] > 200 and image.shape[1] > 200, path
        assert image[..., :3].std() > 0.05, f"{path} is blank"
        assert path.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    names = {p.stem for p in (smoke / "figures/smoke").glob("*.png")}
    assert names == {"curve_Hopper-v5", "curve_kitchen-1", "curve_multigoal-2d",
                     "ablation_returns", "ablation_ess", "ablation_tanh", "kitchen",
                     "multigoal", "iqm"}

    kitchen = [[smoke / f"results/smoke/{t}/kitchen-1/{v}.csv"
                 for t in ("summary", "completeness", "estimates")] for v in ("fmer", "sac")]
    _, completeness, table = read_cells(kitchen)
    fig = figures.KINDS["kitchen"](table, completeness, "smoke",
                                   reported=pd.read_csv(REPO / "paper/reported.csv"))
    pct = fig.axes[1]  # the paper's success rate, %
    final = summary[summary["env"] == "kitchen-1"].groupby("variant")["tasks_completed_mean"].last()
    for variant in ("fmer", "sac"):
        # our value drawn as a marker even at zero, and written with its seed count
        (marker,) = [line for line in pct.lines if line.get_marker() == "o"
                     and line.get_color() == figures.COLORS[variant]]
        assert marker.get_ydata()[0] == pytest.approx(100 * final[variant])
        assert f"{100 * final[variant]:.2g}\nn=1" in [t.get_text() for t in pct.texts]
    marks = [c for c in pct.collections if c.get_label().endswith("paper (1,000,000 steps)")]
    assert sorted(c.get_offsets()[0][1] for c in marks) == [80.0, 100.0]  # SAC, FMER at N=1
    assert fig._suptitle.get_text().splitlines() == [
        "FrankaKitchen-v1, budget smoke: ours 300 steps per run, the paper's 1,000,000 (3333× "
        "more)", "N = 4 and N = 7: not in budget smoke's grid (config/config.yaml)"]
    # each axis spans its metric's range: N tasks, 100%, all episodes
    assert [ax.get_ylim()[1] for ax in fig.axes] == pytest.approx([1.12, 112, 1.12])
    assert all("not run" not in t.get_text() for ax in fig.axes for t in ax.texts)

    md = (smoke / "paper/smoke/results.md").read_text()
    assert "12332.38" in md and "45.71" in md  # the paper's FMER numbers, beside ours
    assert "budget `smoke`, 9 of 9 runs complete" in md
    assert "(n=1)" in md
    tex = (smoke / "paper/smoke/results.tex").read_text()
    assert tex.count(r"\begin{tabular}") == 3  # MuJoCo, FrankaKitchen, the verdicts
    # the budget's estimates: its cells', and what the tables show
    estimated = pd.read_csv(smoke / "results/smoke/estimates.csv")
    assert set(zip(estimated["env"], estimated["variant"], strict=True)) == {
        (r.env, r.variant) for r in budgets.runs(CONFIG, "smoke")}


@pytest.mark.slow
def test_second_invocation_plans_nothing_and_mtimes_do_not_retrain(smoke):
    proc = snakemake(smoke, "-n", "--cores", "2", "--config", "budget=smoke")
    assert proc.returncode == 0, proc.stderr
    assert "Nothing to be done" in proc.stdout + proc.stderr
    # a fresh clone: no .snakemake records, every log newer than the figures made from it
    work = smoke.parent / "clone"
    subprocess.run(["cp", "-r", str(smoke), str(work)], check=True)
    subprocess.run(["rm", "-rf", str(work / ".snakemake")], check=True)
    now = time.time() + 60
    for path in (work / "results").rglob("*.csv"):
        os.utime(path, (now, now))
    proc = snakemake(work, "-n", "--cores", "2", "--config", "budget=smoke")
    assert proc.returncode == 0, proc.stderr
    assert not {"train", "cell_summary", "summary"} & set(planned_jobs(proc))


@pytest.mark.slow
def test_figures_target_reads_cached_logs_and_never_trains(smoke):
    """A run and its cell gone: `figures` makes the cell from the logs on disk (the run
    missing) and rebuilds what shows it, training nothing; the default target trains it."""
    work = smoke.parent / "partial"
    subprocess.run(["cp", "-r", str(smoke), str(work)], check=True)
    gone = work / budgets.run_path("smoke", "Hopper-v5", "sac", 0)
    subprocess.run(["rm", "-rf", str(gone)], check=True)
    cell = [work / f"results/smoke/{t}/Hopper-v5/sac.csv"
            for t in ("summary", "completeness", "estimates")]
    for path in cell:
        path.unlink()
    dry = snakemake(work, "-n", "figures", "--cores", "2", "--config", "budget=smoke")
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out[-3000:]
    # the figures that draw SAC on Hopper-v5 (its curve, the IQM) and nothing else
    shown = {"curve_Hopper-v5", "iqm"}
    assert planned_jobs(dry) == {"cell_summary": 1, "summary": 1, "tables": 1,
                                 "figure": len(shown), "figures": 1}
    assert set(re.findall(r"output: figures/smoke/([\w.-]+)\.png", out)) == shown
    assert "Plan:" not in out  # a dry run's output is Snakemake's alone

    proc = snakemake(work, "figures", "--cores", "2", "--config", "budget=smoke")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Plan: no run to train." in out.splitlines()
    assert not gone.exists()
    assert pd.read_csv(cell[1])["status"].tolist() == ["missing"]
    assert "missing" in pd.read_csv(work / "results/smoke/completeness.csv")["status"].tolist()

    plan = planned_jobs(snakemake(work, "-n", "--cores", "2", "--config", "budget=smoke"))
    assert plan["train"] == 1  # the default target would retrain exactly the missing run
    assert plan["cell_summary"] == 1  # and summarise its cell again, no other


@pytest.mark.slow
def test_figures_target_stops_before_any_job_where_a_run_would_retrain(smoke, tmp_path):
    """A run whose config changed since Snakemake trained it here is rerun by the default
    target (the `params` rerun trigger); `figures` refuses instead, before any job."""
    work = smoke.parent / "changed-config"
    subprocess.run(["cp", "-r", str(smoke), str(work)], check=True)
    changed = write_config(tmp_path, lambda b: b["set"].update({"actor.hidden": [16, 16]}))
    args = ["--cores", "2", "--configfile", str(changed), "--config", "budget=smoke"]
    assert planned_jobs(snakemake(work, "-n", *args))["train"] == 9
    meta = work / budgets.run_path("smoke", "Hopper-v5", "sac", 0) / "meta.json"
    before = meta.stat().st_mtime_ns
    proc = snakemake(work, "figures", *args)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "the `figures` target never trains" in out, out[-3000:]
    assert "rule train" not in out and meta.stat().st_mtime_ns == before


@pytest.mark.slow
def test_a_cell_made_without_a_run_is_made_again_once_the_run_is_there(smoke):
    """The `figures` target summarises a cell from the logs on disk; a run that completes
    afterwards (its logs newer than the cell) makes the cell stale, and it is made again."""
    work = smoke.parent / "stale-cell"
    subprocess.run(["cp", "-r", str(smoke), str(work)], check=True)
    # Snakemake records nothing of what the `figures` target writes (without a record of the
    # inputs' checksums, a newer input is an updated one)
    subprocess.run(["rm", "-rf", str(work / ".snakemake")], check=True)
    run = work / budgets.run_path("smoke", "Hopper-v5", "sac", 0)
    away = work / "away"
    subprocess.run(["mv", str(run), str(away)], check=True)
    cell = [f"results/smoke/{t}/Hopper-v5/sac.csv"
            for t in ("summary", "completeness", "estimates")]
    assert subprocess.run([str(SNAKEMAKE.with_name("fmer")), "aggregate", "--budgets",
                           str(REPO / budgets.DEFAULT_FILE), "--budget", "smoke", "--out",
                           cell[0], "--completeness", cell[1], "--estimates", cell[2], str(run)],
                          cwd=work, capture_output=True).returncode == 0
    assert pd.read_csv(work / cell[1])["status"].tolist() == ["missing"]
    subprocess.run(["mv", str(away), str(run)], check=True)
    later = time.time() + 60  # the run completes after the cell was made
    for name in RUN_FILES:
        os.utime(run / name, (later, later))
    plan = planned_jobs(snakemake(work, "-n", "--cores", "2", "--config", "budget=smoke"))
    assert plan.get("train", 0) == 0 and plan["cell_summary"] == 1


@pytest.mark.slow
def test_grid_killed_with_sigkill_resumes_by_the_documented_commands(smoke, tmp_path):
    """README, "After a crash": `snakemake --unlock` with the same arguments, then the same
    command. Two runs of the smoke grid, killed (Snakemake and its jobs) after a checkpoint."""
    runs = [budgets.select(budgets.runs(CONFIG, "smoke"), envs=[env], variants=["sac"])[0]
            for env in ("Hopper-v5", MULTIGOAL)]
    # targets first: --config takes every word after it
    args = [*(f"{r.path}/meta.json" for r in runs), "--cores", "2", "--config", "budget=smoke"]
    cmd = [str(SNAKEMAKE), "-s", str(SNAKEFILE), "-d", str(tmp_path), *args]
    grid_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
    checkpoints = [tmp_path / r.path / ".train/checkpoint/state.pt" for r in runs]
    deadline = time.monotonic() + 300
    while not any(p.exists() for p in checkpoints):
        assert grid_proc.poll() is None and time.monotonic() < deadline, "no checkpoint"
        time.sleep(0.01)
    os.killpg(grid_proc.pid, signal.SIGKILL)  # the whole grid: Snakemake and its jobs
    grid_proc.wait(timeout=60)
    killed_with_checkpoint = [r for r, p in zip(runs, checkpoints, strict=True) if p.exists()]

    refused = snakemake(tmp_path, *args)
    assert refused.returncode != 0 and "cannot be locked" in refused.stdout + refused.stderr
    assert snakemake(tmp_path, "--unlock", *args).returncode == 0
    resumed = snakemake(tmp_path, *args)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    for run in runs:
        assert verify_run(tmp_path / run.path) == [], run.path
        for name in ("eval.csv", "train.csv"):
            assert rows_without_timing(tmp_path / run.path / name) == rows_without_timing(
                smoke / run.path / name), (run.path, name)
    for run in killed_with_checkpoint:
        meta = json.loads((tmp_path / run.path / "meta.json").read_text())
        assert meta["resumes"] and meta["resumes"][0]["step"] > 0, run.path

def test_job_killed_between_a_finished_run_and_the_move_keeps_the_run(smoke):
    """The case workflow/rules/train.smk handles: the run finished in RUN/.train/, the job died
    before moving it up. The next attempt must move the finished run, not train it again."""
    work = smoke.parent / "killed-before-move"
    subprocess.run(["cp", "-r", str(smoke), str(work)], check=True)
    run = work / budgets.run_path("smoke", "Hopper-v5", "sac", 0)
    files = (*RUN_FILES, POLICY_FILE)  # what fmer train writes into RUN/.train/
    before = {name: (run / name).read_bytes() for name in files}
    (run / ".train").mkdir()
    for name in files:
        (run / name).rename(run / ".train" / name)
    proc = snakemake(work, str(run.relative_to(work) / "meta.json"), "--cores", "1",
                     "--config", "budget=smoke")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "rule train:" in proc.stdout + proc.stderr  # the job ran, and:
    assert not (run / ".train").exists()
    assert {name: (run / name).read_bytes() for name in files} == before
    log = (work / "logs/smoke/Hopper-v5/sac/seed0.log").read_text()
    assert "holds a complete run" in log and f"ok  {run.relative_to(work)}/.train" in log


def write_config(tmp_path: Path, change) -> Path:
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    change(config["budgets"]["smoke"])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("change, names", [
    (lambda b: b["grid"][0].update(benchmarks=["Pong-v5"]), ["Pong-v5", "benchmarks"]),
    (lambda b: b["grid"][0].update(variants=["fmer-fast"]), ["fmer-fast", "variants"]),
    (lambda b: b["train"].update(total_steps=-5), ["total_steps", "-5"]),
    (lambda b: b["train"].update(eval_every=0), ["eval_every"]),
    (lambda b: b.update(overrides={"Hopper-v5": {"temperature.fixd": 0.1}}),
     ["budgets.smoke.overrides.Hopper-v5", "temperature.fixd"]),
    (lambda b: b.update(set={"temperature.fixed": -1.0}), ["temperature.fixed"]),
    (lambda b: b.update(set={"train.device": "cuda"}), ["train.device", "device=cuda"]),
])
def test_bad_config_stops_before_any_job_naming_the_key(tmp_path, change, names):
    bad = write_config(tmp_path, change)
    proc = snakemake(tmp_path, "--cores", "1", "--configfile", str(bad),
                     "--config", "budget=smoke", timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for name in names:
        assert name in out, out[-2000:]
    assert not (tmp_path / "results").exists()


def test_unknown_budget_is_named(tmp_path):
    proc = snakemake(tmp_path, "-n", "--cores", "1", "--config", "budget=huge", timeout=120)
    assert proc.returncode != 0
    assert "huge" in proc.stdout + proc.stderr


def test_lint_reports_nothing():
    proc = subprocess.run([str(SNAKEMAKE), "--lint", "-s", str(SNAKEFILE)], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0
    assert "Lints for" not in proc.stdout + proc.stderr


# Stand-ins for SLURM's commands: sbatch records its arguments and "submits" job 4242; the
# others answer as an idle cluster with one account, "a", would.
FAKE_SLURM = {
    "sbatch": 'echo "$@" >> "$FAKE_SBATCH_LOG"\ncat > /dev/null\necho 4242',
    "sacctmgr": "echo a", "sinfo": "", "squeue": "", "sacct": "", "scontrol": "",
    "scancel": "",
}
GPU_PROFILE = REPO / "workflow" / "profiles" / "slurm-gpu"


def test_gpu_profile_submits_runs_in_fours_sharing_one_gpu(tmp_path):
    """The smoke budget's five Hopper runs through the GPU profile, with `device=cuda`, as
    docs/cluster.md has users run the paper budget: sbatch is asked for one GPU per group of
    four runs (their memory, one CPU each), and the rest in a group of one. sbatch is a fake
    that records its arguments; snakemake is stopped once both groups are submitted."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in FAKE_SLURM.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\nexit 0\n")
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "sbatch.log"
    env = {**os.environ, "FAKE_SBATCH_LOG": str(log),
           "PATH": os.pathsep.join([str(bin_dir), str(SNAKEMAKE.parent), os.environ["PATH"]])}
    runs = budgets.select(budgets.runs(CONFIG, "smoke"), envs=["Hopper-v5"])
    assert len(runs) == 5
    cmd = [str(SNAKEMAKE), "-s", str(SNAKEFILE), "-d", str(tmp_path / "work"),
           *(f"{r.path}/meta.json" for r in runs), "--profile", str(GPU_PROFILE),
           "--config", "budget=smoke", "device=cuda",
           "--default-resources", "slurm_account=a", "slurm_partition=gpu"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    try:
        while not (log.exists() and len(log.read_text().splitlines()) == 2):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.2)
    finally:
        proc.kill()  # it would wait for the fake jobs to end; nothing real was started
        proc.communicate(timeout=60)
    calls = sorted(log.read_text().splitlines(), key=lambda c: -c.count("train:budget="))
    assert [c.count("train:budget=smoke,env=Hopper-v5") for c in calls] == [4, 1]
    for call, runs_in_job in zip(calls, (4, 1), strict=True):
        assert " --gres=gpu:1 " in call, call
        assert f" --cpus-per-task={runs_in_job} " in call, call
        assert f" --mem {runs_in_job * 1100} " in call, call  # 1100 MB per smoke run
        assert "--config 'budget=smoke' 'device=cuda'" in call, call


@pytest.mark.parametrize("device, gres", [("cpu", False), ("cuda", True)])
def test_the_device_reaches_every_run_and_only_cuda_runs_ask_for_a_gpu(tmp_path, device, gres):
    proc = snakemake(tmp_path, "-n", "--cores", "1", "--config", "budget=smoke",
                     f"device={device}", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    trains = planned_jobs(proc)["train"]
    assert proc.stdout.count(f" --device {device} ") == trains
    assert proc.stdout.count("gres=gpu:1") == (trains if gres else 0)


def planned_trainings(proc: subprocess.CompletedProcess) -> set[tuple[str, str, int]]:
    """(env, variant, seed) of each train job of a dry run."""
    lines = proc.stdout.splitlines()
    out = set()
    for i, line in enumerate(lines):
        if line.strip() == "rule train:":
            where = next(x for x in lines[i + 1:] if "wildcards:" in x).split("wildcards: ")[1]
            w = dict(part.split("=", 1) for part in where.split(", "))
            out.add((w["env"], w["variant"], int(w["seed"])))
    return out


def test_dry_run_of_each_named_target_schedules_only_its_runs(tmp_path):
    def trains(target):
        proc = snakemake(tmp_path, "-n", target, "--cores", "2", "--config", "budget=mini",
                         timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert planned_jobs(proc).get("train", 0) == len(planned_trainings(proc))
        return planned_trainings(proc)

    mini = budgets.runs(CONFIG, "mini")

    def grid(envs, variants):  # what each target's figures draw, written out
        return {(r.env, r.variant, r.seed) for r in budgets.select(mini, envs, variants)}

    ablation_envs = ["Hopper-v5", "HalfCheetah-v5"]
    mujoco = ["Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Humanoid-v5"]
    expected = {
        "all": grid(None, None),
        "mujoco": grid(mujoco, budgets.MAIN),
        "kitchen": grid(KITCHEN_BENCHMARKS, budgets.MAIN),
        "ablation_tanh": grid(ablation_envs, ("fmer", "fmer-no-tanh")),
        "ablation_ess": grid(ablation_envs, ("fmer", "fmer-no-ess")),
        "ablation_weights": grid(ablation_envs, budgets.WEIGHTING),
        "ablation": grid(ablation_envs, budgets.ABLATION + budgets.WEIGHTING),
        "hopper": grid(["Hopper-v5"], None),
        "figures": set(),
    }
    assert len(expected["all"]) == len(mini) and len(expected["ablation_tanh"]) == 12
    for target, runs in expected.items():
        assert trains(target) == runs, target


def test_dry_run_of_a_benchmark_target_summarises_only_its_cells(tmp_path):
    proc = snakemake(tmp_path, "-n", "kitchen_1", "--cores", "2", "--config", "budget=mini",
                     timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    plan = planned_jobs(proc)
    assert "summary" not in plan  # the budget-wide summary would need every run
    runs = budgets.select(budgets.runs(CONFIG, "mini"), envs=["kitchen-1"])
    cells = {(r.env, r.variant) for r in runs}
    assert plan["train"] == len(runs) and plan["cell_summary"] == len(cells)
    planned = {tuple(line.split("wildcards: ")[1].split(", "))
               for line in proc.stdout.splitlines() if "wildcards: budget=mini, env=" in line
               and "seed=" not in line}
    assert planned == {("budget=mini", f"env={e}", f"variant={v}") for e, v in cells}


def test_defaults_study_plans_exactly_the_defaults_budgets_runs_and_is_not_in_all(tmp_path):
    proc = snakemake(tmp_path, "-n", "defaults_study", "--cores", "2", "--config",
                     "budget=defaults", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cells = {(r.env, r.variant) for r in budgets.runs(CONFIG, "defaults")}
    assert planned_jobs(proc) == {"train": 18, "update_cost": 1, "cell_summary": len(cells),
                                  "summary": 1, "defaults_page": 1, "defaults_study": 1}
    planned = {tuple(line.split("wildcards: ")[1].split(", "))
               for line in proc.stdout.splitlines() if "wildcards: budget=defaults, env=" in line
               and "seed=" in line}  # the train jobs (a cell's wildcards have no seed)
    assert planned == {(f"budget={r.budget}", f"env={r.env}", f"variant={r.variant}",
                        f"seed={r.seed}") for r in budgets.runs(CONFIG, "defaults")}
    # the bench's command as written in its rule: one thread, HalfCheetah-sized, every setting
    assert ("fmer bench --envs HalfCheetah-v5 --threads 1 --budget defaults --csv "
            "results/defaults/update_cost.csv") in proc.stdout
    default = planned_jobs(snakemake(tmp_path, "-n", "--cores", "2", timeout=120))
    assert default["train"] == len(budgets.runs(CONFIG, CONFIG["budget"]))
    assert not {"update_cost", "defaults_page", "defaults_study"} & set(default)
