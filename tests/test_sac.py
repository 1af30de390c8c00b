"""SAC: the squashed-Gaussian log-density, alpha tuning, terminal handling, learning."""

import io

import numpy as np
import pytest
import torch
from conftest import learn_pendulum
from torch.distributions import AffineTransform, Normal, TanhTransform, TransformedDistribution

from fmer.buffer import Batch
from fmer.config import make_config
from fmer.nets import ActionBox
from fmer.sac import LOG_STD_MAX, LOG_STD_MIN, SAC, squashed_sample

OBS_DIM = 3


def _agent(act_low=(-2.0, -0.5), act_high=(2.0, 1.5), **overrides) -> SAC:
    torch.manual_seed(0)
    cfg = make_config("Pendulum-v1", "sac", 0, overrides=overrides)
    return SAC(OBS_DIM, ActionBox(np.array(act_low), np.array(act_high)), cfg, "cpu")


def _batch(n=64, act_dim=2, terminated=0.0, seed=0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(obs=torch.randn(n, OBS_DIM, generator=g),
                 actions=torch.rand(n, act_dim, generator=g) * 2 - 1,
                 rewards=torch.randn(n, generator=g),
                 next_obs=torch.randn(n, OBS_DIM, generator=g),
                 terminated=torch.full((n,), terminated))


def test_log_prob_is_the_density_of_the_env_action():
    """Oracle: torch's own Normal -> tanh -> affine(box) distribution, in env units."""
    box = ActionBox(np.array([-2.0, -0.5]), np.array([2.0, 1.5]))
    torch.manual_seed(1)
    mean = torch.randn(500, 2, dtype=torch.float64)
    log_std = torch.rand(500, 2, dtype=torch.float64) * 2 - 1.5
    action, log_prob = squashed_sample(mean, log_std, box.log_det)
    oracle = TransformedDistribution(
        Normal(mean, log_std.exp()),
        [TanhTransform(), AffineTransform(torch.tensor(box.bias), torch.tensor(box.scale))])
    # keep away from the saturated edge where tanh's inverse loses precision
    ok = action.abs().max(-1).values < 0.999
    env_action = torch.tensor(box.bias) + torch.tensor(box.scale) * action
    expected = oracle.log_prob(env_action).sum(-1)
    assert ok.sum() > 400
    assert torch.allclose(log_prob[ok], expected[ok], atol=1e-6)


def test_actor_log_std_bounds_and_deterministic_action():
    agent = _agent()
    mean, log_std = agent.actor(torch.randn(32, OBS_DIM) * 1e4)
    assert log_std.min() >= LOG_STD_MIN and log_std.max() <= LOG_STD_MAX
    obs = np.random.default_rng(0).normal(size=OBS_DIM).astype(np.float32)
    a = agent.act(obs, deterministic=True)
    assert a.dtype == np.float32 and a.shape == (2,)
    with torch.no_grad():
        expected = torch.tanh(agent.actor(torch.from_numpy(obs)[None])[0])[0].numpy()
    np.testing.assert_array_equal(a, expected)
    np.testing.assert_array_equal(a, agent.act(obs, deterministic=True))
    stochastic = np.stack([agent.act(obs, deterministic=False) for _ in range(20)])
    assert np.all(np.abs(stochastic) < 1) and stochastic.std(0).min() > 0


def test_alpha_tuning_direction_and_fixed_alpha():
    tuned = _agent()
    assert tuned.alpha.target_entropy == -2.0
    metrics = tuned.update(_batch())
    assert set(metrics) == set(SAC.metric_names)
    # the initial policy is much wider than the target entropy -2 asks: alpha must shrink
    assert metrics["entropy"] > tuned.alpha.target_entropy
    assert tuned.alpha.value < 1.0
    fixed = _agent(**{"alpha.fixed": 0.0})
    for seed in range(3):
        m = fixed.update(_batch(seed=seed))
    assert fixed.alpha.value == 0.0 and m["alpha"] == 0.0 and m["alpha_loss"] == 0.0


def test_terminal_transitions_do_not_bootstrap():
    agent = _agent(**{"critic.gamma": 0.9})
    seen = []
    update = agent.critic.update
    agent.critic.update = lambda o, a, target: seen.append(target) or update(o, a, target)
    done, alive = _batch(terminated=1.0), _batch(terminated=0.0)
    agent.update(done)
    agent.update(alive)
    torch.testing.assert_close(seen[0], done.rewards)
    assert not torch.allclose(seen[1], alive.rewards)


def test_state_dict_round_trip_continues_identically():
    a, b = _agent(), _agent(**{"alpha.initial": 0.3})
    for seed in range(3):
        a.update(_batch(seed=seed))
    # through bytes, as a checkpoint does (in memory, torch's optimisers share state tensors)
    saved = io.BytesIO()
    torch.save(a.state_dict(), saved)
    saved.seek(0)
    b.load_state_dict(torch.load(saved))
    assert b.alpha.value == a.alpha.value
    torch.manual_seed(5)
    ma = a.update(_batch(seed=9))
    torch.manual_seed(5)
    mb = b.update(_batch(seed=9))
    assert ma == mb


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0])
def test_sac_learns_pendulum(tmp_path, seed):
    # Measured with this schedule: seeds 0, 1, 2 reach -194, -186, -148 against a random
    # policy's -1277, -1076, -1177 (at 4000 steps seed 2 was still at -975: hence 5000).
    final, random_return, returns = learn_pendulum(tmp_path / "run", "sac", seed, {
        "train.total_steps": 5000, "train.learning_starts": 1000, "train.eval_every": 5000,
        "train.eval_episodes": 5, "train.log_every": 500, "train.checkpoint_every": 5000},
        from_step=5000)
    assert final > 0.4 * random_return, (returns, random_return)
