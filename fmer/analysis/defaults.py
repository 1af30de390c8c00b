"""The defaults study (paper/defaults.md): FMER's [ours] cost knobs, chosen by a rule written
and committed before any run of the study was read.

``RULE`` is that text, owned here: the page starts with it verbatim and ``apply_rule`` does
exactly what it says (a test pins the wording to the committed text). ``fmer defaults-study``
reads the budget's estimates table and completeness (``fmer aggregate``) and the update cost
per setting (``fmer bench --budget defaults``), then writes the page, a tidy CSV (one row per
setting x task) and a figure. While any run of the study is neither complete nor failed it
says so, names those runs, and chooses nothing.

The rule names a percentile bootstrap, and is applied with one, on each seed's value as the
estimates table gives it; every other interval on the page and the figure is the estimates
table's t-interval. With 3 seeds that bootstrap is the range of the seeds (its coverage as a
95% interval is about 75%: paper/intervals.md), which the page says beside it.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fmer import markdown
from fmer.analysis import coverage, estimates, stats
from fmer.analysis.aggregate import counts, others_text, reused_note

RULE = """\
# FMER's cost defaults: the study

## The rule (written and committed before any run of the study was read)

The paper does not state how many candidate actions FMER draws per state, for which states of
a batch, or on how many states its entropy term is estimated (`actor.candidates`,
`actor.candidate_states`, `actor.entropy_batch`; [ours] in `docs/FMER.md`). We choose them by
this rule, applied to the runs of the `defaults` budget (`config/config.yaml`):

1. Reference: `fmer-n16-sall-eall`, the package defaults before the study (16 candidates for
   each of the 256 states of a batch, the entropy term on all 256).
2. Per run, the final return is the evaluation return (mean of its 5 deterministic episodes)
   at the last step, 20,000.
3. Per task (Hopper-v5, HalfCheetah-v5), the reference's lower bound is the lower end of the
   95% percentile-bootstrap interval (10,000 resamples) of its mean final return over seeds
   0, 1, 2.
4. A cheaper setting passes if, on both tasks, its mean final return over seeds 0, 1, 2 is at
   least the reference's lower bound there, and none of its runs failed.
5. The new defaults are the passing setting with the lowest FMER update time measured by
   `fmer bench` (one thread, HalfCheetah-sized, all settings in the same run). If no setting
   passes, today's defaults stay.

With three seeds the interval is wide, so the rule protects against a clear loss only; the
table below shows how far each setting is from the reference, not just whether it passes.
"""

BUDGET = "defaults"
REFERENCE = "fmer-n16-sall-eall"
TASKS = ("Hopper-v5", "HalfCheetah-v5")
SEEDS = (0, 1, 2)
FINAL_STEP = 20_000
REPS = 10_000  # the rule's resamples; fmer.analysis.stats defaults to 5,000
COST_ENV, COST_THREADS = "HalfCheetah-v5", 1  # the rule's "one thread, HalfCheetah-sized"
NAMES = ("Setting names: nN = `actor.candidates`, sS = `actor.candidate_states`, "
         "eE = `actor.entropy_batch` (`all`: the whole batch of 256), kK = "
         "`actor.update_every` (actor, α and τ updated every K-th critic update; no k: every "
         "one); the values are in `config/config.yaml`, budget `defaults`.")
CSV_COLUMNS = ("setting", "task", "n", "final_mean", "final_low", "final_high", "max_mean",
               "max_low", "max_high", "reference_lower_bound", "at_least_bound",
               "failed_runs", "verdict", "fmer_update_ms", "sac_update_ms",
               "fmer_sac_update_ratio", "run_minutes_mean")
TRACES = (("return_mean", "evaluation return (mean of the evaluation episodes)"),
          ("tau", "mirror-descent temperature τ"),
          ("ess_frac", "ESS / N of candidate weights"),
          ("entropy", "policy entropy estimate −mean log π (nats)"))


@dataclass
class Decision:
    """What the rule says. ``complete`` False: ``missing`` names the runs neither complete
    nor failed, and nothing else is decided."""

    complete: bool
    missing: list[tuple[str, str, int]] = field(default_factory=list)
    failed: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)
    bounds: dict[str, float] = field(default_factory=dict)  # task -> reference lower bound
    means: dict[tuple[str, str], float] = field(default_factory=dict)  # (setting, task)
    verdicts: dict[str, bool] = field(default_factory=dict)  # cheaper setting -> passes
    choice: str | None = None
    why: str = ""


def apply_rule(runs: pd.DataFrame, update_ms: dict[str, float], settings, reference=REFERENCE,
               tasks=TASKS, seeds=SEEDS, reps=REPS) -> Decision:
    """RULE on ``runs`` (columns variant, env, seed, status; final: the final return of a
    complete run) and ``update_ms`` (setting -> FMER update ms, fmer bench)."""
    status = {(r.variant, r.env, r.seed): r.status for r in runs.itertuples()}
    final = {(r.variant, r.env, r.seed): r.final for r in runs.itertuples()
             if r.status == "complete"}
    expected = [(s, t, seed) for s in settings for t in tasks for seed in seeds]
    missing = [k for k in expected if status.get(k) not in ("complete", "failed")]
    if missing:
        return Decision(False, missing, why="the study is incomplete")
    failed = {s: [k for k in expected if k[0] == s and status[k] == "failed"] for s in settings}
    if failed[reference]:
        return Decision(True, failed=failed, why="a reference run failed, so the reference "
                        "has no lower bound over all its seeds: the rule cannot be applied")

    def values(s, t):
        return np.array([final[(s, t, seed)] for seed in seeds if (s, t, seed) in final])

    bounds = {t: stats.stratified_ci([values(reference, t)], stats.mean, reps=reps)[1]
              for t in tasks}
    means = {(s, t): float(values(s, t).mean()) if values(s, t).size else float("nan")
             for s in settings for t in tasks}
    verdicts = {s: not failed[s] and all(means[(s, t)] >= bounds[t] for t in tasks)
                for s in settings if s != reference}
    decision = Decision(True, failed=failed, bounds=bounds, means=means, verdicts=verdicts)
    passing = [s for s in verdicts if verdicts[s]]
    unmeasured = [s for s in passing if not np.isfinite(update_ms.get(s, np.nan))]
    if not passing:
        decision.choice, decision.why = reference, "no cheaper setting passes: today's " \
                                                   "defaults stay"
    elif unmeasured:
        decision.why = (f"the FMER update time of {', '.join(unmeasured)} was not measured "
                        "(fmer bench --budget defaults): no choice")
    else:
        decision.choice = min(passing, key=update_ms.__getitem__)
        decision.why = "the passing setting with the lowest FMER update time"
    return decision


# --- from the logs and the bench to the rule's inputs ----------------------------------------
def study_runs(table: pd.DataFrame, completeness: pd.DataFrame,
               final_step: int = FINAL_STEP) -> pd.DataFrame:
    """One row per expected run: status (a complete run whose last evaluation is not at
    ``final_step`` counts as incomplete), last_step, and of complete runs the final and max
    evaluation return and the whole run's wall-clock minutes (eval.csv's last wall_time_s),
    each seed's value in the estimates ``table``."""
    out = completeness[["env", "variant", "seed", "status", "last_step"]].copy()
    out[["final", "max", "minutes"]] = np.nan
    out.loc[(out["status"] == "complete") & (out["last_step"] != final_step),
            "status"] = "incomplete"
    for column, metric, scale in (("final", "final_return", 1), ("max", "max_return", 1),
                                  ("minutes", "wall_time_s", 60)):
        for i, row in out[out["status"] == "complete"].iterrows():
            values = estimates.seed_values(table, metric, row["env"], row["variant"])
            if row["seed"] in values.index:
                out.loc[i, column] = values[row["seed"]] / scale
    return out


def update_costs(bench: pd.DataFrame) -> pd.DataFrame:
    """fmer bench --budget rows -> per setting: SAC and FMER update ms and their ratio."""
    rows = bench[(bench["env"] == COST_ENV) & (bench["threads"] == COST_THREADS)
                 & bench["item"].isin(["sac_update", "fmer_update"])]
    wide = rows.pivot_table(index="setting", columns="item", values="ms", aggfunc="first")
    wide = wide.reindex(columns=["sac_update", "fmer_update"])
    wide.columns = ["sac_update_ms", "fmer_update_ms"]
    wide["fmer_sac_update_ratio"] = wide["fmer_update_ms"] / wide["sac_update_ms"]
    wide.attrs["clock"] = ", ".join(sorted(set(rows["clock"].astype(str)))) or "?"
    return wide


def table(estimated: pd.DataFrame, runs: pd.DataFrame, costs: pd.DataFrame,
          decision: Decision, settings, tasks=TASKS) -> pd.DataFrame:
    """The tidy table: one row per setting x task (CSV_COLUMNS); the means and intervals are
    the ``estimated`` table's (95% t-interval)."""
    done = runs[runs["status"] == "complete"]
    rows = []
    for s in settings:
        for t in tasks:
            mine = done[(done["variant"] == s) & (done["env"] == t)]
            row = {"setting": s, "task": t, "n": len(mine)}
            for which in ("final", "max"):
                hit = estimates.select(estimated, f"{which}_return", t, s)
                point, low, high = (hit[["point", "low", "high"]].iloc[0] if len(hit)
                                    else (np.nan, np.nan, np.nan))
                row |= {f"{which}_mean": point, f"{which}_low": low, f"{which}_high": high}
            bound = decision.bounds.get(t, np.nan)
            row["reference_lower_bound"] = bound
            row["at_least_bound"] = (row["final_mean"] >= bound) if np.isfinite(bound) else None
            row["failed_runs"] = len(decision.failed.get(s, [])) if decision.complete else None
            row["verdict"] = ("reference" if s == REFERENCE else
                              {True: "pass", False: "fail"}.get(decision.verdicts.get(s), ""))
            row |= {c: costs[c].get(s, np.nan) for c in ("fmer_update_ms", "sac_update_ms",
                                                           "fmer_sac_update_ratio")}
            row["run_minutes_mean"] = mine["minutes"].mean() if len(mine) else np.nan
            rows.append(row)
    return pd.DataFrame(rows, columns=list(CSV_COLUMNS))


# --- the page -------------------------------------------------------------------------------
def _num(x, fmt=".0f") -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:{fmt}}"


def _ci(r, which) -> str:
    if not r["n"]:
        return "–"
    if r["n"] < 2:  # one seed: no interval
        return f"{_num(r[f'{which}_mean'])} (one seed: no interval)"
    return (f"{_num(r[f'{which}_mean'])} [{_num(r[f'{which}_low'])}, "
            f"{_num(r[f'{which}_high'])}]")


def _run(key) -> str:
    setting, task, seed = key
    return f"{task} `{setting}` seed {seed}"


def _markdown_table(tidy: pd.DataFrame) -> str:
    shown = pd.DataFrame({
        "setting": "`" + tidy["setting"] + "`", "task": tidy["task"], "n": tidy["n"],
        "final return, mean [95% t-interval]": [_ci(r, "final") for _, r in tidy.iterrows()],
        "max return, mean [95% t-interval]": [_ci(r, "max") for _, r in tidy.iterrows()],
        "≥ reference bound": tidy["at_least_bound"].map({True: "yes", False: "no"}).fillna("–"),
        "verdict": tidy["verdict"].replace("", "–"),
        "FMER update ms": tidy["fmer_update_ms"].map(lambda x: _num(x, ".1f")),
        "FMER/SAC": tidy["fmer_sac_update_ratio"].map(lambda x: _num(x, ".2f")),
        "whole run, min": tidy["run_minutes_mean"].map(lambda x: _num(x, ".0f")),
    })
    return markdown.table(shown.columns, shown.itertuples(index=False))


def _application(decision: Decision, runs: pd.DataFrame, costs: pd.DataFrame, settings,
                 tasks, seeds) -> list[str]:
    if not decision.complete:
        lines = [f"**The study is incomplete: no setting is chosen.** The rule is applied once "
                 f"each of the {len(settings) * len(tasks) * len(seeds)} runs is complete (or "
                 f"failed); {len(decision.missing)} are not:", ""]
        last = runs.set_index(["variant", "env", "seed"])
        for key in decision.missing:
            r = last.loc[key] if key in last.index else None
            status = "missing" if r is None else r["status"]
            at = (f", last evaluation at step {int(r['last_step']):,}"
                  if r is not None and np.isfinite(r["last_step"]) else "")
            lines.append(f"- {_run(key)}: {status}{at}")
        return lines
    done = runs[runs["status"] == "complete"].set_index(["variant", "env", "seed"])["final"]
    lines = [f"1. Reference `{REFERENCE}`, final returns at step {FINAL_STEP:,} per seed:"]
    for t in tasks:
        if decision.failed[REFERENCE]:
            break
        vals = ", ".join(f"seed {s}: {done[(REFERENCE, t, s)]:.1f}" for s in seeds)
        lowest = min(done[(REFERENCE, t, s)] for s in seeds)
        what = (" = the lowest seed's return: with 3 seeds this bootstrap interval is the "
                "range of the seeds, whose coverage is about 75%, not 95% (paper/intervals.md)"
                if np.isclose(decision.bounds[t], lowest) else "")
        lines.append(f"   - {t}: {vals}; mean {decision.means[(REFERENCE, t)]:.1f}; lower end "
                     f"of the 95% percentile-bootstrap interval ({REPS:,} resamples): "
                     f"**{decision.bounds[t]:.1f}**{what}")
    if decision.failed[REFERENCE]:
        lines.append(f"   - failed: {'; '.join(map(_run, decision.failed[REFERENCE]))}")
        return [*lines, "", f"**No choice**: {decision.why}."]
    lines.append("2. Each cheaper setting: its mean final return over the seeds against that "
                 "bound, on both tasks, and its failed runs:")
    for s, ok in decision.verdicts.items():
        parts = [f"{t} {decision.means[(s, t)]:.1f} "
                 f"{'≥' if decision.means[(s, t)] >= decision.bounds[t] else '<'} "
                 f"{decision.bounds[t]:.1f}" for t in tasks]
        failed = "; ".join(map(_run, decision.failed[s])) or "none"
        lines.append(f"   - `{s}`: {'; '.join(parts)}; failed runs: {failed}: "
                     f"**{'pass' if ok else 'fail'}**")
    lines.append(f"3. FMER update time (`fmer bench`, {COST_ENV}, {COST_THREADS} thread, "
                 f"{costs.attrs.get('clock', '?')} clock, median ms) of the passing settings:")
    passing = [s for s, ok in decision.verdicts.items() if ok]
    for s in passing:
        lines.append(f"   - `{s}`: {_num(costs['fmer_update_ms'].get(s, np.nan), '.1f')} ms")
    if not passing:
        lines.append("   - none passes")
    return lines


def page(tidy: pd.DataFrame, decision: Decision, runs: pd.DataFrame, costs: pd.DataFrame,
         completeness: pd.DataFrame, settings, tasks=TASKS, seeds=SEEDS,
         figure: str = "../figures/defaults/study.png") -> str:
    c = counts(completeness)
    if decision.choice is not None:
        chosen = (f"**Chosen: `{decision.choice}`**: {decision.why}."
                  if decision.choice != REFERENCE else f"**No change: `{REFERENCE}` stays**: "
                  f"{decision.why}.")
    else:
        chosen = f"**No choice**: {decision.why}."
    costs_note = (f"Update cost: `fmer bench --budget {BUDGET}`, {COST_ENV}-sized networks, "
                  f"{COST_THREADS} thread, {costs.attrs.get('clock', '?')} clock, median over "
                  "rounds; every setting timed in the same run, interleaved with SAC."
                  if len(costs) else "Update cost: not measured yet "
                  f"(`fmer bench --envs {COST_ENV} --threads 1 --budget {BUDGET}`).")
    return "\n".join([
        RULE, "## The runs", "",
        f"Budget `{BUDGET}`: {c['complete']} of {len(completeness)} runs complete "
        f"({others_text(c)}). Final return = the "
        f"evaluation return at step {FINAL_STEP:,}; a run that did not reach it is not used. "
        f"Each cell: mean over the n seeds with its 95% t-interval, from the estimates table "
        f"(`results/{BUDGET}/estimates.csv`): {coverage.label(len(seeds))}. The rule's bound "
        f"(\"≥ reference bound\") is the percentile bootstrap the rule names, applied below. "
        f"Max return = the highest evaluation of a run. Whole run: "
        "the wall-clock minutes of the last evaluation (eval.csv `wall_time_s`), on whatever "
        "load the training machine had; the update time is the measured cost.", "",
        _markdown_table(tidy), "", NAMES, "", costs_note, "",
        "## The rule, applied", "",
        *_application(decision, runs, costs, settings, tasks, seeds), "",
        "## Result", "", chosen, "",
        f"![learning curves, τ, ESS/N and entropy per setting]({figure})", "",
        "Figure: mean over seeds per setting with its band (95% t-interval) where n ≥ 3; "
        "fewer seeds are drawn one line each. Regenerate: "
        "`snakemake --cores 2 defaults_study` (or "
        "`fmer defaults-study`).", "",
        *([f"Reused: {reused_note(completeness)[len('reused: '):]}.", ""]
          if reused_note(completeness) else [])])


# --- the figure -----------------------------------------------------------------------------
def figure(estimated: pd.DataFrame, runs: pd.DataFrame, settings, tasks=TASKS):
    import matplotlib.pyplot as plt

    from fmer.analysis import figures

    fig, axes = plt.subplots(len(TRACES), len(tasks), figsize=(5.5 * len(tasks), 14),
                             squeeze=False)
    for col, task in enumerate(tasks):
        mine = estimated[estimated["env"] == task]
        for row, (metric, label) in enumerate(TRACES):
            ax = axes[row, col]
            # every setting in the legend: n seeds, or not run
            figures._lines(ax, mine, runs[runs["env"] == task], metric, settings)
            ax.set(title=task, xlabel=figures.STEPS, ylabel=textwrap.fill(label, 32))
            figures._legend_below(ax)
        if estimates.select(mine, "tau", curve=True)["point"].gt(0).any():
            axes[1, col].set_yscale("log")
        # ESS/N sits at the bisection's target: a fixed scale, not one zoomed onto float noise
        axes[[m for m, _ in TRACES].index("ess_frac"), col].set_ylim(0, 1.05)
    fig.suptitle(f"Defaults study: {figures.MEAN_T} (band) over seeds from n ≥ "
                 f"{figures.BAND_MIN_N} seeds, each seed's own line below that")
    return fig


def write(estimated: pd.DataFrame, completeness: pd.DataFrame, bench: pd.DataFrame | None,
          page_path, csv_path, figure_stem, tasks=TASKS, seeds=SEEDS,
          final_step: int = FINAL_STEP) -> list[Path]:
    """Page, CSV and figure of the study; ``tasks``, ``seeds`` and ``final_step`` are the rule's
    and change only in tests."""
    from fmer.analysis import figures

    settings = list(dict.fromkeys(completeness["variant"]))
    if REFERENCE not in settings:
        raise ValueError(f"the reference {REFERENCE} is not among the runs ({settings})")
    settings = [REFERENCE, *(s for s in settings if s != REFERENCE)]
    runs = study_runs(estimated, completeness, final_step)
    costs = update_costs(bench) if bench is not None and len(bench) else pd.DataFrame(
        columns=["sac_update_ms", "fmer_update_ms", "fmer_sac_update_ratio"])
    decision = apply_rule(runs, costs["fmer_update_ms"].to_dict(), settings, tasks=tasks,
                          seeds=seeds)
    tidy = table(estimated, runs, costs, decision, settings, tasks)
    page_path, csv_path = Path(page_path), Path(csv_path)
    for p in (page_path, csv_path):
        p.parent.mkdir(parents=True, exist_ok=True)
    tidy.to_csv(csv_path, index=False)
    png = os.path.relpath(Path(figure_stem).with_suffix(".png"), page_path.parent)
    page_path.write_text(page(tidy, decision, runs, costs, completeness, settings, tasks,
                              seeds, figure=png))
    fig = figure(estimated, runs, settings, tasks)
    return [page_path, csv_path, *figures.save(fig, completeness, BUDGET, figure_stem)]
