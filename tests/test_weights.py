"""Candidate weights of the mirror-descent step and the ESS-matched temperature."""

import pytest
import torch

from fmer.weights import candidate_weights, ess, solve_temperature


def _q(b=256, n=16, scale=1.0, seed=0):
    return scale * torch.randn(b, n, generator=torch.Generator().manual_seed(seed))


def test_softmax_rows_are_the_tempered_softmax():
    q = _q(8, 5, 3.0)
    w = candidate_weights(q, 0.7, "softmax")
    torch.testing.assert_close(w.sum(dim=1), torch.ones(8))
    expected = torch.exp(q / 0.7) / torch.exp(q / 0.7).sum(dim=1, keepdim=True)
    torch.testing.assert_close(w, expected)


def test_unnormalized_keeps_the_best_at_one_and_is_proportional_to_softmax():
    q = _q(8, 5, 3.0)
    w = candidate_weights(q, 0.7, "unnormalized")
    torch.testing.assert_close(w.max(dim=1).values, torch.ones(8))
    soft = candidate_weights(q, 0.7, "softmax")
    torch.testing.assert_close(w / w.sum(dim=1, keepdim=True), soft)
    assert (w.sum(dim=1) > 1).all()  # not renormalised


def test_top1_is_one_hot_at_the_argmax():
    q = _q(32, 7)
    w = candidate_weights(q, 0.1, "top1")
    assert torch.equal(w.sum(dim=1), torch.ones(32))
    assert torch.equal(w.argmax(dim=1), q.argmax(dim=1))
    assert set(w.unique().tolist()) == {0.0, 1.0}


def test_tau_per_row():
    q = _q(4, 6)
    tau = torch.tensor([0.1, 1.0, 10.0, 0.5])
    w = candidate_weights(q, tau, "softmax")
    for i in range(4):
        torch.testing.assert_close(w[i], candidate_weights(q[i : i + 1], tau[i].item())[0])
    torch.testing.assert_close(candidate_weights(q, tau.unsqueeze(1)), w)
    with pytest.raises(ValueError, match="tau"):
        candidate_weights(q, torch.ones(3))
    with pytest.raises(ValueError, match="tau"):
        candidate_weights(q, 0.0)
    with pytest.raises(ValueError, match="scheme"):
        candidate_weights(q, 1.0, "argmax")


def test_ess_bounds_and_monotone_in_tau():
    n = 16
    one_hot = torch.zeros(3, n)
    one_hot[:, 4] = 1
    torch.testing.assert_close(ess(one_hot), torch.ones(3))
    torch.testing.assert_close(ess(torch.full((3, n), 1 / n)), torch.full((3,), float(n)))
    torch.testing.assert_close(ess(torch.full((3, n), 5.0)), torch.full((3,), float(n)))
    q = _q(64, n)
    taus = torch.logspace(-3, 3, 40).tolist()
    curve = [ess(candidate_weights(q, tau)) for tau in taus]
    for lower, higher in zip(curve, curve[1:], strict=False):
        assert (higher >= lower - 1e-4).all()
    assert (curve[0] < 1.01).all() and (curve[-1] > n - 0.01).all()


@pytest.mark.parametrize("target", [0.1, 0.25, 0.5, 0.9])
@pytest.mark.parametrize("scale", [0.01, 1.0, 100.0])
def test_solve_temperature_hits_its_target(target, scale):
    q = _q(256, 16, scale, seed=int(target * 10))
    tau = solve_temperature(q, target, 1e-4, 1e3)
    frac = ess(candidate_weights(q, tau)).mean().item() / 16
    assert abs(frac - target) < 1e-3
    # τ scales with the spread of the scores; the unnormalized weights have the same ESS.
    assert 1e-4 < tau < 1e3
    assert abs(ess(candidate_weights(q, tau, "unnormalized")).mean().item() / 16 - frac) < 1e-5


def test_solve_temperature_clips_when_unreachable():
    q = _q(256, 16)
    assert solve_temperature(q, 0.999, 1e-4, 1e-2) == 1e-2  # needs a larger τ than hi
    assert solve_temperature(q, 0.5, 10.0, 1e3) == 10.0  # even lo spreads more than asked
    assert solve_temperature(q, 0.01, 1e-4, 1e3) == 1e-4  # below 1/N: never reachable
    with pytest.raises(ValueError, match="target_frac"):
        solve_temperature(q, 1.5, 1e-4, 1e3)
    with pytest.raises(ValueError, match="lo"):
        solve_temperature(q, 0.5, 1.0, 1e-3)

