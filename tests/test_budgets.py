"""The budgets of the workflow config: a run trained by hand with ``fmer train --budget`` gets
exactly the config the workflow gives it."""

import pytest

from fmer import budgets
from fmer.cli import build_parser
from fmer.cli.train import resolve
from fmer.config import ConfigError
from fmer.envs import BENCHMARKS, MUJOCO_BENCHMARKS

CONFIG = budgets.load(budgets.DEFAULT_FILE)  # the tests run from the repository's root


def _hand(*args: str):
    return resolve(build_parser().parse_args(["train", *args, "--out", "unused"]))


@pytest.mark.parametrize("budget", list(CONFIG["budgets"]))
def test_fmer_train_by_hand_resolves_every_run_as_the_workflow_does(budget):
    for run in budgets.runs(CONFIG, budget):
        hand = _hand("--budget", budget, "--env", run.env, "--algo", run.variant,
                     "--seed", str(run.seed))
        assert hand == run.config(), run.path


def test_the_budget_applies_its_set_overrides_and_own_variants_under_set():
    mini = _hand("--budget", "mini", "--env", "HalfCheetah-v5", "--algo", "fmer-no-ess",
                 "--seed", "1")
    assert mini.train.total_steps == 20000 and mini.temperature.fixed == 0.2
    assert not mini.temperature.ess_tuning
    smoke = _hand("--budget", "smoke", "--env", "Pendulum-v1", "--algo", "sac", "--seed", "0",
                  "--set", "critic.hidden=[8]")
    assert smoke.actor.hidden == [32, 32] and smoke.critic.hidden == [8]  # --set wins
    own = _hand("--budget", "defaults", "--env", "Hopper-v5", "--algo", "fmer-n8-s64-e64",
                "--seed", "0")
    assert (own.algo, own.actor.candidates, own.actor.entropy_batch) == ("fmer", 8, 64)
    with pytest.raises(ConfigError, match="fmer-n8-s64-e64"):  # another budget's variant
        _hand("--budget", "mini", "--env", "Hopper-v5", "--algo", "fmer-n8-s64-e64",
              "--seed", "0")
    with pytest.raises(ConfigError, match="no budgets file"):
        _hand("--budget", "mini", "--budgets", "nowhere.yaml", "--env", "Hopper-v5",
              "--algo", "fmer", "--seed", "0")


def test_groups_name_the_packages_benchmarks():
    assert budgets.benchmarks({"benchmarks": "all"}) == BENCHMARKS
    assert budgets.benchmarks({"benchmarks": "mujoco"}) == MUJOCO_BENCHMARKS
    bad = {"budgets": {"b": {**CONFIG["budgets"]["smoke"],
                             "grid": [{"benchmarks": "atari", "variants": ["sac"]}]}}}
    with pytest.raises(ConfigError, match="atari"):
        budgets.check(bad, "b")


def test_blocks_of_a_named_target_are_not_the_grids():
    # mini's QVPO runs belong to `snakemake qvpo`, not to the grid `all` trains; paper's are
    # in its grid, on MuJoCo and FrankaKitchen
    mini_grid = budgets.runs(CONFIG, "mini")
    qvpo = budgets.target_runs(CONFIG, "mini", "qvpo")
    assert not budgets.select(mini_grid, variants=["qvpo"])
    assert {r.env for r in qvpo} == {"Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "kitchen-1"}
    assert {r.variant for r in qvpo} == {"qvpo"} and len(qvpo) == 4 * 3
    assert qvpo[0].config().train.total_steps == 20000  # the budget's schedule
    paper = budgets.select(budgets.runs(CONFIG, "paper"), variants=["qvpo"])
    assert {r.env for r in paper} == set(BENCHMARKS) - {"multigoal-2d"}
    assert budgets.target_runs(CONFIG, "paper", "qvpo") == []
    # a block's run that the grid also has is the grid's
    both = {**CONFIG["budgets"]["smoke"],
            "grid": [*CONFIG["budgets"]["smoke"]["grid"],
                     {"benchmarks": ["Hopper-v5"], "variants": ["sac", "qvpo"], "target": "qvpo"}]}
    config = {"budgets": {"b": both}}
    assert [(r.env, r.variant) for r in budgets.target_runs(config, "b", "qvpo")] == [
        ("Hopper-v5", "qvpo")]
    bad = {"budgets": {"b": {**both, "grid": [{**both["grid"][-1], "target": "nosuch"}]}}}
    with pytest.raises(ConfigError, match="nosuch"):
        budgets.check(bad, "b")


def test_wall_time_of_a_plan_spreads_runs_longest_first_over_the_cores():
    from fmer.analysis import cost

    runs = budgets.runs(CONFIG, "mini")
    seconds = sorted((cost.core_seconds(r) for r in runs), reverse=True)
    assert cost.wall_seconds(runs, 1) == pytest.approx(sum(seconds))
    assert cost.wall_seconds(runs, len(runs)) == pytest.approx(seconds[0])
    assert cost.wall_seconds(runs[:1], 8) == pytest.approx(cost.core_seconds(runs[0]))
    # never under the work per core nor the longest run; no worse than any list schedule
    assert max(sum(seconds) / 8, seconds[0]) <= cost.wall_seconds(runs, 8)
    assert cost.wall_seconds(runs, 8) <= sum(seconds) / 8 + 7 / 8 * seconds[0]
    assert cost.wall_seconds([], 8) == 0
    line = cost.plan_line(runs, 8, "--cores 8")
    assert line.startswith(f"Plan: {len(runs)} runs to train, est. ")
    assert f"{sum(seconds) / 3600:,.1f} core-hours" in line
    assert f"{cost.wall_seconds(runs, 8) / 3600:,.1f} h at --cores 8" in line
    assert cost.plan_line([], 8, "--cores 8") == "Plan: no run to train."
