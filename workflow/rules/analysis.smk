# Logs -> one summary per (env, variant) cell -> figures; the cells concatenated -> tables.
# Each artifact reads only the cells it shows, so a target such as `kitchen` trains and plots
# the kitchen runs alone.


rule random_scores:
    output:
        RANDOM_SCORES,
    log:
        "logs/random_scores.log",
    params:
        envs=" ".join(MUJOCO_BENCHMARKS),
    resources:
        runtime=10,
    conda:
        "../envs/fmer.yaml"
    shell:
        "fmer random-scores --out {output} {params.envs} > {log} 2>&1"


# One (env, variant) cell from its runs' logs: what a figure reads, so that a figure needs the
# runs it draws only (a target such as `kitchen` trains no other run).
rule cell_summary:
    input:
        cell_logs,
    output:
        summary="results/{budget}/summary/{env}/{variant}.csv",
        completeness="results/{budget}/completeness/{env}/{variant}.csv",
        estimates="results/{budget}/estimates/{env}/{variant}.csv",
    log:
        "logs/{budget}/summary/{env}/{variant}.log",
    params:
        runs=lambda wc: dirs(cell_runs(wc.budget, wc.env, wc.variant)),
        budgets=lambda wc, output: BUDGETS_FILE,  # not recorded: as in rule train
    localrule: True
    conda:
        "../envs/fmer.yaml"
    shell:
        "fmer aggregate --budgets {params.budgets} --budget {wildcards.budget}"
        " --out {output.summary} --completeness {output.completeness}"
        " --estimates {output.estimates} {params.runs} > {log} 2>&1"


# The budget's summary and estimates, for the tables and other readers: the concatenation of
# its cells.
rule summary:
    input:
        lambda wc: cell_files(wc.budget, RUNS[wc.budget]),
    output:
        summary="results/{budget}/summary.csv",
        completeness="results/{budget}/completeness.csv",
        estimates="results/{budget}/estimates.csv",
    log:
        "logs/{budget}/summary.log",
    params:
        cells=lambda wc: cell_args(wc.budget, RUNS[wc.budget]),
    localrule: True
    conda:
        "../envs/fmer.yaml"
    shell:
        "fmer concat-summaries --out {output.summary} --completeness {output.completeness}"
        " --estimates {output.estimates} {params.cells} > {log} 2>&1"


rule figure:
    input:
        lambda wc: figure_inputs(wc.budget, wc.name),
    output:
        png=report("figures/{budget}/{name}.png", caption="../report/figure.rst",
                   category="Figures", subcategory="{budget}"),
        pdf="figures/{budget}/{name}.pdf",
    log:
        "logs/{budget}/figure_{name}.log",
    params:
        kind=lambda wc: figure_kind(wc.name),
        cells=lambda wc: cell_args(wc.budget, figures_of(wc.budget)[wc.name][0]),
        options=lambda wc: figure_options(wc.budget, wc.name, figure_samples(wc.budget, wc.name)),
        # the report caption: the runs complete now (a figure is rebuilt when its runs change)
        shown=lambda wc: shown_caption(wc.budget, wc.name),
    wildcard_constraints:
        name=r"[A-Za-z0-9_.\-]+",
    localrule: True
    conda:
        "../envs/fmer.yaml"
    shell:
        "fmer figure {params.kind} --budget {wildcards.budget} --out figures/{wildcards.budget}/"
        "{wildcards.name} {params.cells} {params.options} > {log} 2>&1"


rule tables:
    input:
        estimates="results/{budget}/estimates.csv",
        completeness="results/{budget}/completeness.csv",
        reported=REPORTED,
        # fmer bench's side-by-side update timing, committed: the cost claim's verdict reads it
        performance=PERFORMANCE,
        # read by the multimodality verdict from each complete multigoal run's directory
        goals=lambda wc: existing_if_figures_only(goal_files(RUNS[wc.budget])),
    output:
        md=report("paper/{budget}/results.md", caption="../report/tables.rst",
                  category="Tables", subcategory="{budget}"),
        tex="paper/{budget}/results.tex",
    log:
        "logs/{budget}/tables.log",
    localrule: True
    conda:
        "../envs/fmer.yaml"
    shell:
        "fmer tables --budget {wildcards.budget} --estimates {input.estimates}"
        " --completeness {input.completeness} --reported {input.reported}"
        " --performance {input.performance} --out paper/{wildcards.budget}/results > {log} 2>&1"


# The coverage of the intervals over seeds (paper/intervals.md): a simulation, no inputs, so an
# existing page is never made again (delete it, or --forcerun, to make it anew). Not in `all`.
rule intervals_study:
    output:
        page="paper/intervals.md",
        csv="paper/intervals.csv",
    log:
        "logs/intervals_study.log",
    localrule: True
    conda:
        "../envs/fmer.yaml"
    shell:
        "fmer intervals-study --page {output.page} --csv {output.csv} > {log} 2>&1"
