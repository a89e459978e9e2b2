"""Agreement between annotators, as functions of NumPy arrays.

What lives here:

- Krippendorff's alpha (nominal and interval) on a reliability data matrix,
  with a bootstrap confidence interval over units;
- per-item agreement with a consensus label;
- set agreement for multi-label answers (Jaccard, MASI);
- regions: rectangle and polygon IoU, matching of regions between two
  annotators and their F1;
- named-entity spans: exact and overlap F1, and their pairwise overlap;
- free text: normalised edit similarity.

Conventions. A *reliability data matrix* has one row per unit (item) and
one column per coder (annotator). Integer matrices hold class codes with
``-1`` for "no answer"; float matrices hold values with ``NaN`` for "no
answer" (use floats when -1 is a real value). Answers stored as rows
(item, annotator, label) become such a matrix with `reliability_matrix`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Metric = Literal["nominal", "interval"]
SetMetric = Literal["jaccard", "masi"]

MISSING = -1


# --------------------------------------------------------------------------
# Krippendorff's alpha
# --------------------------------------------------------------------------


def reliability_matrix(
    item_idx: ArrayLike,
    worker_idx: ArrayLike,
    label: ArrayLike,
    n_items: int,
    n_workers: int,
) -> NDArray[np.int64]:
    """Units x coders matrix of integer labels, ``-1`` where a coder gave no answer.

    If one annotator answered one item twice (the platform forbids it), the
    later row wins.
    """
    m = np.full((n_items, n_workers), MISSING, dtype=np.int64)
    m[np.asarray(item_idx), np.asarray(worker_idx)] = np.asarray(label)
    return m


def _present(data: NDArray) -> NDArray[np.bool_]:
    if data.ndim != 2:
        raise ValueError(f"reliability data must be 2-D (units x coders), got {data.ndim}-D")
    if np.issubdtype(data.dtype, np.integer):
        return data != MISSING
    if np.issubdtype(data.dtype, np.floating):
        return ~np.isnan(data)
    raise ValueError(f"reliability data must be integer or float, got {data.dtype}")


def coincidence_matrix(data: ArrayLike) -> tuple[NDArray, NDArray[np.float64]]:
    """Krippendorff's coincidence matrix of a units x coders matrix.

    Returns ``(values, o)``: the distinct values seen in pairable units
    (units with at least two answers), and ``o[c, k]``, the number of
    c-k pairs, each unit's pairs weighted by ``1 / (m_u - 1)``.
    """
    values, counts, m = _value_counts(np.asarray(data))
    scaled = counts / (m - 1)[:, None]
    o = scaled.T @ counts - np.diag(scaled.sum(axis=0))
    return values, o


def _value_counts(data: NDArray) -> tuple[NDArray, NDArray[np.float64], NDArray[np.float64]]:
    """For pairable units: distinct values, counts (units x values), answers per unit."""
    present = _present(data)
    m = present.sum(axis=1)
    pairable = m >= 2
    data, present, m = data[pairable], present[pairable], m[pairable]
    values, code = np.unique(data[present], return_inverse=True)
    rows = np.nonzero(present)[0]  # row-major, the same order as data[present]
    n_units, n_values = data.shape[0], values.size
    counts = np.bincount(rows * n_values + code, minlength=n_units * n_values)
    return values, counts.reshape(n_units, n_values).astype(np.float64), m.astype(np.float64)


def _unit_stats(data: NDArray, metric: Metric) -> NDArray[np.float64]:
    """Per pairable unit, the additive statistics alpha is a function of.

    Columns: answers ``m_u``, observed disagreement mass
    ``sum_{c,k} o_uck * delta_ck``, then what the expected disagreement
    needs (value counts for nominal; sum and sum of squares for interval).
    Because every column adds over units, a bootstrap resample is a matrix
    product of resampling counts with this table.
    """
    if metric == "nominal":
        _, counts, m = _value_counts(data)
        # Pairs within a unit that disagree: m^2 - sum n_uc^2, over (m - 1).
        observed = (m**2 - (counts**2).sum(axis=1)) / (m - 1)
        return np.column_stack([m, observed, counts])
    if metric == "interval":
        x = np.asarray(data, dtype=np.float64)
        present = _present(np.asarray(data))
        m = present.sum(axis=1)
        keep = m >= 2
        x, present, m = x[keep], present[keep], m[keep].astype(np.float64)
        # Interval distance is shift-invariant; centring keeps the sums of
        # squares below from cancelling catastrophically.
        if x.size and present.any():
            x = x - x[present].mean()
        xs = np.where(present, x, 0.0)
        s1 = xs.sum(axis=1)
        dev = np.where(present, x - (s1 / np.maximum(m, 1))[:, None], 0.0)
        # sum_{i != j} (x_i - x_j)^2 = 2 m sum (x_i - mean)^2, over (m - 1).
        observed = 2.0 * m * (dev**2).sum(axis=1) / (m - 1)
        return np.column_stack([m, observed, s1, (xs**2).sum(axis=1)])
    raise ValueError(f"unknown metric {metric!r}: use 'nominal' or 'interval'")


def _alpha_from_totals(totals: NDArray[np.float64], metric: Metric) -> NDArray[np.float64]:
    """Alpha for each row of summed unit statistics; NaN where undefined."""
    n, observed = totals[:, 0], totals[:, 1]
    if metric == "nominal":
        expected = n**2 - (totals[:, 2:] ** 2).sum(axis=1)
    else:
        s1, s2 = totals[:, 2], totals[:, 3]
        expected = 2.0 * n * s2 - 2.0 * s1**2
    # alpha = 1 - D_o / D_e with D_o = observed / n, D_e = expected / (n (n - 1)).
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = 1.0 - (n - 1.0) * observed / expected
    # No variation at all (expected disagreement 0) leaves alpha undefined.
    tiny = 1e-12 * np.maximum(n, 1.0) ** 2
    return np.where((n >= 2) & (expected > tiny), alpha, np.nan)


def krippendorff_alpha(data: ArrayLike, metric: Metric = "nominal") -> float:
    """Krippendorff's alpha of a units x coders matrix (-1 / NaN = missing).

    ``alpha = 1 - D_o / D_e`` from the coincidence matrix: observed
    disagreement among values in the same unit against the disagreement
    expected from all pairable values. ``nominal`` uses
    ``delta = [c != k]``, ``interval`` uses ``delta = (c - k)^2``. Units with
    fewer than two answers are not pairable and are ignored. Returns NaN
    when alpha is undefined (fewer than two pairable values or no variation).
    """
    stats = _unit_stats(np.asarray(data), metric)
    return float(_alpha_from_totals(stats.sum(axis=0, keepdims=True), metric)[0])


@dataclass(frozen=True)
class AlphaInterval:
    """Alpha with a percentile bootstrap interval, and the numbers behind it."""

    alpha: float
    low: float
    high: float
    confidence: float
    metric: str
    n_units: int  # pairable units, the ones resampled
    n_values: int  # pairable values
    n_boot: int  # resamples where alpha was defined


def alpha_bootstrap(
    data: ArrayLike,
    metric: Metric = "nominal",
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> AlphaInterval:
    """Krippendorff's alpha with a bootstrap interval over units.

    Units are resampled with replacement (coders stay paired within a
    unit); the interval is the percentile interval of the resampled
    alphas. Resamples where alpha is undefined are dropped. Deterministic
    for a given ``seed``.
    """
    return _bootstrap(_unit_stats(np.asarray(data), metric), metric, n_boot, confidence, seed)


def nominal_alpha_from_answers(
    unit: ArrayLike,
    coder: ArrayLike,
    value: ArrayLike,
    n_units: int,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> AlphaInterval:
    """Nominal alpha and its bootstrap interval from lists of answers.

    The same numbers as ``alpha_bootstrap`` on the units x coders matrix
    (the later of two answers by one coder to one unit wins), from the
    units x values counts alone: a project of 200,000 items and 100
    annotators needs 200,000 x labels cells, not 20 million.
    """
    unit, coder, value = (np.asarray(a, dtype=np.int64) for a in (unit, coder, value))
    if unit.size:
        key = unit * (int(coder.max()) + 1) + coder
        _, last_from_end = np.unique(key[::-1], return_index=True)
        keep = unit.size - 1 - last_from_end
        unit, value = unit[keep], value[keep]
    given = value != MISSING
    unit, value = unit[given], value[given]
    values, code = np.unique(value, return_inverse=True)
    counts = np.bincount(unit * values.size + code, minlength=n_units * values.size)
    counts = counts.reshape(n_units, values.size).astype(np.float64)
    m = counts.sum(axis=1)
    pairable = m >= 2
    counts, m = counts[pairable], m[pairable]
    stats = np.column_stack([m, (m**2 - (counts**2).sum(axis=1)) / (m - 1), counts])
    return _bootstrap(stats, "nominal", n_boot, confidence, seed)


def _bootstrap(stats: NDArray[np.float64], metric: Metric, n_boot: int, confidence: float,
               seed: int) -> AlphaInterval:
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    alpha = float(_alpha_from_totals(stats.sum(axis=0, keepdims=True), metric)[0])
    n_units = stats.shape[0]
    if n_units == 0 or n_boot <= 0:
        return AlphaInterval(alpha, np.nan, np.nan, confidence, metric, n_units, 0, 0)
    rng = np.random.default_rng(seed)
    # Resample in chunks so the (resamples x units) count matrix stays small.
    chunk = max(1, min(n_boot, (1 << 22) // n_units))
    alphas = []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        picks = rng.integers(0, n_units, size=(b, n_units))
        flat = (np.arange(b)[:, None] * n_units + picks).ravel()
        weights = np.bincount(flat, minlength=b * n_units).reshape(b, n_units)
        alphas.append(_alpha_from_totals(weights @ stats, metric))
    boot = np.concatenate(alphas)
    boot = boot[np.isfinite(boot)]
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [tail, 1.0 - tail]) if boot.size else (np.nan, np.nan)
    return AlphaInterval(
        alpha, float(low), float(high), confidence, metric, n_units, int(stats[:, 0].sum()), int(boot.size)
    )


# --------------------------------------------------------------------------
# Per-item agreement with a consensus
# --------------------------------------------------------------------------


def item_agreement(item_idx: ArrayLike, label: ArrayLike, consensus: ArrayLike) -> NDArray[np.float64]:
    """Share of each item's answers equal to its consensus label.

    ``item_idx`` and ``label`` are parallel arrays, one entry per answer;
    ``consensus`` has one label per item. NaN for items with no answers.
    """
    item_idx, label, consensus = np.asarray(item_idx), np.asarray(label), np.asarray(consensus)
    n_items = consensus.shape[0]
    agree = label == consensus[item_idx]
    total = np.bincount(item_idx, minlength=n_items)
    agreed = np.bincount(item_idx, weights=agree, minlength=n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, agreed / total, np.nan)


# --------------------------------------------------------------------------
# Multi-label answers: sets of labels as boolean vectors
# --------------------------------------------------------------------------


def _set_agreement(inter: NDArray, size_a: NDArray, size_b: NDArray, metric: SetMetric) -> NDArray[np.float64]:
    union = size_a + size_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        # Two empty sets say the same thing: full agreement.
        jaccard = np.where(union > 0, inter / np.where(union > 0, union, 1), 1.0)
    if metric == "jaccard":
        return jaccard
    if metric == "masi":
        # Passonneau (2006): monotonicity 1 (equal), 2/3 (one contains the
        # other), 1/3 (overlap), 0 (disjoint). NLTK's masi_distance uses the same.
        equal = (inter == size_a) & (inter == size_b)
        subset = inter == np.minimum(size_a, size_b)
        monotonicity = np.select([equal, subset, inter > 0], [1.0, 2.0 / 3.0, 1.0 / 3.0], 0.0)
        return jaccard * monotonicity
    raise ValueError(f"unknown set metric {metric!r}: use 'jaccard' or 'masi'")


def set_agreement(a: ArrayLike, b: ArrayLike, metric: SetMetric = "jaccard") -> NDArray[np.float64]:
    """Agreement (1 - distance) between label sets, over the last axis.

    ``a`` and ``b`` are boolean arrays whose last axis is the label
    vocabulary (True = label chosen); leading axes broadcast. Jaccard is
    ``|A & B| / |A | B|``; MASI multiplies it by Passonneau's monotonicity
    factor. Two empty sets agree fully (1.0).
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    inter = (a & b).sum(axis=-1)
    return _set_agreement(inter, a.sum(axis=-1), b.sum(axis=-1), metric)


def mean_pairwise_set_agreement(
    sets: ArrayLike, answered: ArrayLike | None = None, metric: SetMetric = "jaccard"
) -> NDArray[np.float64]:
    """Per item, the mean set agreement over all pairs of annotators.

    ``sets`` is boolean, items x annotators x labels. ``answered``
    (items x annotators, default all True) tells an annotator who chose no
    label apart from one who never saw the item. NaN for items with fewer
    than two answers.
    """
    s = np.asarray(sets, dtype=bool)
    if s.ndim != 3:
        raise ValueError("sets must be items x annotators x labels")
    n_items, n_ann, _ = s.shape
    ok = np.ones((n_items, n_ann), dtype=bool) if answered is None else np.asarray(answered, dtype=bool)
    si = s.astype(np.int64)
    inter = np.einsum("ial,ibl->iab", si, si)
    size = si.sum(axis=-1)
    agree = _set_agreement(inter, size[:, :, None], size[:, None, :], metric)
    upper = np.triu(np.ones((n_ann, n_ann), dtype=bool), k=1)
    pair = ok[:, :, None] & ok[:, None, :] & upper
    n_pairs = pair.sum(axis=(1, 2))
    total = np.where(pair, agree, 0.0).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_pairs > 0, total / n_pairs, np.nan)


# --------------------------------------------------------------------------
# Regions: rectangles and polygons in Label Studio percent coordinates
# --------------------------------------------------------------------------


def box_iou(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Pairwise IoU of axis-aligned rectangles, shape (len(a), len(b)).

    Rows are Label Studio ``(x, y, width, height)`` in percent of the image,
    ``(x, y)`` the top-left corner; rotation is not supported. IoU is the
    same in percent as in pixels because both axes scale areas alike.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ax1, ay1, aw, ah = a.T
    bx1, by1, bw, bh = b.T
    iw = np.minimum(ax1[:, None] + aw[:, None], bx1 + bw) - np.maximum(ax1[:, None], bx1)
    ih = np.minimum(ay1[:, None] + ah[:, None], by1 + bh) - np.maximum(ay1[:, None], by1)
    inter = np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None)
    union = (aw * ah)[:, None] + bw * bh - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def rasterise_polygons(
    polygons: Sequence[ArrayLike], bounds: tuple[float, float, float, float], resolution: int
) -> NDArray[np.bool_]:
    """Boolean masks (polygons x resolution^2) of which grid cell centres fall inside.

    ``bounds`` is ``(x_min, y_min, x_max, y_max)`` of the grid. Uses the
    even-odd rule (a ray crossing count), which is exact for any simple
    polygon, convex or not. Polygons are padded to the same vertex count
    with zero-length edges, which never cross a ray.
    """
    x0, y0, x1, y1 = bounds
    px = x0 + (np.arange(resolution) + 0.5) * (x1 - x0) / resolution
    py = y0 + (np.arange(resolution) + 0.5) * (y1 - y0) / resolution
    n_poly = len(polygons)
    if n_poly == 0:
        return np.zeros((0, resolution * resolution), dtype=bool)
    pts = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polygons]
    n_vert = max(len(p) for p in pts)
    start = np.empty((n_poly, n_vert, 2))
    end = np.empty((n_poly, n_vert, 2))
    for i, p in enumerate(pts):  # per polygon, only to pad ragged vertex lists
        k = len(p)
        start[i, :k], end[i, :k] = p, np.roll(p, -1, axis=0)
        start[i, k:] = end[i, k:] = p[0] if k else 0.0
    inside = np.zeros((n_poly, resolution, resolution), dtype=bool)
    for j in range(n_vert):  # one edge of every polygon at a time
        xa, ya = start[:, j, 0:1], start[:, j, 1:2]
        xb, yb = end[:, j, 0:1], end[:, j, 1:2]
        crosses = (ya > py) != (yb > py)  # polygons x rows
        with np.errstate(invalid="ignore", divide="ignore"):
            x_cross = xa + (py - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses[:, :, None] & (px < x_cross[:, :, None])
    return inside.reshape(n_poly, -1)


def polygon_iou(
    polygons_a: Sequence[ArrayLike], polygons_b: Sequence[ArrayLike], resolution: int = 512
) -> NDArray[np.float64]:
    """Pairwise IoU of simple polygons (convex or not), by rasterisation.

    Each polygon is a sequence of ``(x, y)`` vertices (Label Studio
    ``points``, percent coordinates). Both sets are rasterised on one
    ``resolution x resolution`` grid spanning their joint bounding box, so
    the error is about (perimeter / grid cell) cells: for shapes that fill a
    good part of the box, under 1% at the default 512. Memory is about
    5 bytes per polygon per grid cell (1.3 MB each at 512), meant for the
    handful of regions one item has.
    """
    all_pts = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in [*polygons_a, *polygons_b]]
    out = np.zeros((len(polygons_a), len(polygons_b)))
    if out.size == 0:
        return out
    stacked = np.concatenate(all_pts)
    lo, hi = stacked.min(axis=0), stacked.max(axis=0)
    if np.any(hi <= lo):
        return out
    masks = rasterise_polygons(all_pts, (lo[0], lo[1], hi[0], hi[1]), resolution).astype(np.float32)
    ma, mb = masks[: len(polygons_a)], masks[len(polygons_a) :]
    inter = ma @ mb.T
    union = ma.sum(axis=1)[:, None] + mb.sum(axis=1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0).astype(np.float64)


def match_regions(
    iou: ArrayLike, labels_a: ArrayLike, labels_b: ArrayLike, threshold: float = 0.5
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """One-to-one matches between two annotators' regions, greedy by IoU.

    A pair may match when IoU >= ``threshold`` and the labels are equal;
    the highest IoU pairs are taken first (ties by lower index). Returns
    the matched indices into a and into b.
    """
    iou = np.asarray(iou, dtype=np.float64)
    la, lb = np.asarray(labels_a), np.asarray(labels_b)
    ok = (iou >= threshold) & (la[:, None] == lb[None, :])
    ia, ib = np.nonzero(ok)
    order = np.argsort(-iou[ia, ib], kind="stable")
    used_a = np.zeros(iou.shape[0], dtype=bool)
    used_b = np.zeros(iou.shape[1], dtype=bool)
    keep = []
    # A loop over the candidate pairs of one item's regions (a handful):
    # greedy matching is sequential by nature.
    for k in order:
        i, j = ia[k], ib[k]
        if not used_a[i] and not used_b[j]:
            used_a[i] = used_b[j] = True
            keep.append(k)
    keep_arr = np.asarray(keep, dtype=np.int64)
    return ia[keep_arr].astype(np.int64), ib[keep_arr].astype(np.int64)


def region_f1(iou: ArrayLike, labels_a: ArrayLike, labels_b: ArrayLike, threshold: float = 0.5) -> float:
    """F1 of two annotators' regions: 2 * matches / (n_a + n_b); 1.0 if both drew none."""
    iou = np.asarray(iou, dtype=np.float64)
    n_a, n_b = iou.shape
    if n_a + n_b == 0:
        return 1.0
    matched, _ = match_regions(iou, labels_a, labels_b, threshold)
    return 2.0 * matched.size / (n_a + n_b)


# --------------------------------------------------------------------------
# Named-entity spans
# --------------------------------------------------------------------------


def span_f1(spans_a: ArrayLike, spans_b: ArrayLike, mode: Literal["exact", "overlap"] = "exact") -> float:
    """F1 between two annotators' spans, rows ``(start, end, label)``, end exclusive.

    ``exact``: a span counts when the other annotator has the same start,
    end and label. ``overlap``: it counts when the other has any
    overlapping span with the same label (lenient; one span may cover
    several). Precision is taken over b, recall over a. 1.0 if both
    marked nothing, 0.0 if only one did.
    """
    a = np.unique(np.asarray(spans_a, dtype=np.int64).reshape(-1, 3), axis=0)
    b = np.unique(np.asarray(spans_b, dtype=np.int64).reshape(-1, 3), axis=0)
    if len(a) == 0 and len(b) == 0:
        return 1.0
    if len(a) == 0 or len(b) == 0:
        return 0.0
    same_label = a[:, None, 2] == b[None, :, 2]
    if mode == "exact":
        hit = same_label & (a[:, None, 0] == b[None, :, 0]) & (a[:, None, 1] == b[None, :, 1])
    elif mode == "overlap":
        hit = same_label & (a[:, None, 0] < b[None, :, 1]) & (b[None, :, 0] < a[:, None, 1])
    else:
        raise ValueError(f"unknown span mode {mode!r}: use 'exact' or 'overlap'")
    recall = hit.any(axis=1).mean()
    precision = hit.any(axis=0).mean()
    if recall + precision == 0:
        return 0.0
    return float(2.0 * precision * recall / (precision + recall))


def span_iou(spans_a: ArrayLike, spans_b: ArrayLike) -> NDArray[np.float64]:
    """Pairwise overlap of character spans, shape (len(a), len(b)): shared characters over covered ones.

    Rows are ``(start, end)`` (end exclusive; further columns are ignored).
    Any overlap gives a value above 0, so `match_regions` with a small
    threshold pairs spans that overlap at all, the largest overlap first.
    """
    a, b = (np.asarray(s, dtype=np.float64) for s in (spans_a, spans_b))
    a = a[:, :2] if a.size else np.zeros((0, 2))
    b = b[:, :2] if b.size else np.zeros((0, 2))
    inter = np.clip(np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0.0, None)
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


# --------------------------------------------------------------------------
# Free text
# --------------------------------------------------------------------------


def normalise_text(text: str) -> str:
    """Case-folded, with runs of whitespace collapsed to one space and ends stripped."""
    return " ".join(text.casefold().split())


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions, each cost 1)."""
    if len(a) < len(b):
        a, b = b, a  # loop over the shorter string's characters
    if not b:
        return len(a)
    ca = np.frombuffer(a.encode("utf-32-le"), dtype=np.uint32)
    cb = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    cols = np.arange(len(ca) + 1)
    prev = cols.copy()
    for i, ch in enumerate(cb, start=1):
        cur = np.empty_like(prev)
        cur[0] = i
        # Substitution (or match) and deletion depend only on the row above ...
        cur[1:] = np.minimum(prev[:-1] + (ca != ch), prev[1:] + 1)
        # ... insertion chains along the row: cur[j] = min_k cur[k] + (j - k).
        cur = cols + np.minimum.accumulate(cur - cols)
        prev = cur
    return int(prev[-1])


def edit_similarity(a: str, b: str) -> float:
    """``1 - levenshtein / max(len)`` after `normalise_text`; 1.0 for two empty texts."""
    a, b = normalise_text(a), normalise_text(b)
    longest = max(len(a), len(b))
    if longest == 0:
        return 1.0
    return 1.0 - levenshtein(a, b) / longest
