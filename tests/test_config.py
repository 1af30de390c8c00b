"""The typed config: YAML/override parsing, variants, and errors that name the key."""

import subprocess
import sys

import pytest
from conftest import REPO, another_value

from fmer.config import (
    ACTIVATIONS,
    ALGOS,
    RECONSTRUCTED,
    VARIANTS,
    Config,
    ConfigError,
    config_from_dict,
    diff,
    make_config,
    parse_overrides,
    result_diff,
    unread_keys,
)
from fmer.nets import ACTIVATION_MODULES, mlp
from fmer.rerun import compare_logs
from fmer.train import train
from fmer.velocity import ACTIVATION_FUNCTIONS, VelocityField


def test_defaults_follow_the_spec():
    cfg = make_config(env="Pendulum-v1", algo="fmer")
    assert cfg.actor.flow_steps == 10
    assert cfg.actor.candidates == 16
    assert cfg.actor.weighting == "softmax"
    assert cfg.temperature.ess_target == 0.5
    assert cfg.entropy.tanh_correction and cfg.temperature.ess_tuning


def test_every_reconstructed_key_exists():
    flat = Config().flat()
    assert [k for k in RECONSTRUCTED if k not in flat] == []


@pytest.mark.parametrize("variant", [v for v, (algo, _) in VARIANTS.items() if v != algo])
def test_each_ablation_differs_from_its_algorithm_in_every_key_it_names_and_no_other(variant):
    # an ablation whose setting equals its algorithm's default would silently rerun it
    algo, changes = VARIANTS[variant]
    assert diff(make_config("Pendulum-v1", variant), make_config("Pendulum-v1", algo)) == sorted(
        changes)


def test_variant_overrides_compose_with_set():
    cfg = make_config(env="Pendulum-v1", algo="fmer-no-tanh-no-ess",
                      overrides={"temperature.fixed": 0.3})
    assert not cfg.entropy.tanh_correction
    assert not cfg.temperature.ess_tuning
    assert cfg.temperature.fixed == 0.3
    # --set wins over the variant's own setting
    cfg = make_config(env="Pendulum-v1", algo="fmer-no-ess",
                      overrides={"temperature.ess_tuning": True})
    assert cfg.temperature.ess_tuning


def test_overrides_parse_yaml_scalars():
    assert parse_overrides(["a.b=1e-3", "c=true", "d=[64, 64]", "e=null"]) == {
        "a.b": 1e-3, "c": True, "d": [64, 64], "e": None}
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["nonsense"])


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"train.no_such_key": 1}, "train.no_such_key"),
        ({"nosection.x": 1}, "nosection"),
        ({"train.total_steps": "many"}, "train.total_steps"),
        ({"entropy.tanh_correction": 1}, "entropy.tanh_correction"),
        ({"train.total_steps": -5}, "train.total_steps"),
        ({"temperature.ess_target": 1.5}, "temperature.ess_target"),
        ({"temperature.ess_target": 0.0}, "temperature.ess_target"),
        ({"actor.candidates": 0}, "actor.candidates"),
        ({"actor.weighting": "best"}, "actor.weighting"),
        ({"entropy.divergence": "magic"}, "entropy.divergence"),
        ({"alpha.fixed": -1.0}, "alpha.fixed"),
        ({"entropy.logdet": "exact", "entropy.divergence": "hutchinson"}, "entropy.logdet"),
    ],
)
def test_bad_values_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        make_config(env="Pendulum-v1", algo="fmer", overrides=overrides)


def test_the_names_a_config_admits_are_the_names_the_networks_implement():
    """The config owns the string keys' choices (so that checking one needs no torch); the
    modules that implement them dispatch on those names: neither side may lose one."""
    assert set(ACTIVATION_FUNCTIONS) == set(ACTIVATION_MODULES) == set(ACTIVATIONS)
    for name in ACTIVATIONS:
        for key in ("actor.activation", "qvpo.activation"):
            make_config(env="Pendulum-v1", algo="fmer", overrides={key: name})
        VelocityField(3, 1, [8], activation=name)
        mlp(3, [8], 1, activation=name)


def test_checking_every_budget_imports_no_torch():
    """Every Snakemake start, `fmer plan` and `fmer status` check a budget's configs: ~3.5 s
    of CPU each if that imported torch."""
    code = ("import sys; from fmer import budgets; from fmer.config import load_yaml; "
            "config = load_yaml(sys.argv[1]); "
            "[budgets.check(config, name) for name in config['budgets']]; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3])")
    proc = subprocess.run([sys.executable, "-c", code, str(REPO / "config" / "config.yaml")],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout


def test_unknown_env_and_algo_are_named():
    with pytest.raises(ConfigError, match="NoSuchEnv-v0"):
        make_config(env="NoSuchEnv-v0", algo="sac")
    with pytest.raises(ConfigError, match="fmer-magic"):
        make_config(env="Pendulum-v1", algo="fmer-magic")


def test_round_trip_and_diff():
    cfg = make_config(env="Pendulum-v1", algo="fmer", seed=3)
    assert config_from_dict(cfg.to_dict()) == cfg
    other = make_config(env="Pendulum-v1", algo="fmer-no-ess", seed=4)
    assert diff(cfg, other) == ["seed", "temperature.ess_tuning"]


def test_algorithm_defaults_yield_to_the_budget_and_set():
    assert make_config(env="Pendulum-v1", algo="sac").alpha.initial == 1.0
    assert make_config(env="Pendulum-v1", algo="fmer-no-ess").alpha.initial == 0.05
    base = {"alpha": {"initial": 0.3}}
    assert make_config(env="Pendulum-v1", algo="fmer", base=base).alpha.initial == 0.3
    cfg = make_config(env="Pendulum-v1", algo="fmer", overrides={"alpha.initial": 0.2})
    assert cfg.alpha.initial == 0.2


@pytest.mark.parametrize("algo", ALGOS)
def test_an_algorithm_never_reads_the_keys_it_is_said_not_to(tmp_path, algo):
    # unread_keys(algo) lets a run stay its budget's run when another algorithm's defaults
    # change (fmer status's "stale" check): so every one of them, changed, must leave the logs
    # as they were, as must the keys of what a run writes besides its logs (checkpoints).
    schedule = {"train.total_steps": 300, "train.learning_starts": 200, "train.eval_every": 150,
                "train.eval_episodes": 1, "train.log_every": 50, "train.batch_size": 32,
                "train.checkpoint_every": 100, "actor.hidden": [32, 32],
                "critic.hidden": [32, 32], "actor.candidates": 4, "actor.candidate_states": 8,
                "actor.entropy_batch": 8, "qvpo.train_samples": 8, "qvpo.diffusion_steps": 5}
    base = make_config("Pendulum-v1", algo, 0, overrides=schedule)
    flat = base.flat()
    changed = {k: another_value(flat[k]) for k in unread_keys(algo)}
    # one key each that another algorithm reads: the set is not empty by accident
    assert {"sac": "entropy.tanh_correction", "fmer": "qvpo.train_samples",
            "qvpo": "temperature.ess_tuning"}[algo] in changed
    changed |= {"train.checkpoint_every": 50, "train.keep_checkpoint": True}
    other = make_config("Pendulum-v1", algo, 0, overrides=schedule | changed)
    assert result_diff(base, other) == []
    read = {"sac": "actor.lr", "fmer": "actor.candidates", "qvpo": "qvpo.train_samples"}[algo]
    assert result_diff(base, make_config("Pendulum-v1", algo, 0, overrides=schedule | {
        read: another_value(flat[read])})) == [read]
    train(base, tmp_path / "base")
    train(other, tmp_path / "other")
    assert compare_logs(tmp_path / "base", tmp_path / "other") is None
