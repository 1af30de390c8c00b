"""The flow policy's math: the K-step Euler sampler and log π(a|s) with the tanh correction.

Every function takes the velocity field as a callable ``v(z, t, s) -> velocity`` (z (B, d),
t (B, 1), s (B, obs)), so the oracles in the tests can pass closed-form fields. Log-densities
are in the action cube (-1, 1)^d; the action box's log-det is the agent's business.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.nn import functional as F

Velocity = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

DIVERGENCES = ("exact", "hutchinson")
LOGDETS = ("trace", "exact")
_LOG2 = math.log(2.0)
_LOG_2PI = math.log(2.0 * math.pi)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) per row, shape (B,)."""
    return -0.5 * (z * z).sum(dim=-1) - 0.5 * z.shape[-1] * _LOG_2PI


def tanh_log_det_jacobian(u: torch.Tensor) -> torch.Tensor:
    """Σ_j log(1 − tanh²(u_j)) per row, shape (B,), finite for any |u|.

    ``1 − tanh²`` underflows to 0 in float32 beyond |u| ≈ 9; the identity
    log(1 − tanh²(x)) = 2(log 2 − x − softplus(−2x)) does not.
    """
    return (2.0 * (_LOG2 - u - F.softplus(-2.0 * u))).sum(dim=-1)


def _check(z0: torch.Tensor, s: torch.Tensor, steps: int) -> None:
    if z0.dim() != 2:
        raise ValueError(f"z0 must have shape (batch, act_dim), got {tuple(z0.shape)}")
    if s.dim() != 2 or s.shape[0] != z0.shape[0]:
        raise ValueError(
            f"s must have shape (batch, obs_dim) with batch {z0.shape[0]}, got {tuple(s.shape)}"
        )
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")


def _velocity(v: Velocity, z: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    vel = v(z, t, s)
    if vel.shape != z.shape:
        raise ValueError(
            f"velocity field returned shape {tuple(vel.shape)}, z has {tuple(z.shape)}"
        )
    return vel


def euler_sample(v: Velocity, s: torch.Tensor, z0: torch.Tensor, steps: int) -> torch.Tensor:
    """The latent u = z_K of z_{k+1} = z_k + h v(z_k, k h, s), h = 1/K."""
    _check(z0, s, steps)
    h = 1.0 / steps
    z = z0
    for k in range(steps):
        z = z + h * _velocity(v, z, z.new_full((z.shape[0], 1), k * h), s)
    return z


def _vjp(
    vel: torch.Tensor, z: torch.Tensor, cotangents: torch.Tensor, create_graph: bool
) -> torch.Tensor:
    """cᵀ ∂v/∂z for each cotangent c in the leading dim of ``cotangents`` (P, B, d).

    A field that ignores z (v ≡ 0, v = b(s)) has J = 0; autograd reports that as "unused"."""
    if not vel.requires_grad:
        return torch.zeros_like(cotangents)
    batched = cotangents.shape[0] > 1
    (out,) = torch.autograd.grad(
        vel,
        z,
        cotangents if batched else cotangents[0],
        create_graph=create_graph,
        allow_unused=True,
        is_grads_batched=batched,
    )
    if out is None:
        return torch.zeros_like(cotangents)
    return out if batched else out.unsqueeze(0)


def _jacobian(vel: torch.Tensor, z: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """(B, d, d) Jacobian ∂v_i/∂z_j, by d vector-Jacobian products batched with vmap."""
    d = z.shape[-1]
    eye = torch.eye(d, dtype=z.dtype).unsqueeze(1).expand(d, *z.shape)
    return _vjp(vel, z, eye, create_graph).transpose(0, 1)


def _hutchinson(
    vel: torch.Tensor,
    z: torch.Tensor,
    probes: int,
    generator: torch.Generator | None,
    create_graph: bool,
) -> torch.Tensor:
    """Unbiased tr J: mean over Rademacher ε of εᵀ J ε, one vector-Jacobian product per probe."""
    eps = torch.randint(0, 2, (probes, *z.shape), generator=generator, dtype=z.dtype) * 2 - 1
    return (_vjp(vel, z, eps, create_graph) * eps).sum(dim=-1).mean(dim=0)


def _has_closed_form(v: Velocity) -> bool:
    # A field may say that its method does not apply to it (VelocityField of depth ≠ 2).
    return hasattr(v, "velocity_and_divergence") and getattr(
        v, "has_closed_form_divergence", True
    )


def _step_log_det(
    v: Velocity,
    z: torch.Tensor,
    t: torch.Tensor,
    s: torch.Tensor,
    h: float,
    divergence: str,
    logdet: str,
    probes: int,
    generator: torch.Generator | None,
    need_graph: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Euler step's velocity and its log-volume change: h tr J or log|det(I + h J)|."""
    if divergence == "exact" and logdet == "trace" and _has_closed_form(v):
        vel, div = v.velocity_and_divergence(z, t, s)
        return vel, h * div
    # Autograd needs z as a graph node even when nothing upstream requires grad (e.g. no_grad
    # sampling or a parameter-free field); only then is a detached leaf made.
    with torch.enable_grad():
        zg = z if z.requires_grad else z.detach().requires_grad_(True)
        vel = _velocity(v, zg, t, s)
        if logdet == "exact":
            jac = _jacobian(vel, zg, need_graph)
            eye = torch.eye(z.shape[-1], dtype=z.dtype)
            dlog = torch.linalg.slogdet(eye + h * jac).logabsdet
        elif divergence == "exact":
            dlog = h * _jacobian(vel, zg, need_graph).diagonal(dim1=-2, dim2=-1).sum(-1)
        else:
            dlog = h * _hutchinson(vel, zg, probes, generator, need_graph)
    if not need_graph:
        vel, dlog = vel.detach(), dlog.detach()
    return vel, dlog


def log_prob(
    v: Velocity,
    s: torch.Tensor,
    z0: torch.Tensor,
    steps: int,
    divergence: str = "exact",
    logdet: str = "trace",
    tanh_correction: bool = True,
    probes: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, log π(a|s))`` for the action a = tanh(u) that z0 flows to; shapes (B, d), (B,).

    log π = log N(z0) − Σ_k h tr J_k − Σ_j log(1 − tanh²(u_j)) with J_k = ∂v/∂z at step k
    (``logdet="exact"``: − Σ_k log|det(I + h J_k)|, the Euler map's exact log-volume). With
    ``tanh_correction=False`` it is log p(u|s), the latent's log-density, and a is still tanh(u).
    Differentiable in the field's parameters through the sampler and the divergence terms.
    ``divergence="exact"`` uses ``v.velocity_and_divergence(z, t, s) -> (v, tr J)`` when the
    field has it (trace only; a field sets ``has_closed_form_divergence = False`` to opt out),
    otherwise d batched vector-Jacobian products; ``"hutchinson"`` draws ``probes``
    Rademacher vectors per step from ``generator`` (torch's global RNG if None).
    """
    _check(z0, s, steps)
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {DIVERGENCES}, got {divergence!r}")
    if logdet not in LOGDETS:
        raise ValueError(f"logdet must be one of {LOGDETS}, got {logdet!r}")
    if logdet == "exact" and divergence != "exact":
        raise ValueError(
            "logdet='exact' needs the full Jacobian; it cannot use divergence='hutchinson'"
        )
    if not isinstance(probes, int) or probes < 1:
        raise ValueError(f"probes must be a positive int, got {probes!r}")
    need_graph = torch.is_grad_enabled()
    h = 1.0 / steps
    z = z0
    logp = standard_normal_log_prob(z0)
    for k in range(steps):
        t = z.new_full((z.shape[0], 1), k * h)
        vel, dlog = _step_log_det(v, z, t, s, h, divergence, logdet, probes, generator, need_graph)
        logp = logp - dlog
        z = z + h * vel
    if tanh_correction:
        logp = logp - tanh_log_det_jacobian(z)
    return torch.tanh(z), logp
