"""train.device on a machine without a GPU: how a device is chosen, and that every tensor of
an update is made on the agent's device.

A tensor that a factory (``torch.randn``, ``torch.zeros``, ...) makes without a ``device`` lands
on the CPU, where a CUDA agent then fails or copies silently; on this CPU-only machine such a
tensor is on the right device by luck. So the audit below fails on the call itself, not on
where its result lands, and ``meta`` (a device with shapes but no data) stands in for a GPU
where the agents are built and loaded. On a machine with a GPU the audit runs there too
(docs/cluster.md, "Checking a GPU node"); until then the CUDA path is untested on real
hardware.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from conftest import REPO
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from fmer.bench import random_batch
from fmer.buffer import FIELDS, ReplayBuffer, Staging
from fmer.cli import main
from fmer.config import ConfigError, make_config
from fmer.device import float_fingerprint, resolve_device
from fmer.nets import ActionBox
from fmer.train import IntervalMetrics, make_agent

OBS, ACT = 5, 2
CHEAP = {"actor.hidden": [8, 8], "critic.hidden": [8, 8], "actor.candidates": 4,
         "actor.flow_steps": 2, "train.batch_size": 16}
# The code paths of an update that make tensors: the closed-form divergence, autograd's
# (3 hidden layers) with the Jacobian's identity or Hutchinson's probes, the exact log-det,
# the critic target without the entropy term, SAC.
AGENTS = {
    "fmer": ("fmer", {}),
    "fmer-3-layers-exact-logdet": ("fmer", {"actor.hidden": [8, 8, 8],
                                            "entropy.divergence": "exact",
                                            "entropy.logdet": "exact"}),
    "fmer-3-layers-hutchinson": ("fmer", {"actor.hidden": [8, 8, 8]}),
    "fmer-no-entropy": ("fmer-no-entropy", {}),
    "sac": ("sac", {}),
}
# ... and the branches of an update that decide without reading a tensor: fixed τ, the other
# weightings, no tanh term, the delayed actor (an update that reuses the last actor metrics)
BRANCHES = {
    **AGENTS,
    "fmer-no-ess": ("fmer-no-ess", {}),
    "fmer-top1": ("fmer-top1", {}),
    "fmer-unnormalized": ("fmer-unnormalized", {}),
    "fmer-no-tanh": ("fmer-no-tanh", {}),
    "fmer-actor-every-2": ("fmer", {"actor.update_every": 2}),
}
DEVICES_HERE = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
# torch's tensor factories: without ``device=`` each makes a CPU tensor
FACTORIES = {torch.randn, torch.rand, torch.randint, torch.randperm, torch.zeros, torch.ones,
             torch.empty, torch.full, torch.eye, torch.arange, torch.linspace, torch.tensor,
             torch.as_tensor, torch.scalar_tensor}


def _agent(name: str, device: str):
    algo, overrides = BRANCHES[name]
    real = device in DEVICES_HERE
    cfg = make_config("Pendulum-v1", algo, 0, overrides={
        **CHEAP, **overrides, "train.device": device if real else "cpu"})
    torch.manual_seed(0)
    agent = make_agent(cfg, OBS, ActionBox(-np.ones(ACT), np.ones(ACT)))
    # make_agent resolves only the devices train.device names; the agents take any
    return agent if real else type(agent)(OBS, agent.box, cfg, device)


class FactoryAudit(TorchFunctionMode):
    """Every tensor factory called without ``device=``, by name."""

    def __init__(self):
        super().__init__()
        self.undeviced: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and "device" not in kwargs:
            self.undeviced.append(func.__name__)
        return func(*args, **kwargs)


class DeviceAudit(TorchDispatchMode):
    """The devices of every tensor that every op reads or writes, but for 0-dim tensors: torch
    keeps some host scalars beside any device itself (Adam's step count)."""

    def __init__(self):
        super().__init__()
        self.devices: set[torch.device] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves((args, kwargs, out)):
            if isinstance(leaf, torch.Tensor) and leaf.dim() > 0:
                self.devices.add(leaf.device)
        return out


def _device_types(tensors) -> set[str]:
    return {t.device.type for t in tensors}


def _on(batch, device: str):
    return type(batch)(**{k: v.to(device) for k, v in vars(batch).items()})


@pytest.mark.parametrize("device", DEVICES_HERE)
@pytest.mark.parametrize("name", AGENTS)
def test_every_tensor_of_an_update_and_an_action_is_made_on_the_agents_device(name, device):
    agent = _agent(name, device)
    batch = _on(random_batch(OBS, ACT, CHEAP["train.batch_size"],
                             torch.Generator().manual_seed(0)), agent.device)
    obs = np.zeros(OBS, np.float32)
    with FactoryAudit() as factories:
        with DeviceAudit() as ops:  # act() copies an observation in and an action out
            agent.update(batch)
        agent.act(obs, deterministic=False)
        action = agent.act(obs, deterministic=True)
    assert factories.undeviced == [], f"made without device=: {factories.undeviced}"
    assert {d.type for d in ops.devices} == {agent.device.type}
    assert isinstance(action, np.ndarray) and action.shape == (ACT,)


@pytest.mark.parametrize("name", BRANCHES)
def test_an_update_and_its_metrics_never_wait_for_the_device(name):
    """Nothing in an update, nor in the loop's sums of its metrics, reads a tensor's value into
    Python (on a GPU each read waits for every queued kernel): on ``meta`` every such read
    raises (``.item()``, ``bool()``, ``float()``, ``.tolist()``). The metrics stay tensors on the
    device, or are numbers of the config (fixed α, fixed τ)."""
    agent = _agent(name, "meta")
    sums = IntervalMetrics(tuple(agent.metric_names), agent.device)
    batch = _on(random_batch(OBS, ACT, CHEAP["train.batch_size"],
                             torch.Generator().manual_seed(0)), "meta")
    for step in range(3):
        metrics = agent.update(batch)
        sums.add(metrics, step)
    assert list(metrics) == list(agent.metric_names)
    tensors = [v for v in metrics.values() if isinstance(v, torch.Tensor)]
    assert _device_types(tensors) == {"meta"} and all(t.dim() == 0 for t in tensors)
    constants = {k for k, v in metrics.items() if not isinstance(v, torch.Tensor)}
    assert constants <= {"alpha", "alpha_loss", "tau"}, constants
    assert sums.totals.device.type == "meta"


@pytest.mark.parametrize("name", ["fmer", "sac"])
def test_agents_live_on_their_device_and_load_a_state_saved_on_another(name):
    """Built on ``meta``, every network, target, α and optimiser state is there; a state saved
    on the CPU (as every checkpoint is read) loads onto it."""
    trained = _agent(name, "cpu")
    trained.update(random_batch(OBS, ACT, 16, torch.Generator().manual_seed(0)))
    agent = _agent(name, "meta")
    nets = [m for m in vars(agent).values() if isinstance(m, torch.nn.Module)]
    nets += [agent.critic.q, agent.critic.target]
    assert len(nets) == 3
    tensors = [t for net in nets for t in (*net.parameters(), *net.buffers())]
    assert _device_types([*tensors, agent.alpha.log_alpha]) == {"meta"}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*copying from a non-meta parameter")
        agent.load_state_dict(trained.state_dict())
    optimisers = [agent.actor_optim, agent.critic.optim, agent.alpha.optim]
    moments = [v for opt in optimisers for state in opt.state.values()
               for k, v in state.items() if k != "step"]  # Adam keeps its step count on the CPU
    assert moments and _device_types(moments) == {"meta"}


def test_the_buffer_hands_its_batch_to_the_device():
    buf = ReplayBuffer(OBS, ACT, capacity=8)
    for t in range(8):
        buf.add(np.full(OBS, t), np.zeros(ACT), 1.0, np.full(OBS, t + 1), False)
    batch = buf.sample(4, np.random.default_rng(0), "meta")
    assert _device_types(vars(batch).values()) == {"meta"}
    assert buf.data["obs"].shape == (8, OBS)  # the ring itself stays in host memory


def _filled(capacity: int) -> ReplayBuffer:
    buf = ReplayBuffer(OBS, ACT, capacity=capacity)
    rng = np.random.default_rng(1)
    for _ in range(capacity):
        buf.add(rng.normal(size=OBS), rng.uniform(-1, 1, ACT), rng.normal(), rng.normal(size=OBS),
                bool(rng.integers(2)))
    return buf


def test_a_staged_batch_is_the_sampled_rows_in_one_block():
    """The GPU's staging (pinned there; not on a CPU-only machine): every field is exactly the
    rows sampled, a contiguous view of one flat block, so one transfer moves the batch."""
    buf = _filled(32)
    idx = np.random.default_rng(0).integers(0, 32, size=16)
    staging = Staging(buf.data, 16, pinned=False)
    batch = staging.split(staging.gather(buf.data, idx))
    for k in FIELDS:
        field = getattr(batch, k)
        assert field.is_contiguous() and np.array_equal(field.numpy(), buf.data[k][idx]), k
    assert len({getattr(batch, k).untyped_storage().data_ptr() for k in FIELDS}) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_the_batch_is_the_one_the_cpu_gets():
    buf = _filled(64)
    for _ in range(3):  # both pinned blocks, and one of them again
        on_cpu = buf.sample(16, np.random.default_rng(5), "cpu")
        on_gpu = buf.sample(16, np.random.default_rng(5), "cuda")
        for k in FIELDS:
            assert torch.equal(getattr(on_gpu, k).cpu(), getattr(on_cpu, k)), k


def test_cpu_and_auto_without_a_gpu_resolve_to_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == resolve_device("auto") == torch.device("cpu")


def test_auto_takes_the_gpu_when_torch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")


def test_cuda_without_a_gpu_stops_before_any_work(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "run"
    assert main(["train", "--env", "Pendulum-v1", "--algo", "sac", "--seed", "0",
                 "--out", str(out), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fmer train: error: train.device: 'cuda', but ") and "--device cpu" in err
    assert len(err.splitlines()) == 1, err
    assert not out.exists()


def test_an_unknown_device_is_named():
    with pytest.raises(ConfigError, match="train.device: must be one of cpu, cuda, auto"):
        make_config("Pendulum-v1", "sac", 0, overrides={"train.device": "tpu"})


def test_float_fingerprint_is_stable_leaves_the_random_streams_and_names_other_kernels():
    torch.manual_seed(3)
    before = torch.get_rng_state()
    torch.set_num_threads(2)  # not the suite's one (conftest): the fingerprint's is one
    try:
        fingerprint = float_fingerprint()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    assert fingerprint == float_fingerprint() and len(fingerprint) == 16
    assert torch.equal(torch.get_rng_state(), before)
    if torch.backends.cpu.get_cpu_capability() == "DEFAULT":
        pytest.skip("this CPU already runs ATen's portable kernels: no other kernels to compare")
    # ATen's portable kernels round some of the ops differently from the vectorised ones
    code = "from fmer.device import float_fingerprint; print(float_fingerprint())"
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    portable = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, cwd=REPO, env=env)
    assert portable.stdout.strip() != fingerprint
