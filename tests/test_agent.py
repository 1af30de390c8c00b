"""FMER agent: the CFM step moves mass, the entropy term raises entropy, FMER learns Pendulum,
every named variant trains and logs finite values."""

import csv
import io
import math

import numpy as np
import pytest
import torch
from conftest import learn_pendulum

from fmer import flow
from fmer.agent import FMER, cfm_loss
from fmer.buffer import Batch
from fmer.config import VARIANTS, make_config
from fmer.execution import bf16_matrix_units
from fmer.nets import ActionBox
from fmer.train import train
from fmer.velocity import VelocityField
from fmer.weights import candidate_weights

SMALL = {"actor.hidden": [64, 64], "critic.hidden": [64, 64]}


def _agent(overrides=None, obs_dim=3, act_dim=1):
    cfg = make_config("Pendulum-v1", "fmer", 0, overrides={**SMALL, **(overrides or {})})
    return FMER(obs_dim, ActionBox(-2 * np.ones(act_dim), 2 * np.ones(act_dim)), cfg, "cpu")


def _batch(obs_dim, act_dim, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(n, obs_dim, generator=g), torch.rand(n, act_dim, generator=g) * 2 - 1,
                 torch.randn(n, generator=g), torch.randn(n, obs_dim, generator=g),
                 torch.zeros(n))


def _entropy(agent, s, n=4000):
    """Monte-Carlo entropy of π(·|s) in the cube, exact divergence (the test's oracle)."""
    with torch.no_grad():
        _, logp, _ = flow.log_prob(agent.velocity, s.expand(n, -1), torch.randn(n, agent.act_dim),
                                   agent.steps, divergence="exact")
    return -logp.mean().item()


def test_cfm_loss_checks_shapes():
    v = VelocityField(1, 1, [8, 8])
    with pytest.raises(ValueError, match="u"):
        cfm_loss(v, torch.zeros(4, 1), torch.zeros(4, 3), torch.ones(4, 3))


def test_cfm_with_all_weight_on_the_best_candidate_moves_samples_toward_it():
    # 1-D toy: one constant state, Q prefers u* = 1.5; top1 puts all weight on the candidate
    # closest to it, so each CFM step should pull the policy's mass toward u*.
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    v = VelocityField(1, 1, [64, 64])
    opt = torch.optim.Adam(v.parameters(), lr=3e-3)
    s, target = torch.zeros(64, 1), 1.5

    def distance():
        with torch.no_grad():
            u = flow.euler_sample(v, torch.zeros(2000, 1), torch.randn(2000, 1, generator=g), 10)
        return (u - target).abs().mean().item()

    before = distance()
    for _ in range(150):
        with torch.no_grad():
            u = flow.euler_sample(v, s.repeat_interleave(8, 0), torch.randn(64 * 8, 1), 10)
        u = u.view(64, 8, 1)
        w = candidate_weights(-(u[..., 0] - target) ** 2, 1.0, "top1")
        loss = cfm_loss(v, s, u, w, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = distance()
    assert before > 1.0
    assert after < 0.3 * before, (before, after)


def _narrow(agent, center=0.3, spread=0.05, steps=60):
    """Fit the policy to a narrow bump by CFM toward fixed latents: a low-entropy start."""
    opt = torch.optim.Adam(agent.velocity.parameters(), lr=3e-3)
    s = torch.randn(64, 3)
    for _ in range(steps):
        u = center + spread * torch.randn(64, 8, 1)
        loss = cfm_loss(agent.velocity, s, u, torch.full((64, 8), 1 / 8))
        opt.zero_grad()
        loss.backward()
        opt.step()


def _flat_critic_updates(alpha, n_updates=30):
    torch.manual_seed(0)
    agent = _agent({"alpha.fixed": alpha, "actor.candidates": 8})
    _narrow(agent)
    # a constant critic: the candidates' weights are uniform, only the entropy term can steer
    agent.critic.min_q = lambda obs, act, target=False: torch.zeros(act.shape[:-1])
    batch = _batch(3, 1)
    s = batch.obs[:1]
    before = _entropy(agent, s)
    metrics = [agent.update(batch) for _ in range(n_updates)]
    return before, _entropy(agent, s), metrics


def test_entropy_term_raises_entropy_when_q_is_flat():
    before, after, metrics = _flat_critic_updates(alpha=1.0)
    _, control, _ = _flat_critic_updates(alpha=0.0)
    print(before, after, control)
    assert after > before + 0.1, (before, after)
    assert after > control + 0.1, (after, control)
    # uniform weights: every candidate counts, whatever τ
    assert metrics[-1]["ess_frac"] == pytest.approx(1.0)


def test_update_reports_every_metric_finite_and_consistent():
    torch.manual_seed(0)
    agent = _agent()
    m = agent.update(_batch(3, 1))
    assert list(m) == list(FMER.metric_names)
    m = {k: float(v) for k, v in m.items()}
    assert all(np.isfinite(v) for v in m.values()), m
    # the tanh term Σ log(1 − tanh²u) is ≤ 0, so correcting lowers the entropy
    assert m["entropy_corrected"] < m["entropy_latent"]
    assert 0 < m["ess_frac"] <= 1 and 0 <= m["saturation"] <= 1
    # the same networks and samples without the correction (the entropy sample is drawn
    # before the actor step): the entropy this agent tunes α on is the one the other reports
    # as latent, and both report the same pair
    torch.manual_seed(0)
    no_tanh = {k: float(v) for k, v in
               _agent({"entropy.tanh_correction": False}).update(_batch(3, 1)).items()}
    assert no_tanh["entropy"] == pytest.approx(m["entropy_latent"], rel=1e-12)
    assert m["entropy"] == pytest.approx(no_tanh["entropy_corrected"], rel=1e-12)


def test_act_is_in_the_cube_and_deterministic_at_eval():
    agent = _agent(obs_dim=3, act_dim=2)
    obs = np.zeros(3, np.float32)
    a = agent.act(obs, deterministic=True)
    assert a.shape == (2,) and a.dtype == np.float32 and np.all(np.abs(a) < 1)
    assert np.array_equal(a, agent.act(obs, deterministic=True))
    assert not np.array_equal(agent.act(obs, deterministic=False),
                              agent.act(obs, deterministic=False))


def test_state_dict_round_trip_restores_policy_critic_alpha_and_tau():
    torch.manual_seed(0)
    agent = _agent()
    for _ in range(3):
        agent.update(_batch(3, 1))
    # through bytes, as a checkpoint does (in memory, optimizers would share state tensors)
    buf = io.BytesIO()
    torch.save(agent.state_dict(), buf)
    buf.seek(0)
    fresh = _agent()
    fresh.load_state_dict(torch.load(buf))
    obs = np.ones(3, np.float32)
    assert np.array_equal(agent.act(obs, True), fresh.act(obs, True))
    assert fresh.tau == agent.tau and fresh.alpha.value == agent.alpha.value
    b = _batch(3, 1, seed=1)
    torch.manual_seed(5)
    m1 = agent.update(b)
    torch.manual_seed(5)
    m2 = fresh.update(b)
    assert m1 == m2


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# A few hundred steps, ~100 updates: enough to exercise every code path of each variant.
TINY_SCHEDULE = {"train.total_steps": 300, "train.learning_starts": 200, "train.eval_every": 300,
                 "train.eval_episodes": 1, "train.log_every": 50, "train.batch_size": 64,
                 "train.checkpoint_every": 1000, "actor.candidates": 8}


@pytest.mark.parametrize("variant", [v for v, (algo, _) in VARIANTS.items() if algo == "fmer"])
def test_every_variant_trains_and_logs_finite_values(tmp_path, variant):
    cfg = make_config("Pendulum-v1", variant, 0, overrides={**SMALL, **TINY_SCHEDULE})
    out = train(cfg, tmp_path / "run", variant=variant)
    rows = _read_csv(out / "train.csv")
    assert len(rows) == 6
    updated = rows[-2:]  # the rows after learning_starts
    for row in updated:
        assert set(FMER.metric_names) <= set(row)
        values = {k: float(row[k]) for k in FMER.metric_names}
        assert all(math.isfinite(v) for v in values.values()), (variant, values)
    last = {k: float(updated[-1][k]) for k in FMER.metric_names}
    if variant == "fmer-no-entropy":
        assert last["alpha"] == 0.0
    if variant in ("fmer-no-ess", "fmer-no-tanh-no-ess"):
        assert last["tau"] == pytest.approx(cfg.temperature.fixed)
    if variant == "fmer-top1":
        assert last["ess_frac"] == pytest.approx(1 / cfg.actor.candidates)
    assert math.isfinite(float(_read_csv(out / "eval.csv")[-1]["return_mean"]))


BF16_HERE = bf16_matrix_units(torch.device("cpu"))


@pytest.mark.slow
@pytest.mark.parametrize(("precision", "seed"), [
    ("float32", 0),
    pytest.param("bfloat16", 0, marks=pytest.mark.skipif(
        BF16_HERE is None, reason="this CPU has no bf16 matrix units (AMX, AVX-512-BF16): "
                                  "emulated bf16 runs this test ~4x slower")),
])
def test_fmer_learns_pendulum(tmp_path, precision, seed):
    # Cheaper than the defaults, for time (each knob is a config key): 128-wide networks,
    # batch 128, 5 Euler steps (the paper's 10 double the update's cost), 8 candidates on 32
    # states, the entropy term on 32 states, and the actor (with α and τ) updated every second
    # critic update (actor.update_every=2, TD3's delay: at these settings the actor's step is
    # ~70% of an update, by cProfile). FMER's default alpha.initial (0.05,
    # fmer.config.ALGO_DEFAULTS) is what makes 8k steps enough: with 1.0, α (Adam 3e-4 on
    # log α) needs ~8k updates to fall to where the entropy term stops dominating the
    # scale-free CFM pull.
    # The test asks that the policy reach a good evaluation between 5k and 8k steps, not that
    # it hold one at a given step: Pendulum takes off between 4k and 8k, where depends on float
    # rounding, and after take-off single evaluations dip. With these settings (AMD EPYC,
    # 2026-12-07), seeds 0/1/2/3 at 5k/6k/7k/8k: -1033/-964/-653/-104, -1124/-124/-169/-76,
    # -107/-530/-207/-192, -259/-201/-150/-169; random: -1277/-1076/-1177/-1112 (the test asks
    # for 0.4 of it: -511/-430/-471/-445); each run 170-182 s of CPU on a loaded core. With
    # update_every=1 they reached -450, -97, -197, -196 (seed 0: 314 s, loaded alike). With 10 Euler
    # steps, seed 0 at 6k gave -205 on one machine and -687 on a CI machine whose kernels round
    # differently (fmer.device.float_fingerprint).
    # train.precision=bfloat16 (fmer.execution) runs only where bf16 matmuls are native (AMX,
    # AVX-512-BF16): emulated, this test's update at 10 Euler steps took 197 ms against
    # float32's 51 (AVX2 EPYC), too slow for the suite. Its seeds are not yet checked on such
    # a machine.
    best, random_return, returns = learn_pendulum(tmp_path / "run", "fmer", seed, {
        "train.precision": precision,
        "train.total_steps": 8000, "train.learning_starts": 1000, "train.eval_every": 1000,
        "train.eval_episodes": 5, "train.log_every": 500, "train.checkpoint_every": 8000,
        "train.batch_size": 128, "actor.hidden": [128, 128], "critic.hidden": [128, 128],
        "actor.flow_steps": 5, "actor.candidates": 8, "actor.candidate_states": 32,
        "actor.entropy_batch": 32, "actor.update_every": 2}, from_step=5000)
    assert best > 0.4 * random_return, (returns, random_return)
