"""Run directories -> one tidy table (a row per run and evaluation step), a completeness
report (which of the expected runs are complete, stale, incomplete, failed or missing) and the
estimates table computed from the tidy one (fmer.analysis.estimates), which is all the figures,
tables and verdicts read of the runs.

Only runs that ``fmer.runlog.load_run`` verifies (complete, hashes intact) enter the table;
everything else is listed with the reason, never filled in. "failed" is a run that will not
complete (a non-finite value, which would recur); one interrupted by a signal is "incomplete".
"stale" is a complete run at a path of the budget's grid whose config (as its meta.json
records it) is no longer what the budget gives that run, on a key that can change its numbers
(``fmer.config.result_diff``): trained before the budget or the package defaults changed. It
is a run of another experiment, so it is not drawn; retrain it (delete it, then snakemake).
A run at a grid path is named by its path: one copied from another budget (say, the defaults
study) with the same config is that budget's run; ``trained_as`` says what it was trained as
(its meta.json's budget and variant), and every figure and table that draws it says so.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fmer import budgets
from fmer.analysis import estimates
from fmer.config import Config, ConfigError, config_from_dict, result_diff
from fmer.envs import BENCHMARKS
from fmer.runlog import RunLogError, load_run, read_meta, verify_run

KEYS = ["env", "variant", "seed"]
COMPLETENESS_COLUMNS = [*KEYS, "path", "status", "last_step", "detail", "trained_as"]
STATUS_ORDER = ("complete", "stale", "incomplete", "failed", "missing")


def parse_run_path(run_dir: str | Path) -> dict:
    """``.../{env}/{variant}/seed{seed}`` -> env, variant, seed: the workflow's layout."""
    parts = Path(run_dir).parts
    if len(parts) < 3 or not parts[-1].startswith("seed") or not parts[-1][4:].isdigit():
        raise ValueError(f"{run_dir}: not a run path of the form .../ENV/VARIANT/seedN")
    return {"env": parts[-3], "variant": parts[-2], "seed": int(parts[-1][4:])}


def grid_identity(run_dir: str | Path, budget: str) -> dict | None:
    """env, variant, seed of a path of the budget's grid (``.../BUDGET/ENV/VARIANT/seedN``
    with a known benchmark), else None."""
    try:
        where = parse_run_path(run_dir)
    except ValueError:
        return None
    parts = Path(run_dir).parts
    if len(parts) < 4 or parts[-4] != budget or where["env"] not in BENCHMARKS:
        return None
    return where


def run_identity(run_dir: str | Path, budget: str) -> dict:
    """env, variant, seed of a RUN_DIR: from its path when that is one of the budget's grid
    (``.../BUDGET/ENV/VARIANT/seedN``, trained or not); else from its meta.json (in RUN or,
    for a run in progress, RUN/.train), e.g. ``fmer train --out runs/hopper``. Anything else,
    e.g. a misspelled path, is refused naming it."""
    where = grid_identity(run_dir, budget)
    if where is not None:
        return where
    for inside in (Path(run_dir), Path(run_dir) / ".train"):
        try:
            meta = read_meta(inside / "meta.json")
        except RunLogError:
            continue
        return {key: meta[key] for key in KEYS}
    raise RunLogError(f"{run_dir}: no run here (no meta.json), and not a path of budget "
                      f"{budget}'s grid (.../{budget}/ENV/VARIANT/seedN with ENV one of "
                      f"{', '.join(BENCHMARKS)}); misspelled?")


def config_change(meta: dict, expected: Config) -> str:
    """How the config a run was trained with (its meta.json) differs from ``expected`` on keys
    that can change its numbers, as "key (run V, budget W), ..."; "" if it does not."""
    try:
        trained = config_from_dict(meta["config"])
    except ConfigError as exc:  # e.g. a key this version no longer has
        return f"its config is not one this version can train ({exc})"
    old, new = trained.flat(), expected.flat()
    return ", ".join(f"{key} (run {old[key]!r}, budget {new[key]!r})"
                     for key in result_diff(trained, expected))


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


def run_table(run_dir: str | Path, where: dict | None = None) -> pd.DataFrame:
    """One verified run: its evaluations, each with the training metrics logged last at or
    before that step (train.csv is logged every log_every steps, eval.csv every eval_every);
    named by ``where`` (env, variant, seed; default: its meta.json)."""
    meta, evals, train = load_run(run_dir)
    where = where or meta
    train = train.drop(columns=["updates_per_s", "env_steps_per_s"])
    table = pd.merge_asof(evals.sort_values("step"), train.sort_values("step"), on="step",
                          direction="backward")
    table.insert(0, "seed", where["seed"])
    table.insert(0, "variant", where["variant"])
    table.insert(0, "env", where["env"])
    table["total_steps"] = meta["config"]["train"]["total_steps"]
    return table


def aggregate(run_dirs: list[str | Path], budget: str,
              grid: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, completeness) of the expected ``run_dirs`` of ``budget`` in the workflow
    config ``grid`` (default: ``fmer.budgets.load()``, the checkout's); RunLogError, before
    any work, naming each RUN_DIR that is neither a run nor a path of the budget's grid."""
    grid = budgets.load() if grid is None else grid
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
        where = {key: row[key] for key in KEYS}
        try:
            table = run_table(run_dir, where)
        except RunLogError:
            status, detail, last = _status(run_dir)
            report.append(row | {"status": status, "last_step": last, "detail": detail})
            continue
        trained_as = ""
        if grid_identity(run_dir, budget) is not None:
            expected = budgets.run(grid, budget, *(where[key] for key in KEYS)).config()
            meta = read_meta(run_dir / "meta.json")
            changed = config_change(meta, expected)
            if changed:
                report.append(row | {"status": "stale", "last_step": float(table["step"].iloc[-1]),
                                     "detail": f"trained with another config: {changed}"})
                continue
            if (meta.get("budget"), meta["variant"]) != (budget, where["variant"]):
                trained_as = f"runs of budget {meta.get('budget')} ({meta['variant']})"
        tables.append(table)
        report.append(row | {"status": "complete", "last_step": float(table["step"].iloc[-1]),
                             "detail": "", "trained_as": trained_as})
    completeness = pd.DataFrame(report, columns=COMPLETENESS_COLUMNS).fillna(
        {"detail": "", "trained_as": ""})
    if tables:
        summary = pd.concat(tables, ignore_index=True)
    else:
        summary = pd.DataFrame(columns=[*KEYS, "step"])
    return summary, completeness


def read_completeness(paths) -> pd.DataFrame:
    """The concatenation of completeness files, in that order."""
    return pd.concat([pd.read_csv(p, keep_default_na=False, na_values={"last_step": [""]})
                      for p in paths], ignore_index=True)


def read_cells(cells) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(summary, completeness, estimates) of ``cells``, (summary CSV, completeness CSV,
    estimates CSV) triples written by ``fmer aggregate`` (the workflow's: one per (env,
    variant), results/BUDGET/{summary,completeness,estimates}/ENV/VARIANT.csv), concatenated in
    that order."""
    tables = [pd.read_csv(summary) for summary, *_ in cells]
    # a cell with no complete run is a header only: it adds no rows, and no columns to the rest
    rows = [t for t in tables if len(t)]
    summary = (pd.concat(rows, ignore_index=True) if rows
               else pd.DataFrame(columns=[*KEYS, "step"]))
    return (summary, read_completeness([c[1] for c in cells]),
            estimates.read([c[2] for c in cells]))


def write(summary: pd.DataFrame, completeness: pd.DataFrame, table: pd.DataFrame, out,
          completeness_out, estimates_out) -> None:
    for path in (out, completeness_out):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out, index=False)
    completeness.to_csv(completeness_out, index=False)
    estimates.write(table, estimates_out)


def counts(completeness: pd.DataFrame) -> dict[str, int]:
    found = completeness["status"].value_counts()
    return {s: int(found.get(s, 0)) for s in STATUS_ORDER}


def others_text(c: dict[str, int]) -> str:
    """The runs that are not complete, by status: "incomplete 1, failed 0, missing 2" (and
    "stale N" first when there are any)."""
    return ", ".join(f"{s} {c[s]}" for s in STATUS_ORDER[1:] if s != "stale" or c[s])


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


def reused_note(completeness: pd.DataFrame) -> str:
    """The runs copied from another budget (same config), by what they were trained as:
    "reused: Hopper-v5 fmer seed 0,1,2 are runs of budget defaults (fmer-n16-sall-eall),
    copied (same config)"; "" if none."""
    if "trained_as" not in completeness:  # a completeness file from before the column
        return ""
    reused = completeness[(completeness["status"] == "complete")
                          & completeness["trained_as"].notna()
                          & (completeness["trained_as"].astype(str) != "")]
    parts = []
    for trained_as, runs in reused.groupby("trained_as", sort=False):
        seeds = runs.groupby(["env", "variant"], sort=False)["seed"].apply(
            lambda s: ",".join(map(str, sorted(s))))
        listed = "; ".join(f"{e} {v} seed {s}" for (e, v), s in seeds.items())
        parts.append(f"{listed} are {trained_as}, copied (same config)")
    return "reused: " + ". ".join(parts) if parts else ""
