"""The velocity field v_θ(z, t, s) of the flow policy, with a closed-form exact divergence.

An MLP on ``[s, z, emb(t)]``. For two hidden layers, ``v = W3 σ(W2 σ(W1 x + b1) + b2) + b3``
has Jacobian ``J = W3 diag(σ'(h2)) W2 diag(σ'(h1)) W1_z`` in z, so

    tr J = Σ_{a,b} σ'(h2)_a (W2)_{ab} σ'(h1)_b (W1_z W3)_{ba} = σ'(h2)ᵀ (W2 ∘ (W1_z W3)ᵀ) σ'(h1),

one extra (B×H1)·(H1×H2) product per call instead of d backward passes.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

SINUSOIDAL_FEATURES = 16


def _silu(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    sig = torch.sigmoid(x)
    return x * sig, sig * (1 + x * (1 - sig))


def _mish(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    th = torch.tanh(F.softplus(x))
    return x * th, th + x * (1 - th * th) * torch.sigmoid(x)


def _relu(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.relu(x), (x > 0).to(x.dtype)


def _tanh(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    th = torch.tanh(x)
    return th, 1 - th * th


# Each activation as (value, value-and-derivative); relu and tanh are there because the config
# admits them, but the spec wants a smooth one so that the divergence is smooth too.
ACTIVATIONS = {
    "silu": (F.silu, _silu),
    "mish": (F.mish, _mish),
    "relu": (torch.relu, _relu),
    "tanh": (torch.tanh, _tanh),
}
TIME_EMBEDDINGS = ("sinusoidal", "linear")


class VelocityField(nn.Module):
    """MLP v_θ(z, t, s); ``forward(z, t, s)`` makes it a velocity callable for ``fmer.flow``."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: list[int] | tuple[int, ...] = (256, 256),
        activation: str = "silu",
        time_embedding: str = "sinusoidal",
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if time_embedding not in TIME_EMBEDDINGS:
            raise ValueError(
                f"time_embedding must be one of {TIME_EMBEDDINGS}, got {time_embedding!r}"
            )
        if not hidden or any(int(w) < 1 for w in hidden):
            raise ValueError(f"hidden must be a non-empty list of positive widths, got {hidden}")
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.activation, self.time_embedding = activation, time_embedding
        self._act, self._act_and_grad = ACTIVATIONS[activation]
        if time_embedding == "sinusoidal":
            # Angular frequencies 1..100 per unit time, geometric: coarse and fine in t ∈ [0, 1].
            half = SINUSOIDAL_FEATURES // 2
            freqs = torch.exp(torch.linspace(0.0, math.log(100.0), half))
            self.register_buffer("freqs", freqs)
            emb_dim = SINUSOIDAL_FEATURES
        else:
            emb_dim = 1
        widths = [obs_dim + act_dim + emb_dim, *(int(w) for w in hidden), act_dim]
        # fmer.flow reads this before calling velocity_and_divergence.
        self.has_closed_form_divergence = len(hidden) == 2
        self.layers = nn.ModuleList(
            nn.Linear(i, o) for i, o in zip(widths[:-1], widths[1:], strict=True)
        )

    def _embed(self, t: torch.Tensor) -> torch.Tensor:
        if self.time_embedding == "linear":
            return t
        angle = t * self.freqs.to(t.dtype)
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)

    def _input(self, z: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return torch.cat([s, z, self._embed(t)], dim=-1)

    def forward(self, z: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = self._input(z, t, s)
        for layer in self.layers[:-1]:
            x = self._act(layer(x))
        return self.layers[-1](x)

    def velocity_and_divergence(
        self, z: torch.Tensor, t: torch.Tensor, s: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(v, tr ∂v/∂z)``, shapes (B, d) and (B,); exact, differentiable in θ."""
        if not self.has_closed_form_divergence:
            raise ValueError(
                f"closed-form divergence needs exactly 2 hidden layers, this net has "
                f"{len(self.layers) - 1}; use fmer.flow's autograd divergence instead"
            )
        l1, l2, l3 = self.layers
        a1, d1 = self._act_and_grad(l1(self._input(z, t, s)))
        a2, d2 = self._act_and_grad(l2(a1))
        w1z = l1.weight[:, self.obs_dim : self.obs_dim + self.act_dim]  # (H1, d)
        coupling = l2.weight * (w1z @ l3.weight).T  # (H2, H1)
        div = ((d1 @ coupling.T) * d2).sum(dim=-1)
        return l3(a2), div
