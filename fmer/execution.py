"""How an agent's update runs: eager or compiled (``train.compile``), in float32 or under
bf16 autocast (``train.precision``). The algorithm is the same either way: ``apply`` wraps
an agent that fmer.agent or fmer.sac built.

Compiled: ``torch.compile`` of the methods that hold an update's tensor work (each agent's
``compiled_parts``: the critic target, the critic's loss, the candidates, the weights, the
CFM loss, the entropy sample; SAC's actor loss), with static shapes; their backward passes are
compiled with them. The optimiser steps, the bookkeeping and the ``record_function`` labels
stay eager, outside. Random draws inside a compiled part are torch's own (inductor's
``fallback_random``), so a compiled run draws what an eager one draws and differs from it in
float rounding only (fused kernels sum and multiply in other orders). On CUDA the parts are
compiled in ``reduce-overhead`` mode, which replays them as CUDA graphs. Compiling takes tens
of seconds per agent, once per process (a resumed run compiles again).

bfloat16: the update runs under ``torch.autocast(dtype=torch.bfloat16)``: the networks' hidden
matmuls in bf16; weights, gradients, optimiser states and α stay float32, and so do the
networks' output layers (fmer.nets.OutputLinear: a Q-value of 300 in bf16 is ±1) and the
log-density's sums (the divergence terms, the tanh term). Acting and evaluating stay float32:
a saved policy acts as it did in training (fmer.policy). It changes the numbers beyond
rounding, so it is part of a run's config, not of how it runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch.utils._pytree import tree_map

from fmer.config import ConfigError, TrainConfig

AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16}
COMPILE_MODES = ("default", "reduce-overhead")  # the second: CUDA graphs


def bf16_matrix_units(device: torch.device) -> str | None:
    """What runs bf16 matmuls natively on ``device``: the CPU's AMX-BF16 or AVX-512-BF16, or a
    GPU (every recent one); None where they are emulated (far slower than float32)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device) if torch.cuda.is_bf16_supported() else None
    if torch.cpu._is_amx_tile_supported():
        return "AMX-BF16"
    if torch.cpu._is_avx512_bf16_supported():
        return "AVX-512-BF16"
    return None


def default_mode(device: torch.device) -> str:
    """CUDA graphs on a GPU (the launch overhead of an update's ~200 small kernels is what
    they remove); inductor's default elsewhere."""
    return "reduce-overhead" if device.type == "cuda" else "default"


def _owner(agent, dotted: str):
    *path, name = dotted.split(".")
    owner = functools.reduce(getattr, path, agent)
    return owner, name


def compile_parts(agent, mode: str | None = None) -> None:
    """Replace each of ``agent.compiled_parts`` by its ``torch.compile``d self."""
    if mode is None:
        mode = default_mode(agent.device)
    if mode not in COMPILE_MODES:
        raise ValueError(f"mode must be one of {COMPILE_MODES}, got {mode!r}")
    # torch's generators inside compiled code, as outside: the same draws as eager
    parts = getattr(agent, "compiled_parts", None)
    if parts is None:
        raise ConfigError(f"train.compile: {type(agent).__name__}'s update has no compiled parts "
                          "(only FMER's and SAC's are compiled); set train.compile=false")
    torch._inductor.config.fallback_random = True
    graphs = mode == "reduce-overhead"
    for dotted in parts:
        owner, name = _owner(agent, dotted)
        part = torch.compile(getattr(owner, name), mode=mode, dynamic=False)
        setattr(owner, name, _copied_out(part) if graphs else part)
    if graphs:
        _wrap_update(agent, _graph_step)


def _copied_out(part: Callable) -> Callable:
    """A CUDA-graph part whose outputs are copied out of the graphs' memory, which the next
    replay may overwrite: an agent keeps some (the delayed actor's metrics, τ)."""

    def part_copied(*args, **kwargs):
        return tree_map(lambda v: v.clone() if isinstance(v, torch.Tensor) else v,
                        part(*args, **kwargs))

    return part_copied


def _graph_step(update: Callable) -> Callable:
    def update_graph_step(batch):  # each update is one step of the CUDA graphs
        torch.compiler.cudagraph_mark_step_begin()
        return update(batch)

    return update_graph_step


def _autocast(dtype: torch.dtype, device: torch.device) -> Callable[[Callable], Callable]:
    def wrap(update: Callable) -> Callable:
        def update_autocast(batch):
            with torch.autocast(device.type, dtype=dtype):
                return update(batch)

        return update_autocast

    return wrap


def _wrap_update(agent, wrapper: Callable[[Callable], Callable]) -> None:
    agent.update = functools.wraps(agent.update)(wrapper(agent.update))


def apply(agent, train: TrainConfig, mode: str | None = None):
    """``agent`` set to run its updates as ``train.precision`` and ``train.compile`` say
    (``mode``: the compile mode, by default the device's); returned for chaining."""
    if train.precision != "float32":
        _wrap_update(agent, _autocast(AUTOCAST_DTYPES[train.precision], agent.device))
    if train.compile:
        compile_parts(agent, mode)
    return agent


def describe(train: TrainConfig) -> dict:
    """meta.json's record of how a session's updates ran, beside its device."""
    return {"compile": train.compile, "precision": train.precision}
