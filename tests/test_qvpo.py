"""QVPO: the cosine schedule and the reverse process against hand-computed values and an exact
denoiser, the Q-weighted loss by hand, the entropy weight's decay, the behaviour selection,
resumption of the agent's state, and learning Pendulum."""

import csv
import io
import math

import numpy as np
import pytest
import torch
from conftest import learn_pendulum

from fmer.buffer import Batch
from fmer.config import VARIANTS, make_config
from fmer.diffusion import NoiseNet, Schedule, cosine_betas, denoising_loss, sample
from fmer.nets import ActionBox
from fmer.qvpo import (
    QVPO,
    best_of,
    entropy_weight,
    qadv_weights,
    weighted_actions,
)

# Tiny and cheap: every code path, not the authors' cost
CHEAP = {"actor.hidden": [32, 32], "critic.hidden": [32, 32], "qvpo.train_samples": 8,
         "qvpo.diffusion_steps": 5}


def _agent(overrides=None, obs_dim=3, act_dim=1):
    cfg = make_config("Pendulum-v1", "qvpo", 0, overrides={**CHEAP, **(overrides or {})})
    torch.manual_seed(0)
    return QVPO(obs_dim, ActionBox(-2 * np.ones(act_dim), 2 * np.ones(act_dim)), cfg, "cpu")


def _batch(obs_dim=3, act_dim=1, n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(n, obs_dim, generator=g), torch.rand(n, act_dim, generator=g) * 2 - 1,
                 torch.randn(n, generator=g), torch.randn(n, obs_dim, generator=g),
                 torch.zeros(n))


# --- the noise schedule ----------------------------------------------------------------------
def test_cosine_schedule_by_hand():
    # T = 2, s = 0.008: f(i) = cos²((i/2 + s)/(1 + s) · π/2); β_0 = 1 − f(1)/f(0) =
    # 1 − cos²(0.508/1.008 · π/2) / cos²(0.008/1.008 · π/2) = 0.5061564; β_1 = 1 − f(2)/f(1)
    # = 1 (f(2) = cos²(π/2) = 0), clipped to 0.999.
    np.testing.assert_allclose(cosine_betas(2), [0.5061564, 0.999], rtol=1e-6)
    sched = Schedule(2)
    # ᾱ_0 = 1 − β_0 = 0.4938436, ᾱ_1 = ᾱ_0 (1 − 0.999) = 4.938436e-4
    torch.testing.assert_close(sched.abar, torch.tensor([0.4938436, 4.938436e-4]))
    # the posterior q(x_{i−1} | x_i, a_0) at i = 1: variance β_1 (1 − ᾱ_0)/(1 − ᾱ_1) = 0.5059001,
    # mean β_1 √ᾱ_0/(1 − ᾱ_1) a_0 + (1 − ᾱ_0) √(1 − β_1)/(1 − ᾱ_1) x = 0.7023842 a_0 + 0.0160140 x
    torch.testing.assert_close(sched.sigma[1], torch.tensor(math.sqrt(0.5059001)))
    torch.testing.assert_close(sched.coef_a0[1], torch.tensor(0.7023842))
    torch.testing.assert_close(sched.coef_x[1], torch.tensor(0.0160140), atol=1e-7, rtol=0)
    # at i = 0 the posterior mean is a_0 itself: the last step returns the estimate
    assert sched.coef_a0[0].item() == pytest.approx(1.0) and sched.coef_x[0].item() == 0.0


def test_the_authors_twenty_steps_end_in_nearly_pure_noise():
    betas = cosine_betas(20)
    assert np.all(np.diff(betas) > 0) and betas[-1] == 0.999 and betas[0] < 0.01
    abar = Schedule(20).abar
    assert abar[-1] < 1e-3 and abar[0] > 0.99


class PointMassDenoiser:
    """The exact noise predictor for a policy that always plays c: from x_i = √ᾱ_i c +
    √(1 − ᾱ_i) ε it recovers ε = (x_i − √ᾱ_i c)/√(1 − ᾱ_i). Has NoiseNet's calling forms."""

    act_dim = 2

    def __init__(self, schedule: Schedule, c: torch.Tensor):
        self.schedule, self.c = schedule, c

    def bind(self, s):
        sc = self.schedule

        def eps(x, i):
            root, root_rest = sc.sqrt_abar[i], sc.sqrt_one_minus_abar[i]
            return (x - root.unsqueeze(-1) * self.c) / root_rest.unsqueeze(-1)

        return eps

    def __call__(self, x, i, s):
        return self.bind(s)(x, i)


def test_reverse_process_with_the_exact_denoiser_returns_the_point():
    sched = Schedule(20)
    c = torch.tensor([0.3, -0.7])
    net = PointMassDenoiser(sched, c)
    torch.manual_seed(0)
    for noise in (True, False):
        a = sample(net, sched, torch.zeros(5, 3), 4, noise=noise)
        assert a.shape == (5, 4, 2)
        torch.testing.assert_close(a, c.expand(5, 4, 2), atol=1e-5, rtol=0)


def test_denoising_loss_of_the_exact_denoiser_by_hand():
    # For actions a = c + δ the point-mass denoiser predicts ε + √ᾱ_i δ/√(1 − ᾱ_i): the squared
    # error per coordinate is ᾱ_i/(1 − ᾱ_i) δ², whatever ε. T = 2, i = 0: ᾱ_0/(1 − ᾱ_0) =
    # 0.4938436/0.5061564 = 0.9756739.
    sched = Schedule(2)
    c = torch.tensor([0.3, -0.7])
    net = PointMassDenoiser(sched, c)
    a0 = c + torch.tensor([[[0.0, 0.0], [0.2, 0.0]], [[0.0, -0.1], [0.0, 0.0]]])  # (2, 2, 2)
    w = torch.tensor([[5.0, 2.0], [3.0, 7.0]])
    eps = torch.randn(2, 2, 2)
    loss = denoising_loss(net, sched, torch.zeros(2, 3), a0, w, torch.zeros(2, 2, dtype=torch.long),
                          eps)
    # mean over 2 × 2 actions × 2 coordinates of w δ² · 0.9756739
    expected = (2.0 * 0.2**2 + 3.0 * 0.1**2) * 0.9756739 / 8
    assert loss.item() == pytest.approx(expected, rel=1e-5)


# --- the Q-weighted loss ---------------------------------------------------------------------
def test_qadv_weights_the_best_candidate_by_its_advantage_over_the_mean():
    q = torch.tensor([[1.0, 3.0, 2.0], [0.0, 4.0, -1.0], [2.0, 2.0, 2.0]])
    best, w = qadv_weights(q)
    assert best.tolist()[:2] == [1, 1]
    # 3 − mean(1, 3, 2) = 1; 4 − mean(0, 4, −1) = 3; equal values: no advantage
    torch.testing.assert_close(w, torch.tensor([1.0, 3.0, 0.0]))


def test_uniform_actions_carry_the_entropy_weight_times_the_state_weight():
    best = torch.tensor([[0.1], [0.2]])
    uniform = torch.tensor([[[0.5], [-0.5]], [[0.9], [-0.9]]])
    actions, weights = weighted_actions(best, torch.tensor([1.0, 3.0]), uniform, 0.5)
    torch.testing.assert_close(actions, torch.tensor([[[0.1], [0.5], [-0.5]],
                                                      [[0.2], [0.9], [-0.9]]]))
    torch.testing.assert_close(weights, torch.tensor([[1.0, 0.5, 0.5], [3.0, 1.5, 1.5]]))


def test_entropy_weight_decays_linearly_to_its_floor():
    # the authors': 0.02 (1 − step/total), not below 0.002
    assert [entropy_weight(s, 1000, 0.02, 0.002) for s in (0, 500, 850, 900, 950, 1000)] == \
        pytest.approx([0.02, 0.01, 0.003, 0.002, 0.002, 0.002])


def test_update_uses_the_entropy_weight_of_its_env_step():
    # learning starts at 100 (> batch 32): update k runs at env step 100 + k of 1,000
    agent = _agent({"train.total_steps": 1000, "train.learning_starts": 100,
                    "train.batch_size": 32})
    omegas = [agent.update(_batch())["entropy_weight"] for _ in range(3)]
    assert omegas == pytest.approx([0.02 * (1 - s / 1000) for s in (100, 101, 102)])
    # the horizon can be fixed apart from the run's length (fmer verify --rerun --steps does)
    agent = _agent({"train.total_steps": 1000, "train.learning_starts": 100,
                    "train.batch_size": 32, "qvpo.entropy_decay_steps": 200})
    assert agent.update(_batch())["entropy_weight"] == pytest.approx(0.02 * (1 - 100 / 200))


def test_update_reports_finite_metrics_and_moves_the_target_policy_slowly():
    agent = _agent()
    before = [p.clone() for p in agent.noise_target.parameters()]
    online = [p.clone() for p in agent.noise.parameters()]
    m = agent.update(_batch())
    assert list(m) == list(QVPO.metric_names) and all(np.isfinite(v) for v in m.values())
    assert m["weight_mean"] >= 0
    for b, o, p, tp in zip(before, online, agent.noise.parameters(),
                           agent.noise_target.parameters(), strict=True):
        torch.testing.assert_close(b, o)  # the target starts as a copy
        torch.testing.assert_close(tp, b + 0.005 * (p.detach() - b))  # Polyak 0.005


# --- acting ----------------------------------------------------------------------------------
def test_behaviour_takes_the_sample_with_the_highest_min_q():
    net = NoiseNet(3, 2, [16, 16], 5)
    sched = Schedule(5)

    def q(s, a):  # Q prefers actions near (0.5, 0.5); the second head is higher everywhere
        score = -(a - 0.5).pow(2).sum(-1)
        return torch.stack([score, score + 1])

    s = torch.randn(4, 3)
    torch.manual_seed(1)
    chosen = best_of(net, q, sched, s, 6)
    torch.manual_seed(1)
    samples = sample(net, sched, s, 6)
    dist = (samples - 0.5).pow(2).sum(-1)
    torch.testing.assert_close(chosen, samples[torch.arange(4), dist.argmin(1)])


def test_act_is_in_the_cube_and_deterministic_at_eval():
    agent = _agent(obs_dim=3, act_dim=2)
    obs = np.zeros(3, np.float32)
    a = agent.act(obs, deterministic=True)
    assert a.shape == (2,) and a.dtype == np.float32 and np.all(np.abs(a) <= 1)
    assert np.array_equal(a, agent.act(obs, deterministic=True))
    assert not np.array_equal(agent.act(obs, deterministic=False),
                              agent.act(obs, deterministic=False))


# --- state and config ------------------------------------------------------------------------
def test_state_dict_round_trip_continues_identically():
    agent = _agent()
    for seed in range(3):
        agent.update(_batch(seed=seed))
    buf = io.BytesIO()  # through bytes, as a checkpoint does
    torch.save(agent.state_dict(), buf)
    buf.seek(0)
    fresh = _agent({"qvpo.entropy_weight": 0.02})
    fresh.load_state_dict(torch.load(buf))
    obs = np.ones(3, np.float32)
    assert np.array_equal(agent.act(obs, True), fresh.act(obs, True))
    torch.manual_seed(5)
    m1 = agent.update(_batch(seed=9))
    torch.manual_seed(5)
    m2 = fresh.update(_batch(seed=9))
    assert m1 == m2


def test_qvpo_defaults_are_its_authors_networks():
    cfg = make_config("Pendulum-v1", "qvpo", 0)
    assert VARIANTS["qvpo"][0] == cfg.algo == "qvpo"
    assert cfg.actor.hidden == cfg.critic.hidden == [256, 256, 256] and cfg.actor.lr == 1e-4
    # the budget's (or --set) widths win over the algorithm's defaults
    assert make_config("Pendulum-v1", "qvpo", 0, base={"actor": {"hidden": [32]}}).actor.hidden \
        == [32]


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0])
def test_qvpo_learns_pendulum(tmp_path, seed):
    # Cheaper than the authors' settings, for time (~3.5 min on one core): 64-wide networks,
    # batch 128, 8 training samples per state, 5 diffusion steps, 6,000 steps. Measured on seeds
    # 0-3 (AMD EPYC, 2026-12-07): the best evaluation from step 4,000 on was 0.60, 0.72, 0.64
    # and 0.73 of the random policy's return (-762/-1277, -770/-1076, -753/-1177, -808/-1112),
    # so the test asks for 0.8; at the authors' learning rate QVPO learns Pendulum slowly (the
    # earlier test, 8,000 steps at 16 samples and 10 diffusion steps, reached 0.45 on seed 0
    # and took ~11 min).
    best, random_return, returns = learn_pendulum(tmp_path / "run", "qvpo", seed, {
        "train.total_steps": 6000, "train.learning_starts": 1000, "train.eval_every": 1000,
        "train.eval_episodes": 5, "train.log_every": 500, "train.checkpoint_every": 6000,
        "train.batch_size": 128, "actor.hidden": [64, 64], "critic.hidden": [64, 64],
        "qvpo.train_samples": 8, "qvpo.diffusion_steps": 5}, from_step=4000)
    assert best > 0.8 * random_return, (returns, random_return)
