"""The shipped logs stay true to the code: the cheapest shipped FMER run and SAC run, retrained
at the code under test for their first 1,000 updates, give the same eval.csv and train.csv rows
(timing columns aside). A change of the numbers that would silently invalidate the shipped
results fails here.

Bits repeat only on a machine whose float kernels round as the one that made the run did
(fmer.device.float_fingerprint, recorded in meta.json). On another machine, or for a run made
before fingerprints were recorded (which machine made it is unknown), the check is skipped,
saying so, rather than failing on the machine instead of the code.

The runs: mini's multigoal-2d seed 0 of each (the cheapest: 1,000 random steps, then 1,000
updates; about two minutes for FMER, seconds for SAC)."""

import pytest
from conftest import REPO

from fmer.rerun import other_machine, rerun
from fmer.runlog import read_meta

SHIPPED = {
    "fmer": REPO / "results/mini/multigoal-2d/fmer/seed0",
    "sac": REPO / "results/mini/multigoal-2d/sac/seed0",
}


@pytest.mark.slow
@pytest.mark.parametrize("algo", SHIPPED)
def test_a_shipped_run_is_what_the_code_trains(algo):
    run = SHIPPED[algo]
    meta = read_meta(run / "meta.json")
    assert (meta["algo"], meta["status"]) == (algo, "complete")
    if "float_fingerprint" not in meta.get("device", {}):
        pytest.skip(f"{run}: made before float fingerprints were recorded; whether this "
                    "machine rounds as the one that made it is unknown")
    elsewhere = other_machine(meta)
    if elsewhere is not None:
        pytest.skip(f"{run}: {elsewhere}")
    steps = meta["config"]["train"]["learning_starts"] + 1000  # 1,000 updates
    difference = rerun(run, steps=steps)
    assert difference is None, difference
