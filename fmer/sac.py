"""Soft Actor-Critic (tanh-Gaussian actor, twin critics, automatic alpha): the baseline.

Behaviour follows CleanRL's ``sac_continuous_action.py`` (same networks, log-std bounds,
initial alpha 1, target entropy -dim(A), batch, gamma, Polyak rate, learning starts) with
these deliberate differences:

- the actor and alpha are updated at every step (CleanRL: twice every second step, the same
  count);
- the critic and alpha learn at 3e-4, as the actor (CleanRL: 1e-3);
- alpha's loss is FMER's, -log alpha (log pi + H) (fmer.alpha), on the log-probability of the
  actor's own pre-step sample (CleanRL: -alpha (log pi + H) on a fresh sample after the step);
- the action box enters the log-density once, as ``-box.log_det``, because the agent acts in
  the cube (-1, 1)^d;
- the tanh Jacobian uses the exact stable form (fmer.nets.tanh_log_det_jacobian) instead of
  CleanRL's ``+1e-6``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from fmer.alpha import EntropyCoefficient
from fmer.buffer import Batch
from fmer.config import Config
from fmer.nets import ActionBox, Critic, mlp, tanh_log_det_jacobian

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # CleanRL's bounds


class GaussianActor(nn.Module):
    """Mean and log-std heads on a shared ReLU trunk; log-std squashed into its bounds."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int]):
        super().__init__()
        self.net = mlp(obs_dim, hidden, 2 * act_dim, "relu")

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1)
        return mean, log_std


def make_actor(obs_dim: int, act_dim: int, cfg: Config) -> GaussianActor:
    return GaussianActor(obs_dim, act_dim, cfg.actor.hidden)


@torch.no_grad()
def gaussian_act(actor: GaussianActor, s: torch.Tensor, deterministic: bool,
                 log_det: float) -> torch.Tensor:
    """Actions in the cube for states ``s`` (B, obs): tanh(mean), or a squashed sample."""
    mean, log_std = actor(s)
    if deterministic:
        return torch.tanh(mean)
    return squashed_sample(mean, log_std, log_det)[0]


def squashed_sample(
    mean: torch.Tensor, log_std: torch.Tensor, log_det: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reparameterised action in the cube and its log-density in env units, per sample."""
    std = log_std.exp()
    u = mean + std * torch.randn_like(mean)
    log_prob = (-0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_prob = log_prob - tanh_log_det_jacobian(u) - log_det
    return torch.tanh(u), log_prob


class SAC:
    compiled_parts = ("_td_target", "critic.loss", "_actor_loss")  # fmer.execution
    metric_names = ("critic_loss", "actor_loss", "alpha", "alpha_loss", "entropy", "q_mean")

    def __init__(self, obs_dim: int, box: ActionBox, cfg: Config, device: torch.device | str):
        self.device = torch.device(device)
        self.box = box
        self.gamma = cfg.critic.gamma
        self.entropy_bonus = cfg.critic.entropy_bonus
        self.actor = make_actor(obs_dim, box.dim, cfg).to(self.device)
        self.actor_optim = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor.lr)
        self.critic = Critic(obs_dim, box.dim, cfg.critic.hidden, cfg.critic.lr,
                             cfg.critic.polyak, self.device)
        self.alpha = EntropyCoefficient(cfg.alpha, box.dim, self.device)

    @property
    def policy_net(self) -> GaussianActor:
        """What a saved policy keeps (fmer.policy)."""
        return self.actor

    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        s = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0)
        action = gaussian_act(self.actor, s, deterministic, self.box.log_det)
        return action.squeeze(0).cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def _td_target(self, next_obs: torch.Tensor, rewards: torch.Tensor,
                   terminated: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
        next_action, next_log_prob = squashed_sample(*self.actor(next_obs), self.box.log_det)
        next_v = self.critic.min_q(next_obs, next_action, target=True)
        if self.entropy_bonus:
            next_v = next_v - alpha * next_log_prob
        return rewards + self.gamma * (1.0 - terminated) * next_v

    def _actor_loss(self, obs: torch.Tensor, alpha: float | torch.Tensor):
        """E[α log π(a|s) − min Q(s, a)] at reparameterised actions; with log π and Q."""
        action, log_prob = squashed_sample(*self.actor(obs), self.box.log_det)
        q = self.critic.min_q(obs, action)
        return (alpha * log_prob - q).mean(), log_prob, q

    def update(self, batch: Batch) -> dict[str, float | torch.Tensor]:
        """One critic, actor and α update; the metrics, tensors on the device (numbers where
        constant): nothing here waits for the device."""
        alpha = self.alpha.value
        td_target = self._td_target(batch.next_obs, batch.rewards, batch.terminated, alpha)
        critic_loss = self.critic.update(batch.obs, batch.actions, td_target)

        actor_loss, log_prob, q = self._actor_loss(batch.obs, alpha)
        self.actor_optim.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optim.step()

        log_prob = log_prob.detach()
        alpha_loss = self.alpha.update(log_prob)
        return {
            "critic_loss": critic_loss,
            "actor_loss": actor_loss.detach(),
            "alpha": alpha,
            "alpha_loss": alpha_loss,
            "entropy": -log_prob.mean(),
            "q_mean": q.detach().mean(),
        }

    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),
            "actor_optim": self.actor_optim.state_dict(),
            "critic": self.critic.state_dict(),
            **self.alpha.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.actor_optim.load_state_dict(state["actor_optim"])
        self.critic.load_state_dict(state["critic"])
        self.alpha.load_state_dict(state)
