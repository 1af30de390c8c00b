"""The ``fmer`` command: one subcommand per module, each defining ``add_parser(subparsers)``.

The parser set by ``add_parser`` carries ``func=callable(args) -> int`` via ``set_defaults``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap

from fmer import __version__
from fmer.config import VARIANTS, ConfigError
from fmer.envs import ENV_NAMES_HELP
from fmer.runlog import RunLogError

# Order is the order of ``fmer --help``.
SUBCOMMAND_MODULES = ("fmer.train", "fmer.runlog", "fmer.analysis.cli", "fmer.bench")


def examples(*lines: str) -> dict:
    """``add_parser`` keywords for a subcommand's help that ends with usage examples."""
    return {"epilog": "examples:\n" + "\n".join(f"  {line}" for line in lines),
            "formatter_class": argparse.RawDescriptionHelpFormatter}


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _eval(args: argparse.Namespace) -> int:
    import pandas as pd

    from fmer.analysis.stats import LEVEL, t_interval, wilson_interval
    from fmer.policy import evaluate_policy

    policy, ep = evaluate_policy(args.run_dir, args.episodes, args.seed, args.stochastic)
    cfg, n = policy.config, len(ep.returns)
    mode = "stochastic" if args.stochastic else "deterministic"
    episodes = ("the run's last evaluation's episodes" if args.seed is None
                else f"evaluation episodes of seed {args.seed}")
    print(f"{args.run_dir}: {cfg.env} {cfg.algo} seed {cfg.seed}, {mode} policy, "
          f"{episodes}")
    mean, low, high = t_interval(ep.returns)
    print(f"return {mean:.2f}, {LEVEL:.0%} t-interval [{low:.2f}, {high:.2f}] over n = {n} "
          "episodes")
    if ep.success is not None:
        k = int(ep.success.sum())
        rate, low, high = wilson_interval(k, n)
        print(f"success rate {rate:.3f} ({k} of {n}), {LEVEL:.0%} Wilson interval "
              f"[{low:.3f}, {high:.3f}]")
    if ep.tasks_completed is not None:
        mean, low, high = t_interval(ep.tasks_completed)
        print(f"tasks completed {mean:.3f}, {LEVEL:.0%} t-interval [{low:.3f}, {high:.3f}]")
    if args.out:
        table = pd.DataFrame({"episode": range(n), "return": ep.returns})
        if ep.tasks_completed is not None:
            table["tasks_completed"] = ep.tasks_completed
        if ep.success is not None:
            table["success"] = ep.success
        table.to_csv(args.out, index=False)
        print(f"{n} episodes -> {args.out}")
    return 0


def _add_eval_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate a run's saved policy again",
        description="Load RUN_DIR's final policy (policy.pt) and evaluate it. By default on the "
                    "run's own last evaluation (its episodes and their seeds: the last row of "
                    "its eval.csv, exactly); --episodes extends that evaluation, --seed draws "
                    "other episodes. Prints the mean return (and success rate, tasks completed "
                    "on FrankaKitchen) with an interval and n; writes nothing unless --out.",
        **examples("fmer eval results/mini/Hopper-v5/sac/seed0 --episodes 10",
                   "fmer eval runs/hopper --stochastic --seed 7 --episodes 50 --out ep.csv"))
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--episodes", type=positive_int, metavar="N",
                   help="episodes (default: the run's train.eval_episodes)")
    p.add_argument("--stochastic", action="store_true",
                   help="sample actions instead of the run's deterministic evaluation mode")
    p.add_argument("--seed", type=int, metavar="S",
                   help="seed of the episodes and of the action samples (default: the run's)")
    p.add_argument("--out", metavar="CSV", help="also write one row per episode here")
    p.set_defaults(func=_eval)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fmer", description="FMER reproducibility package: train, verify, analyse.",
        epilog="\n".join(textwrap.fill(text, 92, subsequent_indent="  ") for text in (
            f"environments: {ENV_NAMES_HELP}.",
            f"variants (--algo): {', '.join(VARIANTS)}.",
            "`fmer COMMAND --help` shows each command's options and examples.")),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fmer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    _add_eval_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, RunLogError) as exc:
        print(f"fmer {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
