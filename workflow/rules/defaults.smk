# The defaults study (paper/defaults.md): budget `defaults`, whatever `budget` is set to.
#   snakemake --cores 2 defaults_study
# Its runs (train.smk) and summary (analysis.smk) are the ordinary rules'; here the update
# cost per setting and the page that applies the study's rule. Not part of `all`.


# A measurement, not a function of the logs: no inputs, so once the file exists it is never
# measured again (delete it to measure anew). One thread, on the thread-CPU clock, every
# setting of the budget in the same process.
rule update_cost:
    output:
        "results/defaults/update_cost.csv",
    log:
        "logs/defaults/update_cost.log",
    threads: 1
    resources:
        runtime=30,
    conda:
        "../envs/fmer.yaml"
    shell:
        "fmer bench --envs HalfCheetah-v5 --threads 1 --budget defaults --csv {output}"
        " > {log} 2>&1"


rule defaults_page:
    input:
        estimates="results/defaults/estimates.csv",
        completeness="results/defaults/completeness.csv",
        cost="results/defaults/update_cost.csv",
    output:
        page="paper/defaults.md",
        csv="paper/defaults.csv",
        png="figures/defaults/study.png",
        pdf="figures/defaults/study.pdf",
    log:
        "logs/defaults/defaults_page.log",
    localrule: True
    conda:
        "../envs/fmer.yaml"
    shell:
        "fmer defaults-study --estimates {input.estimates} --completeness {input.completeness}"
        " --update-cost {input.cost} --page {output.page} --csv {output.csv}"
        " --figure figures/defaults/study > {log} 2>&1"


# figures/defaults/study.png would also match rule `figure` (figures/{budget}/{name}.png)
ruleorder: defaults_page > figure


rule defaults_study:
    input:
        run_files(RUNS["defaults"]),
        summary_paths("defaults"),
        rules.defaults_page.output,

