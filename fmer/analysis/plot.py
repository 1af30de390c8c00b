"""``fmer plot RUN_DIR...``: one page per set of runs, for looking at runs while working.

Any run directory, complete or still training (``RUN/.train/`` of the workflow included),
wherever it lives: its evaluation curve and every column of its train.csv (losses, α, entropy,
τ, ESS/N, saturation, speed), one colour per run. Unlike ``fmer figure`` (the paper's figures,
from verified runs only, with intervals over seeds), it draws each run as logged.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from fmer.analysis.figures import RETURN, STEPS, TASKS  # noqa: E402
from fmer.envs import KITCHEN_TASKS  # noqa: E402
from fmer.runlog import RunLogError, read_meta  # noqa: E402

COLUMNS = 3


def load(run_dir: str | Path) -> tuple[str, pd.DataFrame, pd.DataFrame, dict]:
    """(label, eval, train, meta) of the run in ``run_dir`` or, still training, its .train/;
    RunLogError naming the directory if it holds no run."""
    run_dir = Path(run_dir)
    for where in (run_dir, run_dir / ".train"):
        if (where / "meta.json").exists():
            meta = read_meta(where / "meta.json")
            frames = [pd.read_csv(where / name) if (where / name).exists() else pd.DataFrame()
                      for name in ("eval.csv", "train.csv")]
            label = f"{run_dir} ({meta['env']} {meta['variant']} seed {meta['seed']}"
            label += ")" if meta["status"] == "complete" else f", {meta['status']})"
            return label, frames[0], frames[1], meta
    raise RunLogError(f"{run_dir}: no run here (no meta.json in it or in its .train/)")


def plot(run_dirs, out: str | Path) -> Path:
    """Refuses, before drawing anything, if any of ``run_dirs`` holds no run."""
    runs, bad = [], []
    for run_dir in run_dirs:
        try:
            runs.append(load(run_dir))
        except RunLogError as exc:
            bad.append(str(exc))
    if bad:
        raise RunLogError("\n  ".join(bad))
    kitchen = all(meta["env"] in KITCHEN_TASKS for *_, meta in runs)
    metric, label = ("tasks_completed_mean", TASKS) if kitchen else ("return_mean", RETURN)
    columns = list(dict.fromkeys(c for _, _, train, _ in runs for c in train.columns
                                 if c != "step"))
    panels = [("eval", metric, label)] + [("train", c, c) for c in columns]
    rows = math.ceil(len(panels) / COLUMNS)
    legend_in = 0.25 + 0.18 * len(runs)  # inches below the panels, one legend line per run
    height = 3 * rows + legend_in
    fig, axes = plt.subplots(rows, COLUMNS, figsize=(5 * COLUMNS, height), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, (source, column, ylabel) in zip(axes.flat, panels, strict=False):
        for i, (name, evals, train, _) in enumerate(runs):
            frame = evals if source == "eval" else train
            if column in frame and frame[column].notna().any():
                ax.plot(frame["step"], frame[column], color=colors(i % 10), label=name,
                        marker="o" if source == "eval" else None, markersize=3)
        ax.set(xlabel=STEPS, title=column)
        ax.set_ylabel(ylabel if source == "eval" else "", fontsize=8)
        if source == "train" and column in ("tau", "alpha"):
            ax.set_yscale("log")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    # one entry per run, drawn or not yet (a run that has not evaluated yet)
    handles = [Line2D([], [], color=colors(i % 10)) for i in range(len(runs))]
    fig.legend(handles, [name for name, *_ in runs], loc="lower center", fontsize=8)
    fig.suptitle("evaluation (top left) and training diagnostics of train.csv, as logged")
    fig.tight_layout(rect=(0, legend_in / height, 1, 0.97))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
