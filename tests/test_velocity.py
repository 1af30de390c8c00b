"""The velocity net's closed-form divergence against autograd's exact Jacobian trace."""

import math

import pytest
import torch

from fmer import flow
from fmer.flow import log_prob
from fmer.velocity import ACTIVATION_FUNCTIONS, VelocityField

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


@pytest.mark.parametrize("name", sorted(ACTIVATION_FUNCTIONS))
def test_in_place_activation_forms_equal_the_graph_forms_bit_for_bit(name):
    """Work without a graph uses the in-place forms; logs must not depend on which ran."""
    act = ACTIVATION_FUNCTIONS[name]
    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(0)) * 4
    value, grad = act.with_grad(x)
    value_, grad_ = act.with_grad_(x.clone())
    assert torch.equal(value_, value) and torch.equal(grad_, grad)
    assert torch.equal(act.value_(x.clone()), act.value(x))


# --- the fast paths (bound field, closed forms) against the reference implementations --------
def _reference_forward(net, z, t, s):
    """The textbook MLP on the concatenated input, without the bound field's split layer."""
    x = torch.cat([s, z, net._embed(t)], dim=-1)
    for layer in net.layers[:-1]:
        x = net.act.value(layer(x))
    return net.layers[-1](x)


@pytest.mark.parametrize("activation", ["silu", "mish", "relu", "tanh"])
def test_bound_field_is_the_concatenated_mlp(activation):
    net = _net(activation=activation)
    g = torch.Generator().manual_seed(1)
    z, s = torch.randn(16, 4, generator=g, dtype=F64), torch.randn(16, 5, generator=g, dtype=F64)
    t = torch.rand(16, 1, generator=g, dtype=F64)
    expected = _reference_forward(net, z, t, s)
    torch.testing.assert_close(net(z, t, s), expected, rtol=1e-12, atol=1e-12)
    one_t = torch.full((1, 1), 0.3, dtype=F64)  # the flow's one time for all rows
    torch.testing.assert_close(net.bind(s)(z, one_t),
                               _reference_forward(net, z, one_t.expand(16, 1), s),
                               rtol=1e-12, atol=1e-12)
    with torch.no_grad():  # the in-place activations of graph-free sampling
        torch.testing.assert_close(net.bind(s)(z, t), expected, rtol=1e-12, atol=1e-12)


def _reference_log_prob(net, s, z0, generator):
    """log_prob through a plain callable: autograd's vector-Jacobian Hutchinson."""
    return flow.log_prob(lambda z, t, s: _reference_forward(net, z, t, s), s, z0, 10,
                         "hutchinson", probes=2, generator=generator)


def test_closed_form_hutchinson_is_autograd_hutchinson_with_the_same_probes():
    net = _net()
    g = torch.Generator().manual_seed(2)
    s, z0 = torch.randn(32, 5, generator=g, dtype=F64), torch.randn(32, 4, generator=g, dtype=F64)
    a_fast, lp_fast, _ = flow.log_prob(net, s, z0, 10, "hutchinson", probes=2,
                                       generator=torch.Generator().manual_seed(3))
    a_ref, lp_ref, _ = _reference_log_prob(net, s, z0, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a_fast, a_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(lp_fast, lp_ref, rtol=0, atol=1e-10)
    assert (lp_fast - flow.standard_normal_log_prob(z0)).abs().min() > 1e-3, "flow barely acts"
    grads = []
    for lp in (lp_fast, lp_ref):
        net.zero_grad()
        lp.mean().backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    for gf, gr in zip(*grads, strict=True):
        torch.testing.assert_close(gf, gr, rtol=1e-8, atol=1e-10)


def test_global_rng_gives_the_same_probes_on_both_paths():
    net = _net().float()
    s, z0 = torch.randn(64, 5), torch.randn(64, 4)
    torch.manual_seed(5)
    _, lp_fast, _ = flow.log_prob(net, s, z0, 10, "hutchinson")
    after_fast = torch.rand(1)
    torch.manual_seed(5)
    _, lp_ref, _ = flow.log_prob(lambda z, t, s: _reference_forward(net, z, t, s), s, z0, 10,
                                 "hutchinson")
    after_ref = torch.rand(1)
    torch.testing.assert_close(lp_fast, lp_ref, rtol=1e-5, atol=1e-4)  # float32 tolerance
    assert torch.equal(after_fast, after_ref), "both paths must draw the same random numbers"


def test_graph_free_sampling_is_the_plain_euler_loop():
    net = _net().float()
    n = 300
    s, z0 = torch.randn(n, 5), torch.randn(n, 4)
    with torch.no_grad():  # bound field, one time per step, activations in place
        u = flow.euler_sample(net, s, z0, 10)
    z = z0
    for k in range(10):  # the reference: graph mode, concatenated MLP, a time per row
        z = z + 0.1 * _reference_forward(net, z, torch.full((n, 1), k / 10), s)
    torch.testing.assert_close(u, z, rtol=1e-5, atol=1e-5)
    assert not math.isclose(u.std().item(), z0.std().item(), rel_tol=1e-3), "flow barely acts"


def test_bound_field_checks_the_state_shape():
    net = _net()
    with pytest.raises(ValueError, match="s must have shape"):
        net.bind(torch.zeros(3, 4, dtype=F64))
