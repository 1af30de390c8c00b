"""The entropy coefficient α of both agents: a Lagrange multiplier for the entropy constraint
E[−log π] ≥ H̄, learned on log α (docs/FMER.md §4; SAC's automatic temperature).

One loss for both: −log α · (log π(a|s) + H̄), with log π treated as a constant. Its gradient
in log α is −(log π + H̄): α grows while the entropy is below its target and shrinks above it.
"""

from __future__ import annotations

import math

import torch

from fmer.config import AlphaConfig


def alpha_loss(log_alpha: torch.Tensor, logp: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """−log α · mean(log π + H̄) over the batch; no gradient flows into ``logp`` (B,)."""
    if log_alpha.dim() != 0 or logp.dim() != 1:
        raise ValueError(f"need a scalar log_alpha and logp of shape (B,); got "
                         f"{tuple(log_alpha.shape)} and {tuple(logp.shape)}")
    return -(log_alpha * (logp.detach() + target_entropy)).mean()


class EntropyCoefficient:
    """α: tuned by Adam on ``alpha_loss`` from ``alpha.initial``, or fixed at ``alpha.fixed``
    (0 is the "no entropy" ablation). H̄ is ``alpha.target_entropy``, −dim(A) by default."""

    def __init__(self, cfg: AlphaConfig, act_dim: int, device: torch.device | str = "cpu"):
        self.target_entropy = (-float(act_dim) if cfg.target_entropy is None
                               else cfg.target_entropy)
        self.fixed = cfg.fixed
        self.log_alpha = torch.tensor(math.log(cfg.initial), requires_grad=True, device=device)
        self.optim = torch.optim.Adam([self.log_alpha], lr=cfg.lr)

    @property
    def value(self) -> float | torch.Tensor:
        """α: the fixed number, or exp(log α) as a tensor of shape () on the device (reading
        it does not wait for the device)."""
        return self.fixed if self.fixed is not None else self.log_alpha.detach().exp()

    @property
    def positive(self) -> bool:
        """Whether α > 0, known without reading the tensor: tuned α = exp(log α) is."""
        return self.fixed is None or self.fixed > 0

    def update(self, logp: torch.Tensor) -> float | torch.Tensor:
        """One Adam step on ``alpha_loss`` at the batch's log π; the loss, detached (0.0 when
        fixed)."""
        if self.fixed is not None:
            return 0.0
        loss = alpha_loss(self.log_alpha, logp, self.target_entropy)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()
        return loss.detach()

    # the agents' checkpoint keys since before this class existed: old checkpoints still load
    def state_dict(self) -> dict:
        return {"log_alpha": self.log_alpha.detach().clone(),
                "alpha_optim": self.optim.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.optim.load_state_dict(state["alpha_optim"])
