"""Aggregation, statistics, figures and tables on real logs from real (tiny) training runs."""

from __future__ import annotations

import copy
import json
import math
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from rliable import metrics

from fmer import benchlog, budgets
from fmer.analysis import (
    cost,
    estimates,
    figures,
    plot,
    rollouts,
    stats,
    tables,
    verdicts,
)
from fmer.analysis.aggregate import (
    aggregate,
    config_change,
    coverage_note,
    parse_run_path,
    reused_note,
)
from fmer.checkpoint import Checkpointer
from fmer.cli import analysis as cli
from fmer.cli import main as cli_main
from fmer.config import (
    OUTPUT_KEYS,
    Config,
    ConfigError,
    load_yaml,
    make_config,
    parse_overrides,
)
from fmer.envs import MULTIGOAL
from fmer.multigoal import GOALS

REPO = Path(__file__).resolve().parents[1]
CONFIG = load_yaml(REPO / "config" / "config.yaml")
SEEDS = (0, 1)
VARIANTS = ("fmer", "sac")
# as the workflow trains multigoal runs: keep the final agent for the action samples
TINY = ["--set", "actor.hidden=[32,32]", "--set", "critic.hidden=[32,32]",
        "--set", "train.keep_checkpoint=true"]


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> Path:
    """multigoal-2d, FMER and SAC, two seeds each, smoke schedule: real logs, two at a time."""
    root = tmp_path_factory.mktemp("analysis") / "results" / "smoke"
    cmds = [[sys.executable, "-m", "fmer", "train", "--env", MULTIGOAL, "--algo", v,
             "--seed", str(s), "--budget", "smoke", "--out", str(root / MULTIGOAL / v /
                                                                  f"seed{s}"), *TINY]
            for v in VARIANTS for s in SEEDS]
    for pair in (cmds[:2], cmds[2:]):
        procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for c in pair]
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err.decode()[-2000:]
    return root


def run_dirs(root: Path) -> list[Path]:
    return [root / MULTIGOAL / v / f"seed{s}" for v in VARIANTS for s in SEEDS]


def test_summary_is_one_row_per_run_and_evaluation_with_train_metrics_at_that_step(runs):
    summary, completeness = aggregate(run_dirs(runs), "smoke")
    assert (completeness["status"] == "complete").all()
    assert len(summary) == 4 * 2  # evaluations at 150 and 300
    for d in run_dirs(runs):
        where = parse_run_path(d)
        mine = summary[(summary["variant"] == where["variant"])
                       & (summary["seed"] == where["seed"])].set_index("step")
        logged = pd.read_csv(d / "train.csv").set_index("step")
        # the train.csv row logged at the evaluation step itself (log_every divides it)
        assert mine.loc[300, "critic_loss"] == pytest.approx(logged.loc[300, "critic_loss"])
        assert np.isnan(mine.loc[150, "critic_loss"])  # before learning_starts: no updates
    assert set(summary.columns) >= {"env", "variant", "seed", "step", "return_mean", "tau",
                                    "ess_frac", "entropy_corrected", "saturation"}


def test_missing_incomplete_and_tampered_runs_are_reported_not_used(runs, tmp_path):
    root = tmp_path / "results" / "smoke" / MULTIGOAL
    shutil.copytree(runs / MULTIGOAL, root)
    with open(root / "fmer" / "seed1" / "eval.csv", "a") as f:
        f.write("450,1,0,0,0,0,,,1.0\n")  # edited after completion: sha256 no longer matches
    shutil.move(root / "sac" / "seed1", root / "sac" / "seed1-moved")
    (root / "sac" / "seed1").mkdir()
    shutil.move(root / "sac" / "seed1-moved", root / "sac" / "seed1" / ".train")
    dirs = [*run_dirs(root.parent), root / "fmer" / "seed7"]
    summary, completeness = aggregate(dirs, "smoke")
    status = completeness.set_index(["variant", "seed"])["status"]
    assert status[("fmer", 0)] == "complete" and status[("sac", 0)] == "complete"
    assert status[("fmer", 1)] == "incomplete"
    assert "sha256" in completeness.set_index(["variant", "seed"]).loc[("fmer", 1), "detail"]
    assert status[("fmer", 7)] == "missing"
    # a run still in RUN/.train (the workflow's staging) is not complete either
    assert status[("sac", 1)] != "complete"
    assert set(zip(summary["variant"], summary["seed"], strict=True)) == {("fmer", 0),
                                                                         ("sac", 0)}
    note = coverage_note(completeness, "smoke")
    assert note.startswith("budget smoke: 2 of 5 runs")
    assert "multigoal-2d fmer seed 1,7" in note and "multigoal-2d sac seed 1" in note


def test_stratified_bootstrap_interval():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 10), rng.normal(5, 1, 10)
    point, low, high = stats.stratified_ci([a, b], stats.mean, reps=2000)
    assert point == pytest.approx(np.concatenate([a, b]).mean())
    assert low < point < high
    # strata are resampled separately, so the spread between the tasks is not resampled:
    # the interval is much narrower than that of one pooled sample of the same 20 values
    _, plow, phigh = stats.stratified_ci([np.concatenate([a, b])], stats.mean, reps=2000)
    assert (high - low) < 0.6 * (phigh - plow)
    assert stats.stratified_ci([np.array([3.0])]) == (3.0, 3.0, 3.0)
    assert np.isnan(stats.stratified_ci([np.array([np.nan])])[0])
    x = rng.normal(size=40)
    assert stats.iqm(x) == pytest.approx(metrics.aggregate_iqm(x))
    assert stats.iqm(np.stack([x, x]))[1] == pytest.approx(metrics.aggregate_iqm(x))


def test_estimates_hold_each_seeds_final_and_max_from_the_logs_and_their_t_interval(runs):
    summary, _ = aggregate(run_dirs(runs), "smoke")
    table = estimates.cell_estimates(summary)
    for variant in VARIANTS:
        logs = {s: pd.read_csv(runs / MULTIGOAL / variant / f"seed{s}" / "eval.csv")
                for s in SEEDS}
        for metric, of in (("final_return", lambda e: e["return_mean"].iloc[-1]),
                           ("max_return", lambda e: e["return_mean"].max())):
            values = estimates.seed_values(table, metric, MULTIGOAL, variant)
            assert values.to_dict() == pytest.approx({s: of(e) for s, e in logs.items()})
            (row,) = estimates.select(table, metric, MULTIGOAL, variant).itertuples()
            assert (row.point, row.low, row.high) == pytest.approx(stats.t_interval(values))
            assert row.n == 2 and row.interval == estimates.INTERVAL
        # one curve row per evaluation step, each seed's logged value
        curve = estimates.select(table, "return_mean", MULTIGOAL, variant, curve=True)
        assert curve["step"].tolist() == [150, 300]
        for _, row in curve.iterrows():
            at = {s: e.set_index("step").loc[row["step"], "return_mean"]
                  for s, e in logs.items()}
            assert estimates.per_seed(row).to_dict() == pytest.approx(at)
    assert estimates.select(table, "final_success_pct").empty  # no kitchen here


def test_normalised_scores_use_the_papers_sac_where_reported_else_the_best_run(runs):
    summary, _ = aggregate(run_dirs(runs), "smoke")
    # the math is per task; these are the logs of one task, set on two MuJoCo tasks
    both = pd.concat([summary.assign(env="HalfCheetah-v5"), summary.assign(env="Hopper-v5")])
    floor = summary["return_mean"].min() - 100  # a random policy below every run
    random = pd.DataFrame({"env": ["HalfCheetah-v5", "Hopper-v5"],
                           "return_mean": [floor, floor - 50]})
    reported = pd.read_csv(REPO / "paper" / "reported.csv")
    per, cells, refs = figures.normalised_scores(estimates.cell_estimates(both), random,
                                                 reported)
    # a cell's normalised mean and interval are those of its runs' normalised scores
    for (env, variant), mine in per.groupby(["env", "variant"]):
        (cell,) = cells[(cells["env"] == env) & (cells["variant"] == variant)].itertuples()
        assert (cell.point, cell.low, cell.high) == pytest.approx(
            stats.t_interval(mine.sort_values("seed")["score"]))
    assert refs == {"HalfCheetah-v5": "paper's SAC, 1,000,000 steps", "Hopper-v5": "best seen"}
    per = per.set_index(["env", "variant", "seed"])
    for (_, variant, seed), row in per.iterrows():
        logged = pd.read_csv(runs / MULTIGOAL / variant / f"seed{seed}" / "eval.csv")
        assert row["max"] == pytest.approx(logged["return_mean"].max())
    cheetah = per.loc["HalfCheetah-v5"]
    assert cheetah["score"].tolist() == pytest.approx(
        ((cheetah["max"] - floor) / (10295.33 - floor)).tolist())
    hopper = per.loc["Hopper-v5"]
    assert hopper["score"].max() == pytest.approx(1.0)  # the best run seen there, not SAC's mean
    assert hopper["score"].min() < 1.0


def write_cells(dirs, out: Path) -> list[tuple[Path, Path, Path]]:
    """fmer aggregate on each (env, variant) of ``dirs``, as the workflow's cell_summary does:
    (summary, completeness, estimates) per cell."""
    cells = {}
    for d in dirs:
        cells.setdefault((d.parent.parent.name, d.parent.name), []).append(d)
    triples = []
    for (env, variant), mine in cells.items():
        triple = tuple(out / table / env / f"{variant}.csv"
                       for table in ("summary", "completeness", "estimates"))
        assert cli_main(["aggregate", "--budget", "smoke", "--out", str(triple[0]),
                         "--completeness", str(triple[1]), "--estimates", str(triple[2]),
                         *map(str, mine)]) == 0
        triples.append(triple)
    return triples


def legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_cells_concatenate_to_the_summary_of_all_their_runs(runs, tmp_path):
    dirs = [*run_dirs(runs), runs / MULTIGOAL / "sac" / "seed2"]
    cells = write_cells(dirs, tmp_path)
    assert cli_main(["concat-summaries", "--out", str(tmp_path / "s.csv"), "--completeness",
                     str(tmp_path / "c.csv"), "--estimates", str(tmp_path / "e.csv"),
                     *(str(a) for c in cells for a in ("--cell", *c))]) == 0
    summary, completeness = aggregate(dirs, "smoke")
    written = tmp_path / "whole.csv"
    summary.to_csv(written, index=False)
    assert (tmp_path / "s.csv").read_text() == written.read_text()
    completeness.to_csv(written, index=False)
    assert (tmp_path / "c.csv").read_text() == written.read_text()
    # the budget's estimates: its cells', the same as those of the whole summary at once
    estimates.write(estimates.cell_estimates(summary), written)
    assert (tmp_path / "e.csv").read_text() == written.read_text()


@pytest.mark.parametrize("kind", ["curve", "multigoal"])
def test_figure_names_the_runs_it_lacks(runs, tmp_path, kind):
    if kind == "multigoal":
        for d in run_dirs(runs):
            samples = rollouts.action_samples(d, 50)
            assert len(samples) == 50 * len(rollouts.SAMPLE_STATES)
            assert samples[["action_x", "action_y"]].abs().max().max() <= 1.0
            samples.to_csv(d / "samples.csv", index=False)
    dirs = [*run_dirs(runs), runs / MULTIGOAL / "sac" / "seed2"]
    samples = [d / "samples.csv" for d in run_dirs(runs)] if kind == "multigoal" else []
    paths = figures.build(kind, write_cells(dirs, tmp_path), "smoke", tmp_path / kind,
                          samples=samples)
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 5000 for p in paths)
    note = coverage_note(aggregate(dirs, "smoke")[1], "smoke")
    assert "4 of 5 runs" in note and "sac seed 2" in note


def test_tables_set_ours_beside_the_papers(runs, tmp_path):
    summary, completeness = aggregate(run_dirs(runs), "smoke")
    summary["env"] = completeness["env"] = "HalfCheetah-v5"
    reported = pd.read_csv(REPO / "paper" / "reported.csv")
    table = estimates.cell_estimates(summary)
    md, tex = tables.write(table, completeness, reported, "smoke", tmp_path / "results")
    text = md.read_text()
    assert "12332.38" in text and "10295.33" in text and "45.71" in text
    assert "(n=2)" in text and "smoke, 300 steps" in text
    assert "4 of 4 runs complete" in text
    assert coverage_label(2) in text  # what the brackets are, and what they cover
    assert tex.read_text().count(r"\begin{tabular}") == 3  # MuJoCo, FrankaKitchen, verdicts
    # one seed of SAC: its mean, never a zero-width interval
    one = estimates.cell_estimates(summary[(summary["variant"] == "fmer")
                                           | (summary["seed"] == 0)])
    md, _ = tables.write(one, completeness, reported, "smoke", tmp_path / "one")
    text = md.read_text()
    assert "(n=1, no interval)" in text and "(n=2)" in text and "[" in text


def coverage_label(n: int) -> str:
    from fmer.analysis import coverage

    return coverage.label(n)


def doctored(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with numbers no computation from the logs gives: every point 1000 + its row,
    its interval ± 7, each seed's value 2000 + its row."""
    out = table.copy()
    out["point"] = 1000.0 + np.arange(len(out))
    out["low"], out["high"] = out["point"] - 7, out["point"] + 7
    out["values"] = [";".join(str(2000.0 + i) for _ in str(s).split(";"))
                     for i, s in enumerate(out["seeds"])]
    return out


def test_figures_and_tables_show_the_estimates_tables_numbers_and_compute_none(runs, tmp_path):
    """A doctored estimates table: the curve, the returns panels and the results page show its
    numbers, not the logs'; and no figure or table module calls the per-run or bootstrap
    helpers the estimates replaced."""
    summary, completeness = aggregate(run_dirs(runs), "smoke")
    table = doctored(estimates.cell_estimates(summary))
    three = table.copy()
    three.loc[three["variant"] == "fmer", "n"] = 3  # drawn as a mean and its band
    fig = figures.curve(three, completeness, "smoke")
    ax = fig.axes[0]
    rows = estimates.select(three, "return_mean", variant="fmer", curve=True)
    (line,) = [ln for ln in ax.lines if len(ln.get_xdata()) and ln.get_marker() == "o"]
    assert list(line.get_ydata()) == rows["point"].tolist()
    (band,) = ax.collections
    assert band.get_paths()[0].vertices[:, 1].max() == pytest.approx(rows["high"].max())
    sac = estimates.select(table, "return_mean", variant="sac", curve=True)
    drawn = {y for ln in ax.lines for y in ln.get_ydata()}
    assert {2000.0 + i for i in sac.index} <= drawn  # two seeds: each seed's doctored value
    plt.close("all")
    both = table.assign(env="Hopper-v5")
    fig = figures.ablation_returns(both, completeness.assign(env="Hopper-v5"), "smoke")
    final = estimates.select(both, "final_return", "Hopper-v5")
    points = sorted(ln.get_xdata()[0] for ln in fig.axes[0].lines if ln.get_marker() == "o")
    assert points == sorted(final["point"].tolist())
    plt.close("all")
    both = table.assign(env="HalfCheetah-v5")
    md, _ = tables.write(both, completeness.assign(env="HalfCheetah-v5"),
                         pd.read_csv(REPO / "paper" / "reported.csv"), "smoke", tmp_path / "r")
    text = md.read_text()
    for _, r in estimates.select(both, "max_return").iterrows():
        assert f"{r['point']:.0f} [{r['low']:.0f}, {r['high']:.0f}] (n=2)" in text
    for module in (figures, tables):
        source = Path(module.__file__).read_text()
        for helper in ("stratified_ci", "interval_table", "learning_curve", "per_run"):
            assert helper not in source, (module.__name__, helper)


def test_verdict_table_on_tiny_real_runs(runs, tmp_path):
    shutil.copytree(runs / MULTIGOAL, tmp_path / MULTIGOAL)
    dirs = run_dirs(tmp_path)
    for d in dirs:
        rollouts.goal_rollouts(d, 20).to_csv(d / "goals.csv", index=False)
    summary, completeness = aggregate(dirs, "smoke")
    df = verdicts.verdict_rows(estimates.cell_estimates(summary), completeness,
                               "smoke").set_index("claim")
    assert len(df) == 8
    multi = df.loc["FMER's policy is multimodal (multigoal-2d)"]
    assert multi["verdict"] == verdicts.NOT_TESTABLE  # 300 steps of the paper budget's 20,000
    assert "fmer: seed 0:" in multi["numbers"] and "reach" in multi["numbers"]
    assert "300 steps; the `paper` budget's" in multi["note"]
    assert df.loc[verdicts.COST_CLAIM, "verdict"] == "cannot tell (n=0)"  # no bench timing
    assert df.loc["ESS tuning of τ helps", "verdict"] == "cannot tell (n=0)"
    # the cost claim reads fmer bench's ratio, interval and rounds when given
    for timing, expected in (((9.0, 7.5, 10.8, 10), "supports"),
                             ((2.0, 1.8, 2.2, 10), "contradicts"),
                             ((4.0, 2.0, 8.0, 10), "cannot tell")):
        cost = verdicts.verdict_rows(estimates.cell_estimates(summary), completeness, "smoke",
                                     timing).set_index("claim").loc[verdicts.COST_CLAIM]
        assert cost["verdict"] == expected
        assert f"{timing[0]:.1f}× [{timing[1]:.1f}, {timing[2]:.1f}]" in cost["numbers"]
    md, _ = tables.write(estimates.cell_estimates(summary), completeness, pd.DataFrame(
        columns=["table", "benchmark", "setting", "method", "metric", "value"]), "smoke",
        tmp_path / "results")
    assert "## Verdicts, one per paper claim" in md.read_text()
    assert verdicts.RULES.splitlines()[0] in md.read_text()


def test_grid_of_each_budget():
    mini = budgets.runs(CONFIG, "mini")
    assert len(mini) == len({(r.env, r.variant, r.seed) for r in mini}) == 75
    assert {r.env for r in mini} == {"Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "kitchen-1",
                                     MULTIGOAL}
    assert {r.env for r in mini if r.variant == "fmer-top1"} == {"Hopper-v5", "HalfCheetah-v5"}
    assert {r.overrides["train.total_steps"] for r in mini} == {20000}
    assert len(budgets.runs(CONFIG, "smoke")) == 9
    for run in mini:
        tokens = shlex.split(run.set_args())
        assert set(tokens[0::2]) == {"--set"}
        # the workflow's rerun trigger: every setting that can change a number, and no other
        assert parse_overrides(tokens[1::2]) == {k: v for k, v in run.overrides.items()
                                                 if k not in OUTPUT_KEYS}
        assert "train.total_steps" in run.set_args() and "checkpoint" not in run.set_args()
    # the multimodality samples and goals come from the saved policy: no kept checkpoint
    assert not any(r.config().train.keep_checkpoint for r in mini)
    # -dim(A) + ln(4 goals), the same for FMER and SAC (paper/README.md)
    for run in budgets.select([*mini, *budgets.runs(CONFIG, "paper")], envs=[MULTIGOAL]):
        assert run.config().alpha.target_entropy == pytest.approx(-2 + math.log(4), abs=1e-4)
    with pytest.raises(ConfigError, match="budgets.mini.overrides.Hopper-v5.*temperature.fxd"):
        bad = {**CONFIG, "budgets": {**CONFIG["budgets"], "mini": {
            **CONFIG["budgets"]["mini"], "overrides": {"Hopper-v5": {"temperature.fxd": 1}}}}}
        budgets.check(bad, "mini")


def test_cost_estimates_grow_with_the_budget():
    sizes = {b: cost.budget_size(budgets.runs(CONFIG, b)) for b in ("smoke", "mini", "paper")}
    assert sizes["smoke"]["core_hours"] < sizes["mini"]["core_hours"] < sizes["paper"][
        "core_hours"]
    humanoid = budgets.select(budgets.runs(CONFIG, "paper"), envs=["Humanoid-v5"])[0]
    assert cost.mem_mb(humanoid) > 3000  # a 1M-step replay of 348-d observations
    assert cost.runtime_minutes(humanoid) > 60 * 24


def test_the_cost_model_predicts_fmers_update_at_the_settings_the_bench_timed():
    """Fed only the parts measured at the defaults, the model gives the FMER update that the
    same bench timed at the defaults study's cost settings (fewer candidates, states, actor
    updates), within a factor of 1.3."""
    rows = benchlog.read_csv(cost.PERFORMANCE)
    own = budgets.budget_variants(budgets.budget_config(CONFIG, "defaults"))
    timed = [r for r in rows if r["item"] == "fmer_update" and r["threads"] == 1
             and r["setting"] in own]
    assert {r["setting"] for r in timed} == set(own) and len(own) >= 3
    for r in timed:
        cfg = make_config(r["env"], "fmer", 0, overrides=own[r["setting"]]["set"])
        predicted = cost.fmer_update_seconds(cfg, cost.speeds(r["env"])) * 1e3
        assert 1 / 1.3 < predicted / r["ms"] < 1.3, (r["setting"], predicted, r["ms"])


def test_the_default_bench_times_every_benchmark_the_budgets_run():
    used = {r.env for name in CONFIG["budgets"] for r in [
        *budgets.runs(CONFIG, name),
        *(r for t in budgets.TARGETS for r in budgets.target_runs(CONFIG, name, t))]}
    assert {cost.MEASURED_AS.get(env, env) for env in used} <= set(benchlog.DEFAULT_ENVS)
    assert benchlog.DEFAULT_ENVS[0] == "HalfCheetah-v5"  # the performance page's headline env


def _run(env: str, algo: str, steps: int = 20_000) -> budgets.Run:
    return budgets.Run("b", env, algo, 0, (("train.total_steps", steps),), algo)


def _bench_copy(tmp_path: Path, change) -> Path:
    """The committed bench CSV with ``change(row) -> row or None`` applied to each row."""
    rows = [change(dict(r)) for r in benchlog.read_csv(cost.PERFORMANCE)]
    benchlog.write_csv([r for r in rows if r is not None], tmp_path / "bench.csv")
    return tmp_path / "bench.csv"


def test_cost_reads_the_speeds_of_the_bench_csv(tmp_path):
    cheetah = {a: _run("HalfCheetah-v5", a) for a in ("sac", "fmer")}
    before = {a: cost.core_seconds(run) for a, run in cheetah.items()}

    def slower_fmer(r):  # FMER's parts twice as slow on HalfCheetah, nothing else
        twice = r["env"] == "HalfCheetah-v5" and r["item"].startswith("fmer_")
        return {**r, "ms": 2 * r["ms"]} if twice else r

    slow = _bench_copy(tmp_path, slower_fmer)
    cfg = cheetah["fmer"].config()
    assert cost.fmer_update_seconds(cfg, cost.speeds("HalfCheetah-v5", slow)) == pytest.approx(
        2 * cost.fmer_update_seconds(cfg, cost.speeds("HalfCheetah-v5")))
    assert cost.core_seconds(cheetah["sac"], slow) == before["sac"]
    assert cost.core_seconds(cheetah["fmer"], slow) > 1.8 * before["fmer"]  # updates dominate

    wide = _bench_copy(tmp_path, lambda r: {**r, "obs_dim": 10 * r["obs_dim"]}
                       if r["env"] == "HalfCheetah-v5" else r)
    big = _run("HalfCheetah-v5", "sac", 10**6)
    assert cost.mem_mb(big, wide) > cost.mem_mb(big) + 1000  # 1M rows of 170 more floats


def test_a_benchmark_without_bench_rows_is_an_error_naming_the_command(tmp_path):
    kitchen = _run("kitchen-1", "sac")
    # kitchen-1 and kitchen-7 are one simulator with kitchen-4: costed by its rows
    assert cost.core_seconds(kitchen) == cost.core_seconds(_run("kitchen-4", "sac"))
    without = _bench_copy(tmp_path, lambda r: None if r["env"] == "kitchen-4" else r)
    with pytest.raises(cost.NotBenchedError,
                       match=r"kitchen-1 \(as kitchen-4\).*fmer bench --envs kitchen-4 "):
        cost.core_seconds(kitchen, without)
    no_parts = _bench_copy(tmp_path, lambda r: None if r["item"] == "qvpo_rest" else r)
    with pytest.raises(cost.NotBenchedError, match="HalfCheetah-v5.*qvpo_rest"):
        cost.mem_mb(_run("HalfCheetah-v5", "sac"), no_parts)
    with pytest.raises(cost.NotBenchedError, match="nosuch.csv.*fmer bench --envs Hopper-v5"):
        cost.speeds("Hopper-v5", tmp_path / "nosuch.csv")


def test_cli_lists_every_figure_kind():
    assert set(cli.FIGURE_KINDS) == set(figures.KINDS)


def _status_lines(root: Path, budget: str = "smoke") -> tuple[dict[str, str], list[str]]:
    """fmer status's lines: {run path: line} and the totals."""
    proc = subprocess.run([sys.executable, "-m", "fmer", "status", "--budget", budget,
                           "--root", str(root)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()[1:]
    return {line.split()[1]: line for line in lines[:-3]}, lines[-3:]


def test_status_of_a_grid_with_complete_running_killed_failed_and_missing_runs(runs, tmp_path):
    from conftest import popen_fmer

    smoke = budgets.runs(CONFIG, "smoke")
    shutil.copytree(runs / MULTIGOAL, tmp_path / "results/smoke" / MULTIGOAL)
    # failed on a non-finite value: will not resume
    failed = tmp_path / budgets.run_path("smoke", "kitchen-1", "fmer", 0) / ".train"
    shutil.copytree(runs / MULTIGOAL / "fmer/seed0", failed)
    meta = json.loads((failed / "meta.json").read_text())
    meta.update(status="failed", error="non-finite critic_loss at step 250",
                failure={"step": 250, "quantity": "critic_loss"})
    (failed / "meta.json").write_text(json.dumps(meta))
    # complete, but not this path's run (another env): stale, to be retrained
    stale = budgets.run_path("smoke", "kitchen-1", "sac", 0)
    shutil.copytree(runs / MULTIGOAL / "sac/seed0", tmp_path / stale)
    # a run of the grid started as the workflow starts it, frozen after a checkpoint
    hopper = budgets.select(smoke, envs=["Hopper-v5"], variants=["sac"])[0]
    partial = tmp_path / hopper.path / ".train"
    proc = popen_fmer("train", "--env", hopper.env, "--algo", hopper.algo, "--seed", "0",
                      "--out", partial, "--budget", "smoke")
    try:
        deadline = time.monotonic() + 120
        while not (partial / "checkpoint/state.pt").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.01)
        proc.send_signal(signal.SIGSTOP)
        lines, _ = _status_lines(tmp_path)
        assert lines[hopper.path].startswith("running ")
        assert f"pid {proc.pid}" in lines[hopper.path]
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    saved = Checkpointer(partial / "checkpoint").step()
    assert saved in (100, 200)

    lines, totals = _status_lines(tmp_path)
    assert len(lines) == len(smoke) == 9
    state = {path: line.split()[0] for path, line in lines.items()}
    complete = [r for r in smoke if r.env == MULTIGOAL]
    assert {r.path for r in complete} == {p for p, s in state.items() if s == "complete"}
    assert state[hopper.path] == "stopped"
    assert f"resumes from its checkpoint at step {saved}" in lines[hopper.path]
    assert state[budgets.run_path("smoke", "kitchen-1", "fmer", 0)] == "failed"
    assert "non-finite critic_loss" in lines[budgets.run_path("smoke", "kitchen-1", "fmer", 0)]
    assert state[stale] == "stale"
    assert f"env (run '{MULTIGOAL}', budget 'kitchen-1')" in lines[stale]
    assert sum(s == "missing" for s in state.values()) == 4
    assert totals[0] == "runs: 9: 2 complete, 1 stale, 0 running, 1 stopped, 1 failed, 4 missing"
    done = 2 * 300 + saved
    assert totals[1] == f"env steps: {done:,} done, {2700 - done:,} left (of 2,700)"
    hours = {r.path: cost.core_seconds(r) / 3600 for r in smoke}
    h_done = sum(hours[r.path] for r in complete) + hours[hopper.path] * saved / 300
    h_all = cost.budget_size(smoke)["core_hours"]
    assert totals[2].endswith(f"{cost.hours(h_done)} done, {cost.hours(h_all - h_done)} "
                              f"left (of {cost.hours(h_all)})")


def test_status_refuses_an_unknown_budget_before_any_output(capsys):
    assert cli_main(["status", "--budget", "smok"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "smok" in err and "did you mean smoke" in err


def test_a_run_trained_with_another_config_is_stale_and_a_copy_with_the_same_counts(
        runs, tmp_path):
    root = tmp_path / "results" / "smoke" / MULTIGOAL
    shutil.copytree(runs / MULTIGOAL, root)
    # a budget's own variant with fmer's config: the fmer run copied there is its run
    shutil.copytree(root / "fmer" / "seed0", root / "fmer-same" / "seed0")
    grid = copy.deepcopy(CONFIG)
    grid["budgets"]["smoke"]["variants"] = {"fmer-same": {"base": "fmer", "set": {}}}
    dirs = [root / v / "seed0" for v in ("fmer", "sac", "fmer-same")]
    summary, completeness = aggregate(dirs, "smoke", grid)
    assert (completeness["status"] == "complete").all()
    assert set(summary["variant"]) == {"fmer", "sac", "fmer-same"}
    # FMER's defaults change: its runs are another experiment's now; SAC, not reading the
    # key, keeps its run
    trained = json.loads((root / "fmer" / "seed0" / "meta.json").read_text())["config"]
    candidates = trained["actor"]["candidates"]
    grid["budgets"]["smoke"]["set"]["actor.candidates"] = candidates + 1
    summary, completeness = aggregate(dirs, "smoke", grid)
    status = completeness.set_index("variant")["status"]
    assert status.to_dict() == {"fmer": "stale", "sac": "complete", "fmer-same": "stale"}
    detail = completeness.set_index("variant").loc["fmer", "detail"]
    assert f"actor.candidates (run {candidates}, budget {candidates + 1})" in detail
    assert set(summary["variant"]) == {"sac"}
    assert "NOT SHOWN: multigoal-2d fmer seed 0; multigoal-2d fmer-same seed 0" in (
        coverage_note(completeness, "smoke"))
    # a config this version cannot read (a key since removed) is another experiment too
    trained["actor"]["removed_key"] = 1
    assert "actor.removed_key" in config_change({"config": trained}, Config())
    # a run elsewhere (fmer train --out) is taken as it is
    elsewhere = tmp_path / "runs" / "mine"
    shutil.copytree(root / "fmer" / "seed0", elsewhere)
    assert aggregate([elsewhere], "smoke", grid)[1]["status"].tolist() == ["complete"]


def test_plot_overlays_grid_runs_and_refuses_a_path_without_a_run(runs, tmp_path):
    out = tmp_path / "page.png"
    dirs = [runs / MULTIGOAL / v / "seed0" for v in VARIANTS]
    assert plot.plot(dirs, out) == out
    image = mpimg.imread(out)
    assert image.shape[0] > 1000 and image[..., :3].std() > 0.05, "blank page"
    assert cli_main(["plot", str(dirs[0]), str(tmp_path / "typo"), "--out",
                     str(tmp_path / "no.png")]) == 2
    assert not (tmp_path / "no.png").exists()


def test_aggregate_refuses_a_misspelled_path_and_a_figure_takes_a_run_outside_the_grid(
        runs, tmp_path, capsys):
    typo = runs / "multigoal-2dd" / "sac" / "seed0"
    assert cli_main(["aggregate", "--budget", "smoke", "--out", str(tmp_path / "s.csv"),
                     "--completeness", str(tmp_path / "c.csv"), "--estimates",
                     str(tmp_path / "e.csv"), str(typo)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and str(typo) in err and not list(tmp_path.iterdir())
    elsewhere = tmp_path / "runs" / "mine"  # as `fmer train --out runs/mine` leaves it
    shutil.copytree(runs / MULTIGOAL / "sac" / "seed0", elsewhere)
    cell = [str(tmp_path / f"{x}.csv") for x in "sce"]
    assert cli_main(["aggregate", "--budget", "smoke", "--out", cell[0], "--completeness",
                     cell[1], "--estimates", cell[2], str(elsewhere)]) == 0
    assert cli_main(["figure", "curve", "--budget", "smoke", "--out", str(tmp_path / "f"),
                     "--cell", *cell]) == 0
    assert pd.read_csv(cell[1])["status"].tolist() == ["complete"]
    assert len(pd.read_csv(cell[0])) == 2
    assert (tmp_path / "f.png").stat().st_size > 5000


def test_curve_draws_a_band_from_three_seeds_only_and_lists_a_variant_not_run(runs):
    fmer = [runs / MULTIGOAL / "fmer" / f"seed{s}" for s in SEEDS]
    summary, completeness = aggregate(fmer, "smoke")
    fig = figures.curve(estimates.cell_estimates(summary), completeness, "smoke")
    ax = fig.axes[0]
    assert len(ax.collections) == 0  # two seeds: no interval band, each seed its own line
    assert len(ax.lines) == 2
    assert legend_texts(ax) == ["fmer (n=2): each seed"]
    assert ax.get_title() == "multigoal-2d: budget smoke, 300 steps"
    # three seeds (the logs of seed 0 again, as seed 2): the mean and its band; SAC expected
    # (three paths of the grid) but not run: in the legend all the same
    summary, completeness = aggregate(
        [*fmer, *(runs / MULTIGOAL / "sac" / f"seed{s}" for s in (5, 6, 7))], "smoke")
    three = pd.concat([summary, summary[summary["seed"] == 0].assign(seed=2)])
    fig = figures.curve(estimates.cell_estimates(three), completeness, "smoke")
    ax = fig.axes[0]
    assert len(ax.collections) == 1 and len(ax.lines) == 2  # fmer's mean; sac's legend entry
    assert legend_texts(ax) == ["fmer (n=3): mean, 95% t-interval",
                                "sac: not run (0 of 3 runs complete)"]
    assert fig.fmer_intervals == {3}  # the footer says what a band of 3 seeds covers
    plt.close("all")






def test_multigoal_draws_each_seed_apart_with_the_goals_and_the_legend_outside(runs):
    for d in run_dirs(runs):
        if not (d / "samples.csv").exists():
            rollouts.action_samples(d, 50).to_csv(d / "samples.csv", index=False)
    dirs = [*run_dirs(runs), runs / MULTIGOAL / "sac" / "seed2"]
    summary, completeness = aggregate(dirs, "smoke")
    samples = pd.concat([pd.read_csv(d / "samples.csv") for d in run_dirs(runs)])
    fig = figures.multigoal(estimates.cell_estimates(summary), completeness, "smoke",
                            samples=samples)
    panels = {ax.get_title(): ax for ax in fig.axes}
    # one row per algorithm, one column per seed: the same seeds for both
    assert list(panels) == [f"{v}, seed {s}" for v in VARIANTS for s in (0, 1, 2)]
    for title, ax in panels.items():
        assert ax.get_legend() is None  # the legend is the figure's, below the panels
        goals = ax.collections[0].get_offsets()
        assert sorted(map(tuple, goals)) == sorted(map(tuple, GOALS))
        drawn = sum(len(c.get_offsets()) for c in ax.collections[1:])
        texts = [t.get_text() for t in ax.texts]
        if title.endswith("seed 2"):  # sac's expected, not run; fmer's not in the grid
            assert drawn == 0 and texts == ["not run"]
        else:  # each seed's own samples only, at every sampled state (and the state's mark)
            variant, seed = title.split(", seed ")
            assert drawn == len(samples[(samples["variant"] == variant)
                                        & (samples["seed"] == int(seed))]) + 3
            assert texts == []
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()][0] == "goal"
    plt.close("all")


def test_ablation_figures_name_every_expected_variant_and_take_a_budgets_own(runs):
    dirs = [*run_dirs(runs), runs / MULTIGOAL / "fmer-no-ess" / "seed0"]
    summary, completeness = aggregate(dirs, "smoke")
    # the math is per task: these logs as Hopper's, SAC's renamed as a budget's own variant
    summary["env"] = completeness["env"] = "Hopper-v5"
    for frame in (summary, completeness):
        frame.loc[frame["variant"] == "sac", "variant"] = "fmer-n8-s64-e64"
    summary = estimates.cell_estimates(summary)
    fig = figures.ablation_returns(summary, completeness, "smoke")
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_yticklabels()] == [
            "fmer (n=2)", "fmer-no-ess (n=0)", "fmer-n8-s64-e64 (n=2)"]
        assert [t.get_text() for t in ax.texts] == ["not run"]
        assert ax.get_xlabel().endswith("evaluation return" if "final" in ax.get_title()
                                        else "(max over evaluations)")
    assert fig._suptitle.get_text() == ("Ablations, budget smoke, 300 steps: mean, 95% "
                                        "t-interval over seeds, dots: each seed")
    fig = figures.ablation_ess(summary, completeness, "smoke")
    for ax in fig.axes:
        assert legend_texts(ax) == ["fmer (n=2): each seed",
                                    "fmer-no-ess: not run (0 of 1 runs complete)"]
        assert ax.get_xlabel() == figures.STEPS and ax.get_ylabel()
    assert "bisection so that ESS/N = 0.5" in fig._suptitle.get_text()
    assert fig.axes[1].get_ylim() == (0, 1.05)  # ESS/N on its whole scale, not float noise
    fig = figures.ablation_tanh(summary, completeness, "smoke")
    corrected, latent = fig.axes[0].get_legend().get_lines()[-2:]
    assert (corrected.get_linestyle(), latent.get_linestyle()) == ("-", "--")
    assert "dashed" in legend_texts(fig.axes[0])[-1]
    # every legend below its axes, where it covers no curve
    assert all(ax.get_legend().get_bbox_to_anchor().y1 < ax.get_window_extent().y0
               for ax in fig.axes)
    # the weights' figure: the same panels, its own title
    renamed = {"fmer-n8-s64-e64": "fmer-top1", "fmer-no-ess": "fmer-unnormalized"}
    fig = figures.ablation_weights(summary.replace({"variant": renamed}),
                                   completeness.replace({"variant": renamed}), "smoke")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [
        "fmer (n=2)", "fmer-top1 (n=2)", "fmer-unnormalized (n=0)"]
    assert fig._suptitle.get_text().startswith(
        "Candidate weights: softmax (fmer), top-1, unnormalised, budget smoke, 300 steps")
    assert figures.colors_of(["fmer", "fmer-n8-s64-e64", "fmer-n8-s64-e64-k2"]) == {
        "fmer": figures.COLORS["fmer"], "fmer-n8-s64-e64": figures.OTHER_COLORS[0],
        "fmer-n8-s64-e64-k2": figures.OTHER_COLORS[1]}
    plt.close("all")


def test_iqm_names_its_normalisation_and_the_tasks_without_a_reference(runs):
    summary, completeness = aggregate(run_dirs(runs), "smoke")
    both = pd.concat([summary.assign(env=e) for e in ("Hopper-v5", "Walker2d-v5")])
    expected = pd.concat([completeness.assign(env=e) for e in ("Hopper-v5", "Walker2d-v5")])
    random = pd.read_csv(REPO / "results" / "random_scores.csv")
    reported = pd.read_csv(REPO / "paper" / "reported.csv")
    fig = figures.iqm(estimates.cell_estimates(both), expected, "smoke", random_scores=random,
                      reported=reported)
    title = fig._suptitle.get_text()
    assert "(R − R_random) / (R_SAC,paper − R_random), R = max evaluation return" in title
    assert "no paper reference for Hopper-v5" in title and "not in the IQM" in title
    left, right = fig.axes
    assert left.get_title().endswith("Walker2d-v5 seeds 0,1")
    assert [t.get_text() for t in right.get_yticklabels()] == [
        "Hopper-v5\n(1 = best seen)", "Walker2d-v5\n(1 = paper's SAC, 1,000,000 steps)"]
    plt.close("all")


def test_iqm_compares_on_the_tasks_and_seeds_every_variant_has(runs):
    """FMER on Walker2d-v5 seed 0 only, SAC on Walker2d-v5 seeds 0, 1 and HalfCheetah-v5: the
    pooled number is over Walker2d-v5 seed 0 for both, and says so."""
    summary, completeness = aggregate(run_dirs(runs), "smoke")
    runs_ = pd.concat([summary.assign(env="Walker2d-v5"),
                       summary[summary["variant"] == "sac"].assign(env="HalfCheetah-v5")])
    runs_ = runs_[(runs_["variant"] == "sac") | (runs_["seed"] == 0)]
    expected = pd.concat([completeness.assign(env=e) for e in ("Walker2d-v5",
                                                               "HalfCheetah-v5")])
    per, _, _ = figures.normalised_scores(
        estimates.cell_estimates(runs_), pd.read_csv(REPO / "results" / "random_scores.csv"),
        pd.read_csv(REPO / "paper" / "reported.csv"))
    ground = figures.common_ground(per, ["fmer", "sac"], ["Walker2d-v5", "HalfCheetah-v5"])
    assert ground.to_dict("list") == {"env": ["Walker2d-v5"], "seed": [0]}
    fig = figures.iqm(estimates.cell_estimates(runs_), expected, "smoke",
                      random_scores=pd.read_csv(REPO / "results" / "random_scores.csv"),
                      reported=pd.read_csv(REPO / "paper" / "reported.csv"))
    left = fig.axes[0]
    assert left.get_title().endswith("Walker2d-v5 seed 0")
    assert [t.get_text() for t in left.get_yticklabels()] == ["fmer (n=1 runs)",
                                                              "sac (n=1 runs)"]
    sac = per[(per["variant"] == "sac") & (per["env"] == "Walker2d-v5") & (per["seed"] == 0)]
    iqms = [ln.get_xdata()[0] for ln in left.lines if ln.get_marker() == "D"]
    assert iqms[1] == pytest.approx(sac["score"].iloc[0])
    plt.close("all")


def test_a_figure_says_on_its_face_when_it_has_nothing_to_compare(runs, tmp_path):
    summary, completeness = aggregate(run_dirs(runs), "smoke")
    assert figures.nothing_to_compare(completeness) == ""
    only_fmer = completeness.assign(status=np.where(completeness["variant"] == "fmer",
                                                    "complete", "missing"))
    assert figures.nothing_to_compare(only_fmer).startswith(
        "NOTHING COMPARED: only fmer has complete runs; sac: none")
    none = completeness.assign(status="missing")
    assert figures.nothing_to_compare(none).startswith("NO COMPLETE RUN")
    empty = estimates.cell_estimates(summary.iloc[:0])
    fig = figures.curve(empty, none, "smoke")
    figures.save(fig, none, "smoke", tmp_path / "none")
    image = mpimg.imread(tmp_path / "none.png")
    assert image[..., :3].std() > 0.05  # the banner and the footer, not a blank page


def test_runs_reused_from_another_budget_are_named(runs, tmp_path):
    """A run copied to another grid path (another variant of the grid, the same config) is
    that path's run, and the notes say what it was trained as."""
    grid = copy.deepcopy(CONFIG)
    grid["budgets"]["smoke"]["variants"] = {"fmer-same": {"base": "fmer", "set": {}}}
    root = tmp_path / "results" / "smoke" / MULTIGOAL
    shutil.copytree(runs / MULTIGOAL / "fmer" / "seed0", root / "fmer-same" / "seed0")
    shutil.copytree(runs / MULTIGOAL / "fmer" / "seed1", root / "fmer" / "seed1")
    _, completeness = aggregate([root / "fmer-same" / "seed0", root / "fmer" / "seed1"],
                                "smoke", grid)
    assert completeness["trained_as"].tolist() == ["runs of budget smoke (fmer)", ""]
    assert reused_note(completeness) == (
        "reused: multigoal-2d fmer-same seed 0 are runs of budget smoke (fmer), copied "
        "(same config)")


@pytest.mark.parametrize(("text", "tex"), [
    ("budget `mini`, 95% [−3, 4] × 2", r"budget \texttt{mini}, 95\% [$-$3, 4] $\times$ 2"),
    ("α ≥ 0.05 & τ_min ~ $1 #2 {x}", r"$\alpha$ $\geq$ 0.05 \& $\tau$\_min "
                                       r"\textasciitilde{} \$1 \#2 \{x\}"),
    ("**supports** *cannot tell* a\\b^2", r"\textbf{supports} \emph{cannot tell} "
                                          r"a\textbackslash{}b\textasciicircum{}2"),
    ("`fmer_n8` – Ωé", r"\texttt{fmer\_n8} -- [U+03A9]e"),
])
def test_latex_escapes_what_latex_reserves_and_spells_unicode_in_ascii(text, tex):
    assert tables.tex_escape(text) == tex


def test_results_tex_is_ascii_with_no_raw_markdown(runs, tmp_path):
    summary, completeness = aggregate(run_dirs(runs), "smoke")
    _, tex = tables.write(estimates.cell_estimates(summary), completeness,
                          pd.read_csv(REPO / "paper" / "reported.csv"), "smoke",
                          tmp_path / "results")
    text = tex.read_text()
    assert text.isascii() and "`" not in text.replace("``", "")
    assert "Verdicts, one per paper claim" in text
    for line in text.splitlines():  # every row of a table has its columns
        if line.endswith(r"\\"):
            assert line.count(" & ") in (3, 4)
