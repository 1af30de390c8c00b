"""Replay buffer: a numpy ring of transitions, sampled into float32 torch batches.

The ring stays in host memory whatever the training device: a batch is gathered there and
copied to the device once per update (a few hundred rows), which costs far less than the
update and keeps a 1M-transition buffer off a GPU that several runs may share.

On a GPU the batch is gathered into one pinned (page-locked) host block, its five fields one
after another, and copied in one asynchronous transfer, which does not wait for the GPU's
queued work (a copy from ordinary memory would); two blocks take turns, and a block is reused
only once its last copy is done. On the CPU a batch is the gathered arrays themselves."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated")


@dataclass
class Batch:
    obs: torch.Tensor  # (B, obs_dim)
    actions: torch.Tensor  # (B, act_dim), in the cube (-1, 1)^d
    rewards: torch.Tensor  # (B,)
    next_obs: torch.Tensor  # (B, obs_dim)
    terminated: torch.Tensor  # (B,) 1.0 where the episode truly ended (never for truncation)


class ReplayBuffer:
    """Fixed-capacity ring. ``added`` counts every transition ever added; transition number
    ``t`` lives in slot ``t % capacity`` until it is overwritten."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int):
        if capacity <= 0:
            raise ValueError(f"replay capacity must be > 0, got {capacity}")
        self.capacity = capacity
        self.data = {
            "obs": np.zeros((capacity, obs_dim), np.float32),
            "actions": np.zeros((capacity, act_dim), np.float32),
            "rewards": np.zeros(capacity, np.float32),
            "next_obs": np.zeros((capacity, obs_dim), np.float32),
            "terminated": np.zeros(capacity, np.float32),
        }
        self.added = 0
        self._staging: Staging | None = None  # on a GPU (sample)

    def __len__(self) -> int:
        return min(self.added, self.capacity)

    def add(self, obs, action, reward: float, next_obs, terminated: bool) -> None:
        i = self.added % self.capacity
        d = self.data
        d["obs"][i] = obs
        d["actions"][i] = action
        d["rewards"][i] = reward
        d["next_obs"][i] = next_obs
        d["terminated"][i] = float(terminated)
        self.added += 1

    def sample(self, batch_size: int, rng: np.random.Generator,
               device: torch.device | str) -> Batch:
        """``batch_size`` stored transitions drawn uniformly with ``rng``, on ``device``."""
        idx = rng.integers(0, len(self), size=batch_size)
        device = torch.device(device)
        if device.type != "cuda":
            return Batch(**{k: torch.from_numpy(v[idx]).to(device) for k, v in self.data.items()})
        if self._staging is None or self._staging.rows != batch_size:
            self._staging = Staging(self.data, batch_size, pinned=True)
        return self._staging.to_device(self.data, idx, device)

    def state_dict(self, since: int = 0) -> dict:
        """The stored transitions numbered ``since`` onwards (those still held), oldest first.

        ``since`` lets a checkpoint write only what was added after the previous one."""
        start = max(since, self.added - len(self))
        slots = np.arange(start, self.added) % self.capacity
        return {"start": start, **{k: v[slots].copy() for k, v in self.data.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Append a ``state_dict`` chunk: restores an empty buffer, or continues one whose
        ``added`` equals the chunk's ``start`` (chunks loaded in the order they were saved)."""
        if self.added == 0:
            self.added = state["start"]
        elif state["start"] != self.added:
            raise ValueError(f"buffer chunk starts at transition {state['start']}, "
                             f"but the buffer holds {self.added}")
        n = len(state["rewards"])
        slots = np.arange(self.added, self.added + n) % self.capacity
        for k in FIELDS:
            if n > self.capacity:  # only the newest `capacity` rows survive a wrap
                self.data[k][slots[-self.capacity:]] = state[k][-self.capacity:]
            else:
                self.data[k][slots] = state[k]
        self.added += n


class Staging:
    """A batch's fields packed into one flat float32 host block, each field a contiguous
    run: gathered there, copied to a device in one transfer and split into views there.
    Pinned blocks (CUDA) are two, used in turn; a block is written again only after the
    copy out of it is done (a CUDA event), so an update may still be reading the other."""

    def __init__(self, data: dict[str, np.ndarray], rows: int, pinned: bool):
        self.rows = rows
        self.widths = {k: int(np.prod(data[k].shape[1:])) for k in FIELDS}
        self.shapes = {k: (rows, *data[k].shape[1:]) for k in FIELDS}
        size = rows * sum(self.widths.values())
        self.blocks = [torch.empty(size, dtype=torch.float32, pin_memory=pinned)
                       for _ in range(2 if pinned else 1)]
        self.copied: list[torch.cuda.Event | None] = [None] * len(self.blocks)
        self.turn = 0

    def gather(self, data: dict[str, np.ndarray], idx: np.ndarray) -> torch.Tensor:
        """The rows ``idx`` of every field, packed into the next block."""
        i = self.turn
        if self.copied[i] is not None:
            self.copied[i].synchronize()
        block = self.blocks[i].numpy()
        start = 0
        for k in FIELDS:
            end = start + self.rows * self.widths[k]
            np.take(data[k], idx, axis=0, out=block[start:end].reshape(self.shapes[k]))
            start = end
        return self.blocks[i]

    def split(self, flat: torch.Tensor) -> Batch:
        fields, start = {}, 0
        for k in FIELDS:
            end = start + self.rows * self.widths[k]
            fields[k] = flat[start:end].view(self.shapes[k])
            start = end
        return Batch(**fields)

    def to_device(self, data: dict[str, np.ndarray], idx: np.ndarray,
                  device: torch.device) -> Batch:
        i = self.turn
        flat = self.gather(data, idx).to(device, non_blocking=True)
        if device.type == "cuda":
            self.copied[i] = torch.cuda.Event()
            self.copied[i].record()
        self.turn = (i + 1) % len(self.blocks)
        return self.split(flat)
