"""The paper's figures from run logs: ``fmer figure KIND --budget B --out STEM RUN_DIR...``.

Every figure is built from the RUN_DIRs a budget expects, drawn from the verified ones only,
and carries on its face how many of them it shows and which are missing. Estimates are means
over seeds with 95% stratified-bootstrap intervals (fmer.analysis.stats); every axis names its
metric. Written as STEM.png and STEM.pdf.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from fmer.analysis import stats  # noqa: E402
from fmer.analysis.aggregate import aggregate, coverage_note  # noqa: E402
from fmer.analysis.tables import success_pct  # noqa: E402
from fmer.config import VARIANTS  # noqa: E402
from fmer.envs import KITCHEN_BENCHMARKS, KITCHEN_TASKS, MUJOCO_BENCHMARKS  # noqa: E402
from fmer.multigoal import GOALS  # noqa: E402

COLORS = dict(zip(VARIANTS, sns.color_palette("colorblind", len(VARIANTS)), strict=True))
RETURN = "evaluation return (deterministic policy, mean over episodes)"
TASKS = "tasks completed per evaluation episode"
STEPS = "environment steps"


def metric_of(env: str) -> tuple[str, str]:
    return ("tasks_completed_mean", TASKS) if env in KITCHEN_BENCHMARKS else ("return_mean", RETURN)


def _empty(ax, what: str = "no complete runs yet") -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _envs(summary: pd.DataFrame, completeness: pd.DataFrame, order=None) -> list[str]:
    envs = completeness["env"].unique().tolist()
    return sorted(envs, key=order.index) if order else envs


def _lines(ax, summary: pd.DataFrame, metric: str, variants, style: str = "-",
           label_suffix: str = "", colors=COLORS, band_min_n: int = 1) -> None:
    """Mean over seeds per variant; the interval band only where ``band_min_n`` or more
    seeds are averaged."""
    data = summary[summary["variant"].isin(variants)]
    if data[metric].notna().sum() == 0:
        _empty(ax)
        return
    for (_, variant), c in stats.learning_curve(data, metric).groupby(["env", "variant"]):
        c = c.dropna(subset=["point"])
        color = colors[variant]
        ax.plot(c["step"], c["point"], style, color=color, marker="o", markersize=3,
                label=f"{variant}{label_suffix} (n={c['n'].iloc[0]})")
        if c["n"].iloc[0] >= band_min_n:
            ax.fill_between(c["step"], c["low"], c["high"], color=color, alpha=0.2, lw=0)


def _intervals(ax, table: pd.DataFrame, order, xlabel: str) -> None:
    """Horizontal point-and-interval plot, one row per entry of ``order`` present."""
    rows = [v for v in order if v in set(table["variant"])]
    for i, variant in enumerate(rows):
        r = table[table["variant"] == variant].iloc[0]
        ax.errorbar(r["point"], i, xerr=[[r["point"] - r["low"]], [r["high"] - r["point"]]],
                    fmt="o", color=COLORS[variant], capsize=4)
    ax.set_yticks(range(len(rows)), [f"{v} (n={int(table.set_index('variant').loc[v, 'n'])})"
                                     for v in rows])
    ax.set_ylim(-0.5, len(rows) - 0.5)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)


def curve(summary, completeness, **_):
    env = completeness["env"].iloc[0]
    metric, label = metric_of(env)
    fig, ax = plt.subplots(figsize=(6, 4))
    if summary.empty:
        _empty(ax)
    else:
        _lines(ax, summary, metric, ("fmer", "sac"))
        ax.legend(title="mean, 95% CI over seeds")
    # the metric's full name is longer than a 4-inch axis: wrap it rather than clip it
    ax.set(title=env, xlabel=STEPS, ylabel=textwrap.fill(label, 40))
    return fig


def ablation_returns(summary, completeness, **_):
    envs = _envs(summary, completeness, list(MUJOCO_BENCHMARKS))
    fig, axes = plt.subplots(len(envs), 2, figsize=(10, 2.6 * len(envs)), squeeze=False)
    for row, env in zip(axes, envs, strict=True):
        runs = summary[summary["env"] == env]
        for ax, which in zip(row, ("final", "max"), strict=True):
            if runs.empty:
                _empty(ax)
                continue
            per = stats.per_run(runs, "return_mean")
            table = stats.interval_table(per, ["variant"], which)
            _intervals(ax, table, VARIANTS,
                       f"{which} evaluation return" + (" (max over evaluations)"
                                                       if which == "max" else ""))
            ax.set_title(f"{env}: {which} return, mean and 95% CI over seeds")
    return fig


def ablation_ess(summary, completeness, **_):
    envs = _envs(summary, completeness, list(MUJOCO_BENCHMARKS))
    fig, axes = plt.subplots(2, len(envs), figsize=(5 * len(envs), 6.5), squeeze=False)
    for col, env in enumerate(envs):
        runs = summary[summary["env"] == env]
        for ax, metric, label in ((axes[0, col], "tau", "mirror-descent temperature τ"),
                                  (axes[1, col], "ess_frac", "ESS / N of candidate weights")):
            if runs.empty or metric not in runs:
                _empty(ax)
                continue
            _lines(ax, runs, metric, ("fmer", "fmer-no-ess"))
            ax.set(xlabel=STEPS, ylabel=label, title=env)
            ax.legend(fontsize=8)
        if not runs.empty and "tau" in runs:
            axes[0, col].set_yscale("log")
    return fig


def ablation_tanh(summary, completeness, **_):
    envs = _envs(summary, completeness, list(MUJOCO_BENCHMARKS))
    fig, axes = plt.subplots(2, len(envs), figsize=(5 * len(envs), 6.5), squeeze=False)
    for col, env in enumerate(envs):
        runs = summary[summary["env"] == env]
        top, bottom = axes[0, col], axes[1, col]
        if runs.empty or "entropy_corrected" not in runs:
            _empty(top)
            _empty(bottom)
            continue
        _lines(top, runs, "entropy_corrected", ("fmer", "fmer-no-tanh"), "-", ": corrected")
        _lines(top, runs, "entropy_latent", ("fmer", "fmer-no-tanh"), "--", ": latent")
        top.set(xlabel=STEPS, ylabel="policy entropy estimate (nats)", title=env)
        top.legend(fontsize=7)
        _lines(bottom, runs, "saturation", ("fmer", "fmer-no-tanh"))
        bottom.set(xlabel=STEPS, ylabel="action saturation: fraction of coordinates |a| > 0.99")
        bottom.legend(fontsize=8)
    return fig


def kitchen(summary, completeness, **_):
    envs = _envs(summary, completeness, list(KITCHEN_BENCHMARKS))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    panels = (("tasks", "tasks completed per episode (final evaluation)"),
              ("pct", "success rate, % = tasks completed / N × 100 (the paper's)"),
              ("all", "episodes completing all N tasks (fraction, final evaluation)"))
    if summary.empty:
        for ax in axes:
            _empty(ax)
        return fig
    s = summary.copy()
    s["tasks"] = s["tasks_completed_mean"]
    s["pct"] = success_pct(s)
    s["all"] = s["success_rate"]
    for ax, (col, label) in zip(axes, panels, strict=True):
        per = stats.per_run(s, col)
        table = stats.interval_table(per, ["env", "variant"], "final")
        width = 0.38
        for j, variant in enumerate(v for v in ("fmer", "sac") if v in set(table["variant"])):
            t = table[table["variant"] == variant].set_index("env").reindex(envs)
            x = np.arange(len(envs)) + (j - 0.5) * width
            ax.bar(x, t["point"], width, color=COLORS[variant],
                   label=f"{variant} (n={t['n'].min():.0f})")
            ax.errorbar(x, t["point"], yerr=[t["point"] - t["low"], t["high"] - t["point"]],
                        fmt="none", color="k", capsize=3)
        ax.set_xticks(range(len(envs)), [f"N = {len(KITCHEN_TASKS[e])}" for e in envs])
        ax.set_ylabel(label, fontsize=8)
        ax.legend(fontsize=8)
    fig.suptitle("FrankaKitchen-v1: mean and 95% CI over seeds")
    return fig


def multigoal(summary, completeness, **_):
    done = completeness[completeness["status"] == "complete"]
    frames = [pd.read_csv(Path(p) / "samples.csv") for p in done["path"]
              if (Path(p) / "samples.csv").exists()]
    samples = pd.concat(frames) if frames else pd.DataFrame(
        columns=["variant", "seed", "state_x", "state_y", "action_x", "action_y"])
    variants = [v for v in ("fmer", "sac") if v in set(completeness["variant"])]
    states = samples[["state_x", "state_y"]].drop_duplicates().to_numpy()
    fig, axes = plt.subplots(max(len(states), 1), len(variants),
                             figsize=(4 * len(variants), 3.8 * max(len(states), 1)),
                             squeeze=False)
    for col, variant in enumerate(variants):
        mine = samples[samples["variant"] == variant]
        for row in range(axes.shape[0]):
            ax = axes[row, col]
            if mine.empty:
                _empty(ax, f"{variant}: no samples yet")
                continue
            sx, sy = states[row]
            at = mine[(mine["state_x"] == sx) & (mine["state_y"] == sy)]
            ax.scatter(at["action_x"], at["action_y"], s=4, alpha=0.3, color=COLORS[variant])
            toward = (GOALS - [sx, sy]) / np.linalg.norm(GOALS - [sx, sy], axis=1)[:, None]
            ax.scatter(toward[:, 0], toward[:, 1], marker="*", s=120, color="k",
                       label="direction to a goal")
            ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), aspect="equal",
                   xlabel="action x", ylabel="action y",
                   title=f"{variant} at state ({sx:g}, {sy:g}), "
                         f"{at['seed'].nunique()} seed(s)")
            ax.legend(fontsize=7, loc="lower left")
    fig.suptitle("multigoal-2d: stochastic actions of the final policy")
    return fig


def normalised_scores(summary: pd.DataFrame, random: pd.DataFrame):
    """Final return per run, normalised per task as (R - R_random) / (R_SAC - R_random), with
    R_SAC the mean final return of SAC on that task at the same budget; tasks without a
    complete SAC run cannot be normalised and are dropped (and named)."""
    per = stats.per_run(summary, "return_mean")
    rand = random.set_index("env")["return_mean"]
    sac = per[per["variant"] == "sac"].groupby("env")["final"].mean()
    usable = [e for e in MUJOCO_BENCHMARKS if e in set(per["env"]) and e in sac and e in rand]
    dropped = sorted(set(per["env"]) - set(usable))
    per = per[per["env"].isin(usable)].copy()
    per["score"] = (per["final"] - per["env"].map(rand)) / (
        per["env"].map(sac) - per["env"].map(rand))
    return per, dropped


def iqm(summary, completeness, random_scores=None, **_):
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    label = "IQM of normalised final return (R − R_random) / (R_SAC − R_random)"
    if summary.empty or random_scores is None:
        _empty(left)
        _empty(right)
        return fig
    per, dropped = normalised_scores(summary, pd.read_csv(random_scores))
    if per.empty:
        _empty(left, "no task with both FMER and SAC runs")
        _empty(right)
        return fig
    rows = []
    for variant, group in per.groupby("variant"):
        point, low, high = stats.stratified_ci(
            [g["score"].to_numpy() for _, g in group.groupby("env")], stats.iqm)
        rows.append({"variant": variant, "point": point, "low": low, "high": high,
                     "n": len(group)})
    _intervals(left, pd.DataFrame(rows), VARIANTS, label)
    tasks = sorted(per["env"].unique(), key=list(MUJOCO_BENCHMARKS).index)
    left.set_title(f"over {len(tasks)} MuJoCo task(s)" + (f"; not normalisable: "
                                                           f"{', '.join(dropped)}"
                                                           if dropped else ""), fontsize=9)
    table = stats.interval_table(per, ["env", "variant"], "score")
    for j, variant in enumerate(v for v in VARIANTS if v in set(table["variant"])):
        t = table[table["variant"] == variant].set_index("env").reindex(tasks)
        y = np.arange(len(tasks)) + 0.2 * (j - 0.5)
        right.errorbar(t["point"], y, xerr=[t["point"] - t["low"], t["high"] - t["point"]],
                       fmt="o", color=COLORS[variant], capsize=3, label=variant)
    right.set_yticks(range(len(tasks)), tasks)
    right.set_ylim(-0.5, len(tasks) - 0.5)
    right.invert_yaxis()
    right.axvline(1.0, color="0.6", lw=0.8)
    right.set_xlabel("normalised final return, mean and 95% CI over seeds")
    right.legend(fontsize=8)
    return fig


KINDS = {"curve": curve, "ablation_returns": ablation_returns, "ablation_ess": ablation_ess,
         "ablation_tanh": ablation_tanh, "kitchen": kitchen, "multigoal": multigoal,
         "iqm": iqm}


def build(kind: str, run_dirs, budget: str, out: str | Path, random_scores=None) -> list[Path]:
    summary, completeness = aggregate(run_dirs, budget)
    fig = KINDS[kind](summary, completeness, random_scores=random_scores)
    return save(fig, completeness, budget, out)


def save(fig, completeness: pd.DataFrame, budget: str, out: str | Path) -> list[Path]:
    """STEM.png and STEM.pdf of ``fig``, its footer naming the budget's runs it lacks."""
    fig.text(0.01, 0.005, coverage_note(completeness, budget), fontsize=7, ha="left",
             va="bottom", wrap=True,
             color="k" if (completeness["status"] == "complete").all() else "firebrick")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out.with_name(out.name + ext) for ext in (".png", ".pdf")]
    fig.savefig(paths[0], dpi=150)
    # no creation date: regenerating from the same logs gives the same bytes
    fig.savefig(paths[1], metadata={"CreationDate": None})
    plt.close(fig)
    return paths


def main(args) -> int:
    for path in build(args.kind, args.run_dirs, args.budget, args.out, args.random_scores):
        print(path)
    return 0
