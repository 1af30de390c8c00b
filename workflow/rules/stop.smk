# Stopping the workflow: SIGTERM or SIGINT (Ctrl-C) to its process group stops it within
# seconds, wherever Snakemake is (README, "Stopping a grid").
#
# Snakemake's own SIGTERM handler (JobScheduler.exit_gracefully, 9.27) takes the scheduler's
# lock. A Python handler runs in the main thread, between two of its bytecodes: when the signal
# lands while that thread holds the lock (selecting jobs, which runs the ILP solver, or
# finishing one), the handler waits for a lock its own thread holds, forever, and Snakemake
# stays up doing nothing after its jobs have checkpointed and exited, until a SIGINT.
# So both signals take the path of Ctrl-C (KeyboardInterrupt: no lock; Snakemake waits for
# its jobs, which got the signal too, then releases its directory lock and exits), from the
# Snakefile's parse on (a SIGTERM while the DAG is built would otherwise kill Snakemake
# holding its directory lock) and again in onstart (Snakefile), after the scheduler installed
# its own handler.
#
# A job the scheduler had selected when the signal came may start just after it, and never
# get it; Snakemake would wait for that run to finish. So the handler also writes STOP_FILE
# (the signal's number), and every `fmer train` of this Snakemake (FMER_STOP_FILE) stops on it
# as on that signal: checkpointed, exit 128 + signal. Main process only: a SLURM job's
# Snakemake keeps its own handlers (the main one cancels the SLURM jobs on a stop).
import atexit
import secrets
import signal

STOP_FILE = os.path.abspath(os.path.join(".snakemake", f"fmer-stop-{os.getpid()}-"
                                                        f"{secrets.token_hex(4)}"))


def _stop(signum, _frame):
    os.makedirs(os.path.dirname(STOP_FILE), exist_ok=True)
    with open(STOP_FILE + ".tmp", "w") as f:  # whole or absent, to a run that reads it
        f.write(f"{signum}\n")
    os.replace(STOP_FILE + ".tmp", STOP_FILE)
    raise KeyboardInterrupt


def take_signals():
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)


def _remove_stop_file():
    if os.path.exists(STOP_FILE):
        os.remove(STOP_FILE)


if workflow.is_main_process:
    os.environ.update(FMER_STOP_FILE=STOP_FILE)  # for the jobs only: no `envvars` to assert
    atexit.register(_remove_stop_file)
    take_signals()
