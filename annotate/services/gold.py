"""Checking an annotation against a gold answer, with the reason when it differs."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ..scoring.agreement import box_iou, edit_similarity, match_regions, polygon_iou

TEXT_SIMILARITY = 0.9  # free text this close to the gold answer counts as right


@dataclass(frozen=True)
class GoldCheck:
    right: bool
    why: str = ""


def _labels(region: dict) -> tuple:
    value = region.get("value", {})
    for key in ("rectanglelabels", "polygonlabels", "keypointlabels", "labels", "choices", "taxonomy"):
        if key in value:
            return tuple(sorted(map(str, value[key])))
    return ()


def _box(region: dict) -> list[float]:
    v = region["value"]
    return [float(v.get("x", 0)), float(v.get("y", 0)), float(v.get("width", 0)), float(v.get("height", 0))]


# Result types that are regions; another control's result with the same `id`
# is an answer about that region (a per-region control).
REGION_TYPES = frozenset({"rectanglelabels", "rectangle", "polygonlabels", "polygon", "keypointlabels",
                          "keypoint", "ellipselabels", "ellipse", "brushlabels", "brush", "labels"})


def _match(name: str, given: list[dict], gold: list[dict], threshold: float) -> tuple[GoldCheck, dict[str, str]]:
    """Match the regions of one control; return the verdict and gold region id -> given region id."""
    kind = gold[0].get("type", "")
    if kind == "labels":
        # Entity spans must be exact: same start, end and label.
        key = lambda r: (int(r["value"].get("start", 0)), int(r["value"].get("end", 0)), _labels(r))  # noqa: E731
        wanted = {key(r): r.get("id") for r in gold}
        marked = {key(r): r.get("id") for r in given}
        pairs = {wanted[k]: marked[k] for k in wanted.keys() & marked.keys()}
        if len(pairs) == len(gold) == len(given):
            return GoldCheck(True), pairs
        return GoldCheck(False, f"{name}: the marked spans or their labels differ from the answer"), pairs
    if not given:
        return GoldCheck(False, f"{name}: expected {len(gold)} region(s), you marked none"), {}
    labels_a = np.array([hash(_labels(r)) for r in gold])
    labels_b = np.array([hash(_labels(r)) for r in given])
    if "polygon" in kind:
        iou = polygon_iou([r["value"]["points"] for r in gold], [r["value"]["points"] for r in given])
    elif "keypoint" in kind:
        # A keypoint matches a point within 2% of the image in each direction.
        a = np.array([[r["value"]["x"], r["value"]["y"]] for r in gold], dtype=float)
        b = np.array([[r["value"]["x"], r["value"]["y"]] for r in given], dtype=float)
        iou = (np.abs(a[:, None, :] - b[None, :, :]).max(axis=2) <= 2.0).astype(float)
    else:
        iou = box_iou([_box(r) for r in gold], [_box(r) for r in given])
    ia, ib = match_regions(iou, labels_a, labels_b, threshold)
    pairs = {gold[i].get("id"): given[j].get("id") for i, j in zip(ia, ib)}
    if len(ia) == len(gold) == len(given):
        return GoldCheck(True), pairs
    missed, extra = len(gold) - len(ia), len(given) - len(ia)
    parts = []
    if missed:
        parts.append(f"{missed} expected region(s) had no match with the same label and overlap ≥ {threshold:g}")
    if extra:
        parts.append(f"{extra} region(s) you marked are not in the answer")
    return GoldCheck(False, f"{name}: " + "; ".join(parts)), pairs


def _compare_values(name: str, kind: str, expected: dict, given: dict | None) -> GoldCheck:
    """One answer of a choices, rating, number or text control against the gold one."""
    if kind in ("choices", "taxonomy"):
        want, got = _labels(expected), (_labels(given) if given else ())
        if want != got:
            return GoldCheck(False, f"{name}: expected {', '.join(want) or 'nothing'}, "
                                    f"you chose {', '.join(got) or 'nothing'}")
    elif kind in ("rating", "number"):
        want = expected["value"].get(kind)
        got = given["value"].get(kind) if given else None
        if want != got:
            return GoldCheck(False, f"{name}: expected {want}, you gave {got}")
    elif kind == "textarea":
        want = " ".join(map(str, expected["value"].get("text", [])))
        got = " ".join(map(str, given["value"].get("text", []))) if given else ""
        if edit_similarity(want, got) < TEXT_SIMILARITY:
            return GoldCheck(False, f"{name}: expected the text {want!r}, you wrote {got!r}")
    else:  # date-time, ranker, pairwise: the value itself must be equal
        want = expected["value"].get(kind, expected["value"])
        got = given["value"].get(kind, given["value"]) if given else None
        if want != got:
            return GoldCheck(False, f"{name}: expected {want}, you gave {got}")
    return GoldCheck(True)


def _split(result: list[dict]) -> tuple[dict[str, list[dict]], dict[tuple[str, str], dict]]:
    """Whole-item answers by control, and per-region answers by (control, region id)."""
    regions = {r.get("id") for r in result or [] if isinstance(r, dict) and r.get("type") in REGION_TYPES}
    whole: dict[str, list[dict]] = defaultdict(list)
    per_region: dict[tuple[str, str], dict] = {}
    for r in result or []:
        if not isinstance(r, dict) or "from_name" not in r:
            continue
        if r.get("type") not in REGION_TYPES and r.get("id") is not None and r.get("id") in regions:
            per_region[(r["from_name"], r["id"])] = r
        else:
            whole[r["from_name"]].append(r)
    return whole, per_region


def compare(result: list[dict], gold: list[dict], iou_threshold: float = 0.5) -> GoldCheck:
    """Is `result` right against the gold answer `gold`? Controls the gold
    answer does not mention are not judged. A per-region answer (a text or a
    choice on a box or span) is judged on the region that matched its gold one."""
    given_by, given_regional = _split(result)
    gold_by, gold_regional = _split(gold)
    pairs: dict[str, str] = {}
    for name, expected in gold_by.items():
        given = given_by.get(name, [])
        kind = expected[0].get("type", "")
        if kind in REGION_TYPES:
            check, matched = _match(name, given, expected, iou_threshold)
            pairs.update(matched)
        else:
            check = _compare_values(name, kind, expected[0], given[0] if given else None)
        if not check.right:
            return check
    for (name, region_id), expected in gold_regional.items():
        given = given_regional.get((name, pairs.get(region_id)))
        check = _compare_values(name, expected.get("type", ""), expected, given)
        if not check.right:
            return GoldCheck(False, check.why + " (on the region that matches the answer's)")
    return GoldCheck(True)
