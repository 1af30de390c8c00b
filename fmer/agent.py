"""FMER: a flow-matching policy improved by advantage-weighted CFM (a mirror-descent step)
with a maximum-entropy term, twin soft critics, and τ tuned from the candidates' ESS.

One update (docs/FMER.md §3–5):
1. critic: soft TD target with a' ~ π(·|s') and its flow log-density (no gradient);
2. candidates: N latents per state from the current policy (no gradient), scored by min Q;
3. τ from the ESS of the weights (or fixed), weights by ``actor.weighting``;
4. actor: weighted CFM regression toward the candidates (no backprop through the sampler)
   plus α E[log π(a|s)] through the K Euler steps and the divergence terms;
5. α: one Adam step on −log α · (log π + H̄) (fmer.alpha, shared with SAC).
Steps 2–5 run on every ``actor.update_every``-th update (TD3's delayed policy update).
Each part carries a ``torch.profiler.record_function`` label, free when no profiler runs;
``fmer bench`` times the parts by them.

Log-densities are in env units: ``flow.log_prob`` (the cube) minus ``box.log_det`` (``_log_pi``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.profiler import record_function

from fmer import flow
from fmer.alpha import EntropyCoefficient
from fmer.buffer import Batch
from fmer.config import Config
from fmer.nets import ActionBox, Critic
from fmer.velocity import VelocityField
from fmer.weights import candidate_weights, ess, solve_temperature

SATURATED = 0.99  # |a| beyond which an action coordinate counts as saturated


def cfm_loss(
    v: VelocityField,
    s: torch.Tensor,
    u: torch.Tensor,
    w: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """E_s Σ_i w_i ||v(z_t, t, s) − (u_i − z_0)||² on the straight path z_t = (1−t) z_0 + t u_i.

    s (B, obs), candidate latents u (B, N, d), weights w (B, N) (treated as constants).
    One t and one z_0 per candidate; all B·N pairs go through the net in one call.
    """
    if u.dim() != 3 or u.shape[0] != s.shape[0] or w.shape != u.shape[:2]:
        raise ValueError(f"need s (B, obs), u (B, N, d), w (B, N); got s {tuple(s.shape)}, "
                         f"u {tuple(u.shape)}, w {tuple(w.shape)}")
    b, n, d = u.shape
    u = u.reshape(b * n, d)
    t = torch.rand(b * n, 1, generator=generator, dtype=u.dtype, device=u.device)
    z0 = torch.randn(b * n, d, generator=generator, dtype=u.dtype, device=u.device)
    z_t = (1 - t) * z0 + t * u
    err = (v(z_t, t, s.repeat_interleave(n, dim=0)) - (u - z0)).pow(2).sum(-1)
    return (w.detach() * err.view(b, n)).sum(-1).mean()


def make_velocity(obs_dim: int, act_dim: int, cfg: Config) -> VelocityField:
    a = cfg.actor
    return VelocityField(obs_dim, act_dim, a.hidden, a.activation, a.time_embedding)


@torch.no_grad()
def flow_act(velocity: VelocityField, s: torch.Tensor, steps: int,
             zero_noise: bool) -> torch.Tensor:
    """Actions in the cube for states ``s`` (B, obs): the flow from z0 = 0, or from z0 ~ N(0, I)."""
    shape = (s.shape[0], velocity.act_dim)
    z0 = (torch.zeros(shape, device=s.device) if zero_noise
          else torch.randn(shape, device=s.device))
    return torch.tanh(flow.euler_sample(velocity, s, z0, steps))


def _to(value: float | torch.Tensor, device: torch.device) -> float | torch.Tensor:
    return value.to(device) if isinstance(value, torch.Tensor) else value


class FMER:
    # The methods that hold an update's tensor work, compiled under train.compile
    # (fmer.execution); the rest of an update is bookkeeping and optimiser steps.
    compiled_parts = ("_td_target", "critic.loss", "_candidates", "_weights", "_cfm",
                      "_entropy")
    metric_names = (
        "critic_loss", "cfm_loss", "alpha", "alpha_loss", "entropy", "entropy_corrected",
        "entropy_latent", "tau", "ess_frac", "q_mean", "saturation",
    )

    def __init__(self, obs_dim: int, box: ActionBox, cfg: Config, device: torch.device | str):
        self.device = torch.device(device)
        self.box = box
        self.act_dim = box.dim
        a = cfg.actor
        self.steps = a.flow_steps
        self.n_candidates = a.candidates
        self.candidate_states = a.candidate_states
        self.entropy_batch = a.entropy_batch
        self.weighting = a.weighting
        self.gamma = cfg.critic.gamma
        self.entropy_bonus = cfg.critic.entropy_bonus
        e = cfg.entropy
        self.tanh_correction = e.tanh_correction
        self.flow_kwargs = {"divergence": e.divergence, "logdet": e.logdet, "probes": e.probes}
        self.temperature = cfg.temperature
        self.eval_deterministic = cfg.eval.deterministic
        self.velocity = make_velocity(obs_dim, box.dim, cfg).to(self.device)
        self.actor_optim = torch.optim.Adam(self.velocity.parameters(), lr=a.lr)
        self.critic = Critic(obs_dim, box.dim, cfg.critic.hidden, cfg.critic.lr,
                             cfg.critic.polyak, self.device)
        self.alpha = EntropyCoefficient(cfg.alpha, box.dim, self.device)
        self.tau: float | torch.Tensor = cfg.temperature.fixed
        self.actor_every = a.update_every
        self.n_updates = 0  # critic updates so far: the actor's turn comes every actor_every
        self.actor_metrics: dict[str, float | torch.Tensor] = {}

    def _log_pi(self, s: torch.Tensor, z0: torch.Tensor):
        """``flow.log_prob`` of this policy, in env units: the density the agent uses
        everywhere (actor, α, critic). Differentiable through the sampler when grad is enabled.
        """
        a, logp, tanh_term = flow.log_prob(self.velocity, s, z0, self.steps,
                                           tanh_correction=self.tanh_correction,
                                           **self.flow_kwargs)
        return a, logp - self.box.log_det, tanh_term

    def _sample_latent(self, s: torch.Tensor) -> torch.Tensor:
        z0 = torch.randn(s.shape[0], self.act_dim, device=self.device)
        return flow.euler_sample(self.velocity, s, z0, self.steps)

    @property
    def policy_net(self) -> VelocityField:
        """What a saved policy keeps (fmer.policy)."""
        return self.velocity

    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        s = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0)
        action = flow_act(self.velocity, s, self.steps, deterministic and self.eval_deterministic)
        return action.squeeze(0).cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def _td_target(self, next_obs: torch.Tensor, rewards: torch.Tensor,
                   terminated: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
        if self.entropy_bonus and self.alpha.positive:
            z0 = torch.randn(next_obs.shape[0], self.act_dim, device=self.device)
            next_a, next_logp, _ = self._log_pi(next_obs, z0)
            next_v = self.critic.min_q(next_obs, next_a, target=True) - alpha * next_logp
        else:  # the α log π term is zero or switched off: skip the divergence cost
            next_a = torch.tanh(self._sample_latent(next_obs))
            next_v = self.critic.min_q(next_obs, next_a, target=True)
        return rewards + self.gamma * (1.0 - terminated) * next_v

    def _critic_step(self, batch: Batch, alpha: float | torch.Tensor) -> torch.Tensor:
        with record_function("critic_target"):
            td_target = self._td_target(batch.next_obs, batch.rewards, batch.terminated, alpha)
        with record_function("critic_step"):
            return self.critic.update(batch.obs, batch.actions, td_target)

    @torch.no_grad()
    def _candidates(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """N latents per state from the current policy, (B, N, d), and their min-Q, (B, N)."""
        b, n = s.shape[0], self.n_candidates
        u = self._sample_latent(s.repeat_interleave(n, dim=0)).view(b, n, self.act_dim)
        return u, self.critic.min_q(s, torch.tanh(u))

    def _weights(self, q: torch.Tensor) -> tuple[float | torch.Tensor, torch.Tensor]:
        """τ and the candidates' weights, (B, N)."""
        tau = self._temperature(q)
        return tau, candidate_weights(q, tau, self.weighting)

    def _cfm(self, s: torch.Tensor, u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return cfm_loss(self.velocity, s, u, w)

    def _entropy(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log π and the tanh term of one action per state; differentiable unless α = 0."""
        z0 = torch.randn(s.shape[0], self.act_dim, device=self.device)
        with torch.set_grad_enabled(self.alpha.positive):  # α = 0: measure the entropy only
            _, logp, tanh_term = self._log_pi(s, z0)
        return logp, tanh_term

    def _temperature(self, q: torch.Tensor) -> float | torch.Tensor:
        t = self.temperature
        if not t.ess_tuning:
            return t.fixed
        return solve_temperature(q, t.ess_target, t.min, t.max)

    def update(self, batch: Batch) -> dict[str, float | torch.Tensor]:
        """One critic update; the actor, α and τ on every ``actor.update_every``-th call (the
        other calls report the last actor update's metrics). The metrics are tensors on the
        device (numbers where constant): nothing here waits for the device."""
        alpha = self.alpha.value
        critic_loss = self._critic_step(batch, alpha)
        if self.n_updates % self.actor_every == 0:
            self.actor_metrics = self._actor_step(batch.obs, alpha)
        self.n_updates += 1
        return {"critic_loss": critic_loss, **self.actor_metrics}

    def _actor_step(self, obs: torch.Tensor,
                    alpha: float | torch.Tensor) -> dict[str, float | torch.Tensor]:
        s_c = obs[: self.candidate_states or None]
        with record_function("candidates"):
            u_c, q_c = self._candidates(s_c)
        with record_function("temperature"):
            tau, w = self._weights(q_c)
        with record_function("cfm"):
            loss = self._cfm(s_c, u_c, w)
        with record_function("entropy"):
            logp, tanh_term = self._entropy(obs[: self.entropy_batch or None])
        with record_function("actor_step"):
            self.actor_optim.zero_grad(set_to_none=True)
            (loss + alpha * logp.mean() if self.alpha.positive else loss).backward()
            self.actor_optim.step()

        logp = logp.detach()
        with record_function("alpha"):
            alpha_loss = self.alpha.update(logp)
        self.tau = tau

        # both entropies from the one sample, so the no-tanh ablation's bias shows; in float64,
        # as the host computed them when it read the means
        entropy = -logp.mean().double()
        tanh_mean = tanh_term.detach().mean().double()
        corrected, latent = ((entropy, entropy - tanh_mean) if self.tanh_correction
                             else (entropy + tanh_mean, entropy))
        return {
            "cfm_loss": loss.detach(),
            "alpha": alpha,
            "alpha_loss": alpha_loss,
            "entropy": entropy,
            "entropy_corrected": corrected,
            "entropy_latent": latent,
            "tau": tau,
            "ess_frac": ess(w).mean() / self.n_candidates,
            "q_mean": q_c.mean(),
            "saturation": (torch.tanh(u_c).abs() > SATURATED).float().mean(),
        }

    def state_dict(self) -> dict:
        return {
            "velocity": self.velocity.state_dict(),
            "actor_optim": self.actor_optim.state_dict(),
            "critic": self.critic.state_dict(),
            **self.alpha.state_dict(),
            "tau": self.tau,
            "n_updates": self.n_updates,
            "actor_metrics": dict(self.actor_metrics),
        }

    def load_state_dict(self, state: dict) -> None:
        self.velocity.load_state_dict(state["velocity"])
        self.actor_optim.load_state_dict(state["actor_optim"])
        self.critic.load_state_dict(state["critic"])
        self.alpha.load_state_dict(state)
        self.tau = _to(state["tau"], self.device)
        # checkpoints from before actor.update_every: every update was an actor update
        self.n_updates = state.get("n_updates", 0)
        # numbers in checkpoints saved before the metrics stayed on the device
        self.actor_metrics = {k: _to(v, self.device)
                              for k, v in state.get("actor_metrics", {}).items()}
