"""The paper's figures from fmer aggregate's tables: ``fmer figure KIND --budget B --out STEM
--cell SUMMARY COMPLETENESS ...``.

A figure reads the summary and completeness of the (env, variant) cells it draws, never the
run directories (multigoal also reads the action samples of its runs). The completeness rows
are the runs the budget expects: every figure carries on its face how many of them it shows
and which are missing, and a variant without a complete run is listed as "not run", never
left out. Estimates are means over seeds with 95% stratified-bootstrap intervals
(fmer.analysis.stats), drawn only where at least BAND_MIN_N seeds are averaged: fewer seeds
are drawn one by one. Every axis names its metric. Written as STEM.png and STEM.pdf.
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
from matplotlib.lines import Line2D  # noqa: E402

from fmer.analysis import stats  # noqa: E402
from fmer.analysis.aggregate import coverage_note, read_cells  # noqa: E402
from fmer.analysis.tables import success_pct  # noqa: E402
from fmer.budgets import MAIN  # noqa: E402
from fmer.config import VARIANTS, TrainConfig  # noqa: E402
from fmer.envs import KITCHEN_BENCHMARKS, KITCHEN_TASKS, MUJOCO_BENCHMARKS  # noqa: E402
from fmer.multigoal import GOALS  # noqa: E402

COLORS = dict(zip(VARIANTS, sns.color_palette("colorblind", len(VARIANTS)), strict=True))
# a budget's own variants (e.g. budget defaults' fmer-n8-s64-e64): colours none of COLORS has
OTHER_COLORS = sns.color_palette("dark", 10)
RETURN = "evaluation return (deterministic policy, mean over episodes)"
TASKS = "tasks completed per evaluation episode"
STEPS = "environment steps"
# an interval from two seeds is not worth drawing: fewer seeds are drawn one line each
BAND_MIN_N = 3
# the paper's training length (docs/FMER.md, "1,000,000 env steps"), the package's default
PAPER_STEPS = TrainConfig.total_steps


def metric_of(env: str) -> tuple[str, str]:
    return ("tasks_completed_mean", TASKS) if env in KITCHEN_BENCHMARKS else ("return_mean", RETURN)


def _empty(ax, what: str = "no complete runs yet") -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _envs(completeness: pd.DataFrame, order) -> list[str]:
    return sorted(completeness["env"].unique(), key=list(order).index)


def variants_of(completeness: pd.DataFrame, among=None) -> list[str]:
    """The variants the budget expects here, of ``among`` in its order if given, else the
    package's in their order, then the budget's own."""
    expected = list(dict.fromkeys(completeness["variant"]))
    if among is not None:
        return [v for v in among if v in expected]
    return [v for v in VARIANTS if v in expected] + [v for v in expected if v not in VARIANTS]


def colors_of(variants) -> dict:
    others = iter(OTHER_COLORS)
    return {v: COLORS[v] if v in COLORS else next(others) for v in variants}


def budget_line(summary: pd.DataFrame, budget: str) -> str:
    """"budget mini, 20,000 steps": the training length of the runs drawn."""
    steps = sorted(summary["total_steps"].dropna().unique()) if "total_steps" in summary else []
    return f"budget {budget}" + (", " + "/".join(f"{int(s):,}" for s in steps) + " steps"
                                 if steps else "")


def not_run(completeness: pd.DataFrame, variant: str, name: str | None = None) -> str:
    expected = int((completeness["variant"] == variant).sum())
    return f"{name or variant}: not run (0 of {expected} runs complete)"


def seeds_range(n: pd.Series) -> str:
    """The seed count of a variant over several tasks: "3", or "0–3" where tasks differ."""
    n = n.fillna(0).astype(int)
    return f"{n.min()}" if n.min() == n.max() else f"{n.min()}–{n.max()}"


def _lines(ax, summary: pd.DataFrame, completeness: pd.DataFrame, metric: str, variants,
           style: str = "-", label_suffix: str = "") -> None:
    """Per expected variant: the mean over seeds with its 95% band where BAND_MIN_N or more
    seeds are averaged, else each seed's own thin line; a variant with no complete run is in
    the legend as not run."""
    colors = colors_of(variants_of(completeness))
    if metric not in summary:  # no run here logs it (or no run is complete)
        summary = summary.assign(**{metric: np.nan})
    for variant in variants_of(completeness, variants):
        data = summary[summary["variant"] == variant].dropna(subset=[metric])
        n = data["seed"].nunique()
        name = f"{variant}{label_suffix}"
        if n == 0:
            ax.plot([], [], style, color=colors[variant], alpha=0.5,
                    label=not_run(completeness, variant, name))
        elif n >= BAND_MIN_N:
            c = stats.learning_curve(data, metric).dropna(subset=["point"])
            ax.plot(c["step"], c["point"], style, color=colors[variant], marker="o",
                    markersize=3, label=f"{name} (n={n}): mean, 95% CI")
            ax.fill_between(c["step"], c["low"], c["high"], color=colors[variant], alpha=0.2,
                            lw=0)
        else:
            for i, (_, run) in enumerate(data.sort_values("step").groupby("seed")):
                ax.plot(run["step"], run[metric], style, color=colors[variant], lw=0.9,
                        label=f"{name} (n={n}): each seed, too few for a CI" if i == 0
                        else None)
    if not any(len(line.get_xdata()) for line in ax.lines):  # no scale to show: no ticks
        ax.set_xticks([])
        ax.set_yticks([])


def _intervals(ax, table: pd.DataFrame, completeness: pd.DataFrame, variants,
               xlabel: str) -> None:
    """Horizontal point-and-interval plot, one row per expected variant (not run: a note)."""
    rows = variants_of(completeness, variants)
    colors = colors_of(variants_of(completeness))
    found = table.set_index("variant")
    labels = []
    for i, variant in enumerate(rows):
        if variant not in found.index:
            ax.text(0.02, i, "not run", transform=ax.get_yaxis_transform(), va="center",
                    color="0.4")
            labels.append(f"{variant} (n=0)")
            continue
        r = found.loc[variant]
        ax.errorbar(r["point"], i, xerr=[[r["point"] - r["low"]], [r["high"] - r["point"]]],
                    fmt="o", color=colors[variant], capsize=4)
        labels.append(f"{variant} (n={int(r['n'])})")
    ax.set_yticks(range(len(rows)), labels)
    if found.empty:  # no scale to show
        ax.set_xticks([])
    ax.set_ylim(-0.5, len(rows) - 0.5)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)


def curve(summary, completeness, budget, **_):
    env = completeness["env"].iloc[0]
    metric, label = metric_of(env)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    _lines(ax, summary, completeness, metric, MAIN)
    ax.legend(fontsize=8)
    # the metric's full name is longer than a 4-inch axis: wrap it rather than clip it
    ax.set(title=f"{env}: {budget_line(summary, budget)}", xlabel=STEPS,
           ylabel=textwrap.fill(label, 40))
    return fig


def _returns_by_variant(summary, completeness, budget, title):
    """Per benchmark, the final and the max return of each expected variant, with its CI."""
    envs = _envs(completeness, MUJOCO_BENCHMARKS)
    fig, axes = plt.subplots(len(envs), 2, figsize=(11, 2.8 * len(envs)), squeeze=False)
    for row, env in zip(axes, envs, strict=True):
        runs = summary[summary["env"] == env]
        expected = completeness[completeness["env"] == env]
        per = (stats.per_run(runs, "return_mean") if len(runs)
               else pd.DataFrame(columns=["variant", "final", "max"]))
        for ax, which in zip(row, ("final", "max"), strict=True):
            table = stats.interval_table(per, ["variant"], which)
            _intervals(ax, table, expected, None,
                       f"{which} evaluation return" + (" (max over evaluations)"
                                                       if which == "max" else ""))
            ax.set_ylabel("variant (n = seeds)")
            ax.set_title(f"{env}: {which} return", fontsize=10)
    fig.suptitle(f"{title}, {budget_line(summary, budget)}: mean and 95% CI over seeds")
    return fig


def ablation_returns(summary, completeness, budget, **_):
    return _returns_by_variant(summary, completeness, budget, "Ablations")


def ablation_weights(summary, completeness, budget, **_):
    return _returns_by_variant(summary, completeness, budget,
                               "Candidate weights: softmax (fmer), top-1, unnormalised")


def ablation_ess(summary, completeness, budget, **_):
    envs = _envs(completeness, MUJOCO_BENCHMARKS)
    fig, axes = plt.subplots(2, len(envs), figsize=(5.5 * len(envs), 7), squeeze=False)
    for col, env in enumerate(envs):
        runs = summary[summary["env"] == env]
        expected = completeness[completeness["env"] == env]
        for ax, metric, label in ((axes[0, col], "tau", "mirror-descent temperature τ"),
                                  (axes[1, col], "ess_frac", "ESS / N of candidate weights")):
            _lines(ax, runs, expected, metric, ("fmer", "fmer-no-ess"))
            ax.set(xlabel=STEPS, ylabel=label, title=env)
            ax.legend(fontsize=8)
        if runs.get("tau", pd.Series(dtype=float)).gt(0).any():
            axes[0, col].set_yscale("log")
    fig.suptitle(f"ESS ablation: FMER with and without the ESS floor, "
                 f"{budget_line(summary, budget)}")
    return fig


def ablation_tanh(summary, completeness, budget, **_):
    envs = _envs(completeness, MUJOCO_BENCHMARKS)
    fig, axes = plt.subplots(2, len(envs), figsize=(5.5 * len(envs), 7), squeeze=False)
    for col, env in enumerate(envs):
        runs = summary[summary["env"] == env]
        expected = completeness[completeness["env"] == env]
        top, bottom = axes[0, col], axes[1, col]
        variants = ("fmer", "fmer-no-tanh")
        _lines(top, runs, expected, "entropy_corrected", variants, "-", ": corrected")
        _lines(top, runs, expected, "entropy_latent", variants, "--", ": latent")
        top.set(xlabel=STEPS, ylabel="policy entropy estimate (nats)", title=env)
        top.legend(fontsize=7)
        _lines(bottom, runs, expected, "saturation", variants)
        bottom.set(xlabel=STEPS, ylabel=textwrap.fill(
            "action saturation: fraction of coordinates |a| > 0.99", 40), title=env)
        bottom.legend(fontsize=8)
    fig.suptitle(f"tanh ablation: FMER with and without the tanh correction, "
                 f"{budget_line(summary, budget)}")
    return fig


def kitchen(summary, completeness, budget, reported=None, **_):
    """Final-evaluation bars per variant and task set; a bar at zero keeps a marker and its
    value written, and the paper's success rates (1M steps) stand beside ours as marks."""
    envs = _envs(completeness, KITCHEN_BENCHMARKS)
    variants = variants_of(completeness, MAIN)
    colors = colors_of(variants_of(completeness))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    panels = (("tasks", "tasks completed per episode (final evaluation)"),
              ("pct", "success rate, % = tasks completed / N × 100 (the paper's)"),
              ("all", "episodes completing all N tasks (fraction, final evaluation)"))
    s = summary.copy()
    if len(s):
        s["tasks"] = s["tasks_completed_mean"]
        s["pct"] = success_pct(s)
        s["all"] = s["success_rate"]
    width = 0.8 / max(len(variants), 1)
    for ax, (col, label) in zip(axes, panels, strict=True):
        table = (stats.interval_table(stats.per_run(s, col), ["env", "variant"], "final")
                 if len(s) else pd.DataFrame(columns=["env", "variant", "point", "low",
                                                      "high", "n"]))
        for j, variant in enumerate(variants):
            t = table[table["variant"] == variant].set_index("env").reindex(envs)
            x = np.arange(len(envs)) + (j - (len(variants) - 1) / 2) * width
            ax.bar(x, t["point"].fillna(0), width, color=colors[variant], alpha=0.85,
                   edgecolor=colors[variant], linewidth=1.5,
                   label=f"{variant}, ours (value and seeds n written at each bar)")
            # a bar of height zero is invisible: its value is also a marker, and written
            ax.plot(x, t["point"], "o", color=colors[variant], markeredgecolor="k",
                    markersize=6, zorder=3)
            ax.errorbar(x, t["point"], yerr=[t["point"] - t["low"], t["high"] - t["point"]],
                        fmt="none", color="k", capsize=3)
            for xi, value, n in zip(x, t["point"], t["n"], strict=True):
                ax.annotate("not run" if np.isnan(value) else f"{value:.2g}\nn={int(n)}",
                            (xi, 0 if np.isnan(value) else value), xytext=(0, 6),
                            textcoords="offset points", ha="center", fontsize=7,
                            rotation=90 if np.isnan(value) else 0)
            if col == "pct" and reported is not None:
                paper = reported[(reported["metric"] == "success_rate_pct")
                                 & (reported["method"] == variant.upper())]
                values = paper.set_index("setting")["value"].reindex(
                    [f"N={len(KITCHEN_TASKS[e])}" for e in envs])
                ax.scatter(x, values, marker="D", s=40, facecolor="white",
                           edgecolor=colors[variant], linewidth=1.5, zorder=3,
                           label=f"{variant.upper()}, paper ({PAPER_STEPS:,} steps)")
        ax.set_xticks(range(len(envs)), [f"N = {len(KITCHEN_TASKS[e])}" for e in envs])
        ax.set_ylabel(textwrap.fill(label, 45), fontsize=8)
        # room below zero for a zero's marker, above the highest bar or mark for its label
        # and, above that, for the legend, so that it hides no bar and no paper mark
        top = max(ax.get_ylim()[1], 0.05)
        ax.set_ylim(-0.04 * top, 1.55 * top)
        ax.axhline(0, color="0.3", lw=0.8)
        ax.legend(fontsize=7, loc="upper right")
    steps = summary["total_steps"].dropna().unique() if "total_steps" in summary else []
    gap = (f"ours {int(max(steps)):,} steps per run, the paper's {PAPER_STEPS:,} "
           f"({PAPER_STEPS / max(steps):.0f}× more)" if len(steps) else "no complete run")
    fig.suptitle(f"FrankaKitchen-v1, budget {budget}: mean and 95% CI over seeds; {gap}")
    return fig


def multigoal(summary, completeness, budget, samples=None, **_):
    """One panel per (variant, seed): the plane with its goals, and at each sampled state the
    positions one step of each sampled action reaches. Seeds are never pooled, so the spread
    between seeds cannot pass for multimodality within one policy."""
    variants = variants_of(completeness, ("fmer", "sac"))
    colors = colors_of(variants_of(completeness))
    seeds = sorted(completeness["seed"].unique())
    if samples is None:
        samples = pd.DataFrame(columns=["variant", "seed", "state_x", "state_y", "action_x",
                                        "action_y"])
    fig, axes = plt.subplots(len(variants), len(seeds),
                             figsize=(3.3 * len(seeds), 3.5 * len(variants) + 0.8),
                             squeeze=False)
    for row, variant in zip(axes, variants, strict=True):
        for ax, seed in zip(row, seeds, strict=True):
            mine = samples[(samples["variant"] == variant) & (samples["seed"] == seed)]
            ax.scatter(GOALS[:, 0], GOALS[:, 1], marker="*", s=160, color="gold",
                       edgecolor="k", zorder=3)
            for (sx, sy), at in mine.groupby(["state_x", "state_y"]):
                for gx, gy in GOALS:
                    ax.plot([sx, gx], [sy, gy], ":", color="0.75", lw=0.7, zorder=1)
                ax.scatter(sx + at["action_x"], sy + at["action_y"], s=3, alpha=0.3,
                           color=colors[variant], zorder=2)
                ax.scatter([sx], [sy], marker="x", color="k", s=30, zorder=4)
            ax.set(xlim=(-6.5, 6.5), ylim=(-6.5, 6.5), aspect="equal",
                   xlabel="position x", ylabel="position y", title=f"{variant}, seed {seed}")
            if mine.empty:
                ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes,
                        color="0.4")
    handles = [Line2D([], [], marker="*", color="gold", markeredgecolor="k", ls="",
                      markersize=12, label="goal"),
               Line2D([], [], marker="x", color="k", ls="", label="state sampled at"),
               Line2D([], [], ls=":", color="0.6", label="direction to each goal")]
    handles += [Line2D([], [], marker="o", ls="", color=colors[v], alpha=0.6,
                       label=f"{v}: state + action, one per sample") for v in variants]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8)
    fig.suptitle(f"multigoal-2d, {budget_line(summary, budget)}: stochastic actions of each "
                 f"seed's final policy")
    return fig


def normalised_scores(summary: pd.DataFrame, random: pd.DataFrame, reported: pd.DataFrame):
    """Max evaluation return per run (the paper's statistic), normalised per task as
    (R − R_random) / (R_ref − R_random). R_ref: the paper's SAC at 1M steps where the paper
    reports it, else the best max return of any run of this budget on the task ("best seen");
    neither of our algorithms is 1 by construction. Returns the scores and {task: reference}."""
    per = stats.per_run(summary, "return_mean")
    rand = random.set_index("env")["return_mean"]
    paper = reported[(reported["method"] == "SAC") & (reported["metric"] == "max_avg_return")]
    paper = paper.set_index("benchmark")["value"]
    tasks = [e for e in MUJOCO_BENCHMARKS if e in set(per["env"]) and e in rand]
    refs, values = {}, {}
    for env in tasks:
        if env in paper:
            refs[env], values[env] = f"paper's SAC, {PAPER_STEPS:,} steps", paper[env]
        else:
            refs[env], values[env] = "best seen", per.loc[per["env"] == env, "max"].max()
    per = per[per["env"].isin(tasks)].copy()
    per["score"] = (per["max"] - per["env"].map(rand)) / (per["env"].map(values)
                                                          - per["env"].map(rand))
    return per, refs


def iqm(summary, completeness, budget, random_scores=None, reported=None, **_):
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    name = "(R − R_random) / (R_SAC,paper − R_random), R = max evaluation return"
    if summary.empty or random_scores is None or reported is None:
        for ax in (left, right):
            _empty(ax)
        fig.suptitle(f"normalised score {name}")
        return fig
    per, refs = normalised_scores(summary, random_scores, reported)
    on_paper = [e for e, r in refs.items() if r != "best seen"]
    lacking = [e for e, r in refs.items() if r == "best seen"]
    fig.suptitle(f"MuJoCo, {budget_line(summary, budget)}: normalised score {name}\n"
                 + (f"no paper reference for {', '.join(lacking)}: normalised by the best "
                    f"run seen there instead, and not in the IQM" if lacking
                    else "every task has the paper's reference"), fontsize=10)
    scored = per[per["env"].isin(on_paper)]
    if scored.empty:
        _empty(left, "no task with a paper reference and a complete run")
    else:
        rows = []
        for variant, group in scored.groupby("variant"):
            point, low, high = stats.stratified_ci(
                [g["score"].to_numpy() for _, g in group.groupby("env")], stats.iqm)
            rows.append({"variant": variant, "point": point, "low": low, "high": high,
                         "n": len(group)})
        _intervals(left, pd.DataFrame(rows), completeness, MAIN,
                   "IQM of the normalised score, 95% CI")
        left.axvline(1.0, color="0.6", lw=0.8)
        left.set_title(f"IQM over {len(on_paper)} task(s) with the paper's SAC as 1: "
                       f"{', '.join(on_paper)}; n = runs", fontsize=9)
    tasks = list(refs)
    colors = colors_of(variants_of(completeness))
    table = stats.interval_table(per, ["env", "variant"], "score")
    shown = variants_of(completeness, MAIN)
    for j, variant in enumerate(shown):
        t = table[table["variant"] == variant].set_index("env").reindex(tasks)
        y = np.arange(len(tasks)) + 0.2 * (j - (len(shown) - 1) / 2)
        right.errorbar(t["point"], y, xerr=[t["point"] - t["low"], t["high"] - t["point"]],
                       fmt="o", color=colors[variant], capsize=3,
                       label=f"{variant} (n={seeds_range(t['n'])})")
    right.set_yticks(range(len(tasks)), [f"{e}\n(1 = {refs[e]})" for e in tasks], fontsize=8)
    right.set_ylim(-0.5, len(tasks) - 0.5)
    right.invert_yaxis()
    right.axvline(1.0, color="0.6", lw=0.8)
    right.axvline(0.0, color="0.8", lw=0.8)
    right.set_xlabel("normalised score per task, mean and 95% CI over seeds (0 = random)")
    right.legend(fontsize=8)
    return fig


KINDS = {"curve": curve, "ablation_returns": ablation_returns, "ablation_ess": ablation_ess,
         "ablation_tanh": ablation_tanh, "ablation_weights": ablation_weights,
         "kitchen": kitchen, "multigoal": multigoal, "iqm": iqm}


def build(kind: str, cells, budget: str, out: str | Path, random_scores=None, reported=None,
          samples=()) -> list[Path]:
    """Figure ``kind`` from ``cells``, (summary CSV, completeness CSV) pairs of fmer aggregate."""
    summary, completeness = read_cells(cells)
    fig = KINDS[kind](
        summary, completeness, budget,
        random_scores=pd.read_csv(random_scores) if random_scores else None,
        reported=pd.read_csv(reported) if reported else None,
        samples=pd.concat([pd.read_csv(p) for p in samples]) if samples else None)
    return save(fig, completeness, budget, out)


def save(fig, completeness: pd.DataFrame, budget: str, out: str | Path) -> list[Path]:
    """STEM.png and STEM.pdf of ``fig``, its footer naming the budget's runs it lacks."""
    # wrapped here, to the figure's width (about 16 characters an inch at 7 pt), and given the
    # room its lines take: matplotlib's own wrap ran past the edge of wide figures
    note = textwrap.fill(coverage_note(completeness, budget), int(16 * fig.get_figwidth()))
    fig.text(0.01, 0.005, note, fontsize=7, ha="left", va="bottom",
             color="k" if (completeness["status"] == "complete").all() else "firebrick")
    lines = note.count("\n") + 1
    footer = 0.05 + 0.12 * lines  # inches
    for legend in fig.legends:  # a figure-wide legend sits just above the footer
        legend.set_bbox_to_anchor((0.5, (footer + 0.02) / fig.get_figheight()))
        legend.set_loc("lower center")
    below = footer + (0.45 if fig.legends else 0.0)
    fig.tight_layout(rect=(0, below / fig.get_figheight(), 1, 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out.with_name(out.name + ext) for ext in (".png", ".pdf")]
    fig.savefig(paths[0], dpi=150)
    # no creation date: regenerating from the same logs gives the same bytes
    fig.savefig(paths[1], metadata={"CreationDate": None})
    plt.close(fig)
    return paths


def main(args) -> int:
    for path in build(args.kind, args.cells, args.budget, args.out, args.random_scores,
                      args.reported, args.samples):
        print(path)
    return 0
