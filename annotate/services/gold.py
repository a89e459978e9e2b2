"""Checking an annotation against a gold answer, with the reason when it differs."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ..scoring.agreement import box_iou, edit_similarity, match_regions, polygon_iou, span_f1

TEXT_SIMILARITY = 0.9  # free text this close to the gold answer counts as right


@dataclass(frozen=True)
class GoldCheck:
    right: bool
    why: str = ""


def _by_control(result: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for region in result or []:
        if isinstance(region, dict) and "from_name" in region:
            grouped[region["from_name"]].append(region)
    return grouped


def _labels(region: dict) -> tuple:
    value = region.get("value", {})
    for key in ("rectanglelabels", "polygonlabels", "keypointlabels", "labels", "choices", "taxonomy"):
        if key in value:
            return tuple(sorted(map(str, value[key])))
    return ()


def _box(region: dict) -> list[float]:
    v = region["value"]
    return [float(v.get("x", 0)), float(v.get("y", 0)), float(v.get("width", 0)), float(v.get("height", 0))]


def _compare_regions(name: str, given: list[dict], gold: list[dict], threshold: float) -> GoldCheck:
    kind = gold[0].get("type", "")
    labels_a = np.array([hash(_labels(r)) for r in gold])
    labels_b = np.array([hash(_labels(r)) for r in given]) if given else np.zeros(0)
    if not given:
        return GoldCheck(False, f"{name}: expected {len(gold)} region(s), you marked none")
    if "polygon" in kind:
        iou = polygon_iou([r["value"]["points"] for r in gold], [r["value"]["points"] for r in given])
    elif "keypoint" in kind:
        # A keypoint matches a point within 2% of the image in each direction.
        a = np.array([[r["value"]["x"], r["value"]["y"]] for r in gold], dtype=float)
        b = np.array([[r["value"]["x"], r["value"]["y"]] for r in given], dtype=float)
        iou = (np.abs(a[:, None, :] - b[None, :, :]).max(axis=2) <= 2.0).astype(float)
    else:
        iou = box_iou([_box(r) for r in gold], [_box(r) for r in given])
    matched, _ = match_regions(iou, labels_a, labels_b, threshold)
    if len(matched) == len(gold) == len(given):
        return GoldCheck(True)
    missed = len(gold) - len(matched)
    extra = len(given) - len(matched)
    parts = []
    if missed:
        parts.append(f"{missed} expected region(s) had no match with the same label and overlap ≥ {threshold:g}")
    if extra:
        parts.append(f"{extra} region(s) you marked are not in the answer")
    return GoldCheck(False, f"{name}: " + "; ".join(parts))


def _spans(regions: list[dict]) -> list[tuple[int, int, int]]:
    return [(int(r["value"].get("start", 0)), int(r["value"].get("end", 0)), hash(_labels(r))) for r in regions]


def compare(result: list[dict], gold: list[dict], iou_threshold: float = 0.5) -> GoldCheck:
    """Is `result` right against the gold answer `gold`? Controls the gold
    answer does not mention are not judged."""
    given_by, gold_by = _by_control(result), _by_control(gold)
    for name, expected in gold_by.items():
        given = given_by.get(name, [])
        kind = expected[0].get("type", "")
        if kind in ("choices", "taxonomy"):
            want, got = _labels(expected[0]), (_labels(given[0]) if given else ())
            if want != got:
                return GoldCheck(False, f"{name}: expected {', '.join(want) or 'nothing'}, "
                                        f"you chose {', '.join(got) or 'nothing'}")
        elif kind in ("rating", "number"):
            want = expected[0]["value"].get(kind)
            got = given[0]["value"].get(kind) if given else None
            if want != got:
                return GoldCheck(False, f"{name}: expected {want}, you gave {got}")
        elif kind == "textarea":
            want = " ".join(map(str, expected[0]["value"].get("text", [])))
            got = " ".join(map(str, given[0]["value"].get("text", []))) if given else ""
            if edit_similarity(want, got) < TEXT_SIMILARITY:
                return GoldCheck(False, f"{name}: expected the text {want!r}, you wrote {got!r}")
        elif kind == "labels":
            if span_f1(_spans(expected), _spans(given), "exact") < 1.0:
                return GoldCheck(False, f"{name}: the marked spans or their labels differ from the answer")
        else:
            check = _compare_regions(name, given, expected, iou_threshold)
            if not check.right:
                return check
    return GoldCheck(True)
