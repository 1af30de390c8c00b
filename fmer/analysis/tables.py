"""Our numbers beside the paper's: ``fmer tables`` writes a Markdown and a LaTeX page.

MuJoCo: the maximum over evaluations of the mean return (the paper's statistic) and the final
return. FrankaKitchen: the paper's "success rate" = mean tasks completed / N x 100, at the final
evaluation. One row per benchmark and method (FMER, SAC, and SAC at FMER's initial α beside
it); each of our cells is the estimates table's mean over seeds with its 95% t-interval
(fmer.analysis.estimates), the seed count beside it, and the page says what that interval
covers (fmer.analysis.coverage); the budget (steps) heads our columns. Runs that are not
complete are counted in a note, never filled in; runs reused from another budget are named.
Both pages end with a verdict per paper claim (fmer.analysis.verdicts).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pandas as pd

from fmer import markdown
from fmer.analysis import coverage, estimates, verdicts
from fmer.analysis.aggregate import counts, others_text, reused_note
from fmer.envs import KITCHEN_BENCHMARKS, KITCHEN_TASKS, MUJOCO_BENCHMARKS

# variant, its name on the page, its name in paper/reported.csv (None: the paper has none)
METHODS = (("fmer", "FMER", "FMER"), ("sac", "SAC", "SAC"),
           ("sac-fmer-alpha", "SAC at FMER's initial α", None), ("qvpo", "QVPO", "QVPO"))


def _cell(table: pd.DataFrame, metric: str, env: str, variant: str, fmt: str) -> str:
    hit = estimates.select(table, metric, env, variant)
    if hit.empty:
        return "–"
    r = hit.iloc[0]
    if r["n"] < 2:  # one seed: no interval
        return f"{r['point']:{fmt}} (n=1, no interval)"
    return f"{r['point']:{fmt}} [{r['low']:{fmt}}, {r['high']:{fmt}}] (n={int(r['n'])})"


def _paper(reported: pd.DataFrame, benchmark: str, setting: str | None, method: str) -> str:
    hit = reported[(reported["benchmark"] == benchmark) & (reported["method"] == method)]
    if setting is not None:
        hit = hit[hit["setting"] == setting]
    return f"{hit['value'].iloc[0]:.2f}" if len(hit) else "–"


def _steps(completeness: pd.DataFrame, envs) -> str:
    """The training length of the complete runs on ``envs`` (a complete run's last
    evaluation is at its last step)."""
    done = completeness[(completeness["status"] == "complete") & completeness["env"].isin(envs)]
    return "/".join(f"{int(s):,}" for s in sorted(done["last_step"].dropna().unique())) or "?"


def mujoco_table(table: pd.DataFrame, completeness: pd.DataFrame, reported: pd.DataFrame,
                 budget: str) -> pd.DataFrame:
    ours = f"ours ({budget}, {_steps(completeness, MUJOCO_BENCHMARKS)} steps)"
    rows = [{"benchmark": env, "method": name,
             f"max return, {ours}": _cell(table, "max_return", env, variant, ".0f"),
             f"final return, {ours}": _cell(table, "final_return", env, variant, ".0f"),
             "max return, paper (1M steps)": _paper(reported, env, None, paper) if paper
             else "–"}
            for env in MUJOCO_BENCHMARKS for variant, name, paper in METHODS]
    return _without_empty_rows(pd.DataFrame(rows))


def kitchen_table(table: pd.DataFrame, completeness: pd.DataFrame, reported: pd.DataFrame,
                  budget: str) -> pd.DataFrame:
    ours = f"ours ({budget}, {_steps(completeness, KITCHEN_BENCHMARKS)} steps)"
    rows = []
    for env in KITCHEN_BENCHMARKS:
        n = len(KITCHEN_TASKS[env])
        for variant, name, paper in METHODS:
            rows.append({"benchmark": f"FrankaKitchen N={n}", "method": name,
                         f"success %, {ours}": _cell(table, "final_success_pct", env, variant,
                                                     ".1f"),
                         "success %, paper": _paper(reported, "FrankaKitchen-v1", f"N={n}",
                                                    paper) if paper else "–"})
    return _without_empty_rows(pd.DataFrame(rows))


def _without_empty_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a number, ours or the paper's (a method neither ran nor reported: none)."""
    numbers = df.columns[2:]
    return df[(df[numbers] != "–").any(axis=1)].reset_index(drop=True)


# what LaTeX cannot take as it is, and what it takes instead (text mode, T1 or OT1)
TEX = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "%": r"\%",
       "_": r"\_", "&": r"\&", "#": r"\#", "~": r"\textasciitilde{}",
       "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
       "–": "--", "—": "---", "−": "$-$", "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$",
       "≈": r"$\approx$", "→": r"$\rightarrow$", "±": r"$\pm$", "·": r"$\cdot$",
       "α": r"$\alpha$", "τ": r"$\tau$", "π": r"$\pi$", "²": r"$^2$", "₀": r"$_0$",
       "…": r"\ldots{}", "‘": "`", "’": "'", "“": "``", "”": "''", "\u00a0": "~"}


def _tex_chars(text: str) -> str:
    out = []
    for char in text:
        if char in TEX:
            out.append(TEX[char])
        elif char.isascii():
            out.append(char)
        else:  # an accented letter as its base letter; anything else as its code point
            base = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            out.append(base or f"[U+{ord(char):04X}]")
    return "".join(out)


def tex_escape(text: str) -> str:
    """Markdown-ish text -> LaTeX text: `code` in \\texttt, **bold** in \\textbf, *emphasis* in
    \\emph, the characters LaTeX reserves escaped and the Unicode we write spelled in ASCII."""
    parts = re.split(r"(`[^`]*`|\*\*[^*]+\*\*|\*[^*\s][^*]*\*)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(r"\texttt{" + _tex_chars(part[1:-1]) + "}")
        elif part.startswith("**") and part.endswith("**") and len(part) > 4:
            out.append(r"\textbf{" + _tex_chars(part[2:-2]) + "}")
        elif part.startswith("*") and part.endswith("*") and len(part) > 2:
            out.append(r"\emph{" + _tex_chars(part[1:-1]) + "}")
        else:
            out.append(_tex_chars(part))
    return "".join(out)


def to_latex(df: pd.DataFrame, caption: str, widths=None) -> str:
    """A booktabs table; ``widths``: column widths in cm (wrapped paragraph columns)."""
    spec = "".join(f"p{{{w}cm}}" for w in widths) if widths else "l" * len(df.columns)
    head = " & ".join(tex_escape(str(c)) for c in df.columns) + r" \\"
    body = [" & ".join(tex_escape(str(v)) for v in r) + r" \\"
            for r in df.itertuples(index=False)]
    return "\n".join([r"\begin{table}[ht]", r"\centering\small",
                      r"\begin{tabular}{" + spec + "}", r"\toprule", head,
                      r"\midrule", *body, r"\bottomrule", r"\end{tabular}",
                      rf"\caption{{{tex_escape(caption)}}}", r"\end{table}", ""])


def interval_note(table: pd.DataFrame) -> str:
    """What the brackets are, with their coverage at each seed count the page shows."""
    ns = sorted({int(n) for n in table.loc[table["step"].isna(), "n"] if n >= 2})
    return ("Brackets: " + "; ".join(coverage.label(n) for n in ns) + "." if ns
            else "No bracket: no cell has two seeds.")


def write(table: pd.DataFrame, completeness: pd.DataFrame, reported: pd.DataFrame,
          budget: str, out: str | Path, qvpo_timing: tuple | None = None) -> list[Path]:
    """OUT.md and OUT.tex; ``qvpo_timing``: fmer bench's QVPO/FMER update ratio, its interval
    and rounds (fmer.analysis.performance.qvpo_ratio), which the cost claim's verdict reads."""
    c = counts(completeness)
    reused = reused_note(completeness)
    note = (f"Ours: budget `{budget}`, {c['complete']} of {len(completeness)} runs complete "
            f"({others_text(c)}); mean [95% t-interval] (n = seeds), from the estimates "
            f"table (`results/{budget}/estimates.csv`). {interval_note(table)} "
            + (f"{reused[0].upper()}{reused[1:]}. " if reused else "")
            + "Paper: arXiv 2603.17685 v1, as read from a secondary summary "
            "(paper/reported.csv), no ± given.")
    tables = (("MuJoCo: maximum over evaluations of the mean return, and final return",
               mujoco_table(table, completeness, reported, budget)),
              ("FrankaKitchen: success rate = mean tasks completed / N × 100, final evaluation",
               kitchen_table(table, completeness, reported, budget)))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    md = [f"# Results, budget `{budget}`", "", note, ""]
    tex = [f"% generated by fmer tables; budget {budget}. For \\input into a document that "
           "loads booktabs.", ""]
    for caption, df in tables:
        md += [f"## {caption}", "", markdown.table(df.columns, df.itertuples(index=False)), ""]
        tex.append(to_latex(df, f"{caption}. {note}"))
    md += verdicts.section(table, completeness, budget, qvpo_timing)
    claims = verdicts.verdict_rows(table, completeness, budget, qvpo_timing)
    tex.append(to_latex(claims, f"Verdicts, one per paper claim, budget `{budget}` (the rules: "
                        f"paper/{budget}/results.md).", widths=(4.0, 2.2, 6.0, 3.8)))
    paths = [out.with_name(out.name + ".md"), out.with_name(out.name + ".tex")]
    paths[0].write_text("\n".join(md))
    paths[1].write_text("\n".join(tex))
    return paths
