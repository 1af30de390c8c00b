"""Checkpoints that survive being killed at any moment, and refuse to load if damaged.

Layout of ``RUN/checkpoint/``:
- ``state.pt``: everything but the replay rows (networks, optimisers, RNG states, counters,
  log sizes) and the list of buffer chunk files. Writing it is the commit point.
- ``buffer-<start>-<end>.pt``: replay transitions ``start..end-1``. Each checkpoint writes only
  the rows added since the previous one, so a 1M-step run does not rewrite gigabytes each time.

Every file is written to ``*.tmp`` and renamed into place (atomic on POSIX), and starts with a
magic line and the sha256 of its payload, so a truncated or edited file is named, not loaded.
Files no longer referenced by ``state.pt`` are deleted only after it has been replaced.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path

import torch

from fmer.buffer import ReplayBuffer

MAGIC = b"FMER-CHECKPOINT-1\n"
STATE = "state.pt"


class CheckpointError(RuntimeError):
    """A checkpoint that exists but cannot be used; the message names the file."""


def _write_blob(path: Path, obj) -> None:
    payload = io.BytesIO()
    torch.save(obj, payload)
    data = payload.getvalue()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(MAGIC + hashlib.sha256(data).digest() + data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_blob(path: Path):
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint file: {exc}") from exc
    head = len(MAGIC) + 32
    if not raw.startswith(MAGIC) or len(raw) < head:
        raise CheckpointError(f"{path}: not an fmer checkpoint file (bad header or truncated)")
    digest, data = raw[len(MAGIC):head], raw[head:]
    if hashlib.sha256(data).digest() != digest:
        raise CheckpointError(f"{path}: corrupt checkpoint file (checksum mismatch: truncated "
                              "or modified); delete the run directory to start again")
    # our own file, checksummed: full unpickling (numpy RNG states, python tuples) is safe.
    # Tensors come to the CPU whatever device saved them; the agent moves them to its own.
    return torch.load(io.BytesIO(data), weights_only=False, map_location="cpu")


class Checkpointer:
    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.chunks: list[dict] = []  # {"file", "start", "end"}, in order
        self.saved_until = 0  # buffer rows numbered below this are in chunk files

    def save(self, state: dict, buffer: ReplayBuffer) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        rows = buffer.state_dict(since=self.saved_until)
        end = buffer.added
        if end > rows["start"]:
            name = f"buffer-{rows['start']:012d}-{end:012d}.pt"
            _write_blob(self.dir / name, rows)
            self.chunks.append({"file": name, "start": rows["start"], "end": end})
        self.saved_until = end
        # chunks whose rows have all been overwritten in the ring are no longer needed
        oldest = buffer.added - len(buffer)
        self.chunks = [c for c in self.chunks if c["end"] > oldest]
        _write_blob(self.dir / STATE, {**state, "buffer_chunks": self.chunks,
                                       "buffer_added": end})
        keep = {STATE, *(c["file"] for c in self.chunks)}
        for path in self.dir.iterdir():
            if path.name not in keep:
                path.unlink()

    def load(self, buffer: ReplayBuffer) -> dict | None:
        """The saved state, with ``buffer`` refilled; None if no checkpoint was committed."""
        if not (self.dir / STATE).exists():
            return None
        state = _read_blob(self.dir / STATE)
        for chunk in state["buffer_chunks"]:
            buffer.load_state_dict(_read_blob(self.dir / chunk["file"]))
        if buffer.added != state["buffer_added"]:
            raise CheckpointError(f"{self.dir}: buffer chunks hold {buffer.added} transitions, "
                                  f"{STATE} expects {state['buffer_added']}")
        self.chunks = list(state.pop("buffer_chunks"))
        self.saved_until = state.pop("buffer_added")
        return state

    def load_state(self) -> dict | None:
        """The saved state without the replay rows (enough to rebuild the agent); None if no
        checkpoint was committed."""
        return _read_blob(self.dir / STATE) if (self.dir / STATE).exists() else None

    def step(self) -> int | None:
        """The training step of the committed checkpoint (where a resumed run starts); None
        if there is none."""
        state = self.load_state()
        return None if state is None else int(state["step"])

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
