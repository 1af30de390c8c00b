"""Where a run's tensors live (``train.device``), and what meta.json records about it.

The networks, optimisers, α and every tensor of an update live on the device; environments
and the replay buffer stay on the CPU, so each update copies its batch over once and each env
step copies one observation there and one action back.

Random streams: torch keeps one generator per device, all seeded by ``torch.manual_seed``.
Networks are initialised on the CPU and then moved, so a CUDA run starts from the same weights
as a CPU run of its seed; its sampling then draws from the CUDA generator. CPU runs draw
exactly what they drew before devices existed, so their logs are unchanged.

Reproducibility on a GPU: ``use_cuda_determinism`` turns on
``torch.use_deterministic_algorithms`` and cuBLAS's fixed workspace
(``CUBLAS_WORKSPACE_CONFIG=:4096:8``), so that the same seed on the same GPU model, driver,
CUDA and torch versions repeats bit for bit. Another GPU model or version, or the CPU, sums
floats in another order: those runs agree with each other in distribution, not in bits.
"""

from __future__ import annotations

import os

import torch

from fmer.config import DEVICES, ConfigError

# cuBLAS's deterministic workspace setting, as PyTorch's reproducibility notes give it
CUBLAS_WORKSPACE = ":4096:8"


def resolve_device(name: str) -> torch.device:
    """The device ``train.device`` names: ``auto`` is CUDA when torch sees a GPU, else CPU.
    ``cuda`` without a usable GPU is a ConfigError that says why, before any work is done."""
    if name not in DEVICES:
        raise ConfigError(f"train.device: must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        why = (f"this torch ({torch.__version__}) is a CPU-only build" if torch.version.cuda
               is None else f"torch (CUDA {torch.version.cuda}) sees no GPU: check nvidia-smi "
               "and CUDA_VISIBLE_DEVICES, or the job's GPU request")
        raise ConfigError(f"train.device: 'cuda', but {why}; use --device cpu or auto")
    return torch.device("cuda")


def use_cuda_determinism(device: torch.device) -> None:
    """On CUDA, make torch pick deterministic kernels (an op without one raises, naming
    itself). Must run before the first cuBLAS call: cuBLAS reads its workspace setting when it
    starts. A user's own CUBLAS_WORKSPACE_CONFIG is kept. Nothing changes on the CPU."""
    if device.type != "cuda":
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True)


def describe(device: torch.device) -> dict:
    """meta.json's record of the device: its type and, for CUDA, the GPU and the versions
    that decide which kernels ran."""
    if device.type != "cuda":
        return {"type": device.type}
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"type": "cuda", "name": torch.cuda.get_device_name(device),
            "capability": ".".join(map(str, torch.cuda.get_device_capability(device))),
            "cuda": torch.version.cuda, "cudnn": cudnn,
            "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled()}
