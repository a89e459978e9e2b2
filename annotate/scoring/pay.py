"""Pay rules as pure functions: approve or reject, bonus, hourly rate, fair-pay top-up.

Money is an ``int`` in minor units (cents), never a float: every function
raises ``ValueError`` when given a float (or a bool) where money is
expected, and computes with integers only. Where a division must round,
the rounding is stated and goes the worker's way: rates are rounded down
(we never overstate what an hour earned), top-ups and bonuses up (we never
pay a cent short). Durations are whole seconds; `median_seconds` turns
measured times into one.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

SECONDS_PER_HOUR = 3600
BASIS_POINTS = 10_000

RULE_LITTLE_EVIDENCE = "approve_little_evidence"
RULE_MEETS_THRESHOLD = "approve_quality_meets_threshold"
RULE_BELOW_THRESHOLD = "reject_quality_below_threshold"


def _int(value: object, name: str) -> int:
    """An exact integer (Python or NumPy), refusing floats, bools and the like."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer (minor units / whole seconds), got {value!r}")
    return int(value)


def _int_array(values: ArrayLike, name: str) -> NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers (minor units), got {arr.dtype}")
    return arr.astype(np.int64)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# --------------------------------------------------------------------------
# Approve or reject
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """Approve or reject, with the rule it rests on and the numbers it used."""

    approve: bool
    rule: str
    quality: float
    threshold: float
    n_evidence: int
    min_evidence: int

    def explain(self) -> str:
        if self.rule == RULE_LITTLE_EVIDENCE:
            return (
                f"approved: only {self.n_evidence} scored items, fewer than the "
                f"{self.min_evidence} needed before quality can reject"
            )
        verb = "approved" if self.approve else "rejected"
        relation = "at or above" if self.approve else "below"
        return f"{verb}: quality {self.quality:.2f} is {relation} the threshold {self.threshold:.2f}"


def decide(quality: float, threshold: float, *, n_evidence: int, min_evidence: int = 0) -> Decision:
    """Approve when ``quality >= threshold``; reject below it.

    Rejection needs evidence: with fewer than ``min_evidence`` scored items
    behind ``quality``, the assignment is approved (rule
    ``approve_little_evidence``), because a worker must not lose pay to
    noise. A NaN quality counts as no evidence.
    """
    n = _int(n_evidence, "n_evidence")
    need = _int(min_evidence, "min_evidence")
    q = float(quality)
    if n < need or np.isnan(q):
        return Decision(True, RULE_LITTLE_EVIDENCE, q, float(threshold), n, need)
    if q >= threshold:
        return Decision(True, RULE_MEETS_THRESHOLD, q, float(threshold), n, need)
    return Decision(False, RULE_BELOW_THRESHOLD, q, float(threshold), n, need)


# --------------------------------------------------------------------------
# Bonus, rates and the fair-pay floor
# --------------------------------------------------------------------------


def quality_bonus(base_minor: int, quality: float, target: float, bonus_bp: int) -> int:
    """Bonus for quality at or above ``target``: ``bonus_bp`` basis points of the base pay.

    ``ceil(base * bonus_bp / 10000)``, so 10% (1000 bp) of 25 cents is 3
    cents; 0 below target.
    """
    base = _int(base_minor, "base_minor")
    bp = _int(bonus_bp, "bonus_bp")
    if base < 0 or bp < 0:
        raise ValueError("base pay and bonus must not be negative")
    if not float(quality) >= target:
        return 0
    return _ceil_div(base * bp, BASIS_POINTS)


def median_seconds(seconds: ArrayLike) -> int:
    """The median of measured active seconds, rounded up to a whole second.

    Rounding up makes the time longer and so the rate lower: the fair-pay
    check errs towards topping up.
    """
    s = np.asarray(seconds, dtype=np.float64)
    if s.size == 0:
        raise ValueError("no durations to take the median of")
    return int(np.ceil(np.median(s)))


def hourly_rate(pay_minor: int, seconds: int) -> int:
    """Minor units per hour for ``pay_minor`` earned in ``seconds``: ``floor(pay * 3600 / seconds)``."""
    pay = _int(pay_minor, "pay_minor")
    secs = _int(seconds, "seconds")
    if secs <= 0:
        raise ValueError("seconds must be positive")
    return pay * SECONDS_PER_HOUR // secs


def pay_for_rate(rate_per_hour_minor: int, seconds: int) -> int:
    """The least pay whose `hourly_rate` over ``seconds`` reaches the rate: ``ceil(rate * seconds / 3600)``."""
    rate = _int(rate_per_hour_minor, "rate_per_hour_minor")
    secs = _int(seconds, "seconds")
    if secs <= 0:
        raise ValueError("seconds must be positive")
    return _ceil_div(rate * secs, SECONDS_PER_HOUR)


def fair_pay_top_up(
    pay_minor: int | ArrayLike, median_active_seconds: int, floor_per_hour_minor: int
) -> int | NDArray[np.int64]:
    """What each paid assignment needs on top to reach the hourly floor at the median time.

    ``max(0, ceil(floor * median_active_seconds / 3600) - pay)`` per
    assignment: the smallest whole number of minor units such that
    ``hourly_rate(pay + top_up, median_active_seconds) >= floor``. Never
    negative. ``median_active_seconds`` is the project's, from
    `median_seconds`.
    ``pay_minor`` is one int or an integer array (one per assignment);
    the result has the same shape.
    """
    if _int(floor_per_hour_minor, "floor_per_hour_minor") < 0:
        raise ValueError("the hourly floor must not be negative")
    needed = pay_for_rate(floor_per_hour_minor, median_active_seconds)
    if np.ndim(pay_minor) == 0 and not isinstance(pay_minor, np.ndarray):
        pay = _int(pay_minor, "pay_minor")
        if pay < 0:
            raise ValueError("pay must not be negative")
        return max(0, needed - pay)
    pays = _int_array(pay_minor, "pay_minor")
    if np.any(pays < 0):
        raise ValueError("pay must not be negative")
    return np.maximum(needed - pays, 0).astype(np.int64)


@dataclass(frozen=True)
class PublishCheck:
    """Whether a project's pay meets the hourly floor at the requester's time estimate."""

    ok: bool
    implied_rate: int  # minor units per hour, rounded down
    floor: int
    pay_minor: int
    estimated_seconds: int
    min_pay_minor: int  # least pay per micro-task that meets the floor

    def explain(self) -> str:
        verdict = "meets" if self.ok else "is below"
        return (
            f"{self.pay_minor} per micro-task in an estimated {self.estimated_seconds} s is "
            f"{self.implied_rate} per hour, which {verdict} the floor of {self.floor} per hour"
            + ("" if self.ok else f"; pay at least {self.min_pay_minor}")
        )


def check_publish_rate(pay_minor: int, estimated_seconds: int, floor_per_hour_minor: int) -> PublishCheck:
    """The hourly rate a project implies at publish, from the requester's time per micro-task."""
    rate = hourly_rate(pay_minor, estimated_seconds)
    floor = _int(floor_per_hour_minor, "floor_per_hour_minor")
    return PublishCheck(
        ok=rate >= floor,
        implied_rate=rate,
        floor=floor,
        pay_minor=_int(pay_minor, "pay_minor"),
        estimated_seconds=_int(estimated_seconds, "estimated_seconds"),
        min_pay_minor=pay_for_rate(floor, estimated_seconds),
    )
