"""The paper's figures from fmer aggregate's tables: ``fmer figure KIND --budget B --out STEM
--cell SUMMARY COMPLETENESS ESTIMATES ...``.

Every number a figure draws is read from the estimates table of the cells it draws
(fmer.analysis.estimates: per cell and metric the mean over seeds, its 95% t-interval, n and
each seed's value); the completeness rows are the runs the budget expects, and multigoal also
reads the action samples of its runs. Every figure carries on its face how many of the expected
runs it shows and which are missing, which are reused from another budget, and what its
intervals are with their simulated coverage (fmer.analysis.coverage); a variant without a
complete run is listed as "not run", never left out, and a figure with nothing to compare says
so. Bands are drawn where at least BAND_MIN_N seeds are averaged; fewer seeds are drawn one by
one. Every axis names its metric. Written as STEM.png and STEM.pdf.
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

from fmer.analysis import coverage, estimates, stats  # noqa: E402
from fmer.analysis.aggregate import coverage_note, read_completeness, reused_note  # noqa: E402
from fmer.budgets import MAIN  # noqa: E402
from fmer.config import VARIANTS, TemperatureConfig, TrainConfig  # noqa: E402
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
MEAN_T = "mean, 95% t-interval"  # what a band or bar is; its coverage is in the footer
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


def budget_line(completeness: pd.DataFrame, budget: str) -> str:
    """"budget mini, 20,000 steps": the training length of the complete runs (a complete run's
    last evaluation is at its last step)."""
    done = completeness[completeness["status"] == "complete"]
    steps = sorted(done["last_step"].dropna().unique())
    return f"budget {budget}" + (", " + "/".join(f"{int(s):,}" for s in steps) + " steps"
                                 if steps else "")


def not_run(completeness: pd.DataFrame, variant: str, name: str | None = None) -> str:
    expected = int((completeness["variant"] == variant).sum())
    return f"{name or variant}: not run (0 of {expected} runs complete)"


def _interval_drawn(ax, n: int) -> None:
    """Note that ``ax``'s figure shows a t-interval over ``n`` seeds (its footer says what
    that covers)."""
    ax.figure.__dict__.setdefault("fmer_intervals", set()).add(int(n))


def _seeds_by_step(rows: pd.DataFrame) -> pd.DataFrame:
    """Curve rows of the estimates table -> step x seed values."""
    return pd.DataFrame({step: estimates.per_seed(r) for step, r in
                         rows.set_index("step").iterrows()}).T.sort_index()


def _lines(ax, table: pd.DataFrame, completeness: pd.DataFrame, metric: str, variants,
           style: str = "-", label_suffix: str = "", label: bool = True) -> None:
    """Per expected variant, from the curve rows of ``metric``: the mean over seeds with its
    t-interval band where BAND_MIN_N or more seeds are averaged, else each seed's own thin
    line; a variant with no complete run is in the legend as not run."""
    colors = colors_of(variants_of(completeness))
    for variant in variants_of(completeness, variants):
        rows = estimates.select(table, metric, variant=variant, curve=True)
        rows = rows[rows["n"] > 0].sort_values("step")
        n = int(rows["n"].max()) if len(rows) else 0
        name = f"{variant}{label_suffix}"
        if n == 0:
            done = completeness[(completeness["variant"] == variant)
                                & (completeness["status"] == "complete")]
            ax.plot([], [], style, color=colors[variant], alpha=0.5,
                    label=(not_run(completeness, variant, name) if done.empty
                           else f"{name}: {metric} not logged") if label else None)
        elif n >= BAND_MIN_N:
            ax.plot(rows["step"], rows["point"], style, color=colors[variant], marker="o",
                    markersize=3, label=f"{name} (n={n}): {MEAN_T}" if label else None)
            ax.fill_between(rows["step"], rows["low"], rows["high"], color=colors[variant],
                            alpha=0.2, lw=0)
            _interval_drawn(ax, n)
        else:
            seeds = _seeds_by_step(rows)
            for i, seed in enumerate(seeds.columns):
                ax.plot(seeds.index, seeds[seed], style, color=colors[variant], lw=0.9,
                        label=f"{name} (n={n}): each seed" if i == 0 and label else None)
    if not any(len(line.get_xdata()) for line in ax.lines):  # no scale to show: no ticks
        ax.set_xticks([])
        ax.set_yticks([])


def _legend_below(ax, **kwargs) -> None:
    """The axes' legend under its x label, where it covers no curve."""
    if ax.get_legend_handles_labels()[0] or kwargs.get("handles"):
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=7, frameon=False,
                  **kwargs)


def _intervals(ax, rows: pd.DataFrame, completeness: pd.DataFrame, variants,
               xlabel: str) -> None:
    """Horizontal point-and-interval plot of estimates ``rows`` (one metric, one env), one
    row per expected variant, each seed a dot beside it (not run: a note)."""
    names = variants_of(completeness, variants)
    colors = colors_of(variants_of(completeness))
    found = rows.set_index("variant")
    labels = []
    for i, variant in enumerate(names):
        if variant not in found.index:
            ax.text(0.02, i, "not run", transform=ax.get_yaxis_transform(), va="center",
                    color="0.4")
            labels.append(f"{variant} (n=0)")
            continue
        r = found.loc[variant]
        seeds = estimates.per_seed(r)
        ax.scatter(seeds, np.full(len(seeds), i + 0.22), s=12, color=colors[variant],
                   alpha=0.6, lw=0)
        if r["n"] >= 2:
            ax.errorbar(r["point"], i, xerr=[[r["point"] - r["low"]], [r["high"] - r["point"]]],
                        fmt="o", color=colors[variant], capsize=4)
            _interval_drawn(ax, r["n"])
        else:
            ax.plot(r["point"], i, "o", color=colors[variant])
        labels.append(f"{variant} (n={int(r['n'])})")
    ax.set_yticks(range(len(names)), labels)
    if found.empty:  # no scale to show
        ax.set_xticks([])
    ax.set_ylim(-0.5, len(names) - 0.5)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)


def curve(table, completeness, budget, **_):
    env = completeness["env"].iloc[0]
    metric, label = metric_of(env)
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    _lines(ax, table, completeness, metric, MAIN)
    _legend_below(ax)
    # the metric's full name is longer than a 4-inch axis: wrap it rather than clip it
    ax.set(title=f"{env}: {budget_line(completeness, budget)}", xlabel=STEPS,
           ylabel=textwrap.fill(label, 40))
    return fig


def _returns_by_variant(table, completeness, budget, title):
    """Per benchmark, the final and the max return of each expected variant: mean,
    t-interval and each seed."""
    envs = _envs(completeness, MUJOCO_BENCHMARKS)
    fig, axes = plt.subplots(len(envs), 2, figsize=(11, 2.8 * len(envs)), squeeze=False)
    for row, env in zip(axes, envs, strict=True):
        expected = completeness[completeness["env"] == env]
        for ax, which in zip(row, ("final", "max"), strict=True):
            _intervals(ax, estimates.select(table, f"{which}_return", env), expected, None,
                       f"{which} evaluation return" + (" (max over evaluations)"
                                                       if which == "max" else ""))
            ax.set_ylabel("variant (n = seeds)")
            ax.set_title(f"{env}: {which} return", fontsize=10)
    fig.suptitle(f"{title}, {budget_line(completeness, budget)}: {MEAN_T} over seeds, "
                 "dots: each seed")
    return fig


def ablation_returns(table, completeness, budget, **_):
    return _returns_by_variant(table, completeness, budget, "Ablations")


def ablation_weights(table, completeness, budget, **_):
    return _returns_by_variant(table, completeness, budget,
                               "Candidate weights: softmax (fmer), top-1, unnormalised")


def ablation_ess(table, completeness, budget, **_):
    envs = _envs(completeness, MUJOCO_BENCHMARKS)
    fig, axes = plt.subplots(2, len(envs), figsize=(5.5 * len(envs), 8), squeeze=False)
    for col, env in enumerate(envs):
        mine = table[table["env"] == env]
        expected = completeness[completeness["env"] == env]
        for ax, metric, label in ((axes[0, col], "tau", "mirror-descent temperature τ"),
                                  (axes[1, col], "ess_frac", "ESS / N of candidate weights")):
            _lines(ax, mine, expected, metric, ("fmer", "fmer-no-ess"))
            ax.set(xlabel=STEPS, ylabel=label, title=env)
            _legend_below(ax)
        if estimates.select(mine, "tau", curve=True)["point"].gt(0).any():
            axes[0, col].set_yscale("log")
        # ESS/N sits at the bisection's target: a fixed scale, not one zoomed onto float noise
        axes[1, col].set_ylim(0, 1.05)
    fig.suptitle(f"ESS ablation: τ set by bisection so that ESS/N = "
                 f"{TemperatureConfig.ess_target:g} (fmer) or fixed (fmer-no-ess), "
                 f"{budget_line(completeness, budget)}")
    return fig


def ablation_tanh(table, completeness, budget, **_):
    envs = _envs(completeness, MUJOCO_BENCHMARKS)
    fig, axes = plt.subplots(2, len(envs), figsize=(5.5 * len(envs), 8.5), squeeze=False)
    variants = ("fmer", "fmer-no-tanh")
    styles = [Line2D([], [], color="0.3", ls="-", label="solid: with the tanh correction"),
              Line2D([], [], color="0.3", ls="--", label="dashed: latent, without it")]
    for col, env in enumerate(envs):
        mine = table[table["env"] == env]
        expected = completeness[completeness["env"] == env]
        top, bottom = axes[0, col], axes[1, col]
        _lines(top, mine, expected, "entropy_corrected", variants, "-")
        _lines(top, mine, expected, "entropy_latent", variants, "--", label=False)
        top.set(xlabel=STEPS, ylabel="policy entropy estimate (nats)", title=env)
        handles, labels = top.get_legend_handles_labels()
        _legend_below(top, handles=[*handles, *styles], ncol=2)
        _lines(bottom, mine, expected, "saturation", variants)
        bottom.set(xlabel=STEPS, ylabel=textwrap.fill(
            "action saturation: fraction of coordinates |a| > 0.99", 40), title=env)
        _legend_below(bottom)
    fig.suptitle(f"tanh ablation: FMER with and without the tanh correction, "
                 f"{budget_line(completeness, budget)}")
    return fig


def kitchen(table, completeness, budget, reported=None, **_):
    """Final-evaluation bars per variant and task set, each seed a dot; a bar at zero keeps a
    marker and its value written, and the paper's success rates (1M steps) stand beside ours
    as marks. Each axis spans its metric's whole range."""
    envs = _envs(completeness, KITCHEN_BENCHMARKS)
    variants = variants_of(completeness, MAIN)
    colors = colors_of(variants_of(completeness))
    most = max(len(KITCHEN_TASKS[e]) for e in envs)
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2))
    panels = (("final_tasks_completed", "tasks completed per episode (final evaluation)", most),
              ("final_success_pct", "success rate, % = tasks completed / N × 100 (the paper's)",
               100),
              ("final_all_tasks", "episodes completing all N tasks (fraction, final evaluation)",
               1))
    width = 0.8 / max(len(variants), 1)
    for ax, (metric, label, top) in zip(axes, panels, strict=True):
        rows = estimates.select(table, metric)
        for j, variant in enumerate(variants):
            t = rows[rows["variant"] == variant].set_index("env").reindex(envs)
            x = np.arange(len(envs)) + (j - (len(variants) - 1) / 2) * width
            ax.bar(x, t["point"].fillna(0), width, color=colors[variant], alpha=0.6,
                   edgecolor=colors[variant], linewidth=1.5,
                   label=f"{variant}, ours: {MEAN_T} (value, n written), dots: each seed")
            # a bar of height zero is invisible: its value is also a marker, and written
            ax.plot(x, t["point"], "o", color=colors[variant], markeredgecolor="k",
                    markersize=6, zorder=3)
            ax.errorbar(x, t["point"], yerr=[t["point"] - t["low"], t["high"] - t["point"]],
                        fmt="none", color="k", capsize=3)
            for xi, (_, r) in zip(x, t.iterrows(), strict=True):
                if np.isnan(r["point"]):
                    ax.annotate("not run", (xi, 0), xytext=(0, 6), textcoords="offset points",
                                ha="center", fontsize=7, rotation=90)
                    continue
                seeds = estimates.per_seed(r)
                ax.scatter(np.full(len(seeds), xi + width / 4), seeds, s=12, color="k",
                           alpha=0.6, zorder=4, lw=0)
                ax.annotate(f"{r['point']:.2g}\nn={int(r['n'])}", (xi, r["point"]),
                            xytext=(0, 6), textcoords="offset points", ha="center", fontsize=7)
                if r["n"] >= 2:
                    _interval_drawn(ax, r["n"])
            if metric == "final_success_pct" and reported is not None:
                paper = reported[(reported["metric"] == "success_rate_pct")
                                 & (reported["method"] == variant.upper())]
                values = paper.set_index("setting")["value"].reindex(
                    [f"N={len(KITCHEN_TASKS[e])}" for e in envs])
                if values.notna().any():
                    ax.scatter(x, values, marker="D", s=40, facecolor="white",
                               edgecolor=colors[variant], linewidth=1.5, zorder=3,
                               label=f"{variant.upper()}, paper ({PAPER_STEPS:,} steps)")
        ax.set_xticks(range(len(envs)), [f"N = {len(KITCHEN_TASKS[e])}" for e in envs])
        ax.set_ylabel(textwrap.fill(label, 45), fontsize=8)
        # the metric's whole range, and room above its top for the written values
        ax.set_ylim(-0.03 * top, 1.12 * top)
        ax.axhline(0, color="0.3", lw=0.8)
        ax.axhline(top, color="0.8", lw=0.8, ls=":")
    # one legend for the three panels: the success panel's, which also has the paper's marks
    fig.legend(handles=axes[1].get_legend_handles_labels()[0], fontsize=8,
               ncol=len(variants))
    done = completeness[completeness["status"] == "complete"]
    steps = done["last_step"].dropna()
    gap = (f"ours {int(steps.max()):,} steps per run, the paper's {PAPER_STEPS:,} "
           f"({PAPER_STEPS / steps.max():.0f}× more)" if len(steps) else "no complete run")
    absent = [f"N = {len(KITCHEN_TASKS[e])}" for e in KITCHEN_BENCHMARKS if e not in envs]
    fig.suptitle(f"FrankaKitchen-v1, budget {budget}: {gap}"
                 + (f"\n{' and '.join(absent)}: not in budget {budget}'s grid "
                    "(config/config.yaml)" if absent else ""))
    return fig


def multigoal(table, completeness, budget, samples=None, **_):
    """One panel per (variant, seed): the plane with its goals, and at each sampled state the
    positions one step of each sampled action reaches. Seeds are never pooled, so the spread
    between seeds cannot pass for multimodality within one policy."""
    variants = variants_of(completeness, MAIN)
    colors = colors_of(variants_of(completeness))
    seeds = sorted(completeness["seed"].unique())
    if samples is None:
        samples = pd.DataFrame(columns=["variant", "seed", "state_x", "state_y", "action_x",
                                        "action_y"])
    fig, axes = plt.subplots(len(variants), len(seeds),
                             figsize=(max(3.3 * len(seeds), 9), 3.5 * len(variants) + 1.2),
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
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8)
    fig.suptitle(f"multigoal-2d, {budget_line(completeness, budget)}: stochastic actions of "
                 f"each seed's final policy")
    return fig


def normalised_scores(table: pd.DataFrame, random: pd.DataFrame, reported: pd.DataFrame):
    """The max evaluation return (the paper's statistic) of the estimates table, normalised per
    task as (R − R_random) / (R_ref − R_random). R_ref: the paper's SAC at 1M steps where the
    paper reports it, else the best max return of any run of this budget on the task ("best
    seen"); neither of our algorithms is 1 by construction. Returns (each run's score: env,
    variant, seed, max, score), (each cell's mean and t-interval, normalised: env, variant,
    point, low, high, n) and {task: reference}. The map is affine, so the normalised interval
    is the interval of the normalised scores."""
    rows = estimates.select(table, "max_return")
    rand = random.set_index("env")["return_mean"]
    paper = reported[(reported["method"] == "SAC") & (reported["metric"] == "max_avg_return")]
    paper = paper.set_index("benchmark")["value"]
    tasks = [e for e in MUJOCO_BENCHMARKS if e in set(rows["env"]) and e in rand]
    runs = pd.DataFrame([{"env": r["env"], "variant": r["variant"], "seed": seed, "max": value}
                         for _, r in rows.iterrows()
                         for seed, value in estimates.per_seed(r).items()],
                        columns=["env", "variant", "seed", "max"])
    refs, values = {}, {}
    for env in tasks:
        if env in paper:
            refs[env], values[env] = f"paper's SAC, {PAPER_STEPS:,} steps", paper[env]
        else:
            refs[env], values[env] = "best seen", runs.loc[runs["env"] == env, "max"].max()
    runs = runs[runs["env"].isin(tasks)].copy()
    cells = rows[rows["env"].isin(tasks)][["env", "variant", "point", "low", "high",
                                           "n"]].copy()
    for frame, columns in ((runs, ["max"]), (cells, ["point", "low", "high"])):
        zero, one = frame["env"].map(rand), frame["env"].map(values)
        for column in columns:
            frame["score" if column == "max" else column] = (frame[column] - zero) / (one - zero)
    # (a reference below the random policy's return reverses the scale: low stays low)
    cells["low"], cells["high"] = (np.fmin(cells["low"], cells["high"]),
                                   np.fmax(cells["low"], cells["high"]))
    return runs, cells, refs


def common_ground(runs: pd.DataFrame, variants, tasks) -> pd.DataFrame:
    """The (env, seed) pairs that every one of ``variants`` has a run of, among ``tasks``: what
    a pooled number compares them on."""
    have = [set(zip(*runs.loc[(runs["variant"] == v) & runs["env"].isin(tasks),
                              ["env", "seed"]].T.values, strict=True)) for v in variants]
    shared = set.intersection(*have) if have else set()
    return pd.DataFrame(sorted(shared), columns=["env", "seed"])


def ground_text(ground: pd.DataFrame) -> str:
    """"HalfCheetah-v5 seeds 0,1,2": the tasks and seeds of a common ground."""
    return "; ".join(f"{env} seed{'s' if len(g) > 1 else ''} {','.join(map(str, g['seed']))}"
                     for env, g in ground.groupby("env", sort=False))


def iqm(table, completeness, budget, random_scores=None, reported=None, **_):
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    name = "(R − R_random) / (R_SAC,paper − R_random), R = max evaluation return"
    if table.empty or random_scores is None or reported is None:
        for ax in (left, right):
            _empty(ax)
        fig.suptitle(f"normalised score {name}")
        return fig
    runs, cells, refs = normalised_scores(table, random_scores, reported)
    on_paper = [e for e, r in refs.items() if r != "best seen"]
    lacking = [e for e, r in refs.items() if r == "best seen"]
    fig.suptitle(f"MuJoCo, {budget_line(completeness, budget)}: normalised score {name}\n"
                 + (f"no paper reference for {', '.join(lacking)}: normalised by the best "
                    f"run seen there instead, and not in the IQM" if lacking
                    else "every task has the paper's reference"), fontsize=10)
    shown = variants_of(completeness, MAIN)
    colors = colors_of(variants_of(completeness))
    # the IQM compares only the variants that have runs, on the tasks and seeds all of them have
    compared = [v for v in shown if v in set(runs["variant"])]
    ground = common_ground(runs, compared, on_paper)
    pooled = runs.merge(ground, on=["env", "seed"])
    if ground.empty:
        _empty(left, "no task with a paper reference and a run of every variant that has runs"
               if len(compared) > 1 else "no task with a paper reference and a complete run")
    else:
        for i, variant in enumerate(shown):
            scores = pooled.loc[pooled["variant"] == variant, "score"].to_numpy()
            if not len(scores):
                left.text(0.02, i, "not run", transform=left.get_yaxis_transform(),
                          va="center", color="0.4")
                continue
            left.scatter(scores, np.full(len(scores), i + 0.2), s=14, color=colors[variant],
                         alpha=0.6, lw=0)
            left.plot(stats.iqm(scores), i, "D", color=colors[variant], markersize=8)
        left.set_yticks(range(len(shown)), [f"{v} (n={len(ground)} runs)" if v in compared
                                            else f"{v} (n=0)" for v in shown])
        left.set_ylim(-0.5, len(shown) - 0.5)
        left.invert_yaxis()
        left.axvline(1.0, color="0.6", lw=0.8)
        left.set_xlabel("normalised score: IQM (diamond; no interval: each run a dot)")
        left.set_title(textwrap.fill(f"IQM over the same tasks and seeds for every variant "
                                     f"with runs: {ground_text(ground)}", 70), fontsize=9)
    tasks = list(refs)
    for j, variant in enumerate(shown):
        t = cells[cells["variant"] == variant].set_index("env").reindex(tasks)
        y = np.arange(len(tasks)) + 0.25 * (j - (len(shown) - 1) / 2)
        right.errorbar(t["point"], y, xerr=[t["point"] - t["low"], t["high"] - t["point"]],
                       fmt="o", color=colors[variant], capsize=3,
                       label=f"{variant} (n={seeds_range(t['n'])})")
        mine = runs[runs["variant"] == variant]
        right.scatter(mine["score"], mine["env"].map(tasks.index) + 0.25 * (
            j - (len(shown) - 1) / 2) + 0.08, s=10, color=colors[variant], alpha=0.5, lw=0)
        for n in t["n"].dropna():
            if n >= 2:
                _interval_drawn(right, n)
    right.set_yticks(range(len(tasks)), [f"{e}\n(1 = {refs[e]})" for e in tasks], fontsize=8)
    right.set_ylim(-0.5, len(tasks) - 0.5)
    right.invert_yaxis()
    right.axvline(1.0, color="0.6", lw=0.8)
    right.axvline(0.0, color="0.8", lw=0.8)
    right.set_xlabel(f"normalised score per task (0 = random): {MEAN_T},\ndots: each seed")
    _legend_below(right, ncol=len(shown))
    return fig


def seeds_range(n: pd.Series) -> str:
    """The seed count of a variant over several tasks: "3", or "0–3" where tasks differ."""
    n = n.fillna(0).astype(int)
    return f"{n.min()}" if n.min() == n.max() else f"{n.min()}–{n.max()}"


KINDS = {"curve": curve, "ablation_returns": ablation_returns, "ablation_ess": ablation_ess,
         "ablation_tanh": ablation_tanh, "ablation_weights": ablation_weights,
         "kitchen": kitchen, "multigoal": multigoal, "iqm": iqm}


def build(kind: str, cells, budget: str, out: str | Path, random_scores=None, reported=None,
          samples=()) -> list[Path]:
    """Figure ``kind`` from ``cells``, (summary, completeness, estimates) CSV triples of fmer
    aggregate: the completeness and the estimates only (and, for multigoal, ``samples``)."""
    completeness = read_completeness([c[1] for c in cells])
    fig = KINDS[kind](
        estimates.read([c[2] for c in cells]), completeness, budget,
        random_scores=pd.read_csv(random_scores) if random_scores else None,
        reported=pd.read_csv(reported) if reported else None,
        samples=pd.concat([pd.read_csv(p) for p in samples]) if samples else None)
    return save(fig, completeness, budget, out)


def interval_note(ns) -> str:
    """What the figure's intervals are, with their simulated coverage at each n drawn."""
    ns = sorted(n for n in ns if n >= 2)
    return "; ".join(coverage.label(n) for n in ns)


def nothing_to_compare(completeness: pd.DataFrame) -> str:
    """The banner of a figure with no complete run, or with one variant's runs only where it
    expects several; "" otherwise."""
    done = completeness[completeness["status"] == "complete"]
    expected = list(dict.fromkeys(completeness["variant"]))
    if done.empty:
        return f"NO COMPLETE RUN: none of the {len(completeness)} runs this figure draws exists yet"
    have = list(dict.fromkeys(done["variant"]))
    if len(expected) > 1 and len(have) == 1:
        return (f"NOTHING COMPARED: only {have[0]} has complete runs; "
                f"{', '.join(v for v in expected if v not in have)}: none")
    return ""


def save(fig, completeness: pd.DataFrame, budget: str, out: str | Path) -> list[Path]:
    """STEM.png and STEM.pdf of ``fig``. Its footer: a banner if there is nothing to compare,
    the budget's runs it lacks, the runs it reuses, and what its intervals cover."""
    # wrapped here, to the figure's width (about 16 characters an inch at 7 pt), and given the
    # room its lines take: matplotlib's own wrap ran past the edge of wide figures
    width = int(16 * fig.get_figwidth())
    banner = nothing_to_compare(completeness)
    lines = [(textwrap.fill(banner, int(width * 0.75)), "firebrick", 9, "bold")] if banner else []
    lines.append((textwrap.fill(coverage_note(completeness, budget), width),
                  "k" if (completeness["status"] == "complete").all() else "firebrick", 7,
                  "normal"))
    for text in (reused_note(completeness),
                 interval_note(fig.__dict__.get("fmer_intervals", ()))):
        if text:
            lines.append((textwrap.fill(text, width), "k", 7, "normal"))
    footer = 0.05  # inches
    for text, color, size, weight in reversed(lines):
        fig.text(0.01, footer / fig.get_figheight(), text, fontsize=size, ha="left",
                 va="bottom", color=color, fontweight=weight)
        footer += (text.count("\n") + 1) * size / 72 * 1.25
    if banner and (completeness["status"] != "complete").all():
        fig.text(0.5, 0.55, "no complete run yet", ha="center", va="center", fontsize=28,
                 color="firebrick", alpha=0.35, rotation=15)
    for legend in fig.legends:  # a figure-wide legend sits just above the footer
        legend.set_bbox_to_anchor((0.5, (footer + 0.02) / fig.get_figheight()))
        legend.set_loc("lower center")
    # room for the figure-wide legends: 0.2 inch a row, and a margin
    below = footer + sum(0.2 * -(-len(legend.get_texts()) // legend._ncols) + 0.1
                         for legend in fig.legends)
    fig.tight_layout(rect=(0, below / fig.get_figheight(), 1, 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out.with_name(out.name + ext) for ext in (".png", ".pdf")]
    fig.savefig(paths[0], dpi=150)
    # no creation date: regenerating from the same logs gives the same bytes
    fig.savefig(paths[1], metadata={"CreationDate": None})
    plt.close(fig)
    return paths
