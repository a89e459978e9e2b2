"""Skill levels (0-100) from counts of evidence: a Beta posterior, no ORM.

An annotator's level in a skill is 100 times the posterior mean of their
chance of a right answer, pooled over gold items and agreement with the
consensus on the projects linked to the skill (the same pooling as
`annotate.scoring.quality.annotator_quality`)::

    n     = W * gold_total + compared          evidence, in consensus-item units
    right = W * gold_right + agreed
    level = round(100 * (right + A) / (n + A + B))
    confidence = n / (n + A + B)

with W = 3 (a gold item is known to be right, so it counts three times as
much as agreeing with a consensus) and a prior Beta(A, B) = Beta(5, 5),
"as if 5 right in 10" before any evidence. So no evidence gives 50 with
confidence 0; 2 gold items right give 100 * (6 + 5) / (6 + 10) = 69, not
100; 45 of 52 gold right and 120 of 140 agreed give
100 * (135 + 120 + 5) / (156 + 140 + 10) = 85 with confidence 0.97.
Confidence is the weight of the evidence against the prior's in the mean.
`round` is half up: 62.5 gives 63.

On top of the computed level, `final_levels` applies what is not evidence
of accuracy: a floor granted by passing a qualification (the project's
minimum level), then an operator's offset, clipped to 0-100.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

GOLD_WEIGHT = 3.0
PRIOR_RIGHT, PRIOR_TOTAL = 5.0, 10.0  # Beta(5, 5)


def _half_up(x: NDArray[np.float64]) -> NDArray[np.int64]:
    # 1e-9 absorbs float error, so 62.5 computed as 62.4999999 still gives 63.
    return np.floor(x + 0.5 + 1e-9).astype(np.int64)


def levels(gold_right: ArrayLike, gold_total: ArrayLike, agreed: ArrayLike,
           compared: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Per row (one annotator in one skill): the level 0-100 and its confidence 0-1."""
    gr, gt, ag, co = (np.asarray(v, dtype=np.float64) for v in (gold_right, gold_total, agreed, compared))
    if np.any(gr < 0) or np.any(gr > gt) or np.any(ag < 0) or np.any(ag > co):
        raise ValueError("need 0 <= gold_right <= gold_total and 0 <= agreed <= compared")
    n = GOLD_WEIGHT * gt + co
    right = GOLD_WEIGHT * gr + ag
    level = _half_up(100.0 * (right + PRIOR_RIGHT) / (n + PRIOR_TOTAL))
    return level, n / (n + PRIOR_TOTAL)


def final_levels(computed: ArrayLike, floor: ArrayLike, offset: ArrayLike) -> NDArray[np.int64]:
    """max(computed, qualification floor) + operator offset, clipped to 0-100."""
    base = np.maximum(np.asarray(computed, dtype=np.int64), np.asarray(floor, dtype=np.int64))
    return np.clip(base + np.asarray(offset, dtype=np.int64), 0, 100)
