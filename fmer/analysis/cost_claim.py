"""The paper's training-cost claim against QVPO, and the rule that decides it from our numbers.

The claim (arXiv 2603.17685 v1, abstract): "FMER reduces training time by 7× compared to heavy
diffusion baselines (QVPO)". ``RULE`` is the rule, fixed before it was applied to any
side-by-side measurement of the two; ``verdict`` applies it to a measured ratio and its
interval; ``magnitude`` says how the ratio sits against the claimed 7× (shown beside the
verdict, not part of it). The verdict page (fmer.analysis.verdicts) prints ``RULE`` and calls
``verdict``; the measurement is ``fmer bench``'s (fmer.bench).
"""

from __future__ import annotations

import math

SUPPORTS, CONTRADICTS, CANNOT_TELL = "supports", "contradicts", "cannot tell"
CLAIMED = 7.0  # QVPO's training time over FMER's, as the paper states it
TOLERANCE = 2.0  # a factor either way that a cost ratio may move between setups [ours]
THRESHOLD = CLAIMED / TOLERANCE  # 3.5: the least ratio that still reads as "about 7x" or more
MIN_N = 2  # fewer paired measurements decide nothing: one has no interval

RULE = f"""\
Training cost against QVPO, fixed before it was applied to any side-by-side measurement (while
QVPO was being built, single updates of it were timed alone, on this loaded machine; no FMER
update beside them). The number is R = QVPO's update time / FMER's, from `fmer bench`: one
thread, the main thread's CPU time (which the other processes on a shared machine cannot
inflate, as they inflate wall time), batch 256, the two updates interleaved round by round in
one process, FMER at the package defaults (ours where the paper is silent) and QVPO at its
authors' published MuJoCo settings (docs/QVPO.md), on HalfCheetah-v5's network sizes. Its 95%
interval is Student's t interval of the per-round log ratios (QVPO's update over the FMER update
of the same round), exponentiated; n = rounds. The update stands for the training time because
updates are nearly all of a run's time for both (fmer.analysis.cost: well over 90% for every
benchmark at 1M steps); whole-run wall times, which `fmer bench --whole-run` also measures, are
shown as indicative only: on a shared machine they measure the load as much as the code.

- *supports* if the interval lies at or above {THRESHOLD:g} = {CLAIMED:g}/{TOLERANCE:g}: QVPO's
  update costs at least half the claimed multiple of FMER's. The factor {TOLERANCE:g} [ours]
  absorbs what the paper leaves open and a reproduction cannot hold fixed: its hardware (we time
  one CPU core), its implementations of both methods and its FMER settings. A ratio above
  {CLAIMED * TOLERANCE:g}× (twice the claim) supports it too: the claim is FMER's cost advantage,
  which a larger advantage does not refute; `magnitude` says "larger than claimed" beside it.
- *contradicts* if the interval lies below {THRESHOLD:g}.
- *cannot tell* otherwise; with fewer than {MIN_N} rounds; *cannot tell (n=0)* without a QVPO
  measurement.
"""


def verdict(ratio: float, low: float, high: float, n: int) -> str:
    """The rule applied to a measured ratio R = QVPO / FMER and its interval [low, high] over
    n paired measurements."""
    if n == 0 or not math.isfinite(ratio):
        return f"{CANNOT_TELL} (n=0)"
    if n < MIN_N or not (math.isfinite(low) and math.isfinite(high)):
        return CANNOT_TELL
    if low >= THRESHOLD:
        return SUPPORTS
    if high < THRESHOLD:
        return CONTRADICTS
    return CANNOT_TELL


def magnitude(low: float, high: float) -> str:
    """How the interval sits against the claimed 7x, within the factor TOLERANCE."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "no interval"
    if low > CLAIMED * TOLERANCE:
        return "larger than claimed"
    if high < THRESHOLD:
        return "smaller than claimed"
    if low >= THRESHOLD and high <= CLAIMED * TOLERANCE:
        return "about as claimed"
    return "not resolved against the claim"
