"""The entropy coefficient both agents share: its loss against hand-computed answers, its
direction, the fixed case, and its checkpoint."""

import copy
import math

import numpy as np
import pytest
import torch

from fmer.alpha import EntropyCoefficient, alpha_loss
from fmer.config import ALGOS, AlphaConfig, make_config
from fmer.nets import ActionBox
from fmer.train import make_agent


def test_loss_and_gradient_by_hand():
    log_alpha = torch.tensor(math.log(2.0), requires_grad=True)
    logp = torch.tensor([-1.0, -3.0], requires_grad=True)
    loss = alpha_loss(log_alpha, logp, target_entropy=-1.0)
    # -log 2 * mean(-1 - 1, -3 - 1) = 3 log 2; d/d log alpha = -mean(log pi + H) = 3
    assert loss.item() == pytest.approx(3 * math.log(2.0))
    loss.backward()
    assert log_alpha.grad.item() == pytest.approx(3.0)
    assert logp.grad is None  # log pi is a constant of this loss


def test_loss_checks_shapes():
    with pytest.raises(ValueError, match="shape"):
        alpha_loss(torch.zeros(1), torch.zeros(4), -1.0)
    with pytest.raises(ValueError, match="shape"):
        alpha_loss(torch.tensor(0.0), torch.zeros(4, 1), -1.0)


@pytest.mark.parametrize(("entropy", "moves"), [(5.0, "down"), (-5.0, "up")])
def test_alpha_falls_above_the_target_entropy_and_rises_below(entropy, moves):
    coef = EntropyCoefficient(AlphaConfig(initial=0.5), act_dim=2)
    assert coef.target_entropy == -2.0
    loss = coef.update(torch.full((8,), -entropy))
    assert loss == pytest.approx(-math.log(0.5) * (-entropy - 2.0))
    assert (coef.value < 0.5) if moves == "down" else (coef.value > 0.5)


@pytest.mark.parametrize("fixed", [0.0, 0.2])
def test_fixed_alpha_never_moves(fixed):
    coef = EntropyCoefficient(AlphaConfig(fixed=fixed), act_dim=3)
    before = coef.log_alpha.item()
    assert coef.update(torch.full((8,), 10.0)) == 0.0
    assert coef.value == fixed and coef.log_alpha.item() == before


def test_state_dict_keeps_the_agents_checkpoint_keys():
    a = EntropyCoefficient(AlphaConfig(initial=0.3), act_dim=2)
    a.update(torch.full((4,), 1.0))
    state = a.state_dict()
    assert set(state) == {"log_alpha", "alpha_optim"}
    b = EntropyCoefficient(AlphaConfig(), act_dim=2)
    b.load_state_dict(copy.deepcopy(state))  # as through a checkpoint file: no shared tensors
    for coef in (a, b):
        coef.update(torch.full((4,), -1.0))
    assert a.value == b.value


# QVPO has no entropy coefficient: it keeps entropy up with uniform candidate actions in its
# weighted loss (docs/QVPO.md), so this holds for the agents that tune alpha.
@pytest.mark.parametrize("algo", [a for a in ALGOS if a != "qvpo"])
def test_every_agent_uses_it_from_its_config(algo):
    cfg = make_config("Pendulum-v1", algo, overrides={"alpha.target_entropy": -0.5,
                                                      "actor.hidden": [8], "critic.hidden": [8]})
    agent = make_agent(cfg, 3, ActionBox(np.array([-2.0]), np.array([2.0])))
    assert isinstance(agent.alpha, EntropyCoefficient)
    assert agent.alpha.target_entropy == -0.5
    assert agent.alpha.value == pytest.approx(cfg.alpha.initial)
