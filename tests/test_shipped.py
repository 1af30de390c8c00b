"""The shipped logs stay true to the code: a shipped FMER run, retrained at the code under
test for its first 1,000 updates, gives the same eval.csv and train.csv rows (timing columns
aside). A change of the numbers that would silently invalidate the shipped results fails here.
A run made on a CPU whose float kernels round differently from this machine's (its meta.json's
float fingerprint, fmer.device) cannot be reproduced bit for bit here: the check is skipped,
saying so, rather than failing on the machine instead of the code.

The run is the cheapest shipped FMER run that the current code must reproduce: a defaults-study
run with the actor updated every second step (about a minute). SAC joins this check once the
mini grid's SAC runs are made again: the shipped ones predate the change of SAC's α loss
(fmer/rerun.py)."""

import pytest
from conftest import REPO

from fmer.rerun import other_machine, rerun
from fmer.runlog import read_meta

SHIPPED_FMER = REPO / "results/defaults/Hopper-v5/fmer-n8-s64-e64-k2/seed2"


@pytest.mark.slow
def test_a_shipped_fmer_run_is_what_the_code_trains():
    meta = read_meta(SHIPPED_FMER / "meta.json")
    cfg = meta["config"]
    assert (meta["algo"], meta["status"]) == ("fmer", "complete")
    elsewhere = other_machine(meta)
    if elsewhere is not None:
        pytest.skip(f"{SHIPPED_FMER}: {elsewhere}")
    steps = cfg["train"]["learning_starts"] + 1000  # 1,000 updates, 500 of them the actor's
    difference = rerun(SHIPPED_FMER, steps=steps)
    assert difference is None, difference
