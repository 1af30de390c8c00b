"""The experiment grid of a budget: which runs exist, where they live, what they are told.

One source for the Snakefile (which jobs to schedule), the aggregation (which runs are
missing) and the README's size table. The input is the workflow config as Snakemake loaded
it (``--config``/``--configfile`` included), already checked by its JSON schema.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from fmer.config import ConfigError, make_config

MUJOCO = ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Humanoid-v5")
KITCHEN = ("kitchen-1", "kitchen-4", "kitchen-7")
MULTIGOAL = "multigoal-2d"
BENCHMARKS = (*MUJOCO, *KITCHEN, MULTIGOAL)
# The paper's 2x2 ablation of its two corrections (entropy tanh term x ESS-tuned tau)
ABLATION = ("fmer", "fmer-no-tanh", "fmer-no-ess", "fmer-no-tanh-no-ess")
EXTRA = ("fmer-top1", "fmer-unnormalized", "fmer-no-entropy")
VARIANTS = (*ABLATION, "sac", *EXTRA)
# Multigoal runs keep their final agent long enough to draw the action samples of the
# multimodality figure (fmer samples), then drop it.
SAMPLE_SETTINGS = {"train.keep_checkpoint": True}


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

    def set_args(self) -> str:
        """``--set key=value ...`` for ``fmer train``, shell-quoted; values as JSON (= YAML)."""
        return " ".join(f"--set {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in self.settings)


def run_path(budget: str, env: str, variant: str, seed: int) -> str:
    return f"results/{budget}/{env}/{variant}/seed{seed}"


def budget_config(config: dict[str, Any], budget: str) -> dict[str, Any]:
    budgets = config["budgets"]
    if budget not in budgets:
        raise ConfigError(f"budget: unknown budget {budget!r}; valid: {', '.join(budgets)}")
    return budgets[budget]


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
    if env == MULTIGOAL:
        merged.update(SAMPLE_SETTINGS)
    return tuple(merged.items())


def runs(config: dict[str, Any], budget: str) -> list[Run]:
    """Every run of ``budget``, each once, in the config's order (blocks may overlap)."""
    spec = budget_config(config, budget)
    out: dict[tuple[str, str, int], Run] = {}
    for block in spec["grid"]:
        for env in block["benchmarks"]:
            for variant in block["variants"]:
                for seed in block.get("seeds", spec["seeds"]):
                    out.setdefault((env, variant, seed),
                                   Run(budget, env, variant, seed, _settings(spec, env, variant),
                                       _base(spec, variant)))
    return list(out.values())


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
        for name in block["variants"]:
            if name not in VARIANTS and name not in own:
                raise ConfigError(f"budgets.{budget}.grid: variants: unknown {name!r}; valid: "
                                  f"{', '.join([*VARIANTS, *own])}")
    seen = set()
    for run in runs(config, budget):
        if "train.device" in run.overrides:
            raise ConfigError(f"budgets.{budget}: train.device is the workflow's top-level "
                              "`device` (e.g. --config device=cuda), not a budget's setting")
        key = (run.env, run.variant, json.dumps(run.settings))
        if key in seen:
            continue
        seen.add(key)
        try:
            make_config(run.env, run.algo, run.seed, overrides=run.overrides)
        except ConfigError as exc:
            where = (f"budgets.{budget}.overrides.{run.env}"
                     if run.env in spec.get("overrides", {}) else f"budgets.{budget}")
            raise ConfigError(f"{where} ({run.env}, {run.variant}): {exc}") from exc


def select(all_runs: list[Run], envs=None, variants=None) -> list[Run]:
    return [r for r in all_runs
            if (envs is None or r.env in envs) and (variants is None or r.variant in variants)]
