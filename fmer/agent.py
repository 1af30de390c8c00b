"""FMER: a flow-matching policy improved by advantage-weighted CFM (a mirror-descent step)
with a maximum-entropy term, twin soft critics, and τ tuned from the candidates' ESS.

One update (shared/spec/FMER.md §3–5):
1. critic: soft TD target with a' ~ π(·|s') and its flow log-density (no gradient);
2. candidates: N latents per state from the current policy (no gradient), scored by min Q;
3. τ from the ESS of the weights (or fixed), weights by ``actor.weighting``;
4. actor: weighted CFM regression toward the candidates (no backprop through the sampler)
   plus α E[log π(a|s)] through the K Euler steps and the divergence terms;
5. α: SAC's rule on log α.

Log-densities are in env units: the flow's cube density minus ``box.log_det`` (``_log_pi``).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from fmer import flow
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


class FMER:
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
        self.velocity = VelocityField(obs_dim, box.dim, a.hidden, a.activation,
                                      a.time_embedding).to(self.device)
        self.actor_optim = torch.optim.Adam(self.velocity.parameters(), lr=a.lr)
        self.critic = Critic(obs_dim, box.dim, cfg.critic.hidden, cfg.critic.lr,
                             cfg.critic.polyak, self.device)
        al = cfg.alpha
        self.target_entropy = -float(box.dim) if al.target_entropy is None else al.target_entropy
        self.fixed_alpha = al.fixed  # a number turns tuning off; 0 drops the entropy term
        self.log_alpha = torch.tensor(math.log(al.initial), requires_grad=True,
                                      device=self.device)
        self.alpha_optim = torch.optim.Adam([self.log_alpha], lr=al.lr)
        self.tau = cfg.temperature.fixed
        # timer(name) is entered around each part of an update; fmer.bench sets a recorder.
        self.timer = contextlib.nullcontext

    @property
    def alpha(self) -> float:
        return self.fixed_alpha if self.fixed_alpha is not None else self.log_alpha.exp().item()

    def _log_pi(self, s: torch.Tensor, z0: torch.Tensor):
        """(a, log π(a|s), tanh term Σ_j log(1 − a_j²)) for the action z0 flows to.

        log π is in env units and is the density the agent uses everywhere (actor, α, critic):
        the latent's log p(u|s) when ``entropy.tanh_correction`` is false. The tanh term comes
        back either way, so both entropies are known from one sample. Differentiable through
        the sampler when grad is enabled.
        """
        u, logp = flow.latent_log_prob(self.velocity, s, z0, self.steps, **self.flow_kwargs)
        tanh_term = flow.tanh_log_det_jacobian(u)
        if self.tanh_correction:
            logp = logp - tanh_term
        return torch.tanh(u), logp - self.box.log_det, tanh_term

    def _sample_latent(self, s: torch.Tensor) -> torch.Tensor:
        z0 = torch.randn(s.shape[0], self.act_dim, device=self.device)
        return flow.euler_sample(self.velocity, s, z0, self.steps)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        s = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0)
        if deterministic and self.eval_deterministic:
            z0 = torch.zeros(1, self.act_dim, device=self.device)
            u = flow.euler_sample(self.velocity, s, z0, self.steps)
        else:
            u = self._sample_latent(s)
        return torch.tanh(u).squeeze(0).cpu().numpy().astype(np.float32)

    def _critic_step(self, batch: Batch, alpha: float) -> float:
        with self.timer("critic_target"), torch.no_grad():
            if self.entropy_bonus and alpha > 0:
                z0 = torch.randn(batch.next_obs.shape[0], self.act_dim, device=self.device)
                next_a, next_logp, _ = self._log_pi(batch.next_obs, z0)
                next_v = (self.critic.min_q(batch.next_obs, next_a, target=True)
                          - alpha * next_logp)
            else:  # the α log π term is zero or switched off: skip the divergence cost
                next_a = torch.tanh(self._sample_latent(batch.next_obs))
                next_v = self.critic.min_q(batch.next_obs, next_a, target=True)
            td_target = batch.rewards + self.gamma * (1.0 - batch.terminated) * next_v
        with self.timer("critic_step"):
            return self.critic.update(batch.obs, batch.actions, td_target)

    @torch.no_grad()
    def _candidates(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """N latents per state from the current policy, (B, N, d), and their min-Q, (B, N)."""
        b, n = s.shape[0], self.n_candidates
        u = self._sample_latent(s.repeat_interleave(n, dim=0)).view(b, n, self.act_dim)
        return u, self.critic.min_q(s, torch.tanh(u))

    def _temperature(self, q: torch.Tensor) -> float:
        t = self.temperature
        if not t.ess_tuning:
            return t.fixed
        return solve_temperature(q, t.ess_target, t.min, t.max)

    def update(self, batch: Batch) -> dict[str, float]:
        alpha = self.alpha
        critic_loss = self._critic_step(batch, alpha)

        obs = batch.obs
        s_c = obs[: self.candidate_states or None]
        with self.timer("candidates"):
            u_c, q_c = self._candidates(s_c)
        with self.timer("alpha_tau"):
            tau = self._temperature(q_c)
            w = candidate_weights(q_c, tau, self.weighting)
        # The two actor terms share no graph: backward each where it is built (the gradients
        # add up in .grad as for their sum), so that each part's time is its own.
        self.actor_optim.zero_grad(set_to_none=True)
        with self.timer("cfm"):
            loss_cfm = cfm_loss(self.velocity, s_c, u_c, w)
            loss_cfm.backward()
        with self.timer("entropy"):
            s_e = obs[: self.entropy_batch or None]
            z0 = torch.randn(s_e.shape[0], self.act_dim, device=self.device)
            if alpha > 0:
                _, logp, tanh_term = self._log_pi(s_e, z0)
                (alpha * logp.mean()).backward()
            else:  # no entropy term: measure the entropy only, without a graph
                with torch.no_grad():
                    _, logp, tanh_term = self._log_pi(s_e, z0)
        with self.timer("actor_step"):
            self.actor_optim.step()

        logp = logp.detach()
        alpha_loss = 0.0
        with self.timer("alpha_tau"):
            if self.fixed_alpha is None:
                a_loss = -(self.log_alpha * (logp + self.target_entropy)).mean()
                self.alpha_optim.zero_grad(set_to_none=True)
                a_loss.backward()
                self.alpha_optim.step()
                alpha_loss = a_loss.item()
        self.tau = tau

        # both entropies from the one sample, so the no-tanh ablation's bias shows
        entropy = -logp.mean().item()
        tanh_mean = tanh_term.detach().mean().item()
        corrected, latent = ((entropy, entropy - tanh_mean) if self.tanh_correction
                             else (entropy + tanh_mean, entropy))
        return {
            "critic_loss": critic_loss,
            "cfm_loss": loss_cfm.item(),
            "alpha": alpha,
            "alpha_loss": alpha_loss,
            "entropy": entropy,
            "entropy_corrected": corrected,
            "entropy_latent": latent,
            "tau": tau,
            "ess_frac": (ess(w).mean() / self.n_candidates).item(),
            "q_mean": q_c.mean().item(),
            "saturation": (torch.tanh(u_c).abs() > SATURATED).float().mean().item(),
        }

    def state_dict(self) -> dict:
        return {
            "velocity": self.velocity.state_dict(),
            "actor_optim": self.actor_optim.state_dict(),
            "critic": self.critic.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "alpha_optim": self.alpha_optim.state_dict(),
            "tau": self.tau,
        }

    def load_state_dict(self, state: dict) -> None:
        self.velocity.load_state_dict(state["velocity"])
        self.actor_optim.load_state_dict(state["actor_optim"])
        self.critic.load_state_dict(state["critic"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.alpha_optim.load_state_dict(state["alpha_optim"])
        self.tau = state["tau"]
