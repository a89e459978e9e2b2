"""Annotator quality: Beta-shrunk scores that keep and explain their numbers."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from annotate.scoring.quality import (
    annotator_quality,
    beta_quantile,
    confusion_accuracy,
    consensus_agreement,
    consensus_counts,
    gold_accuracy,
    gold_counts,
    in_window,
    latest_per_annotator,
)


def test_three_lucky_gold_answers_do_not_make_a_perfect_score():
    g = gold_accuracy(n_right=3, n_gold=3)
    assert g.score == pytest.approx(5 / 7)  # (3 + 2) / (3 + 4)
    assert g.lower < g.score < 1.0


def test_gold_accuracy_keeps_its_numbers_and_explains_them():
    g = gold_accuracy(45, 52, prior=(2, 4))
    assert g.score == pytest.approx(47 / 56)
    assert (g.n_right, g.n_gold, g.prior_right, g.prior_total) == (45, 52, 2.0, 4.0)
    assert g.explain() == (
        f"0.84: 45 of 52 gold items right, with a prior of 2 right in 4 (at least {g.lower:.2f} with 95% credibility)"
    )
    assert json.loads(json.dumps(g.details()))["n_gold"] == 52


def test_lower_bound_is_the_beta_quantile():
    g = gold_accuracy(45, 52, credibility=0.9)
    assert g.lower == pytest.approx(float(beta_quantile(0.1, 47, 9)))


def test_beta_quantile_matches_closed_forms():
    q = np.array([0.05, 0.3, 0.5, 0.9])
    np.testing.assert_allclose([beta_quantile(x, 1, 1) for x in q], q, atol=1e-12)
    np.testing.assert_allclose([beta_quantile(x, 3, 1) for x in q], q ** (1 / 3), atol=1e-12)
    np.testing.assert_allclose([beta_quantile(x, 1, 4) for x in q], 1 - (1 - q) ** (1 / 4), atol=1e-12)
    np.testing.assert_allclose(beta_quantile(0.5, [2.5, 40, 700], [2.5, 40, 700]), 0.5, atol=1e-12)


def test_beta_quantile_matches_numerical_integration():
    a, b = 47.0, 9.0
    x = np.linspace(0, 1, 2_000_001)
    pdf = x ** (a - 1) * (1 - x) ** (b - 1)
    cdf = np.cumsum(pdf)
    cdf /= cdf[-1]
    for q in (0.025, 0.05, 0.5, 0.95):
        assert beta_quantile(q, a, b) == pytest.approx(x[np.searchsorted(cdf, q)], abs=1e-5)


@given(st.integers(0, 500), st.integers(0, 500))
def test_scores_lie_between_the_bound_and_one(right, wrong):
    g = gold_accuracy(right, right + wrong)
    assert 0 <= g.lower <= g.score <= 1
    assert g.score == pytest.approx((right + 2) / (right + wrong + 4))


def test_array_inputs_score_many_annotators_and_item_picks_one():
    ga = gold_accuracy(np.array([3, 45, 0]), np.array([3, 52, 0]))
    assert ga.score.shape == (3,)
    assert ga.item(1) == gold_accuracy(45, 52)
    assert ga.item(2).score == 0.5  # no gold yet: the prior's mean
    with pytest.raises(ValueError, match="item"):
        ga.explain()


def test_consensus_agreement_explains_itself():
    a = consensus_agreement(120, 132)
    assert a.score == pytest.approx(121 / 134)
    assert a.explain().startswith("0.90: agreed with the consensus on 120 of 132 items, with a prior of 1 in 2")


def test_annotator_quality_pools_gold_and_consensus_evidence():
    q = annotator_quality(gold_accuracy(45, 52), consensus_agreement(120, 132), gold_weight=3)
    assert q.score == pytest.approx((3 * 45 + 120 + 2) / (3 * 52 + 132 + 4))
    assert q.explain().startswith(
        f"{q.score:.2f}: 45 of 52 gold items right (each counted 3 times) and agreed with the consensus on 120 of 132"
    )
    details = json.loads(json.dumps(q.details()))
    assert details["gold"]["n_right"] == 45 and details["agreement"]["n_compared"] == 132
    many = annotator_quality(
        gold_accuracy(np.array([45, 1]), np.array([52, 1])), consensus_agreement(np.array([120, 0]), np.array([132, 0]))
    )
    assert many.item(0) == q


def test_gold_accuracy_rejects_impossible_counts_and_priors():
    with pytest.raises(ValueError):
        gold_accuracy(5, 4)
    with pytest.raises(ValueError):
        gold_accuracy(1, 2, prior=(0, 4))


def test_confusion_accuracy_weights_the_diagonal_by_class_priors():
    conf = np.array([[[0.9, 0.1], [0.3, 0.7]], [[0.5, 0.5], [0.5, 0.5]]])
    np.testing.assert_allclose(confusion_accuracy(conf, [0.75, 0.25]), [0.75 * 0.9 + 0.25 * 0.7, 0.5])


def test_counts_from_rows_with_a_window():
    n_right, n_gold = gold_counts(worker_idx=[0, 0, 1, 1, 1], correct=[1, 0, 1, 1, 0], n_workers=3)
    assert n_right.tolist() == [1, 2, 0] and n_gold.tolist() == [2, 3, 0]
    ts = np.array([10, 100, 50, 95, 99])
    window = in_window(ts, now=100, seconds=10)
    assert window.tolist() == [False, True, False, True, True]
    n_right, n_gold = gold_counts([0, 0, 1, 1, 1], [1, 0, 1, 1, 0], 3, mask=window)
    assert n_right.tolist() == [0, 1, 0] and n_gold.tolist() == [1, 2, 0]


def test_consensus_counts_skip_items_without_consensus():
    agreed, compared = consensus_counts(
        item_idx=[0, 0, 1, 1, 2], worker_idx=[0, 1, 0, 1, 1], label=[2, 1, 0, 0, 1], consensus=[2, 0, -1], n_workers=2
    )
    assert agreed.tolist() == [2, 1] and compared.tolist() == [2, 2]


def test_latest_per_annotator_keeps_each_annotators_newest_rows():
    keep = latest_per_annotator(worker_idx=[0, 1, 0, 0, 1, 0], timestamps=[1, 2, 5, 3, 1, 4], n=2)
    assert keep.tolist() == [False, True, True, False, True, True]
