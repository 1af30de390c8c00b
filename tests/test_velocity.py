"""The velocity net's closed-form divergence against autograd's exact Jacobian trace."""

import pytest
import torch

from fmer.flow import log_prob
from fmer.velocity import VelocityField

F64 = torch.float64


def _net(activation="silu", embedding="sinusoidal", hidden=(48, 40), obs=5, d=4, gain=2.0):
    torch.manual_seed(0)
    net = VelocityField(obs, d, list(hidden), activation, embedding).double()
    with torch.no_grad():  # larger weights: activations leave their linear range
        for p in net.parameters():
            p.mul_(gain)
    return net


def _inputs(n=32, obs=5, d=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (3 * torch.randn(n, d, generator=g, dtype=F64), torch.rand(n, 1, generator=g, dtype=F64),
            torch.randn(n, obs, generator=g, dtype=F64))


def _autograd_trace(net, z, t, s):
    jac = torch.func.vmap(torch.func.jacrev(lambda z, t, s: net(z[None], t[None], s[None])[0]))
    return jac(z, t, s).diagonal(dim1=-2, dim2=-1).sum(-1)


@pytest.mark.parametrize("activation", ["silu", "mish", "tanh", "relu"])
@pytest.mark.parametrize("embedding", ["sinusoidal", "linear"])
def test_closed_form_divergence_is_the_jacobian_trace(activation, embedding):
    net = _net(activation, embedding)
    z, t, s = _inputs()
    vel, div = net.velocity_and_divergence(z, t, s)
    torch.testing.assert_close(vel, net(z, t, s), rtol=0, atol=1e-12)
    expected = _autograd_trace(net, z, t, s)
    assert expected.std() > 0.1, "inputs too tame for the test to mean anything"
    torch.testing.assert_close(div, expected, rtol=1e-10, atol=1e-10)


def test_log_prob_through_the_closed_form_equals_autograd():
    net = _net()
    z, _, s = _inputs(seed=2)
    z0 = z / 3
    field = lambda z, t, s: net(z, t, s)  # noqa: E731  (no closed form: autograd)
    a1, lp1, _ = log_prob(net, s, z0, 10, "exact")
    a2, lp2, _ = log_prob(field, s, z0, 10, "exact")
    torch.testing.assert_close(a1, a2, rtol=0, atol=1e-12)
    torch.testing.assert_close(lp1, lp2, rtol=0, atol=1e-9)
    lp1.sum().backward()
    closed = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    lp2.sum().backward()
    for gc, p in zip(closed, net.parameters(), strict=True):
        torch.testing.assert_close(gc, p.grad, rtol=1e-8, atol=1e-9)


def test_other_depths_fall_back_to_autograd_and_refuse_the_closed_form():
    net = _net(hidden=(16, 16, 16))
    z, t, s = _inputs()
    with pytest.raises(ValueError, match="2 hidden layers"):
        net.velocity_and_divergence(z, t, s)
    _, lp, _ = log_prob(net, s, z / 3, 10, "exact")
    _, lp_auto, _ = log_prob(lambda z, t, s: net(z, t, s), s, z / 3, 10, "exact")
    # Same autograd Jacobian; the bound field embeds the step's one time once, not per row.
    torch.testing.assert_close(lp, lp_auto, rtol=0, atol=1e-12)


def test_time_enters_the_velocity():
    z, t, s = _inputs()
    for emb in ("sinusoidal", "linear"):
        net = _net(embedding=emb)
        assert not torch.allclose(net(z, t, s), net(z, 1 - t, s))


def test_constructor_rejects_unknown_choices():
    with pytest.raises(ValueError, match="activation"):
        VelocityField(3, 2, [8, 8], "gelu", "linear")
    with pytest.raises(ValueError, match="time_embedding"):
        VelocityField(3, 2, [8, 8], "silu", "fourier")
    with pytest.raises(ValueError, match="hidden"):
        VelocityField(3, 2, [], "silu", "linear")
