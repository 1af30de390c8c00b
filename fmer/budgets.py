"""The budgets of the workflow config and the experiment grid of each: which runs exist,
where they live, and the fmer config each one trains.

One source for the Snakefile (which jobs to schedule), ``fmer train --budget`` (the same
resolved config for a run trained or resumed by hand), the aggregation (which runs are
missing) and the README's size table. The input is the workflow config
(config/config.yaml, as Snakemake loaded it or as ``load`` reads it), whose structure
its JSON schema checks; ``check`` checks the rest against the package.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmer.config import (
    OUTPUT_KEYS,
    VARIANTS,
    Config,
    ConfigError,
    did_you_mean,
    load_yaml,
    make_config,
)
from fmer.envs import BENCHMARKS, KITCHEN_BENCHMARKS, MUJOCO_BENCHMARKS

# The workflow config, relative to a checkout's root (the working directory of the workflow).
DEFAULT_FILE = "config/config.yaml"
# What a grid block may name instead of listing benchmarks
GROUPS = {"all": BENCHMARKS, "mujoco": MUJOCO_BENCHMARKS, "kitchen": KITCHEN_BENCHMARKS}
# The paper's 2x2 ablation of its two corrections (entropy tanh term x ESS-tuned tau)
ABLATION = ("fmer", "fmer-no-tanh", "fmer-no-ess", "fmer-no-tanh-no-ess")
# The paper's comparison of candidate weights: softmax (FMER's) against top-1 and unnormalised
WEIGHTING = ("fmer", "fmer-top1", "fmer-unnormalized")
# The methods the main figures (curves, FrankaKitchen, multigoal, IQM) set side by side: FMER,
# both SACs (SAC at FMER's initial alpha, so that a comparison changes the algorithm only:
# fmer.analysis.verdicts) and the diffusion baseline QVPO
MAIN = ("fmer", "sac", "sac-fmer-alpha", "qvpo")
# Named targets a grid block may belong to (`target:`): the block's runs are trained by that
# target of the workflow (workflow/rules/targets.smk), not by `all`, and shown once complete
TARGETS = ("qvpo",)


@dataclass(frozen=True)
class Run:
    budget: str
    env: str
    variant: str  # a package variant (fmer.config.VARIANTS) or one of the budget's own
    seed: int
    settings: tuple[tuple[str, Any], ...]  # dotted config overrides, in the order applied
    algo: str  # the package variant it trains: ``variant`` itself, or a budget variant's base

    @property
    def path(self) -> str:
        return run_path(self.budget, self.env, self.variant, self.seed)

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self.settings)

    def config(self) -> Config:
        return make_config(self.env, self.algo, self.seed, overrides=self.overrides)

    def set_args(self) -> str:
        """``--set key=value ...`` for ``fmer train``, shell-quoted; values as JSON (= YAML).
        Not what a run writes besides its logs (OUTPUT_KEYS): the workflow records this string
        as a rerun trigger, and those keys change no number."""
        return " ".join(f"--set {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in self.settings
                        if k not in OUTPUT_KEYS)


def run_path(budget: str, env: str, variant: str, seed: int) -> str:
    return f"results/{budget}/{env}/{variant}/seed{seed}"


def load(path: str | Path = DEFAULT_FILE) -> dict[str, Any]:
    """The workflow config at ``path`` (default: the checkout in the working directory)."""
    if not Path(path).is_file():
        raise ConfigError(f"no budgets file {str(path)!r} (the workflow config; run from the "
                          "repository's root or name it with --budgets)")
    config = load_yaml(path)
    if not isinstance(config.get("budgets"), dict):
        raise ConfigError(f"{path}: no `budgets:` mapping")
    return config


def budget_config(config: dict[str, Any], budget: str) -> dict[str, Any]:
    budgets = config["budgets"]
    if budget not in budgets:
        raise ConfigError(f"budget: unknown budget {budget!r}{did_you_mean(budget, budgets)}; "
                          f"valid: {', '.join(budgets)}")
    return budgets[budget]


def benchmarks(block: dict[str, Any]) -> tuple[str, ...]:
    """A grid block's benchmarks: its list, or the group it names (GROUPS)."""
    names = block["benchmarks"]
    return GROUPS[names] if isinstance(names, str) else tuple(names)


def budget_variants(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A budget's own variants: name -> {"base": package variant, "set": overrides}."""
    return spec.get("variants", {})


def _base(spec: dict[str, Any], variant: str) -> str:
    own = budget_variants(spec)
    return own[variant]["base"] if variant in own else variant


def _settings(spec: dict[str, Any], env: str, variant: str) -> tuple[tuple[str, Any], ...]:
    merged = {f"train.{k}": v for k, v in spec["train"].items()}
    merged.update(spec.get("set", {}))
    merged.update(spec.get("overrides", {}).get(env, {}))
    merged.update(budget_variants(spec).get(variant, {}).get("set", {}))
    return tuple(merged.items())


def runs(config: dict[str, Any], budget: str) -> list[Run]:
    """Every run of ``budget``'s grid, each once, in the config's order (blocks may overlap);
    not those of blocks that belong to a named target (``target_runs``)."""
    return _block_runs(config, budget, None)


def target_runs(config: dict[str, Any], budget: str, target: str) -> list[Run]:
    """The runs of ``budget``'s blocks that belong to the named target ``target`` and not to
    its grid (``runs``)."""
    grid = {(r.env, r.variant, r.seed) for r in runs(config, budget)}
    return [r for r in _block_runs(config, budget, target)
            if (r.env, r.variant, r.seed) not in grid]


def _block_runs(config: dict[str, Any], budget: str, target: str | None) -> list[Run]:
    spec = budget_config(config, budget)
    out: dict[tuple[str, str, int], Run] = {}
    for block in spec["grid"]:
        if block.get("target") != target:
            continue
        for env in benchmarks(block):
            for variant in block["variants"]:
                for seed in block.get("seeds", spec["seeds"]):
                    out.setdefault((env, variant, seed),
                                   Run(budget, env, variant, seed, _settings(spec, env, variant),
                                       _base(spec, variant)))
    return list(out.values())


def run(config: dict[str, Any], budget: str, env: str, variant: str, seed: int) -> Run:
    """The run of ``budget`` for these names, told what the workflow tells it: also for an env,
    variant or seed outside the budget's grid (a variant of the budget's own, or a package
    one), so that a run can be trained or resumed by hand exactly as the workflow would."""
    spec = budget_config(config, budget)
    if variant not in VARIANTS and variant not in budget_variants(spec):
        raise ConfigError(f"algo: unknown variant {variant!r}; valid: "
                          + ", ".join([*VARIANTS, *budget_variants(spec)]))
    return Run(budget, env, variant, seed, _settings(spec, env, variant), _base(spec, variant))


def check(config: dict[str, Any], budget: str) -> None:
    """Build the fmer config of every distinct (benchmark, variant, settings) of the budget,
    so that a bad override stops the workflow before any job; the error names the key."""
    spec = budget_config(config, budget)
    own = budget_variants(spec)
    for name, variant in own.items():
        if name in VARIANTS:
            raise ConfigError(f"budgets.{budget}.variants.{name}: the name of a package variant; "
                              "choose another")
        if variant["base"] not in VARIANTS:
            raise ConfigError(f"budgets.{budget}.variants.{name}.base: unknown variant "
                              f"{variant['base']!r}; valid: {', '.join(VARIANTS)}")
    for block in spec["grid"]:
        names = block["benchmarks"]
        if isinstance(names, str) and names not in GROUPS:
            raise ConfigError(f"budgets.{budget}.grid: benchmarks: unknown group {names!r}; "
                              f"valid: {', '.join(GROUPS)}")
        for env in [] if isinstance(names, str) else names:
            if env not in BENCHMARKS:
                raise ConfigError(f"budgets.{budget}.grid: benchmarks: unknown {env!r}; "
                                  f"valid: {', '.join(BENCHMARKS)}")
        for name in block["variants"]:
            if name not in VARIANTS and name not in own:
                raise ConfigError(f"budgets.{budget}.grid: variants: unknown {name!r}; valid: "
                                  f"{', '.join([*VARIANTS, *own])}")
        if block.get("target", TARGETS[0]) not in TARGETS:
            raise ConfigError(f"budgets.{budget}.grid: target: unknown {block['target']!r}; "
                              f"valid: {', '.join(TARGETS)}")
    for env in spec.get("overrides", {}):
        if env not in BENCHMARKS:
            raise ConfigError(f"budgets.{budget}.overrides: unknown benchmark {env!r}; valid: "
                              f"{', '.join(BENCHMARKS)}")
    seen = set()
    for one in runs(config, budget) + [r for t in TARGETS for r in target_runs(config, budget, t)]:
        if "train.device" in one.overrides:
            raise ConfigError(f"budgets.{budget}: train.device is the workflow's top-level "
                              "`device` (e.g. --config device=cuda), not a budget's setting")
        key = (one.env, one.variant, json.dumps(one.settings))
        if key in seen:
            continue
        seen.add(key)
        try:
            one.config()
        except ConfigError as exc:
            where = (f"budgets.{budget}.overrides.{one.env}"
                     if one.env in spec.get("overrides", {}) else f"budgets.{budget}")
            raise ConfigError(f"{where} ({one.env}, {one.variant}): {exc}") from exc


def select(all_runs: list[Run], envs=None, variants=None) -> list[Run]:
    return [r for r in all_runs
            if (envs is None or r.env in envs) and (variants is None or r.variant in variants)]
