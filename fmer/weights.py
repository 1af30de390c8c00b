"""Candidate weights of the mirror-descent step π_{k+1} ∝ π_k exp(Q/τ), and τ from the ESS.

q has shape (batch, N): the critic's scores of N candidates per state.
"""

from __future__ import annotations

import math

import torch

from fmer.config import WEIGHTINGS


def _per_row(tau: float | torch.Tensor, q: torch.Tensor) -> float | torch.Tensor:
    """τ as a float or a tensor of shape (), (B,) or (B, 1), made to broadcast over rows.

    A float must be positive; a tensor is not checked (reading its values would wait for the
    device): ``solve_temperature``'s lies in its [lo, hi] by construction."""
    if not isinstance(tau, torch.Tensor):
        if not tau > 0:
            raise ValueError(f"tau must be positive, got {tau!r}")
        return float(tau)
    if tau.dim() == 1 and tau.shape[0] == q.shape[0]:
        tau = tau.unsqueeze(-1)
    if tau.dim() > 0 and tuple(tau.shape) != (q.shape[0], 1):
        raise ValueError(f"tau must be a scalar, (B,) or (B, 1) for q {tuple(q.shape)}, "
                         f"got {tuple(tau.shape)}")
    return tau.to(q.dtype)


def candidate_weights(
    q: torch.Tensor, tau: float | torch.Tensor, scheme: str = "softmax"
) -> torch.Tensor:
    """Weights (B, N): softmax_i(q_i/τ); ``unnormalized`` exp((q_i − max q)/τ) (not summing
    to 1, so states differ in total weight); ``top1`` one-hot at the argmax (τ unused)."""
    if q.dim() != 2:
        raise ValueError(f"q must have shape (batch, candidates), got {tuple(q.shape)}")
    if scheme == "top1":
        return torch.zeros_like(q).scatter_(1, q.argmax(dim=1, keepdim=True), 1.0)
    tau = _per_row(tau, q)
    if scheme == "softmax":
        return torch.softmax(q / tau, dim=1)
    if scheme == "unnormalized":
        return torch.exp((q - q.max(dim=1, keepdim=True).values) / tau)
    raise ValueError(f"scheme must be one of {WEIGHTINGS}, got {scheme!r}")


def ess(w: torch.Tensor) -> torch.Tensor:
    """Effective sample size (Σw)²/Σw² per row, in [1, N]; 1/Σw² for normalised weights."""
    return w.sum(dim=-1) ** 2 / (w * w).sum(dim=-1)


def _exp(x: torch.Tensor) -> torch.Tensor:
    """exp of a float64 tensor. On the CPU by the C library's exp (``math.exp``), which τ was
    computed with while the bisection ran on the host: torch's own float64 exp (a vectorised
    SLEEF routine) differs from it in the last bit for ~0.5% of inputs, and CPU logs keep their
    bits. Elsewhere (and when compiled) the device's exp."""
    if x.device.type == "cpu" and not torch.compiler.is_compiling():
        return x.clone().apply_(math.exp)
    return torch.exp(x)


def solve_temperature(
    q: torch.Tensor, target_frac: float, lo: float, hi: float, iters: int = 30
) -> torch.Tensor:
    """τ in [lo, hi] with batch-mean ESS(softmax(q/τ))/N = target_frac, by bisection on log τ;
    a float64 tensor of shape () on q's device.

    The ESS rises monotonically with τ, so an unreachable target returns lo or hi exactly.
    ESS is scale-free, so the τ is the same for the unnormalized scheme. 30 halvings of
    [log 1e-4, log 1e3] leave log τ within 2e-8, far below what the ESS can resolve.
    Every step runs on the device, always all of them (the ends are decided by ``where``), and
    nothing is read back: the same τ, bit for bit, as the bisection that read each ESS on the
    host (log τ and the ESS fraction in float64, each ESS in q's dtype).
    """
    if q.dim() != 2:
        raise ValueError(f"q must have shape (batch, candidates), got {tuple(q.shape)}")
    if not 0 < target_frac <= 1:
        raise ValueError(f"target_frac must be in (0, 1], got {target_frac!r}")
    if not 0 < lo < hi:
        raise ValueError(f"need 0 < lo < hi, got lo={lo!r}, hi={hi!r}")
    n = q.shape[1]
    gap = (q - q.max(dim=1, keepdim=True).values).detach()  # ≤ 0: exp never overflows

    def frac(inverse_tau: float | torch.Tensor) -> torch.Tensor:
        e = torch.exp(gap * inverse_tau)
        return (e.sum(dim=1) ** 2 / (e * e).sum(dim=1)).mean().double() / n

    log_lo, log_hi = math.log(lo), math.log(hi)
    reaches_hi = frac(math.exp(-log_hi)) <= target_frac
    reaches_lo = frac(math.exp(-log_lo)) >= target_frac
    low = gap.new_full((), log_lo, dtype=torch.float64)
    high = gap.new_full((), log_hi, dtype=torch.float64)
    for _ in range(iters):
        mid = 0.5 * (low + high)
        below = frac(_exp(-mid)) < target_frac
        low, high = torch.where(below, mid, low), torch.where(below, high, mid)
    tau = _exp(0.5 * (low + high))
    return torch.where(reaches_hi, hi, torch.where(reaches_lo, lo, tau))
