"""The cost claim's rule (fmer.analysis.cost_claim): its verdicts at and around the threshold,
and its labels are the verdict page's."""

import math

import pytest

from fmer.analysis import cost_claim, verdicts


@pytest.mark.parametrize(("ratio", "low", "high", "n", "expected", "size"), [
    (7.0, 5.0, 9.5, 10, "supports", "about as claimed"),
    (3.8, 3.5, 4.2, 10, "supports", "about as claimed"),  # the threshold itself counts
    (40.0, 36.0, 44.0, 10, "supports", "larger than claimed"),
    (10.0, 8.0, 15.0, 10, "supports", "not resolved against the claim"),
    (2.0, 1.6, 2.4, 10, "contradicts", "smaller than claimed"),
    (4.0, 3.0, 5.0, 10, "cannot tell", "not resolved against the claim"),
    (40.0, 36.0, 44.0, 1, "cannot tell", "larger than claimed"),
    (40.0, math.nan, math.nan, 1, "cannot tell", "no interval"),
    (math.nan, math.nan, math.nan, 0, "cannot tell (n=0)", "no interval"),
])
def test_the_rule_against_half_the_claimed_factor(ratio, low, high, n, expected, size):
    assert cost_claim.THRESHOLD == 3.5  # 7x claimed, a factor 2 either way
    assert cost_claim.verdict(ratio, low, high, n) == expected
    assert cost_claim.magnitude(low, high) == size


def test_labels_are_the_verdict_pages():
    assert (cost_claim.SUPPORTS, cost_claim.CONTRADICTS, cost_claim.CANNOT_TELL) == (
        verdicts.SUPPORTS, verdicts.CONTRADICTS, verdicts.CANNOT_TELL)
    assert "3.5" in cost_claim.RULE and "7" in cost_claim.RULE
