# The grid of every budget and what the rules take of it: paths, inputs and params.
import csv

from snakemake.exceptions import WorkflowError

from fmer import budgets
from fmer.analysis import cost
from fmer.config import VARIANTS, ConfigError, load_yaml
from fmer.envs import BENCHMARKS, KITCHEN_BENCHMARKS, MUJOCO_BENCHMARKS, MULTIGOAL
from fmer.runlog import RUN_FILES

# `fmer` from the environment running Snakemake, even when that venv is not activated
# (a conda env, with --sdm conda, still comes first: Snakemake prepends it per job).
envvars:
    "PATH",


_path = os.environ["PATH"]
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), _path])

BUDGET = config["budget"]
# Runs on `cuda` or `auto` may train on a GPU: each asks SLURM for one (GPU_GRES) and takes a
# `gpu_runs` unit. That resource is local: SLURM's GPU jobs each get their own pool of it (a
# group of runs sharing one GPU), a workstation's runs share one pool (its GPU).
WANTS_GPU = config["device"] != "cpu"
GPU_GRES = "gpu:1"
try:
    budgets.budget_config(config, BUDGET)
    for _name in config["budgets"]:
        budgets.check(config, _name)
except ConfigError as exc:
    raise WorkflowError(f"invalid workflow config: {exc}") from None

# fmer train reads its budget from a file (--budgets), as it does when run by hand: the config
# file this workflow's budgets came from (a --configfile, or the workflow's own).
BUDGETS_FILE = next((os.path.abspath(f) for f in [*reversed(workflow.overwrite_configfiles),
                                                  os.path.join(workflow.basedir, "..",
                                                               "config", "config.yaml")]
                     if load_yaml(f).get("budgets") == config["budgets"]), None)
if BUDGETS_FILE is None:
    raise WorkflowError("the budgets differ from every config file (changed with --config?): "
                        "fmer train reads them from a file, so edit one and pass --configfile")

# The runs of blocks that belong to a named target (budgets.TARGETS), per budget and target:
# trained by that target, not by `all`.
TARGET_RUNS = {name: {t: budgets.target_runs(config, name, t) for t in budgets.TARGETS}
               for name in config["budgets"]}
# What `all`, the summary, figures and tables of a budget take: its grid, and the runs of its
# targets that are complete (RUN/meta.json appears only then), so that those are shown once
# there and never trained by `all`.
RUNS = {name: budgets.runs(config, name)
        + [r for rs in TARGET_RUNS[name].values() for r in rs
           if os.path.exists(f"{r.path}/meta.json")]
        for name in config["budgets"]}
RUN_INDEX = {(r.budget, r.env, r.variant, r.seed): r
             for rs in [*RUNS.values(), *(rs for t in TARGET_RUNS.values() for rs in t.values())]
             for r in rs}
RANDOM_SCORES = "results/random_scores.csv"
REPORTED = os.path.join(workflow.basedir, "..", "paper", "reported.csv")
# fmer bench's timing, made by hand on quiet cores with the command its page names
# (paper/performance.md), never by the workflow: timing needs a machine at rest
PERFORMANCE = os.path.join(workflow.basedir, "..", "paper", "performance.csv")


wildcard_constraints:
    budget="|".join(config["budgets"]),
    env="|".join(BENCHMARKS),
    variant="|".join({r.variant for rs in RUNS.values() for r in rs} | set(VARIANTS)),
    seed=r"\d+",


def lookup_run(wildcards):
    key = (wildcards.budget, wildcards.env, wildcards.variant, int(wildcards.seed))
    if key not in RUN_INDEX:
        raise WorkflowError(f"{budgets.run_path(*key)} is not in the grid of budget "
                            f"{wildcards.budget!r} (config/config.yaml)")
    return RUN_INDEX[key]


def run_files(runs):
    """What a figure or table needs of each run: its logs, and for multigoal its action samples
    and the goals its episodes reach (the multimodality verdict)."""
    return log_files(runs) + sample_files(runs) + goal_files(runs)


def log_files(runs):
    return [f"{r.path}/{name}" for r in runs for name in RUN_FILES]


def sample_files(runs):
    return [f"{r.path}/samples.csv" for r in runs if r.env == MULTIGOAL]


def goal_files(runs):
    return [f"{r.path}/goals.csv" for r in runs if r.env == MULTIGOAL]


def dirs(runs):
    return " ".join(r.path for r in runs)


# --- the summary of a budget: one cell per (env, variant), then their concatenation ----------
def cells_of(runs):
    """The (env, variant) cells of `runs`, in the order of their first run."""
    return list(dict.fromkeys((r.env, r.variant) for r in runs))


CELL_TABLES = ("summary", "completeness", "estimates")


def cell_paths(budget, env, variant):
    """A cell's (summary, completeness, estimates): what fmer aggregate writes of it."""
    return tuple(f"results/{budget}/{table}/{env}/{variant}.csv" for table in CELL_TABLES)


def cell_runs(budget, env, variant):
    runs = budgets.select(RUNS[budget], envs=[env], variants=[variant])
    if not runs:
        raise WorkflowError(f"budget {budget!r} has no run of {variant} on {env} "
                            "(config/config.yaml)")
    return runs


def figures_only():
    """Whether `figures` is this invocation's target: then every input that a run's files make
    is one on disk now, so that no job can train. Read from the targets given to Snakemake
    (known once the DAG is built, where input functions run), never combined with another."""
    targets = set(workflow.dag_settings.targets) if workflow.dag_settings else set()
    if "figures" in targets and len(targets) > 1:
        raise WorkflowError("the `figures` target never trains, so it runs alone: "
                            f"snakemake figures, then the others ({', '.join(sorted(targets))})")
    return targets == {"figures"}


def existing_if_figures_only(files):
    """`files`, or for the `figures` target only those on disk."""
    return existing(files) if figures_only() else files


def cell_logs(wildcards):
    """A cell summary's inputs: its runs' logs (for the `figures` target: those on disk).
    Logs are never edited once a run is complete, so their mtimes (a fresh clone's checkout
    order) must not re-aggregate a shipped cell: `ancient`. Unless the cell's completeness
    lacks a run (a cell made by the `figures` target without it): then the logs of a run
    completed since are newer than the cell, and the cell is made again."""
    files = existing_if_figures_only(
        log_files(cell_runs(wildcards.budget, wildcards.env, wildcards.variant)))
    _, completeness, _ = cell_paths(wildcards.budget, wildcards.env, wildcards.variant)
    if os.path.exists(completeness):
        with open(completeness) as f:
            status = [row["status"] for row in csv.DictReader(f)]
        if status and all(s == "complete" for s in status):
            return [ancient(f) for f in files]
    return files


def cell_files(budget, runs):
    return [path for cell in cells_of(runs) for path in cell_paths(budget, *cell)]


def cell_args(budget, runs):
    """`--cell SUMMARY COMPLETENESS ESTIMATES` per cell of `runs`: the arguments of fmer figure
    and fmer concat-summaries."""
    return " ".join("--cell " + " ".join(cell_paths(budget, *cell)) for cell in cells_of(runs))


# --- the figures of a budget: name -> (runs it shows, extra inputs) --------------------------
def figures_of(budget):
    runs = RUNS[budget]
    base = budgets.MAIN  # FMER, both SACs (fmer.analysis.verdicts) and QVPO

    def envs_with(variants):  # the benchmarks where the budget runs any of these variants
        return sorted({r.env for r in runs if r.variant in variants}, key=BENCHMARKS.index)

    ablation_envs = envs_with(budgets.ABLATION[1:])
    weights_envs = envs_with(budgets.WEIGHTING[1:])
    figs = {}
    for env in BENCHMARKS:
        shown = budgets.select(runs, envs=[env], variants=base)
        if shown:
            figs[f"curve_{env}"] = (shown, [])
    if ablation_envs:
        figs["ablation_returns"] = (budgets.select(runs, ablation_envs, budgets.ABLATION), [])
        figs["ablation_ess"] = (budgets.select(runs, ablation_envs, ("fmer", "fmer-no-ess")), [])
        figs["ablation_tanh"] = (budgets.select(runs, ablation_envs, ("fmer", "fmer-no-tanh")), [])
    if weights_envs:
        figs["ablation_weights"] = (budgets.select(runs, weights_envs, budgets.WEIGHTING), [])
    for name, envs, extra in (("kitchen", KITCHEN_BENCHMARKS, [REPORTED]),
                              ("multigoal", (MULTIGOAL,), []),
                              ("iqm", MUJOCO_BENCHMARKS, [RANDOM_SCORES, REPORTED])):
        shown = budgets.select(runs, envs, base)
        if shown:
            figs[name] = (shown, extra)
    return figs


def shown_caption(budget, name):
    """What figure `name` shows, for its report caption: the variants with complete runs
    (RUN/meta.json exists only once a run is complete) and the seeds of each."""
    runs, _ = figures_of(budget)[name]
    parts = []
    for variant in dict.fromkeys(r.variant for r in runs):
        mine = [r for r in runs if r.variant == variant]
        done = [r for r in mine if os.path.exists(f"{r.path}/meta.json")]
        envs = sorted({r.env for r in done}, key=BENCHMARKS.index)
        parts.append(f"{variant}: {len(done)} of {len(mine)} runs"
                     + (f" ({', '.join(envs)})" if done and len(envs) > 1 else ""))
    return "; ".join(parts)


def figure_kind(name):
    return name.split("_")[0] if name.startswith("curve_") else name


def figure_paths(budget, names=None):
    names = figures_of(budget) if names is None else names
    return [f"figures/{budget}/{n}.{ext}" for n in names for ext in ("png", "pdf")]


def figure_samples(budget, name):
    """The action samples figure `name` draws: the multigoal figure's runs' (not the curve's)."""
    runs, _ = figures_of(budget)[name]
    if figure_kind(name) != "multigoal":
        return []
    return existing_if_figures_only(sample_files(runs))


def figure_inputs(budget, name):
    """What figure `name` reads: the cells it draws, its extra files, its action samples."""
    runs, extra = figures_of(budget)[name]
    return cell_files(budget, runs) + extra + figure_samples(budget, name)


def figure_options(budget, name, samples):
    """fmer figure's options besides the cells: its extra files, and `samples`."""
    _, extra = figures_of(budget)[name]
    flags = {RANDOM_SCORES: "--random-scores", REPORTED: "--reported"}
    options = [f"{flags[path]} {path}" for path in extra]
    if samples:
        options.append("--samples " + " ".join(samples))
    return " ".join(options)


def summary_paths(budget):
    """The budget's (summary, completeness, estimates): the concatenation of its cells'."""
    return [f"results/{budget}/{table}.csv" for table in CELL_TABLES]


def table_paths(budget):
    return [f"paper/{budget}/results.md", f"paper/{budget}/results.tex"]


def target_inputs(envs=None, variants=None, figures=()):
    runs = budgets.select(RUNS[BUDGET], envs, variants)
    names = [n for n in figures if n in figures_of(BUDGET)]
    return run_files(runs) + figure_paths(BUDGET, names)


def target_figures(names):
    """A named target's inputs: figures `names` of the budget (those it has) and exactly the
    runs they draw."""
    figs = figures_of(BUDGET)
    names = [n for n in names if n in figs]
    runs = {r.path: r for n in names for r in figs[n][0]}
    return run_files(runs.values()) + figure_paths(BUDGET, names)


def curves(envs):
    return [f"curve_{env}" for env in envs]


def benchmark_figures(env):
    return curves([env]) + (["multigoal"] if env == MULTIGOAL else [])


def existing(files):
    """The files that are on disk now: what the `figures` target may read without training."""
    return [f for f in files if os.path.exists(f)]
