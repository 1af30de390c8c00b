"""The estimates table: every number the figures, tables and verdicts show, computed once.

One row per (env, variant, metric[, step]): the point estimate over seeds, its interval and
what that interval is, n, the seeds and each seed's value (so a reader, or a figure, can show
the seeds themselves). Run-level metrics (``RUN_METRICS``) have no step; curve metrics
(``CURVE_METRICS``) have one row per evaluation step that every seed of the cell reached.

The interval is Student's t interval for the mean over seeds (fmer.analysis.stats.t_interval):
with 3 seeds a percentile bootstrap returns the lowest and highest seed, ~75% coverage, while
the t interval's coverage is 95% for normal seed-to-seed variation (paper/intervals.md
measures both on skewed and bimodal populations too). One seed: no interval.

The workflow writes one table per (env, variant) cell beside the cell's summary
(``fmer aggregate``) and concatenates them per budget (``results/BUDGET/estimates.csv``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from fmer.analysis import stats
from fmer.envs import KITCHEN_TASKS

INTERVAL = "95% t-interval over seeds"
COLUMNS = ["env", "variant", "metric", "step", "point", "low", "high", "interval", "n",
           "seeds", "values"]


def success_pct(summary: pd.DataFrame) -> pd.Series:
    """The paper's FrankaKitchen "success rate": mean tasks completed / N x 100."""
    n_tasks = summary["env"].map(lambda env: len(KITCHEN_TASKS.get(env, ())) or np.nan)
    return 100 * summary["tasks_completed_mean"] / n_tasks


# name -> (what of each run: its summary rows (sorted by step) -> one number)
RUN_METRICS: dict[str, Callable[[pd.DataFrame], float]] = {
    # the paper's MuJoCo statistic: the best evaluation of the run
    "max_return": lambda run: run["return_mean"].max(),
    "final_return": lambda run: run["return_mean"].iloc[-1],
    # the paper's FrankaKitchen statistic, at the last evaluation
    "final_success_pct": lambda run: success_pct(run).iloc[-1],
    # wall time to the last evaluation (machine and load dependent: an observation only)
    "wall_time_s": lambda run: run["wall_time_s"].iloc[-1],
    # the run's length, which says which claims it can speak to (fmer.analysis.verdicts)
    "total_steps": lambda run: run["total_steps"].iloc[-1],
}
# summary columns estimated at every evaluation step
CURVE_METRICS = ("return_mean", "success_pct", "entropy", "entropy_corrected", "entropy_latent",
                 "tau", "ess_frac", "alpha")


def _row(env: str, variant: str, metric: str, step, per_seed: pd.Series) -> dict:
    per_seed = per_seed.dropna().sort_index()
    values = per_seed.to_numpy(float)
    if len(values) >= 2:
        point, low, high = stats.t_interval(values)
    else:
        point, low, high = (float(values[0]) if len(values) else np.nan), np.nan, np.nan
    return {"env": env, "variant": variant, "metric": metric, "step": step, "point": point,
            "low": low, "high": high, "interval": INTERVAL if len(values) >= 2 else "",
            "n": len(values), "seeds": ";".join(str(int(s)) for s in per_seed.index),
            "values": ";".join(repr(float(v)) for v in values)}


def cell_estimates(summary: pd.DataFrame) -> pd.DataFrame:
    """The estimates of every (env, variant) in ``summary`` (fmer aggregate's tidy table)."""
    rows = []
    if not summary.empty:
        summary = summary.sort_values(["env", "variant", "seed", "step"]).copy()
        if "tasks_completed_mean" in summary:
            summary["success_pct"] = success_pct(summary)
        for (env, variant), cell in summary.groupby(["env", "variant"], sort=False):
            runs = cell.groupby("seed")
            for metric, of in RUN_METRICS.items():
                needed = "tasks_completed_mean" if metric == "final_success_pct" else None
                if needed and cell[needed].isna().all():
                    continue
                rows.append(_row(env, variant, metric, np.nan, runs.apply(of)))
            n = cell["seed"].nunique()
            for metric in CURVE_METRICS:
                if metric not in cell or cell[metric].isna().all():
                    continue
                for step, at in cell.groupby("step"):
                    if at["seed"].nunique() == n:  # only steps every seed reached
                        rows.append(_row(env, variant, metric, step,
                                         at.set_index("seed")[metric]))
    return pd.DataFrame(rows, columns=COLUMNS)


def read(paths) -> pd.DataFrame:
    """The concatenation of estimates files (cells, or a budget's)."""
    tables = [pd.read_csv(p, keep_default_na=True, dtype={"seeds": str, "values": str})
              for p in paths]
    tables = [t for t in tables if len(t)]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS)


def write(estimates: pd.DataFrame, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    estimates.to_csv(path, index=False)


def select(estimates: pd.DataFrame, metric: str, env: str | None = None,
           variant: str | None = None, curve: bool = False) -> pd.DataFrame:
    """The rows of one metric (curve rows, with a step, or run-level rows, without)."""
    hit = estimates[(estimates["metric"] == metric)
                    & (estimates["step"].notna() if curve else estimates["step"].isna())]
    if env is not None:
        hit = hit[hit["env"] == env]
    if variant is not None:
        hit = hit[hit["variant"] == variant]
    return hit


def per_seed(row: pd.Series) -> pd.Series:
    """A row's value of each seed, indexed by seed."""
    if not isinstance(row["seeds"], str) or not row["seeds"]:
        return pd.Series(dtype=float)
    seeds = [int(s) for s in row["seeds"].split(";")]
    return pd.Series([float(v) for v in row["values"].split(";")], index=seeds)


def seed_values(estimates: pd.DataFrame, metric: str, env: str, variant: str) -> pd.Series:
    """seed -> value of a run-level metric of one cell; empty if the cell has none."""
    hit = select(estimates, metric, env, variant)
    return per_seed(hit.iloc[0]) if len(hit) else pd.Series(dtype=float)
