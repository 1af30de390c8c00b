"""Replay buffer: a numpy ring of transitions, sampled into float32 torch batches.

The ring stays in host memory whatever the training device: a batch is gathered there and
copied to the device once per update (a few hundred rows), which costs far less than the
update and keeps a 1M-transition buffer off a GPU that several runs may share."""

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
        return Batch(**{k: torch.from_numpy(v[idx]).to(device) for k, v in self.data.items()})

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
