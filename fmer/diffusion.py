"""A denoising diffusion model (DDPM, Ho et al. 2020) of actions in the cube, conditioned on
the state: QVPO's policy (docs/QVPO.md §1).

Steps are numbered i = 0..T−1 (the DDPM's t = i + 1). The forward process noises an action
a_0 as a_i = √ᾱ_i a_0 + √(1 − ᾱ_i) ε, ε ~ N(0, I), with ᾱ_i = Π_{j≤i} (1 − β_j) and β from the
cosine schedule (Nichol & Dhariwal 2021, s = 0.008, β clipped at 0.999). A network ε_θ(x, i, s)
predicts the noise; it is trained by the (weighted) denoising loss
E[w ‖ε_θ(a_i, i, s) − ε‖²]. The reverse process starts from x_{T−1} ~ N(0, I) and at each step
estimates a_0 from the predicted noise, clips it to [−1, 1], and takes the posterior
q(x_{i−1} | x_i, â_0): its mean, plus σ_i z (z ~ N(0, I)) except at the last step (i = 0).
``noise=False`` drops every σ_i z and starts from x = 0: one deterministic action per state.
Noise is drawn from torch's generator of the device, or from ``generator`` if given.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fmer.nets import ACTIVATION_MODULES, mlp

COSINE_OFFSET = 0.008  # s of the cosine schedule
MAX_BETA = 0.999
MIN_VARIANCE = 1e-20  # the posterior variance is 0 at i = 0: its log is taken of this instead


def cosine_betas(steps: int, s: float = COSINE_OFFSET) -> np.ndarray:
    """β_0..β_{T−1} (float64): ᾱ(i) = f(i)/f(0), f(i) = cos²((i/T + s)/(1 + s) · π/2),
    β_i = 1 − ᾱ(i+1)/ᾱ(i), clipped to [0, 0.999] (the last one is 1 before the clip)."""
    if steps < 1:
        raise ValueError(f"need at least one diffusion step, got {steps}")
    f = np.cos((np.arange(steps + 1) / steps + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    return np.clip(1 - abar[1:] / abar[:-1], 0, MAX_BETA)


class Schedule(nn.Module):
    """The per-step constants of the forward and reverse processes, float32 buffers of shape
    (T,) (computed in float64; not saved in a state_dict: they follow from T)."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps = steps
        betas = cosine_betas(steps)
        abar = np.cumprod(1 - betas)
        abar_prev = np.concatenate([[1.0], abar[:-1]])
        variance = betas * (1 - abar_prev) / (1 - abar)  # of q(x_{i-1} | x_i, a_0)
        constants = {
            "betas": betas,
            "abar": abar,
            "sqrt_abar": np.sqrt(abar),
            "sqrt_one_minus_abar": np.sqrt(1 - abar),
            "recip_sqrt_abar": np.sqrt(1 / abar),
            "sqrt_recip_abar_m1": np.sqrt(1 / abar - 1),
            "coef_a0": betas * np.sqrt(abar_prev) / (1 - abar),  # the posterior mean's
            "coef_x": (1 - abar_prev) * np.sqrt(1 - betas) / (1 - abar),
            "sigma": np.exp(0.5 * np.log(np.maximum(variance, MIN_VARIANCE))),
        }
        for name, value in constants.items():
            self.register_buffer(name, torch.tensor(value, dtype=torch.float32),
                                 persistent=False)


def add_noise(schedule: Schedule, a0: torch.Tensor, i: torch.Tensor,
              eps: torch.Tensor) -> torch.Tensor:
    """a_i = √ᾱ_i a_0 + √(1 − ᾱ_i) ε, for step indices ``i`` of a0's shape less the last dim."""
    return (schedule.sqrt_abar[i].unsqueeze(-1) * a0
            + schedule.sqrt_one_minus_abar[i].unsqueeze(-1) * eps)


def step_embedding(i: torch.Tensor, features: int) -> torch.Tensor:
    """Sinusoidal features of the step index: sin and cos of i·10000^(−k/(h−1)), k < h =
    features/2 (the transformer's position embedding)."""
    half = features // 2
    freqs = torch.exp(torch.arange(half, device=i.device) * -(math.log(10000) / (half - 1)))
    angle = i.float().unsqueeze(-1) * freqs
    return torch.cat([angle.sin(), angle.cos()], dim=-1)


class NoiseNet(nn.Module):
    """ε_θ(x, i, s): an MLP on ``[x, e(i), s]``, where e(i) is a small MLP (features → first
    width → features) of the step's sinusoidal embedding.

    The first layer is applied by input block, W [x, e, s] + b = W_x x + W_e e + (W_s s + b),
    the same function, so that the state block is computed once per state and the step block
    once per step, whatever the number of samples per state."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], steps: int,
                 time_features: int = 32, activation: str = "mish"):
        super().__init__()
        if time_features < 4 or time_features % 2:
            raise ValueError(f"time_features must be even and >= 4, got {time_features}")
        self.obs_dim, self.act_dim, self.steps = obs_dim, act_dim, steps
        self.time_features = time_features
        self.time_mlp = nn.Sequential(nn.Linear(time_features, hidden[0]),
                                      ACTIVATION_MODULES[activation](),
                                      nn.Linear(hidden[0], time_features))
        self.first = nn.Linear(act_dim + time_features + obs_dim, hidden[0])
        self.rest = nn.Sequential(ACTIVATION_MODULES[activation](),
                                  *mlp(hidden[0], list(hidden[1:]), act_dim, activation))

    def bind(self, s: torch.Tensor):
        """ε_θ(·, ·, s) for states s (B, obs): a function of x (B, K, d) and step indices i
        (an int, or a (B, K) tensor) returning (B, K, d)."""
        d, e = self.act_dim, self.time_features
        w = self.first.weight
        state = F.linear(s, w[:, d + e:], self.first.bias).unsqueeze(1)  # (B, 1, H)
        steps = torch.arange(self.steps, device=s.device)
        per_step = F.linear(self.time_mlp(step_embedding(steps, e)), w[:, d:d + e])  # (T, H)

        def eps(x: torch.Tensor, i: int | torch.Tensor) -> torch.Tensor:
            return self.rest(F.linear(x, w[:, :d]) + per_step[i] + state)

        return eps

    def forward(self, x: torch.Tensor, i: int | torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self.bind(s)(x, i)


def denoising_loss(net: NoiseNet, schedule: Schedule, s: torch.Tensor, a0: torch.Tensor,
                   w: torch.Tensor, i: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The weighted denoising loss mean_{b,k,j} w_bk (ε_θ(a_i, i, s_b) − ε)²_bkj: actions a0
    (B, K, d) of states s (B, obs), weights w (B, K) (constants), steps i (B, K), noise eps
    like a0. The mean is over actions and coordinates, as the authors' weighted MSE."""
    x = add_noise(schedule, a0, i, eps)
    err = (net(x, i, s) - eps).pow(2)
    return (w.detach().unsqueeze(-1) * err).mean()


@torch.no_grad()
def sample(net: NoiseNet, schedule: Schedule, s: torch.Tensor, n: int, noise: bool = True,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """n actions per state (B, n, d) in [−1, 1] by the reverse process; ``noise=False``:
    from x = 0 without the σ_i z terms (then the n actions are equal)."""
    shape = (s.shape[0], n, net.act_dim)
    x = (torch.randn(shape, generator=generator, device=s.device) if noise
         else torch.zeros(shape, device=s.device))
    eps = net.bind(s)
    c = schedule
    for i in reversed(range(c.steps)):
        a0 = (c.recip_sqrt_abar[i] * x - c.sqrt_recip_abar_m1[i] * eps(x, i)).clamp_(-1, 1)
        x = c.coef_a0[i] * a0 + c.coef_x[i] * x
        if noise and i > 0:
            x = x + c.sigma[i] * torch.randn(shape, generator=generator, device=s.device)
    return x.clamp_(-1, 1)
