"""The consensus of one item, control by control, from Label Studio results.

Turns the result JSON that k annotators gave one item into the arrays
`annotate.scoring` works on, and the answer back into one consensus
result: majority (or Dawid-Skene) vote for single choice, a label vote for
multiple choice, the median for ratings and numbers, box fusion for
rectangles, the most central answer for polygons and free text, span voting
for named entities, and an exact-answer vote for anything else. Per-region
controls (a text, choice or rating on each region) are scored on the
consensus regions, through the regions matched to them
(`per_region_consensus`). `items_consensus` gives the same as
`item_consensus` for many single-choice items at once, vectorised.

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
    # key -> (agreed, compared) when an answer is compared more than once on
    # one item: a per-region control compares each matched region.
    counts: dict[int, tuple[int, int]] | None = None
    # Region controls: per consensus region, the (key, region id) of each
    # answer's region matched to it, which per-region answers hang on.
    matched: list[list[tuple[int, Any]]] = field(default_factory=list)

    def tallies(self) -> dict[int, tuple[int, int]]:
        """key -> (agreed, compared): what quality scores count."""
        if self.counts is not None:
            return self.counts
        return {k: (int(a), 1) for k, a in self.agrees.items()}


@dataclass(frozen=True)
class Vote:
    """A categorical consensus given from outside (Dawid-Skene posteriors)."""

    label: str
    confidence: float
    method: str = "dawid_skene"


def scored_controls(config: LabelConfig) -> list[Control]:
    """The controls scored on their own; per-region controls (a text per box) are scored through
    the regions they hang on (`per_region_controls`)."""
    return [c for c in config.controls if not c.per_region]


def per_region_controls(config: LabelConfig) -> list[Control]:
    return [c for c in config.controls if c.per_region]


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
    matched: list[list[tuple[int, Any]]] = [[] for _ in range(len(fused.boxes))]
    flat = [(who, r) for who, (_, regions) in zip(keys, answers) for r in regions]
    for (who, r), m in zip(flat, fused.members.tolist()):
        if m >= 0:
            matched[m].append((who, r.get("id")))
    regions = []
    for box, label in zip(fused.boxes.tolist(), fused.labels.tolist()):
        value: dict[str, Any] = dict(zip(("x", "y", "width", "height"), box), rotation=0)
        if key:
            value[key] = [vocabulary[label]]
        regions.append({"from_name": control.name, "to_name": _to_name(control, answers),
                        "type": control.result_type, "value": value, **extra})
    return ControlConsensus(control.name, "rectangle", "box_fusion", regions, float(with_consensus.mean()),
                            _mean_pairwise(pairwise), len(keys), _agrees(keys, with_consensus, AGREE_AT),
                            matched=matched)


def _polygon(control: Control, answers, iou: float, **_) -> ControlConsensus | None:
    if not answers:
        return None
    key = control.label_key

    def f1(a, b):
        if not a or not b:
            return 1.0 if not a and not b else 0.0
        overlap = agr.polygon_iou([r["value"]["points"] for r in a], [r["value"]["points"] for r in b])
        return agr.region_f1(overlap, [_region_label(r, key) for r in a], [_region_label(r, key) for r in b], iou)

    part = _medoid(control, "polygon", "region_medoid", answers, f1)
    part.matched = _match_to(part.regions, answers, key, lambda a, b: agr.polygon_iou(
        [r["value"]["points"] for r in a], [r["value"]["points"] for r in b]), iou)
    return part


def _match_to(consensus: list[dict], answers, key: str | None, overlap, threshold: float) -> list[list[tuple]]:
    """Per consensus region, the (key, region id) of each answer's region matched to it
    (same label, overlap at least `threshold`, one-to-one, largest overlap first)."""
    matched: list[list[tuple[int, Any]]] = [[] for _ in consensus]
    if not consensus:
        return matched
    wanted = [_region_label(r, key) for r in consensus]
    for k, regions in answers:
        if not regions:
            continue
        i, j = agr.match_regions(overlap(consensus, regions), wanted, [_region_label(r, key) for r in regions],
                                 threshold)
        for a, b in zip(i.tolist(), j.tolist()):
            matched[a].append((k, regions[b].get("id")))
    return matched


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
    def overlap(a, b):
        return agr.span_iou([(r["value"]["start"], r["value"]["end"]) for r in a],
                            [(int(r["value"].get("start", 0)), int(r["value"].get("end", 0))) for r in b])

    return ControlConsensus(control.name, "span", "span_vote", regions, float(with_consensus.mean()),
                            _mean_pairwise(pairwise), len(keys), _agrees(keys, with_consensus, AGREE_AT),
                            matched=_match_to(regions, answers, key or "labels", overlap, 1e-9))


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


# --------------------------------------------------------------------------
# Per-region controls: a text, choice or rating for each region
# --------------------------------------------------------------------------

REGION_KINDS = ("rectangle", "polygon", "span")
# What a region's value holds besides a per-region answer: its place, and the region control's labels.
_GEOMETRY = ("x", "y", "width", "height", "rotation", "points", "start", "end", "startOffset", "endOffset",
             "globalOffsets", "text")
_OWN_KEY = {"Choices": "choices", "Rating": "rating", "Number": "number", "TextArea": "text", "Taxonomy": "taxonomy"}


def _per_region_value(control: Control, consensus_region: dict, label_key: str | None, answer: dict) -> dict:
    """The consensus answer's value placed on the consensus region: its geometry, then the control's own keys."""
    geometry = {k: v for k, v in consensus_region.get("value", {}).items() if k != label_key}
    own = _OWN_KEY.get(control.tag)
    given = answer.get("value", {})
    if own is not None:
        geometry.pop(own, None)
        return {**geometry, own: given.get(own)}
    return {**geometry, **{k: v for k, v in given.items() if k not in _GEOMETRY}}


def per_region_consensus(config: LabelConfig, control: Control, parts: Sequence[ControlConsensus],
                         answers: Sequence[Answer], *, iou: float = 0.5) -> ControlConsensus | None:
    """The consensus of a per-region control, region by region.

    Each consensus region of a region control on the same object (a fused
    box, the medoid's polygon, a voted span) has the regions matched to it
    (by IoU, or by span overlap); the per-region answers with those regions'
    ids are scored as the control is scored on a whole item: the majority
    choice, the median rating, the medoid text. The consensus answer goes on
    the consensus region (same id, its geometry). A matched region that
    lacks the answer when the consensus has one counts as a disagreement.
    Confidence and agreement are means over the regions that got answers;
    each matched region is one comparison in the annotator's counts.
    """
    by_id = {(key, r.get("id")): r for key, result in answers for r in regions_of(result, control.name)
             if r.get("id") is not None}
    if not by_id:
        return None
    kind = control_kind(config, control)
    if kind not in ("choice", "multi_choice", "number", "text"):
        kind = "other"
        # Compared without the region's place, which each annotator drew a little differently.
        by_id = {k: {**r, "value": {f: v for f, v in r.get("value", {}).items() if f not in _GEOMETRY}}
                 for k, r in by_id.items()}
    score = _BY_KIND[kind]
    regions, confidences, agreements = [], [], []
    counts: dict[int, list[int]] = {}
    n_answers: set[int] = set()
    for part in parts:
        region_control = config.control(part.control)
        if part.kind not in REGION_KINDS or not set(region_control.to_name) & set(control.to_name):
            continue
        label_key = region_control.label_key
        for index, (consensus_region, members) in enumerate(zip(part.regions, part.matched)):
            given = [(key, [by_id[(key, rid)]]) for key, rid in members if (key, rid) in by_id]
            if not given:
                continue
            one = score(control, given, iou=iou, vote=None)
            if one is None or not one.regions:
                continue
            method = one.method
            if consensus_region.get("id") is None:
                consensus_region["id"] = f"{part.control}-{index}"  # the fused box's own id, for its answers
            regions.append({"id": consensus_region["id"], "from_name": control.name,
                            "to_name": consensus_region.get("to_name") or control.to_name[0],
                            "type": control.result_type,
                            "value": _per_region_value(control, consensus_region, label_key, one.regions[0])})
            confidences.append(one.confidence)
            agreements.append(one.agreement)
            n_answers.update(key for key, _ in given)
            if len(members) < 2:
                continue
            answered = {key for key, _ in given}
            for key, _ in members:
                # One answer alone is the consensus; a missing answer is not.
                agrees = one.agrees.get(key, True) if key in answered else False
                tally = counts.setdefault(key, [0, 0])
                tally[0] += int(agrees)
                tally[1] += 1
    if not regions:
        return None
    return ControlConsensus(control.name, f"per_region_{kind}", f"region_{method}", regions,
                            float(np.mean(confidences)), float(np.mean(agreements)), len(n_answers),
                            counts={k: (a, c) for k, (a, c) in counts.items()})


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
    parts += [c for c in (per_region_consensus(config, control, parts, answers, iou=iou)
                          for control in per_region_controls(config)) if c is not None]
    if not parts:
        return ItemConsensus([], 0.0, 0.0, len(answers), "none", [])
    method = "+".join(dict.fromkeys(p.method for p in parts))[:32]
    return ItemConsensus([r for p in parts for r in p.regions], min(p.confidence for p in parts),
                         float(np.mean([p.agreement for p in parts])), len(answers), method, parts)


# --------------------------------------------------------------------------
# Many items at once, for configs of single choices only
# --------------------------------------------------------------------------


def choices_only(config: LabelConfig) -> bool:
    """True when every control is a single choice scored on its own: `items_consensus` applies."""
    controls = scored_controls(config)
    return bool(controls) and not per_region_controls(config) and all(
        control_kind(config, c) == "choice" for c in controls)


@dataclass(frozen=True)
class ItemRow:
    """`item_consensus` of one item as the scores need it: the row, and each answer's comparisons."""

    item_id: int
    consensus: list[dict]
    confidence: float
    agreement: float
    n_annotators: int
    method: str
    tallies: dict[str, dict[int, tuple[int, int]]]  # control -> key -> (agreed, compared)


def items_consensus(config: LabelConfig, items: Sequence[tuple[int, Sequence[Answer]]],
                    votes: dict[int, dict[str, Vote]] | None = None) -> list[ItemRow]:
    """`item_consensus` of many items of a single-choice config (`choices_only`), vectorised per control.

    The same answers give the same consensus, confidence, agreement, method
    and counts as `item_consensus` item by item (a test checks it on random
    answers), at a fraction of the cost: a re-estimation scores every item.
    """
    votes = votes or {}
    n_items = len(items)
    index = {item_id: i for i, (item_id, _) in enumerate(items)}
    parts: list[list[tuple[dict, float, float, str]]] = [[] for _ in range(n_items)]
    tallies: list[dict[str, dict[int, tuple[int, int]]]] = [{} for _ in range(n_items)]
    for control in scored_controls(config):
        name = control.name
        item_of, keys, given, to_names = [], [], [], {}
        # Answers loaded by a re-estimation share one parsed result per distinct text:
        # each is read once. (The results outlive this call, so their ids stay theirs.)
        read: dict[int, tuple[str | None, str | None]] = {}
        for i, (_, answers) in enumerate(items):
            for key, result in answers:
                seen_before = read.get(id(result))
                if seen_before is None:
                    regions = regions_of(result, name)
                    seen_before = read[id(result)] = (
                        next((r["to_name"] for r in regions if r.get("to_name")), None), choice_of(regions))
                first_to, label = seen_before
                if to_names.get(i) is None:
                    to_names[i] = first_to
                if label is not None:
                    item_of.append(i)
                    keys.append(key)
                    given.append(label)
        if not given:
            continue
        seen = set(given)
        vocabulary = (list(control.labels) or sorted(seen)) + sorted(seen - set(control.labels))
        code_of = {label: c for c, label in enumerate(vocabulary)}
        item = np.array(item_of, dtype=np.int64)
        code = np.array([code_of[label] for label in given], dtype=np.int64)
        n_labels = len(vocabulary)
        counts = np.bincount(item * n_labels + code, minlength=n_items * n_labels).reshape(n_items, n_labels)
        total = counts.sum(axis=1)
        winner = counts.argmax(axis=1)  # the first maximum: the lowest label, as majority_vote
        share = counts[np.arange(n_items), winner] / np.maximum(total, 1)
        chosen = winner.copy()
        confidence = share.astype(np.float64)
        method = np.full(n_items, "majority_vote", dtype=object)
        for item_id, by_control in votes.items():
            vote, i = by_control.get(name), index.get(item_id)
            if vote is not None and i is not None and total[i]:
                chosen[i] = code_of.get(vote.label, -1)
                confidence[i] = vote.confidence
                method[i] = vote.method
        agree = code == chosen[item]
        agreement = np.bincount(item, weights=agree, minlength=n_items) / np.maximum(total, 1)
        to_name = control.to_name[0]
        for i in np.flatnonzero(total).tolist():
            label = vocabulary[chosen[i]] if chosen[i] >= 0 else votes[items[i][0]][name].label
            region = {"from_name": name, "to_name": to_names.get(i) or to_name, "type": "choices",
                      "value": {"choices": [label]}}
            parts[i].append((region, float(confidence[i]), float(agreement[i]), method[i]))
        for i, key, a in zip(item_of, keys, agree.tolist()):
            if total[i] > 1:
                tallies[i].setdefault(name, {})[key] = (int(a), 1)
    out = []
    for i, (item_id, answers) in enumerate(items):
        if not parts[i]:
            out.append(ItemRow(item_id, [], 0.0, 0.0, len(answers), "none", {}))
            continue
        out.append(ItemRow(item_id, [p[0] for p in parts[i]], min(p[1] for p in parts[i]),
                           sum(p[2] for p in parts[i]) / len(parts[i]), len(answers),
                           "+".join(dict.fromkeys(p[3] for p in parts[i]))[:32], tallies[i]))
    return out


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
