"""Our numbers beside the paper's: ``fmer tables`` writes a Markdown and a LaTeX table.

MuJoCo: the maximum over evaluations of the mean return (the paper's statistic) and the final
return. FrankaKitchen: the paper's "success rate" = mean tasks completed / N x 100, at the final
evaluation. Each of our cells is a mean over seeds with its 95% stratified-bootstrap interval,
the seed count beside it; the budget (steps) heads our columns. Runs that are not complete are
counted in a note, never filled in. The Markdown page ends with a verdict per paper claim
(fmer.analysis.verdicts).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fmer import markdown
from fmer.analysis import estimates, stats, verdicts
from fmer.analysis.aggregate import counts, others_text
from fmer.envs import KITCHEN_BENCHMARKS, KITCHEN_TASKS, MUJOCO_BENCHMARKS

# our variant and the paper's name of each method whose numbers the paper's tables report
METHODS = (("fmer", "FMER"), ("sac", "SAC"), ("qvpo", "QVPO"))


def success_pct(summary: pd.DataFrame) -> pd.Series:
    """The paper's FrankaKitchen "success rate": mean tasks completed / N x 100."""
    n_tasks = summary["env"].map(lambda env: len(KITCHEN_TASKS[env]))
    return 100 * summary["tasks_completed_mean"] / n_tasks


def _cell(table: pd.DataFrame, env: str, variant: str, fmt: str) -> str:
    hit = table[(table["env"] == env) & (table["variant"] == variant)]
    if hit.empty:
        return "–"
    r = hit.iloc[0]
    if r["n"] < 2:  # one seed: its bootstrap interval is a point, which would claim certainty
        return f"{r['point']:{fmt}} (n=1, no interval)"
    return (f"{r['point']:{fmt}} [{r['low']:{fmt}}, {r['high']:{fmt}}] (n={int(r['n'])})")


def _paper(reported: pd.DataFrame, benchmark: str, setting: str | None, method: str) -> str:
    hit = reported[(reported["benchmark"] == benchmark) & (reported["method"] == method)]
    if setting is not None:
        hit = hit[hit["setting"] == setting]
    return f"{hit['value'].iloc[0]:.2f}" if len(hit) else "–"


def _steps(summary: pd.DataFrame, envs) -> str:
    steps = sorted(summary.loc[summary["env"].isin(envs), "total_steps"].unique())
    return "/".join(f"{int(s):,}" for s in steps) or "?"


def mujoco_table(summary: pd.DataFrame, reported: pd.DataFrame, budget: str) -> pd.DataFrame:
    per = stats.per_run(summary, "return_mean") if not summary.empty else None
    steps = _steps(summary, MUJOCO_BENCHMARKS) if per is not None else "?"
    rows = []
    for env in MUJOCO_BENCHMARKS:
        row = {"benchmark": env}
        for which in ("max", "final"):
            table = (stats.interval_table(per, ["env", "variant"], which) if per is not None
                     else pd.DataFrame(columns=["env", "variant"]))
            for variant, name in METHODS:
                row[f"{name} {which} return, ours ({budget}, {steps} steps)"] = _cell(
                    table, env, variant, ".0f")
        for _, name in METHODS:
            row[f"{name} max return, paper (1M steps)"] = _paper(reported, env, None, name)
        rows.append(row)
    return pd.DataFrame(rows)


def kitchen_table(summary: pd.DataFrame, reported: pd.DataFrame, budget: str) -> pd.DataFrame:
    s = summary[summary["env"].isin(KITCHEN_BENCHMARKS)].copy() if not summary.empty else summary
    table = pd.DataFrame(columns=["env", "variant"])
    steps = "?"
    if not s.empty:
        s["pct"] = success_pct(s)
        table = stats.interval_table(stats.per_run(s, "pct"), ["env", "variant"], "final")
        steps = _steps(s, KITCHEN_BENCHMARKS)
    rows = []
    for env in KITCHEN_BENCHMARKS:
        n = len(KITCHEN_TASKS[env])
        row = {"benchmark": f"FrankaKitchen N={n}"}
        for variant, name in METHODS:
            row[f"{name} success %, ours ({budget}, {steps} steps)"] = _cell(table, env,
                                                                             variant, ".1f")
        for _, name in METHODS:
            row[f"{name} success %, paper"] = _paper(reported, "FrankaKitchen-v1", f"N={n}",
                                                     name)
        rows.append(row)
    return pd.DataFrame(rows)


def _tex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("%", r"\%"), ("_", r"\_"), ("&", r"\&"),
                 ("#", r"\#"), ("–", "--")):
        text = text.replace(a, b)
    return text


def to_latex(df: pd.DataFrame, caption: str) -> str:
    head = " & ".join(_tex_escape(c) for c in df.columns) + r" \\"
    body = [" & ".join(_tex_escape(str(v)) for v in r) + r" \\"
            for r in df.itertuples(index=False)]
    return "\n".join([r"\begin{table}[ht]", r"\centering\small",
                      r"\begin{tabular}{" + "l" * len(df.columns) + "}", r"\toprule", head,
                      r"\midrule", *body, r"\bottomrule", r"\end{tabular}",
                      rf"\caption{{{_tex_escape(caption)}}}", r"\end{table}", ""])


def write(summary: pd.DataFrame, completeness: pd.DataFrame, reported: pd.DataFrame,
          budget: str, out: str | Path) -> list[Path]:
    c = counts(completeness)
    note = (f"Ours: budget `{budget}`, {c['complete']} of {len(completeness)} runs complete "
            f"({others_text(c)}); "
            "mean [95% stratified-bootstrap CI] (n = seeds). Paper: arXiv 2603.17685 v1, as "
            "read from a secondary summary (paper/reported.csv), no ± given.")
    tables = (("MuJoCo: maximum over evaluations of the mean return, and final return",
               mujoco_table(summary, reported, budget)),
              ("FrankaKitchen: success rate = mean tasks completed / N × 100, final evaluation",
               kitchen_table(summary, reported, budget)))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    md = [f"# Results, budget `{budget}`", "", note, ""]
    tex = [f"% generated by fmer tables; budget {budget}", ""]
    for caption, df in tables:
        md += [f"## {caption}", "", markdown.table(df.columns, df.itertuples(index=False)), ""]
        tex.append(to_latex(df, f"{caption}. {note}"))
    # until the workflow writes the estimates table, computed here from the summary
    md += verdicts.section(estimates.cell_estimates(summary), completeness, budget)
    paths = [out.with_name(out.name + ".md"), out.with_name(out.name + ".tex")]
    paths[0].write_text("\n".join(md))
    paths[1].write_text("\n".join(tex))
    return paths


def main(args) -> int:
    summary = pd.read_csv(args.summary)
    completeness = pd.read_csv(args.completeness)
    reported = pd.read_csv(args.reported)
    for path in write(summary, completeness, reported, args.budget, args.out):
        print(path)
    return 0
