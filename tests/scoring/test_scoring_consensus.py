"""Consensus: majority vote, Dawid-Skene, box fusion, span voting, more annotators."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotate.scoring.consensus import (
    dawid_skene,
    extra_annotators_needed,
    fuse_boxes,
    majority_vote,
    micro_task_extra,
    vote_spans,
)

# --------------------------------------------------------------------------
# Majority vote
# --------------------------------------------------------------------------


def test_majority_vote_breaks_ties_towards_the_lowest_class():
    mv = majority_vote(item_idx=[0, 0, 0, 1, 1, 2, 2], label=[2, 2, 1, 3, 1, 0, 0], n_items=4, n_classes=4)
    assert mv.labels.tolist() == [2, 1, 0, -1]  # item 1: a 1-1 tie between 3 and 1
    np.testing.assert_allclose(mv.share[:3], [2 / 3, 0.5, 1.0])
    assert math.isnan(mv.share[3])
    assert mv.votes[0].tolist() == [0, 1, 2, 0]


def test_weighted_majority_vote_lets_trusted_answers_win():
    mv = majority_vote([0, 0, 0], [1, 1, 2], n_items=1, n_classes=3, weights=[0.2, 0.2, 0.9])
    assert mv.labels.tolist() == [2]
    assert mv.share[0] == pytest.approx(0.9 / 1.3)


def test_majority_vote_rejects_labels_out_of_range():
    with pytest.raises(ValueError, match="label"):
        majority_vote([0], [3], n_items=1, n_classes=3)
    with pytest.raises(ValueError, match="integers"):
        majority_vote([0], [1.0], n_items=1, n_classes=3)


# --------------------------------------------------------------------------
# Dawid-Skene
# --------------------------------------------------------------------------


def _simulate(n_items, confusion, k, rng, priors=None):
    """k distinct workers per item, answers drawn from each worker's confusion matrix."""
    n_workers, n_classes, _ = confusion.shape
    truth = rng.choice(n_classes, n_items, p=priors)
    worker = np.argsort(rng.random((n_items, n_workers)), axis=1)[:, :k].ravel()
    item = np.repeat(np.arange(n_items), k)
    cum = confusion[worker, truth[item]].cumsum(axis=1)
    label = np.minimum((rng.random(item.size)[:, None] > cum).sum(axis=1), n_classes - 1)
    return item, worker, label, truth


def _reference_dawid_skene(item, worker, label, n_items, n_workers, n_classes, iterations, smoothing):
    """Textbook EM on dense one-hot answers, for small data."""
    x = np.zeros((n_items, n_workers, n_classes))
    np.add.at(x, (item, worker, label), 1.0)
    votes = x.sum(axis=1)
    answered = votes.sum(axis=1) > 0
    post = np.where(answered[:, None], votes / np.maximum(votes.sum(axis=1, keepdims=True), 1), 1 / n_classes)
    for _ in range(iterations):
        counts = np.einsum("ic,iwl->wcl", post, x) + smoothing
        confusion = counts / counts.sum(axis=2, keepdims=True)
        mass = post[answered].sum(axis=0) + smoothing
        priors = mass / mass.sum()
        log_joint = np.log(priors) + np.einsum("iwl,wcl->ic", x, np.log(confusion))
        joint = np.exp(log_joint - log_joint.max(axis=1, keepdims=True))
        post = joint / joint.sum(axis=1, keepdims=True)
    return post, confusion, priors


def test_dawid_skene_matches_a_textbook_implementation():
    rng = np.random.default_rng(0)
    n_items, n_workers, n_classes = 60, 7, 3
    confusion = rng.dirichlet(np.ones(n_classes) + 4 * np.eye(n_classes)[0], (n_workers, n_classes))
    item, worker, label, _ = _simulate(n_items, confusion, 3, rng)
    # Give item 5 every worker's answer (more than the usual slots), leave
    # items 58-59 without answers, and shuffle the rows.
    extra_w = np.arange(n_workers)
    item = np.r_[item[item < 58], np.full(n_workers, 5)]
    worker = np.r_[worker[: item.size - n_workers], extra_w]
    label = np.r_[label[: item.size - n_workers], rng.integers(0, n_classes, n_workers)]
    perm = rng.permutation(item.size)
    item, worker, label = item[perm], worker[perm], label[perm]

    ds = dawid_skene(
        item, worker, label, n_items, n_workers, n_classes, max_iter=6, tol=0.0, smoothing=0.5, dtype=np.float64
    )
    post, conf, priors = _reference_dawid_skene(item, worker, label, n_items, n_workers, n_classes, 6, 0.5)
    assert ds.iterations == 6 and not ds.converged
    np.testing.assert_allclose(ds.posterior, post, atol=1e-10)
    np.testing.assert_allclose(ds.confusion, conf, atol=1e-12)
    np.testing.assert_allclose(ds.priors, priors, atol=1e-12)
    # Items without answers get the class priors.
    np.testing.assert_allclose(ds.posterior[58:], np.tile(ds.priors, (2, 1)), atol=1e-12)


def _planted_confusion(n_workers, n_classes, rng, low=0.55, high=0.9):
    acc = rng.uniform(low, high, n_workers)
    off = rng.dirichlet(np.ones(n_classes - 1), (n_workers, n_classes)) * (1 - acc)[:, None, None]
    conf = np.zeros((n_workers, n_classes, n_classes))
    for c in range(n_classes):
        conf[:, c, [x for x in range(n_classes) if x != c]] = off[:, c]
        conf[:, c, c] = acc
    return conf


def test_dawid_skene_recovers_planted_confusion_matrices():
    rng = np.random.default_rng(1)
    n_items, n_workers, n_classes = 6000, 10, 3
    planted = _planted_confusion(n_workers, n_classes, rng)
    priors = np.array([0.5, 0.3, 0.2])
    item, worker, label, truth = _simulate(n_items, planted, 5, rng, priors)
    ds = dawid_skene(item, worker, label, n_items, n_workers, n_classes)
    assert ds.converged
    error = np.abs(ds.confusion - planted)
    assert error.mean() < 0.02
    assert error.max() < 0.08
    np.testing.assert_allclose(ds.priors, priors, atol=0.02)
    np.testing.assert_allclose(ds.confusion.sum(axis=2), 1.0)
    assert (ds.labels == truth).mean() > 0.9
    np.testing.assert_allclose(ds.confidence, ds.posterior.max(axis=1))


def test_dawid_skene_beats_majority_vote_with_adversarial_and_noisy_workers():
    rng = np.random.default_rng(2)
    n_classes, eye = 3, np.eye(3)
    good = 0.85 * eye + 0.075 * (1 - eye)
    noisy = np.full((3, 3), 1 / 3)
    # Adversarial: answers the "next" class 80% of the time.
    adversarial = 0.8 * np.roll(eye, 1, axis=1) + 0.1 * (1 - np.roll(eye, 1, axis=1))
    planted = np.stack([good] * 4 + [noisy] * 4 + [adversarial] * 4)
    item, worker, label, truth = _simulate(3000, planted, 5, rng)
    mv = majority_vote(item, label, 3000, n_classes)
    ds = dawid_skene(item, worker, label, 3000, 12, n_classes)
    acc_mv, acc_ds = (mv.labels == truth).mean(), (ds.labels == truth).mean()
    assert acc_ds > 0.9
    assert acc_ds > acc_mv + 0.15
    # It learned who the adversaries are: their diagonal is low, the roll high.
    assert np.all(np.diagonal(ds.confusion[8:], axis1=1, axis2=2) < 0.2)


def test_dawid_skene_handles_workers_with_one_answer_and_items_with_none():
    ds = dawid_skene(
        item_idx=[0, 0, 0, 1, 1, 1, 2],
        worker_idx=[0, 1, 2, 0, 1, 2, 3],
        label=[0, 0, 1, 1, 1, 1, 0],
        n_items=4,
        n_workers=5,  # worker 4 never answered
        n_classes=2,
    )
    assert np.all(np.isfinite(ds.posterior))
    np.testing.assert_allclose(ds.posterior.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(ds.confusion.sum(axis=2), 1.0)
    np.testing.assert_allclose(ds.confusion[4], 0.5)  # no answers: uniform
    np.testing.assert_allclose(ds.posterior[3], ds.priors, rtol=1e-6)
    assert ds.labels[:2].tolist() == [0, 1]


def test_dawid_skene_without_smoothing_survives_contradictions():
    # Worker 0 always says 0 and worker 1 always says 1 on the first items,
    # then they contradict on item 2: with zero smoothing every class can be
    # ruled out, and the item must still get a finite posterior.
    ds = dawid_skene([0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 0, 1], [0, 0, 1, 1, 1, 0], 3, 2, 2, smoothing=0.0)
    assert np.all(np.isfinite(ds.posterior))
    np.testing.assert_allclose(ds.posterior.sum(axis=1), 1.0, rtol=1e-6)


def test_dawid_skene_float32_agrees_with_float64():
    rng = np.random.default_rng(3)
    planted = _planted_confusion(20, 4, rng, 0.4, 0.9)
    item, worker, label, _ = _simulate(2000, planted, 4, rng)
    d64 = dawid_skene(item, worker, label, 2000, 20, 4, dtype=np.float64)
    d32 = dawid_skene(item, worker, label, 2000, 20, 4)
    assert d32.posterior.dtype == np.float32
    assert (d64.labels != d32.labels).mean() < 0.005
    np.testing.assert_allclose(d64.confusion, d32.confusion, atol=1e-3)


def test_dawid_skene_validates_its_input():
    with pytest.raises(ValueError, match="worker_idx"):
        dawid_skene([0], [5], [0], 1, 5, 2)
    with pytest.raises(ValueError, match="same length"):
        dawid_skene([0, 0], [0], [0], 1, 1, 2)
    with pytest.raises(ValueError, match="smoothing"):
        dawid_skene([0], [0], [0], 1, 1, 2, smoothing=-1)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_dawid_skene_posteriors_are_distributions(data):
    n_items = data.draw(st.integers(1, 15))
    n_workers = data.draw(st.integers(1, 5))
    n_classes = data.draw(st.integers(2, 4))
    n = data.draw(st.integers(0, 40))
    item = np.array(data.draw(st.lists(st.integers(0, n_items - 1), min_size=n, max_size=n)), dtype=int)
    worker = np.array(data.draw(st.lists(st.integers(0, n_workers - 1), min_size=n, max_size=n)), dtype=int)
    label = np.array(data.draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)), dtype=int)
    ds = dawid_skene(item, worker, label, n_items, n_workers, n_classes)
    assert ds.posterior.shape == (n_items, n_classes)
    assert np.all(np.isfinite(ds.posterior)) and np.all(ds.posterior >= 0)
    np.testing.assert_allclose(ds.posterior.sum(axis=1), 1.0, rtol=1e-6)  # float32 by default
    np.testing.assert_allclose(ds.priors.sum(), 1.0)


# --------------------------------------------------------------------------
# Boxes and spans
# --------------------------------------------------------------------------


def test_fuse_boxes_keeps_majority_clusters_and_averages_them():
    boxes = [
        [10, 10, 20, 20],  # a0  \
        [11, 10, 20, 20],  # a1   } one label-0 box drawn by all three
        [10, 11, 20, 19],  # a2  /
        [50, 50, 10, 10],  # a0  \ a label-1 box drawn by two
        [51, 50, 10, 10],  # a2  /
        [80, 80, 5, 5],  # a1: alone, dropped
        [10, 10, 20, 20],  # a1: same place but label 2, alone, dropped
    ]
    fused = fuse_boxes(boxes, labels=[0, 0, 0, 1, 1, 0, 2], annotator=[0, 1, 2, 0, 2, 1, 1], n_annotators=3)
    assert fused.labels.tolist() == [0, 1]
    assert fused.support.tolist() == [3, 2]
    np.testing.assert_allclose(fused.boxes, [[31 / 3, 31 / 3, 20, 59 / 3], [50.5, 50, 10, 10]])


def test_fuse_boxes_never_merges_one_annotators_boxes_and_does_not_chain():
    # Two boxes by the same annotator never form a cluster.
    same = fuse_boxes([[0, 0, 10, 10], [0, 0, 10, 10]], [0, 0], [0, 0], n_annotators=2, min_support=2)
    assert same.boxes.shape == (0, 4)
    # a-b and b-c overlap enough, a-c do not: complete linkage keeps a and c apart.
    chain = fuse_boxes(
        [[0, 0, 10, 10], [2, 0, 10, 10], [4, 0, 10, 10]], [0, 0, 0], [0, 1, 2], n_annotators=3, threshold=0.6
    )
    assert chain.support.tolist() == [2]


def test_fuse_boxes_with_no_boxes():
    fused = fuse_boxes(np.zeros((0, 4)), [], [], n_annotators=3)
    assert fused.boxes.shape == (0, 4) and fused.labels.size == 0


def test_vote_spans_keeps_spans_a_majority_marked():
    spans = [(0, 4, 1), (0, 4, 1), (5, 8, 2), (0, 4, 1), (5, 8, 2), (5, 9, 2), (5, 8, 2)]
    voted = vote_spans(spans, annotator=[0, 1, 0, 0, 1, 2, 1], n_annotators=3)
    # (5, 8, 2): annotator 1 marked it twice, which counts once.
    assert voted.spans.tolist() == [[0, 4, 1], [5, 8, 2]]
    assert voted.support.tolist() == [2, 2]
    assert vote_spans(spans, [0, 1, 0, 0, 1, 2, 1], 3, min_support=3).spans.shape == (0, 3)


# --------------------------------------------------------------------------
# More annotators for unsure items
# --------------------------------------------------------------------------


def test_extra_annotators_only_for_unsure_items_and_up_to_the_maximum():
    need = extra_annotators_needed(
        confidence=[0.5, 0.95, np.nan, 0.6, 0.7], overlap=[3, 3, 0, 5, 4], target=0.9, max_overlap=5, step=2
    )
    assert need.tolist() == [2, 0, 2, 0, 1]


def test_micro_task_needs_what_its_most_unsure_item_needs():
    assert micro_task_extra([1, 0, 0, 0, 2], micro_task_idx=[0, 0, 1, 1, 2], n_micro_tasks=4).tolist() == [1, 0, 2, 0]
