"""The workflow under a live one-node SLURM cluster (``make test-slurm``, marker ``slurm``).

The module fixture builds a throwaway cluster on this machine from Debian's packages: munged,
MariaDB, slurmdbd, slurmctld and slurmd, all configured in a temp dir and on free ports. The
test then runs the smoke budget through ``snakemake --profile workflow/profiles/slurm`` the way
docs/cluster.md tells a user to, and checks that every job went through SLURM and that the
outputs are what a local run writes. Needs root (apt-get, daemons); nothing is skipped.

Why this much machinery (SLURM 22.05 from Debian 12 with snakemake-executor-plugin-slurm 2.8):
- The plugin polls job states with ``sacct`` and checks accounts with ``sacctmgr``. With
  ``AccountingStorageType=accounting_storage/none`` both refuse to run ("Slurm accounting
  storage is disabled"), and slurmdbd stores only to MySQL/MariaDB, so a real accounting
  database is the lightest setup in which the plugin works as it does on a cluster.
- Inside a job, the jobstep plugin removes every ``SLURM_*`` variable, ``SLURM_CONF`` included,
  before it calls ``srun``; srun then finds the configuration only at the default path. So
  /etc/slurm/slurm.conf must exist: the fixture links it to the generated file (refusing to
  replace a configuration it did not write) and removes the link afterwards.
- munged refuses a socket in a directory others cannot traverse, so the temp dir is 0755.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from fmer import budgets
from fmer.agent import FMER
from fmer.config import load_yaml
from fmer.envs import MULTIGOAL
from fmer.runlog import EVAL_COLUMNS, train_columns, verify_run
from fmer.sac import SAC

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "workflow" / "Snakefile"
PROFILE = REPO / "workflow" / "profiles" / "slurm"
CONFIG = load_yaml(REPO / "config" / "config.yaml")
SNAKEMAKE = Path(sys.executable).with_name("snakemake")

ETC_CONF = Path("/etc/slurm/slurm.conf")
TEMP_PREFIX = "fmer-slurm-"
CLUSTER, ACCOUNT, PARTITION = "fmertest", "fmer-test", "debug"
DB_USER, DB_PASS, DB_NAME = "slurm", "fmer-test-only", "slurm_acct_db"
# Debian packages that provide every program the fixture runs.
PACKAGES = ("slurm-wlm", "slurmdbd", "munge", "mariadb-server-core", "mariadb-client-core")
PROGRAMS = ("munged", "mariadb-install-db", "mariadbd", "mariadb", "slurmdbd", "slurmctld",
            "slurmd", "sacctmgr", "sacct", "sbatch", "srun", "sinfo", "scontrol", "scancel")
START_TIMEOUT_S = 90


def _run(cmd: list[str], timeout: float = 60, check: bool = True, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n"
                           f"{proc.stderr}")
    return proc


def _ensure_packages() -> None:
    if all(shutil.which(p) for p in PROGRAMS):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"],
                ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                        f"{proc.stderr[-3000:]}")
    still = [p for p in PROGRAMS if shutil.which(p) is None]
    if still:
        pytest.fail(f"after installing {', '.join(PACKAGES)}: still missing {', '.join(still)}")


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _node_hardware() -> str:
    """The ``CPUs=... RealMemory=...`` part of ``slurmd -C``: what this machine really has."""
    first = _run(["slurmd", "-C"]).stdout.splitlines()[0]
    return re.sub(r"^NodeName=\S+\s*", "", first)


def _wait(what: str, ready, timeout: float = START_TIMEOUT_S, logs: tuple[Path, ...] = ()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {p}:\n{p.read_text()[-2000:]}" for p in logs if p.exists())
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s\n{tails}")


def _ok(cmd: list[str]) -> bool:
    return _run(cmd, check=False, timeout=20).returncode == 0


class LocalCluster:
    """munged, mariadbd, slurmdbd, slurmctld and slurmd in the foreground, configured in
    ``root``; ``stop`` ends whatever was started, in reverse order."""

    def __init__(self, root: Path):
        self.root = root
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.conf = root / "slurm.conf"
        # Clients (sbatch, sacct, ...) read SLURM_CONF; srun inside jobs reads ETC_CONF.
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.linked = False

    def path(self, *parts: str, mode: int = 0o755) -> Path:
        p = self.root.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        p.chmod(mode)
        return p

    def _spawn(self, name: str, cmd: list[str], logs: Path) -> None:
        out = open(logs / f"{name}.out", "w")
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                start_new_session=True)
        out.close()
        self.procs.append((name, proc))

    def start(self) -> None:
        logs, run = self.path("log"), self.path("run")
        sock = run / "munge.socket"
        db_port, dbd_port, ctld_port, slurmd_port = _free_ports(4)

        key = self.path("munge", mode=0o700) / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self._spawn("munged", ["munged", "--foreground", f"--key-file={key}",
                               f"--socket={sock}", f"--pid-file={run / 'munged.pid'}",
                               f"--seed-file={self.root / 'munge' / 'seed'}",
                               f"--log-file={logs / 'munged.log'}"], logs)
        _wait("munged", lambda: sock.exists() and _ok(["munge", "-S", str(sock), "-n"]),
              logs=(logs / "munged.out",))

        datadir = self.path("mysql")
        _run(["mariadb-install-db", "--no-defaults", f"--datadir={datadir}", "--user=root",
              "--auth-root-authentication-method=socket", "--skip-test-db"], timeout=120)
        init = self.root / "init.sql"
        init.write_text(f"CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASS}';\n"
                        f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1';\n")
        self._spawn("mariadbd", ["mariadbd", "--no-defaults", f"--datadir={datadir}",
                                 "--user=root", "--bind-address=127.0.0.1", f"--port={db_port}",
                                 f"--socket={run / 'mysql.sock'}", f"--init-file={init}",
                                 f"--log-error={logs / 'mariadb.log'}",
                                 "--innodb-buffer-pool-size=128M",
                                 "--innodb-lock-wait-timeout=900"], logs)
        _wait("mariadbd", lambda: _ok(["mariadb", "-h", "127.0.0.1", "-P", str(db_port),
                                       "-u", DB_USER, f"-p{DB_PASS}", "-e", "SELECT 1"]),
              logs=(logs / "mariadb.log",))

        # slurmdbd reads slurmdbd.conf from the directory of SLURM_CONF; it must be 0600.
        dbd_conf = self.root / "slurmdbd.conf"
        dbd_conf.write_text("\n".join([
            "AuthType=auth/munge", f"AuthInfo=socket={sock}", "DbdHost=localhost",
            f"DbdPort={dbd_port}", "SlurmUser=root", f"PidFile={run / 'slurmdbd.pid'}",
            f"LogFile={logs / 'slurmdbd.log'}", "StorageType=accounting_storage/mysql",
            "StorageHost=127.0.0.1", f"StoragePort={db_port}", f"StorageUser={DB_USER}",
            f"StoragePass={DB_PASS}", f"StorageLoc={DB_NAME}", ""]))
        dbd_conf.chmod(0o600)
        self.conf.write_text("\n".join([
            f"ClusterName={CLUSTER}", "SlurmctldHost=localhost", f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}", "SlurmUser=root", "SlurmdUser=root",
            "AuthType=auth/munge", f"AuthInfo=socket={sock}",
            f"StateSaveLocation={self.path('state')}", f"SlurmdSpoolDir={self.path('spool')}",
            f"SlurmctldPidFile={run / 'slurmctld.pid'}", f"SlurmdPidFile={run / 'slurmd.pid'}",
            f"SlurmctldLogFile={logs / 'slurmctld.log'}", f"SlurmdLogFile={logs / 'slurmd.log'}",
            # No cgroups: process tracking by /proc, CPU pinning by sched_setaffinity.
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/affinity", "MpiDefault=none",
            "SchedulerType=sched/backfill", "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory", "ReturnToService=2",
            "JobAcctGatherType=jobacct_gather/linux", "JobAcctGatherFrequency=30",
            "AccountingStorageType=accounting_storage/slurmdbd",
            "AccountingStorageHost=localhost", f"AccountingStoragePort={dbd_port}",
            # The munge socket for talking to slurmdbd (the default one does not exist here).
            f"AccountingStoragePass={sock}",
            # The plugin puts the rule name in the job comment; keep it in the database.
            "AccountingStoreFlags=job_comment",
            # scontrol keeps finished jobs for an hour (the test reads them after the run)
            "MinJobAge=3600",
            # Jobs are not requeueable unless submitted so: the profile's slurm-requeue must do it.
            "JobRequeue=0",
            f"NodeName=localhost {_node_hardware()} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
            ""]))
        self._link_etc_conf()

        self._spawn("slurmdbd", ["slurmdbd", "-D"], logs)
        _wait("slurmdbd", lambda: _ok(["sacctmgr", "-n", "list", "cluster"]),
              logs=(logs / "slurmdbd.log", logs / "slurmdbd.out"))
        for args in (["cluster", CLUSTER],
                     ["account", ACCOUNT, "Description=fmer test", "Organization=fmer"],
                     ["user", "root", f"Account={ACCOUNT}", f"DefaultAccount={ACCOUNT}"]):
            _run(["sacctmgr", "-i", "add", *args], env=self.env)

        self._spawn("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)], logs)
        _wait("slurmctld", lambda: _ok(["scontrol", "ping"]),
              logs=(logs / "slurmctld.log", logs / "slurmctld.out"))
        self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf), "-N", "localhost"], logs)
        _wait("node localhost idle", lambda: self.node_state() == "idle",
              logs=(logs / "slurmd.log", logs / "slurmd.out", logs / "slurmctld.log"))

    def node_state(self) -> str:
        proc = _run(["sinfo", "-h", "-n", "localhost", "-o", "%T"], check=False, env=self.env)
        return proc.stdout.strip()

    def _link_etc_conf(self) -> None:
        if ETC_CONF.is_symlink() and TEMP_PREFIX in os.readlink(ETC_CONF) \
                and not ETC_CONF.exists():
            ETC_CONF.unlink()  # left by a run of this test that was killed
        if ETC_CONF.exists() or ETC_CONF.is_symlink():
            raise RuntimeError(f"{ETC_CONF} exists: this test builds its own throwaway cluster "
                               "and will not replace a SLURM configuration it did not write; "
                               "run it on a machine without one (CI does)")
        ETC_CONF.parent.mkdir(parents=True, exist_ok=True)
        ETC_CONF.symlink_to(self.conf)
        self.linked = True

    def stop(self) -> None:
        if any(name == "slurmctld" for name, _ in self.procs):
            _run(["scancel", "--user=root", "--full"], check=False, env=self.env)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _run(
                    ["squeue", "-h"], check=False, env=self.env).stdout.strip():
                time.sleep(1)
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()
        if self.linked and ETC_CONF.is_symlink() and os.readlink(ETC_CONF) == str(self.conf):
            ETC_CONF.unlink()
        self.linked = False


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.fail("the SLURM test needs root: it installs packages with apt-get and runs "
                    "the daemons as root (run `make test-slurm` as root, as CI does)")
    _ensure_packages()
    root = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    root.chmod(0o755)
    c = LocalCluster(root)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- the workflow through SLURM -----------------------------------------------------------------
# The run that gets preempted (requeued) while it trains: the slowest of the smoke grid, so the
# window between its first train.csv row and its end is widest (several seconds).
PREEMPTED = ("kitchen-1", "fmer", 0)
WORKFLOW_TIMEOUT_S = 1200


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return next(csv.reader(f))


def _squeue_job(env: dict, comment: str) -> tuple[str, str] | None:
    """(job id, state) of the queued or running job whose comment is ``comment``."""
    out = _run(["squeue", "-h", "-o", "%i|%T|%k"], env=env).stdout
    for line in out.splitlines():
        job, state, job_comment = line.split("|", 2)
        if job_comment == comment:
            return job, state
    return None


def _preempt_when_training(cluster, work: Path, proc: subprocess.Popen, log: Path) -> str:
    """Requeue the PREEMPTED run's job once it has logged a train.csv row (its SIGTERM handler
    is installed by then), as a preempting scheduler with PreemptMode=REQUEUE does, then let
    it start again at once (a requeued job is otherwise held back for minutes)."""
    env, variant, seed = PREEMPTED
    comment = f"rule_train_wildcards_smoke_{env}_{variant}_{seed}"
    train_csv = work / budgets.run_path("smoke", env, variant, seed) / ".train" / "train.csv"
    deadline = time.monotonic() + WORKFLOW_TIMEOUT_S
    while not (train_csv.exists() and len(train_csv.read_text().splitlines()) >= 2):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{train_csv} never got a row while snakemake ran "
                        f"(exit {proc.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    found = _squeue_job(cluster.env, comment)
    assert found is not None, f"no SLURM job with comment {comment} while its run trains"
    job = found[0]
    _run(["scontrol", "requeue", job], env=cluster.env)
    _wait(f"job {job} back in the queue",
          lambda: (_squeue_job(cluster.env, comment) or ("", ""))[1] == "PENDING", timeout=60)
    _run(["scontrol", "update", f"JobId={job}", "StartTime=now"], env=cluster.env)
    return job


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    """The smoke budget through the SLURM profile, as docs/cluster.md has users run the paper
    budget; one of its jobs is preempted halfway."""
    work = tmp_path_factory.mktemp("slurm-workflow")
    log = work / "snakemake.log"
    cmd = [str(SNAKEMAKE), "-s", str(SNAKEFILE), "-d", str(work), "--profile", str(PROFILE),
           "--config", "budget=smoke",
           "--default-resources", f"slurm_account={ACCOUNT}", f"slurm_partition={PARTITION}",
           # the default (40 s, growing) suits hour-long jobs; these take seconds
           "--slurm-init-seconds-before-status-checks", "2"]
    start = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=cluster.env, stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            preempted = _preempt_when_training(cluster, work, proc, log)
            proc.wait(timeout=WORKFLOW_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.terminate()  # snakemake cancels its SLURM jobs on SIGTERM
                proc.wait(timeout=60)
    text = log.read_text()
    assert proc.returncode == 0, f"snakemake exited {proc.returncode}:\n{text[-5000:]}"
    print(f"smoke workflow through SLURM: {time.monotonic() - start:.0f} s")
    run_id = re.search(r"SLURM run ID: (\S+)", text)
    assert run_id, "snakemake's log names no SLURM run ID"
    return SimpleNamespace(work=work, run_id=run_id.group(1), preempted=preempted)


def _sacct(env: dict, *args: str) -> list[list[str]]:
    out = _run(["sacct", "--parsable2", "--noheader", *args], env=env).stdout
    return [line.split("|") for line in out.splitlines() if line]


def test_every_job_went_through_slurm_under_its_rule_name(cluster, slurm_run):
    jobs = _sacct(cluster.env, "-X", "--allusers", "--starttime", "now-1days",
                  "--format=JobName,State,Comment,Account,Partition")
    runs = budgets.runs(CONFIG, "smoke")
    expected = {f"rule_train_wildcards_smoke_{r.env}_{r.variant}_{r.seed}" for r in runs}
    # a multigoal run's samples (the figure) and goals (the multimodality measure)
    expected |= {f"rule_{rule}_wildcards_smoke_{r.variant}_{r.seed}"
                 for r in budgets.select(runs, envs=[MULTIGOAL]) for rule in ("samples", "goals")}
    expected.add("rule_random_scores")
    # one job per remote rule run; the local rules (summary, figures, tables) stay local
    assert sorted(j[2] for j in jobs) == sorted(expected)
    for name, state, comment, account, partition in jobs:
        assert name == slurm_run.run_id, comment
        assert state == "COMPLETED", f"{comment}: {state}"
        assert (account, partition) == (ACCOUNT, PARTITION), comment


def test_outputs_match_a_local_smoke_run(slurm_run, smoke_run):
    """Same files as the local workflow plans, same columns and meta.json keys as a local
    ``fmer train`` (conftest's smoke_run, SAC)."""
    local_meta = json.loads((smoke_run / "meta.json").read_text())
    local_eval, local_train = _csv_header(smoke_run / "eval.csv"), \
        _csv_header(smoke_run / "train.csv")
    assert local_eval == list(EVAL_COLUMNS)
    metric_names = {"sac": SAC.metric_names, "fmer": FMER.metric_names}
    for run in budgets.runs(CONFIG, "smoke"):
        run_dir = slurm_run.work / run.path
        assert verify_run(run_dir) == [], run.path
        assert not (run_dir / ".train").exists(), run.path
        meta = json.loads((run_dir / "meta.json").read_text())
        assert meta.keys() == local_meta.keys(), run.path
        assert _csv_header(run_dir / "eval.csv") == local_eval, run.path
        header = _csv_header(run_dir / "train.csv")
        assert header == list(train_columns(metric_names[meta["algo"]])), run.path
        if meta["algo"] == "sac":
            assert header == local_train, run.path
    # the local executor finds every output of the budget in place: nothing left to build
    proc = _run([str(SNAKEMAKE), "-s", str(SNAKEFILE), "-d", str(slurm_run.work), "-n",
                 "--config", "budget=smoke"], cwd=REPO, timeout=300)
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]


def test_preempted_job_was_requeued_and_resumed_from_its_checkpoint(cluster, slurm_run):
    states = [row[0] for row in _sacct(cluster.env, "-X", "--duplicates", "-j",
                                       slurm_run.preempted, "--format=State")]
    assert states == ["REQUEUED", "COMPLETED"]
    requeue = _run(["scontrol", "show", "job", slurm_run.preempted], env=cluster.env).stdout
    assert "Requeue=1" in requeue  # the profile's slurm-requeue, against JobRequeue=0
    run_dir = slurm_run.work / budgets.run_path("smoke", *PREEMPTED)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "complete"
    assert len(meta["resumes"]) == 1
    assert meta["resumes"][0]["step"] > 0  # from the checkpoint saved on SIGTERM, not step 0
