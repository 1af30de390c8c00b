"""Networks shared by the agents: MLPs, twin critics with Polyak targets, the action box and
the tanh squash into it."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ACTIVATION_MODULES = {"relu": nn.ReLU, "silu": nn.SiLU, "mish": nn.Mish, "tanh": nn.Tanh}
_LOG2 = math.log(2.0)


def tanh_log_det_jacobian(u: torch.Tensor) -> torch.Tensor:
    """Σ_j log(1 − tanh²(u_j)) over the last dim, finite for any |u|: the log-det of the
    squash a = tanh(u) of both agents' actions into the cube.

    ``1 − tanh²`` underflows to 0 in float32 beyond |u| ≈ 9; the identity
    log(1 − tanh²(x)) = 2(log 2 − x − softplus(−2x)) does not (CleanRL adds 1e-6 instead).
    """
    return (2.0 * (_LOG2 - u - F.softplus(-2.0 * u))).sum(dim=-1)


AUTOCAST_DEVICES = ("cpu", "cuda")


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 if autocast made it a half type (bf16, fp16), else as it is: float32
    and float64 pass unchanged (a float64 test keeps float64)."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


class OutputLinear(nn.Linear):
    """A network's last layer: ``nn.Linear``, but in float32 under bf16 autocast
    (``train.precision``, fmer.execution), so that Q-values, velocities and SAC's mean and
    log-std keep float32's resolution (a Q-value of 300 in bf16 is ±1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device.type
        if device not in AUTOCAST_DEVICES or not torch.is_autocast_enabled(device):
            return super().forward(x)
        with torch.autocast(device, enabled=False):
            return super().forward(x.float())


def mlp(inp: int, hidden: list[int], out: int, activation: str = "relu") -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        # ReLU may overwrite the Linear output it follows: that output is not kept for backward.
        act = nn.ReLU(inplace=True) if activation == "relu" else ACTIVATION_MODULES[activation]()
        layers += [nn.Linear(inp, width), act]
        inp = width
    layers.append(OutputLinear(inp, out))
    return nn.Sequential(*layers)


class TwinQ(nn.Module):
    """Two independent Q(s, a) heads; ``forward`` returns both, shape (2, B), or (2, B, N)
    for N actions per state."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], activation: str = "relu"):
        super().__init__()
        self.obs_dim = obs_dim
        self.q1 = mlp(obs_dim + act_dim, hidden, 1, activation)
        self.q2 = mlp(obs_dim + act_dim, hidden, 1, activation)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """obs (B, obs) with act (B, d) or (B, N, d). For N actions per state the first
        layer's state part is computed once per state, not per action: W [s, a] = W_s s + W_a a."""
        if act.dim() == 2:
            x = torch.cat([obs, act], dim=-1)
            return torch.stack([self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)])
        if act.dim() != 3 or act.shape[0] != obs.shape[0]:
            raise ValueError(f"act must be (B, d) or (B, N, d) for obs {tuple(obs.shape)}, "
                             f"got {tuple(act.shape)}")
        return torch.stack([self._per_state(q, obs, act) for q in (self.q1, self.q2)])

    def _per_state(self, q: nn.Sequential, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        first, o = q[0], self.obs_dim
        state = F.linear(obs, first.weight[:, :o], first.bias).unsqueeze(1)  # (B, 1, H)
        h = (F.linear(act, first.weight[:, o:]) + state).flatten(0, 1)  # (B·N, H)
        return q[1:](h).view(act.shape[:2])


class Critic:
    """Twin Q networks, their Polyak-averaged targets and the optimiser; QVPO's own critic
    differs in activation, gradient clipping and Adam's epsilon (the defaults are FMER's and
    SAC's)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], lr: float, polyak: float,
                 device: torch.device, activation: str = "relu", grad_norm: float | None = None,
                 adam_eps: float = 1e-8, init: Callable[[nn.Module], object] | None = None):
        # initialised on the CPU, then moved: the same weights on every device for a seed
        q = TwinQ(obs_dim, act_dim, hidden, activation)
        if init is not None:
            init(q)
        self.q = q.to(device)
        self.target = copy.deepcopy(self.q).requires_grad_(False)
        self.optim = torch.optim.Adam(self.q.parameters(), lr=lr, eps=adam_eps)
        self.polyak = polyak
        self.grad_norm = grad_norm

    def min_q(self, obs: torch.Tensor, act: torch.Tensor, target: bool = False) -> torch.Tensor:
        return (self.target if target else self.q)(obs, act).min(dim=0).values

    def loss(self, obs, act, td_target: torch.Tensor) -> torch.Tensor:
        """The TD loss of both heads, summed."""
        return ((self.q(obs, act) - td_target.unsqueeze(0)) ** 2).mean(dim=1).sum()

    def update(self, obs, act, td_target: torch.Tensor) -> torch.Tensor:
        """One Adam step on the TD loss, then the Polyak step; the loss, detached."""
        loss = self.loss(obs, act, td_target)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_norm is not None:
            nn.utils.clip_grad_norm_(self.q.parameters(), self.grad_norm)
        self.optim.step()
        with torch.no_grad():
            for p, tp in zip(self.q.parameters(), self.target.parameters(), strict=True):
                tp.lerp_(p, self.polyak)
        return loss.detach()

    def state_dict(self) -> dict:
        return {"q": self.q.state_dict(), "target": self.target.state_dict(),
                "optim": self.optim.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.q.load_state_dict(state["q"])
        self.target.load_state_dict(state["target"])
        self.optim.load_state_dict(state["optim"])


class ActionBox:
    """Affine map between the agents' action cube (-1, 1)^d and the env's Box.

    Agents act and learn in the cube; ``log_det`` (= sum_j log c_j) is the one place where
    the rescaling enters a log-density, so SAC's and FMER's entropies mean the same thing.
    """

    def __init__(self, low: np.ndarray, high: np.ndarray):
        low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
            raise ValueError(f"action box must be finite and non-empty, got [{low}, {high}]")
        self.low, self.high = low, high
        self.scale = (high - low) / 2
        self.bias = (high + low) / 2
        self.log_det = float(np.log(self.scale).sum())

    @property
    def dim(self) -> int:
        return self.scale.shape[0]

    def to_env(self, a: np.ndarray) -> np.ndarray:
        return (self.scale * a + self.bias).astype(np.float32)
