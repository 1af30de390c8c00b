"""``fmer bench``: its parser, and the call into fmer.bench (measuring) and
fmer.analysis.performance (the page)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fmer import budgets
from fmer.analysis.performance import (
    EFFICIENCY,
    EXECUTION_COLUMNS,
    HEADLINE,
    PART_COLUMNS,
    QVPO_COLUMNS,
    QVPO_PART_COLUMNS,
    SETTING_COLUMNS,
    WHOLE_RUN_COLUMNS,
    cost_claim_line,
    execution_note,
    execution_summary,
    format_table,
    headline,
    parts_summary,
    qvpo_summary,
    render,
    settings_summary,
    summary,
    whole_run_ratios,
)
from fmer.benchlog import DEFAULT_ENVS, DEFAULT_THREADS, EXECUTIONS, write_csv
from fmer.cli.common import examples, positive_int
from fmer.config import DEVICES, ConfigError, parse_overrides


def _budget_settings(name: str) -> dict[str, dict]:
    """A budget's own variants as named overrides (the workflow config)."""
    own = budgets.budget_variants(budgets.budget_config(budgets.load(), name))
    if not own:
        raise ConfigError(f"--budget: budget {name!r} defines no variants of its own")
    return {variant: spec["set"] for variant, spec in own.items()}


def run(args: argparse.Namespace) -> int:
    # torch, imported by the command that measures: not by every `fmer` process's parser
    from fmer.bench import bench, whole_runs

    if args.markdown and args.device != "cpu":
        raise ConfigError("--markdown writes the CPU page (paper/performance.md); "
                          f"run it without --device {args.device}")
    overrides = parse_overrides(args.set)
    settings = _budget_settings(args.budget) if args.budget else {}
    if args.whole_run:  # an unknown budget stops before any timing
        budgets.budget_config(budgets.load(), args.whole_run)
    if "cuda-graphs" in args.execution and args.device == "cpu":
        raise ConfigError("--execution cuda-graphs needs --device cuda")
    rows = bench(args.envs, args.threads, args.reps, args.warmup, args.env_steps,
                 args.batch_size, overrides, settings=settings, device=args.device,
                 executions=args.execution)
    records, by_setting = summary(rows), settings_summary(rows)
    by_execution = execution_summary(rows)
    write_csv(rows, Path(args.csv))
    print(format_table(records))
    print("FMER's update by part, ms:")
    print(format_table(parts_summary(rows), PART_COLUMNS))
    if by_setting:
        print(f"Settings of budget {args.budget}:")
        print(format_table(by_setting, SETTING_COLUMNS))
    if by_execution:
        print(f"Execution ({execution_note(args.device)}):")
        print(format_table(by_execution, EXECUTION_COLUMNS))
    qvpo = qvpo_summary(rows)
    if qvpo:
        print("QVPO's update beside FMER's:")
        print(format_table(qvpo, QVPO_COLUMNS))
        print("QVPO's update by part, ms:")
        print(format_table(parts_summary(rows, "qvpo"), QVPO_PART_COLUMNS))
    whole = (whole_runs(args.envs[0], args.whole_run, overrides, args.repeats)
             if args.whole_run else [])
    if whole:
        print(f"Whole runs, budget {args.whole_run}:")
        print(format_table(whole, WHOLE_RUN_COLUMNS))
        print("\n".join(whole_run_ratios(whole)))
    print(cost_claim_line(rows))
    print(f"CSV: {args.csv}")
    if args.markdown:
        command = "fmer bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] \
            else "fmer bench"
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(render(rows, command, args.budget, args.whole_run,
                                              whole))
        print(f"Markdown: {args.markdown}")
    rec, lines = headline(records)
    print(f"headline: {rec['env']}, {rec['threads']} thread(s), {rec['clock']} clock")
    print("\n".join(lines))
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="time SAC, FMER and QVPO updates side by side",
        description="Time raw env steps, a SAC, an FMER and a QVPO update per network size and "
                    "thread count in one process; print a table, write CSV; the last line is "
                    f"'{HEADLINE}: R' (first env, fewest threads), after '{EFFICIENCY}: P% of "
                    "the matmul rate'.",
        **examples("fmer bench",
                   "fmer bench --envs Hopper-v5 --threads 1 --reps 3",
                   "fmer bench --envs HalfCheetah-v5 --threads 1 --budget defaults"),
    )
    p.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS),
                   help="envs whose network sizes to bench (default: %(default)s)")
    p.add_argument("--threads", nargs="+", type=positive_int, default=list(DEFAULT_THREADS),
                   help="torch thread counts (default: %(default)s)")
    p.add_argument("--reps", type=positive_int, default=10, help="timed rounds (default: 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default: 3)")
    p.add_argument("--env-steps", type=positive_int, default=1000,
                   help="raw env steps timed per env (default: 1000)")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--csv", default="results/bench/bench.csv", help="long-format CSV output")
    p.add_argument("--markdown", metavar="PATH",
                   help="also write a page with the tables and the machine "
                        "(e.g. paper/performance.md)")
    p.add_argument("--budget", metavar="NAME",
                   help="also time FMER under each of this budget's own variants "
                        "(e.g. defaults: the cost settings of the defaults study)")
    p.add_argument("--whole-run", metavar="NAME",
                   help="also train whole runs of SAC, FMER and QVPO on this budget's schedule "
                        "(first env; seeds 0..--repeats-1) and compare wall times (e.g. smoke; "
                        "mini: hours, QVPO's most)")
    p.add_argument("--repeats", type=positive_int, default=1,
                   help="seeds per algorithm with --whole-run (default: 1; 2 or more give an "
                        "interval)")
    p.add_argument("--execution", nargs="+", choices=list(EXECUTIONS), default=[],
                   help="also time the updates run so (first env, fewest threads): compiled "
                        "(train.compile), cuda-graphs (compiled in CUDA graphs, --device "
                        "cuda), bfloat16 (train.precision), compiled-bfloat16; a compiled one "
                        "reports its compile time (wall) and when it pays back")
    p.add_argument("--device", choices=DEVICES, default="cpu",
                   help="where the agents and the matmul run (default: cpu); not with "
                        "--markdown")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for both agents, e.g. --set actor.entropy_batch=64")
    p.set_defaults(func=run)
