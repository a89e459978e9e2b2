"""Pay rules: integer-exact, rounding in the worker's favour, floats refused."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from annotate.scoring.pay import (
    RULE_BELOW_THRESHOLD,
    RULE_LITTLE_EVIDENCE,
    RULE_MEETS_THRESHOLD,
    check_publish_rate,
    decide,
    fair_pay_top_up,
    hourly_rate,
    median_seconds,
    pay_for_rate,
    quality_bonus,
)

cents = st.integers(0, 10**7)
seconds = st.integers(1, 10**6)


def test_decision_names_the_rule_it_rests_on():
    assert decide(0.8, 0.7, n_evidence=10, min_evidence=5).rule == RULE_MEETS_THRESHOLD
    assert decide(0.7, 0.7, n_evidence=10).approve  # threshold inclusive
    rejected = decide(0.6, 0.7, n_evidence=10, min_evidence=5)
    assert (rejected.approve, rejected.rule) == (False, RULE_BELOW_THRESHOLD)
    assert rejected.explain() == "rejected: quality 0.60 is below the threshold 0.70"
    little = decide(0.1, 0.7, n_evidence=2, min_evidence=5)
    assert (little.approve, little.rule) == (True, RULE_LITTLE_EVIDENCE)
    assert decide(float("nan"), 0.7, n_evidence=9).rule == RULE_LITTLE_EVIDENCE


def test_quality_bonus_rounds_up_and_needs_the_target():
    assert quality_bonus(25, quality=0.9, target=0.85, bonus_bp=1000) == 3  # 2.5 -> 3
    assert quality_bonus(30, quality=0.85, target=0.85, bonus_bp=1000) == 3
    assert quality_bonus(30, quality=0.84, target=0.85, bonus_bp=1000) == 0


def test_hourly_rate_rounds_down():
    assert hourly_rate(25, 61) == 1475  # 1475.4...
    assert hourly_rate(25, 60) == 1500
    assert pay_for_rate(1500, 61) == 26  # 25.41... -> 26


def test_median_seconds_rounds_up():
    assert median_seconds([30, 40, 41, 50]) == 41  # 40.5 -> 41
    assert median_seconds([12.2]) == 13
    with pytest.raises(ValueError):
        median_seconds([])


def test_fair_pay_top_up_known_values():
    # Floor 15.00/h at a 61 s median needs 25.41 -> 26 cents per assignment.
    assert fair_pay_top_up(25, 61, 1500) == 1
    assert fair_pay_top_up(30, 61, 1500) == 0
    top = fair_pay_top_up(np.array([25, 0, 30, 26]), 61, 1500)
    assert top.dtype == np.int64 and top.tolist() == [1, 26, 0, 0]


@given(cents, seconds, cents)
def test_top_up_is_never_negative_reaches_the_floor_and_is_the_least_that_does(pay, secs, floor):
    top = fair_pay_top_up(pay, secs, floor)
    assert isinstance(top, int) and top >= 0
    assert hourly_rate(pay + top, secs) >= floor
    if top > 0:
        assert hourly_rate(pay + top - 1, secs) < floor


@given(st.lists(cents, min_size=1, max_size=30), seconds, cents)
def test_top_ups_reconcile_with_totals(pays, secs, floor):
    tops = fair_pay_top_up(np.array(pays, dtype=np.int64), secs, floor)
    assert tops.tolist() == [fair_pay_top_up(p, secs, floor) for p in pays]
    needed = pay_for_rate(floor, secs)
    # What is paid in all equals, to the cent, each assignment raised to the floor.
    assert int(tops.sum()) + sum(pays) == sum(max(p, needed) for p in pays)
    assert int(tops.sum()) == sum(max(0, needed - p) for p in pays)


def test_publish_check_reports_the_implied_rate_and_the_least_fair_pay():
    check = check_publish_rate(pay_minor=25, estimated_seconds=90, floor_per_hour_minor=1500)
    assert (check.ok, check.implied_rate, check.min_pay_minor) == (False, 1000, 38)
    assert check.explain().endswith("pay at least 38")
    assert check_publish_rate(38, 90, 1500).ok


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_money_as_float_is_refused(money):
    for call in (
        lambda: hourly_rate(money, 60),
        lambda: pay_for_rate(money, 60),
        lambda: fair_pay_top_up(money, 60, 1500),
        lambda: fair_pay_top_up(25, 60, money),
        lambda: fair_pay_top_up(np.array([money]), 60, 1500),
        lambda: quality_bonus(money, 0.9, 0.8, 100),
        lambda: check_publish_rate(money, 60, 1500),
    ):
        with pytest.raises(ValueError):
            call()


def test_bools_and_negative_money_are_refused_numpy_ints_accepted():
    with pytest.raises(ValueError):
        hourly_rate(True, 60)
    with pytest.raises(ValueError):
        fair_pay_top_up(-1, 60, 1500)
    with pytest.raises(ValueError):
        hourly_rate(25, 0)
    assert hourly_rate(np.int64(25), np.int32(60)) == 1500
