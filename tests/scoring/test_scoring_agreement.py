"""Agreement metrics: known answers, and Krippendorff's alpha against NLTK."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from nltk.metrics.agreement import AnnotationTask
from nltk.metrics.distance import binary_distance, interval_distance, jaccard_distance, masi_distance

from annotate.scoring.agreement import (
    alpha_bootstrap,
    box_iou,
    coincidence_matrix,
    edit_similarity,
    item_agreement,
    krippendorff_alpha,
    levenshtein,
    match_regions,
    mean_pairwise_set_agreement,
    nominal_alpha_from_answers,
    normalise_text,
    polygon_iou,
    region_f1,
    reliability_matrix,
    set_agreement,
    span_f1,
)

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C:
# 4 observers (rows there, columns here) x 12 units, values 1-5, blanks missing.
PAPER = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
).T


# --------------------------------------------------------------------------
# Krippendorff's alpha: the paper's worked example
# --------------------------------------------------------------------------


def test_nominal_alpha_matches_krippendorffs_worked_example():
    assert krippendorff_alpha(PAPER, "nominal") == pytest.approx(0.743, abs=5e-4)


def test_interval_alpha_matches_krippendorffs_worked_example():
    assert krippendorff_alpha(PAPER, "interval") == pytest.approx(0.849, abs=5e-4)


def test_integer_codes_with_minus_one_missing_give_the_same_alpha():
    codes = np.where(np.isnan(PAPER), -1, PAPER).astype(int)
    assert krippendorff_alpha(codes) == pytest.approx(krippendorff_alpha(PAPER))
    assert krippendorff_alpha(codes, "interval") == pytest.approx(krippendorff_alpha(PAPER, "interval"))


def test_coincidence_matrix_matches_the_paper():
    values, o = coincidence_matrix(PAPER)
    assert values.tolist() == [1, 2, 3, 4, 5]
    third = 1 / 3
    expected = [
        [7, 4 * third, third, third, 0],
        [4 * third, 10, 4 * third, third, 0],
        [third, 4 * third, 8, third, 0],
        [third, third, third, 4, 0],
        [0, 0, 0, 0, 3],
    ]
    np.testing.assert_allclose(o, expected)
    # The unit with a single value (unit 12) is not pairable: 40 pairable values.
    assert o.sum() == pytest.approx(40)


def test_alpha_is_one_for_perfect_agreement_and_nan_without_variation():
    assert krippendorff_alpha([[0, 0], [1, 1], [2, 2]]) == 1.0
    assert math.isnan(krippendorff_alpha([[1, 1], [1, 1]]))
    assert math.isnan(krippendorff_alpha([[1, -1], [2, -1]]))  # nothing pairable


def test_units_with_one_answer_do_not_change_alpha():
    lone = np.array([[4, NAN, NAN, NAN], [NAN, NAN, 1, NAN]])
    assert krippendorff_alpha(np.vstack([PAPER, lone])) == pytest.approx(krippendorff_alpha(PAPER))


def test_reliability_matrix_places_answers_by_item_and_annotator():
    m = reliability_matrix([0, 0, 2], [1, 0, 1], [3, 4, 5], n_items=3, n_workers=2)
    assert m.tolist() == [[4, 3], [-1, -1], [-1, 5]]


def _nltk_alpha(matrix: np.ndarray, distance) -> float:
    triples = [
        (str(c), str(u), int(matrix[u, c]))
        for u in range(matrix.shape[0])
        for c in range(matrix.shape[1])
        if matrix[u, c] != -1
    ]
    return AnnotationTask(triples, distance=distance).alpha()


def _pairable_values(matrix: np.ndarray) -> set[int]:
    rows = matrix[(matrix != -1).sum(axis=1) >= 2]
    return set(rows[rows != -1].tolist())


reliability = arrays(
    np.int64,
    st.tuples(st.integers(2, 12), st.integers(2, 5)),
    elements=st.integers(-1, 4),
)


@settings(max_examples=150, deadline=None)
@given(reliability)
def test_nominal_alpha_agrees_with_nltk(matrix):
    ours = krippendorff_alpha(matrix, "nominal")
    if len(_pairable_values(matrix)) < 2:
        assert math.isnan(ours)  # NLTK says 1 or divides by zero here
        return
    assert ours == pytest.approx(_nltk_alpha(matrix, binary_distance), abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(reliability)
def test_interval_alpha_agrees_with_nltk(matrix):
    ours = krippendorff_alpha(matrix, "interval")
    if len(_pairable_values(matrix)) < 2:
        assert math.isnan(ours)
        return
    assert ours == pytest.approx(_nltk_alpha(matrix, interval_distance), abs=1e-9)


def test_alpha_agrees_with_nltk_on_larger_seeded_data():
    rng = np.random.default_rng(11)
    truth = rng.integers(0, 5, 60)
    matrix = np.where(rng.random((60, 6)) < 0.7, truth[:, None], rng.integers(0, 5, (60, 6)))
    matrix[rng.random((60, 6)) < 0.2] = -1
    assert krippendorff_alpha(matrix) == pytest.approx(_nltk_alpha(matrix, binary_distance), abs=1e-12)
    assert krippendorff_alpha(matrix, "interval") == pytest.approx(_nltk_alpha(matrix, interval_distance), abs=1e-12)


def test_interval_alpha_is_shift_invariant_with_large_offsets():
    rng = np.random.default_rng(3)
    data = rng.normal(size=(40, 4))
    assert krippendorff_alpha(data + 1e9, "interval") == pytest.approx(krippendorff_alpha(data, "interval"), abs=1e-6)


# --------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------


def test_bootstrap_equals_alpha_of_explicitly_resampled_units():
    """The matrix-product bootstrap gives the alphas of real resampled matrices."""
    n_boot = 50
    result = alpha_bootstrap(PAPER, "nominal", n_boot=n_boot, confidence=0.9, seed=5)
    pairable = PAPER[(~np.isnan(PAPER)).sum(axis=1) >= 2]
    picks = np.random.default_rng(5).integers(0, len(pairable), size=(n_boot, len(pairable)))
    alphas = np.array([krippendorff_alpha(pairable[p]) for p in picks])
    alphas = alphas[np.isfinite(alphas)]
    assert result.n_boot == alphas.size
    assert result.low == pytest.approx(np.quantile(alphas, 0.05))
    assert result.high == pytest.approx(np.quantile(alphas, 0.95))


def test_bootstrap_is_seeded_and_brackets_alpha():
    a = alpha_bootstrap(PAPER, "interval", n_boot=400, seed=1)
    b = alpha_bootstrap(PAPER, "interval", n_boot=400, seed=1)
    assert a == b
    assert a.alpha == pytest.approx(0.849, abs=5e-4)
    assert a.low < a.alpha <= a.high <= 1.0
    assert (a.n_units, a.n_values, a.metric, a.confidence) == (11, 40, "interval", 0.95)


@settings(max_examples=60)
@given(st.integers(1, 40), st.integers(1, 8), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_alpha_from_answer_lists_equals_the_matrix_version(n_units, n_coders, n_values, seed):
    """Without the units x coders matrix: same alpha, same interval, even with a coder answering twice."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, n_units * n_coders * 2 + 1))
    unit, coder = rng.integers(0, n_units, n), rng.integers(0, n_coders, n)
    value = rng.integers(-1, n_values, n)  # -1: no answer
    dense = alpha_bootstrap(reliability_matrix(unit, coder, value, n_units, n_coders), n_boot=100, seed=3)
    lists = nominal_alpha_from_answers(unit, coder, value, n_units, n_boot=100, seed=3)
    assert (lists.n_units, lists.n_values, lists.n_boot) == (dense.n_units, dense.n_values, dense.n_boot)
    for ours, theirs in ((lists.alpha, dense.alpha), (lists.low, dense.low), (lists.high, dense.high)):
        assert ours == pytest.approx(theirs, nan_ok=True)


def test_alpha_from_answer_lists_scales_past_a_dense_matrix():
    # 200,000 items by 100 annotators would be a 20-million-cell matrix.
    rng = np.random.default_rng(4)
    items, annotators = 200_000, 100
    unit = np.repeat(np.arange(items), 5)
    coder = (unit * 7 + np.tile(np.arange(5), items) * 13) % annotators
    truth = rng.integers(0, 5, items)
    value = np.where(rng.random(unit.size) < 0.9, truth[unit], rng.integers(0, 5, unit.size))
    result = nominal_alpha_from_answers(unit, coder, value, items, n_boot=50)
    assert result.n_units == items and result.n_values == unit.size
    assert result.low < result.alpha < result.high
    # Each answer right with p = 0.92 (0.9 plus a lucky tenth of 0.1 x 1/5): pairs agree 0.848, chance 0.2.
    assert result.alpha == pytest.approx((0.848 - 0.2) / 0.8, abs=0.01)


def test_bootstrap_of_perfect_agreement_is_a_point():
    data = np.repeat(np.arange(10) % 3, 3).reshape(10, 3)
    r = alpha_bootstrap(data, n_boot=200)
    assert (r.alpha, r.low, r.high) == (1.0, 1.0, 1.0)


def test_bootstrap_interval_narrows_with_more_units():
    rng = np.random.default_rng(2)

    def sample(n):
        truth = rng.integers(0, 3, n)
        return np.where(rng.random((n, 3)) < 0.8, truth[:, None], rng.integers(0, 3, (n, 3)))

    small, large = alpha_bootstrap(sample(30)), alpha_bootstrap(sample(3000))
    assert large.high - large.low < (small.high - small.low) / 4


# --------------------------------------------------------------------------
# Per-item agreement
# --------------------------------------------------------------------------


def test_item_agreement_is_the_share_of_answers_equal_to_consensus():
    share = item_agreement(item_idx=[0, 0, 0, 1, 1, 2], label=[1, 1, 2, 0, 0, 3], consensus=[1, 0, 1, 2])
    np.testing.assert_allclose(share[:3], [2 / 3, 1.0, 0.0])
    assert math.isnan(share[3])


# --------------------------------------------------------------------------
# Sets of labels
# --------------------------------------------------------------------------


def _bools(labels, n=5):
    v = np.zeros(n, dtype=bool)
    v[list(labels)] = True
    return v


def test_jaccard_and_masi_known_values():
    a, b = _bools({1, 2}), _bools({1, 2, 3, 4})
    assert set_agreement(a, b, "jaccard") == pytest.approx(0.5)
    assert set_agreement(a, b, "masi") == pytest.approx(0.5 * 2 / 3)  # subset
    assert set_agreement(_bools({1, 2}), _bools({2, 3}), "masi") == pytest.approx(1 / 3 * 1 / 3)  # overlap
    assert set_agreement(_bools({1}), _bools({2}), "masi") == 0.0
    assert set_agreement(_bools({1, 3}), _bools({3, 1}), "masi") == 1.0
    assert set_agreement(_bools(set()), _bools(set()), "jaccard") == 1.0


label_sets = st.sets(st.integers(0, 5), min_size=1)


@given(label_sets, label_sets)
def test_set_agreement_is_one_minus_nltk_distance(a, b):
    va, vb = _bools(a, 6), _bools(b, 6)
    assert set_agreement(va, vb, "jaccard") == pytest.approx(1 - jaccard_distance(a, b))
    assert set_agreement(va, vb, "masi") == pytest.approx(1 - masi_distance(a, b))


def test_mean_pairwise_set_agreement_over_answering_annotators():
    sets = np.array(
        [
            [_bools({0}), _bools({0}), _bools({0, 1})],  # pairs: 1, 1/2, 1/2
            [_bools({2}), _bools({3}), _bools({4})],  # the third did not answer
            [_bools({0}), _bools({1}), _bools({2})],  # only one answered
        ]
    )
    answered = np.array([[True, True, True], [True, True, False], [True, False, False]])
    got = mean_pairwise_set_agreement(sets, answered, "jaccard")
    np.testing.assert_allclose(got[:2], [2 / 3, 0.0])
    assert math.isnan(got[2])


# --------------------------------------------------------------------------
# Regions
# --------------------------------------------------------------------------


def test_box_iou_known_values():
    a = [[0, 0, 10, 10]]
    b = [[0, 0, 10, 10], [5, 0, 10, 10], [0, 0, 5, 5], [20, 20, 5, 5], [10, 0, 5, 5]]
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50 / 150, 0.25, 0.0, 0.0]])


boxes = arrays(np.float64, st.tuples(st.integers(1, 6), st.just(4)), elements=st.floats(0.5, 50))


@given(boxes, boxes)
def test_box_iou_is_symmetric_and_bounded(a, b):
    iou = box_iou(a, b)
    assert iou.shape == (len(a), len(b))
    np.testing.assert_allclose(iou, box_iou(b, a).T)
    assert np.all((iou >= 0) & (iou <= 1 + 1e-12))
    np.testing.assert_allclose(np.diag(box_iou(a, a)), 1.0)


SQUARE = [(0, 0), (10, 0), (10, 10), (0, 10)]


def test_polygon_iou_known_values_including_concave_shapes():
    shifted = [(5, 0), (15, 0), (15, 10), (5, 10)]
    ell = [(0, 0), (10, 0), (10, 5), (5, 5), (5, 10), (0, 10)]  # area 75, inside the square
    triangle = [(0, 0), (10, 0), (0, 10)]
    got = polygon_iou([SQUARE], [SQUARE, shifted, ell, triangle])
    np.testing.assert_allclose(got, [[1.0, 1 / 3, 0.75, 0.5]], atol=0.01)


def test_polygon_iou_of_a_u_shape_is_right_where_convex_clipping_would_fail():
    # A 30 x 30 square with a 10 x 20 notch cut from the top middle: area 700.
    u_shape = [(0, 0), (30, 0), (30, 30), (20, 30), (20, 10), (10, 10), (10, 30), (0, 30)]
    notch = [(10, 10), (20, 10), (20, 30), (10, 30)]
    top_strip = [(0, 20), (30, 20), (30, 30), (0, 30)]  # overlaps the U in 200
    got = polygon_iou([u_shape], [notch, top_strip])
    np.testing.assert_allclose(got, [[0.0, 200 / 800]], atol=0.01)


def test_polygon_iou_of_rectangles_matches_box_iou():
    rng = np.random.default_rng(4)
    xywh = np.column_stack([rng.uniform(0, 50, (12, 2)), rng.uniform(5, 50, (12, 2))])
    polys = [[(x, y), (x + w, y), (x + w, y + h), (x, y + h)] for x, y, w, h in xywh]
    np.testing.assert_allclose(polygon_iou(polys[:6], polys[6:]), box_iou(xywh[:6], xywh[6:]), atol=0.01)


def test_match_regions_is_greedy_by_iou_and_needs_equal_labels():
    iou = np.array(
        [
            [0.9, 0.6, 0.0],
            [0.7, 0.0, 0.0],
            [0.0, 0.0, 0.8],
        ]
    )
    ia, ib = match_regions(iou, labels_a=[0, 0, 1], labels_b=[0, 0, 2])
    # a0-b0 (0.9) first; a1 then has no free partner; a2-b2 differ in label.
    assert list(zip(ia.tolist(), ib.tolist())) == [(0, 0)]
    assert region_f1(iou, [0, 0, 1], [0, 0, 2]) == pytest.approx(2 * 1 / 6)
    ia, ib = match_regions(iou, [0, 0, 1], [0, 0, 1], threshold=0.5)
    assert sorted(zip(ia.tolist(), ib.tolist())) == [(0, 0), (2, 2)]


def test_region_f1_edge_cases():
    assert region_f1(np.zeros((0, 0)), [], []) == 1.0
    assert region_f1(np.zeros((2, 0)), [0, 1], []) == 0.0
    assert region_f1(np.array([[0.5]]), [3], [3], threshold=0.5) == 1.0  # threshold inclusive


# --------------------------------------------------------------------------
# Spans
# --------------------------------------------------------------------------


def test_span_f1_exact_and_overlap():
    a = [(0, 5, 1), (10, 15, 2), (20, 25, 1)]
    b = [(0, 5, 1), (11, 15, 2), (30, 35, 1), (40, 41, 3)]
    # Exact: one match; precision 1/4, recall 1/3.
    assert span_f1(a, b, "exact") == pytest.approx(2 * 1 / 7)
    # Overlap: a0 and a1 are found (recall 2/3); b0 and b1 overlap (precision 2/4).
    assert span_f1(a, b, "overlap") == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    # Touching spans (end exclusive) do not overlap; labels must match.
    assert span_f1([(0, 5, 1)], [(5, 9, 1)], "overlap") == 0.0
    assert span_f1([(0, 5, 1)], [(0, 5, 2)], "overlap") == 0.0


def test_span_f1_edge_cases():
    assert span_f1([], [], "exact") == 1.0
    assert span_f1([(0, 1, 0)], [], "overlap") == 0.0
    assert span_f1([(0, 1, 0), (0, 1, 0)], [(0, 1, 0)], "exact") == 1.0  # duplicates count once


# --------------------------------------------------------------------------
# Free text
# --------------------------------------------------------------------------


def _levenshtein_reference(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def test_levenshtein_known_values():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("flaw", "lawn") == 2
    assert levenshtein("", "abc") == 3
    assert levenshtein("naïve café", "naive cafe") == 2


@given(st.text(alphabet="abcé ", max_size=20), st.text(alphabet="abcé ", max_size=20))
def test_levenshtein_matches_the_textbook_dp(a, b):
    assert levenshtein(a, b) == _levenshtein_reference(a, b)


def test_edit_similarity_normalises_case_and_whitespace():
    assert normalise_text("  Hello \n\t World ") == "hello world"
    assert edit_similarity("Hello  World", "hello world") == 1.0
    assert edit_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert edit_similarity("", "   ") == 1.0
    assert edit_similarity("abc", "") == 0.0
