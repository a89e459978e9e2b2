"""Gold checks: whole-item answers, regions, and answers given per region."""
from __future__ import annotations

from annotate.services.gold import compare


def box(rid, x, y, label="Car"):
    return {"id": rid, "from_name": "box", "to_name": "image", "type": "rectanglelabels",
            "value": {"x": x, "y": y, "width": 10, "height": 10, "rectanglelabels": [label]}}


def plate(rid, x, y, text):
    """A TextArea with perRegion="true": its result carries the box's id and geometry."""
    return {"id": rid, "from_name": "plate", "to_name": "image", "type": "textarea",
            "value": {"x": x, "y": y, "width": 10, "height": 10, "text": [text]}}


def span(rid, start, end, label="PER"):
    return {"id": rid, "from_name": "ner", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": end, "labels": [label]}}


def kind(rid, choice):
    return {"id": rid, "from_name": "kind", "to_name": "text", "type": "choices",
            "value": {"start": 0, "end": 5, "choices": [choice]}}


GOLD = [box("g1", 10, 10), box("g2", 50, 50), plate("g1", 10, 10, "AB 123"), plate("g2", 50, 50, "XY 987")]


def test_per_region_text_is_judged_on_the_matching_box_whatever_the_order_and_ids():
    # The annotator drew the boxes in the other order, with their own ids.
    given = [box("a", 51, 50), box("b", 10, 11), plate("a", 51, 50, "XY 987"), plate("b", 10, 11, "AB 123")]
    assert compare(given, GOLD).right


def test_per_region_text_on_the_wrong_box_is_wrong_and_says_which_text():
    given = [box("a", 10, 10), box("b", 50, 50), plate("a", 10, 10, "XY 987"), plate("b", 50, 50, "AB 123")]
    check = compare(given, GOLD)
    assert not check.right
    assert "plate: expected the text 'AB 123', you wrote 'XY 987'" in check.why
    assert "on the region that matches" in check.why


def test_a_region_left_without_its_per_region_answer_is_wrong():
    given = [box("a", 10, 10), box("b", 50, 50), plate("a", 10, 10, "AB 123")]
    check = compare(given, GOLD)
    assert not check.right and "expected the text 'XY 987', you wrote ''" in check.why


def test_a_missing_region_is_reported_before_its_per_region_answer():
    given = [box("a", 10, 10), plate("a", 10, 10, "AB 123")]
    check = compare(given, GOLD)
    assert not check.right and "1 expected region(s) had no match" in check.why


def test_per_region_choices_on_entity_spans():
    gold = [span("s1", 0, 5), kind("s1", "Real"), span("s2", 10, 14), kind("s2", "Fictional")]
    right = [span("x", 10, 14), span("y", 0, 5), kind("y", "Real"), kind("x", "Fictional")]
    swapped = [span("x", 10, 14), span("y", 0, 5), kind("y", "Fictional"), kind("x", "Real")]
    assert compare(right, gold).right
    check = compare(swapped, gold)
    assert not check.right and "kind: expected Real, you chose Fictional" in check.why


def test_whole_item_answers_are_still_judged_as_before():
    choice = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]
    other = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Negative"]}}]
    assert compare(choice, choice).right
    assert compare(other, choice).why == "sentiment: expected Positive, you chose Negative"
    assert compare([span("a", 0, 5)], [span("g", 0, 5)]).right
    assert not compare([span("a", 0, 6)], [span("g", 0, 5)]).right
