"""The vectorised consensus of many single-choice items gives what item_consensus gives item by item."""
from __future__ import annotations

import numpy as np
import pytest

from annotate.labelconfig import parse_config
from annotate.services.consensus import Vote, choices_only, item_consensus, items_consensus

TWO_CHOICES = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="Positive"/><Choice value="Negative"/><Choice value="Neutral"/>
  </Choices>
  <Choices name="topic" toName="text" choice="single"><Choice value="Price"/><Choice value="Delivery"/></Choices>
</View>"""


def _answer(rng, control, labels):
    pick = rng.integers(0, len(labels) + 2)
    if pick == len(labels):
        return []  # this annotator left the control out
    if pick == len(labels) + 1:
        return [{"from_name": control, "to_name": "text", "type": "choices", "value": {"choices": []}}]
    return [{"from_name": control, "to_name": "text", "type": "choices", "value": {"choices": [labels[pick]]}}]


@pytest.mark.parametrize("seed", range(5))
def test_many_items_at_once_match_one_at_a_time(seed):
    config = parse_config(TWO_CHOICES)
    assert choices_only(config)
    rng = np.random.default_rng(seed)
    # "Other" is outside the config: it still counts, after the config's labels.
    sentiments, topics = ["Positive", "Negative", "Neutral", "Other"], ["Price", "Delivery"]
    items, votes = [], {}
    for item_id in range(100, 160):
        k = int(rng.integers(1, 6))
        answers = [(1000 + item_id * 10 + j, _answer(rng, "sentiment", sentiments) + _answer(rng, "topic", topics))
                   for j in range(k)]
        items.append((item_id, answers))
        if rng.random() < 0.3:  # a Dawid-Skene vote on some items, sometimes for a label nobody gave
            votes[item_id] = {"sentiment": Vote(str(rng.choice(sentiments)), float(rng.random()))}
    rows = items_consensus(config, items, votes)
    for (item_id, answers), row in zip(items, rows):
        one = item_consensus(config, answers, votes=votes.get(item_id))
        assert row.item_id == item_id
        assert row.consensus == one.consensus
        assert (row.confidence, row.agreement) == pytest.approx((one.confidence, one.agreement))
        assert (row.n_annotators, row.method) == (one.n_annotators, one.method)
        assert row.tallies == {part.control: part.tallies() for part in one.controls if part.tallies()}


def test_ties_go_to_the_first_label_of_the_config():
    config = parse_config(TWO_CHOICES)
    neg = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Negative"]}}]
    pos = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}]
    [row] = items_consensus(config, [(7, [(1, neg), (2, pos)])])
    assert row.consensus[0]["value"]["choices"] == ["Positive"]
    assert (row.confidence, row.agreement, row.method) == (0.5, 0.5, "majority_vote")
    assert row.tallies == {"sentiment": {1: (0, 1), 2: (1, 1)}}
