"""The saved policy (fmer.policy) and ``fmer eval``: Stable-Baselines3's save/load test (a
loaded policy acts as the trained one did), integrity, and the errors a user meets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_fmer

import fmer
from fmer.analysis.stats import t_interval, wilson_interval
from fmer.policy import PolicyError, evaluate_policy
from fmer.runlog import POLICY_FILE, read_meta, verify_run

EVAL_MEASURES = ("episodes", "return_mean", "return_std", "return_min", "return_max",
                 "tasks_completed_mean", "success_rate")


# QVPO with fewer samples and denoising steps than its authors': the same code paths
CHEAP = {"qvpo": ["--set", "qvpo.train_samples=8", "--set", "qvpo.diffusion_steps=5",
                  "--set", "qvpo.eval_samples=8"]}


@pytest.fixture(scope="module", params=[("Hopper-v5", "fmer"), ("multigoal-2d", "fmer"),
                                        ("kitchen-1", "sac"), ("Hopper-v5", "qvpo")])
def other_run(request, tmp_path_factory) -> Path:
    env, algo = request.param
    out = tmp_path_factory.mktemp("policy") / f"{env}-{algo}"
    proc = run_fmer("train", "--env", env, "--algo", algo, "--seed", "1", "--budget", "smoke",
                    "--out", out, *CHEAP.get(algo, []), timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


def _reproduces_last_evaluation(run: Path) -> None:
    _, episodes = evaluate_policy(run)
    last = pd.read_csv(run / "eval.csv").iloc[-1]
    from fmer.evaluation import eval_row

    row = eval_row(episodes)
    for column in EVAL_MEASURES:
        expected = last[column]
        if pd.isna(expected):
            assert row[column] is None, column
        else:
            assert row[column] == expected, (column, row[column], expected)  # exactly


def test_a_loaded_policy_reproduces_the_last_evaluation_of_a_sac_run(smoke_run):
    _reproduces_last_evaluation(smoke_run)


def test_a_loaded_policy_reproduces_the_last_evaluation(other_run):
    _reproduces_last_evaluation(other_run)


def test_the_policy_is_small_covered_by_meta_and_loads_without_pickled_code(other_run):
    path = other_run / POLICY_FILE
    assert path.stat().st_size < 1_000_000
    meta = read_meta(other_run / "meta.json")
    assert set(meta["sha256"]) == {"eval.csv", "train.csv", POLICY_FILE}
    state = torch.load(path, weights_only=True)  # the restricted unpickler accepts it
    assert state["algo"] == meta["algo"] and state["config"] == meta["config"]
    assert not (other_run / "checkpoint").exists()  # the policy is not a kept checkpoint


def test_act_takes_one_observation_or_a_batch(smoke_run):
    policy = fmer.load_policy(smoke_run)
    obs = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, -0.5], [-1.0, 0.0, 2.0]], np.float32)
    batch = policy.act(obs)
    assert batch.shape == (3, 1) and batch.dtype == np.float32
    assert np.all(np.abs(batch) <= 2.0)  # Pendulum's torque box
    single = np.stack([policy.act(o) for o in obs])
    assert single.shape == (3, 1)
    np.testing.assert_allclose(batch, single, atol=1e-6)
    torch.manual_seed(0)
    a = policy.act(obs, deterministic=False)
    torch.manual_seed(0)
    np.testing.assert_array_equal(a, policy.act(obs, deterministic=False))
    assert not np.array_equal(a, batch)
    with pytest.raises(ValueError, match=r"obs must be \(3,\)"):
        policy.act(np.zeros(4, np.float32))


def test_a_tampered_policy_fails_verification(smoke_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    assert verify_run(run) == []
    state = torch.load(run / POLICY_FILE, weights_only=True)
    name = next(iter(state["weights"]))
    state["weights"][name] = state["weights"][name] + 1e-3
    torch.save(state, run / POLICY_FILE)
    assert any("policy.pt: sha256 differs" in p for p in verify_run(run))
    (run / POLICY_FILE).unlink()
    assert any("policy.pt: missing" in p for p in verify_run(run))


def test_a_run_without_a_policy_is_named_with_the_way_to_get_one(smoke_run, tmp_path):
    run = tmp_path / "old"
    shutil.copytree(smoke_run, run)
    (run / POLICY_FILE).unlink()
    meta = read_meta(run / "meta.json")
    del meta["sha256"][POLICY_FILE]  # a run completed before policies were saved
    (run / "meta.json").write_text(json.dumps(meta))
    assert verify_run(run) == []
    with pytest.raises(PolicyError, match="no policy saved.*train it again"):
        fmer.load_policy(run)
    proc = run_fmer("eval", run)
    assert proc.returncode == 2 and "no policy saved" in proc.stderr and str(run) in proc.stderr
    proc = run_fmer("eval", tmp_path / "nowhere")
    assert proc.returncode == 2 and "nowhere" in proc.stderr


def test_a_policy_this_version_cannot_rebuild_names_the_key(smoke_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    state = torch.load(run / POLICY_FILE, weights_only=True)
    state["config"]["actor"]["width_multiplier"] = 2
    torch.save(state, run / POLICY_FILE)
    with pytest.raises(PolicyError, match="width_multiplier"):
        fmer.load_policy(run)


def test_fmer_eval_prints_an_interval_and_writes_only_where_told(smoke_run, tmp_path):
    before = sorted(p.name for p in smoke_run.iterdir())
    proc = run_fmer("eval", smoke_run, "--episodes", "4", "--out", tmp_path / "ep.csv")
    assert proc.returncode == 0, proc.stderr
    assert "95% t-interval" in proc.stdout and "n = 4" in proc.stdout
    episodes = pd.read_csv(tmp_path / "ep.csv")
    assert len(episodes) == 4
    mean, low, high = t_interval(episodes["return"])
    assert f"return {mean:.2f}" in proc.stdout and f"[{low:.2f}, {high:.2f}]" in proc.stdout
    assert sorted(p.name for p in smoke_run.iterdir()) == before
    # the first episodes are the run's own last evaluation's
    last = pd.read_csv(smoke_run / "eval.csv").iloc[-1]
    first = episodes["return"].iloc[: int(last["episodes"])]
    assert first.mean() == pytest.approx(last["return_mean"], rel=1e-12)


def test_t_interval_matches_scipy():
    from scipy import stats

    x = np.array([3.0, -1.0, 4.5, 2.2, 0.7])
    mean, low, high = t_interval(x)
    oracle = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert mean == pytest.approx(x.mean())
    assert (low, high) == pytest.approx(oracle)
    assert np.isnan(t_interval([1.0])[1])


def test_wilson_interval_matches_hand_computed_values():
    # z = 1.959964: 0 of 10 -> [0, z²/(n + z²)]; 5 of 10 -> 0.5 ± z √(0.025 + z²/400) / (1 + z²/10)
    z2 = 1.959964 ** 2
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.0, z2 / (10 + z2)), abs=1e-6)
    half = 1.959964 * np.sqrt(0.025 + z2 / 400) / (1 + z2 / 10)
    assert wilson_interval(5, 10) == pytest.approx((0.5, 0.5 - half, 0.5 + half), abs=1e-6)
