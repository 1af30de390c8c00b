"""A run's final policy: saved in its run directory when it completes, loaded without the agent.

``policy.pt`` holds the actor's weights (FMER: the velocity field; SAC: the Gaussian actor) and
what rebuilds it: the algorithm, the observation and action dimensions, the action box and the
resolved config the run trained with. No critic, optimiser or replay buffer (~0.3 MB at the
package's 2x256 networks); QVPO's actor is its noise net and the twin Q that picks among its
samples (~1.8 MB at its 3x256 networks). It is a plain ``torch.save`` of tensors, numbers,
strings and lists, read back with ``torch.load(weights_only=True)``: torch's restricted
unpickler, which builds no arbitrary objects, so a policy file from someone else cannot run
code. (safetensors would do the same, but holds only flat tensors with string metadata and is
one more dependency.)

``load_policy(run_dir)`` returns a ``Policy`` whose ``act`` computes exactly what the agent's
``act`` did during training (the same functions: fmer.sac.gaussian_act, fmer.agent.flow_act,
fmer.qvpo.diffusion_act), so a loaded policy evaluated on a run's own evaluation episodes
reproduces its eval.csv (tests/test_policy.py). ``meta.json`` records the file's sha256
(fmer.runlog.verify_run).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmer.config import Config, ConfigError, config_from_dict
from fmer.evaluation import Episodes, episode_seeds, make_eval_env, run_episodes
from fmer.nets import ActionBox
from fmer.runlog import POLICY_FILE, RunLogError, read_meta

FORMAT = 1  # the layout of policy.pt; a reader refuses any other


class PolicyError(RunLogError):
    """No policy to load, or one this version cannot rebuild; the message says which."""


def _parts(algo: str) -> tuple[Callable, Callable]:
    """(build the actor network, act with it) of ``algo``."""
    if algo == "sac":
        from fmer.sac import gaussian_act, make_actor

        return make_actor, lambda net, s, det, cfg, box: gaussian_act(net, s, det, box.log_det)
    if algo == "fmer":
        from fmer.agent import flow_act, make_velocity

        return make_velocity, lambda net, s, det, cfg, box: flow_act(
            net, s, cfg.actor.flow_steps, det and cfg.eval.deterministic)
    if algo == "qvpo":
        from fmer.qvpo import diffusion_act, make_policy

        return make_policy, lambda net, s, det, cfg, box: diffusion_act(
            net, s, det and cfg.eval.deterministic, cfg.qvpo)
    raise ConfigError(f"algo: no policy for {algo!r}")


def save_policy(path: Path, agent, cfg: Config, obs_dim: int, box: ActionBox) -> None:
    """Write the agent's actor to ``path`` atomically (a reader never sees half a file)."""
    state = {
        "format": FORMAT,
        "algo": cfg.algo,
        "obs_dim": int(obs_dim),
        "act_dim": int(box.dim),
        "action_low": [float(x) for x in box.low],
        "action_high": [float(x) for x in box.high],
        "config": cfg.to_dict(),
        "weights": {k: v.detach().cpu() for k, v in agent.policy_net.state_dict().items()},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


class Policy:
    """A trained policy: ``act(obs)`` maps env observations to env actions."""

    def __init__(self, state: dict[str, Any], device: str | torch.device, source: str):
        try:
            self.config = config_from_dict(state["config"])
        except ConfigError as exc:
            raise PolicyError(f"{source}: this version cannot rebuild the policy's config: "
                              f"{exc}") from exc
        self.algo, self.obs_dim = state["algo"], state["obs_dim"]
        self.box = ActionBox(np.array(state["action_low"]), np.array(state["action_high"]))
        self.device = torch.device(device)
        build, self._act = _parts(self.algo)
        self.net = build(self.obs_dim, state["act_dim"], self.config).to(self.device)
        try:
            self.net.load_state_dict(state["weights"])
        except RuntimeError as exc:
            raise PolicyError(f"{source}: the weights do not fit the network its config "
                              f"describes: {exc}") from exc
        self.net.eval()

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Env action(s) for one observation (obs_dim,) or a batch (B, obs_dim). Deterministic
        is the run's evaluation mode (eval.deterministic); otherwise a sample from torch's
        global generator (seed it with ``torch.manual_seed``). One observation is computed
        as the training loop computed it; a batch may differ from row-by-row calls in the last
        bits (another matmul kernel), and QVPO's evaluation, whose noise is a fixed draw laid
        out over the batch, in its samples."""
        obs = np.asarray(obs)
        if obs.shape[-1:] != (self.obs_dim,) or obs.ndim not in (1, 2):
            raise ValueError(f"obs must be ({self.obs_dim},) or (B, {self.obs_dim}), "
                             f"got {obs.shape}")
        s = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        cube = self._act(self.net, s.reshape(-1, self.obs_dim), deterministic, self.config,
                         self.box)
        a = cube.cpu().numpy().astype(np.float32)
        return self.box.to_env(a[0] if obs.ndim == 1 else a)


def policy_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / POLICY_FILE


def load_policy(run_dir: str | Path, device: str | torch.device = "cpu") -> Policy:
    """The final policy of the run in ``run_dir``; PolicyError naming the run if there is none
    (runs made before policies were saved have none: retrain them to get one)."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir / "meta.json")
    path = policy_path(run_dir)
    if not path.is_file():
        why = ("it completed before runs saved their policy" if meta["status"] == "complete"
               else f"it is not complete (status {meta['status']})")
        raise PolicyError(f"{run_dir}: no policy saved ({POLICY_FILE}): {why}; train it again "
                          "(delete the directory and rerun its fmer train or snakemake command) "
                          "to get one")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged or foreign file: torch raises many kinds
        raise PolicyError(f"{path}: not a loadable policy file: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise PolicyError(f"{path}: policy format {found!r}, this version reads {FORMAT}")
    return Policy(state, device, str(path))


def run_evaluations(run_dir: str | Path) -> int:
    """How many evaluations the run made (rows of its eval.csv)."""
    with open(Path(run_dir) / "eval.csv") as f:
        return sum(1 for _ in f) - 1


def evaluate_policy(run_dir: str | Path, episodes: int | None = None, seed: int | None = None,
                    stochastic: bool = False, device: str = "cpu") -> tuple[Policy, Episodes]:
    """Evaluate the run's saved policy. Defaults give the run's own last evaluation: its
    evaluation env, its number of episodes and their reset seeds, so the result equals the last
    row of its eval.csv. More ``episodes`` extend that evaluation's seed stream; ``seed``
    replaces the run's seed in it (other episodes); ``stochastic`` samples actions, from
    torch's generator seeded with the seed (the global generator is left as it was)."""
    policy = load_policy(run_dir, device)
    cfg = policy.config
    seed = cfg.seed if seed is None else seed
    n = cfg.train.eval_episodes if episodes is None else episodes
    seeds = episode_seeds(seed, max(run_evaluations(run_dir) - 1, 0), n)
    env = make_eval_env(cfg.env, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        result = run_episodes(env, lambda obs: policy.act(obs, deterministic=not stochastic),
                              seeds)
    env.close()
    return policy, result
