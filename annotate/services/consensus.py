"""The consensus of one item, control by control, from Label Studio results.

Turns the result JSON that k annotators gave one item into the arrays
`annotate.scoring` works on, and the answer back into one consensus
result: majority (or Dawid-Skene) vote for single choice, a label vote for
multiple choice, the median for ratings and numbers, box fusion for
rectangles, the most central answer for polygons and free text, span voting
for named entities, and an exact-answer vote for anything else.

No ORM: `annotate.services.scoring` loads the rows and writes the scores.
Each answer is a pair ``(key, result)``: ``key`` names the annotator (the
caller uses the assignment id), ``result`` is that annotator's whole result
list for the item.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..labelconfig import Control, LabelConfig
from ..scoring import agreement as agr
from ..scoring import consensus as cons
from .gold import TEXT_SIMILARITY

# An answer "agrees" with the consensus when its similarity to it is at least
# this (free text uses the gold check's bar); gives the counts that quality
# scores are made of.
AGREE_AT = 0.75

Answer = tuple[int, list]  # (key, result list)


@dataclass
class ControlConsensus:
    """The consensus of one control on one item, and how each answer compares."""

    control: str
    kind: str
    method: str
    regions: list[dict]
    confidence: float
    agreement: float
    n_answers: int
    # key -> agrees with the consensus; only filled when at least two answered.
    agrees: dict[int, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Vote:
    """A categorical consensus given from outside (Dawid-Skene posteriors)."""

    label: str
    confidence: float
    method: str = "dawid_skene"


def scored_controls(config: LabelConfig) -> list[Control]:
    """The controls scored per item; per-region controls (a text per box) are not."""
    return [c for c in config.controls if not c.per_region]


def control_kind(config: LabelConfig, control: Control) -> str:
    tag = control.tag
    if tag == "Choices":
        return "choice" if control.choice == "single" else "multi_choice"
    if tag in ("Rating", "Number"):
        return "number"
    if tag in ("Rectangle", "RectangleLabels"):
        return "rectangle"
    if tag in ("Polygon", "PolygonLabels"):
        return "polygon"
    if tag == "Labels":
        targets = {o.tag for o in config.objects if o.name in control.to_name}
        return "span" if targets and targets <= {"Text", "HyperText"} else "other"
    if tag == "TextArea":
        return "text"
    return "other"


def regions_of(result: list | None, control: str) -> list[dict]:
    return [r for r in result or [] if isinstance(r, dict) and r.get("from_name") == control]


def choice_of(regions: list[dict]) -> str | None:
    """The label of a single-choice answer, or None when the annotator chose nothing."""
    for region in regions:
        chosen = region.get("value", {}).get("choices") or []
        if chosen:
            return str(chosen[0])
    return None


def _region_label(region: dict, key: str | None) -> str:
    labels = region.get("value", {}).get(key or "", []) if key else []
    return str(labels[0]) if labels else ""


def _to_name(control: Control, answers: Sequence[tuple[int, list[dict]]]) -> str:
    for _, regions in answers:
        for region in regions:
            if region.get("to_name"):
                return region["to_name"]
    return control.to_name[0]


def _mean_pairwise(sim: np.ndarray) -> float:
    n = sim.shape[0]
    if n < 2:
        return 1.0
    return float(sim[np.triu_indices(n, k=1)].mean())


def _pairwise(values: list, similarity) -> np.ndarray:
    # A loop over pairs of one item's answers: k is small (at most max_overlap).
    n = len(values)
    sim = np.ones((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            sim[i, j] = sim[j, i] = similarity(values[i], values[j])
    return sim


def _agrees(keys: list[int], similarity: np.ndarray, at: float) -> dict[int, bool]:
    if len(keys) < 2:
        return {}
    return {k: bool(s >= at - 1e-12) for k, s in zip(keys, similarity)}


# --------------------------------------------------------------------------
# One function per kind of control
# --------------------------------------------------------------------------


def _choice(control: Control, answers, vote: Vote | None, **_) -> ControlConsensus | None:
    given = [(k, choice_of(r)) for k, r in answers]
    given = [(k, c) for k, c in given if c is not None]
    if not given:
        return None
    vocabulary = list(control.labels) or sorted({c for _, c in given})
    vocabulary += sorted({c for _, c in given} - set(vocabulary))  # answers outside the config still count
    code = np.array([vocabulary.index(c) for _, c in given])
    mv = cons.majority_vote(np.zeros(len(code), dtype=np.int64), code, 1, len(vocabulary))
    if vote is None:
        label, confidence, method = vocabulary[int(mv.labels[0])], float(mv.share[0]), "majority_vote"
    else:
        label, confidence, method = vote.label, vote.confidence, vote.method
    agree = [c == label for _, c in given]
    region = {"from_name": control.name, "to_name": _to_name(control, answers), "type": "choices",
              "value": {"choices": [label]}}
    return ControlConsensus(control.name, "choice", method, [region], confidence, float(np.mean(agree)),
                            len(given), {k: a for (k, _), a in zip(given, agree)} if len(given) > 1 else {})


def _multi_choice(control: Control, answers, **_) -> ControlConsensus | None:
    chosen = {k: {str(c) for r in regions for c in r.get("value", {}).get("choices", [])} for k, regions in answers}
    if not chosen:
        return None
    vocabulary = list(control.labels) + sorted(set().union(*chosen.values()) - set(control.labels))
    keys = list(chosen)
    sets = np.array([[label in chosen[k] for label in vocabulary] for k in keys], dtype=bool).reshape(len(keys), -1)
    share = sets.mean(axis=0)
    consensus = share > 0.5  # a strict majority chose the label
    with_consensus = agr.set_agreement(sets, consensus[None, :])
    pairwise = agr.mean_pairwise_set_agreement(sets[None, :, :])[0]
    # Per label, the share on the winning side, as the vote share is for one choice.
    confidence = float(np.maximum(share, 1.0 - share).mean()) if vocabulary else 1.0
    labels = [label for label, keep in zip(vocabulary, consensus) if keep]
    regions = [{"from_name": control.name, "to_name": _to_name(control, answers), "type": "choices",
                "value": {"choices": labels}}] if labels else []
    return ControlConsensus(control.name, "multi_choice", "label_vote", regions, confidence,
                            1.0 if np.isnan(pairwise) else float(pairwise), len(keys),
                            _agrees(keys, with_consensus, AGREE_AT))


def _number(control: Control, answers, **_) -> ControlConsensus | None:
    key = control.tag.lower()  # "rating" or "number"
    given = [(k, r[0]["value"].get(key)) for k, r in answers if r and "value" in r[0]]
    given = [(k, float(v)) for k, v in given if isinstance(v, int | float) and not isinstance(v, bool)]
    if not given:
        return None
    keys = [k for k, _ in given]
    values = np.array([v for _, v in given])
    median = float(np.median(values))
    if control.tag == "Rating":
        median = float(np.floor(median + 0.5))  # stars are whole: half-way rounds up
    if control.min is not None and control.max is not None and control.max > control.min:
        scale = control.max - control.min
    else:
        scale = max(float(np.ptp(values)), abs(median), 1.0)
    similarity = np.clip(1.0 - np.abs(values - median) / scale, 0.0, 1.0)
    spread = float(similarity.mean())
    value = int(median) if median.is_integer() else median
    region = {"from_name": control.name, "to_name": _to_name(control, answers), "type": key, "value": {key: value}}
    return ControlConsensus(control.name, "number", "median", [region], spread, spread, len(keys),
                            _agrees(keys, similarity, AGREE_AT))


def _boxes(regions: list[dict], vocabulary: list[str], key: str | None) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.array([[float(r["value"].get(f, 0.0)) for f in ("x", "y", "width", "height")] for r in regions],
                     dtype=np.float64).reshape(-1, 4)
    return boxes, np.array([vocabulary.index(_region_label(r, key)) for r in regions], dtype=np.int64)


def _rectangle(control: Control, answers, iou: float, **_) -> ControlConsensus | None:
    if not answers:
        return None
    key = control.label_key
    vocabulary = sorted({_region_label(r, key) for _, regions in answers for r in regions})
    keys = [k for k, _ in answers]
    per_answer = [_boxes(regions, vocabulary, key) for _, regions in answers]
    owner = np.concatenate([np.full(len(b), i) for i, (b, _) in enumerate(per_answer)]).astype(np.int64)
    all_boxes = np.concatenate([b for b, _ in per_answer]).reshape(-1, 4)
    all_labels = np.concatenate([lab for _, lab in per_answer]).astype(np.int64)
    fused = cons.fuse_boxes(all_boxes, all_labels, owner, len(keys), threshold=iou)

    def f1(a, b):
        return agr.region_f1(agr.box_iou(a[0], b[0]), a[1], b[1], iou)

    pairwise = _pairwise(per_answer, f1)
    with_consensus = np.array([f1(a, (fused.boxes, fused.labels)) for a in per_answer])
    sample = next((r for _, regions in answers for r in regions), {})
    extra = {k: sample[k] for k in ("original_width", "original_height", "image_rotation") if k in sample}
    regions = []
    for box, label in zip(fused.boxes.tolist(), fused.labels.tolist()):
        value: dict[str, Any] = dict(zip(("x", "y", "width", "height"), box), rotation=0)
        if key:
            value[key] = [vocabulary[label]]
        regions.append({"from_name": control.name, "to_name": _to_name(control, answers),
                        "type": control.result_type, "value": value, **extra})
    return ControlConsensus(control.name, "rectangle", "box_fusion", regions, float(with_consensus.mean()),
                            _mean_pairwise(pairwise), len(keys), _agrees(keys, with_consensus, AGREE_AT))


def _polygon(control: Control, answers, iou: float, **_) -> ControlConsensus | None:
    if not answers:
        return None
    key = control.label_key

    def f1(a, b):
        if not a or not b:
            return 1.0 if not a and not b else 0.0
        overlap = agr.polygon_iou([r["value"]["points"] for r in a], [r["value"]["points"] for r in b])
        return agr.region_f1(overlap, [_region_label(r, key) for r in a], [_region_label(r, key) for r in b], iou)

    return _medoid(control, "polygon", "region_medoid", answers, f1)


def _medoid(control: Control, kind: str, method: str, answers, similarity, at: float = AGREE_AT):
    """The answer most similar to the others stands for all of them."""
    keys = [k for k, _ in answers]
    values = [regions for _, regions in answers]
    sim = _pairwise(values, similarity)
    n = len(keys)
    closeness = (sim.sum(axis=1) - 1.0) / (n - 1) if n > 1 else np.ones(1)
    best = int(np.argmax(closeness))  # the first of equals: deterministic
    others = np.delete(sim[best], best)
    confidence = float(others.mean()) if others.size else 1.0
    return ControlConsensus(control.name, kind, method, [dict(r) for r in values[best]], confidence,
                            _mean_pairwise(sim), n, _agrees(keys, sim[best], at))


def _spans(regions: list[dict], vocabulary: list[str], key: str | None) -> np.ndarray:
    rows = [(int(r["value"].get("start", 0)), int(r["value"].get("end", 0)), vocabulary.index(_region_label(r, key)))
            for r in regions]
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def _span(control: Control, answers, **_) -> ControlConsensus | None:
    if not answers:
        return None
    key = control.label_key
    vocabulary = sorted({_region_label(r, key) for _, regions in answers for r in regions})
    keys = [k for k, _ in answers]
    per_answer = [_spans(regions, vocabulary, key) for _, regions in answers]
    owner = np.concatenate([np.full(len(s), i) for i, s in enumerate(per_answer)]).astype(np.int64)
    voted = cons.vote_spans(np.concatenate(per_answer).reshape(-1, 3), owner, len(keys))

    def f1(a, b):
        return agr.span_f1(a, b, "exact")

    pairwise = _pairwise(per_answer, f1)
    with_consensus = np.array([f1(s, voted.spans) for s in per_answer])
    texts = {(int(r["value"].get("start", 0)), int(r["value"].get("end", 0))): r["value"].get("text")
             for _, regions in answers for r in regions}
    regions = []
    for start, end, label in voted.spans.tolist():
        value: dict[str, Any] = {"start": start, "end": end, key or "labels": [vocabulary[label]]}
        if texts.get((start, end)) is not None:
            value["text"] = texts[(start, end)]
        regions.append({"from_name": control.name, "to_name": _to_name(control, answers),
                        "type": control.result_type, "value": value})
    return ControlConsensus(control.name, "span", "span_vote", regions, float(with_consensus.mean()),
                            _mean_pairwise(pairwise), len(keys), _agrees(keys, with_consensus, AGREE_AT))


def _text_of(regions: list[dict]) -> str:
    return " ".join(str(t) for r in regions for t in r.get("value", {}).get("text", []))


def _text(control: Control, answers, **_) -> ControlConsensus | None:
    given = [(k, r) for k, r in answers if r]
    if not given:
        return None
    return _medoid(control, "text", "text_medoid", given,
                   lambda a, b: agr.edit_similarity(_text_of(a), _text_of(b)), at=TEXT_SIMILARITY)


def _other(control: Control, answers, **_) -> ControlConsensus | None:
    given = [(k, r) for k, r in answers if r]
    if not given:
        return None
    canonical = [json.dumps(sorted(json.dumps(x.get("value"), sort_keys=True) for x in r)) for _, r in given]
    distinct = sorted(set(canonical))
    code = np.array([distinct.index(c) for c in canonical])
    mv = cons.majority_vote(np.zeros(len(code), dtype=np.int64), code, 1, len(distinct))
    winner = int(mv.labels[0])
    agree = code == winner
    regions = [dict(r) for r in given[int(np.flatnonzero(agree)[0])][1]]
    keys = [k for k, _ in given]
    return ControlConsensus(control.name, "other", "exact_vote", regions, float(mv.share[0]), float(agree.mean()),
                            len(keys), _agrees(keys, agree.astype(float), 1.0))


_BY_KIND = {"choice": _choice, "multi_choice": _multi_choice, "number": _number, "rectangle": _rectangle,
            "polygon": _polygon, "span": _span, "text": _text, "other": _other}


def control_consensus(config: LabelConfig, control: Control, answers: Sequence[Answer], *,
                      iou: float = 0.5, vote: Vote | None = None) -> ControlConsensus | None:
    """The consensus of one control over the answers to one item; None when nobody answered it."""
    per_control = [(key, regions_of(result, control.name)) for key, result in answers]
    return _BY_KIND[control_kind(config, control)](control, per_control, iou=iou, vote=vote)


@dataclass
class ItemConsensus:
    """One item's consensus over all its controls, as an ItemScore row holds it."""

    consensus: list[dict]
    confidence: float  # the least confident control
    agreement: float  # the mean over controls
    n_annotators: int
    method: str
    controls: list[ControlConsensus]


def item_consensus(config: LabelConfig, answers: Sequence[Answer], *, iou: float = 0.5,
                   votes: dict[str, Vote] | None = None) -> ItemConsensus:
    """The consensus of one item; ``votes`` overrides single-choice controls by name."""
    votes = votes or {}
    parts = [c for c in (control_consensus(config, control, answers, iou=iou, vote=votes.get(control.name))
                         for control in scored_controls(config)) if c is not None]
    if not parts:
        return ItemConsensus([], 0.0, 0.0, len(answers), "none", [])
    method = "+".join(dict.fromkeys(p.method for p in parts))[:32]
    return ItemConsensus([r for p in parts for r in p.regions], min(p.confidence for p in parts),
                         float(np.mean([p.agreement for p in parts])), len(answers), method, parts)


# --------------------------------------------------------------------------
# Dawid-Skene posteriors from a stored model
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ChoiceModel:
    """A fitted Dawid-Skene model of one single-choice control, as stored in JSON.

    ``confusion`` maps an annotator id to their true x given matrix;
    annotators the model has not seen get ``typical`` (the mean matrix).
    """

    labels: list[str]
    priors: list[float]
    confusion: dict[int, list[list[float]]]
    typical: list[list[float]]

    def posterior(self, item_idx: np.ndarray, annotator_ids: np.ndarray, label: np.ndarray,
                  n_items: int) -> np.ndarray:
        """One E-step: P(true class | answers) per item, items x classes.

        The same arithmetic as the E-step of `annotate.scoring.consensus.dawid_skene`,
        so scoring new answers with the stored model agrees with re-estimating.
        """
        ids = sorted(self.confusion)
        row = {a: i for i, a in enumerate(ids)}
        matrices = np.array([self.confusion[a] for a in ids] + [self.typical], dtype=np.float64)
        who = np.array([row.get(int(a), len(ids)) for a in annotator_ids], dtype=np.intp)
        with np.errstate(divide="ignore"):
            log_conf = np.log(matrices)
            log_joint = np.tile(np.log(np.asarray(self.priors, dtype=np.float64)), (n_items, 1))
        np.add.at(log_joint, np.asarray(item_idx, dtype=np.intp), log_conf[who, :, np.asarray(label, dtype=np.intp)])
        log_joint -= log_joint.max(axis=1, keepdims=True)
        joint = np.exp(log_joint)
        return joint / joint.sum(axis=1, keepdims=True)
