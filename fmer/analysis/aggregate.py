"""Run directories -> one tidy table (a row per run and evaluation step) and a completeness
report (which of the expected runs are complete, incomplete, failed or missing).

Only runs that ``fmer.runlog.load_run`` verifies (complete, hashes intact) enter the table;
everything else is listed with the reason, never filled in. "failed" is a run that will not
complete (a non-finite value, which would recur); one interrupted by a signal is "incomplete".
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from fmer.envs import BENCHMARKS
from fmer.runlog import RunLogError, load_run, read_meta, verify_run

KEYS = ["env", "variant", "seed"]
STATUS_ORDER = ("complete", "incomplete", "failed", "missing")


def parse_run_path(run_dir: str | Path) -> dict:
    """``.../{env}/{variant}/seed{seed}`` -> env, variant, seed: the workflow's layout."""
    parts = Path(run_dir).parts
    if len(parts) < 3 or not parts[-1].startswith("seed") or not parts[-1][4:].isdigit():
        raise ValueError(f"{run_dir}: not a run path of the form .../ENV/VARIANT/seedN")
    return {"env": parts[-3], "variant": parts[-2], "seed": int(parts[-1][4:])}


def run_identity(run_dir: str | Path, budget: str) -> dict:
    """env, variant, seed of a RUN_DIR: from its meta.json (in RUN or, for a run in progress,
    RUN/.train) when it holds a run, whatever its path; else from its path, which must then be
    one of the budget's grid (``.../BUDGET/ENV/VARIANT/seedN``, a run not trained yet).
    Anything else, e.g. a misspelled path, is refused naming it."""
    run_dir = Path(run_dir)
    for where in (run_dir, run_dir / ".train"):
        try:
            meta = read_meta(where / "meta.json")
        except RunLogError:
            continue
        return {key: meta[key] for key in KEYS}
    parts = run_dir.parts
    try:
        where = parse_run_path(run_dir)
    except ValueError:
        where = None
    if where is None or len(parts) < 4 or parts[-4] != budget or where["env"] not in BENCHMARKS:
        raise RunLogError(f"{run_dir}: no run here (no meta.json), and not a path of budget "
                          f"{budget}'s grid (.../{budget}/ENV/VARIANT/seedN with ENV one of "
                          f"{', '.join(BENCHMARKS)}); misspelled?")
    return where


def _status(run_dir: Path) -> tuple[str, str, float]:
    """(status, detail, last evaluated step) of a run that did not verify."""
    for where in (run_dir, run_dir / ".train"):  # .train: the workflow's run in progress
        if (where / "meta.json").exists():
            try:
                meta = read_meta(where / "meta.json")
            except RunLogError as exc:
                return "incomplete", str(exc), float("nan")
            last = float("nan")
            if (where / "eval.csv").exists():
                steps = pd.read_csv(where / "eval.csv")["step"]
                last = float(steps.iloc[-1]) if len(steps) else last
            # failed: stopped on a non-finite value, which would recur (fmer train will not
            # resume it); a run interrupted by a signal or a machine error resumes: incomplete
            failed = meta["status"] == "failed" and meta.get("failure")
            status = "failed" if failed else "incomplete"
            return status, "; ".join(verify_run(where)), last
    return "missing", "no meta.json", float("nan")


def run_table(run_dir: str | Path) -> pd.DataFrame:
    """One verified run: its evaluations, each with the training metrics logged last at or
    before that step (train.csv is logged every log_every steps, eval.csv every eval_every)."""
    meta, evals, train = load_run(run_dir)
    try:
        where = parse_run_path(run_dir)
    except ValueError:  # not a grid path (e.g. fmer train --out runs/hopper): meta.json says
        where = meta
    for key in ("env", "variant", "seed"):
        if meta[key] != where[key]:
            raise RunLogError(f"{run_dir}: meta.json says {key}={meta[key]!r}, the path "
                              f"{where[key]!r}")
    train = train.drop(columns=["updates_per_s", "env_steps_per_s"])
    table = pd.merge_asof(evals.sort_values("step"), train.sort_values("step"), on="step",
                          direction="backward")
    table.insert(0, "seed", meta["seed"])
    table.insert(0, "variant", meta["variant"])
    table.insert(0, "env", meta["env"])
    table["total_steps"] = meta["config"]["train"]["total_steps"]
    return table


def aggregate(run_dirs: list[str | Path], budget: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, completeness) of the expected ``run_dirs`` of ``budget``; RunLogError, before
    any work, naming each RUN_DIR that is neither a run nor a path of the budget's grid."""
    identities, bad = [], []
    for run_dir in map(Path, run_dirs):
        try:
            identities.append(run_identity(run_dir, budget) | {"path": str(run_dir)})
        except RunLogError as exc:
            bad.append(str(exc))
    if bad:
        raise RunLogError("\n  ".join(bad))
    tables, report = [], []
    for row in identities:
        run_dir = Path(row["path"])
        try:
            table = run_table(run_dir)
        except RunLogError:
            status, detail, last = _status(run_dir)
            report.append(row | {"status": status, "last_step": last, "detail": detail})
            continue
        tables.append(table)
        report.append(row | {"status": "complete", "last_step": float(table["step"].iloc[-1]),
                             "detail": ""})
    completeness = pd.DataFrame(report, columns=[*KEYS, "path", "status", "last_step",
                                                 "detail"])
    if tables:
        summary = pd.concat(tables, ignore_index=True)
    else:
        summary = pd.DataFrame(columns=[*KEYS, "step"])
    return summary, completeness


def read_cells(cells) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, completeness) of ``cells``, (summary CSV, completeness CSV) pairs written by
    ``fmer aggregate`` (the workflow's: one per (env, variant), results/BUDGET/summary/ENV/
    VARIANT.csv and results/BUDGET/completeness/ENV/VARIANT.csv), concatenated in that order."""
    tables = [pd.read_csv(summary) for summary, _ in cells]
    report = [pd.read_csv(completeness, keep_default_na=False, na_values={"last_step": [""]})
              for _, completeness in cells]
    # a cell with no complete run is a header only: it adds no rows, and no columns to the rest
    rows = [t for t in tables if len(t)]
    summary = (pd.concat(rows, ignore_index=True) if rows
               else pd.DataFrame(columns=[*KEYS, "step"]))
    return summary, pd.concat(report, ignore_index=True)


def write(summary: pd.DataFrame, completeness: pd.DataFrame, out, completeness_out) -> None:
    for path in (out, completeness_out):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out, index=False)
    completeness.to_csv(completeness_out, index=False)


def counts(completeness: pd.DataFrame) -> dict[str, int]:
    found = completeness["status"].value_counts()
    return {s: int(found.get(s, 0)) for s in STATUS_ORDER}


def coverage_note(completeness: pd.DataFrame, budget: str) -> str:
    """The line every figure carries: how many of the budget's runs it is built from."""
    c = counts(completeness)
    total = len(completeness)
    note = f"budget {budget}: {c['complete']} of {total} runs"
    if c["complete"] < total:
        missing = completeness[completeness["status"] != "complete"]
        groups = missing.groupby(["env", "variant"])["seed"].apply(
            lambda s: ",".join(map(str, sorted(s))))
        listed = "; ".join(f"{e} {v} seed {s}" for (e, v), s in groups.items())
        note += f" (NOT SHOWN: {listed})"
    return note


def main(args) -> int:
    summary, completeness = aggregate(args.run_dirs, args.budget)
    write(summary, completeness, args.out, args.completeness)
    c = counts(completeness)
    print(json.dumps({"budget": args.budget, **c, "expected": len(completeness)}))
    for row in completeness[completeness["status"] != "complete"].itertuples():
        print(f"{row.status:10s} {row.path}  {row.detail}")
    return 0


def concat_main(args) -> int:
    summary, completeness = read_cells(args.cells)
    write(summary, completeness, args.out, args.completeness)
    print(json.dumps({"cells": len(args.cells), **counts(completeness),
                      "expected": len(completeness)}))
    return 0
