"""QVPO: Q-weighted variational policy optimisation of a diffusion policy (Ding et al., NeurIPS
2024, arXiv 2405.16173), the paper's diffusion baseline, at its authors' MuJoCo settings
(docs/QVPO.md cites each; written from the description, not from the authors' code).

The policy is a DDPM over actions in the cube (fmer.diffusion). One update:
1. critic: TD target r + γ(1 − terminated) min Q̄(s', a'), a' the best by min Q̄ of
   ``qvpo.target_samples`` actions of the target policy (a Polyak copy of the noise net);
2. candidates: ``qvpo.train_samples`` actions per state from the current policy (no gradient),
   scored by the critic's min Q;
3. weights: each state's best candidate a* gets the weight qadv = Q(s, a*) − mean of the
   candidates' Q (clipped at 0, which the best never needs), and ``qvpo.uniform_samples``
   uniform actions per state get ω_ent times that weight (the entropy term: it pulls the policy
   toward the uniform distribution where the policy is good), ω_ent decaying linearly in the
   env step from ``qvpo.entropy_weight`` to 0, floored at ``qvpo.entropy_weight_min``;
4. actor: one step on the weighted denoising loss of those actions (the Q-weighted
   variational loss plus the entropy term), its gradient clipped to ``qvpo.grad_norm``;
5. the target policy: Polyak step (``critic.polyak``).
Acting takes the best by min Q of ``qvpo.behaviour_samples`` actions; evaluation (with
``eval.deterministic``) the best by min Q of ``qvpo.eval_samples`` actions whose noise comes
from a generator set to the same seed at every call (the authors' evaluation, made a function
of the state so that a saved policy repeats it).

Each part carries a ``torch.profiler.record_function`` label (``fmer bench`` times them).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn
from torch.profiler import record_function

from fmer.buffer import Batch
from fmer.config import Config, QVPOConfig
from fmer.diffusion import NoiseNet, Schedule, denoising_loss, sample
from fmer.nets import ActionBox, Critic, TwinQ

EVAL_NOISE_SEED = 0  # [ours] the seed of the evaluation's noise, set anew at every call


def authors_init(module: nn.Module) -> None:
    """Every linear layer's weights ~ N(0, (1/(2√fan_in))²), biases 0: the authors'
    initialisation (their truncation loop rebinds a local and never writes back, so the
    weights are untruncated)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 1 / (2 * math.sqrt(m.in_features)))
            nn.init.zeros_(m.bias)


class DiffusionPolicy(nn.Module):
    """What acting needs: the noise net, the twin Q that picks among its samples, and the
    schedule (rebuilt from T, not saved)."""

    def __init__(self, noise: NoiseNet, q: TwinQ):
        super().__init__()
        self.noise, self.q = noise, q
        self.schedule = Schedule(noise.steps)


def make_policy(obs_dim: int, act_dim: int, cfg: Config) -> DiffusionPolicy:
    q = cfg.qvpo
    noise = NoiseNet(obs_dim, act_dim, cfg.actor.hidden, q.diffusion_steps, q.time_features,
                     q.activation)
    return DiffusionPolicy(noise, TwinQ(obs_dim, act_dim, cfg.critic.hidden, q.activation))


@torch.no_grad()
def best_of(noise: NoiseNet, q: TwinQ, schedule: Schedule, s: torch.Tensor, n: int,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Per state (B, obs), the one of n sampled actions with the highest min Q: (B, d)."""
    a = sample(noise, schedule, s, n, generator=generator)
    best = q(s, a).min(dim=0).values.argmax(dim=1)
    return a[torch.arange(len(s), device=s.device), best]


@torch.no_grad()
def diffusion_act(policy: DiffusionPolicy, s: torch.Tensor, deterministic: bool,
                  cfg: QVPOConfig) -> torch.Tensor:
    """Actions in the cube for states s (B, obs): the best by min Q of ``cfg.eval_samples``
    actions sampled with the noise of a generator seeded EVAL_NOISE_SEED (a deterministic
    function of s), or of ``cfg.behaviour_samples`` actions with fresh noise (behaviour)."""
    if deterministic:
        fixed = torch.Generator(s.device).manual_seed(EVAL_NOISE_SEED)
        return best_of(policy.noise, policy.q, policy.schedule, s, cfg.eval_samples, fixed)
    return best_of(policy.noise, policy.q, policy.schedule, s, cfg.behaviour_samples)


def qadv_weights(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For candidates' Q values (B, K): the index of each state's best candidate (B,) and its
    weight max(Q_best − mean_k Q_k, 0) (B,) (the paper's qadv transformation)."""
    best = q.argmax(dim=1)
    q_best = q.gather(1, best.unsqueeze(1)).squeeze(1)
    return best, (q_best - q.mean(dim=1)).clamp(min=0)


def entropy_weight(step: int, decay_steps: int, start: float, floor: float) -> float:
    """ω_ent at env step ``step``: start·(1 − step/decay_steps), not below ``floor``."""
    return max(floor, start * (1 - step / decay_steps))


def weighted_actions(best: torch.Tensor, w: torch.Tensor, uniform: torch.Tensor,
                     omega: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The actions the denoising loss fits, (B, 1 + U, d), and their weights (B, 1 + U): per
    state its best candidate ``best`` (B, d) with weight w (B,), then its U uniform actions
    ``uniform`` (B, U, d) with weight ω·w."""
    actions = torch.cat([best.unsqueeze(1), uniform], dim=1)
    weights = torch.cat([w.unsqueeze(1), (omega * w).unsqueeze(1).expand(-1, uniform.shape[1])],
                        dim=1)
    return actions, weights


class QVPO:
    metric_names = ("critic_loss", "actor_loss", "q_mean", "weight_mean", "entropy_weight")

    def __init__(self, obs_dim: int, box: ActionBox, cfg: Config, device: torch.device | str):
        self.device = torch.device(device)
        self.box = box
        self.act_dim = box.dim
        self.q_cfg = q = cfg.qvpo
        self.gamma, self.polyak = cfg.critic.gamma, cfg.critic.polyak
        self.eval_deterministic = cfg.eval.deterministic
        # initialised on the CPU, then moved: the same weights on every device for a seed
        noise = NoiseNet(obs_dim, box.dim, cfg.actor.hidden, q.diffusion_steps,
                         q.time_features, q.activation)
        authors_init(noise)
        self.noise = noise.to(self.device)
        self.noise_target = copy.deepcopy(self.noise).requires_grad_(False)
        self.actor_optim = torch.optim.Adam(self.noise.parameters(), lr=cfg.actor.lr,
                                            eps=q.adam_eps)
        self.critic = Critic(obs_dim, box.dim, cfg.critic.hidden, cfg.critic.lr,
                             cfg.critic.polyak, self.device, q.activation, q.grad_norm,
                             q.adam_eps, init=authors_init)
        self.policy = DiffusionPolicy(self.noise, self.critic.q).to(self.device)
        self.schedule = self.policy.schedule
        # The loop makes one update per env step from this step on (fmer.train): the env step
        # of update k, which sets the entropy weight, is first_step + k.
        t = cfg.train
        self.first_step = max(t.learning_starts, t.batch_size)
        self.decay_steps = q.entropy_decay_steps or t.total_steps
        self.n_updates = 0

    @property
    def policy_net(self) -> DiffusionPolicy:
        """What a saved policy keeps (fmer.policy): the noise net and the twin Q."""
        return self.policy

    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        s = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0)
        action = diffusion_act(self.policy, s, deterministic and self.eval_deterministic,
                               self.q_cfg)
        return action.squeeze(0).cpu().numpy().astype(np.float32)

    def update(self, batch: Batch) -> dict[str, float]:
        q = self.q_cfg
        with record_function("critic_target"), torch.no_grad():
            next_a = best_of(self.noise_target, self.critic.target, self.schedule,
                             batch.next_obs, q.target_samples)
            next_v = self.critic.min_q(batch.next_obs, next_a, target=True)
            td_target = batch.rewards + self.gamma * (1.0 - batch.terminated) * next_v
        with record_function("critic_step"):
            critic_loss = self.critic.update(batch.obs, batch.actions, td_target)

        s = batch.obs
        with record_function("candidates"), torch.no_grad():
            candidates = sample(self.noise, self.schedule, s, q.train_samples)
            q_c = self.critic.min_q(s, candidates)  # (B, K)
        with record_function("weights"):
            best, w = qadv_weights(q_c)
            omega = entropy_weight(self.first_step + self.n_updates, self.decay_steps,
                                   q.entropy_weight, q.entropy_weight_min)
            uniform = torch.rand(len(s), q.uniform_samples, self.act_dim,
                                 device=self.device) * 2 - 1
            actions, weights = weighted_actions(
                candidates[torch.arange(len(s), device=self.device), best], w, uniform, omega)
        with record_function("denoising"):
            steps = torch.randint(0, self.schedule.steps, weights.shape, device=self.device)
            loss = denoising_loss(self.noise, self.schedule, s, actions, weights, steps,
                                  torch.randn_like(actions))
        with record_function("actor_step"):
            self.actor_optim.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.noise.parameters(), q.grad_norm)
            self.actor_optim.step()
        with record_function("actor_target"), torch.no_grad():
            for p, tp in zip(self.noise.parameters(), self.noise_target.parameters(),
                             strict=True):
                tp.lerp_(p, self.polyak)
        self.n_updates += 1
        return {"critic_loss": critic_loss, "actor_loss": loss.item(),
                "q_mean": q_c.mean().item(), "weight_mean": w.mean().item(),
                "entropy_weight": omega}

    def state_dict(self) -> dict:
        return {
            "noise": self.noise.state_dict(),
            "noise_target": self.noise_target.state_dict(),
            "actor_optim": self.actor_optim.state_dict(),
            "critic": self.critic.state_dict(),
            "n_updates": self.n_updates,
        }

    def load_state_dict(self, state: dict) -> None:
        self.noise.load_state_dict(state["noise"])
        self.noise_target.load_state_dict(state["noise_target"])
        self.actor_optim.load_state_dict(state["actor_optim"])
        self.critic.load_state_dict(state["critic"])
        self.n_updates = state["n_updates"]
