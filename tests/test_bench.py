"""`fmer bench`: the structure of its output (not its timings) and its FLOP counter. The fast
paths it measures are tested with their modules (tests/test_velocity.py, tests/test_nets.py)."""

import csv
import re

import pytest
import torch
from conftest import run_fmer

from fmer import bench, flow
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
