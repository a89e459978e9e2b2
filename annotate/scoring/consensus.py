"""Consensus labels from several annotators' answers, as functions of NumPy arrays.

What lives here: majority vote, Dawid-Skene EM, fusion of rectangles
drawn by several annotators, majority voting of entity spans, and the
rule for asking more annotators when the consensus is not confident.

Answers come as parallel integer arrays, one entry per answer:
``item_idx`` (0..n_items-1), ``worker_idx`` (0..n_workers-1) and ``label``
(0..n_classes-1). The caller maps database ids to these dense indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .agreement import box_iou


def _index(values: ArrayLike, size: int, name: str) -> NDArray[np.intp]:
    """An index array checked against ``0 <= value < size``."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got {arr.dtype}")
    arr = arr.astype(np.intp, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= size):
        raise ValueError(f"{name} must lie in 0..{size - 1}")
    return arr


def _answer_slots(
    item: NDArray[np.intp], key: NDArray[np.intp], n_per_item: NDArray, n_keys: int
) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """Answers laid out as a (slots x items) table of keys, plus the answers that did not fit.

    Row j holds each item's j-th answer key, or ``n_keys`` (an empty slot)
    when the item has fewer answers. Summing over rows then costs a few
    dense passes over items instead of a scatter over answers, which is
    what makes an EM iteration cheap. The number of rows is the mean number
    of answers per item rounded up, so padding stays below one row; answers
    beyond it (items with many more answers, such as gold items) are
    returned as a mask to be handled by np.bincount.
    """
    n_items, n_answers = n_per_item.size, item.size
    n_slots = int(-(-n_answers // max(int((n_per_item > 0).sum()), 1)))
    if n_answers == 0:
        return np.zeros((0, n_items), dtype=np.intp), np.zeros(0, dtype=bool)
    # Rank of each answer within its item, from a stable order by item
    # (free when the answers come sorted by item). Sorting the int64 values
    # item * n + position gives that order, and NumPy's SIMD sort does it
    # ~8x faster than argsort(kind="stable").
    first = np.cumsum(n_per_item) - n_per_item
    if np.all(item[1:] >= item[:-1]):
        rank = np.arange(n_answers) - first[item]
    else:
        if n_items * n_answers < 2**62:
            order = np.sort(item * n_answers + np.arange(n_answers)) % n_answers
        else:
            order = np.argsort(item, kind="stable")
        rank = np.empty(n_answers, dtype=np.intp)
        rank[order] = np.arange(n_answers) - first[item[order]]
    fits = rank < n_slots
    slots = np.full(n_slots * n_items, n_keys, dtype=np.intp)
    if fits.all():
        slots[rank * n_items + item] = key
    else:
        slots[rank[fits] * n_items + item[fits]] = key[fits]
    slots = slots.reshape(n_slots, n_items)
    return slots, ~fits


# --------------------------------------------------------------------------
# Majority vote
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class MajorityVote:
    """Majority vote per item, with the votes it came from."""

    labels: NDArray[np.int64]  # -1 for items with no answers
    share: NDArray[np.float64]  # winning votes / all votes; NaN with no answers
    votes: NDArray  # items x classes, counts (or summed weights)


def majority_vote(
    item_idx: ArrayLike,
    label: ArrayLike,
    n_items: int,
    n_classes: int,
    weights: ArrayLike | None = None,
) -> MajorityVote:
    """The most voted class per item; ties go to the lowest class index.

    The tie-break is arbitrary but deterministic, so re-scoring the same
    answers always gives the same consensus. Optional per-answer
    ``weights`` (e.g. annotator quality) give a weighted vote.
    """
    item = _index(item_idx, n_items, "item_idx")
    lab = _index(label, n_classes, "label")
    if item.shape != lab.shape:
        raise ValueError("item_idx and label must have the same length")
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    votes = np.bincount(item * n_classes + lab, weights=w, minlength=n_items * n_classes)
    votes = votes.reshape(n_items, n_classes)
    total = votes.sum(axis=1)
    winner = votes.argmax(axis=1)  # argmax returns the first maximum: lowest class
    answered = total > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(answered, votes[np.arange(n_items), winner] / total, np.nan)
    return MajorityVote(np.where(answered, winner, -1).astype(np.int64), share, votes)


# --------------------------------------------------------------------------
# Dawid-Skene
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DawidSkene:
    """Result of Dawid-Skene EM."""

    posterior: NDArray  # items x classes, P(true class | answers)
    labels: NDArray[np.int64]  # argmax of the posterior (lowest class on ties)
    confidence: NDArray  # max posterior per item
    confusion: NDArray  # workers x true class x given label; rows sum to 1
    priors: NDArray  # class priors
    iterations: int
    converged: bool
    log_likelihood: float  # of the answers under the final model


def dawid_skene(
    item_idx: ArrayLike,
    worker_idx: ArrayLike,
    label: ArrayLike,
    n_items: int,
    n_workers: int,
    n_classes: int,
    *,
    max_iter: int = 100,
    tol: float = 1e-5,
    smoothing: float = 0.01,
    dtype: DTypeLike = np.float32,
) -> DawidSkene:
    """Dawid and Skene (1979): EM over per-annotator confusion matrices.

    Starts from the majority-vote posteriors (vote shares), then alternates
    the M-step (confusion matrices and class priors from posteriors) and the
    E-step (posteriors from confusion matrices and priors) until the
    log-likelihood per answer changes by less than ``tol`` or ``max_iter``
    iterations have run.

    ``smoothing`` is a Dirichlet pseudo-count added to every confusion cell
    and every class prior, so an annotator with few answers gets a
    confusion matrix pulled towards uniform rather than zeros that would
    veto a class. Items without answers get the class priors as their
    posterior. ``dtype`` is the precision of the per-item arithmetic:
    float32 (the default) takes about half the time of float64 on large
    batches (bench/aggregate.py) and is ample for probabilities; confusion
    counts and the log-likelihood are always summed in float64.

    Cost per iteration is a few passes over answers and items, with no
    Python loop over either (see `_answer_slots`).
    """
    n_c = n_classes
    item = _index(item_idx, n_items, "item_idx")
    worker = _index(worker_idx, n_workers, "worker_idx")
    lab = _index(label, n_c, "label")
    if not item.shape == worker.shape == lab.shape:
        raise ValueError("item_idx, worker_idx and label must have the same length")
    if smoothing < 0:
        raise ValueError("smoothing must be >= 0")
    if max_iter < 1:
        raise ValueError("max_iter must be at least 1")
    dtype = np.dtype(dtype)
    n_answers = item.size

    # Work in (classes x items) layout so each class is a contiguous row.
    votes = np.bincount(lab * n_items + item, minlength=n_c * n_items).reshape(n_c, n_items)
    n_per_item = votes.sum(axis=0)
    answered = n_per_item > 0
    answered_w = answered.astype(dtype)
    all_answered = bool(answered.all())
    post = (votes / np.maximum(n_per_item, 1)).astype(dtype)
    post[:, ~answered] = 1.0 / n_c

    # Key of (worker, given label) per answer: confusion counts are sums of
    # item posteriors grouped by key, and an item's log-likelihood is a sum
    # of per-key log-probabilities.
    key = worker * n_c + lab
    n_keys = n_workers * n_c
    key_total = np.bincount(key, minlength=n_keys).astype(np.float64)
    slots, overflow = _answer_slots(item, key, n_per_item, n_keys)
    item_over, key_over = item[overflow], key[overflow]

    log_lik = -np.inf
    converged = False
    iterations = 0
    priors = np.full(n_c, 1.0 / n_c)
    counts = np.empty((n_c, n_keys + 1))
    log_conf = np.zeros((n_c, n_keys + 1), dtype=dtype)  # last column: empty slot, log 1
    scratch = np.empty((n_c, n_items), dtype=dtype)
    for iterations in range(1, max_iter + 1):
        # M-step. counts[c, w * C + l] = sum of P(item is c) over w's answers l.
        # Posteriors sum to 1 over classes, so the last class is what the
        # others leave of each key's answer count.
        for c in range(n_c - 1):
            counts[c] = sum(np.bincount(row, weights=post[c], minlength=n_keys + 1) for row in slots)
            if item_over.size:
                counts[c, :n_keys] += np.bincount(key_over, weights=post[c, item_over], minlength=n_keys)
        counts[-1, :n_keys] = np.maximum(key_total - counts[:-1, :n_keys].sum(axis=0), 0.0)
        smoothed = counts[:, :n_keys].reshape(n_c, n_workers, n_c) + smoothing  # true x worker x given
        rows = smoothed.sum(axis=2, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            confusion_tw = np.where(rows > 0, smoothed / rows, 1.0 / n_c)
        class_mass = (post.sum(axis=1) if all_answered else post @ answered_w).astype(np.float64) + smoothing
        mass = class_mass.sum()
        priors = class_mass / mass if mass > 0 else np.full(n_c, 1.0 / n_c)

        # E-step. log P(item is c, answers) = log prior_c + sum log pi[w, c, l].
        with np.errstate(divide="ignore"):
            log_conf[:, :n_keys] = np.log(confusion_tw).reshape(n_c, n_keys)
            log_prior = np.log(priors).astype(dtype)
        # The M-step is done with the posteriors: overwrite them in place.
        log_joint = post
        log_joint[...] = log_prior[:, None]
        for row in slots:
            log_joint += np.take(log_conf, row, axis=1, out=scratch)
        for c in range(n_c if item_over.size else 0):
            log_joint[c] += np.bincount(item_over, weights=np.take(log_conf[c], key_over), minlength=n_items).astype(
                dtype
            )
        top = log_joint.max(axis=0)
        impossible = ~np.isfinite(top)  # only with smoothing=0: every class ruled out
        if impossible.any():
            log_joint[:, impossible] = log_prior[:, None]
            top[impossible] = log_prior.max()
        log_joint -= top
        np.exp(log_joint, out=log_joint)
        evidence = log_joint.sum(axis=0)
        log_joint /= evidence

        new_log_lik = float(top.sum(dtype=np.float64) + np.log(evidence).sum(dtype=np.float64))
        change = abs(new_log_lik - log_lik) / max(n_answers, 1)
        log_lik = new_log_lik
        if change < tol:
            converged = True
            break

    confusion = confusion_tw.transpose(1, 0, 2)  # workers x true x given
    posterior = post.T
    labels = posterior.argmax(axis=1).astype(np.int64)
    return DawidSkene(
        posterior=posterior,
        labels=labels,
        confidence=posterior.max(axis=1),
        confusion=np.ascontiguousarray(confusion),
        priors=priors,
        iterations=iterations,
        converged=converged,
        log_likelihood=log_lik,
    )


# --------------------------------------------------------------------------
# Regions and spans
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FusedBoxes:
    """Rectangles agreed on by enough annotators."""

    boxes: NDArray[np.float64]  # n x 4, Label Studio (x, y, width, height) in percent
    labels: NDArray[np.int64]
    support: NDArray[np.int64]  # how many annotators drew each one
    # Per input box, the fused box it went into, or -1 (its cluster lacked support):
    # what per-region answers (a text per box) are matched through.
    members: NDArray[np.int64]


def fuse_boxes(
    boxes: ArrayLike,
    labels: ArrayLike,
    annotator: ArrayLike,
    n_annotators: int,
    *,
    threshold: float = 0.5,
    min_support: int | None = None,
) -> FusedBoxes:
    """Fuse the rectangles k annotators drew on one item.

    Boxes are clustered greedily by IoU, highest first: two clusters merge
    when they have the same label, no annotator in common, and every pair of
    their boxes has IoU >= ``threshold`` (complete linkage, so a chain of
    overlapping boxes cannot drift into one cluster). A cluster is kept when
    at least ``min_support`` annotators drew it (default: a strict majority
    of ``n_annotators``); its box is the mean of its members' coordinates.
    Output is ordered by support, then by first member.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    lab = np.asarray(labels, dtype=np.int64)
    ann = np.asarray(annotator, dtype=np.int64)
    if not len(b) == len(lab) == len(ann):
        raise ValueError("boxes, labels and annotator must have the same length")
    need = n_annotators // 2 + 1 if min_support is None else min_support
    iou = box_iou(b, b)
    ok = (iou >= threshold) & (lab[:, None] == lab[None, :]) & (ann[:, None] != ann[None, :])
    ia, ib = np.nonzero(np.triu(ok, k=1))
    order = np.argsort(-iou[ia, ib], kind="stable")
    cluster = np.arange(len(b))  # cluster id per box: its first member
    # A loop over candidate pairs of one item's boxes (a few dozen at most):
    # each merge changes which later merges are allowed.
    for k in order:
        ca, cb = cluster[ia[k]], cluster[ib[k]]
        if ca == cb:
            continue
        in_a, in_b = cluster == ca, cluster == cb
        if np.intersect1d(ann[in_a], ann[in_b]).size or not ok[np.ix_(in_a, in_b)].all():
            continue
        cluster[in_b] = min(ca, cb)
        cluster[in_a] = min(ca, cb)
    ids, inverse, support = np.unique(cluster, return_inverse=True, return_counts=True)
    sums = np.zeros((ids.size, 4))
    np.add.at(sums, inverse, b)  # one row per box of one item: small
    keep = np.flatnonzero(support >= need)
    keep = keep[np.lexsort((ids[keep], -support[keep]))]
    position = np.full(ids.size, -1, dtype=np.int64)
    position[keep] = np.arange(keep.size)
    return FusedBoxes(
        boxes=sums[keep] / support[keep, None],
        labels=lab[ids[keep]] if len(b) else np.zeros(0, dtype=np.int64),
        support=support[keep].astype(np.int64),
        members=position[inverse].reshape(-1) if len(b) else np.zeros(0, dtype=np.int64),
    )


@dataclass(frozen=True)
class VotedSpans:
    """Entity spans chosen by enough annotators."""

    spans: NDArray[np.int64]  # n x 3: start, end (exclusive), label
    support: NDArray[np.int64]


def vote_spans(
    spans: ArrayLike, annotator: ArrayLike, n_annotators: int, *, min_support: int | None = None
) -> VotedSpans:
    """Keep the spans (exact start, end and label) that a majority of annotators marked.

    ``spans`` has rows ``(start, end, label)`` for one item, ``annotator``
    says who marked each. An annotator marking the same span twice counts
    once. ``min_support`` defaults to a strict majority of ``n_annotators``.
    Output is sorted by start, end, label.
    """
    s = np.asarray(spans, dtype=np.int64).reshape(-1, 3)
    ann = np.asarray(annotator, dtype=np.int64).reshape(-1, 1)
    need = n_annotators // 2 + 1 if min_support is None else min_support
    distinct = np.unique(np.hstack([ann, s]), axis=0)[:, 1:]
    unique, support = np.unique(distinct, axis=0, return_counts=True)
    keep = support >= need
    return VotedSpans(unique[keep].reshape(-1, 3), support[keep].astype(np.int64))


# --------------------------------------------------------------------------
# Asking for more annotators
# --------------------------------------------------------------------------


def extra_annotators_needed(
    confidence: ArrayLike,
    overlap: ArrayLike,
    *,
    target: float,
    max_overlap: int,
    step: int = 1,
) -> NDArray[np.int64]:
    """How many more annotators each item should get, given its consensus confidence.

    An item whose ``confidence`` is below ``target`` asks for ``step`` more
    annotators, never beyond ``max_overlap`` in total (``overlap`` is how
    many it has now). NaN confidence (no answers yet) counts as below
    target. Applied again after each round, this grows the overlap only
    where annotators disagree.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    have = np.asarray(overlap, dtype=np.int64)
    if step < 1:
        raise ValueError("step must be at least 1")
    low = ~(conf >= target)  # NaN compares False: no answers is not confident
    room = np.clip(max_overlap - have, 0, None)
    return np.where(low, np.minimum(step, room), 0).astype(np.int64)


def micro_task_extra(needed: ArrayLike, micro_task_idx: ArrayLike, n_micro_tasks: int) -> NDArray[np.int64]:
    """Extra annotators per micro-task: the most any of its items needs.

    A micro-task is handed out whole, so one unsure item re-opens it.
    """
    need = np.asarray(needed, dtype=np.int64)
    mt = _index(micro_task_idx, n_micro_tasks, "micro_task_idx")
    out = np.zeros(n_micro_tasks, dtype=np.int64)
    np.maximum.at(out, mt, need)  # one entry per item, not per answer
    return out
