"""`fmer bench`: the structure of its output (not its timings), its FLOP counter, and the fast
paths it measures, which must give the reference path's samples and log-densities."""

import csv
import math
import re

import pytest
import torch
from conftest import run_fmer

from fmer import bench, flow
from fmer.nets import Critic
from fmer.velocity import VelocityField

F64 = torch.float64
TINY = ["--envs", "HalfCheetah-v5", "--threads", "1", "--reps", "2", "--warmup", "1",
        "--env-steps", "20"]


def test_tiny_bench_prints_a_table_writes_csv_and_ends_with_the_ratio(tmp_path):
    out = tmp_path / "bench.csv"
    page = tmp_path / "performance.md"
    proc = run_fmer("bench", *TINY, "--csv", out, "--markdown", page, "--train-steps", "0",
                    timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert re.fullmatch(r"FMER/SAC update time ratio: \d+\.\d\d", lines[-1]), lines[-1]
    header = next(line for line in lines if "FMER/SAC" in line and "env" in line)
    row = lines[lines.index(header) + 1].split()
    assert row[:3] == ["HalfCheetah-v5", "17/6", "1"]
    ratio = float(lines[-1].rsplit(" ", 1)[1])
    assert ratio > 1, "FMER's update does strictly more work than SAC's"

    with open(out, newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == bench.CSV_COLUMNS
        rows = list(reader)
    items = {r["item"] for r in rows}
    assert {"matmul", "env_step", "sac_update", "fmer_update"} <= items
    parts = {"fmer_critic_target", "fmer_critic_step", "fmer_candidates", "fmer_alpha_tau",
             "fmer_cfm", "fmer_entropy", "fmer_actor_step", "fmer_rest"}
    assert parts <= items, items
    by_item = {r["item"]: r for r in rows if r["env"] == "HalfCheetah-v5"}
    sac, fmer = by_item["sac_update"], by_item["fmer_update"]
    assert sac["clock"] == "thread_cpu" and int(sac["reps"]) == 2
    assert float(fmer["ms"]) / float(sac["ms"]) == pytest.approx(ratio, abs=0.006)
    assert float(fmer["gflop"]) > 5 * float(sac["gflop"]) > 0  # 16 candidates × 10 Euler steps
    part_ms = {item: float(by_item[item]["ms"]) for item in parts}
    assert all(ms >= 0 for item, ms in part_ms.items() if item != "fmer_rest")
    assert sum(part_ms.values()) == pytest.approx(float(fmer["ms"]), rel=0.5)
    assert "critic target" in proc.stdout and "candidates" in proc.stdout
    assert float(fmer["gflop_per_s"]) == pytest.approx(
        float(fmer["gflop"]) / float(fmer["ms"]) * 1e3, rel=1e-6)

    text = page.read_text()
    assert "| HalfCheetah-v5 | 17/6 | 1 |" in text
    assert lines[-1] in text and "do not edit by hand" in text
    assert "## Cheaper settings" in text and "| entropy term on 64 states |" in text
    assert "## The entropy term on fewer states" in text
    assert "End to end" not in text  # --train-steps 0


def test_end_to_end_reads_the_rate_of_a_real_training_run():
    rate = bench.end_to_end("Pendulum-v1", "sac", steps=3, learning_starts=300)
    assert 0 < rate < 1e5
    records = [{"env": "Pendulum-v1", "dims": "3/1", "threads": 1, "env_steps_per_s": 1e4,
                "sac_ms": 1.0, "fmer_ms": 2.0, "ratio": 2.0, "sac_gflop": 0.1, "fmer_gflop": 1.0,
                "fmer_gflop_per_s": 100.0, "matmul_gflop_per_s": 150.0, "clock": "thread_cpu",
                "floor_ratio": 1.0 / 150.0 * 1e3}]
    text = bench.markdown(records, bench.machine(), "fmer bench", e2e={"sac": rate})
    assert text.rstrip().endswith(f"| sac | {rate:.1f} |")


def test_entropy_on_fewer_states_is_noisier():
    rows = bench.entropy_noise("Pendulum-v1", sizes=(64, 8), draws=12,
                               overrides={"actor.hidden": [32, 32]})
    assert [r["entropy_batch"] for r in rows] == [64, 8]
    big, small = rows
    assert small["estimate_std"] > 1.5 * big["estimate_std"] > 0  # ~ sqrt(64 / 8) = 2.8
    assert small["grad_rel_std"] > big["grad_rel_std"] > 0


def test_bad_arguments_are_refused():
    proc = run_fmer("bench", "--threads", "0")
    assert proc.returncode == 2 and "--threads" in proc.stderr
    with pytest.raises(ValueError, match="reps"):
        bench.interleaved({"f": lambda: None}, 0, 0, 1)
    with pytest.raises(ValueError, match="env"):
        bench.bench(envs=[], threads=[1])
    # the generated page is the CPU's: a GPU bench prints and writes CSV only
    proc = run_fmer("bench", "--device", "auto", "--markdown", "page.md")
    assert proc.returncode == 2 and "--markdown writes the CPU page" in proc.stderr


def test_flop_counter_counts_matmuls_forward_and_backward():
    lin = torch.nn.Linear(7, 5)
    x = torch.randn(3, 7, requires_grad=True)
    assert bench.count_flops(lambda: lin(x)) == 2 * 3 * 7 * 5
    # backward: the gradients of the input and of the weight, one product each
    assert bench.count_flops(lambda: lin(x).sum().backward()) == 3 * 2 * 3 * 7 * 5
    # autograd.grad with a graph of its own, as the flow's autograd divergences use
    net = VelocityField(3, 2, [8, 8])
    s, z0 = torch.randn(4, 3), torch.randn(4, 2)
    field = lambda z, t, s: net(z, t, s)  # noqa: E731  (autograd path)
    assert bench.count_flops(lambda: flow.log_prob(field, s, z0, 2, "hutchinson")) > 0


def test_interleaved_returns_medians_on_the_named_clock():
    calls = []
    timings = bench.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                                reps=3, warmup=2, threads=1)
    assert calls == ["a", "b"] * 5  # round by round
    assert set(timings) == {"a", "b"} and timings["a"].reps == 3
    assert timings["a"].clock == "thread_cpu"
    assert bench.interleaved({"a": lambda: None}, 1, 0, threads=2)["a"].clock == "wall"


# --- the fast paths against reference implementations ---------------------------------------
def _net(hidden=(48, 40), obs=5, d=4, activation="silu", seed=0):
    torch.manual_seed(seed)
    net = VelocityField(obs, d, list(hidden), activation, "sinusoidal").double()
    with torch.no_grad():  # larger weights: activations leave their linear range
        for p in net.parameters():
            p.mul_(2.0)
    return net


def _reference_forward(net, z, t, s):
    """The textbook MLP on the concatenated input, without the bound field's split layer."""
    x = torch.cat([s, z, net._embed(t)], dim=-1)
    for layer in net.layers[:-1]:
        x = net._act(layer(x))
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
    a_fast, lp_fast = flow.log_prob(net, s, z0, 10, "hutchinson", probes=2,
                                    generator=torch.Generator().manual_seed(3))
    a_ref, lp_ref = _reference_log_prob(net, s, z0, torch.Generator().manual_seed(3))
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
    _, lp_fast = flow.log_prob(net, s, z0, 10, "hutchinson")
    after_fast = torch.rand(1)
    torch.manual_seed(5)
    _, lp_ref = flow.log_prob(lambda z, t, s: _reference_forward(net, z, t, s), s, z0, 10,
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


def test_bound_field_checks_the_state_shape():
    net = _net()
    with pytest.raises(ValueError, match="s must have shape"):
        net.bind(torch.zeros(3, 4, dtype=F64))
