"""How an update runs (fmer.execution): compiled or eager, float32 or bf16 autocast; what
meta.json records of it and what ``fmer verify --rerun`` replays."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import rows_without_timing

from fmer import flow
from fmer.config import ConfigError, make_config, result_diff
from fmer.nets import ActionBox
from fmer.rerun import compare_logs, rerun
from fmer.train import make_agent, train
from fmer.velocity import VelocityField

# 20 updates (steps 201..220) of a tiny FMER on Pendulum, logged every 5; 2 Euler steps, so
# that compiling its graphs (each step unrolled) takes less of the suite's time
SHORT = {"train.total_steps": 220, "train.learning_starts": 200, "train.eval_every": 220,
         "train.eval_episodes": 1, "train.log_every": 5, "train.batch_size": 32,
         "train.checkpoint_every": 1000, "actor.hidden": [32, 32], "critic.hidden": [32, 32],
         "actor.candidates": 4, "actor.flow_steps": 2}
# Compiled parts sum and multiply in other orders than eager ones: after 20 updates the logged
# means agree to this relative tolerance (measured: 1e-7 to 1e-6; differences grow with updates).
COMPILED_RTOL = 1e-3
# bf16 matmuls (8-bit mantissa) in a 2x256 field, 10 Euler steps, 6-D actions: log-densities
# within this many nats of float32's at every state (measured: 0.002 at initialisation, 0.016
# with the weights doubled; with them tripled, a much stiffer field, 0.2).
BF16_LOGP_ATOL = 0.05


def _numbers(run, name="train.csv"):
    return [{k: float(v) for k, v in row.items() if v != ""}
            for row in rows_without_timing(run / name)]


@pytest.mark.slow
def test_compiled_and_eager_agree_over_a_short_run(tmp_path):
    """One compile (FMER's six parts and their backward passes): ~1-2 min on a free core. That
    a compiled run reruns bit for bit (``rerun``) was checked once, not here: a second
    compile costs as much again."""
    eager = train(make_config("Pendulum-v1", "fmer", 0, overrides=SHORT), tmp_path / "eager")
    cfg = make_config("Pendulum-v1", "fmer", 0, overrides={**SHORT, "train.compile": True})
    compiled = train(cfg, tmp_path / "compiled")
    meta = json.loads((compiled / "meta.json").read_text())
    assert meta["execution"] == {"compile": True, "precision": "float32"}
    # an execution property, not a setting: the same experiment as the eager run
    assert result_diff(cfg, make_config("Pendulum-v1", "fmer", 0, overrides=SHORT)) == []
    a, b = _numbers(eager), _numbers(compiled)
    assert len(a) == len(b) == 44 and a != b  # compiled: other roundings, really
    for row_a, row_b in zip(a, b, strict=True):
        assert row_a.keys() == row_b.keys()
        for key in row_a:
            assert row_b[key] == pytest.approx(row_a[key], rel=COMPILED_RTOL, abs=1e-6), key


def test_bf16_log_densities_stay_within_a_tolerance_of_float32():
    torch.manual_seed(0)
    field = VelocityField(17, 6, [256, 256])
    s, z0 = torch.randn(256, 17), torch.randn(256, 6)
    for stiffness in (1.0, 2.0):
        if stiffness != 1.0:
            with torch.no_grad():
                for p in field.parameters():
                    p.mul_(stiffness)
        for divergence in ("exact", "hutchinson"):
            out = {}
            for precision in ("float32", "bfloat16"):
                g = torch.Generator().manual_seed(1)  # the same probes
                with torch.autocast("cpu", dtype=torch.bfloat16,
                                    enabled=precision == "bfloat16"):
                    out[precision] = flow.log_prob(field, s, z0, 10, divergence=divergence,
                                                   generator=g)
            (_, logp32, _), (a16, logp16, _) = out["float32"], out["bfloat16"]
            assert logp16.dtype == a16.dtype == torch.float32
            gap = (logp16 - logp32).abs().max().item()
            assert 0 < gap < BF16_LOGP_ATOL, (stiffness, divergence, gap)


def test_a_bf16_run_is_a_setting_recorded_and_replayed(tmp_path):
    """bf16 changes the numbers (a config key that makes another experiment); meta.json
    records it beside the device, and ``fmer verify --rerun`` trains it in bf16 again."""
    base = make_config("Pendulum-v1", "sac", 0, overrides=SHORT)
    cfg = make_config("Pendulum-v1", "sac", 0, overrides={**SHORT, "train.precision": "bfloat16"})
    assert result_diff(cfg, base) == ["train.precision"]
    run = train(cfg, tmp_path / "bf16")
    meta = json.loads((run / "meta.json").read_text())
    assert meta["execution"] == {"compile": False, "precision": "bfloat16"}
    assert rerun(run) is None
    float32 = train(base, tmp_path / "float32")
    assert compare_logs(run, float32) is not None


def test_an_agent_without_compiled_parts_refuses_train_compile():
    cfg = make_config("Pendulum-v1", "qvpo", overrides={"train.compile": True,
                                                        "critic.hidden": [8]})
    with pytest.raises(ConfigError, match="train.compile: QVPO"):
        make_agent(cfg, 3, ActionBox(np.array([-2.0]), np.array([2.0])))
