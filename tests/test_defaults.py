"""The defaults study: its rule (by hand), the page, the CSV and the figure, from frames built
here and from real tiny runs; the workflow target is checked in test_workflow.py."""

from __future__ import annotations

import hashlib
import json
import shutil

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from fmer import budgets
from fmer.analysis import coverage, defaults, estimates
from fmer.analysis.aggregate import aggregate
from fmer.benchlog import CSV_COLUMNS as BENCH_COLUMNS
from fmer.cli import main as cli_main
from fmer.config import make_config
from fmer.train import train

REF, CHEAP, CHEAPER = "fmer-n16-sall-eall", "fmer-n8-s64-e64", "fmer-n8-s64-e64-k2"
SETTINGS = (REF, CHEAP, CHEAPER)
H, C = defaults.TASKS
# sha256 of paper/defaults.md's first 24 lines as committed in dfe3313, before any study run
RULE_SHA256 = "1ebb49c28a6d9cd25b1587a37a8a28acd21ad2dd6f24ff630cebc071950a291f"


def runs_frame(finals: dict, status: dict | None = None) -> pd.DataFrame:
    """{(setting, task): [final per seed]} -> the rule's input; ``status`` overrides some."""
    rows = [{"variant": s, "env": t, "seed": seed, "status": "complete", "final": v}
            for (s, t), values in finals.items() for seed, v in enumerate(values)]
    for row in rows:
        row["status"] = (status or {}).get((row["variant"], row["env"], row["seed"]), "complete")
    return pd.DataFrame(rows)


# Hand-computed: a percentile-bootstrap mean of 3 values resamples all three as the lowest with
# probability 1/27 = 3.7% > 2.5%, so the interval's lower end is the lowest seed's return.
FINALS = {(REF, H): [100, 110, 120], (REF, C): [1000, 1200, 1400],      # bounds 100, 1000
          (CHEAP, H): [95, 105, 110], (CHEAP, C): [900, 1100, 1150],  # 103.3, 1050: pass
          (CHEAPER, H): [50, 60, 70], (CHEAPER, C): [1500, 1500, 1500]}  # 60 < 100: fail
COST = {REF: 170.0, CHEAP: 60.0, CHEAPER: 35.0}


def test_rule_text_is_the_one_committed_before_any_result():
    # the one change to its text since: the config file's path, moved to the repository's root
    # (config/config.yaml, Snakemake's layout); the rule's words are as committed
    committed = defaults.RULE.replace("(`config/config.yaml`)", "(`workflow/config/config.yaml`)")
    assert hashlib.sha256(committed.encode()).hexdigest() == RULE_SHA256
    assert "(10,000 resamples)" in defaults.RULE and "20,000" in defaults.RULE
    spec = budgets.budget_config(budgets.load(REPO / budgets.DEFAULT_FILE), "defaults")
    assert spec["train"]["total_steps"] == defaults.FINAL_STEP
    assert spec["seeds"] == list(defaults.SEEDS)
    assert spec["grid"][0]["benchmarks"] == list(defaults.TASKS)
    assert spec["grid"][0]["variants"][0] == defaults.REFERENCE == REF


def test_rule_by_hand():
    d = defaults.apply_rule(runs_frame(FINALS), COST, SETTINGS)
    assert d.complete and d.missing == []
    assert d.bounds == {H: pytest.approx(100.0), C: pytest.approx(1000.0)}
    assert d.means[(CHEAP, H)] == pytest.approx(310 / 3)
    assert d.verdicts == {CHEAP: True, CHEAPER: False}
    assert d.choice == CHEAP
    # the cheapest of the passing settings
    better = FINALS | {(CHEAPER, H): [100, 100, 101]}
    assert defaults.apply_rule(runs_frame(better), COST, SETTINGS).choice == CHEAPER
    # a failed run fails its setting, whatever its mean: no setting passes, the defaults stay
    failed = defaults.apply_rule(runs_frame(FINALS, {(CHEAP, C, 2): "failed"}), COST, SETTINGS)
    assert failed.verdicts == {CHEAP: False, CHEAPER: False}
    assert failed.choice == REF and "defaults stay" in failed.why
    # passing but not measured by fmer bench: no choice
    assert defaults.apply_rule(runs_frame(FINALS), {REF: 170.0}, SETTINGS).choice is None


def test_incomplete_study_chooses_nothing():
    partial = runs_frame(FINALS, {(CHEAPER, C, 1): "incomplete"})
    partial = partial[~((partial["variant"] == REF) & (partial["seed"] == 2)
                        & (partial["env"] == H))]  # not even started
    d = defaults.apply_rule(partial, COST, SETTINGS)
    assert not d.complete and d.choice is None and d.verdicts == {}
    assert d.missing == [(REF, H, 2), (CHEAPER, C, 1)]


def bench_fixture(costs: dict) -> pd.DataFrame:
    """fmer bench --budget defaults' long format (CSV_COLUMNS, a setting per row)."""
    rows = []
    for setting, ms in costs.items():
        for env, threads, item, value in (("HalfCheetah-v5", 1, "sac_update", 10.0),
                                          ("HalfCheetah-v5", 1, "fmer_update", ms),
                                          ("HalfCheetah-v5", 1, "fmer_entropy", ms / 3),
                                          ("HalfCheetah-v5", 2, "fmer_update", ms / 2),
                                          ("", 1, "matmul", 5.0)):
            rows.append(dict.fromkeys(BENCH_COLUMNS) | {
                "env": env, "threads": threads, "item": item, "ms": value, "reps": 10,
                "clock": "thread_cpu" if threads == 1 else "wall", "setting": setting})
    return pd.DataFrame(rows, columns=BENCH_COLUMNS)


def study_frames(finals: dict, missing=()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An estimates table and completeness as fmer aggregate writes them: evaluations at 10k
    and 20k steps, the final one from ``finals``; ``missing`` runs absent."""
    rows, report = [], []
    for (s, t), values in finals.items():
        for seed, final in enumerate(values):
            gone = (s, t, seed) in missing
            report.append({"env": t, "variant": s, "seed": seed,
                           "path": f"results/defaults/{t}/{s}/seed{seed}",
                           "status": "missing" if gone else "complete",
                           "last_step": np.nan if gone else 20000.0, "detail": ""})
            if gone:
                continue
            for step, ret, wall in ((10000, final / 2, 1200.0), (20000, final, 2400.0 + seed)):
                rows.append({"env": t, "variant": s, "seed": seed, "step": step,
                             "return_mean": ret, "wall_time_s": wall, "tau": 0.2,
                             "ess_frac": 0.5, "entropy": -3.0, "total_steps": 20000})
    return estimates.cell_estimates(pd.DataFrame(rows)), pd.DataFrame(report)


def test_page_csv_and_figure_of_a_complete_study(tmp_path):
    table, completeness = study_frames(FINALS)
    paths = defaults.write(table, completeness, bench_fixture(COST), tmp_path / "paper/d.md",
                           tmp_path / "paper/d.csv", tmp_path / "figures/study")
    text = paths[0].read_text()
    assert text.startswith(defaults.RULE) and text.count(defaults.RULE) == 1
    assert "18 of 18 runs complete" in text and "(10,000 resamples)" in text
    assert "lower end of the 95% percentile-bootstrap interval (10,000 resamples): **100.0**" \
        in text and "**1000.0**" in text
    assert f"`{CHEAP}`: {H} 103.3 ≥ 100.0; {C} 1050.0 ≥ 1000.0; failed runs: none: **pass**" \
        in text
    assert f"`{CHEAPER}`: {H} 60.0 < 100.0" in text and "**fail**" in text
    assert f"**Chosen: `{CHEAP}`**" in text and "../figures/study.png" in text
    tidy = pd.read_csv(paths[1])
    assert tuple(tidy.columns) == defaults.CSV_COLUMNS and len(tidy) == 6
    row = tidy.set_index(["setting", "task"]).loc[(CHEAP, C)]
    assert row["n"] == 3 and row["final_mean"] == pytest.approx(1050.0)
    # the estimates table's t-interval, and the page says what it is and covers
    (cell,) = estimates.select(table, "final_return", C, CHEAP).itertuples()
    assert (row["final_low"], row["final_high"]) == pytest.approx((cell.low, cell.high))
    assert row["max_mean"] == pytest.approx(1050.0) and cell.low < 900 < 1150 < cell.high
    assert "final return, mean [95% t-interval]" in text and coverage.label(3) in text
    # the rule's bound named as what it is: with 3 seeds, the lowest seed
    assert "**100.0** = the lowest seed's return" in text and "about 75%, not 95%" in text
    assert row["reference_lower_bound"] == pytest.approx(1000.0) and row["verdict"] == "pass"
    assert row["fmer_update_ms"] == 60.0 and row["fmer_sac_update_ratio"] == pytest.approx(6.0)
    assert row["run_minutes_mean"] == pytest.approx(2401 / 60)
    assert set(tidy["verdict"]) == {"reference", "pass", "fail"}
    image = mpimg.imread(paths[2])
    assert image.shape[0] > 1000 and image[..., :3].std() > 0.05
    assert paths[3].read_bytes().startswith(b"%PDF")


def test_page_of_an_incomplete_study_names_the_missing_runs_and_chooses_nothing(tmp_path):
    table, completeness = study_frames(FINALS, missing={(CHEAPER, H, 0), (CHEAPER, H, 1),
                                                          (CHEAPER, H, 2), (CHEAP, C, 1),
                                                          (CHEAP, C, 2)})
    paths = defaults.write(table, completeness, None, tmp_path / "d.md", tmp_path / "d.csv",
                           tmp_path / "study")
    text = paths[0].read_text()
    assert text.startswith(defaults.RULE)
    assert "**The study is incomplete: no setting is chosen.**" in text
    assert f"- {H} `{CHEAPER}` seed 1: missing" in text
    assert "Chosen" not in text and "**pass**" not in text and "Update cost: not measured" in text
    tidy = pd.read_csv(paths[1])
    assert tidy["verdict"].fillna("").isin(["reference", ""]).all()
    assert tidy.set_index(["setting", "task"]).loc[(CHEAPER, H), "n"] == 0
    # one seed: its mean, never a zero-width interval
    (row,) = [line for line in text.splitlines() if line.startswith(f"| `{CHEAP}` | {C} |")]
    assert row.count("(one seed: no interval)") == 2 and "[" not in row


# --- real tiny runs ------------------------------------------------------------------------
TINY = {"actor.hidden": [16, 16], "critic.hidden": [16, 16], "train.total_steps": 200,
        "train.learning_starts": 100, "train.eval_every": 100, "train.eval_episodes": 1,
        "train.log_every": 50, "train.batch_size": 32, "train.checkpoint_every": 100}


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    """Pendulum-v1, the reference and one cheaper setting, seed 0: real logs, in process."""
    root = tmp_path_factory.mktemp("defaults") / "results" / "defaults" / "Pendulum-v1"
    knobs = {REF: {"actor.candidates": 16}, CHEAP: {"actor.candidates": 8,
                                                    "actor.candidate_states": 16,
                                                    "actor.entropy_batch": 16}}
    for setting, set_ in knobs.items():
        cfg = make_config("Pendulum-v1", "fmer", 0, overrides=TINY | set_)
        train(cfg, root / setting / "seed0", variant=setting, budget="defaults")
    return root


def test_study_from_real_runs_through_the_cli(real_runs, tmp_path):
    dirs = [real_runs / s / "seed0" for s in (REF, CHEAP)]
    # a run interrupted by a signal resumes: it is not failed, and the study is incomplete
    stopped = real_runs / CHEAPER / "seed0" / ".train"
    shutil.copytree(dirs[1], stopped)
    meta = json.loads((stopped / "meta.json").read_text())
    meta.update(variant=CHEAPER, status="failed", interrupted=True,
                error="interrupted by SIGTERM at step 150")
    (stopped / "meta.json").write_text(json.dumps(meta))
    summary, completeness = aggregate([*dirs, stopped.parent], "defaults")
    estimates.write(estimates.cell_estimates(summary), tmp_path / "estimates.csv")
    assert completeness["status"].tolist() == ["complete", "complete", "incomplete"]
    summary.to_csv(tmp_path / "summary.csv", index=False)
    bench_fixture({REF: 50.0, CHEAP: 20.0}).to_csv(tmp_path / "cost.csv", index=False)

    def study(completeness):
        completeness.to_csv(tmp_path / "completeness.csv", index=False)
        return defaults.write(estimates.read([tmp_path / "estimates.csv"]),
                              pd.read_csv(tmp_path / "completeness.csv"),
                              pd.read_csv(tmp_path / "cost.csv"), tmp_path / "d.md",
                              tmp_path / "d.csv", tmp_path / "study", tasks=("Pendulum-v1",),
                              seeds=(0,), final_step=200)

    assert "no setting is chosen" in study(completeness)[0].read_text()
    done = completeness[completeness["status"] == "complete"]
    assert cli_main(["defaults-study", "--estimates", str(tmp_path / "estimates.csv"),
                     "--completeness", str(tmp_path / "completeness.csv"), "--update-cost",
                     str(tmp_path / "cost.csv"), "--page", str(tmp_path / "cli.md"), "--csv",
                     str(tmp_path / "cli.csv"), "--figure", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli.md").read_text().startswith(defaults.RULE)

    page = study(done)[0].read_text()  # without the third setting: complete, n = 1
    evals = {s: pd.read_csv(real_runs / s / "seed0" / "eval.csv") for s in (REF, CHEAP)}
    final = {s: e["return_mean"].iloc[-1] for s, e in evals.items()}
    tidy = pd.read_csv(tmp_path / "d.csv").set_index("setting")
    for s in (REF, CHEAP):
        assert tidy.loc[s, "final_mean"] == pytest.approx(final[s])
        assert tidy.loc[s, "max_mean"] == pytest.approx(evals[s]["return_mean"].max())
        assert tidy.loc[s, "run_minutes_mean"] == pytest.approx(
            evals[s]["wall_time_s"].iloc[-1] / 60)
    passes = final[CHEAP] >= final[REF]  # n = 1: the bound is the reference's one return
    assert tidy.loc[CHEAP, "verdict"] == ("pass" if passes else "fail")
    assert (f"**Chosen: `{CHEAP}`**" if passes else f"**No change: `{REF}` stays**") in page
