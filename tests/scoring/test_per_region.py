"""Per-region controls (a text, choice or rating on each box, polygon or span) get a consensus
and agreement through the regions they hang on; every expected figure is worked out by hand."""
from __future__ import annotations

import pytest

from annotate.labelconfig import parse_config
from annotate.scoring.agreement import span_iou
from annotate.scoring.consensus import fuse_boxes
from annotate.services.consensus import item_consensus

BOX_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image"><Label value="Car"/><Label value="Person"/></RectangleLabels>
  <TextArea name="plate" toName="image" perRegion="true"/>
  <Choices name="colour" toName="image" perRegion="true" choice="single">
    <Choice value="Red"/><Choice value="Blue"/>
  </Choices>
</View>"""

POLYGON_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <PolygonLabels name="shape" toName="image"><Label value="Roof"/></PolygonLabels>
  <Choices name="material" toName="image" perRegion="true" choice="single">
    <Choice value="Tile"/><Choice value="Metal"/>
  </Choices>
</View>"""

SPAN_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Labels name="ner" toName="text"><Label value="PER"/><Label value="ORG"/></Labels>
  <Rating name="sure" toName="text" perRegion="true" maxRating="5"/>
</View>"""


def _box(rid, label, x, y, w=20, h=20):
    return {"id": rid, "from_name": "box", "to_name": "image", "type": "rectanglelabels",
            "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [label]}}


def _on(region, control, kind, **value):
    """A per-region answer: the region's id and place, and the control's value."""
    place = {k: v for k, v in region["value"].items() if not k.endswith("labels")}
    return {"id": region["id"], "from_name": control, "to_name": region["to_name"], "type": kind,
            "value": {**place, **value}}


def _part(item, control):
    return next(p for p in item.controls if p.control == control)


def test_fused_boxes_carry_the_medoid_text_and_the_majority_choice():
    config = parse_config(BOX_CONFIG)
    a1, b1, c1 = _box("a1", "Car", 10, 10), _box("b1", "Car", 11, 10), _box("c1", "Car", 10, 11)
    c2 = _box("c2", "Person", 70, 70, 5, 5)  # one annotator's only: not fused, so not compared
    answers = [
        (1, [a1, _on(a1, "plate", "textarea", text=["red car"]), _on(a1, "colour", "choices", choices=["Red"])]),
        (2, [b1, _on(b1, "plate", "textarea", text=["red car"]), _on(b1, "colour", "choices", choices=["Blue"])]),
        (3, [c1, _on(c1, "plate", "textarea", text=["red cat"]), _on(c1, "colour", "choices", choices=["Red"]),
             c2, _on(c2, "colour", "choices", choices=["Blue"])]),
    ]
    item = item_consensus(config, answers)

    fused = [r for r in item.consensus if r["from_name"] == "box"]
    assert [r["id"] for r in fused] == ["box-0"]
    place = {k: fused[0]["value"][k] for k in ("x", "y", "width", "height")}
    plate = _part(item, "plate")
    [text] = plate.regions
    assert (text["id"], text["type"], text["value"]["text"]) == ("box-0", "textarea", ["red car"])
    assert {k: text["value"][k] for k in place} == pytest.approx(place)
    # Edit similarity: "red car" / "red cat" = 1 - 1/7. The medoid is a's text (first of the
    # two closest); its mean similarity to the others (1 + 6/7) / 2 = 13/14 is the confidence,
    # the mean over the three pairs (1 + 6/7 + 6/7) / 3 = 19/21 the agreement.
    assert plate.confidence == pytest.approx(13 / 14)
    assert plate.agreement == pytest.approx(19 / 21)
    # Free text agrees at 0.9: 6/7 does not.
    assert plate.tallies() == {1: (1, 1), 2: (1, 1), 3: (0, 1)}
    assert plate.method == "region_text_medoid"

    colour = _part(item, "colour")
    [chosen] = colour.regions
    assert (chosen["id"], chosen["value"]["choices"]) == ("box-0", ["Red"])
    assert colour.confidence == pytest.approx(2 / 3) and colour.agreement == pytest.approx(2 / 3)
    assert colour.tallies() == {1: (1, 1), 2: (0, 1), 3: (1, 1)}
    # The item's confidence is its least sure control: the box F1 with the consensus is
    # 1, 1, 2/3 (c's lone Person box), mean 8/9; the colour vote 2/3.
    assert item.confidence == pytest.approx(2 / 3)
    assert item.agreement == pytest.approx((_part(item, "box").agreement + 19 / 21 + 2 / 3) / 3)


def test_a_matched_region_without_the_answer_disagrees():
    config = parse_config(BOX_CONFIG)
    a1, b1, c1 = _box("a1", "Car", 10, 10), _box("b1", "Car", 11, 10), _box("c1", "Car", 10, 11)
    answers = [(1, [a1, _on(a1, "colour", "choices", choices=["Blue"])]),
               (2, [b1, _on(b1, "colour", "choices", choices=["Blue"])]),
               (3, [c1])]
    colour = _part(item_consensus(config, answers), "colour")
    assert colour.regions[0]["value"]["choices"] == ["Blue"]
    assert colour.confidence == 1.0  # of those who answered, all chose Blue
    assert colour.tallies() == {1: (1, 1), 2: (1, 1), 3: (0, 1)}
    assert colour.n_answers == 2


def test_two_boxes_count_twice_and_ids_follow_each_box():
    config = parse_config(BOX_CONFIG)
    answers = []
    for key, dx, colours in ((1, 0, ("Red", "Blue")), (2, 1, ("Red", "Red")), (3, 2, ("Blue", "Red"))):
        car, person = _box(f"{key}c", "Car", 10 + dx, 10), _box(f"{key}p", "Person", 50 + dx, 50)
        answers.append((key, [car, person, _on(car, "colour", "choices", choices=[colours[0]]),
                              _on(person, "colour", "choices", choices=[colours[1]])]))
    item = item_consensus(config, answers)
    boxes = {r["id"]: r["value"]["rectanglelabels"][0] for r in item.consensus if r["from_name"] == "box"}
    colours = {r["id"]: r["value"]["choices"][0] for r in item.consensus if r["from_name"] == "colour"}
    assert boxes == {"box-0": "Car", "box-1": "Person"}
    assert colours == {"box-0": "Red", "box-1": "Red"}
    colour = _part(item, "colour")
    assert colour.tallies() == {1: (1, 2), 2: (2, 2), 3: (1, 2)}
    assert colour.confidence == pytest.approx(2 / 3)


def test_fusion_reports_which_box_went_where():
    boxes = [[10, 10, 20, 20], [50, 50, 5, 5], [11, 10, 20, 20], [10, 11, 20, 20]]
    fused = fuse_boxes(boxes, [0, 1, 0, 0], [0, 0, 1, 2], 3)
    assert fused.members.tolist() == [0, -1, 0, 0]


def test_polygons_carry_the_majority_material_of_the_regions_matched_to_the_medoid():
    config = parse_config(POLYGON_CONFIG)

    def roof(rid, dx):
        return {"id": rid, "from_name": "shape", "to_name": "image", "type": "polygonlabels",
                "value": {"points": [[10 + dx, 10], [40 + dx, 10], [40 + dx, 40], [10 + dx, 40]],
                          "polygonlabels": ["Roof"]}}

    r1, r2, r3 = roof("p1", 0), roof("p2", 1), roof("p3", 30)  # the third barely overlaps: unmatched
    answers = [(1, [r1, _on(r1, "material", "choices", choices=["Tile"])]),
               (2, [r2, _on(r2, "material", "choices", choices=["Tile"])]),
               (3, [r3, _on(r3, "material", "choices", choices=["Metal"])])]
    item = item_consensus(config, answers)
    material = _part(item, "material")
    [region] = material.regions
    # The medoid is a's polygon (closest to b's, first of equals) and keeps its id.
    assert region["id"] == "p1" and region["value"]["choices"] == ["Tile"]
    assert region["value"]["points"] == r1["value"]["points"]
    assert material.tallies() == {1: (1, 1), 2: (1, 1)}
    assert (material.confidence, material.agreement) == (1.0, 1.0)


def test_span_ratings_are_matched_by_overlap_and_scored_as_intervals():
    config = parse_config(SPAN_CONFIG)

    def span(rid, start, end, label="PER"):
        return {"id": rid, "from_name": "ner", "to_name": "text", "type": "labels",
                "value": {"start": start, "end": end, "text": "Alice"[: end - start], "labels": [label]}}

    a, b, c = span("a", 0, 5), span("b", 0, 5), span("c", 0, 4)  # c's overlaps the voted span, not exactly
    answers = [(1, [a, _on(a, "sure", "rating", rating=4)]), (2, [b, _on(b, "sure", "rating", rating=5)]),
               (3, [c, _on(c, "sure", "rating", rating=2)])]
    item = item_consensus(config, answers)
    assert [r["id"] for r in item.consensus if r["from_name"] == "ner"] == ["ner-0"]
    sure = _part(item, "sure")
    [region] = sure.regions
    assert region["value"] == {"start": 0, "end": 5, "text": "Alice", "rating": 4}  # median of 4, 5, 2
    # Stars 1-5: the scale is 4. Similarity to the median 1, 1 - 1/4, 1 - 2/4: mean 0.75;
    # agreement at 0.75 or more.
    assert sure.confidence == pytest.approx(0.75) and sure.agreement == pytest.approx(0.75)
    assert sure.tallies() == {1: (1, 1), 2: (1, 1), 3: (0, 1)}


def test_span_overlap():
    assert span_iou([(0, 5), (10, 14)], [(0, 4), (20, 25)]).tolist() == [[0.8, 0.0], [0.0, 0.0]]
    assert span_iou([], [(0, 4)]).shape == (0, 1)


def test_without_per_region_answers_the_consensus_is_unchanged():
    config = parse_config(BOX_CONFIG)
    answers = [(k, [_box(f"{k}", "Car", 10 + k, 10)]) for k in (1, 2, 3)]
    item = item_consensus(config, answers)
    assert [p.control for p in item.controls] == ["box"]
    assert "id" not in item.consensus[0]
