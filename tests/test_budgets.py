"""The budgets of the workflow config: a run trained by hand with ``fmer train --budget`` gets
exactly the config the workflow gives it."""

import pytest

from fmer import budgets
from fmer.cli import build_parser
from fmer.config import ConfigError
from fmer.envs import BENCHMARKS, MUJOCO_BENCHMARKS
from fmer.train import resolve

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
