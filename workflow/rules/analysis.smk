# Logs -> tidy table -> figures and tables. Each artifact reads only the runs it shows, so a
# target such as `kitchen` trains and plots the kitchen runs alone.


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


rule summary:
    input:
        lambda wc: run_files(RUNS[wc.budget]),
    output:
        summary="results/{budget}/summary.csv",
        completeness="results/{budget}/completeness.csv",
    log:
        "logs/{budget}/summary.log",
    params:
        cmd=lambda wc: aggregate_cmd(wc.budget),
    localrule: True
    conda:
        "../envs/fmer.yaml"
    shell:
        "{params.cmd} > {log} 2>&1"


rule figure:
    input:
        lambda wc: run_files(figures_of(wc.budget)[wc.name][0]) + figures_of(wc.budget)[wc.name][1],
    output:
        png=report("figures/{budget}/{name}.png", caption="../report/figure.rst",
                   category="Figures", subcategory="{budget}"),
        pdf="figures/{budget}/{name}.pdf",
    log:
        "logs/{budget}/figure_{name}.log",
    params:
        cmd=lambda wc: figure_cmd(wc.budget, wc.name),
        # the report caption: the runs complete now (a figure is rebuilt when its runs change)
        shown=lambda wc: shown_caption(wc.budget, wc.name),
    wildcard_constraints:
        name=r"[A-Za-z0-9_.\-]+",
    localrule: True
    conda:
        "../envs/fmer.yaml"
    shell:
        "{params.cmd} > {log} 2>&1"


rule tables:
    input:
        summary="results/{budget}/summary.csv",
        completeness="results/{budget}/completeness.csv",
        reported=REPORTED,
    output:
        md=report("paper/{budget}/results.md", caption="../report/tables.rst",
                  category="Tables", subcategory="{budget}"),
        tex="paper/{budget}/results.tex",
    log:
        "logs/{budget}/tables.log",
    params:
        cmd=lambda wc: tables_cmd(wc.budget),
    localrule: True
    conda:
        "../envs/fmer.yaml"
    shell:
        "{params.cmd} > {log} 2>&1"
