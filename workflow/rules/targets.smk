# Named targets besides `all` (see workflow/README.md). All act on the budget `budget`.


# Each of these runs only what its figures draw (common.smk, figures_of).
rule mujoco:
    input:
        target_figures([*curves(MUJOCO_BENCHMARKS), "iqm"]),


rule kitchen:
    input:
        target_figures([*curves(KITCHEN_BENCHMARKS), "kitchen"]),


# QVPO, the paper's diffusion baseline: every QVPO run of the budget, the grid's and those of
# the blocks that belong to this target (mini's: not part of `all`, see config.yaml). The
# summary, figures and tables show them once complete (`snakemake figures` after this).
rule qvpo:
    input:
        run_files(
            {
                r.path: r
                for r in budgets.select(
                    [*RUNS[BUDGET], *TARGET_RUNS[BUDGET]["qvpo"]], variants=["qvpo"]
                )
            }.values()
        ),


rule ablation_tanh:
    input:
        target_figures(["ablation_tanh"]),


rule ablation_ess:
    input:
        target_figures(["ablation_ess"]),


rule ablation_weights:
    input:
        target_figures(["ablation_weights"]),


rule ablation:
    input:
        target_figures(["ablation_returns", "ablation_ess", "ablation_tanh", "ablation_weights"]),


# One target per benchmark, named for it (hopper, ..., kitchen_1, ..., multigoal): its runs
# (all variants) and its learning curves.
for _env in BENCHMARKS:

    rule:
        name:
            re.sub(r"-(v\d+|2d)$", "", _env).lower().replace("-", "_")
        input:
            target_inputs([_env], figures=benchmark_figures(_env)),


# The summary, figures and tables from the runs on disk only: never trains. The same rules as
# `all`'s, but with this target alone every input made of a run's files is one on disk
# (common.smk, figures_only), so no job of rule train, samples or goals is in its DAG, and the
# start of the workflow stops if one were (Snakefile, onstart). A cell whose logs did not change
# since it was made (the committed ones) is read as it is; one that is missing, or lacked a run
# that has logs now, is made from the logs on disk. Missing and incomplete runs are listed in
# results/BUDGET/completeness.csv and written on the face of each figure built without them.
rule figures:
    input:
        summary_paths(BUDGET),
        figure_paths(BUDGET),
        table_paths(BUDGET),
