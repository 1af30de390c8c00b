"""`fmer bench`: the structure of its output (not its timings) and its FLOP counter. The fast
paths it measures are tested with their modules (tests/test_velocity.py, tests/test_nets.py)."""

import csv
import re

import pytest
import torch
from conftest import run_fmer

from fmer import bench, benchlog, flow
from fmer.analysis import performance
from fmer.velocity import VelocityField

F64 = torch.float64
TINY = ["--envs", "HalfCheetah-v5", "--threads", "1", "--reps", "2", "--warmup", "1",
        "--env-steps", "20"]
# QVPO's update at its authors' settings takes seconds: fewer samples and denoising steps
CHEAP_QVPO = ["--set", "qvpo.train_samples=4", "--set", "qvpo.diffusion_steps=3"]


def test_tiny_bench_prints_a_table_writes_csv_and_ends_with_efficiency_and_ratio(tmp_path):
    out = tmp_path / "bench.csv"
    page = tmp_path / "performance.md"
    proc = run_fmer("bench", *TINY, *CHEAP_QVPO, "--csv", out, "--markdown", page,
                    "--budget", "defaults", "--execution", "bfloat16", timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert re.fullmatch(r"FMER/SAC update time ratio: \d+\.\d\d", lines[-1]), lines[-1]
    assert re.fullmatch(r"FMER update efficiency: \d+% of the matmul rate", lines[-2]), lines[-2]
    header = next(line for line in lines if "FMER/SAC" in line and "env" in line)
    row = lines[lines.index(header) + 1].split()
    assert row[:3] == ["HalfCheetah-v5", "17/6", "1"]
    ratio = float(lines[-1].rsplit(" ", 1)[1])
    assert ratio > 1, "FMER's update does strictly more work than SAC's"

    with open(out, newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == benchlog.CSV_COLUMNS
        rows = list(reader)
    defaults = [r for r in rows if r["setting"] == benchlog.DEFAULTS]
    items = {r["item"] for r in defaults}
    assert {"matmul", "env_step", "sac_update", "fmer_update"} <= items
    parts = {f"fmer_{p}" for p in (*benchlog.FMER_PARTS, "rest")}
    assert parts <= items, items
    by_item = {r["item"]: r for r in defaults if r["env"] == "HalfCheetah-v5"}
    sac, fmer = by_item["sac_update"], by_item["fmer_update"]
    mm = next(r for r in rows if r["item"] == "matmul")
    assert sac["clock"] == "thread_cpu" and int(sac["reps"]) == 2
    assert float(fmer["ms"]) / float(sac["ms"]) == pytest.approx(ratio, abs=0.006)
    efficiency = float(lines[-2].split(": ")[1].split("%")[0]) / 100
    assert efficiency == pytest.approx(float(fmer["gflop_per_s"]) / float(mm["gflop_per_s"]),
                                       abs=0.006)
    assert float(fmer["gflop"]) > 5 * float(sac["gflop"]) > 0  # 16 candidates × 10 Euler steps
    part_ms = {item: float(by_item[item]["ms"]) for item in parts}
    assert all(ms >= 0 for item, ms in part_ms.items() if item != "fmer_rest")
    # the labelled parts cover the update: what they miss (rest) is small against the whole of
    # the same calls (not against fmer_update, timed in other calls under another load)
    assert abs(part_ms["fmer_rest"]) < 0.2 * sum(part_ms.values())
    assert "critic target" in proc.stdout and "candidates" in proc.stdout
    assert float(fmer["gflop_per_s"]) == pytest.approx(
        float(fmer["gflop"]) / float(fmer["ms"]) * 1e3, rel=1e-6)

    # the defaults study's settings: fewer candidates, states and actor updates cost less
    settings = {r["setting"]: r for r in rows
                if r["item"] == "fmer_update" and r["setting"] not in benchlog.EXECUTIONS}
    assert {"fmer-n16-sall-eall", "fmer-n8-s64-e64", "fmer-n8-s64-e64-k2"} <= set(settings)
    gflop = {k: float(r["gflop"]) for k, r in settings.items()}
    assert gflop["fmer-n16-sall-eall"] > gflop["fmer-n8-s64-e64"] > gflop["fmer-n8-s64-e64-k2"]

    # QVPO beside FMER: its update, its parts, the paired ratio the cost claim reads
    qvpo = by_item["qvpo_update"]
    ratio = by_item[benchlog.QVPO_RATIO]
    assert float(qvpo["gflop"]) > 0 and int(ratio["reps"]) == 2
    assert float(ratio["ratio_low"]) <= float(ratio["ratio"]) <= float(ratio["ratio_high"])
    assert {f"qvpo_{p}" for p in (*benchlog.QVPO_PARTS, "rest")} <= items
    qvpo_ms = {p: float(by_item[f"qvpo_{p}"]["ms"]) for p in (*benchlog.QVPO_PARTS, "rest")}
    assert abs(qvpo_ms["rest"]) < 0.2 * sum(qvpo_ms.values())  # as FMER's parts
    measured = performance.qvpo_ratio(benchlog.read_csv(out))
    assert measured is not None and measured[0] == pytest.approx(float(ratio["ratio"]))
    assert measured[3] == 2
    assert "QVPO's update by part" in proc.stdout and "denoising" in proc.stdout
    assert "Cost claim against QVPO (fmer.analysis.cost_claim): " in proc.stdout

    text = page.read_text()
    assert "| HalfCheetah-v5 | 17/6 | 1 |" in text
    assert "## QVPO's update beside FMER's" in text and "Cost claim against QVPO" in text
    assert text.rstrip().splitlines()[-2:] == lines[-2:] and "do not edit by hand" in text
    assert "## The settings of budget `defaults`" in text and "| fmer-n8-s64-e64-k2 |" in text
    assert "Whole runs" not in text  # no --whole-run

    # an execution (--execution): its own rows, the FLOPs left to eager's, on its own table
    bf16 = {r["item"]: r for r in rows if r["setting"] == "bfloat16"}
    assert set(bf16) == {"sac_update", "fmer_update"} and bf16["fmer_update"]["gflop"] == ""
    assert "| bfloat16 |" not in text.split("## How the update runs")[0]  # not a budget's
    section = text.split("## How the update runs")[1]
    assert "| eager float32 |" in section and "| bfloat16 |" in section


def test_whole_run_reads_the_wall_time_of_a_complete_run():
    run = bench.whole_run("Pendulum-v1", "sac", "smoke", seed=1)
    assert (run["algo"], run["seed"]) == ("sac", 1)
    assert run["steps"] == 300  # the smoke schedule's total_steps
    assert 0 < run["minutes"] < 10


def test_whole_run_ratios_pair_seeds_and_give_an_interval_from_two():
    runs = [{"algo": a, "seed": s, "minutes": m} for a, s, m in (
        ("sac", 0, 1.0), ("fmer", 0, 4.0), ("qvpo", 0, 40.0),
        ("sac", 1, 2.0), ("fmer", 1, 4.0), ("qvpo", 1, 20.0), ("qvpo", 2, 1.0))]
    fmer_sac, qvpo_fmer = performance.whole_run_ratios(runs)
    # geometric means over the paired seeds: √(4 · 2) = 2.83, √(10 · 5) = 7.07
    assert fmer_sac.startswith("FMER/SAC whole-run wall time: 2.83 [")
    assert qvpo_fmer.startswith("QVPO/FMER whole-run wall time: 7.07 [")
    assert qvpo_fmer.endswith("(n = 2 seed(s))")
    assert performance.whole_run_ratios(runs[:3])[1] == ("QVPO/FMER whole-run wall time: "
                                                         "10.00 (n = 1 seed(s))")


def test_bad_arguments_are_refused():
    proc = run_fmer("bench", "--threads", "0")
    assert proc.returncode == 2 and "--threads" in proc.stderr
    for flag in ("--budget", "--whole-run"):
        proc = run_fmer("bench", *TINY, flag, "nosuch")
        assert proc.returncode == 2 and "nosuch" in proc.stderr and not proc.stdout
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
