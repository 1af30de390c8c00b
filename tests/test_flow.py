"""Oracles for the flow policy's math: closed-form Gaussians, the tanh Jacobian, unbiasedness of
Hutchinson, entropies against a histogram, normalisation over a grid, gradients."""

import math

import pytest
import torch

from fmer.flow import euler_sample, log_prob, standard_normal_log_prob
from fmer.nets import tanh_log_det_jacobian
from fmer.velocity import VelocityField

F64 = torch.float64
K = 10


class LinearField:
    """v = A z + B s: the Euler map is affine, u = M z0 + c, M = (I + hA)^K."""

    def __init__(self, a, b):
        self.a, self.b = a, b

    def __call__(self, z, t, s):
        return z @ self.a.T + s @ self.b.T


def _linear(d=3, obs=2, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    a = 0.8 * torch.randn(d, d, generator=g, dtype=dtype)
    b = torch.randn(d, obs, generator=g, dtype=dtype)
    s = torch.randn(64, obs, generator=g, dtype=dtype)
    z0 = torch.randn(64, d, generator=g, dtype=dtype)
    return LinearField(a, b), s, z0


def _nonlinear_net(obs=3, d=2, hidden=(32, 32), seed=0, gain=2.0):
    """A VelocityField in float64 with weights scaled up so that its Jacobian varies a lot."""
    torch.manual_seed(seed)
    net = VelocityField(obs, d, list(hidden), "silu", "sinusoidal").double()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(gain)
    return net


def _plain(net):
    """The same field as a bare callable, so fmer.flow must use autograd for its divergence."""
    return lambda z, t, s: net(z, t, s)


def test_linear_field_euler_is_the_affine_map():
    v, s, z0 = _linear()
    d = z0.shape[1]
    step = torch.eye(d, dtype=F64) + v.a / K
    m = torch.linalg.matrix_power(step, K)
    # Σ_k (I + hA)^k h b = (M − I) A⁻¹ b, a geometric series.
    c = (s @ v.b.T) @ torch.linalg.solve(v.a, m - torch.eye(d, dtype=F64)).T
    u = euler_sample(v, s, z0, K)
    torch.testing.assert_close(u, z0 @ m.T + c, rtol=1e-12, atol=1e-12)


def test_linear_field_log_density_is_the_gaussian_pushforward():
    v, s, z0 = _linear()
    d = z0.shape[1]
    m = torch.linalg.matrix_power(torch.eye(d, dtype=F64) + v.a / K, K)
    base = standard_normal_log_prob(z0)
    a, lp_exact, _ = log_prob(v, s, z0, K, "exact", "exact", tanh_correction=False)
    torch.testing.assert_close(lp_exact, base - torch.linalg.slogdet(m).logabsdet,
                               rtol=0, atol=1e-10)
    _, lp_trace, _ = log_prob(v, s, z0, K, "exact", "trace", tanh_correction=False)
    torch.testing.assert_close(lp_trace, base - torch.trace(v.a), rtol=0, atol=1e-10)
    torch.testing.assert_close(a, torch.tanh(euler_sample(v, s, z0, K)), rtol=0, atol=1e-14)
    # Independent check of the closed form: the Gaussian u ~ N(c, M Mᵀ) evaluated at u.
    u = euler_sample(v, s, z0, K)
    c = u - z0 @ m.T
    gauss = torch.distributions.MultivariateNormal(c, covariance_matrix=m @ m.T)
    torch.testing.assert_close(lp_exact, gauss.log_prob(u), rtol=0, atol=1e-9)


def test_tanh_term_is_minus_log_one_minus_tanh_squared():
    v, s, z0 = _linear()
    s, z0 = 0.3 * s, 0.3 * z0
    u = euler_sample(v, s, z0, K)
    assert 0.5 < u.abs().max() < 5  # moderate: the naive formula is still accurate here
    _, with_tanh, term = log_prob(v, s, z0, K, "exact", "trace", tanh_correction=True)
    _, latent, term_latent = log_prob(v, s, z0, K, "exact", "trace", tanh_correction=False)
    naive = torch.log(1 - torch.tanh(u) ** 2).sum(dim=1)
    torch.testing.assert_close(with_tanh, latent - naive, rtol=0, atol=1e-9)
    torch.testing.assert_close(tanh_log_det_jacobian(u), naive, rtol=0, atol=1e-9)
    # the term comes back with or without the correction: both entropies from one sample
    torch.testing.assert_close(term, naive, rtol=0, atol=1e-9)
    torch.testing.assert_close(term_latent, naive, rtol=0, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_tanh_log_det_is_finite_in_saturation(dtype):
    u = torch.tensor([[-200.0, -30.0, 0.0, 30.0, 200.0]], dtype=dtype)
    got = tanh_log_det_jacobian(u)
    assert torch.isfinite(got).all()
    assert not torch.isfinite(torch.log(1 - torch.tanh(u) ** 2).sum())  # why the stable form
    # log(1 − tanh² x) → 2 log 2 − 2|x| for large |x|, and 0 at x = 0.
    expected = (2 * math.log(2) - 2 * u.abs()).sum() - 2 * math.log(2)
    torch.testing.assert_close(got, expected.reshape(1), rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_zero_field_leaves_the_latent_standard_normal(divergence):
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(32, 4, generator=g, dtype=F64)
    s = torch.randn(32, 5, generator=g, dtype=F64)
    zero = lambda z, t, s: torch.zeros_like(z)  # noqa: E731
    torch.testing.assert_close(euler_sample(zero, s, z0, K), z0, rtol=0, atol=0)
    a, lp, _ = log_prob(zero, s, z0, K, divergence, tanh_correction=False, generator=g)
    torch.testing.assert_close(a, torch.tanh(z0), rtol=0, atol=0)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z0).sum(dim=1)
    torch.testing.assert_close(lp, expected, rtol=0, atol=1e-12)


def test_hutchinson_is_exact_for_diagonal_jacobians():
    # εᵀ diag(a) ε = Σ a_i for Rademacher ε: no variance.
    v, s, z0 = _linear()
    v.a = torch.diag(torch.tensor([0.5, -1.0, 2.0], dtype=F64))
    _, exact, _ = log_prob(v, s, z0, K, "exact")
    _, hutch, _ = log_prob(v, s, z0, K, "hutchinson")
    torch.testing.assert_close(hutch, exact, rtol=0, atol=1e-10)


def test_hutchinson_is_unbiased_on_a_nonlinear_field():
    net = _nonlinear_net(d=3)
    g = torch.Generator().manual_seed(1)
    states, reps = 4, 3000
    s = torch.randn(states, 3, generator=g, dtype=F64)
    z0 = torch.randn(states, 3, generator=g, dtype=F64)
    with torch.no_grad():
        _, exact, _ = log_prob(net, s, z0, K, "exact")
        # Replicating each state gives independent probes per copy on the same trajectory.
        _, hutch, _ = log_prob(net, s.repeat(reps, 1), z0.repeat(reps, 1), K, "hutchinson",
                               generator=g)
    hutch = hutch.reshape(reps, states)
    err = hutch.mean(dim=0) - exact
    se = hutch.std(dim=0) / math.sqrt(reps)
    assert (se > 1e-3).all(), "the field is too linear for this test to mean anything"
    assert (err.abs() < 4 * se).all(), (err, se)
    # More probes per step: same mean, lower variance.
    with torch.no_grad():
        _, hutch8, _ = log_prob(net, s.repeat(500, 1), z0.repeat(500, 1), K, "hutchinson",
                                probes=8, generator=g)
    hutch8 = hutch8.reshape(500, states)
    assert (hutch8.std(dim=0) < 0.5 * hutch.std(dim=0)).all()
    assert ((hutch8.mean(dim=0) - exact).abs() < 4 * hutch8.std(dim=0) / math.sqrt(500)).all()


def test_hutchinson_draws_from_the_given_generator():
    net = _nonlinear_net()
    s, z0 = torch.randn(8, 3, dtype=F64), torch.randn(8, 2, dtype=F64)
    runs = [log_prob(net, s, z0, K, "hutchinson", generator=torch.Generator().manual_seed(7))[1]
            for _ in range(2)]
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)
    other = log_prob(net, s, z0, K, "hutchinson", generator=torch.Generator().manual_seed(8))[1]
    assert not torch.equal(runs[0], other)


def test_corrected_entropy_is_the_entropy_of_the_actions():
    # v = c z widens u to N(0, 1.1^20): a third of the actions have |a| > 0.99.
    zero_obs = torch.zeros(200_000, 1, dtype=F64)
    z0 = torch.randn(200_000, 1, generator=torch.Generator().manual_seed(0), dtype=F64)
    field = lambda z, t, s: 1.0 * z  # noqa: E731
    with torch.no_grad():
        a, lp, _ = log_prob(field, zero_obs, z0, K, "exact", "exact", tanh_correction=True)
        _, lp_latent, _ = log_prob(field, zero_obs, z0, K, "exact", "exact", tanh_correction=False)
    a = a.squeeze(1)
    assert (a.abs() > 0.99).double().mean() > 0.25
    # Histogram of a on bins that shrink geometrically toward ±1, where the density piles up.
    pos = 1 - torch.logspace(0, -12, 300, dtype=F64)
    edges = torch.cat([-pos.flip(0)[:-1], pos])
    counts = torch.bincount(torch.bucketize(a, edges), minlength=len(edges) + 1)[1:-1]
    assert counts.sum() == len(a)
    p = counts.double() / len(a)
    width = edges[1:] - edges[:-1]
    used = p > 0
    histogram_entropy = -(p[used] * torch.log(p[used] / width[used])).sum()
    assert abs(-lp.mean() - histogram_entropy) < 0.02
    assert -lp_latent.mean() > histogram_entropy + 2.0  # the uncorrected one is far off


@pytest.mark.parametrize("logdet,tol", [("exact", 1e-6), ("trace", 2e-2)])
def test_density_integrates_to_one_in_one_dimension(logdet, tol):
    net = _nonlinear_net(obs=2, d=1, gain=3.0)
    z0 = torch.linspace(-9, 9, 20_001, dtype=F64).unsqueeze(1)
    s = torch.tensor([[0.3, -1.2]], dtype=F64).expand(len(z0), 2)
    with torch.no_grad():
        a, lp, _ = log_prob(_plain(net), s, z0, K, "exact", logdet, tanh_correction=True)
        _, lp_u, _ = log_prob(_plain(net), s, z0, K, "exact", logdet, tanh_correction=False)
        u = euler_sample(net, s, z0, K)
    a, u = a.squeeze(1), u.squeeze(1)
    assert (lp_u - standard_normal_log_prob(z0)).abs().max() > 0.5, "the flow barely acts"
    assert (torch.diff(a) > 0).all(), "the Euler map must be monotone for this quadrature"
    assert a[0] < -0.999 and a[-1] > 0.999
    # Trapezoid rule on the nonuniform grid of actions the z0 grid maps to.
    assert abs(torch.trapezoid(lp.exp(), a) - 1) < tol
    assert abs(torch.trapezoid(lp_u.exp(), u) - 1) < tol


def _grads(field, net, s, z0, **kw):
    net.zero_grad()
    _, lp, _ = log_prob(field, s, z0, K, **kw)
    lp.mean().backward()
    return [p.grad.clone() for p in net.parameters()]


def test_log_prob_gradients_agree_between_closed_form_and_autograd():
    net = _nonlinear_net()
    s, z0 = torch.randn(16, 3, dtype=F64), torch.randn(16, 2, dtype=F64)
    closed = _grads(net, net, s, z0, divergence="exact")
    auto = _grads(_plain(net), net, s, z0, divergence="exact")
    for gc, ga in zip(closed, auto, strict=True):
        torch.testing.assert_close(gc, ga, rtol=1e-9, atol=1e-11)
    assert max(g.abs().max() for g in closed) > 1e-3


@pytest.mark.parametrize("divergence,logdet", [("exact", "trace"), ("hutchinson", "trace"),
                                               ("exact", "exact")])
def test_autograd_paths_pass_gradcheck(divergence, logdet):
    # log π must be differentiable in θ through the sampler *and* the divergence terms.
    net = _nonlinear_net(hidden=(6, 6))
    names = ["layers.1.weight", "layers.0.bias"]
    params = dict(net.named_parameters())
    s, z0 = torch.randn(3, 3, dtype=F64), torch.randn(3, 2, dtype=F64)

    def f(*tensors):
        p = {**params, **dict(zip(names, tensors, strict=True))}
        field = lambda z, t, s: torch.func.functional_call(net, p, (z, t, s))  # noqa: E731
        g = torch.Generator().manual_seed(0)
        return log_prob(field, s, z0, 3, divergence, logdet, probes=2, generator=g)[1]

    inputs = tuple(params[n].detach().clone().requires_grad_(True) for n in names)
    assert torch.autograd.gradcheck(f, inputs)


@pytest.mark.parametrize("field_kind", ["closed", "autograd"])
def test_no_grad_gives_the_same_values_without_a_graph(field_kind):
    net = _nonlinear_net()
    field = net if field_kind == "closed" else _plain(net)
    s, z0 = torch.randn(8, 3, dtype=F64), torch.randn(8, 2, dtype=F64)
    a, lp, _ = log_prob(field, s, z0, K, "exact")
    with torch.no_grad():
        a0, lp0, _ = log_prob(field, s, z0, K, "exact")
    assert not lp0.requires_grad and not a0.requires_grad
    torch.testing.assert_close(lp0, lp.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(a0, a.detach(), rtol=0, atol=0)


def test_float32_in_float32_out():
    net = VelocityField(3, 2, [16, 16], "silu", "linear")
    s, z0 = torch.randn(5, 3), torch.randn(5, 2)
    for div in ("exact", "hutchinson"):
        a, lp, _ = log_prob(net, s, z0, K, div)
        assert a.dtype == lp.dtype == torch.float32
        assert a.shape == (5, 2) and lp.shape == (5,)
    assert euler_sample(net, s, z0, K).dtype == torch.float32


def test_bad_arguments_are_named():
    v, s, z0 = _linear()
    with pytest.raises(ValueError, match="divergence"):
        log_prob(v, s, z0, K, "hutchison")
    with pytest.raises(ValueError, match="logdet"):
        log_prob(v, s, z0, K, "exact", "det")
    with pytest.raises(ValueError, match="hutchinson"):
        log_prob(v, s, z0, K, "hutchinson", "exact")
    with pytest.raises(ValueError, match="steps"):
        euler_sample(v, s, z0, 0)
    with pytest.raises(ValueError, match="probes"):
        log_prob(v, s, z0, K, "hutchinson", probes=0)
    with pytest.raises(ValueError, match="s must have shape"):
        euler_sample(v, s[:3], z0, K)
    with pytest.raises(ValueError, match="velocity field returned shape"):
        euler_sample(lambda z, t, s: z[:, :1], s, z0, K)
