"""Intervals and aggregates: Student's t interval (what the estimates table gives, over seeds,
and ``fmer eval``, over episodes), Wilson's for a success rate, the IQM, and the
stratified percentile bootstrap (Agarwal et al. 2021) that the defaults study's rule names and
the coverage study (fmer.analysis.coverage, paper/intervals.md) measures: with 3 seeds it
returns the lowest and highest seed, about 75% coverage, so no figure or table draws it.

The IQM is rliable's (``rliable.metrics.aggregate_iqm``: the 25% trimmed mean over all runs
and tasks). The bootstrap is written here: rliable 1.2.0's ``get_interval_estimates``
needs ``arch<8``, and arch 7.x cannot be imported under pandas 3 (it calls pandas' private
``deprecate_kwarg`` with the old signature), while arch 8 dropped the ``random_state`` argument
rliable passes. The algorithm is rliable's: resample the runs of each task with replacement,
independently per task (strata), recompute the aggregate, take the percentile interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# scipy.stats and rliable are imported where used: at module level they cost every `fmer`
# command ~2 s of CPU at start (the CLI imports this module through
# fmer.analysis.performance), a workflow job or a test's subprocess included, though only the
# analysis commands need them.

REPS = 5000
LEVEL = 0.95


def mean(x: np.ndarray) -> np.ndarray:
    """Mean over the last axis (one value per bootstrap replicate)."""
    return np.mean(x, axis=-1)


def iqm(x: np.ndarray) -> np.ndarray:
    """Interquartile mean over the last axis; on one run set, rliable's ``aggregate_iqm``."""
    from rliable import metrics
    from scipy import stats as sps

    if x.ndim == 1:
        return metrics.aggregate_iqm(x)
    return sps.trim_mean(x, proportiontocut=0.25, axis=-1)


def stratified_ci(groups: Sequence[np.ndarray], statistic: Callable = mean, reps: int = REPS,
                  level: float = LEVEL, seed: int = 0) -> tuple[float, float, float]:
    """(point, low, high) of ``statistic`` over the pooled runs of all groups (tasks); the
    interval from resampling runs within each group. A single run gives a zero-width interval
    (nothing to resample): the figures state the number of seeds beside every estimate."""
    groups = [np.asarray(g, dtype=float) for g in groups]
    groups = [g[np.isfinite(g)] for g in groups]
    groups = [g for g in groups if g.size]
    if not groups:
        return (np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    resampled = np.concatenate([g[rng.integers(0, g.size, (reps, g.size))] for g in groups],
                               axis=1)
    replicates = statistic(resampled)
    point = float(statistic(np.concatenate(groups)))
    low, high = np.percentile(replicates, [50 * (1 - level), 50 * (1 + level)])
    return point, float(low), float(high)


def t_interval(values, level: float = LEVEL):
    """(mean, low, high): Student's t interval for the mean of i.i.d. values, e.g. the episodes
    of one policy, over the last axis (an array of samples gives arrays). Exact coverage for
    normal values; n = 1 gives (mean, nan, nan)."""
    from scipy import stats as sps

    x = np.asarray(values, dtype=float)
    m = x.mean(axis=-1)
    n = x.shape[-1]
    if n < 2:
        half = np.full_like(m, np.nan)
    else:
        half = sps.t.ppf(0.5 + level / 2, n - 1) * x.std(axis=-1, ddof=1) / np.sqrt(n)
    if x.ndim == 1:
        return float(m), float(m - half), float(m + half)
    return m, m - half, m + half


def wilson_interval(successes: int, n: int, level: float = LEVEL) -> tuple[float, float, float]:
    """(rate, low, high): Wilson's score interval for a success rate, which, unlike the
    normal approximation, stays inside [0, 1] and is not empty at 0 or n successes."""
    from scipy import stats as sps

    if n < 1:
        return np.nan, np.nan, np.nan
    z = sps.norm.ppf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, float(max(centre - half, 0.0)), float(min(centre + half, 1.0))
