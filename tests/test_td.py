"""The TD machinery the agents share: the target bootstraps only where an episode did not
terminate, the Polyak step moves each target by exactly ``critic.polyak``, and the loop stores
an episode cut by its time limit (truncated) as not terminal."""

import numpy as np
import pytest
import torch

from fmer.agent import FMER
from fmer.buffer import Batch, ReplayBuffer
from fmer.checkpoint import Checkpointer
from fmer.config import make_config
from fmer.nets import ActionBox
from fmer.qvpo import QVPO
from fmer.sac import SAC
from fmer.train import train

AGENTS = {"fmer": FMER, "sac": SAC, "qvpo": QVPO}
SMALL = {"actor.hidden": [32, 32], "critic.hidden": [32, 32], "qvpo.train_samples": 8,
         "qvpo.diffusion_steps": 5}
OBS, ACT = 3, 2


def _agent(algo, overrides=None):
    torch.manual_seed(0)
    cfg = make_config("Pendulum-v1", algo, 0, overrides={**SMALL, **(overrides or {})})
    return AGENTS[algo](OBS, ActionBox(-np.ones(ACT), np.ones(ACT)), cfg, "cpu")


def _batch(n=32, terminated=None):
    g = torch.Generator().manual_seed(1)
    return Batch(torch.randn(n, OBS, generator=g), torch.rand(n, ACT, generator=g) * 2 - 1,
                 torch.randn(n, generator=g), torch.randn(n, OBS, generator=g),
                 torch.zeros(n) if terminated is None else terminated)


@pytest.mark.parametrize("algo", ["fmer", "sac"])
def test_the_td_target_bootstraps_only_where_the_episode_did_not_terminate(algo):
    agent, b = _agent(algo), _batch()
    terminated = (torch.arange(len(b.rewards)) % 3 == 0).float()
    targets = []
    for mask in (torch.zeros_like(terminated), terminated):
        torch.manual_seed(2)  # the same next actions both times
        targets.append(agent._td_target(b.next_obs, b.rewards, mask, agent.alpha.value))
    open_, masked = targets
    ends = terminated.bool()
    # a terminal transition's target is its reward, exactly; the others bootstrap, unchanged
    assert torch.equal(masked[ends], b.rewards[ends])
    assert torch.equal(masked[~ends], open_[~ends])
    assert (open_ != b.rewards).all()


def _flat(module):
    return torch.cat([p.detach().double().flatten() for p in module.parameters()])


@pytest.mark.parametrize("algo", list(AGENTS))
def test_a_polyak_step_moves_each_target_by_exactly_critic_polyak(algo):
    polyak = 0.3  # far from the default and from 1 - polyak: a swapped convention shows
    # large steps, so that the online networks move well above float32's rounding
    agent = _agent(algo, {"critic.polyak": polyak, "critic.lr": 0.01, "actor.lr": 0.01})
    pairs = [(agent.critic.q, agent.critic.target)]
    if algo == "qvpo":  # its policy has a target too (the same key)
        pairs.append((agent.noise, agent.noise_target))
    before = [_flat(target) for _, target in pairs]
    assert all(torch.equal(b, _flat(online)) for b, (online, _) in zip(before, pairs,
                                                                            strict=True))
    agent.update(_batch())
    for b, (online, target) in zip(before, pairs, strict=True):
        moved = _flat(online) - b
        assert moved.abs().max() > 1e-3  # the online network did move
        torch.testing.assert_close(_flat(target), b + polyak * moved, rtol=0, atol=1e-6)


def _stored(tmp_path, env, steps=250):
    """The replay rows of a short run of uniform random actions (no update)."""
    overrides = {**SMALL, "train.total_steps": steps, "train.learning_starts": steps,
                 "train.eval_every": steps, "train.eval_episodes": 1, "train.log_every": 50,
                 "train.keep_checkpoint": True}
    cfg = make_config(env, "sac", 0, overrides=overrides)
    out = train(cfg, tmp_path / env)
    obs_dim = {"Pendulum-v1": 3, "Hopper-v5": 11}[env]
    act_dim = {"Pendulum-v1": 1, "Hopper-v5": 3}[env]
    buffer = ReplayBuffer(obs_dim, act_dim, steps)
    Checkpointer(out / "checkpoint").load(buffer)
    assert buffer.added == steps
    d = buffer.data
    # an episode ends where the next row does not start from this row's next observation
    ends = {i for i in range(steps - 1) if not np.array_equal(d["next_obs"][i], d["obs"][i + 1])}
    return ends, {int(i) for i in np.flatnonzero(d["terminated"])}


def test_an_episode_cut_by_its_time_limit_is_stored_as_not_terminal(tmp_path):
    # Pendulum-v1 never terminates: its 200-step time limit truncates the first episode
    ends, terminal = _stored(tmp_path, "Pendulum-v1")
    assert ends == {199} and terminal == set()


def test_an_episode_that_terminates_is_stored_as_terminal(tmp_path):
    # Hopper-v5 falls within a few dozen random steps: every episode end is a termination
    ends, terminal = _stored(tmp_path, "Hopper-v5")
    assert len(ends) >= 2 and terminal - {249} == ends
