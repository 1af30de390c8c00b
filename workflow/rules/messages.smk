# What the workflow says besides its jobs: the plan before the first job (the Snakefile's
# onstart), and one line instead of hundreds in `snakemake --report`.
import logging

from snakemake.logging import logger


def start_plan():
    """The onstart handler (Snakefile): the runs this invocation trains, from the jobs
    Snakemake is about to run, and their estimated cost at its --cores; for the `figures`
    target, a stop if any job would make a run's files."""
    jobs = list(workflow.dag.needrun_jobs())
    if figures_only():
        making = sorted({job.rule.name for job in jobs} & {"train", "samples", "goals"})
        if making:
            raise WorkflowError(f"the `figures` target never trains, but rules {making} would "
                                "run (a run's config changed since it was trained here?): "
                                "see `snakemake -n figures`")
    runs = [lookup_run(job.wildcards) for job in jobs if job.rule.name == "train"]
    if workflow.local_exec:
        cores, where = workflow.cores, f"--cores {workflow.cores}"
    else:
        cores = min(workflow.nodes, len(runs))
        where = f"--jobs {workflow.nodes}" if workflow.nodes < sys.maxsize else "unlimited jobs"
    logger.info(cost.plan_line(runs, cores, where))


class _OneMissingMetadataLine(logging.Filter):
    """`snakemake --report` warns once per output Snakemake has no record of: here every
    shipped log (trained elsewhere, 237 lines for `mini`). Say it once."""

    said = False

    def filter(self, record):
        if not str(record.msg).startswith("Missing metadata for file"):
            return True
        if self.said:
            return False
        self.said = True
        record.msg = ("Some outputs (e.g. shipped run logs) were made by another Snakemake "
                      "than this one: the report shows no job times for them.")
        return True


logging.getLogger("snakemake.logging").addFilter(_OneMissingMetadataLine())
