"""The decision rule of a statement, in one place: the report, the simulations and the tests all call it.

A statement has the form "deeper FIRSTs are harder to train (overfit faster)
than deeper SECONDs". It is about the first architecture's own change with
depth *and* about its difference from the second's, so it is decided by two
permutation tests (:mod:`study.statistics.inference`) that must both agree
(an intersection-union test, whose false-positive rate is at most alpha):

* ``supported``: the slope difference (first minus second) is decided
  (two-sided p < alpha) on the side the statement claims, and the first
  architecture's own slope is decided on that side too;
* ``contradicted``: the same, both on the opposite side;
* ``other arm``: the difference is decided but the first architecture's own
  slope does not move that way: the difference comes from the second
  architecture (for example CNNs that train better with depth beside LSTMs that
  stay flat). Not a support of the statement; the report says it in words;
* ``inconclusive``: the difference is not decided.
"""
from __future__ import annotations

import numpy as np

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
OTHER_ARM = "other arm"
INCONCLUSIVE = "inconclusive"
STATUSES = (SUPPORTED, CONTRADICTED, OTHER_ARM, INCONCLUSIVE)


def _check(supports_sign: int, alpha: float) -> None:
    if supports_sign not in (-1, 1):
        raise ValueError(f"supports_sign must be -1 or +1, got {supports_sign!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


def decide(*, difference, p_difference, slope_first, p_first, supports_sign: int, alpha: float):
    """The status of a statement from its two tests; works on scalars and on numpy arrays alike.

    ``supports_sign`` is -1 when a negative difference (and a negative first-arm
    slope) supports the statement, +1 when a positive one does.
    """
    _check(supports_sign, alpha)
    difference, p_difference = np.asarray(difference, float), np.asarray(p_difference, float)
    slope_first, p_first = np.asarray(slope_first, float), np.asarray(p_first, float)
    decided = (p_difference < alpha) & np.isfinite(difference) & (difference != 0)
    arm_decided = (p_first < alpha) & np.isfinite(slope_first) & (slope_first != 0)
    claimed_side = np.sign(difference) == supports_sign
    arm_claimed_side = np.sign(slope_first) == supports_sign
    status = np.where(
        ~decided, INCONCLUSIVE,
        np.where(claimed_side & arm_decided & arm_claimed_side, SUPPORTED,
                 np.where(~claimed_side & arm_decided & ~arm_claimed_side, CONTRADICTED, OTHER_ARM)))
    return status.item() if status.ndim == 0 else status


def decide_one_arm(*, slope, p_value, supports_sign: int, alpha: float):
    """The status of a one-arm claim ("dropout narrows the gap of LSTMs"): decided when the slope's two-sided
    p < alpha; supported on the claimed side, contradicted on the other; scalars or arrays alike."""
    _check(supports_sign, alpha)
    slope, p_value = np.asarray(slope, float), np.asarray(p_value, float)
    decided = (p_value < alpha) & np.isfinite(slope) & (slope != 0)
    status = np.where(~decided, INCONCLUSIVE, np.where(np.sign(slope) == supports_sign, SUPPORTED, CONTRADICTED))
    return status.item() if status.ndim == 0 else status


def decide_claim(*, one_arm: bool, difference, p_difference, slope_first, p_first, supports_sign: int, alpha: float):
    """The status of any claim: :func:`decide_one_arm` on the first arm's slope when it compares nothing, else
    :func:`decide` on both tests. Every caller (slope table, statements, simulations) goes through here."""
    if one_arm:
        return decide_one_arm(slope=slope_first, p_value=p_first, supports_sign=supports_sign, alpha=alpha)
    return decide(difference=difference, p_difference=p_difference, slope_first=slope_first, p_first=p_first,
                  supports_sign=supports_sign, alpha=alpha)
