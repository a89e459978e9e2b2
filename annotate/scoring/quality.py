"""Annotator quality: gold accuracy, agreement with consensus, and the two combined.

Every score is a Beta posterior mean, so a handful of lucky answers does not
make a perfect score: ``(right + a) / (n + a + b)`` for a prior of ``a``
right in ``a + b``. Each result is a small dataclass that keeps the numbers
it came from, so a dashboard can say why (``explain()``), and a service can
store them (``details()``).

The functions take counts. They broadcast: pass NumPy arrays (one entry per
annotator) to score many at once, then ``.item(i)`` picks one annotator.
To count from answer rows, `gold_counts` and `consensus_counts` group by
annotator; to keep a rolling window, filter the rows first with `in_window`
(by time) or `latest_per_annotator` (by count) and pass the mask.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaincinv

Number = float | NDArray[np.float64]
Count = int | NDArray[np.int64]


# --------------------------------------------------------------------------
# The Beta distribution
# --------------------------------------------------------------------------


def beta_quantile(q: float, a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """The ``q`` quantile of Beta(a, b).

    SciPy's inverse of the regularised incomplete beta: microseconds a call,
    where bisection over a continued fraction took most of a scoring job.
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    if np.any(a <= 0) or np.any(b <= 0):
        raise ValueError("Beta parameters must be positive")
    return np.asarray(betaincinv(a, b, q), dtype=np.float64)


# --------------------------------------------------------------------------
# Results that keep their numbers
# --------------------------------------------------------------------------


class _Explained:
    """Shared helpers: pick one annotator from array results, export the numbers."""

    def item(self, i: int) -> Self:
        """The result for annotator ``i`` of an array-valued result, as plain numbers."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, _Explained):
                v = v.item(i)
            elif isinstance(v, np.ndarray) and v.ndim > 0:
                v = v[i].item()
            elif isinstance(v, np.generic | np.ndarray):
                v = v.item()
            values[f.name] = v
        return type(self)(**values)

    def details(self) -> dict[str, Any]:
        """The numbers as a JSON-friendly dict (for a score's ``details`` column)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, _Explained):
                out[f.name] = v.details()
            elif isinstance(v, np.ndarray | np.generic):
                out[f.name] = v.tolist()
            else:
                out[f.name] = v
        return out

    def _require_scalar(self, value: Any) -> None:
        if np.ndim(value) != 0:
            raise ValueError("explain() needs one annotator's result: call .item(i) first")


def _num(x: float) -> str:
    """A count or prior as words would say it: 2, not 2.0; 0.5 stays 0.5."""
    return f"{float(x):g}"


@dataclass(frozen=True)
class GoldAccuracy(_Explained):
    """Accuracy on gold items, shrunk towards a prior."""

    score: Number  # posterior mean
    lower: Number  # lower credible bound
    n_right: Count
    n_gold: Count
    prior_right: float
    prior_total: float
    credibility: float

    def explain(self) -> str:
        """E.g. ``0.87: 45 of 52 gold items right, with a prior of 2 right in 4``."""
        self._require_scalar(self.score)
        return (
            f"{float(self.score):.2f}: {int(self.n_right)} of {int(self.n_gold)} gold items right, "
            f"with a prior of {_num(self.prior_right)} right in {_num(self.prior_total)} "
            f"(at least {float(self.lower):.2f} with {self.credibility:.0%} credibility)"
        )


@dataclass(frozen=True)
class ConsensusAgreement(_Explained):
    """How often an annotator's answers match the consensus, shrunk towards a prior."""

    score: Number
    lower: Number
    n_agreed: Count
    n_compared: Count
    prior_right: float
    prior_total: float
    credibility: float

    def explain(self) -> str:
        """E.g. ``0.91: agreed with the consensus on 120 of 132 items, with a prior of 1 in 2``."""
        self._require_scalar(self.score)
        return (
            f"{float(self.score):.2f}: agreed with the consensus on {int(self.n_agreed)} of "
            f"{int(self.n_compared)} items, with a prior of {_num(self.prior_right)} in {_num(self.prior_total)} "
            f"(at least {float(self.lower):.2f} with {self.credibility:.0%} credibility)"
        )


@dataclass(frozen=True)
class AnnotatorQuality(_Explained):
    """Gold and consensus evidence pooled into one Beta posterior."""

    score: Number
    lower: Number
    gold: GoldAccuracy
    agreement: ConsensusAgreement
    gold_weight: float  # how many consensus items one gold item is worth
    prior_right: float
    prior_total: float
    credibility: float

    def explain(self) -> str:
        """E.g. ``0.88: 45 of 52 gold items right (each counted 3 times) and ...``."""
        self._require_scalar(self.score)
        return (
            f"{float(self.score):.2f}: {int(self.gold.n_right)} of {int(self.gold.n_gold)} gold items right "
            f"(each counted {_num(self.gold_weight)} times) and agreed with the consensus on "
            f"{int(self.agreement.n_agreed)} of {int(self.agreement.n_compared)} items, "
            f"with a prior of {_num(self.prior_right)} right in {_num(self.prior_total)} "
            f"(at least {float(self.lower):.2f} with {self.credibility:.0%} credibility)"
        )


# --------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------


def _beta_score(right: ArrayLike, total: ArrayLike, prior: tuple[float, float], credibility: float):
    prior_right, prior_total = float(prior[0]), float(prior[1])
    if not 0 < prior_right < prior_total:
        raise ValueError("prior must be (right, total) with 0 < right < total")
    if not 0 < credibility < 1:
        raise ValueError("credibility must be between 0 and 1")
    right = np.asarray(right, dtype=np.float64)
    total = np.asarray(total, dtype=np.float64)
    if np.any(right < 0) or np.any(right > total):
        raise ValueError("need 0 <= right <= total")
    a = right + prior_right
    b = total - right + (prior_total - prior_right)
    score = a / (a + b)
    lower = beta_quantile(1.0 - credibility, a, b)
    if score.ndim == 0:
        return float(score), float(lower), prior_right, prior_total
    return score, lower, prior_right, prior_total


def _counts(x: ArrayLike) -> Count:
    arr = np.asarray(x)
    return int(arr) if arr.ndim == 0 else arr.astype(np.int64)


def gold_accuracy(
    n_right: ArrayLike,
    n_gold: ArrayLike,
    *,
    prior: tuple[float, float] = (2.0, 4.0),
    credibility: float = 0.95,
) -> GoldAccuracy:
    """Gold accuracy as ``(right + a) / (n + a + b)`` for a prior of ``a`` right in ``a + b``.

    ``prior=(2, 4)`` (the default) reads "as if 2 right in 4 before any
    gold": 3 of 3 scores 0.71, not 1.0. ``lower`` is the one-sided
    ``credibility`` lower bound of the Beta posterior.
    """
    score, lower, pr, pt = _beta_score(n_right, n_gold, prior, credibility)
    return GoldAccuracy(score, lower, _counts(n_right), _counts(n_gold), pr, pt, credibility)


def consensus_agreement(
    n_agreed: ArrayLike,
    n_compared: ArrayLike,
    *,
    prior: tuple[float, float] = (1.0, 2.0),
    credibility: float = 0.95,
) -> ConsensusAgreement:
    """Share of an annotator's answers equal to the consensus, with a Beta prior.

    The consensus includes the annotator's own answer, which flatters small
    overlaps; prefer Dawid-Skene posteriors or gold where that matters.
    """
    score, lower, pr, pt = _beta_score(n_agreed, n_compared, prior, credibility)
    return ConsensusAgreement(score, lower, _counts(n_agreed), _counts(n_compared), pr, pt, credibility)


def annotator_quality(
    gold: GoldAccuracy,
    agreement: ConsensusAgreement,
    *,
    gold_weight: float = 3.0,
    prior: tuple[float, float] | None = None,
    credibility: float | None = None,
) -> AnnotatorQuality:
    """Gold and consensus evidence pooled into one Beta posterior.

    Each gold item counts ``gold_weight`` times as much as an item compared
    with the consensus (gold is known to be right; consensus may not be):
    ``(w * gold_right + agreed + a) / (w * n_gold + compared + a + b)``.
    The prior and credibility default to the gold score's.
    """
    if gold_weight < 0:
        raise ValueError("gold_weight must be >= 0")
    prior = (gold.prior_right, gold.prior_total) if prior is None else prior
    credibility = gold.credibility if credibility is None else credibility
    right = gold_weight * np.asarray(gold.n_right, dtype=np.float64) + np.asarray(agreement.n_agreed)
    total = gold_weight * np.asarray(gold.n_gold, dtype=np.float64) + np.asarray(agreement.n_compared)
    score, lower, pr, pt = _beta_score(right, total, prior, credibility)
    return AnnotatorQuality(score, lower, gold, agreement, float(gold_weight), pr, pt, credibility)


def confusion_accuracy(confusion: ArrayLike, priors: ArrayLike) -> NDArray[np.float64]:
    """Per annotator, the chance of a right answer under a Dawid-Skene model.

    ``confusion`` is workers x true x given, ``priors`` the class priors:
    ``sum_c prior_c * confusion[w, c, c]``.
    """
    conf = np.asarray(confusion, dtype=np.float64)
    return np.einsum("wcc,c->w", conf, np.asarray(priors, dtype=np.float64))


# --------------------------------------------------------------------------
# Counting from answer rows, and rolling windows
# --------------------------------------------------------------------------


def gold_counts(
    worker_idx: ArrayLike, correct: ArrayLike, n_workers: int, mask: ArrayLike | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Per annotator ``(n_right, n_gold)`` from one row per gold answer.

    ``correct`` says whether each answer matched the gold label; ``mask``
    keeps only some rows (e.g. a rolling window).
    """
    w = np.asarray(worker_idx, dtype=np.intp)
    ok = np.asarray(correct, dtype=bool)
    if mask is not None:
        keep = np.asarray(mask, dtype=bool)
        w, ok = w[keep], ok[keep]
    n_gold = np.bincount(w, minlength=n_workers)
    n_right = np.bincount(w[ok], minlength=n_workers)
    return n_right.astype(np.int64), n_gold.astype(np.int64)


def consensus_counts(
    item_idx: ArrayLike,
    worker_idx: ArrayLike,
    label: ArrayLike,
    consensus: ArrayLike,
    n_workers: int,
    mask: ArrayLike | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Per annotator ``(n_agreed, n_compared)`` against one consensus label per item.

    Items whose consensus is ``-1`` (none yet) are not compared.
    """
    item = np.asarray(item_idx, dtype=np.intp)
    w = np.asarray(worker_idx, dtype=np.intp)
    lab = np.asarray(label)
    cons = np.asarray(consensus)[item]
    keep = cons >= 0
    if mask is not None:
        keep &= np.asarray(mask, dtype=bool)
    n_compared = np.bincount(w[keep], minlength=n_workers)
    n_agreed = np.bincount(w[keep & (lab == cons)], minlength=n_workers)
    return n_agreed.astype(np.int64), n_compared.astype(np.int64)


def in_window(timestamps: ArrayLike, now: float, seconds: float) -> NDArray[np.bool_]:
    """Rows with ``now - seconds < timestamp <= now`` (timestamps in seconds, e.g. Unix time)."""
    t = np.asarray(timestamps, dtype=np.float64)
    return (t > now - seconds) & (t <= now)


def latest_per_annotator(worker_idx: ArrayLike, timestamps: ArrayLike, n: int) -> NDArray[np.bool_]:
    """Rows that are among each annotator's ``n`` most recent (ties broken by row order)."""
    w = np.asarray(worker_idx, dtype=np.int64)
    t = np.asarray(timestamps, dtype=np.float64)
    if w.size == 0:
        return np.zeros(0, dtype=bool)
    # Newest first within each annotator; rank = position within the group.
    order = np.lexsort((-np.arange(w.size), -t, w))
    sorted_w = w[order]
    start = np.r_[0, np.flatnonzero(sorted_w[1:] != sorted_w[:-1]) + 1]
    group_start = np.repeat(start, np.diff(np.r_[start, w.size]))
    keep = np.zeros(w.size, dtype=bool)
    keep[order] = (np.arange(w.size) - group_start) < n
    return keep
