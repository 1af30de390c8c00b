"""The flow policy's math: the K-step Euler sampler and log π(a|s) with the tanh correction.

Every function takes the velocity field as a callable ``v(z, t, s) -> velocity`` (z (B, d),
t (B, 1), s (B, obs)), so the oracles in the tests can pass closed-form fields. Log-densities
are in the action cube (-1, 1)^d; the action box's log-det is the agent's business.

A field may also offer ``bind(s)``: the field at fixed states, called as ``(z, t)`` at every
Euler step with one time for all rows, t (1, 1), so that work on s or t alone is done once
per trajectory or step. A bound field with closed forms offers
``velocity_and_divergence(z, t) -> (v, tr J)`` and ``velocity_and_hutchinson(z, t, eps) ->
(v, mean_p ε_pᵀ J ε_p)``, used instead of autograd unless it sets
``has_closed_form_divergence = False``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from fmer.config import DIVERGENCES, LOGDETS
from fmer.nets import tanh_log_det_jacobian

Velocity = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Bound = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_LOG_2PI = math.log(2.0 * math.pi)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) per row, shape (B,)."""
    return -0.5 * (z * z).sum(dim=-1) - 0.5 * z.shape[-1] * _LOG_2PI


def _check(z0: torch.Tensor, s: torch.Tensor, steps: int) -> None:
    if z0.dim() != 2:
        raise ValueError(f"z0 must have shape (batch, act_dim), got {tuple(z0.shape)}")
    if s.dim() != 2 or s.shape[0] != z0.shape[0]:
        raise ValueError(
            f"s must have shape (batch, obs_dim) with batch {z0.shape[0]}, got {tuple(s.shape)}"
        )
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")


def _bind(v: Velocity, s: torch.Tensor) -> Bound:
    bind = getattr(v, "bind", None)
    if bind is not None:
        return bind(s)
    return lambda z, t: v(z, t.expand(z.shape[0], 1), s)


def _velocity(field: Bound, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    vel = field(z, t)
    if vel.shape != z.shape:
        raise ValueError(
            f"velocity field returned shape {tuple(vel.shape)}, z has {tuple(z.shape)}"
        )
    return vel


def euler_sample(v: Velocity, s: torch.Tensor, z0: torch.Tensor, steps: int) -> torch.Tensor:
    """The latent u = z_K of z_{k+1} = z_k + h v(z_k, k h, s), h = 1/K."""
    _check(z0, s, steps)
    field = _bind(v, s)
    h = 1.0 / steps
    z = z0
    for k in range(steps):
        z = z + h * _velocity(field, z, z.new_full((1, 1), k * h))
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
    eye = torch.eye(d, dtype=z.dtype, device=z.device).unsqueeze(1).expand(d, *z.shape)
    return _vjp(vel, z, eye, create_graph).transpose(0, 1)


def _rademacher(probes: int, z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Probes ε (P, B, d) of ±1: the one draw both Hutchinson paths share, so that a closed
    form and autograd see the same ε for the same seed."""
    return torch.randint(0, 2, (probes, *z.shape), generator=generator, dtype=z.dtype,
                         device=z.device) * 2 - 1


def _hutchinson(
    vel: torch.Tensor, z: torch.Tensor, eps: torch.Tensor, create_graph: bool
) -> torch.Tensor:
    """Unbiased tr J: mean over Rademacher ε of εᵀ J ε, one vector-Jacobian product per probe."""
    return (_vjp(vel, z, eps, create_graph) * eps).sum(dim=-1).mean(dim=0)


def _has_closed_form(field: Bound) -> bool:
    # A field may say that its method does not apply to it (VelocityField of depth ≠ 2).
    return hasattr(field, "velocity_and_divergence") and getattr(
        field, "has_closed_form_divergence", True
    )


def _step_log_det(
    field: Bound,
    z: torch.Tensor,
    t: torch.Tensor,
    h: float,
    divergence: str,
    logdet: str,
    probes: int,
    generator: torch.Generator | None,
    need_graph: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Euler step's velocity and its log-volume change: h tr J or log|det(I + h J)|."""
    closed = logdet == "trace" and _has_closed_form(field)
    if closed and divergence == "exact":
        vel, div = field.velocity_and_divergence(z, t)
        return vel, h * div
    eps = _rademacher(probes, z, generator) if divergence == "hutchinson" else None
    if closed:
        vel, div = field.velocity_and_hutchinson(z, t, eps)
        return vel, h * div
    # Autograd needs z as a graph node even when nothing upstream requires grad (e.g. no_grad
    # sampling or a parameter-free field); only then is a detached leaf made.
    with torch.enable_grad():
        zg = z if z.requires_grad else z.detach().requires_grad_(True)
        vel = _velocity(field, zg, t)
        if logdet == "exact":
            jac = _jacobian(vel, zg, need_graph)
            eye = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
            dlog = torch.linalg.slogdet(eye + h * jac).logabsdet
        elif divergence == "exact":
            dlog = h * _jacobian(vel, zg, need_graph).diagonal(dim1=-2, dim2=-1).sum(-1)
        else:
            dlog = h * _hutchinson(vel, zg, eps, need_graph)
    if not need_graph:
        vel, dlog = vel.detach(), dlog.detach()
    return vel, dlog


def latent_log_prob(
    v: Velocity,
    s: torch.Tensor,
    z0: torch.Tensor,
    steps: int,
    divergence: str = "exact",
    logdet: str = "trace",
    probes: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(u, log p(u|s))``: the latent that z0 flows to and its log-density, (B, d) and (B,).

    log p(u|s) = log N(z0) − Σ_k h tr J_k with J_k = ∂v/∂z at step k (``logdet="exact"``:
    − Σ_k log|det(I + h J_k)|, the Euler map's exact log-volume). Differentiable in the
    field's parameters through the sampler and the divergence terms. ``divergence="exact"``
    uses the bound field's closed form when it has one (trace only, see the module docstring),
    otherwise d batched vector-Jacobian products; ``"hutchinson"`` draws ``probes`` Rademacher
    vectors per step from ``generator`` (torch's global RNG if None) and uses the closed-form
    εᵀJε or one vector-Jacobian product per probe.
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
    field = _bind(v, s)
    h = 1.0 / steps
    z = z0
    logp = standard_normal_log_prob(z0)
    for k in range(steps):
        t = z.new_full((1, 1), k * h)
        vel, dlog = _step_log_det(field, z, t, h, divergence, logdet, probes, generator,
                                  need_graph)
        logp = logp - dlog
        z = z + h * vel
    return z, logp


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
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(a, log π(a|s), tanh term)`` for the action a = tanh(u) that z0 flows to; shapes
    (B, d), (B,), (B,).

    log π = log p(u|s) − Σ_j log(1 − tanh²(u_j)), see ``latent_log_prob``. With
    ``tanh_correction=False`` it is log p(u|s), the latent's log-density, and a is still tanh(u).
    The tanh term Σ_j log(1 − tanh²(u_j)) comes back either way, so that both entropies are
    known from one sample.
    """
    u, logp = latent_log_prob(v, s, z0, steps, divergence, logdet, probes, generator)
    tanh_term = tanh_log_det_jacobian(u)
    if tanh_correction:
        logp = logp - tanh_term
    return torch.tanh(u), logp, tanh_term
