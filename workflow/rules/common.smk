# The grid of every budget, the artifacts built from it, and the commands that build them.
from snakemake.exceptions import WorkflowError

from fmer.analysis import cost, grid
from fmer.config import ConfigError

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
    grid.budget_config(config, BUDGET)
    for _name in config["budgets"]:
        grid.check(config, _name)
except ConfigError as exc:
    raise WorkflowError(f"invalid workflow config: {exc}") from None

RUNS = {name: grid.runs(config, name) for name in config["budgets"]}
RUN_INDEX = {(r.budget, r.env, r.variant, r.seed): r for rs in RUNS.values() for r in rs}
RUN_FILES = ("meta.json", "eval.csv", "train.csv")
RANDOM_SCORES = "results/random_scores.csv"
REPORTED = os.path.join(workflow.basedir, "..", "paper", "reported.csv")


wildcard_constraints:
    budget="|".join(config["budgets"]),
    env="|".join(grid.BENCHMARKS),
    variant="|".join({r.variant for rs in RUNS.values() for r in rs} | set(grid.VARIANTS)),
    seed=r"\d+",


def lookup_run(wildcards):
    key = (wildcards.budget, wildcards.env, wildcards.variant, int(wildcards.seed))
    if key not in RUN_INDEX:
        raise WorkflowError(f"{grid.run_path(*key)} is not in the grid of budget "
                            f"{wildcards.budget!r} (workflow/config/config.yaml)")
    return RUN_INDEX[key]


def run_files(runs):
    """What a figure needs of each run: its logs, and for multigoal its action samples."""
    files = [f"{r.path}/{name}" for r in runs for name in RUN_FILES]
    files += [f"{r.path}/samples.csv" for r in runs if r.env == grid.MULTIGOAL]
    return files


def dirs(runs):
    return " ".join(r.path for r in runs)


# --- the figures of a budget: name -> (runs it shows, extra inputs) --------------------------
def figures_of(budget):
    runs = RUNS[budget]
    base = ("fmer", "sac")
    ablation_envs = sorted({r.env for r in runs if r.variant in grid.ABLATION[1:]},
                           key=grid.BENCHMARKS.index)
    figs = {}
    for env in grid.BENCHMARKS:
        shown = grid.select(runs, envs=[env], variants=base)
        if shown:
            figs[f"curve_{env}"] = (shown, [])
    if ablation_envs:
        figs["ablation_returns"] = (grid.select(runs, ablation_envs, grid.ABLATION), [])
        figs["ablation_ess"] = (grid.select(runs, ablation_envs, ("fmer", "fmer-no-ess")), [])
        figs["ablation_tanh"] = (grid.select(runs, ablation_envs, ("fmer", "fmer-no-tanh")), [])
    for name, envs, extra in (("kitchen", grid.KITCHEN, []),
                              ("multigoal", (grid.MULTIGOAL,), []),
                              ("iqm", grid.MUJOCO, [RANDOM_SCORES])):
        shown = grid.select(runs, envs, base)
        if shown:
            figs[name] = (shown, extra)
    return figs


def figure_kind(name):
    return name.split("_")[0] if name.startswith("curve_") else name


def figure_paths(budget, names=None):
    names = figures_of(budget) if names is None else names
    return [f"figures/{budget}/{n}.{ext}" for n in names for ext in ("png", "pdf")]


def figure_cmd(budget, name):
    runs, extra = figures_of(budget)[name]
    random = f" --random-scores {RANDOM_SCORES}" if RANDOM_SCORES in extra else ""
    return (f"fmer figure {figure_kind(name)} --budget {budget}{random}"
            f" --out figures/{budget}/{name} {dirs(runs)}")


def summary_paths(budget):
    return [f"results/{budget}/summary.csv", f"results/{budget}/completeness.csv"]


def table_paths(budget):
    return [f"paper/{budget}/results.md", f"paper/{budget}/results.tex"]


def aggregate_cmd(budget):
    summary, completeness = summary_paths(budget)
    return (f"fmer aggregate --budget {budget} --out {summary} --completeness {completeness}"
            f" {dirs(RUNS[budget])}")


def tables_cmd(budget):
    summary, completeness = summary_paths(budget)
    return (f"fmer tables --budget {budget} --summary {summary} --completeness {completeness}"
            f" --reported {REPORTED} --out paper/{budget}/results")


def target_inputs(envs=None, variants=None, figures=()):
    runs = grid.select(RUNS[BUDGET], envs, variants)
    names = [n for n in figures if n in figures_of(BUDGET)]
    return run_files(runs) + figure_paths(BUDGET, names)


def curves(envs):
    return [f"curve_{env}" for env in envs]


def benchmark_figures(env):
    return curves([env]) + (["multigoal"] if env == grid.MULTIGOAL else [])


def existing(files):
    """The files that are on disk now: what `figures` may read without training."""
    return [f for f in files if os.path.exists(f)]
