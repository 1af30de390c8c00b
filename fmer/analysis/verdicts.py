"""A verdict per paper claim, by rules written before any FMER `mini` result was read.

Each claim is a comparison of two variants (or, for multimodality, a count on the action
samples), decided by ``verdict`` on a 95% stratified-bootstrap interval (fmer.analysis.stats:
runs resampled within each benchmark). ``RULES`` is printed verbatim on the page
(``fmer tables``, ``paper/BUDGET/results.md``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fmer import markdown
from fmer.analysis import estimates, stats
from fmer.envs import KITCHEN_BENCHMARKS, MUJOCO_BENCHMARKS, MULTIGOAL
from fmer.multigoal import GOALS

SUPPORTS, CONTRADICTS, CANNOT_TELL = "supports", "contradicts", "cannot tell"
PAPER_STEPS = 1_000_000
MARGIN = -0.10  # "competitive": FMER's max return at least 90% of SAC's
COST_LIMIT = 2.0  # "comparable cost": FMER's wall time at most 2x SAC's [ours]
MODE_SHARE = 0.10  # a goal direction counts as a mode with >= 10% of the start-state samples
START = (0.0, 0.0)
MIN_N = 2  # fewer pairs (or seeds) decide nothing: one pair's bootstrap interval has no width

RULES = f"""\
Rules, fixed before any FMER `mini` result was read (only multigoal seed 0 existed). A
difference is paired by seed within a benchmark (seeds both variants have), pooled over the
claim's benchmarks; its 95% interval is the stratified bootstrap of `fmer.analysis.stats`
(seeds resampled within each benchmark, {stats.REPS:,} resamples). MuJoCo returns use the
paper's statistic, the maximum over evaluations of the mean return, as a relative difference
(A − B) / |mean of B on that benchmark|; FrankaKitchen uses final success % (mean tasks
completed / N × 100), as a difference in points.

- **Generic rule.** *supports* if the interval lies above the threshold, *contradicts* if it
  lies below, otherwise *cannot tell*; no pairs: *cannot tell (n=0)*; fewer than {MIN_N} pairs
  (or seeds, for multimodality): *cannot tell* (added after the first page showed a verdict
  from one pair, whose interval has no width; it favours neither side). Threshold 0 unless
  named.
- FrankaKitchen superiority: FMER − SAC, success points.
- Competitive MuJoCo returns: FMER − SAC relative, threshold {MARGIN:+.0%} (non-inferiority
  margin [ours]: at least 90% of SAC's return).
- The tanh correction helps: `fmer` − `fmer-no-tanh`, relative, on the benchmarks that have both.
- ESS tuning helps: `fmer` − `fmer-no-ess`, relative.
- Normalised weights beat top-1 and unnormalised: `fmer` − `fmer-top1` and `fmer` −
  `fmer-unnormalized`, relative; *supports* if both support, *contradicts* if either
  contradicts, otherwise *cannot tell*.
- Multimodal policies: per FMER seed on multigoal-2d, the goal directions (the goal whose
  direction from the start state is closest in angle to the action) that receive ≥
  {MODE_SHARE:.0%} of the action samples at the start state {START} (`samples.csv`);
  *supports* if every seed has ≥ 2, *contradicts* if every seed has ≤ 1, otherwise *cannot
  tell*; no samples: *cannot tell (n=0)*. SAC's counts are shown beside.
- Training cost against SAC: the ratio FMER / SAC of the wall time to the last evaluation
  (eval.csv `wall_time_s`), paired by seed, over every benchmark with both, as a mean of log
  ratios; *supports* (cost comparable) if the interval of the ratio lies below {COST_LIMIT:g}×
  ([ours]: the paper gives no number), *contradicts* if it lies above, otherwise *cannot tell*.
"""


def verdict(low: float, high: float, n: int, threshold: float = 0.0) -> str:
    """The generic rule: the interval [low, high] against ``threshold``; n = pairs."""
    if n == 0:
        return f"{CANNOT_TELL} (n=0)"
    if n < MIN_N or not np.isfinite(low) or not np.isfinite(high):
        return CANNOT_TELL
    if low > threshold:
        return SUPPORTS
    if high < threshold:
        return CONTRADICTS
    return CANNOT_TELL


def both(a: str, b: str) -> str:
    """Two comparisons that must both hold (normalised weights beat top-1 and unnormalised)."""
    if CONTRADICTS in (a, b):
        return CONTRADICTS
    if a == b == SUPPORTS:
        return SUPPORTS
    return f"{CANNOT_TELL} (n=0)" if a == b == f"{CANNOT_TELL} (n=0)" else CANNOT_TELL


def modes(actions: np.ndarray, share: float = MODE_SHARE) -> int:
    """Goal directions that receive at least ``share`` of the actions (rows of (x, y))."""
    actions = np.asarray(actions, dtype=float).reshape(-1, 2)
    if not len(actions):
        return 0
    toward = GOALS - np.asarray(START)
    toward = toward / np.linalg.norm(toward, axis=1, keepdims=True)
    nearest = np.argmax(actions @ toward.T, axis=1)
    counts = np.bincount(nearest, minlength=len(GOALS))
    return int(np.sum(counts >= share * len(actions)))


def multimodal_verdict(mode_counts: list[int]) -> str:
    if not mode_counts:
        return f"{CANNOT_TELL} (n=0)"
    if len(mode_counts) < MIN_N:
        return CANNOT_TELL
    if all(m >= 2 for m in mode_counts):
        return SUPPORTS
    if all(m <= 1 for m in mode_counts):
        return CONTRADICTS
    return CANNOT_TELL


def paired(values: pd.DataFrame, a: str, b: str, envs, how: str) -> tuple[list[np.ndarray], int]:
    """Per benchmark, the paired differences of ``value`` (columns env, variant, seed, value):
    ``abs`` A − B, ``rel`` (A − B) / |mean B|, ``log`` log(A / B)."""
    groups, n = [], 0
    for env in envs:
        here = values[values["env"] == env]
        va = here[here["variant"] == a].set_index("seed")["value"]
        vb = here[here["variant"] == b].set_index("seed")["value"]
        seeds = sorted(set(va.index) & set(vb.index))
        if not seeds:
            continue
        xa, xb = va[seeds].to_numpy(float), vb[seeds].to_numpy(float)
        if how == "abs":
            d = xa - xb
        elif how == "rel":
            scale = abs(xb.mean())
            d = (xa - xb) / scale if scale > 0 else np.full(len(seeds), np.nan)
        else:
            d = np.log(xa / xb)
        groups.append(d)
        n += len(seeds)
    return groups, n


def _ci(groups) -> tuple[float, float, float]:
    return stats.stratified_ci(groups) if groups else (np.nan, np.nan, np.nan)


def _per_run(table: pd.DataFrame, completeness: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Each seed's value of a run-level metric of the estimates table, with its run's length."""
    rows = [{"env": r["env"], "variant": r["variant"], "seed": seed, "value": value}
            for _, r in estimates.select(table, metric).iterrows()
            for seed, value in estimates.per_seed(r).items()]
    per = pd.DataFrame(rows, columns=["env", "variant", "seed", "value"])
    steps = completeness[["env", "variant", "seed", "last_step"]].rename(
        columns={"last_step": "total_steps"})
    return per.merge(steps, on=["env", "variant", "seed"])


def _gap(values: pd.DataFrame, variants, envs) -> str:
    hit = values[values["variant"].isin(variants) & values["env"].isin(envs)]
    steps = sorted({int(s) for s in hit["total_steps"]})
    if not steps:
        return f"no runs yet; the paper: {PAPER_STEPS:,} steps"
    return f"{'/'.join(f'{s:,}' for s in steps)} steps vs the paper's {PAPER_STEPS:,}"


def _fmt(ci, n, unit) -> str:
    point, low, high = ci
    if n == 0:
        return "n=0"
    if unit == "%":
        return f"{point:+.1%} [{low:+.1%}, {high:+.1%}] (n={n})"
    if unit == "x":
        return f"{np.exp(point):.2f}× [{np.exp(low):.2f}, {np.exp(high):.2f}] (n={n})"
    return f"{point:+.1f} [{low:+.1f}, {high:+.1f}] points (n={n})"


def _envs_with(values: pd.DataFrame, variants, envs) -> list[str]:
    have = [set(values.loc[values["variant"] == v, "env"]) for v in variants]
    return [e for e in envs if all(e in h for h in have)]


def verdict_rows(table: pd.DataFrame, completeness: pd.DataFrame, budget: str) -> pd.DataFrame:
    """One row per claim: claim, verdict, numbers, note (the budget gap)."""
    returns = _per_run(table, completeness, "max_return")
    success = _per_run(table, completeness, "final_success_pct")
    wall = _per_run(table, completeness, "wall_time_s")
    rows = []

    def compare(values, a, b, envs, how, threshold=0.0, unit="%"):
        groups, n = paired(values, a, b, _envs_with(values, (a, b), envs), how)
        ci = _ci(groups)
        shown = (f"{a} − {b}: " if unit != "x" else f"{a} / {b}: ") + _fmt(ci, n, unit)
        return verdict(ci[1], ci[2], n, threshold), shown

    v, shown = compare(success, "fmer", "sac", KITCHEN_BENCHMARKS, "abs",
                       unit="points")
    rows.append(("FrankaKitchen: FMER's success beats SAC's", v, shown,
                 _gap(success, ("fmer", "sac"), KITCHEN_BENCHMARKS)))
    v, shown = compare(returns, "fmer", "sac", MUJOCO_BENCHMARKS, "rel", MARGIN)
    rows.append(("MuJoCo: FMER's returns are competitive with SAC's", v, shown,
                 _gap(returns, ("fmer", "sac"), MUJOCO_BENCHMARKS)))
    for claim, other in (("the tanh entropy correction helps", "fmer-no-tanh"),
                         ("ESS tuning of τ helps", "fmer-no-ess")):
        v, shown = compare(returns, "fmer", other, MUJOCO_BENCHMARKS, "rel")
        rows.append((claim, v, shown, _gap(returns, ("fmer", other), MUJOCO_BENCHMARKS)))
    v1, s1 = compare(returns, "fmer", "fmer-top1", MUJOCO_BENCHMARKS, "rel")
    v2, s2 = compare(returns, "fmer", "fmer-unnormalized", MUJOCO_BENCHMARKS, "rel")
    rows.append(("normalised weights beat top-1 and unnormalised", both(v1, v2),
                 f"{s1}; {s2}",
                 _gap(returns, ("fmer", "fmer-top1", "fmer-unnormalized"), MUJOCO_BENCHMARKS)))
    counts = mode_counts(completeness)
    fm = [m for (variant, _), m in sorted(counts.items()) if variant == "fmer"]
    sac = [m for (variant, _), m in sorted(counts.items()) if variant == "sac"]
    rows.append(("FMER's policy is multimodal (multigoal-2d)", multimodal_verdict(fm),
                 f"goal directions with ≥ {MODE_SHARE:.0%} of samples per seed: FMER {fm} "
                 f"(n={len(fm)}), SAC {sac} (n={len(sac)})",
                 _gap(returns, ("fmer", "sac"), (MULTIGOAL,))))
    groups, n = paired(wall, "fmer", "sac", _envs_with(wall, ("fmer", "sac"),
                                                       sorted(set(wall["env"]))), "log")
    ci = _ci(groups)
    cost_verdict = verdict(-ci[2], -ci[1], n, -np.log(COST_LIMIT))  # lower cost supports
    rows.append(("training cost comparable to SAC's", cost_verdict,
                 "fmer / sac wall time: " + _fmt(ci, n, "x"),
                 _gap(wall, ("fmer", "sac"), sorted(set(wall["env"])))))
    return pd.DataFrame(rows, columns=["claim", "verdict", "numbers", "note"])


def mode_counts(completeness: pd.DataFrame) -> dict[tuple[str, int], int]:
    """(variant, seed) -> goal directions with >= MODE_SHARE of the start-state samples, for
    each complete multigoal run with a samples.csv."""
    out = {}
    done = completeness[(completeness["env"] == MULTIGOAL)
                        & (completeness["status"] == "complete")]
    for row in done.itertuples():
        path = Path(row.path) / "samples.csv"
        if not path.exists():
            continue
        s = pd.read_csv(path)
        at = s[(s["state_x"] == START[0]) & (s["state_y"] == START[1])]
        if len(at):
            out[(row.variant, int(row.seed))] = modes(at[["action_x", "action_y"]].to_numpy())
    return out


def section(table: pd.DataFrame, completeness: pd.DataFrame, budget: str) -> list[str]:
    """The page's verdict section, as Markdown lines."""
    df = verdict_rows(table, completeness, budget)
    return ["## Verdicts, one per paper claim", "", RULES, markdown.table(
        df.columns, df.itertuples(index=False)), ""]
