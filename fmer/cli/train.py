"""``fmer train``: its parser, the config it trains (``resolve``), and the call into
fmer.train."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fmer import budgets
from fmer.cli.common import examples
from fmer.config import DEVICES, VARIANTS, Config, ConfigError, make_config, parse_overrides
from fmer.envs import ENV_NAMES_HELP
from fmer.runlog import RunLogError


def resolve(args: argparse.Namespace) -> Config:
    """The config ``fmer train`` trains: with ``--budget``, that of the workflow's run of these
    names (fmer.budgets.run), then ``--set`` on top."""
    if args.budgets and not args.budget:
        raise ConfigError("--budgets names a budgets file, but no --budget was chosen")
    overrides = parse_overrides(args.set)
    algo = args.algo
    if args.budget:
        run = budgets.run(budgets.load(args.budgets or budgets.DEFAULT_FILE), args.budget,
                          args.env, args.algo, args.seed)
        algo, overrides = run.algo, {**run.overrides, **overrides}
    if args.device is not None:
        overrides["train.device"] = args.device
    return make_config(args.env, algo, args.seed, overrides=overrides)


def run(args: argparse.Namespace) -> int:
    # torch, imported by the command that trains: not by every `fmer` process's parser
    from fmer.checkpoint import CheckpointError
    from fmer.rundir import RunDirError
    from fmer.train import NonFiniteError, TrainInterrupted, train

    cfg = resolve(args)
    try:
        # set by the workflow (workflow/rules/stop.smk): its stop reaches a run started late
        train(cfg, args.out, variant=args.algo, budget=args.budget,
              stop_file=os.environ.get("FMER_STOP_FILE"))
    except (RunDirError, CheckpointError, RunLogError) as exc:
        print(f"fmer train: error: {exc}", file=sys.stderr)
        return 2
    except NonFiniteError as exc:
        print(f"fmer train: run failed: {exc} (see {Path(args.out) / 'meta.json'})",
              file=sys.stderr)
        return 1
    except TrainInterrupted as exc:
        print(f"fmer train: {exc}", file=sys.stderr)
        return 128 + exc.signum
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train one run (resumes an unfinished run in --out)",
        description="Train one (env, algorithm, seed) run into --out: eval.csv, train.csv, "
                    "meta.json. Rerunning with the same --out resumes an interrupted run.",
        **examples(
            "fmer train --env Hopper-v5 --algo fmer --seed 0 --budget smoke --out runs/hopper",
            "fmer train --env kitchen-4 --algo fmer-no-ess --seed 1 --budget mini --out runs/k4 "
            "--set temperature.fixed=0.2",
            "fmer train --env Pendulum-v1 --algo sac --seed 0 --out runs/pendulum "
            "--set train.total_steps=20000 --set train.tensorboard=true"),
    )
    p.add_argument("--env", required=True, help=f"environment: {ENV_NAMES_HELP}")
    p.add_argument("--algo", required=True,
                   help="algorithm or variant: " + ", ".join(VARIANTS) + "; with --budget, "
                        "also one of that budget's own variants (meta.json's variant)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--budget", help="a budget of the workflow config (e.g. smoke, mini, paper): "
                                    "the run gets what the workflow gives it (the budget's "
                                    "train schedule, set, overrides for --env, variant), so a "
                                    "workflow run can be trained or resumed by hand; default: "
                                    "the config defaults")
    p.add_argument("--budgets", metavar="FILE",
                   help=f"the workflow config holding the budgets (default: {budgets.DEFAULT_FILE} "
                        "of the working directory)")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")
    p.add_argument("--device", choices=DEVICES,
                   help="where the agent trains (train.device; default: cpu): cuda stops at "
                        "once without a GPU, auto takes the GPU when there is one")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set actor.candidates=32 (repeatable)")
    p.set_defaults(func=run)
