"""Scoring finished micro-tasks: consensus, agreement, quality, automatic approval and pay."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from sqlalchemy import func, select

from annotate.extensions import db
from annotate.models import AnnotatorScore, Assignment, AssignmentScore, ItemScore, LedgerEntry, ProjectScore
from annotate.scoring.consensus import dawid_skene
from annotate.services import scoring
from tests.conftest import IMAGE_CONFIG, choice

P, N, U = "Positive", "Negative", "Neutral"


def _item_scores(app, item_ids):
    with app.app_context():
        rows = {s.item_id: s for s in db.session.scalars(select(ItemScore).where(ItemScore.item_id.in_(item_ids)))}
        db.session.expunge_all()
        return [rows.get(i) for i in item_ids]


def _assignment(app, assignment_id):
    with app.app_context():
        a = db.session.get(Assignment, assignment_id)
        score = db.session.get(AssignmentScore, assignment_id)
        db.session.expunge_all()
        return a, score


def _ledger(app):
    with app.app_context():
        rows = db.session.execute(select(LedgerEntry.idempotency_key, LedgerEntry.kind, LedgerEntry.amount,
                                         LedgerEntry.currency, LedgerEntry.annotator_id)
                                  .order_by(LedgerEntry.idempotency_key)).all()
        db.session.rollback()
        return [tuple(r) for r in rows]


def _score(app, micro_task_id):
    with app.app_context():
        return scoring.score_micro_task(micro_task_id)


@pytest.fixture
def voted(app, work):
    """Three annotators, four items: unanimous, 2-1, 2-1, and a three-way tie."""
    project_id = work.project(approve_quality_threshold=0.7, confidence_target=0.7,
                              bonus_quality_target=0.75, bonus_amount=5)
    a, b, c = work.annotators(3)
    done = work.micro_task(project_id, {
        a: [choice(P), choice(P), choice(N), choice(P)],
        b: [choice(P), choice(P), choice(U), choice(N)],
        c: [choice(P), choice(N), choice(N), choice(U)],
    })
    return project_id, (a, b, c), done


def test_majority_vote_gives_each_item_a_consensus_with_its_vote_share(app, voted):
    project_id, _, done = voted
    _score(app, done.micro_task_id)

    scores = _item_scores(app, done.item_ids)
    assert [s.consensus[0]["value"]["choices"] for s in scores] == [[P], [P], [N], [P]]  # the tie: first label
    assert scores[0].consensus == [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                                    "value": {"choices": [P]}}]
    assert [s.confidence for s in scores] == pytest.approx([1, 2 / 3, 2 / 3, 1 / 3])
    assert [s.agreement for s in scores] == pytest.approx([1, 2 / 3, 2 / 3, 1 / 3])
    assert [s.flagged for s in scores] == [False, True, True, True]
    assert {(s.method, s.n_annotators, s.project_id) for s in scores} == {("majority_vote", 3, project_id)}


def test_quality_counts_agreement_with_the_consensus_through_the_prior(app, voted):
    _, (a, b, c), done = voted
    _score(app, done.micro_task_id)

    _, score_a = _assignment(app, done.assignments[a])
    _, score_b = _assignment(app, done.assignments[b])
    # (agreed + 2) / (compared + 4): a prior of 2 right in 4.
    assert (score_a.quality, score_a.agreement) == (pytest.approx(6 / 8), 1.0)
    assert (score_b.quality, score_b.agreement) == (pytest.approx(4 / 8), 0.5)
    assert score_a.details["controls"] == {"sentiment": {"agreed": 4, "compared": 4}}
    assert score_b.details["explanation"].startswith(
        "0.50: 0 of 0 gold items right (each counted 3 times) and agreed with the consensus on 2 of 4 items, "
        "with a prior of 2 right in 4 (at least ")
    with app.app_context():
        annotator = db.session.scalar(select(AnnotatorScore).where(AnnotatorScore.annotator_id == b))
        assert (annotator.quality, annotator.agreement, annotator.n_items) == (pytest.approx(0.5), 0.5, 4)
        assert annotator.details["window"] == {"assignments": 1, "limit": scoring.WINDOW_ASSIGNMENTS}
        assert annotator.details["quality"]["agreement"]["n_agreed"] == 2


def test_good_work_is_approved_and_paid_and_the_rest_waits_for_review(app, voted):
    _, (a, b, c), done = voted
    summary = _score(app, done.micro_task_id)

    assert summary["approved"] == [done.assignments[a]]
    assert summary["pending"] == [done.assignments[b], done.assignments[c]]
    approved, _ = _assignment(app, done.assignments[a])
    assert (approved.decision, approved.decision_rule) == ("approved", "approve_quality_meets_threshold")
    assert approved.decision_reason.startswith("approved: quality 0.75 is at or above the threshold 0.70")
    waiting, _ = _assignment(app, done.assignments[b])
    assert (waiting.decision, waiting.decision_rule) == ("pending", "quality 0.50 below the project's 0.70")
    assert waiting.decision_reason.startswith("waiting for the requester's review: quality 0.50: ")
    ida = done.assignments[a]
    assert _ledger(app) == [(f"bonus:quality:assignment:{ida}", "bonus", 5, "USD", a),
                            (f"earning:assignment:{ida}", "earning", 25, "USD", a)]


def test_gold_accuracy_is_shrunk_by_its_prior_and_weighs_in_quality(app, work):
    project_id = work.project()
    a, b, c = work.annotators(3)
    done = work.micro_task(project_id, {
        a: [choice(P), choice(N), choice(P), choice(N)],  # gold 2 of 2
        b: [choice(P), choice(N), choice(P), choice(P)],  # gold 1 of 2
        c: [choice(P), choice(P), choice(N), choice(P)],  # gold 0 of 2
    }, gold={2: choice(P), 3: choice(N)})
    _score(app, done.micro_task_id)

    scores = {who: _assignment(app, done.assignments[who])[1] for who in (a, b, c)}
    assert [(s.gold_right, s.gold_total) for s in scores.values()] == [(2, 2), (1, 2), (0, 2)]
    # Gold alone: (right + 2) / (gold + 4), so 2 of 2 is 0.67, not 1.
    assert [s.details["quality"]["gold"]["score"] for s in scores.values()] == pytest.approx([4 / 6, 3 / 6, 2 / 6])
    # Pooled, a gold item counting 3 times: (3 gold_right + agreed + 2) / (3 gold + compared + 4).
    assert [s.quality for s in scores.values()] == pytest.approx([10 / 12, 7 / 12, 3 / 12])
    assert scores[c].details["gold_checks"][0] == {
        "item_id": done.item_ids[2], "right": False, "why": "sentiment: expected Positive, you chose Negative"}
    assert scores[a].details["explanation"].startswith(
        "0.83: 2 of 2 gold items right (each counted 3 times) and agreed with the consensus on 2 of 2 items")
    # Gold items have a known answer: no consensus is written for them.
    assert [s is not None for s in _item_scores(app, done.item_ids)] == [True, True, False, False]


MIXED_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="topics" toName="text" choice="multiple">
    <Choice value="Price"/><Choice value="Quality"/><Choice value="Delivery"/>
  </Choices>
  <Rating name="stars" toName="text" maxRating="5"/>
  <TextArea name="summary" toName="text"/>
</View>"""


def _mixed(topics, stars, summary):
    return [{"from_name": "topics", "to_name": "text", "type": "choices", "value": {"choices": topics}},
            {"from_name": "stars", "to_name": "text", "type": "rating", "value": {"rating": stars}},
            {"from_name": "summary", "to_name": "text", "type": "textarea", "value": {"text": [summary]}}]


def test_multi_choice_rating_and_text_each_get_their_own_consensus(app, work):
    project_id = work.project(MIXED_CONFIG)
    a, b, c = work.annotators(3)
    done = work.micro_task(project_id, {
        a: [_mixed(["Price", "Quality"], 4, "good value")],
        b: [_mixed(["Price"], 5, "Good value!")],
        c: [_mixed(["Price", "Delivery"], 2, "late delivery")],
    })
    _score(app, done.micro_task_id)

    [score] = _item_scores(app, done.item_ids)
    assert score.consensus == [
        {"from_name": "topics", "to_name": "text", "type": "choices", "value": {"choices": ["Price"]}},
        {"from_name": "stars", "to_name": "text", "type": "rating", "value": {"rating": 4}},
        {"from_name": "summary", "to_name": "text", "type": "textarea", "value": {"text": ["good value"]}},
    ]
    assert score.method == "label_vote+median+text_medoid"
    # Topics: labels chosen by a majority; pairwise Jaccard 1/2, 1/3, 1/2.
    # Stars: median 4 on a 1-5 scale, similarity 1 - |x - 4| / 4 = 1, 0.75, 0.5.
    # Summary: the answer closest to the others, edit similarity 10/11 and 3/13.
    topics = (1 / 2 + 1 / 3 + 1 / 2) / 3
    stars = (1 + 0.75 + 0.5) / 3
    summary = (10 / 11 + 3 / 13 + 3 / 13) / 3
    assert score.agreement == pytest.approx((topics + stars + summary) / 3)
    assert score.confidence == pytest.approx((10 / 11 + 3 / 13) / 2)  # the least sure control: the summary
    controls = {who: _assignment(app, done.assignments[who])[1].details["controls"] for who in (a, b, c)}
    assert controls[a] == {"stars": {"agreed": 1, "compared": 1}, "summary": {"agreed": 1, "compared": 1},
                           "topics": {"agreed": 0, "compared": 1}}
    assert [sum(v["agreed"] for v in controls[w].values()) for w in (a, b, c)] == [2, 3, 0]


def _box(label, x, y, w, h):
    return {"from_name": "box", "to_name": "image", "type": "rectanglelabels", "original_width": 800,
            "original_height": 600, "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0,
                                              "rectanglelabels": [label]}}


def test_boxes_are_fused_where_a_majority_drew_them(app, work):
    project_id = work.project(IMAGE_CONFIG)
    a, b, c = work.annotators(3)
    done = work.micro_task(project_id, {
        a: [[_box("Car", 10, 10, 20, 20), _box("Person", 50, 50, 10, 10)]],
        b: [[_box("Car", 11, 10, 20, 20)]],
        c: [[_box("Car", 10, 11, 20, 20), _box("Person", 70, 70, 5, 5)]],
    })
    _score(app, done.micro_task_id)

    [score] = _item_scores(app, done.item_ids)
    [fused] = score.consensus  # the two Person boxes were drawn by one annotator each
    assert fused["value"]["rectanglelabels"] == ["Car"]
    assert [fused["value"][k] for k in ("x", "y", "width", "height")] == pytest.approx([31 / 3, 31 / 3, 20, 20])
    assert (fused["original_width"], score.method) == (800, "box_fusion")
    # Region F1 between annotators: 2/3, 1/2, 2/3; with the consensus: 2/3, 1, 2/3.
    assert score.agreement == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert score.confidence == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)


PLATE_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image"><Label value="Car"/><Label value="Person"/></RectangleLabels>
  <TextArea name="plate" toName="image" perRegion="true"/>
</View>"""


def _plated(rid, x, plate):
    box = {**_box("Car", x, 10, 20, 20), "id": rid}
    text = {"id": rid, "from_name": "plate", "to_name": "image", "type": "textarea",
            "value": {"x": x, "y": 10, "width": 20, "height": 20, "rotation": 0, "text": [plate]}}
    return [box, text]


def test_a_text_per_box_is_scored_on_the_fused_box_and_counts_in_quality(app, work):
    project_id = work.project(PLATE_CONFIG)
    a, b, c = work.annotators(3)
    done = work.micro_task(project_id, {
        a: [_plated("a1", 10, "AB 123")],
        b: [_plated("b1", 11, "AB 123")],
        c: [_plated("c1", 12, "XY 999")],
    })
    _score(app, done.micro_task_id)

    [score] = _item_scores(app, done.item_ids)
    fused, plate = score.consensus
    assert (fused["id"], fused["value"]["rectanglelabels"]) == ("box-0", ["Car"])
    assert plate == {"id": "box-0", "from_name": "plate", "to_name": "image", "type": "textarea",
                     "value": {**{k: fused["value"][k] for k in ("x", "y", "width", "height", "rotation")},
                               "text": ["AB 123"]}}
    assert score.method == "box_fusion+region_text_medoid"
    # The boxes all fuse (F1 1 each). Plates: "AB 123" twice, and "XY 999", whose edit
    # similarity to it is 1 - 5/6 ("AB"/"XY" and "123"/"999" differ, the space matches).
    # Medoid a: confidence (1 + 1/6) / 2; agreement over the pairs (1 + 1/6 + 1/6) / 3.
    assert score.confidence == pytest.approx(7 / 12)
    assert score.agreement == pytest.approx((1 + (1 + 1 / 6 + 1 / 6) / 3) / 2)
    controls = {who: _assignment(app, done.assignments[who])[1].details["controls"] for who in (a, b, c)}
    assert controls[a] == {"box": {"agreed": 1, "compared": 1}, "plate": {"agreed": 1, "compared": 1}}
    assert controls[c] == {"box": {"agreed": 1, "compared": 1}, "plate": {"agreed": 0, "compared": 1}}
    # Quality: (agreed + 2) / (compared + 4).
    assert _assignment(app, done.assignments[c])[1].quality == pytest.approx(3 / 6)
    assert _assignment(app, done.assignments[a])[1].quality == pytest.approx(4 / 6)


NER_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Labels name="ner" toName="text"><Label value="PER"/><Label value="ORG"/></Labels>
</View>"""


def _span(start, end, label):
    return {"from_name": "ner", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": end, "text": "x" * (end - start), "labels": [label]}}


def test_entity_spans_are_voted(app, work):
    project_id = work.project(NER_CONFIG)
    a, b, c = work.annotators(3)
    done = work.micro_task(project_id, {
        a: [[_span(0, 4, "PER"), _span(10, 15, "ORG")]],
        b: [[_span(0, 4, "PER")]],
        c: [[_span(0, 4, "PER"), _span(10, 14, "ORG")]],
    })
    _score(app, done.micro_task_id)

    [score] = _item_scores(app, done.item_ids)
    assert score.consensus == [{"from_name": "ner", "to_name": "text", "type": "labels",
                                "value": {"start": 0, "end": 4, "labels": ["PER"], "text": "xxxx"}}]
    assert score.method == "span_vote"
    assert score.agreement == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)  # exact span F1 per pair
    assert score.confidence == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)


def test_scoring_twice_changes_nothing(app, voted):
    _, _, done = voted
    first = _score(app, done.micro_task_id)
    ledger = _ledger(app)
    with app.app_context():
        scores = [(s.item_id, s.consensus, s.confidence, s.flagged) for s in db.session.scalars(select(ItemScore))]
    second = _score(app, done.micro_task_id)

    assert _ledger(app) == ledger and len(ledger) == 2
    assert second["approved"] == [] and second["pending"] == first["pending"]
    with app.app_context():
        again = [(s.item_id, s.consensus, s.confidence, s.flagged) for s in db.session.scalars(select(ItemScore))]
        assert again == scores
        assert db.session.scalar(select(func.count()).select_from(AssignmentScore)) == 3
        assert db.session.scalar(select(func.count()).select_from(AnnotatorScore)) == 3


def test_two_concurrent_runs_pay_once(app, voted):
    _, (a, _, _), done = voted
    start = threading.Barrier(2)
    errors = []

    def run():
        try:
            with app.app_context():
                start.wait()
                scoring.score_micro_task(done.micro_task_id)
        except Exception as exc:  # reported below: a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert [(kind, amount) for _, kind, amount, _, _ in _ledger(app)] == [("bonus", 5), ("earning", 25)]


def test_a_micro_task_still_open_is_left_alone(app, work):
    project_id = work.project()
    a, b = work.annotators(2)
    done = work.micro_task(project_id, {a: [choice(P)], b: [choice(N)]}, status="open")
    summary = _score(app, done.micro_task_id)

    assert summary["why"] == "the micro-task is open, not done"
    assert _item_scores(app, done.item_ids) == [None]
    assert _assignment(app, done.assignments[a])[0].decision == "pending"


def test_qualification_work_is_paid_at_the_qualification_rate(app, work):
    project_id = work.project(qualification_pay=40)
    (a,) = work.annotators(1)
    done = work.micro_task(project_id, {a: [choice(P)]}, gold={0: choice(N)}, qualification=True, status="open")
    _score(app, done.micro_task_id)
    _score(app, done.micro_task_id)

    assignment, _ = _assignment(app, done.assignments[a])
    assert (assignment.decision, assignment.decision_rule) == ("approved", "qualification_paid")
    assert _ledger(app) == [(f"earning:assignment:{done.assignments[a]}", "earning", 40, "USD", a)]


def test_unsure_micro_tasks_ask_for_one_more_annotator_up_to_the_maximum(app, work):
    project_id = work.project(overlap=3, max_overlap=4, confidence_target=0.7)
    a, b, c = work.annotators(3)
    split = work.micro_task(project_id, {a: [choice(P), choice(P)], b: [choice(P), choice(N)],
                                         c: [choice(P), choice(P)]})
    sure = work.micro_task(project_id, {a: [choice(N)], b: [choice(N)], c: [choice(N)]})
    full = work.project(overlap=3, max_overlap=3)
    capped = work.micro_task(full, {a: [choice(P)], b: [choice(N)], c: [choice(U)]})
    for mt in (split, sure, capped):
        _score(app, mt.micro_task_id)

    with app.app_context():
        assert scoring.extra_overlap_needed(project_id) == {split.micro_task_id: 1}
        assert scoring.extra_overlap_needed(full) == {}


# --------------------------------------------------------------------------
# Dawid-Skene over the project
# --------------------------------------------------------------------------

TRUTH = [P, N, U] * 8
# Each good annotator wrongly says Positive on two items, where the spammer
# (always Positive) then ties the vote 2-2 and majority vote picks Positive.
MISTAKES = {0: {1, 7}, 1: {2, 13}, 2: {5, 16}}


def _planted(work):
    project_id = work.project(overlap=4, max_overlap=4, approve_quality_threshold=0.7)
    good = work.annotators(3)
    (spammer,) = work.annotators(1)
    micro_tasks = []
    for k in range(8):
        items = range(3 * k, 3 * k + 3)
        answers = {g: [choice(P if i in MISTAKES[n] else TRUTH[i]) for i in items] for n, g in enumerate(good)}
        answers[spammer] = [choice(P) for _ in items]
        micro_tasks.append(work.micro_task(project_id, answers))
    return project_id, good, spammer, micro_tasks


def _consensus(app, micro_tasks):
    item_ids = [i for mt in micro_tasks for i in mt.item_ids]
    return [s.consensus[0]["value"]["choices"][0] for s in _item_scores(app, item_ids)]


def test_reestimation_learns_the_spammer_and_fixes_the_ties_it_caused(app, work):
    project_id, good, spammer, micro_tasks = _planted(work)
    for mt in micro_tasks:
        _score(app, mt.micro_task_id)
    majority = _consensus(app, micro_tasks)
    assert sum(m != t for m, t in zip(majority, TRUTH)) == 6

    with app.app_context():
        summary = scoring.reestimate_project(project_id)
    assert summary["dawid_skene"] == ["sentiment"]
    assert _consensus(app, micro_tasks) == TRUTH

    # The same numbers as one dawid_skene call over the answers as arrays.
    annotators = [*good, spammer]
    item, worker, label = [], [], []
    for i, truth in enumerate(TRUTH):
        for w, who in enumerate(annotators):
            said = P if who == spammer or i in MISTAKES.get(w, ()) else truth
            item.append(i), worker.append(w), label.append([P, N, U].index(said))
    ds = dawid_skene(np.array(item), np.array(worker), np.array(label), 24, 4, 3)
    scores = _item_scores(app, [i for mt in micro_tasks for i in mt.item_ids])
    assert [s.confidence for s in scores] == pytest.approx(ds.confidence.tolist(), abs=1e-4)
    assert {s.method for s in scores} == {"dawid_skene"}

    with app.app_context():
        details = db.session.scalar(select(AnnotatorScore.details).where(AnnotatorScore.annotator_id == spammer))
        confusion = np.array(details["dawid_skene"]["sentiment"]["confusion"])
        assert confusion[:, 0] == pytest.approx(ds.confusion[3][:, 0], abs=1e-4)
        assert (confusion[:, 0] > 0.9).all()  # whatever the truth, it says Positive
        assert details["dawid_skene"]["sentiment"]["labels"] == [P, N, U]
        project_score = db.session.get(ProjectScore, project_id)
        assert project_score.details["dawid_skene"]["sentiment"]["priors"] == pytest.approx(ds.priors, abs=1e-4)
        assert project_score.alpha is not None and project_score.alpha_low <= project_score.alpha
        # Good work left pending by early, thin evidence is approved now; the spammer's waits.
        decisions = dict(db.session.execute(select(Assignment.id, Assignment.decision)).all())
    for mt in micro_tasks:
        assert {decisions[mt.assignments[g]] for g in good} == {"approved"}
    # The spammer's first two were approved when majority vote, fooled by the
    # ties, agreed with them (5 of 6: (5 + 2) / (6 + 4) = 0.70); paid work stays paid.
    assert [decisions[mt.assignments[spammer]] for mt in micro_tasks] == ["approved"] * 2 + ["pending"] * 6
    with app.app_context():
        quality = db.session.scalar(select(AnnotatorScore.quality).where(AnnotatorScore.annotator_id == spammer))
    assert quality == pytest.approx((8 + 2) / (24 + 4))  # right only where the truth is Positive
    earnings = [e for e in _ledger(app) if e[1] == "earning"]
    assert len(earnings) == 26 and sum(e[2] for e in earnings) == 26 * 25


def test_reestimation_is_idempotent_and_new_work_is_scored_with_its_model(app, work):
    project_id, good, spammer, micro_tasks = _planted(work)
    for mt in micro_tasks:
        _score(app, mt.micro_task_id)
    with app.app_context():
        scoring.reestimate_project(project_id)
    first = [(s.consensus, s.confidence) for s in _item_scores(app, [i for m in micro_tasks for i in m.item_ids])]
    ledger = _ledger(app)
    with app.app_context():
        scoring.reestimate_project(project_id)
    assert [(s.consensus, s.confidence) for s in
            _item_scores(app, [i for m in micro_tasks for i in m.item_ids])] == first
    assert _ledger(app) == ledger

    # A 2-2 tie between a good annotator and the spammer: the model trusts the good ones.
    (newcomer,) = work.annotators(1)
    late = work.micro_task(project_id, {good[0]: [choice(N)], good[1]: [choice(N)], spammer: [choice(P)],
                                        newcomer: [choice(P)]})
    _score(app, late.micro_task_id)
    [score] = _item_scores(app, late.item_ids)
    assert (score.consensus[0]["value"]["choices"], score.method) == ([N], "dawid_skene")
