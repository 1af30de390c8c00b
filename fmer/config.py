"""One typed config for a training run, loaded from YAML and overridden with ``key=value``.

Every choice the paper leaves open is a key here (see ``RECONSTRUCTED``), so that a reader
who later sees the authors' code can flip it. Sections mirror ``docs/FMER.md``.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config that cannot describe a run: unknown key, wrong type, out-of-range value."""


def did_you_mean(word: str, choices) -> str:
    """``" (did you mean X?)"`` for the closest of ``choices`` to a misspelled ``word``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


@dataclass
class TrainConfig:
    total_steps: int = 1_000_000
    learning_starts: int = 5_000  # [ours] uniform random actions before the first update
    eval_every: int = 10_000
    eval_episodes: int = 10  # [ours]
    log_every: int = 1_000
    threads: int = 1
    device: str = "cpu"  # "cpu", "cuda" or "auto" (CUDA when torch sees a GPU); fmer.device
    # How the update runs (fmer.execution): compiled (torch.compile; numbers differ from eager
    # in float rounding only) and in float32 or bf16 autocast (changes the numbers: a setting)
    compile: bool = False
    precision: str = "float32"  # "float32" or "bfloat16"
    batch_size: int = 256
    buffer_size: int = 0  # [ours] 0 means "as many as total_steps"
    checkpoint_every: int = 10_000
    keep_checkpoint: bool = False
    tensorboard: bool = False  # also write the logged scalars to RUN/tb/ (optional extra)


@dataclass
class CriticConfig:
    hidden: list[int] = field(default_factory=lambda: [256, 256])  # [ours]
    lr: float = 3e-4
    gamma: float = 0.99
    polyak: float = 0.005
    entropy_bonus: bool = True  # [ours] soft TD target with -alpha log pi(a'|s')


@dataclass
class ActorConfig:
    hidden: list[int] = field(default_factory=lambda: [256, 256])  # [ours]
    activation: str = "silu"  # [ours] FMER velocity net; SAC's actor uses ReLU
    lr: float = 3e-4
    flow_steps: int = 10  # [v1-summary] Euler steps K
    time_embedding: str = "sinusoidal"  # [ours] "sinusoidal" or "linear"
    # The cost knobs below are [ours], kept by the defaults study (paper/defaults.md): no
    # cheaper setting matched these defaults' returns on Hopper-v5 and HalfCheetah-v5.
    candidates: int = 16  # [ours] N
    candidate_states: int = 0  # [ours] states of the batch that get candidates; 0 = all
    entropy_batch: int = 0  # [ours] states that get the entropy term; 0 = all
    weighting: str = "softmax"  # [paper] softmax; ablations: unnormalized, top1
    update_every: int = 1  # [ours] actor, α and τ updated every k-th critic update (TD3's delay)


@dataclass
class EntropyConfig:
    tanh_correction: bool = True  # [paper] ablation axis 2
    divergence: str = "hutchinson"  # [v1-summary] paper used Hutchinson; "exact" is the oracle
    probes: int = 1  # [ours]
    logdet: str = "trace"  # [ours] "trace" (paper's first order) or "exact"


@dataclass
class TemperatureConfig:
    ess_tuning: bool = True  # [paper] ablation axis 1
    ess_target: float = 0.5  # [ours] target batch mean of ESS/N
    min: float = 1e-4
    max: float = 1e3
    fixed: float = 0.1  # [ours] tau when ess_tuning is false


@dataclass
class AlphaConfig:
    initial: float = 1.0  # [ours] SAC's; FMER's is in ALGO_DEFAULTS
    lr: float = 3e-4
    target_entropy: float | None = None  # None: -dim(A)
    fixed: float | None = None  # a number turns tuning off; 0 is the "no entropy" ablation


@dataclass
class QVPOConfig:
    """QVPO's own settings (fmer.qvpo): its authors' MuJoCo ones (wadx2019/qvpo, main.py as run
    with --weighted --aug), each cited in docs/QVPO.md. Its widths and learning rates are
    ``actor.*``/``critic.*``, set for it in ALGO_DEFAULTS."""

    diffusion_steps: int = 20  # --n_timesteps, on the cosine schedule (--beta_schedule)
    train_samples: int = 64  # --train_sample: actions drawn per state for the weighted loss
    behaviour_samples: int = 4  # --behavior_sample: acting takes the best of these by Q
    target_samples: int = 4  # --target_sample: the TD target's next action, best of these
    eval_samples: int = 32  # --eval_sample: evaluation takes the best of these (docs/QVPO.md)
    entropy_weight: float = 0.02  # --entropy_alpha: the entropy term's weight at step 0
    entropy_weight_min: float = 0.002  # its floor as it decays linearly (main.py)
    entropy_decay_steps: int = 0  # env steps over which it decays to 0 (floored); 0: total_steps
    uniform_samples: int = 10  # uniform actions per state in the entropy term (agent/qvpo.py)
    time_features: int = 32  # width of the step embedding (agent/model.py)
    activation: str = "mish"  # noise-prediction and Q networks (agent/model.py)
    grad_norm: float = 2.0  # --ac_grad_norm: actor and critic gradients clipped to this norm
    adam_eps: float = 1e-5  # Adam's epsilon for the actor and the critic (agent/qvpo.py)


@dataclass
class EvalConfig:
    deterministic: bool = True  # [ours] FMER: z0 = 0; SAC: tanh(mean)


@dataclass
class Config:
    env: str = "Pendulum-v1"
    algo: str = "sac"
    seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)
    critic: CriticConfig = field(default_factory=CriticConfig)
    actor: ActorConfig = field(default_factory=ActorConfig)
    entropy: EntropyConfig = field(default_factory=EntropyConfig)
    temperature: TemperatureConfig = field(default_factory=TemperatureConfig)
    alpha: AlphaConfig = field(default_factory=AlphaConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    qvpo: QVPOConfig = field(default_factory=QVPOConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """Dotted keys to values, e.g. ``{"train.total_steps": 1000000, ...}``."""
        return dict(_flatten(self.to_dict()))


# Keys whose defaults are our reconstruction, not the paper's statement (docs list them).
RECONSTRUCTED = (
    "train.learning_starts", "train.eval_episodes", "train.batch_size", "train.buffer_size",
    "critic.hidden", "critic.lr", "critic.gamma", "critic.polyak", "critic.entropy_bonus",
    "actor.hidden", "actor.activation", "actor.lr", "actor.time_embedding", "actor.candidates",
    "actor.candidate_states", "actor.entropy_batch", "actor.update_every", "entropy.probes",
    "entropy.logdet",
    "temperature.ess_target", "temperature.min", "temperature.max", "temperature.fixed",
    "alpha.initial", "alpha.lr", "alpha.target_entropy", "eval.deterministic",
)

ALGOS = ("sac", "fmer", "qvpo")
DEVICES = ("cpu", "cuda", "auto")
PRECISIONS = ("float32", "bfloat16")
# The names the string keys may take. The modules that implement them (fmer.nets,
# fmer.velocity, fmer.flow, fmer.weights) dispatch on these names and take them from here, so
# that reading and checking a config never imports torch: every Snakemake start, `fmer plan`
# and `fmer status` checks the budget's configs.
ACTIVATIONS = ("relu", "silu", "mish", "tanh")
TIME_EMBEDDINGS = ("sinusoidal", "linear")
WEIGHTINGS = ("softmax", "unnormalized", "top1")
DIVERGENCES = ("exact", "hutchinson")
LOGDETS = ("trace", "exact")
# Where and how a run trains, not what it computes (the same experiment, in other roundings):
# a run may resume under another value (fmer.train), and meta.json records each session's.
PLACEMENT_KEYS = ("train.device", "train.compile")
# What a run writes besides its logs: its numbers do not depend on these (resume is bit-exact).
OUTPUT_KEYS = ("train.checkpoint_every", "train.keep_checkpoint", "train.tensorboard")
# SAC reads of FMER's actor only the widths and the learning rate, and none of the entropy
# estimator or the temperature (fmer.sac; tests/test_sac.py changes every other key and
# compares the logs), so a SAC run is still its budget's run when FMER's defaults change.
SAC_ACTOR_KEYS = ("actor.hidden", "actor.lr")
# QVPO reads of the actor and critic sections only the widths and learning rates, the critic's
# discount and Polyak rate (fmer.qvpo): no entropy estimator, temperature or alpha, and its
# TD target has no entropy bonus.
QVPO_KEYS = ("actor.hidden", "actor.lr", "critic.hidden", "critic.lr", "critic.gamma",
             "critic.polyak")

# Per-algorithm defaults, applied before a variant's own overrides. [ours] FMER starts with
# alpha = 0.05, SAC with CleanRL's 1.0: FMER's tau is set from the ESS, so alpha trades entropy
# against the CFM loss, not against Q. With alpha = 1 its policy stayed near uniform on
# Pendulum-v1 for 5k steps (-974 at 4k, seed 0) while alpha = 0.05 learned as fast as SAC
# (-186/-194/-388 at 5k, seeds 0-2; see tests/test_agent.py).
ALGO_DEFAULTS: dict[str, dict[str, Any]] = {
    "sac": {},
    "fmer": {"alpha.initial": 0.05},
    # The authors' networks (agent/model.py: three hidden layers of 256 for the noise net and
    # each critic) and actor learning rate (main.py --diffusion_lr); docs/QVPO.md
    "qvpo": {"actor.hidden": [256, 256, 256], "actor.lr": 1e-4,
             "critic.hidden": [256, 256, 256]},
}

# Named variants: an algorithm plus overrides. ``--algo fmer-no-ess`` is ``--algo fmer``
# with ``temperature.ess_tuning=false``; ``--set`` still composes on top. In the order the
# figures list (and colour) them: the paper's 2x2 ablation, SAC, the other ablations.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "fmer": ("fmer", {}),
    "fmer-no-tanh": ("fmer", {"entropy.tanh_correction": False}),
    "fmer-no-ess": ("fmer", {"temperature.ess_tuning": False}),
    "fmer-no-tanh-no-ess": (
        "fmer", {"entropy.tanh_correction": False, "temperature.ess_tuning": False}
    ),
    "sac": ("sac", {}),
    "fmer-top1": ("fmer", {"actor.weighting": "top1"}),
    "fmer-unnormalized": ("fmer", {"actor.weighting": "unnormalized"}),
    "fmer-no-entropy": ("fmer", {"alpha.fixed": 0.0}),
    # SAC at FMER's [ours] initial α: the baseline for comparisons that must change only the
    # algorithm (SAC's own 1.0 stays the `sac` row, CleanRL's choice)
    "sac-fmer-alpha": ("sac", {"alpha.initial": ALGO_DEFAULTS["fmer"]["alpha.initial"]}),
    # the paper's diffusion baseline (Ding et al., NeurIPS 2024), at its authors' settings
    "qvpo": ("qvpo", {}),
}



def _choices() -> dict[str, tuple[str, ...]]:
    """The string keys' valid values."""
    return {"train.device": DEVICES, "train.precision": PRECISIONS,
            "actor.activation": ACTIVATIONS, "actor.time_embedding": TIME_EMBEDDINGS,
            "actor.weighting": WEIGHTINGS, "entropy.divergence": DIVERGENCES,
            "entropy.logdet": LOGDETS, "qvpo.activation": ACTIVATIONS}


def _flatten(d: dict[str, Any], prefix: str = ""):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check ``value`` against a dataclass field's annotation; YAML scalars only."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        (inner,) = [a for a in options if a is not type(None)]
        return _coerce(key, value, inner)
    if origin is list:
        (inner,) = typing.get_args(annotation)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(f"{key}[{i}]", v, inner) for i, v in enumerate(value)]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise TypeError(f"unsupported annotation {annotation!r} for {key}")


def _fields(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _build(cls, data: dict[str, Any], prefix: str = ""):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    known = _fields(cls)
    unknown = sorted(set(data) - set(known))
    if unknown:
        names = ", ".join(prefix + k + did_you_mean(prefix + k, [prefix + n for n in known])
                          for k in unknown)
        raise ConfigError(f"unknown config key(s): {names}")
    kwargs = {}
    for name, annotation in known.items():
        if name not in data:
            continue
        key = prefix + name
        if dataclasses.is_dataclass(annotation):
            kwargs[name] = _build(annotation, data[name], key + ".")
        else:
            kwargs[name] = _coerce(key, data[name], annotation)
    return cls(**kwargs)


def parse_value(text: str) -> Any:
    """Parse the value of a ``--set key=value`` with YAML's scalar rules (true, [1, 2], null)."""
    value = yaml.safe_load(text) if text.strip() else ""
    if isinstance(value, str):
        # YAML 1.1 reads "1e-3" (no dot in the mantissa) as a string; a researcher means a number.
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {pair!r} is not of the form key=value")
        out[key.strip()] = parse_value(value)
    return out


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"config key {key!r} goes below a value")
        node[parts[-1]] = value
    return nested


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def validate(cfg: Config) -> Config:
    """Range checks that a type cannot express. Raises ConfigError naming the key."""
    from fmer.envs import ENV_NAMES, ENV_NAMES_HELP, is_known_env

    def need(ok: bool, key: str, what: str):
        if not ok:
            raise ConfigError(f"{key}: {what}, got {cfg.flat()[key]!r}")

    if not is_known_env(cfg.env):
        raise ConfigError(f"env: unknown environment {cfg.env!r}"
                          f"{did_you_mean(cfg.env, ENV_NAMES)}; valid: {ENV_NAMES_HELP}")
    need(cfg.algo in ALGOS, "algo", f"must be one of {', '.join(ALGOS)}")
    need(cfg.seed >= 0, "seed", "must be >= 0")
    t = cfg.train
    need(t.total_steps > 0, "train.total_steps", "must be > 0")
    need(t.learning_starts >= 0, "train.learning_starts", "must be >= 0")
    need(t.eval_every > 0, "train.eval_every", "must be > 0")
    need(t.eval_episodes > 0, "train.eval_episodes", "must be > 0")
    need(t.log_every > 0, "train.log_every", "must be > 0")
    need(t.threads > 0, "train.threads", "must be > 0")
    need(t.batch_size > 0, "train.batch_size", "must be > 0")
    need(t.buffer_size >= 0, "train.buffer_size", "must be >= 0 (0: total_steps)")
    need(t.checkpoint_every > 0, "train.checkpoint_every", "must be > 0")
    for section in ("critic", "actor"):
        sec = getattr(cfg, section)
        need(len(sec.hidden) > 0 and all(h > 0 for h in sec.hidden), f"{section}.hidden",
             "must be a non-empty list of positive widths")
        need(sec.lr > 0, f"{section}.lr", "must be > 0")
    need(0 < cfg.critic.gamma <= 1, "critic.gamma", "must be in (0, 1]")
    need(0 < cfg.critic.polyak <= 1, "critic.polyak", "must be in (0, 1]")
    a = cfg.actor
    need(a.flow_steps > 0, "actor.flow_steps", "must be > 0")
    need(a.candidates > 0, "actor.candidates", "must be > 0")
    need(a.candidate_states >= 0, "actor.candidate_states", "must be >= 0 (0: whole batch)")
    need(a.entropy_batch >= 0, "actor.entropy_batch", "must be >= 0 (0: whole batch)")
    need(a.update_every > 0, "actor.update_every", "must be > 0")
    need(cfg.entropy.probes > 0, "entropy.probes", "must be > 0")
    flat = cfg.flat()
    for key, choices in _choices().items():
        need(flat[key] in choices, key, f"must be one of {', '.join(choices)}")
    need(cfg.entropy.logdet == "trace" or cfg.entropy.divergence == "exact", "entropy.logdet",
         "'exact' needs the full Jacobian: set entropy.divergence=exact too")
    tc = cfg.temperature
    need(0 < tc.ess_target <= 1, "temperature.ess_target", "must be in (0, 1]")
    need(0 < tc.min < tc.max, "temperature.min", "must be > 0 and < temperature.max")
    need(tc.fixed > 0, "temperature.fixed", "must be > 0")
    need(cfg.alpha.initial > 0, "alpha.initial", "must be > 0")
    need(cfg.alpha.lr > 0, "alpha.lr", "must be > 0")
    need(cfg.alpha.fixed is None or cfg.alpha.fixed >= 0, "alpha.fixed", "must be >= 0 or null")
    q = cfg.qvpo
    for key in ("diffusion_steps", "train_samples", "behaviour_samples", "target_samples",
                "eval_samples", "time_features"):
        need(getattr(q, key) > 0, f"qvpo.{key}", "must be > 0")
    need(q.uniform_samples >= 0, "qvpo.uniform_samples", "must be >= 0")
    need(q.entropy_decay_steps >= 0, "qvpo.entropy_decay_steps", "must be >= 0 (0: total_steps)")
    need(0 <= q.entropy_weight_min <= q.entropy_weight, "qvpo.entropy_weight_min",
         "must be >= 0 and <= qvpo.entropy_weight")
    need(q.grad_norm > 0, "qvpo.grad_norm", "must be > 0")
    need(q.adam_eps > 0, "qvpo.adam_eps", "must be > 0")
    return cfg


def make_config(
    env: str | None = None,
    algo: str | None = None,
    seed: int | None = None,
    overrides: dict[str, Any] | None = None,
    base: dict[str, Any] | None = None,
) -> Config:
    """Build and validate a Config.

    Precedence (later wins): defaults < ``base`` (nested dict, e.g. a YAML file or budget)
    < the variant named by ``algo`` < ``overrides`` (dotted keys) < env/algo/seed arguments.
    ``algo`` may be a variant name such as ``fmer-no-ess``.
    """
    data = dict(base or {})
    if algo is not None:
        if algo not in VARIANTS:
            raise ConfigError(f"algo: unknown algorithm or variant {algo!r}"
                              f"{did_you_mean(algo, VARIANTS)}; valid: " + ", ".join(VARIANTS))
        real_algo, variant_overrides = VARIANTS[algo]
        data = _merge(_nest(ALGO_DEFAULTS[real_algo]), data)
        data = _merge(data, _nest(variant_overrides))
        data["algo"] = real_algo
    data = _merge(data, _nest(overrides or {}))
    for key, value in (("env", env), ("seed", seed)):
        if value is not None:
            data[key] = value
    return validate(_build(Config, data))


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a resolved config (as stored in meta.json)."""
    return validate(_build(Config, data))


def diff(a: Config | dict[str, Any], b: Config | dict[str, Any],
         ignore: tuple[str, ...] = ()) -> list[str]:
    """Dotted keys whose values differ between two configs (or their ``flat()`` dicts),
    except those in ``ignore``."""
    fa, fb = (c.flat() if isinstance(c, Config) else c for c in (a, b))
    return sorted(k for k in fa if k not in ignore and fa[k] != fb.get(k))


def unread_keys(algo: str) -> tuple[str, ...]:
    """The keys an algorithm never reads."""
    keys = Config().flat()
    if algo == "qvpo":
        return tuple(k for k in keys if k.split(".")[0] in ("actor", "critic", "entropy",
                                                            "temperature", "alpha")
                     and k not in QVPO_KEYS)
    qvpo = tuple(k for k in keys if k.startswith("qvpo."))
    if algo != "sac":
        return qvpo
    return tuple(k for k in keys
                 if k.split(".")[0] in ("entropy", "temperature")
                 or (k.startswith("actor.") and k not in SAC_ACTOR_KEYS)) + qvpo


def result_diff(run: Config, other: Config) -> list[str]:
    """The keys on which two configs differ that can change a run's numbers: not where it
    trains, not what it writes besides its logs, not a key its algorithm never reads."""
    return diff(run, other, ignore=PLACEMENT_KEYS + OUTPUT_KEYS + unread_keys(run.algo))
