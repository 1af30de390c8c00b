# One training run per job. No input files: a run depends on its config (params) only, so
# logs on disk, whatever their mtime, count as done (see the default profile's rerun-triggers).
#
# `fmer train` writes into RUN/.train/ and the logs are moved up to RUN/ only once the run is
# complete. So a killed job leaves no declared output for Snakemake to delete, and the next
# attempt resumes from RUN/.train/checkpoint (fmer train refuses a directory whose logs were
# deleted under its checkpoint).


rule train:
    output:
        meta="results/{budget}/{env}/{variant}/seed{seed}/meta.json",
        evals="results/{budget}/{env}/{variant}/seed{seed}/eval.csv",
        train="results/{budget}/{env}/{variant}/seed{seed}/train.csv",
    log:
        "logs/{budget}/{env}/{variant}/seed{seed}.log",
    benchmark:
        "results/{budget}/{env}/{variant}/seed{seed}/benchmark.tsv"
    params:
        run=lambda wc, output: os.path.dirname(output.meta),
        # a function of `output`, so that Snakemake does not record it for the `params` rerun
        # trigger: the file's path differs between checkouts, the runs do not
        budgets=lambda wc, output: BUDGETS_FILE,
        # Not in the command (fmer train resolves the same from the budgets file): recorded by
        # Snakemake for the `params` rerun trigger, so that a run whose settings change reruns.
        algo=lambda wc: lookup_run(wc).algo,
        settings=lambda wc: lookup_run(wc).set_args(),
    threads: 1
    resources:
        mem_mb=lambda wc: cost.mem_mb(lookup_run(wc)),
        runtime=lambda wc: cost.runtime_minutes(lookup_run(wc)),
        # where the run trains: a resource, not a param, so that moving the grid to a GPU
        # retrains no complete run (params are a rerun trigger)
        device=config["device"],
        # A run that may use a GPU asks SLURM for one through the plugin's `gres`: a string,
        # so that a group job of runs sharing a GPU asks for one (an int `gpu` would be summed).
        gres=lambda wc: GPU_GRES if WANTS_GPU else None,
        gpu_runs=lambda wc: 1 if WANTS_GPU else 0,
    conda:
        "../envs/fmer.yaml"
    shell:
        # A job killed between a finished run and the move: fmer train refuses the complete
        # run (leaving no lock file behind), fmer verify accepts it, and the move goes ahead
        # (tests/test_workflow.py runs this case).
        "{{ fmer train --budgets {params.budgets} --budget {wildcards.budget} --env {wildcards.env}"
        " --algo {wildcards.variant} --seed {wildcards.seed} --device {resources.device}"
        " --out {params.run}/.train > {log} 2>&1"
        " || fmer verify {params.run}/.train >> {log} 2>&1; }}"
        " && mv {params.run}/.train/* {params.run}/ && rmdir {params.run}/.train"


# The multimodality figure's action samples, drawn from a multigoal run's saved final policy
# (policy.pt). `ancient`: shipped samples stay valid whatever the mtimes.
rule samples:
    input:
        meta=ancient("results/{budget}/multigoal-2d/{variant}/seed{seed}/meta.json"),
    output:
        "results/{budget}/multigoal-2d/{variant}/seed{seed}/samples.csv",
    log:
        "logs/{budget}/multigoal-2d/{variant}/seed{seed}.samples.log",
    params:
        run=lambda wc, input: os.path.dirname(input.meta),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/fmer.yaml"
    shell:
        "fmer samples {params.run} --out {output} > {log} 2>&1"


# The multimodality measure's episodes (fmer/analysis/multimodality.py): the goal each of a
# multigoal run's stochastic episodes from the start state reaches, from its saved policy.
rule goals:
    input:
        meta=ancient("results/{budget}/multigoal-2d/{variant}/seed{seed}/meta.json"),
    output:
        "results/{budget}/multigoal-2d/{variant}/seed{seed}/goals.csv",
    log:
        "logs/{budget}/multigoal-2d/{variant}/seed{seed}.goals.log",
    params:
        run=lambda wc, input: os.path.dirname(input.meta),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/fmer.yaml"
    shell:
        "fmer goals {params.run} --out {output} > {log} 2>&1"
