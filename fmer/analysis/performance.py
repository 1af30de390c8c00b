"""What ``fmer bench``'s rows say: the summaries, the tables printed, the cost claim's line,
and the page ``paper/performance.md`` (the rows, the machine, and what they say).

Measurement lives in ``fmer.bench``, the rows' format in ``fmer.benchlog``; this module only
reads and formats the rows. The page ends with the bench's two headline lines, the ratio last.
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fmer.analysis import cost_claim
from fmer.analysis.stats import t_interval
from fmer.benchlog import (
    DEFAULTS,
    EXECUTIONS,
    FMER_PARTS,
    PARTS,
    QVPO_PARTS,
    QVPO_RATIO,
    REST,
    lookup,
)
from fmer.markdown import table as markdown_table

HEADLINE = "FMER/SAC update time ratio"
QVPO_HEADLINE = "QVPO/FMER update time ratio"
EFFICIENCY = "FMER update efficiency"


def _record(rows, env, n, setting=DEFAULTS) -> dict:
    sac, fmer = (lookup(rows, env, n, f"{a}_update", setting) for a in ("sac", "fmer"))
    mm = lookup(rows, "", n, "matmul")
    return {"env": env, "dims": f"{sac['obs_dim']}/{sac['act_dim']}", "threads": n,
            "setting": setting, "sac_ms": sac["ms"], "fmer_ms": fmer["ms"],
            "ratio": fmer["ms"] / sac["ms"], "sac_gflop": sac["gflop"],
            "fmer_gflop": fmer["gflop"], "fmer_gflop_per_s": fmer["gflop_per_s"],
            "matmul_gflop_per_s": mm["gflop_per_s"],
            "efficiency": fmer["gflop_per_s"] / mm["gflop_per_s"], "clock": sac["clock"],
            "floor_ratio": fmer["gflop"] / mm["gflop_per_s"] * 1e3 / sac["ms"],
            **_qvpo_record(rows, env, n, setting)}


def _qvpo_record(rows, env, n, setting) -> dict:
    """QVPO's update beside FMER's, where it was timed (None elsewhere)."""
    qvpo, ratio = (lookup(rows, env, n, item, setting) for item in ("qvpo_update", QVPO_RATIO))
    if qvpo is None or ratio is None:
        return dict.fromkeys(("qvpo_ms", "qvpo_gflop", "qvpo_ratio", "qvpo_ratio_low",
                              "qvpo_ratio_high", "qvpo_rounds"))
    return {"qvpo_ms": qvpo["ms"], "qvpo_gflop": qvpo["gflop"], "qvpo_ratio": ratio["ratio"],
            "qvpo_ratio_low": ratio["ratio_low"], "qvpo_ratio_high": ratio["ratio_high"],
            "qvpo_rounds": ratio["reps"]}


def summary(rows: list[dict]) -> list[dict]:
    """One wide record per (env, threads) at the defaults, in the order benched, with the
    env's raw step rate."""
    out = []
    for env, n in dict.fromkeys((r["env"], r["threads"]) for r in rows
                                if r["env"] and r["setting"] == DEFAULTS):
        step = next(r for r in rows if r["env"] == env and r["item"] == "env_step")
        out.append({**_record(rows, env, n), "env_steps_per_s": 1e3 / step["ms"]})
    return out


def settings_summary(rows: list[dict]) -> list[dict]:
    """One wide record per named setting (first env, fewest threads)."""
    return [_record(rows, r["env"], r["threads"], r["setting"]) for r in rows
            if r["setting"] not in (DEFAULTS, *EXECUTIONS) and r["item"] == "fmer_update"]


def execution_note(device: str) -> str:
    """Where bf16 matmuls run natively here, as the execution table's caption says."""
    # torch, imported here: the rest of this module is read by commands that do not need it
    from fmer.device import resolve_device
    from fmer.execution import bf16_matrix_units

    units = bf16_matrix_units(resolve_device(device))
    return (f"bf16 matrix units: {units}" if units else
            "no bf16 matrix units: bf16 matmuls are emulated")


def execution_summary(rows: list[dict]) -> list[dict]:
    """Eager float32 and each benched execution (first env, fewest threads): the update
    times, FMER's against eager's, and for a compiled one the first call's wall time and the
    updates after which a compiled FMER has paid for it (None: it does not pay)."""
    runs = [r for r in rows if r["item"] == "fmer_update" and r["setting"] in EXECUTIONS]
    if not runs:
        return []
    env, n = runs[0]["env"], runs[0]["threads"]
    eager = lookup(rows, env, n, "fmer_update")["ms"]
    out = []
    for setting in (DEFAULTS, *(r["setting"] for r in runs)):
        sac, fmer = (lookup(rows, env, n, f"{a}_update", setting)["ms"] for a in ("sac", "fmer"))
        compile_s = {a: (r["wall_ms"] / 1e3 if r else None) for a, r in
                     ((a, lookup(rows, env, n, f"{a}_compile", setting)) for a in ("sac", "fmer"))}
        saved = eager - fmer
        payback = (compile_s["fmer"] * 1e3 / saved if compile_s["fmer"] and saved > 0
                   else None)
        out.append({"setting": "eager float32" if setting == DEFAULTS else setting,
                    "sac_ms": sac, "fmer_ms": fmer, "ratio": fmer / sac,
                    "vs_eager": fmer / eager, "sac_compile_s": compile_s["sac"],
                    "fmer_compile_s": compile_s["fmer"], "payback": payback})
    return out


def parts_summary(rows: list[dict], algo: str = "fmer") -> list[dict]:
    """The FMER (or QVPO) update's parts (ms) per (env, threads), at the defaults."""
    labels = (*PARTS[algo], REST)
    out = []
    for rec in summary(rows):
        if rec.get(f"{algo}_ms") is None:
            continue
        parts = {r["item"].removeprefix(f"{algo}_"): r["ms"] for r in rows
                 if (r["env"], r["threads"], r["setting"]) == (rec["env"], rec["threads"],
                                                               DEFAULTS)
                 and r["item"] in {f"{algo}_{p}" for p in labels}}
        out.append({"env": rec["env"], "threads": rec["threads"],
                    f"{algo}_ms": rec[f"{algo}_ms"], **parts})
    return out


TABLE_COLUMNS = (
    ("env", "env", "{}"), ("obs/act", "dims", "{}"), ("threads", "threads", "{}"),
    ("env steps/s", "env_steps_per_s", "{:,.0f}"), ("SAC ms", "sac_ms", "{:.1f}"),
    ("FMER ms", "fmer_ms", "{:.1f}"), ("FMER/SAC", "ratio", "{:.2f}"),
    ("SAC GFLOP", "sac_gflop", "{:.2f}"), ("FMER GFLOP", "fmer_gflop", "{:.2f}"),
    ("FMER GFLOP/s", "fmer_gflop_per_s", "{:.0f}"),
    ("matmul GFLOP/s", "matmul_gflop_per_s", "{:.0f}"), ("efficiency", "efficiency", "{:.0%}"),
    ("floor/SAC", "floor_ratio", "{:.2f}"),
)
QVPO_COLUMNS = (
    ("env", "env", "{}"), ("threads", "threads", "{}"), ("FMER ms", "fmer_ms", "{:.1f}"),
    ("QVPO ms", "qvpo_ms", "{:.0f}"), ("QVPO/FMER", "qvpo_ratio", "{:.1f}"),
    ("95% interval", "qvpo_interval", "{}"), ("rounds", "qvpo_rounds", "{}"),
    ("QVPO GFLOP", "qvpo_gflop", "{:.1f}"), ("FMER GFLOP", "fmer_gflop", "{:.2f}"),
)
SETTING_COLUMNS = (
    ("setting", "setting", "{}"), ("SAC ms", "sac_ms", "{:.1f}"), ("FMER ms", "fmer_ms", "{:.1f}"),
    ("FMER/SAC", "ratio", "{:.2f}"), ("FMER GFLOP", "fmer_gflop", "{:.2f}"),
    ("efficiency", "efficiency", "{:.0%}"),
)
PART_COLUMNS = (("env", "env", "{}"), ("threads", "threads", "{}"),
                ("FMER ms", "fmer_ms", "{:.1f}"),
                *((p.replace("_", " "), p, "{:.1f}") for p in (*FMER_PARTS, REST)))
QVPO_PART_COLUMNS = (("env", "env", "{}"), ("threads", "threads", "{}"),
                     ("QVPO ms", "qvpo_ms", "{:.0f}"),
                     *((p.replace("_", " "), p, "{:.0f}") for p in (*QVPO_PARTS, REST)))
WHOLE_RUN_COLUMNS = (("algo", "algo", "{}"), ("seed", "seed", "{}"),
                     ("env steps", "steps", "{:,}"), ("wall time (min)", "minutes", "{:.1f}"))
EXECUTION_COLUMNS = (
    ("execution", "setting", "{}"), ("SAC ms", "sac_ms", "{:.1f}"),
    ("FMER ms", "fmer_ms", "{:.1f}"), ("FMER/SAC", "ratio", "{:.2f}"),
    ("FMER / eager", "vs_eager", "{:.2f}"), ("SAC compile s", "sac_compile_s", "{:.0f}"),
    ("FMER compile s", "fmer_compile_s", "{:.0f}"),
    ("FMER pays back after (updates)", "payback", "{:,.0f}"),
)


def format_table(records: list[dict], columns=TABLE_COLUMNS, markdown: bool = False) -> str:
    header = [h for h, _, _ in columns]
    body = [["" if rec[key] is None else fmt.format(rec[key]) for _, key, fmt in columns]
            for rec in records]
    if markdown:
        return markdown_table(header, body)
    widths = [max(len(c) for c in col) for col in zip(header, *body, strict=True)]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True))
                     for line in [header, *body])


def qvpo_summary(rows: list[dict]) -> list[dict]:
    """QVPO's update beside FMER's per (env, threads), at the defaults, with the interval."""
    return [{**rec, "qvpo_interval": f"[{rec['qvpo_ratio_low']:.1f}, "
                                     f"{rec['qvpo_ratio_high']:.1f}]"}
            for rec in summary(rows) if rec["qvpo_ms"] is not None]


def qvpo_ratio(rows: list[dict]) -> tuple[float, float, float, int] | None:
    """What the cost claim's rule reads (fmer.analysis.cost_claim): QVPO's update over FMER's,
    its 95% interval and the rounds, on the first env at one thread (None if not timed)."""
    recs = [r for r in summary(rows) if r["threads"] == 1 and r["qvpo_ms"] is not None]
    if not recs:
        return None
    r = recs[0]
    return r["qvpo_ratio"], r["qvpo_ratio_low"], r["qvpo_ratio_high"], int(r["qvpo_rounds"])


def cost_claim_line(rows: list[dict]) -> str:
    """The cost claim's rule applied to these rows, as one line."""
    measured = qvpo_ratio(rows)
    if measured is None:
        return (f"Cost claim against QVPO: {cost_claim.verdict(np.nan, np.nan, np.nan, 0)} "
                "(no one-thread QVPO timing)")
    r, low, high, n = measured
    return (f"Cost claim against QVPO (fmer.analysis.cost_claim): "
            f"{cost_claim.verdict(r, low, high, n)}, {cost_claim.magnitude(low, high)} "
            f"({QVPO_HEADLINE} {r:.1f} [{low:.1f}, {high:.1f}], n = {n} rounds)")


def headline(records: list[dict]) -> tuple[dict, list[str]]:
    """The first env on the fewest threads, and the last two lines of every bench: the
    efficiency, then the ratio."""
    fewest = min(r["threads"] for r in records)
    rec = next(r for r in records if r["threads"] == fewest)
    return rec, [f"{EFFICIENCY}: {rec['efficiency']:.0%} of the matmul rate",
                 f"{HEADLINE}: {rec['ratio']:.2f}"]




def whole_run_ratios(runs: list[dict]) -> list[str]:
    """FMER over SAC and QVPO over FMER in wall time: the geometric mean over the seeds both
    have, with a 95% t interval of the log ratios from two seeds on."""
    minutes = {(r["algo"], r["seed"]): r["minutes"] for r in runs}
    lines = []
    for num, den in (("fmer", "sac"), ("qvpo", "fmer")):
        seeds = sorted(s for a, s in minutes if a == num and (den, s) in minutes)
        if not seeds:
            continue
        logs = [np.log(minutes[num, s] / minutes[den, s]) for s in seeds]
        mean, low, high = (float(np.exp(x)) for x in t_interval(logs))
        interval = f" [{low:.2f}, {high:.2f}]" if len(seeds) > 1 else ""
        lines.append(f"{num.upper()}/{den.upper()} whole-run wall time: {mean:.2f}{interval} "
                     f"(n = {len(seeds)} seed(s))")
    return lines


CUDA_NOTE = ("The CUDA path (`--device cuda`) is untested on real hardware: no GPU was at hand "
             "when this page was made.")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    import torch  # here, not at the top: as in execution_note

    return {"cpu": _cpu_model(), "logical cores": str(os.cpu_count()),
            "load average (1 min) at start": f"{os.getloadavg()[0]:.1f}",
            "python": platform.python_version(), "torch": torch.__version__,
            "os": platform.platform()}


def render(rows: list[dict], command: str, budget: str | None = None,
           whole_budget: str | None = None, whole: list[dict] | None = None) -> str:
    records = summary(rows)
    rec, lines = headline(records)
    out = [
        "# Performance: one SAC, one FMER and one QVPO update, side by side",
        "",
        f"Generated by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; do not edit by "
        "hand.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in machine().items()],
        "",
        "## Update cost (batch 256, package defaults, median after warm-up)",
        "",
        "One thread: the main thread's CPU time, which other processes on a shared machine "
        "cannot inflate; more threads: wall time, which needs as many idle cores to mean "
        "anything (see the load average above). GFLOP counts the matmuls of one update, "
        "backward included (with `actor.update_every` = k, a cycle of k updates divided by "
        "k); `matmul GFLOP/s` is a 1024³ fp32 matmul on the same threads, `efficiency` the "
        "update's rate over it, and `floor/SAC` the FMER update's FLOPs at that rate over the "
        "SAC update's time: no implementation of the same float32 math on this machine gets "
        "below it.",
        "",
        format_table(records, markdown=True),
        "",
        "### FMER's update by part (ms, same clock)",
        "",
        "The parts are the `record_function` labels of `FMER.update`, timed from outside the "
        "agent; `actor step` holds the actor's one backward pass and its optimiser step, "
        "`rest` what no label covers.",
        "",
        format_table(parts_summary(rows), PART_COLUMNS, markdown=True),
        "",
    ]
    qvpo = qvpo_summary(rows)
    if qvpo:
        out += ["## QVPO's update beside FMER's (same process, same clock)", "",
                "QVPO (the paper's diffusion baseline) at its authors' MuJoCo settings "
                "(docs/QVPO.md: 64 actions per state through 20 denoising steps of a 3×256 "
                "network, the best of 4 for each TD target), or the command's `--set`. "
                "`QVPO/FMER` is the mean of the "
                "per-round log ratios (the updates were interleaved round by round), "
                "exponentiated, with its 95% t interval: the number the cost claim's rule "
                "reads.", "",
                format_table(qvpo, QVPO_COLUMNS, markdown=True), "",
                "### QVPO's update by part (ms, same clock)", "",
                format_table(parts_summary(rows, "qvpo"), QVPO_PART_COLUMNS, markdown=True),
                "", "### The cost claim", "", cost_claim.RULE, "", cost_claim_line(rows), ""]
    by_setting = settings_summary(rows)
    if by_setting:
        out += [f"## The settings of budget `{budget}` ({rec['env']}, {rec['threads']} "
                "thread(s))", "",
                "Each of the budget's own variants (`config/config.yaml`), timed in "
                "the same process as the table above.", "",
                format_table(by_setting, SETTING_COLUMNS, markdown=True), ""]
    by_execution = execution_summary(rows)
    if by_execution:
        out += [f"## How the update runs ({rec['env']}, {rec['threads']} thread(s))", "",
                "Eager float32 (the table above) beside each execution of `--execution` "
                "(`train.compile`, `train.precision`; fmer/execution.py), timed in the same "
                f"process; {execution_note('cpu')}. `compile s` is the wall time of the first "
                "call, which compiles (gcc's processes included, so it is inflated by a busy "
                "machine); `pays back after` is the FMER updates whose saving repays it.", "",
                format_table(by_execution, EXECUTION_COLUMNS, markdown=True), ""]
    if whole:
        out += [f"## Whole runs ({rec['env']}, budget `{whole_budget}`, one thread, "
                "wall time)", "",
                "Complete `fmer train` runs, seed by seed: random steps, evaluations and "
                "process start included. Wall time on a shared machine: indicative only.", "",
                format_table(whole, WHOLE_RUN_COLUMNS, markdown=True), "",
                *whole_run_ratios(whole), ""]
    out += ["## GPU", "", CUDA_NOTE, "",
            f"Headline: {rec['env']}, {rec['threads']} thread(s).", "", *lines, ""]
    return "\n".join(out)
