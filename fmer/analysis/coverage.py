"""How often an interval over seeds covers the true mean, simulated (paper/intervals.md).

The package's first pages gave a 95% percentile bootstrap over seeds (``stats.stratified_ci``);
its estimates table gives Student's t interval (``stats.t_interval``). Here both are drawn on
populations whose mean is known, at the seed counts the budgets use (3 for ``mini``, 5 for
``paper``, and the counts a partly run grid has), and we count how often each contains the
mean. ``fmer intervals-study`` writes the page and a CSV; ``label`` gives every figure and
table the coverage of the interval it draws, from the same simulation (same seeds, same draws).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from fmer import markdown
from fmer.analysis import stats

TRIALS = 10_000  # simulated experiments per (population, n): standard error <= 0.5 points
SEED = 0
NS = (2, 3, 4, 5)
METHODS = {"t": "95% t-interval", "bootstrap": "95% percentile bootstrap"}
PAGE = "paper/intervals.md"


@dataclass(frozen=True)
class Population:
    description: str
    draw: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]
    mean: float


# bimodal: seeds that do or do not take off, shaped like HalfCheetah-v5 SAC's max returns at
# budget mini (7, 25, 159: one of three took off)
TAKE_OFF, LOW, HIGH = 1 / 3, (15.0, 10.0), (150.0, 15.0)


def _bimodal(rng: np.random.Generator, shape) -> np.ndarray:
    off = rng.random(shape) < TAKE_OFF
    return np.where(off, rng.normal(*HIGH, shape), rng.normal(*LOW, shape))


POPULATIONS = {
    "normal": Population("normal, N(0, 1)", lambda rng, shape: rng.normal(0.0, 1.0, shape),
                         0.0),
    "skewed": Population("log-normal, exp(N(0, 1)): a long right tail (skewness 6.2)",
                         lambda rng, shape: rng.lognormal(0.0, 1.0, shape), float(np.exp(0.5))),
    "bimodal": Population(
        f"seeds that take off or not: with probability {TAKE_OFF:.2f} N({HIGH[0]:g}, "
        f"{HIGH[1]:g}²), else N({LOW[0]:g}, {LOW[1]:g}²); shaped like HalfCheetah-v5 SAC's "
        "max returns at budget mini (7, 25, 159)", _bimodal,
        TAKE_OFF * HIGH[0] + (1 - TAKE_OFF) * LOW[0]),
}


def samples(population: str, n: int, trials: int = TRIALS, seed: int = SEED) -> np.ndarray:
    """(trials, n): ``trials`` experiments of ``n`` seeds each, the same for every method."""
    rng = np.random.default_rng([seed, list(POPULATIONS).index(population), n])
    return POPULATIONS[population].draw(rng, (trials, n))


def intervals(method: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of ``method`` for each row of ``x``: the package's own functions."""
    if method == "t":
        _, low, high = stats.t_interval(x)
        return low, high
    bounds = np.array([stats.stratified_ci([row])[1:] for row in x])
    return bounds[:, 0], bounds[:, 1]


def coverage(population: str, n: int, method: str, trials: int = TRIALS,
             seed: int = SEED) -> float:
    """The fraction of simulated experiments whose interval contains the population mean."""
    low, high = intervals(method, samples(population, n, trials, seed))
    mean = POPULATIONS[population].mean
    return float(np.mean((low <= mean) & (mean <= high)))


def study(ns=NS, methods=tuple(METHODS), populations=tuple(POPULATIONS), trials: int = TRIALS,
          seed: int = SEED) -> pd.DataFrame:
    rows = []
    for population in populations:
        for n in ns:
            x = samples(population, n, trials, seed)
            mean = POPULATIONS[population].mean
            for method in methods:
                low, high = intervals(method, x)
                hit = (low <= mean) & (mean <= high)
                rows.append({"population": population, "n": n, "method": method,
                             "coverage": float(hit.mean()),
                             "standard_error": float(np.sqrt(hit.mean() * (1 - hit.mean())
                                                             / trials)),
                             "trials": trials})
    return pd.DataFrame(rows)


def label(n: int) -> str:
    """What a band from ``n`` seeds is, with its simulated coverage (the page's numbers)."""
    if n < 2:
        return f"n={n}: no interval"
    cover = ", ".join(f"{100 * coverage(p, n, 't'):.0f}% {p}" for p in POPULATIONS)
    return f"95% t-interval of the mean over {n} seeds; simulated coverage {cover} ({PAGE})"


def range_coverage(q: float, n: int) -> float:
    """Coverage of [lowest, highest] of n seeds: 1 − qⁿ − (1 − q)ⁿ, q = P(X < mean)."""
    return 1 - q ** n - (1 - q) ** n


def page(table: pd.DataFrame) -> str:
    wide = table.pivot_table(index=["population", "n"], columns="method", values="coverage")
    wide = wide.reindex(list(POPULATIONS), level=0)
    rows = [(p, n, *(f"{100 * wide.loc[(p, n), m]:.1f}%" for m in METHODS))
            for p, n in wide.index]
    trials = int(table["trials"].iloc[0])
    se = 100 * table["standard_error"].max()
    q = float(sps.norm.cdf(0.5))  # log-normal: P(X < mean) = P(Z < 1/2)
    return "\n".join([
        "# Intervals over seeds: how often they cover the mean", "",
        "Every figure and table of this package gives a mean over seeds with an interval. "
        "Which interval, and what it is worth with 3 seeds (budget `mini`) or 5 (`paper`), is "
        "measured here: on populations whose mean is known, we draw n seeds "
        f"{trials:,} times (seed {SEED}), build each interval and count how often it contains "
        f"the mean (standard error at most {se:.1f} points). Generated by "
        "`fmer intervals-study` (`fmer/analysis/coverage.py`; Snakemake target "
        "`intervals_study`).", "",
        "- **95% t-interval**: Student's t interval for the mean (`fmer.analysis.stats."
        "t_interval`): what the estimates table (`results/BUDGET/estimates.csv`) gives, and so "
        "every band and bracket of the figures and tables.",
        f"- **95% percentile bootstrap**: {stats.REPS:,} resamples of the seeds with "
        "replacement, the 2.5th and 97.5th percentiles of their means "
        "(`fmer.analysis.stats.stratified_ci`): what the package's pages gave before, and "
        "what the defaults study's rule (`paper/defaults.md`) names.", "",
        "Populations:", "",
        *(f"- **{name}**: {p.description}; mean {p.mean:.4g}" for name, p in
          POPULATIONS.items()), "",
        markdown.table(("population", "seeds n", *METHODS.values()), rows), "",
        "Reading it:", "",
        "- With 3 seeds the percentile bootstrap is the range of the seeds: of the 27 equally "
        "likely resamples, the one that repeats the lowest seed three times has probability "
        "1/27 = 3.7% > 2.5%, and so has the highest's, so the interval is [lowest seed, "
        "highest seed], whose coverage is "
        "1 − q³ − (1 − q)³ with q = P(X < mean): 75% for any symmetric population, "
        f"{100 * range_coverage(q, 3):.1f}% for the log-normal (q = {q:.3f}). It is not a "
        "95% interval; it is called here what it is.",
        "- The t-interval covers 95% of the time when seeds vary normally, at every n. On "
        "a skewed or bimodal population it covers less, most of all when few seeds are drawn "
        "and the rare mode (the seed that takes off) is often absent: then no interval built "
        "from those seeds alone can contain the mean. The figures and tables write these "
        "coverages beside every interval, and where seeds are few they show the seeds "
        "themselves.", ""])


def write(page_path, csv_path, trials: int = TRIALS) -> list[Path]:
    table = study(trials=trials)
    paths = [Path(page_path), Path(csv_path)]
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
    paths[0].write_text(page(table))
    table.to_csv(paths[1], index=False)
    return paths
