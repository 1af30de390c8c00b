"""Where a run's tensors live (``train.device``), and what meta.json records about it.

The networks, optimisers, α and every tensor of an update live on the device; environments
and the replay buffer stay on the CPU, so each update copies its batch over once and each env
step copies one observation there and one action back.

Random streams: torch keeps one generator per device, all seeded by ``torch.manual_seed``.
Networks are initialised on the CPU and then moved, so a CUDA run starts from the same weights
as a CPU run of its seed; its sampling then draws from the CUDA generator. CPU runs draw
exactly what they drew before devices existed, so their logs are unchanged.

Reproducibility on a CPU: the same code, seed and library versions give the same logs bit for
bit on CPUs that run the same float kernels. Another CPU can pick other kernels (MKL's and
ATen's choice depends on the instruction set and the vendor) and round differently; a run's
trajectory then parts after a few hundred updates. ``float_fingerprint`` names the kernels'
rounding: the hash of a small fixed computation made of the operations an update uses.
meta.json records it, and ``fmer verify --rerun`` compares it before comparing logs.

Reproducibility on a GPU: ``use_cuda_determinism`` turns on
``torch.use_deterministic_algorithms`` and cuBLAS's fixed workspace
(``CUBLAS_WORKSPACE_CONFIG=:4096:8``), so that the same seed on the same GPU model, driver,
CUDA and torch versions repeats bit for bit. Another GPU model or version, or the CPU, sums
floats in another order: those runs agree with each other in distribution, not in bits.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import torch
import torch.nn.functional as F

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


def float_fingerprint() -> str:
    """16 hex digits that differ between machines whose float kernels round differently: the
    hash of a fixed network's forward and backward pass and one Adam step (linear layers on 1,
    7 and 256 rows, as acting, a few states and a batch do: MKL picks its kernel by shape;
    tanh, relu, exp, log-softmax, sums) on one thread, and of numpy's exp, sin and tanh (the
    envs' side). MuJoCo's own arithmetic is not covered. Draws from its own generators: the
    global random streams are untouched."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as runs train (train.threads); a thread count splits sums
    try:
        g = torch.Generator().manual_seed(0)
        parts = []
        for rows in (1, 7, 256):
            x = torch.randn(rows, 29, generator=g)
            w1 = (torch.randn(256, 29, generator=g) * 0.2).requires_grad_()
            b1 = torch.randn(256, generator=g).requires_grad_()
            w2 = (torch.randn(8, 256, generator=g) * 0.1).requires_grad_()
            y = F.linear(torch.relu(torch.tanh(F.linear(x, w1, b1))), w2)
            (torch.log_softmax(y, dim=1) + torch.exp(-y.square())).sum().backward()
            torch.optim.Adam([w1, b1, w2], lr=1e-3).step()
            parts += [p.detach().numpy() for p in (y, w1, b1, w2)]
        z = np.random.default_rng(0).normal(size=1000)
        parts += [np.exp(z), np.sin(z), np.tanh(z)]
        return hashlib.sha256(b"".join(p.tobytes() for p in parts)).hexdigest()[:16]
    finally:
        torch.set_num_threads(threads)


def describe(device: torch.device) -> dict:
    """meta.json's record of the device: for the CPU, the instruction set ATen's kernels use
    and the float fingerprint; for CUDA, the GPU and the versions that decide which kernels
    ran."""
    if device.type != "cuda":
        return {"type": device.type, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "float_fingerprint": float_fingerprint()}
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"type": "cuda", "name": torch.cuda.get_device_name(device),
            "capability": ".".join(map(str, torch.cuda.get_device_capability(device))),
            "cuda": torch.version.cuda, "cudnn": cudnn,
            "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled()}
