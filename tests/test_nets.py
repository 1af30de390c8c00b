"""The shared networks: the twin critic's per-state scoring of many actions."""

import pytest
import torch

from fmer.nets import Critic


def test_candidates_scored_per_state_equal_the_repeated_rows():
    critic = Critic(5, 3, [16, 16], 1e-3, 0.005, torch.device("cpu"))
    s, a = torch.randn(4, 5), torch.rand(4, 6, 3) * 2 - 1
    per_state = critic.min_q(s, a)
    rows = critic.min_q(s.repeat_interleave(6, dim=0), a.reshape(24, 3)).view(4, 6)
    torch.testing.assert_close(per_state, rows, rtol=1e-6, atol=1e-6)
    g_state = torch.autograd.grad(per_state.sum(), list(critic.q.parameters()))
    g_rows = torch.autograd.grad(rows.sum(), list(critic.q.parameters()))
    for x, y in zip(g_state, g_rows, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="act must be"):
        critic.min_q(s, a[:2])
