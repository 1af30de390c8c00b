"""The training loop (``Trainer``), and ``train``: the loop run in a run directory, whose
lock, refusals, provenance and signals are fmer.rundir's (progress on stderr: fmer.progress;
the ``fmer train`` command: fmer.cli.train).

A complete run directory holds eval.csv, train.csv, meta.json and the final policy
(policy.pt: the actor alone, fmer.policy), written when the last step is done.

One run = one (config, seed). The loop: uniform random actions in the cube for the first
``train.learning_starts`` steps, then the agent's; one gradient update per env step once
``learning_starts`` steps are done and the buffer holds a batch; evaluation every
``train.eval_every`` steps and at the last step; a train.csv row every ``train.log_every`` steps.

Determinism: the same config and seed on the same machine give byte-identical eval.csv and
train.csv except the timing columns (fmer.runlog.TIMING_COLUMNS). Every random stream is
derived from the seed: python ``random``, the loop's numpy Generator (random actions, replay
sampling), torch's generators (network init on the CPU, the agent's sampling on its device;
fmer.device), and the env resets — each training episode and each evaluation episode is
reset with its own seed, a pure function of (run seed, episode number), so no env RNG state
has to be carried across episodes.

Non-finite values fail the run (meta.json's ``failure``): the update's metrics stay on the
agent's device, summed there (``IntervalMetrics``), and are read at every log row, evaluation
and checkpoint, not at every update (on a GPU each read waits for the queued work); the error
names the step at which a metric was first non-finite. At every log row the parameters and
optimiser states are checked too.

Threads: ``torch.set_num_threads(cfg.train.threads)`` (default 1) is authoritative; it
overrides OMP_NUM_THREADS for torch. Runs scale by running several processes, not threads.

Device: ``train.device`` (``--device``) puts the agent on the CPU, a CUDA GPU, or the GPU when
there is one (fmer.device); ``cuda`` without a GPU stops before anything is written. The
determinism above is the CPU's; what holds on a GPU is in fmer.device. A checkpoint resumes
on either device, and meta.json records each session's device. How the update runs
(``train.compile``, ``train.precision``: fmer.execution) is recorded beside it, as
``execution``; a run may resume compiled or not, never in another precision.

Resumption (see fmer.checkpoint): every ``train.checkpoint_every`` steps, and on SIGTERM/SIGINT,
the loop saves agent, optimisers, RNG states, counters, the replay rows, the interval metric
sums and the CSVs' sizes. MuJoCo envs are not saved: the episode in progress is rebuilt by
resetting the env with that episode's seed and replaying its actions, which is exact because
the simulation is deterministic; the rebuilt observation is checked bit for bit against the
saved one. Running ``fmer train`` again with the same ``--out`` resumes; the CSVs are cut back
to the checkpoint and continue, so a killed-and-resumed run writes the same logs as one that
was never interrupted. It refuses, touching nothing, a directory holding a complete run, a run
of another config (naming the keys), a run that failed on a non-finite value, logs without a
meta.json, or a damaged checkpoint (naming the file). One process per directory (a lock file;
fmer.rundir).
"""

from __future__ import annotations

import importlib.util
import math
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmer import execution, rundir
from fmer.buffer import ReplayBuffer
from fmer.checkpoint import Checkpointer, CheckpointError
from fmer.config import PLACEMENT_KEYS, Config, ConfigError, diff
from fmer.device import resolve_device, use_cuda_determinism
from fmer.envs import make_env
from fmer.evaluation import (
    LOOP_RNG,
    TRAIN_EPISODE,
    derive_seed,
    episode_seeds,
    eval_row,
    make_eval_env,
    run_episodes,
)
from fmer.nets import ActionBox
from fmer.policy import save_policy
from fmer.progress import Progress
from fmer.runlog import (
    EVAL_COLUMNS,
    LOG_FILES,
    POLICY_FILE,
    TENSORBOARD_EXTRA,
    CsvLog,
    TensorBoardLog,
    sha256_file,
    train_columns,
    write_meta,
)


class NonFiniteError(RuntimeError):
    def __init__(self, step: int, quantity: str):
        super().__init__(f"non-finite {quantity} at step {step}")
        self.step, self.quantity = step, quantity


class TrainInterrupted(RuntimeError):
    def __init__(self, signum: int, step: int):
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name} at step {step}; checkpoint saved, run the same "
                         "command again to resume")
        self.signum, self.step = signum, step


def make_agent(cfg: Config, obs_dim: int, box: ActionBox, compile_mode: str | None = None):
    """The agent of ``cfg.algo`` on the device ``cfg.train.device`` names, its updates run
    as ``train.compile`` and ``train.precision`` say (fmer.execution; ``compile_mode``: by
    default the device's)."""
    return execution.apply(_build_agent(cfg, obs_dim, box), cfg.train, compile_mode)


def _build_agent(cfg: Config, obs_dim: int, box: ActionBox):
    device = resolve_device(cfg.train.device)
    if cfg.algo == "sac":
        from fmer.sac import SAC

        return SAC(obs_dim, box, cfg, device)
    if cfg.algo == "fmer":
        from fmer.agent import FMER

        return FMER(obs_dim, box, cfg, device)
    if cfg.algo == "qvpo":
        from fmer.qvpo import QVPO

        return QVPO(obs_dim, box, cfg, device)
    raise ConfigError(f"algo: no agent for {cfg.algo!r}")


def _finite_or_raise(state: Any, step: int, prefix: str = "") -> None:
    """Walk a state_dict; raise NonFiniteError naming the first non-finite float tensor."""
    if isinstance(state, torch.Tensor):
        if state.is_floating_point() and not torch.isfinite(state).all():
            raise NonFiniteError(step, f"parameter {prefix}")
    elif isinstance(state, dict):
        for k, v in state.items():
            _finite_or_raise(v, step, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(state, list | tuple):
        for i, v in enumerate(state):
            _finite_or_raise(v, step, f"{prefix}[{i}]")


class IntervalMetrics:
    """The agent's metrics summed over a log interval, on its device, and the first step at
    which each was non-finite: adding an update's metrics never waits for the device; reading
    them (``check``, ``sums``) does, at a log row, an evaluation or a checkpoint.

    The sums are float64, as the Python floats they replace: the same additions in the same
    order, so the logged means keep their bits. A metric given as a number (a constant of the
    config) is filled in on the device, not copied there."""

    def __init__(self, names: tuple[str, ...], device: torch.device):
        self.names, self.device = names, device
        self.totals = torch.zeros(len(names), dtype=torch.float64, device=device)
        self.first_non_finite = torch.full((len(names),), -1, dtype=torch.int64, device=device)

    def add(self, metrics: dict[str, float | torch.Tensor], step: int) -> None:
        values = torch.stack([
            v.to(torch.float64) if isinstance(v, torch.Tensor)
            else torch.full((), v, dtype=torch.float64, device=self.device)
            for v in (metrics[name] for name in self.names)])
        self.totals += values
        new = ~torch.isfinite(values) & (self.first_non_finite < 0)
        self.first_non_finite = torch.where(new, step, self.first_non_finite)

    def check(self) -> None:
        """NonFiniteError naming the first step at which a metric was non-finite (the first
        such metric in ``names``), if any was."""
        steps = self.first_non_finite.tolist()
        found = [s for s in steps if s >= 0]
        if found:
            first = min(found)
            raise NonFiniteError(first, self.names[steps.index(first)])

    def sums(self) -> dict[str, float]:
        return dict(zip(self.names, self.totals.tolist(), strict=True))

    def load(self, sums: dict[str, float]) -> None:
        self.totals = torch.tensor([sums[name] for name in self.names], dtype=torch.float64,
                                   device=self.device)

    def reset(self) -> None:
        self.totals.zero_()


class Trainer:
    """The loop's whole state, and what it takes to save and restore it exactly."""

    def __init__(self, cfg: Config, out: Path):
        self.cfg, self.out = cfg, out
        t = cfg.train
        random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(derive_seed(cfg.seed, LOOP_RNG))
        self.env = make_env(cfg.env, derive_seed(cfg.seed, TRAIN_EPISODE))
        self.eval_env = make_eval_env(cfg.env, cfg.seed)
        space = self.env.action_space
        self.box = ActionBox(space.low, space.high)
        self.obs_dim = obs_dim = self.env.observation_space.shape[0]
        self.agent = make_agent(cfg, obs_dim, self.box)
        self.metric_names = tuple(self.agent.metric_names)
        self.buffer = ReplayBuffer(obs_dim, self.box.dim, t.buffer_size or t.total_steps)
        self.checkpointer = Checkpointer(out / "checkpoint")
        self.step = 0
        self.episode = 0
        self.episode_actions: list[np.ndarray] = []
        self.obs = self._reset_episode()
        self.metrics = IntervalMetrics(self.metric_names, self.agent.device)
        self.n_updates = 0  # in the current log interval
        self.evals_done = 0
        self.last_eval = math.nan
        self.wall_before = 0.0  # wall time of earlier sessions of this run
        self.stop_signal: int | None = None
        self.stop_file: rundir.StopFile | None = None  # the workflow's stop (fmer.rundir)

    def stop(self, signum: int) -> None:
        """Checkpoint and stop at the end of the current step (a signal's request)."""
        self.stop_signal = signum

    # --- env ---------------------------------------------------------------------------------
    def _reset_episode(self) -> np.ndarray:
        self.episode_actions = []
        obs, _ = self.env.reset(seed=derive_seed(self.cfg.seed, TRAIN_EPISODE, self.episode))
        return obs

    def _env_step(self, action: np.ndarray):
        next_obs, reward, terminated, truncated, _ = self.env.step(self.box.to_env(action))
        self.episode_actions.append(action)
        return next_obs, float(reward), bool(terminated), bool(truncated)

    # --- checkpoint --------------------------------------------------------------------------
    def state_dict(self, logs: dict[str, CsvLog], wall: float) -> dict:
        rng = {"python": random.getstate(), "numpy": self.rng.bit_generator.state,
               "torch": torch.get_rng_state()}
        device = self.agent.device
        if device.type == "cuda":  # the agent's sampling draws from the GPU's generator
            rng["cuda"] = torch.cuda.get_rng_state(device)
        return {
            "config": self.cfg.flat(),
            "step": self.step,
            "episode": self.episode,
            "episode_actions": np.array(self.episode_actions, np.float32),
            "obs": self.obs,
            "sums": self.metrics.sums(),
            "n_updates": self.n_updates,
            "evals_done": self.evals_done,
            "last_eval": self.last_eval,
            "wall": wall,
            "log_sizes": {name: log.size for name, log in logs.items()},
            "rng": rng,
            "agent": self.agent.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        # a key added to the config since the checkpoint was saved had its default then
        keys = diff(self.cfg, {**Config().flat(), **state["config"]}, ignore=PLACEMENT_KEYS)
        if keys:
            raise CheckpointError(f"{self.checkpointer.dir}: saved with a different config "
                                  f"(differs in: {', '.join(keys)})")
        self.agent.load_state_dict(state["agent"])
        self.step, self.episode = state["step"], state["episode"]
        self.metrics.load(state["sums"])
        self.n_updates = state["n_updates"]
        self.evals_done, self.last_eval = state["evals_done"], state["last_eval"]
        self.wall_before = state["wall"]
        self.obs = self._reset_episode()
        for action in state["episode_actions"]:
            self.obs, *_ = self._env_step(action)
        if not np.array_equal(self.obs, state["obs"]):
            raise CheckpointError(f"{self.checkpointer.dir}: replaying episode {self.episode} "
                                  "did not reproduce the saved observation (non-deterministic "
                                  "env or different library versions)")
        random.setstate(state["rng"]["python"])
        self.rng.bit_generator.state = state["rng"]["numpy"]
        torch.set_rng_state(state["rng"]["torch"])
        # A checkpoint from another device has no state for this one's generator, which then
        # continues from its seed: the run goes on, no longer bit-identical to an unbroken one.
        if self.agent.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.agent.device)

    # --- evaluation --------------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        deterministic = self.cfg.eval.deterministic
        episodes = run_episodes(
            self.eval_env,
            lambda obs: self.box.to_env(self.agent.act(obs, deterministic=deterministic)),
            episode_seeds(self.cfg.seed, self.evals_done, self.cfg.train.eval_episodes))
        self.evals_done += 1
        return {"step": self.step, **eval_row(episodes)}

    # --- the loop ----------------------------------------------------------------------------
    def run(self, logs: dict[str, CsvLog], tensorboard: TensorBoardLog | None = None) -> None:
        cfg, t = self.cfg, self.cfg.train
        session_start = time.perf_counter()
        mark = (session_start, self.step, self.n_updates)  # start of the timed interval
        progress = Progress(f"{cfg.env} {cfg.algo} seed {cfg.seed}", t.total_steps, self.step)
        try:
            while self.step < t.total_steps:
                if self.step < t.learning_starts:
                    action = self.rng.uniform(-1.0, 1.0, self.box.dim).astype(np.float32)
                else:
                    action = self.agent.act(self.obs, deterministic=False)
                next_obs, reward, terminated, truncated = self._env_step(action)
                self.buffer.add(self.obs, action, reward, next_obs, terminated)
                self.obs = next_obs
                if terminated or truncated:
                    self.episode += 1
                    self.obs = self._reset_episode()
                self.step += 1
                progress.update()

                if self.step >= t.learning_starts and len(self.buffer) >= t.batch_size:
                    batch = self.buffer.sample(t.batch_size, self.rng, self.agent.device)
                    self.metrics.add(self.agent.update(batch), self.step)
                    self.n_updates += 1

                last = self.step == t.total_steps
                log_now = self.step % t.log_every == 0 or last
                eval_now = self.step % t.eval_every == 0 or last
                if log_now or eval_now:  # nothing non-finite is logged (nor saved, below)
                    self.metrics.check()
                logged = None
                if log_now:
                    _finite_or_raise(self.agent.state_dict(), self.step)
                    now = time.perf_counter()
                    dt = max(now - mark[0], 1e-9)
                    row = {"step": self.step,
                           "updates_per_s": (self.n_updates - mark[2]) / dt,
                           "env_steps_per_s": (self.step - mark[1]) / dt}
                    for name, total in self.metrics.sums().items():
                        row[name] = total / self.n_updates if self.n_updates else None
                    logs["train.csv"].write(row)
                    if tensorboard:
                        tensorboard.write("train", row)
                    logged = row
                    self.metrics.reset()
                    self.n_updates = 0
                    mark = (time.perf_counter(), self.step, 0)
                if eval_now:
                    row = self.evaluate()
                    row["wall_time_s"] = self.wall_before + time.perf_counter() - session_start
                    logs["eval.csv"].write(row)
                    if tensorboard:
                        tensorboard.write("eval", row)
                    self.last_eval = row["return_mean"]
                    progress.evaluated(self.last_eval)
                if logged:  # after the evaluation of this step, if any
                    progress.line(self.step, logged["env_steps_per_s"], self.last_eval)
                if self.stop_file is not None and self.stop_signal is None:
                    signum = self.stop_file.signal()
                    if signum is not None:  # never undo a signal's request in between
                        self.stop(signum)
                if (self.step % t.checkpoint_every == 0 and not last) or self.stop_signal:
                    self.metrics.check()
                    wall = self.wall_before + time.perf_counter() - session_start
                    self.checkpointer.save(self.state_dict(logs, wall), self.buffer)
                if self.stop_signal and not last:
                    raise TrainInterrupted(self.stop_signal, self.step)
            if t.keep_checkpoint:
                wall = self.wall_before + time.perf_counter() - session_start
                self.checkpointer.save(self.state_dict(logs, wall), self.buffer)
        finally:
            progress.close()


def train(cfg: Config, out_dir: str | Path, variant: str | None = None,
          budget: str | None = None, stop_file: str | Path | None = None) -> Path:
    """Train one run into ``out_dir``, resuming an unfinished run of the same config there
    (on any device: ``train.device`` is not part of what must match). ``stop_file``: once it
    appears, stop as on the signal it names (fmer.rundir.StopFile)."""
    device = resolve_device(cfg.train.device)  # no GPU for `cuda`: stop before any work
    use_cuda_determinism(device)
    out = Path(out_dir)
    if cfg.train.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(f"train.tensorboard=true needs the optional extra: {TENSORBOARD_EXTRA}")
    torch.set_num_threads(cfg.train.threads)
    out.mkdir(parents=True, exist_ok=True)
    with rundir.exclusive(out):
        meta = rundir.previous_run(out, cfg)
        trainer = Trainer(cfg, out)
        if stop_file is not None:
            trainer.stop_file = rundir.StopFile(stop_file)
        state = trainer.checkpointer.load(trainer.buffer) if meta else None
        if state is not None:
            trainer.load_state_dict(state)
        if meta is None:
            meta = rundir.new_meta(cfg, device, variant, budget)
        else:
            meta["resumes"].append(rundir.resumption(cfg, device, trainer.step))
        # pid: `fmer status` tells a live run from a killed one (on the same host)
        meta.update(status="running", ended=None, error=None, interrupted=False, sha256=None,
                    pid=os.getpid())
        meta_path = out / "meta.json"
        write_meta(meta_path, meta)
        sizes = state["log_sizes"] if state else {}
        logs = {
            "eval.csv": CsvLog(out / "eval.csv", EVAL_COLUMNS, sizes.get("eval.csv")),
            "train.csv": CsvLog(out / "train.csv", train_columns(trainer.metric_names),
                                sizes.get("train.csv")),
        }
        tensorboard = (TensorBoardLog(out / "tb", trainer.step) if cfg.train.tensorboard
                       else None)
        try:
            with rundir.stop_on_signals(trainer.stop):
                trainer.run(logs, tensorboard)
        except BaseException as exc:
            meta.update(status="failed", ended=rundir.now(), error=str(exc) or type(exc).__name__,
                        interrupted=isinstance(exc, TrainInterrupted))
            if isinstance(exc, NonFiniteError):
                meta["failure"] = {"step": exc.step, "quantity": exc.quantity}
            write_meta(meta_path, meta)
            raise
        finally:
            for log in logs.values():
                log.close()
            if tensorboard:
                tensorboard.close()
        save_policy(out / POLICY_FILE, trainer.agent, cfg, trainer.obs_dim, trainer.box)
        meta.update(status="complete", ended=rundir.now(),
                    sha256={name: sha256_file(out / name) for name in (*LOG_FILES, POLICY_FILE)})
        write_meta(meta_path, meta)
        if not cfg.train.keep_checkpoint:
            trainer.checkpointer.remove()
    return out
