"""``fmer eval``: evaluate a run's saved policy again (fmer.policy) and say the intervals."""

from __future__ import annotations

import argparse

from fmer.cli.common import examples, positive_int


def run(args: argparse.Namespace) -> int:
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


def add_parser(subparsers) -> None:
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
    p.set_defaults(func=run)
