"""The analysis subcommands of ``fmer``: aggregate, figure, tables, samples, random-scores, plan.

Parsers only; each handler lives with its logic and is imported when its subcommand runs, so
that ``fmer train`` does not pay for matplotlib, seaborn and rliable at start-up.
"""

from __future__ import annotations

import importlib

from fmer import budgets, markdown

# fmer.analysis.figures.KINDS, named here to keep matplotlib out of start-up (a test checks)
FIGURE_KINDS = ("curve", "ablation_returns", "ablation_ess", "ablation_tanh", "kitchen",
                "multigoal", "iqm")


def _lazy(module: str, function: str):
    def run(args) -> int:
        return getattr(importlib.import_module(f"fmer.analysis.{module}"), function)(args)

    return run


def plan_main(args) -> int:
    from fmer.analysis import cost

    config = budgets.load(args.config)
    names = args.budgets or list(config["budgets"])
    rows = []
    for name in names:
        size = cost.budget_size(budgets.runs(config, name))
        rows.append((name, size["runs"], f"{size['env_steps']:,}", f"{size['core_hours']:,.1f}"))
    print(markdown.table(("budget", "runs", "env steps", "est. core-hours (one laptop core)"),
                         rows))
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "aggregate", help="run logs -> tidy summary.csv and a completeness report",
        description="Load every verified run among RUN_DIRs (the runs a budget expects) into "
                    "one table (env, variant, seed, step, metrics) and list the others as "
                    "incomplete, failed or missing.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--budget", required=True)
    p.add_argument("--out", required=True, metavar="CSV", help="summary table")
    p.add_argument("--completeness", required=True, metavar="CSV")
    p.set_defaults(func=_lazy("aggregate", "main"))

    p = subparsers.add_parser(
        "figure", help="one of the paper's figures from run logs (PNG and PDF)",
        description="Build figure KIND from the RUN_DIRs a budget expects; missing runs are "
                    "named on the figure, never filled in.")
    p.add_argument("kind", choices=FIGURE_KINDS)
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--budget", required=True)
    p.add_argument("--out", required=True, metavar="STEM", help="writes STEM.png, STEM.pdf")
    p.add_argument("--random-scores", metavar="CSV",
                   help="fmer random-scores output (iqm: the normalisation's zero)")
    p.set_defaults(func=_lazy("figures", "main"))

    p = subparsers.add_parser(
        "tables", help="Markdown and LaTeX tables: our numbers beside the paper's",
        description="From fmer aggregate's summary and completeness files and the paper's "
                    "reported numbers, write OUT.md and OUT.tex.")
    p.add_argument("--budget", required=True)
    p.add_argument("--summary", required=True, metavar="CSV")
    p.add_argument("--completeness", required=True, metavar="CSV")
    p.add_argument("--reported", required=True, metavar="CSV")
    p.add_argument("--out", required=True, metavar="STEM")
    p.set_defaults(func=_lazy("tables", "main"))

    p = subparsers.add_parser(
        "samples", help="action samples of a run's final policy (multimodality figure)",
        description="Load the final agent of RUN_DIR from its checkpoint and draw N stochastic "
                    "actions at each of a few fixed states of multigoal-2d.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", required=True, metavar="CSV")
    p.add_argument("-n", type=int, default=300, help="samples per state (default 300)")
    p.set_defaults(func=_lazy("rollouts", "samples_main"))

    p = subparsers.add_parser(
        "random-scores", help="return of a uniform random policy per env",
        description="Mean return of uniform random actions over 10 seeded episodes per ENV: "
                    "the zero of the normalised scores.")
    p.add_argument("envs", nargs="+", metavar="ENV")
    p.add_argument("--out", required=True, metavar="CSV")
    p.set_defaults(func=_lazy("rollouts", "random_scores_main"))

    p = subparsers.add_parser(
        "plan", help="size of each budget's grid: runs, env steps, estimated core-hours",
        description="Estimates from measured speeds (fmer.analysis.cost).")
    p.add_argument("budgets", nargs="*", metavar="BUDGET", help="default: all")
    p.add_argument("--config", default=budgets.DEFAULT_FILE, metavar="YAML")
    p.set_defaults(func=plan_main)
