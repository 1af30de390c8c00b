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


# From the logs on disk only: never trains. Missing and incomplete runs are listed in
# results/BUDGET/completeness.csv and written on the face of each figure built without them.
rule figures:
    input:
        existing(run_files(RUNS[BUDGET])),
        RANDOM_SCORES,
        REPORTED,
        PERFORMANCE,
    log:
        f"logs/{BUDGET}/figures.log",
    params:
        cmds=" && ".join([aggregate_cmd(BUDGET), tables_cmd(BUDGET)]
                         + [figure_cmd(BUDGET, n) for n in figures_of(BUDGET)]),
    localrule: True
    conda:
        "../envs/fmer.yaml"
    shell:
        "({params.cmds}) > {log} 2>&1"
