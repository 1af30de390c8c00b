"""``fmer verify``: check run directories (fmer.runlog), or retrain one and compare its logs
(``--rerun``: fmer.rerun)."""

from __future__ import annotations

import sys
from pathlib import Path

from fmer.cli.common import examples
from fmer.runlog import read_meta, verify_run


def run(args) -> int:
    if args.rerun is not None or args.steps is not None:
        if args.rerun is None or args.run_dirs:
            print("fmer verify: --rerun takes one RUN_DIR and no others; --steps needs --rerun",
                  file=sys.stderr)
            return 2
        return rerun_run(args.rerun, args.steps)
    if not args.run_dirs:
        print("fmer verify: name at least one RUN_DIR (or --rerun RUN_DIR)", file=sys.stderr)
        return 2
    bad = 0
    for run_dir in args.run_dirs:
        problems = verify_run(run_dir)
        if problems:
            bad += 1
            for p in problems:
                print(f"BAD {p}", file=sys.stderr)
        else:
            print(f"ok  {run_dir}")
    if bad:
        print(f"fmer verify: {bad} of {len(args.run_dirs)} run(s) failed verification",
              file=sys.stderr)
    return 1 if bad else 0


def rerun_run(run_dir: str, steps: int | None) -> int:
    """0: identical; 1: the logs differ; 3: not comparable on this machine (2 is a usage
    error)."""
    from fmer import rerun  # torch, imported by the command that retrains: not by the parser

    for problem in verify_run(run_dir):  # said, but the comparison is the stronger check
        print(f"note: {problem}", file=sys.stderr)
    meta = read_meta(Path(run_dir) / "meta.json")
    elsewhere = rerun.other_machine(meta)
    if elsewhere is not None:
        print(f"not compared: {run_dir}: {elsewhere}", file=sys.stderr)
        return 3
    difference = rerun.rerun(run_dir, steps)
    upto = f" up to step {steps}" if steps is not None else ""
    if difference is None:
        print(f"identical: {run_dir}: eval.csv and train.csv{upto}, timing columns aside")
        return 0
    unknown = "" if "float_fingerprint" in (meta.get("device") or {}) else (
        " (the run records no float fingerprint: the difference may be this machine's float "
        "kernels, not the code)")
    print(f"differs: {run_dir}{upto}: {difference}{unknown}", file=sys.stderr)
    return 1


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "verify", help="check that run directories are complete and their logs intact",
        description="Exit non-zero, naming each bad file, if a run is not marked complete, "
                    "a log is missing, truncated or edited (sha256 in meta.json), or its "
                    "step column is not strictly increasing. With --rerun: train the run "
                    "again from its meta.json in a temporary directory and compare its logs "
                    "row by row, timing columns aside; exit 0 ('identical') or 1 naming the "
                    "first differing row and column, or 3 without training when the run was "
                    "made on a CPU whose float kernels round differently (meta.json's float "
                    "fingerprint; fmer/rerun.py).",
        **examples("fmer verify runs/hopper",
                   "fmer verify results/mini/*/*/seed*",
                   "fmer verify --rerun results/mini/Hopper-v5/fmer/seed0 --steps 6000"),
    )
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR")
    p.add_argument("--rerun", metavar="RUN_DIR",
                   help="retrain this run from its meta.json and compare its logs")
    p.add_argument("--steps", type=int, metavar="N",
                   help="with --rerun: train and compare only up to step N")
    p.set_defaults(func=run)
