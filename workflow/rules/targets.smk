# Named targets besides `all` (see workflow/README.md). All act on the budget `budget`.


rule mujoco:
    input:
        target_inputs(grid.MUJOCO, figures=[*curves(grid.MUJOCO), "iqm"]),


rule kitchen:
    input:
        target_inputs(grid.KITCHEN, figures=[*curves(grid.KITCHEN), "kitchen"]),


rule ablation_tanh:
    input:
        target_inputs(variants=("fmer", "fmer-no-tanh"), figures=["ablation_tanh"]),


rule ablation_ess:
    input:
        target_inputs(variants=("fmer", "fmer-no-ess"), figures=["ablation_ess"]),


rule ablation:
    input:
        target_inputs(variants=grid.ABLATION,
                      figures=["ablation_returns", "ablation_ess", "ablation_tanh"]),


# One target per benchmark: its runs (all variants) and its learning curves.
BENCHMARK_TARGETS = {
    "hopper": "Hopper-v5",
    "halfcheetah": "HalfCheetah-v5",
    "walker2d": "Walker2d-v5",
    "humanoid": "Humanoid-v5",
    "kitchen_1": "kitchen-1",
    "kitchen_4": "kitchen-4",
    "kitchen_7": "kitchen-7",
    "multigoal": "multigoal-2d",
}
for _target, _env in BENCHMARK_TARGETS.items():

    rule:
        name:
            _target
        input:
            target_inputs([_env], figures=benchmark_figures(_env)),


# From the logs on disk only: never trains. Missing and incomplete runs are listed in
# results/BUDGET/completeness.csv and written on the face of each figure built without them.
rule figures:
    input:
        existing(run_files(RUNS[BUDGET])),
        RANDOM_SCORES,
        REPORTED,
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
