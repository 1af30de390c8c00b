"""The analysis subcommands of ``fmer``: aggregate, concat-summaries, figure, tables, samples,
goals, random-scores, plan, status, plot, defaults-study, intervals-study.

Each handler imports its fmer.analysis module when its subcommand runs, so that ``fmer train``
does not pay for matplotlib, seaborn and rliable at start-up.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from fmer import budgets, markdown
from fmer.cli.common import examples
from fmer.config import ALGOS
from fmer.runlog import RunLogError

# fmer.analysis.figures.KINDS, named here to keep matplotlib out of start-up (a test checks)
FIGURE_KINDS = ("curve", "ablation_returns", "ablation_ess", "ablation_tanh",
                "ablation_weights", "kitchen", "multigoal", "iqm")


def aggregate_main(args) -> int:
    from fmer.analysis import aggregate, estimates

    summary, completeness = aggregate.aggregate(args.run_dirs, args.budget,
                                                budgets.load(args.budgets))
    aggregate.write(summary, completeness, estimates.cell_estimates(summary), args.out,
                    args.completeness, args.estimates)
    c = aggregate.counts(completeness)
    print(json.dumps({"budget": args.budget, **c, "expected": len(completeness)}))
    for row in completeness[completeness["status"] != "complete"].itertuples():
        print(f"{row.status:10s} {row.path}  {row.detail}")
    return 0


def concat_main(args) -> int:
    from fmer.analysis import aggregate

    summary, completeness, table = aggregate.read_cells(args.cells)
    aggregate.write(summary, completeness, table, args.out, args.completeness, args.estimates)
    print(json.dumps({"cells": len(args.cells), **aggregate.counts(completeness),
                      "expected": len(completeness)}))
    return 0


def figure_main(args) -> int:
    from fmer.analysis import figures

    for path in figures.build(args.kind, args.cells, args.budget, args.out, args.random_scores,
                              args.reported, args.samples):
        print(path)
    return 0


def tables_main(args) -> int:
    import pandas as pd

    from fmer import benchlog
    from fmer.analysis import estimates, performance, tables

    table = estimates.read([args.estimates])
    completeness = pd.read_csv(args.completeness, keep_default_na=False,
                               na_values={"last_step": [""]})
    reported = pd.read_csv(args.reported)
    qvpo_timing = (performance.qvpo_ratio(benchlog.read_csv(args.performance)) if args.performance
                   else None)
    for path in tables.write(table, completeness, reported, args.budget, args.out, qvpo_timing):
        print(path)
    return 0


def samples_main(args) -> int:
    import torch

    from fmer.analysis import rollouts

    torch.set_num_threads(1)
    try:
        table = rollouts.action_samples(args.run_dir, args.n)
    except RunLogError as exc:
        print(f"fmer samples: error: {exc}", file=sys.stderr)
        return 2
    table.to_csv(args.out, index=False)
    print(f"{len(table)} action samples -> {args.out}")
    return 0


def goals_main(args) -> int:
    import torch

    from fmer.analysis import rollouts
    from fmer.analysis.multimodality import EPISODES

    torch.set_num_threads(1)
    try:
        table = rollouts.goal_rollouts(args.run_dir, args.episodes or EPISODES)
    except RunLogError as exc:
        print(f"fmer goals: error: {exc}", file=sys.stderr)
        return 2
    table.to_csv(args.out, index=False)
    reached = table.loc[table["goal"] >= 0, "goal"].value_counts().sort_index()
    print(f"{len(table)} episodes -> {args.out}; goal: episodes {reached.to_dict()}")
    return 0


def random_scores_main(args) -> int:
    import pandas as pd

    from fmer.analysis import rollouts

    table = pd.DataFrame([rollouts.random_score(env) for env in args.envs])
    table.to_csv(args.out, index=False)
    print(json.dumps(table.set_index("env")["return_mean"].to_dict()))
    return 0


def plan_main(args) -> int:
    from fmer.analysis import cost

    config = budgets.load(args.config)
    names = args.budgets or list(config["budgets"])
    rows, per_run = [], []
    for name in names:
        for label, runs in ((name, budgets.runs(config, name)),
                            *((f"{name}, target {t}", budgets.target_runs(config, name, t))
                              for t in budgets.TARGETS)):
            if not runs:
                continue
            size = cost.budget_size(runs)
            rows.append((label, size["runs"], f"{size['env_steps']:,}",
                         cost.hours(size["core_hours"])))
        algos = cost.core_hours_per_run(
            budgets.runs(config, name)
            + [r for t in budgets.TARGETS for r in budgets.target_runs(config, name, t)])
        per_run.append((name, *(f"{algos[a]:,.2f}" if a in algos else "–" for a in ALGOS)))
    print(markdown.table(("budget", "runs", "env steps", "est. core-hours (fmer.analysis.cost)"),
                         rows))
    print()
    print("Mean est. core-hours of one run of each algorithm, on the benchmarks where all of "
          "them run (grid and targets):")
    print(markdown.table(("budget", *ALGOS), per_run))
    return 0


def status_main(args) -> int:
    from fmer.analysis import status
    from fmer.config import load_yaml

    config = load_yaml(args.config)
    budget = args.budget or config.get("budget")
    runs = budgets.runs(config, budget)  # an unknown budget stops here, before any output
    root = Path(args.root)
    if not root.is_dir():
        print(f"fmer status: error: --root {root}: no such directory", file=sys.stderr)
        return 2
    statuses = [status.run_status(root, run, 60 * args.stale_minutes) for run in runs]
    print(f"budget {budget}: {len(runs)} runs under {os.path.abspath(root)}")
    for line in status.report(statuses):
        print(line)
    return 0


def plot_main(args) -> int:
    from fmer.analysis import plot

    print(plot.plot(args.run_dirs, args.out))
    return 0


def defaults_main(args) -> int:
    import pandas as pd

    from fmer.analysis import defaults, estimates
    from fmer.analysis.aggregate import read_completeness

    bench = None
    if Path(args.update_cost).exists():
        bench = pd.read_csv(args.update_cost)
    else:
        print(f"{args.update_cost}: not there; the page says the update cost is not measured")
    for path in defaults.write(estimates.read([args.estimates]),
                               read_completeness([args.completeness]), bench, args.page,
                               args.csv, args.figure):
        print(path)
    return 0


def intervals_main(args) -> int:
    from fmer.analysis import coverage

    for path in coverage.write(args.page, args.csv, args.trials or coverage.TRIALS):
        print(path)
    return 0


def add_cells(p) -> None:
    """The (summary, completeness, estimates) triples of fmer aggregate that a command reads."""
    p.add_argument("--cell", dest="cells", action="append", nargs=3, required=True,
                   metavar=("SUMMARY", "COMPLETENESS", "ESTIMATES"), help="repeat once per cell")


def add_outputs(p) -> None:
    """The (summary, completeness, estimates) triple that a command writes."""
    p.add_argument("--out", required=True, metavar="CSV", help="summary table")
    p.add_argument("--completeness", required=True, metavar="CSV")
    p.add_argument("--estimates", required=True, metavar="CSV",
                   help="the estimates table (fmer.analysis.estimates): per (env, variant, "
                        "metric[, step]) the mean over seeds, its 95%% t-interval, n, the "
                        "seeds and each seed's value")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "aggregate",
        help="run logs -> tidy summary.csv, a completeness report and the estimates table",
        description="Load every verified run among RUN_DIRs (the runs a budget expects) into "
                    "one table (env, variant, seed, step, metrics), list the others as "
                    "stale, incomplete, failed or missing, and write the estimates every "
                    "figure and table reads (mean over seeds, 95%% t-interval, each seed).",
        **examples("fmer aggregate --budget mini --out /tmp/summary.csv "
                   "--completeness /tmp/completeness.csv --estimates /tmp/estimates.csv "
                   "results/mini/*/*/seed*"))
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--budget", required=True)
    p.add_argument("--budgets", default=budgets.DEFAULT_FILE, metavar="FILE",
                   help="the workflow config whose budget a run of the grid is checked "
                        "against (a run trained with another config is listed as stale; "
                        "default: %(default)s)")
    add_outputs(p)
    p.set_defaults(func=aggregate_main)

    p = subparsers.add_parser(
        "concat-summaries",
        help="cells of fmer aggregate -> one summary, completeness and estimates table",
        description="Concatenate the (summary, completeness, estimates) triples of fmer "
                    "aggregate, one per (env, variant) cell in the workflow, into one: the "
                    "budget's results/BUDGET/summary.csv, completeness.csv and estimates.csv.",
        **examples("fmer concat-summaries --out /tmp/summary.csv --completeness "
                   "/tmp/completeness.csv --estimates /tmp/estimates.csv "
                   "--cell results/mini/summary/Hopper-v5/sac.csv "
                   "results/mini/completeness/Hopper-v5/sac.csv "
                   "results/mini/estimates/Hopper-v5/sac.csv"))
    add_cells(p)
    add_outputs(p)
    p.set_defaults(func=concat_main)

    p = subparsers.add_parser(
        "figure", help="one of the paper's figures from fmer aggregate's tables (PNG and PDF)",
        description="Build figure KIND from the files of fmer aggregate (one --cell per "
                    "(env, variant) drawn, or a whole budget's triple): its numbers from the "
                    "estimates table only. The completeness rows are the runs expected: those "
                    "not complete are named on the figure, never filled in, and a variant "
                    "without a complete run is listed as not run.",
        **examples("fmer figure curve --budget mini --out /tmp/hopper "
                   "--cell results/mini/summary/Hopper-v5/fmer.csv "
                   "results/mini/completeness/Hopper-v5/fmer.csv "
                   "results/mini/estimates/Hopper-v5/fmer.csv "
                   "--cell results/mini/summary/Hopper-v5/sac.csv "
                   "results/mini/completeness/Hopper-v5/sac.csv "
                   "results/mini/estimates/Hopper-v5/sac.csv",
                   "fmer aggregate --budget smoke --out /tmp/s.csv --completeness /tmp/c.csv "
                   "--estimates /tmp/e.csv runs/hopper && fmer figure curve --budget smoke "
                   "--out /tmp/mine --cell /tmp/s.csv /tmp/c.csv /tmp/e.csv"))
    p.add_argument("kind", choices=FIGURE_KINDS)
    add_cells(p)
    p.add_argument("--budget", required=True)
    p.add_argument("--out", required=True, metavar="STEM", help="writes STEM.png, STEM.pdf")
    p.add_argument("--random-scores", metavar="CSV",
                   help="fmer random-scores output (iqm: the normalisation's zero)")
    p.add_argument("--reported", metavar="CSV",
                   help="the paper's numbers, paper/reported.csv (kitchen: reference marks; "
                        "iqm: the normalisation's one)")
    p.add_argument("--samples", nargs="+", default=[], metavar="CSV",
                   help="fmer samples output of each multigoal run drawn (multigoal)")
    p.set_defaults(func=figure_main)

    p = subparsers.add_parser(
        "tables", help="Markdown and LaTeX tables: our numbers beside the paper's",
        description="From fmer aggregate's estimates and completeness files and the paper's "
                    "reported numbers, write OUT.md and OUT.tex: our numbers beside the "
                    "paper's, and a verdict per paper claim.",
        **examples("fmer tables --budget mini --estimates results/mini/estimates.csv "
                   "--completeness results/mini/completeness.csv "
                   "--reported paper/reported.csv --performance paper/performance.csv "
                   "--out /tmp/results"))
    p.add_argument("--budget", required=True)
    p.add_argument("--estimates", required=True, metavar="CSV")
    p.add_argument("--completeness", required=True, metavar="CSV")
    p.add_argument("--reported", required=True, metavar="CSV")
    p.add_argument("--performance", metavar="CSV",
                   help="fmer bench's CSV (paper/performance.csv): the cost claim's verdict "
                        "reads its one-thread QVPO/FMER update ratio; without it the claim "
                        "cannot be told")
    p.add_argument("--out", required=True, metavar="STEM")
    p.set_defaults(func=tables_main)

    p = subparsers.add_parser(
        "samples", help="action samples of a run's final policy (multimodality figure)",
        description="Load the final policy of RUN_DIR (policy.pt) and draw N stochastic "
                    "actions at each of a few fixed states of multigoal-2d.",
        **examples("fmer samples results/mini/multigoal-2d/fmer/seed0 --out /tmp/samples.csv"))
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", required=True, metavar="CSV")
    p.add_argument("-n", type=int, default=300, help="samples per state (default 300)")
    p.set_defaults(func=samples_main)

    p = subparsers.add_parser(
        "goals", help="goals reached by a multigoal run's policy (multimodality measure)",
        description="Run N stochastic episodes of RUN_DIR's final policy (policy.pt) from the "
                    "start state of multigoal-2d and write the goal each ends at (-1: none), "
                    "seeded from the run's seed (fmer/analysis/multimodality.py).",
        **examples("fmer goals results/mini/multigoal-2d/fmer/seed1 --out /tmp/goals.csv"))
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", required=True, metavar="CSV")
    p.add_argument("--episodes", type=int,
                   help="episodes (default: fmer.analysis.multimodality.EPISODES, what the "
                        "verdict reads)")
    p.set_defaults(func=goals_main)

    p = subparsers.add_parser(
        "random-scores", help="return of a uniform random policy per env",
        description="Mean return of uniform random actions over 10 seeded episodes per ENV: "
                    "the zero of the normalised scores.",
        **examples("fmer random-scores --out /tmp/random.csv Hopper-v5 HalfCheetah-v5"))
    p.add_argument("envs", nargs="+", metavar="ENV")
    p.add_argument("--out", required=True, metavar="CSV")
    p.set_defaults(func=random_scores_main)

    p = subparsers.add_parser(
        "plan", help="size of each budget's grid: runs, env steps, estimated core-hours",
        description="Estimates from measured speeds (fmer.analysis.cost).",
        **examples("fmer plan", "fmer plan mini paper"))
    p.add_argument("budgets", nargs="*", metavar="BUDGET", help="default: all")
    p.add_argument("--config", default=budgets.DEFAULT_FILE, metavar="YAML")
    p.set_defaults(func=plan_main)

    p = subparsers.add_parser(
        "status", help="how far a budget's grid is: each run, then what is done and left",
        description="One line per run of the budget: complete, stale (complete but trained "
                    "with another config than the budget now gives it), running (step, speed), "
                    "stopped (killed; resumes from its checkpoint), failed (why) or missing; "
                    "then runs, env steps and estimated core-hours done and left. Reads only "
                    "the run directories under ROOT, so it works while Snakemake runs and on "
                    "a cluster's shared file system.",
        **examples("fmer status", "fmer status --budget paper --root /scratch/fmer"))
    p.add_argument("--budget", help="default: the config's `budget`")
    p.add_argument("--config", default=budgets.DEFAULT_FILE, metavar="YAML")
    p.add_argument("--root", default=".", metavar="DIR",
                   help="the directory Snakemake runs in, holding results/ (default: .)")
    p.add_argument("--stale-minutes", type=float, default=30.0, metavar="M",
                   help="a run on another host whose logs have not changed for M minutes is "
                        "reported as stopped (default: 30)")
    p.set_defaults(func=status_main)

    p = subparsers.add_parser(
        "plot", help="one page per set of runs: evaluation curve and training diagnostics",
        description="Plot the evaluation return (FrankaKitchen: tasks completed) and every "
                    "column of train.csv (losses, α, entropy, τ, ESS/N, saturation, speed) "
                    "of any run directories, complete or still running (RUN/.train), one "
                    "colour per run.",
        **examples("fmer plot runs/hopper",
                   "fmer plot results/mini/Hopper-v5/sac/seed0 results/mini/Hopper-v5/sac/seed1 "
                   "--out /tmp/hopper.png"))
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default="plot.png", metavar="FILE",
                   help="image file, its type from the suffix (default: plot.png)")
    p.set_defaults(func=plot_main)

    p = subparsers.add_parser(
        "defaults-study", help="the defaults study's page, table and figure (paper/defaults.md)",
        description="Apply the rule of paper/defaults.md (fmer.analysis.defaults.RULE, written "
                    "before any run of the study was read) to budget `defaults`: the estimates "
                    "and completeness of fmer aggregate, and the update cost per setting of "
                    "fmer bench --budget defaults. Writes the page (the rule verbatim, the "
                    "table, the rule applied step by step, the choice), a tidy CSV and a "
                    "figure. While a run is neither complete nor failed: no choice.",
        **examples("fmer defaults-study",
                   "fmer defaults-study --page /tmp/defaults.md --csv /tmp/defaults.csv "
                   "--figure /tmp/study"))
    p.add_argument("--estimates", default="results/defaults/estimates.csv", metavar="CSV")
    p.add_argument("--completeness", default="results/defaults/completeness.csv", metavar="CSV")
    p.add_argument("--update-cost", default="results/defaults/update_cost.csv", metavar="CSV",
                   help="fmer bench --budget defaults --csv output; if absent, the page says "
                        "the cost is not measured (and chooses nothing that needs it)")
    p.add_argument("--page", default="paper/defaults.md", metavar="MD")
    p.add_argument("--csv", default="paper/defaults.csv", metavar="CSV")
    p.add_argument("--figure", default="figures/defaults/study", metavar="STEM",
                   help="writes STEM.png, STEM.pdf")
    p.set_defaults(func=defaults_main)

    p = subparsers.add_parser(
        "intervals-study", help="how often intervals over seeds cover the mean "
                                "(paper/intervals.md)",
        description="Simulate the 95%% t-interval and the 95%% percentile bootstrap over n "
                    "seeds on populations with a known mean (normal, skewed, bimodal) and "
                    "write how often each covers it: a page and a tidy CSV "
                    "(fmer.analysis.coverage).",
        **examples("fmer intervals-study",
                   "fmer intervals-study --trials 1000 --page /tmp/i.md --csv /tmp/i.csv"))
    p.add_argument("--page", default="paper/intervals.md", metavar="MD")
    p.add_argument("--csv", default="paper/intervals.csv", metavar="CSV")
    p.add_argument("--trials", type=int, metavar="N",
                   help="simulated experiments per population and n (default: "
                        "fmer.analysis.coverage.TRIALS)")
    p.set_defaults(func=intervals_main)
