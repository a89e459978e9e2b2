"""The built-in learner: trained on consensus and gold, versioned, retrained on growth,
predicting open items; and the anchoring guard around what annotators are shown."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from annotate.assist import embedding, learner
from annotate.extensions import db
from annotate.models import Annotation, Assignment, AssistModel, Item, ItemEmbedding, ItemScore, Prediction
from annotate.services import assist
from tests.assist.conftest import label_micro_tasks, truth
from tests.conftest import choice


def models(app, project: int) -> list[AssistModel]:
    with app.app_context():
        found = list(db.session.scalars(select(AssistModel).where(AssistModel.project_id == project)
                                        .order_by(AssistModel.version)))
        db.session.expunge_all()
        return found


def predictions(app, project: int) -> dict[str, tuple[str, float, str]]:
    """text -> (predicted label, score, model version) of every predicted item."""
    with app.app_context():
        rows = db.session.execute(select(Item.data, Prediction.result, Prediction.score, Prediction.model_version)
                                  .join(Prediction, Prediction.item_id == Item.id)
                                  .where(Item.project_id == project)).all()
        return {data["text"]: (result[0]["value"]["choices"][0], score, version)
                for data, result, score, version in rows}


def test_trains_on_consensus_then_predicts_the_open_items(app, client, assisted, labelers, run_jobs):
    project = assisted.live(items=60, per_task=5, overlap=2, gold=10)
    label_micro_tasks(project, labelers(2), 6, run_jobs)  # 30 items with a consensus of two

    [model] = models(app, project)
    assert (model.kind, model.version, model.training_size) == ("builtin", 1, 40)
    # Accuracy is measured on what no queue order picked: the 10 gold answers and the random sample.
    with app.app_context():
        labeled = db.session.scalars(select(ItemScore.item_id).join(Item, Item.id == ItemScore.item_id)
                                     .where(ItemScore.project_id == project, Item.is_gold.is_(False)))
        sampled = sum(assist.in_random_sample(i) for i in labeled)
    assert model.details["heldout_size"] == 10 + sampled
    assert model.heldout_accuracy is not None and model.heldout_accuracy >= 0.8
    assert model.details["heldout"].startswith("measured on the gold answers and the consensus labels of a random")
    assert (model.details["features"], model.details["classifier"]) == ("all-MiniLM-L6-v2 sentence embeddings",
                                                                          "logistic regression")
    # A few dozen labels measure roughly: the page gives the range, which holds the measured figure.
    low, high = model.details["heldout_interval"]
    assert low < model.heldout_accuracy <= high and high - low > 0.1
    page = client.get(f"/projects/{project}", headers=assisted.requester.headers).get_data(as_text=True)
    assert (f"{model.heldout_accuracy * 100:.1f}% <span class=\"muted\">of {10 + sampled}, "
            f"{low * 100:.0f}-{high * 100:.0f}%</span>" in page
            and "Held-out accuracy of builtin-v1: measured on the gold answers and the consensus labels of a random "
                "10% sample of items (chosen by item id, never by the model), with a model trained on the rest; "
                "consensus labels are wrong now and then, and a few dozen of them measure roughly: the range is "
                "where the true figure lies, 19 times in 20." in page)
    predicted = predictions(app, project)
    # Every open item (the 30 nobody labeled yet) and nothing else, with the label its words give.
    assert len(predicted) == 30
    right = sum(label == truth(text) for text, (label, _, _) in predicted.items())
    assert right >= 27
    assert {version for _, _, version in predicted.values()} == {"builtin-v1"}
    assert all(0.5 <= score <= 1.0 for _, score, _ in predicted.values())


def test_annotators_get_the_predictions_and_acceptance_is_recorded_by_the_server(app, assisted, labelers, run_jobs):
    project = assisted.live(items=40, per_task=5, overlap=2)
    first, second = labelers(2)
    label_micro_tasks(project, [first, second], 4, run_jobs)
    work = first.next(project).get_json()
    assert work["assist"] == {"source": "builtin", "shown": True, "unavailable": None}
    shown = {item["id"]: item["predictions"][0] for item in work["items"]}
    assert len(shown) == 5 and all(p["model_version"] == "builtin-v1" for p in shown.values())
    # The page claims nothing was pre-filled; the server knows better.
    ids = list(shown)
    annotations = [{"item_id": ids[0], "result": shown[ids[0]]["result"], "seconds": 1.0,
                    "had_prediction": False, "accepted_prediction": False}]
    flipped = "Negative" if shown[ids[1]]["result"][0]["value"]["choices"] == ["Positive"] else "Positive"
    annotations.append({"item_id": ids[1], "result": choice(flipped), "seconds": 4.0, "accepted_prediction": True})
    annotations += [{"item_id": i, "result": shown[i]["result"], "seconds": 1.0} for i in ids[2:]]
    response = first.client.post(f"/api/work/{work['assignment_id']}/submit", headers=first.headers,
                                 json={"annotations": annotations})
    assert response.status_code == 200
    with app.app_context():
        stored = {a.item_id: (a.had_prediction, a.accepted_prediction)
                  for a in db.session.scalars(select(Annotation).where(Annotation.assignment_id == work["assignment_id"]))}
        assert db.session.get(Assignment, work["assignment_id"]).with_predictions is True
    assert stored[ids[0]] == (True, True) and stored[ids[1]] == (True, False)
    assert all(stored[i] == (True, True) for i in ids[2:])


def test_single_answers_are_never_training_labels(app, assisted, labelers, run_jobs):
    project = assisted.live(items=40, per_task=5, overlap=1)
    label_micro_tasks(project, labelers(1), 8, run_jobs)
    assert models(app, project) == []
    with app.app_context():
        assert db.session.query(ItemScore).filter_by(project_id=project).count() == 40
        assert assist.trainable_count(db.session, project) == 0
        summary = assist.train_builtin(project, force=True)
    assert summary == {"trained": False, "why": "0 consensus labels so far; the learner needs at least 20"}


def test_gold_answers_teach_and_never_get_predictions(app, assisted, labelers, run_jobs):
    project = assisted.live(items=30, per_task=5, overlap=2, gold=20)
    # Publishing trained a first model on the 20 gold answers alone.
    [model] = models(app, project)
    assert model.training_size == 20 and len(predictions(app, project)) == 30
    with app.app_context():
        gold_predicted = db.session.scalar(select(Prediction.id).join(Item, Item.id == Prediction.item_id)
                                           .where(Item.project_id == project, Item.is_gold.is_(True)))
    assert gold_predicted is None


def test_retrains_once_consensus_grew_by_the_projects_share(app, assisted, labelers, run_jobs):
    project = assisted.live(items=80, per_task=5, overlap=2, retrain_growth=0.25)
    workers = labelers(2)
    label_micro_tasks(project, workers, 5, run_jobs)        # 25 labels: v1
    assert [(m.version, m.training_size) for m in models(app, project)] == [(1, 25)]
    label_micro_tasks(project, workers, 1, run_jobs)        # 30 < 25 * 1.25 = 31.25: not yet
    assert len(models(app, project)) == 1
    label_micro_tasks(project, workers, 1, run_jobs)        # 35: v2
    assert [(m.version, m.training_size) for m in models(app, project)] == [(1, 25), (2, 35)]
    # Open items get the newest model's prediction (a row is rewritten only if its label or its score
    # changed); the 10 labeled in between keep what they were shown.
    predicted = predictions(app, project)
    with app.app_context():
        scored = set(db.session.scalars(select(Item.data["text"].as_string()).join(ItemScore, ItemScore.item_id == Item.id)
                                        .where(Item.project_id == project)))
        newest = assist.load_model(models(app, project)[-1])
    open_texts = [t for t in predicted if t not in scored]
    assert len(open_texts) == 80 - 35 and len(predicted) == 80 - 25
    for text, (labels, score) in zip(open_texts, newest.predict(embedding.encoder().encode(open_texts))):
        label, stored, version = predicted[text]
        assert label == labels[0] and abs(stored - score) <= assist.SCORE_TOLERANCE
        assert version == "builtin-v2" or abs(stored - score) <= assist.SCORE_TOLERANCE
    assert sorted(v for t, (_, _, v) in predicted.items() if t in scored) == ["builtin-v1"] * 10
    assert [v for t, (_, _, v) in predicted.items() if t not in scored].count("builtin-v2") > 20


def test_train_now_through_the_api_and_models_listed(app, client, assisted, labelers, run_jobs):
    project = assisted.live(items=60, per_task=5, overlap=2, retrain_growth=5.0)
    label_micro_tasks(project, labelers(2), 5, run_jobs)
    headers = assisted.requester.headers
    assert client.post(f"/api/projects/{project}/assist/train", headers=headers).status_code == 202
    run_jobs()
    listed = client.get(f"/api/projects/{project}/assist", headers=headers).get_json()
    assert [(m["version"], m["training_size"], m["kind"]) for m in listed["models"]] == [(2, 25, "builtin"),
                                                                                       (1, 25, "builtin")]
    assert listed["assist"] == "builtin" and listed["error"] is None


def test_builtin_assist_refused_for_configs_it_cannot_learn(client, teams):
    from tests.conftest import IMAGE_CONFIG

    requester = teams.requester()
    response = client.post("/api/projects/", headers=requester.headers, json={
        "title": "Boxes", "label_config": IMAGE_CONFIG, "assist": "builtin"})
    assert response.status_code == 400
    assert response.get_json()["validation_errors"] == {
        "assist": ["assist: the built-in learner needs a Choices control over a Text object in the label config"]}


@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_the_unassisted_share_of_assignments_shows_no_predictions(app, assisted, labelers, run_jobs, share):
    project = assisted.live(items=120, per_task=2, overlap=1, gold=10, gold_share=0.5, unassisted_share=share)
    with app.app_context():
        assist.train_builtin(project)
    shown = []
    for worker in labelers(12):
        for _ in range(5):
            work = worker.next(project).get_json()
            assert work["assist"]["shown"] == assist.assisted(work["assignment_id"], share)
            for item in work["items"]:
                if item["data"]["text"].startswith("gold"):
                    assert "predictions" not in item or item["predictions"] == []
                else:
                    assert ("predictions" in item) == work["assist"]["shown"]
            shown.append(work["assist"]["shown"])
            annotations = [{"item_id": i["id"], "result": choice(truth(i["data"]["text"].removeprefix("gold "))),
                            "seconds": 1.0} for i in work["items"]]
            worker.client.post(f"/api/work/{work['assignment_id']}/submit", headers=worker.headers,
                               json={"annotations": annotations})
    hidden = shown.count(False) / len(shown)
    assert hidden == {0.0: 0.0, 1.0: 1.0}.get(share, hidden)
    if share == 0.3:
        assert 0.1 < hidden < 0.5  # 60 draws of a fixed hash
    with app.app_context():
        flags = {a.id: a.with_predictions for a in db.session.scalars(
            select(Assignment).where(Assignment.project_id == project))}
        gold_prefilled = db.session.scalar(select(Annotation.id).join(Item, Item.id == Annotation.item_id)
                                           .where(Item.project_id == project, Item.is_gold.is_(True),
                                                  Annotation.had_prediction.is_(True)))
    assert gold_prefilled is None
    assert all(flag == assist.assisted(assignment_id, share) for assignment_id, flag in flags.items())


def test_same_result_ignores_ids_scores_and_order():
    a = [{"id": "x1", "from_name": "s", "to_name": "t", "type": "choices", "value": {"choices": ["A"]}, "score": 0.4},
         {"id": "x2", "from_name": "n", "to_name": "t", "type": "number", "value": {"number": 3}}]
    b = [dict(a[1], id="other"), dict(a[0], id="y", origin="prediction")]
    assert assist.same_result(a, b)
    assert not assist.same_result(a, [a[0]])
    assert not assist.same_result(a, [a[1], dict(a[0], value={"choices": ["B"]})])


def test_same_result_reads_a_box_label_studio_sent_back_as_the_box_it_was_shown():
    """Label Studio converts a box to pixels and back: float noise, and 20 for 20.0, are the same box;
    a box moved by a hundredth of a percent is not."""
    shown = [{"from_name": "label", "to_name": "image", "type": "rectanglelabels",
              "value": {"x": 10.5, "y": 20, "width": 30, "height": 25.25, "rotation": 0, "rectanglelabels": ["Car"]}}]
    back = [dict(shown[0], id="b1", origin="prediction", original_width=640, original_height=400,
                 value=dict(shown[0]["value"], y=19.999999999999996, width=29.999999999999996, rotation=0.0))]
    assert assist.same_result(shown, back)
    moved = [dict(shown[0], value=dict(shown[0]["value"], x=10.51))]
    assert not assist.same_result(shown, moved)
    relabeled = [dict(shown[0], value=dict(shown[0]["value"], rectanglelabels=["Person"]))]
    assert not assist.same_result(shown, relabeled)


def test_same_result_ignores_what_label_studio_fills_in_but_not_what_the_annotator_changes():
    """A suggestion may leave out a box's rotation or a span's text; Label Studio sends them back."""
    box = [{"from_name": "label", "to_name": "image", "type": "rectanglelabels",
            "value": {"x": 10.5, "y": 20, "width": 30, "height": 25.25, "rectanglelabels": ["Car"]}}]
    assert assist.same_result(box, [dict(box[0], value=dict(box[0]["value"], rotation=0))])
    assert not assist.same_result(box, [dict(box[0], value=dict(box[0]["value"], rotation=15))])
    span = [{"from_name": "label", "to_name": "text", "type": "labels",
             "value": {"start": 0, "end": 12, "labels": ["PER"]}}]
    assert assist.same_result(span, [dict(span[0], value=dict(span[0]["value"], text="Ada Lovelace"))])
    assert not assist.same_result(span, [dict(span[0], value={"start": 0, "end": 3, "text": "Ada", "labels": ["PER"]})])
    # A transcription's text is what the annotator wrote, not something filled in.
    written = [{"from_name": "transcript", "to_name": "audio", "type": "textarea", "value": {"text": ["hello"]}}]
    assert not assist.same_result(written, [dict(written[0], value={"text": ["hello there"]})])


def test_a_retrain_writes_only_the_predictions_that_changed(app, assisted, labelers, run_jobs):
    project = assisted.live(items=60, per_task=5, overlap=2, retrain_growth=5.0)
    label_micro_tasks(project, labelers(2), 5, run_jobs)  # v1 on 25 labels

    def rows() -> dict[int, tuple]:
        found = {p.item_id: (p.id, p.model_version, p.score, p.result[0]["value"]["choices"][0])
                 for p in db.session.scalars(select(Prediction).join(Item, Item.id == Prediction.item_id)
                                             .where(Item.project_id == project))}
        db.session.rollback()
        return found

    with app.app_context():
        before = rows()
        assert len(before) == 35
        # The same labels again: the same model, so not a row is written and v1's predictions stand.
        summary = assist.train_builtin(project, force=True)
        assert (summary["version"], summary["predicted"], summary["written"]) == (2, 35, 0)
        assert rows() == before
        # One prediction changes its label, another its score by less than the tolerance: one row is
        # updated in place, and no row is added.
        model_id = db.session.scalar(select(AssistModel.id).where(AssistModel.project_id == project,
                                                                  AssistModel.version == 2))
        db.session.rollback()
        changed, nudged = list(before)[:2]
        new = [{"item_id": i, "assist_model_id": model_id, "model_version": "builtin-v2",
                "score": s + (assist.SCORE_TOLERANCE / 2 if i == nudged else 0.0),
                "result": choice("Neutral" if i == changed else label)} for i, (_, _, s, label) in before.items()]
        assert assist.store_predictions(project, new, score_tolerance=assist.SCORE_TOLERANCE) == 1
        after = rows()
        assert after[changed] == (before[changed][0], "builtin-v2", before[changed][2], "Neutral")
        assert {i: r for i, r in after.items() if i != changed} == {i: r for i, r in before.items() if i != changed}


def test_each_item_is_encoded_once_and_kept_for_every_retrain(app, assisted, labelers, run_jobs):
    project = assisted.live(items=40, per_task=5, overlap=2, gold=5, retrain_growth=0.1)
    with app.app_context():
        stored = dict(db.session.execute(select(ItemEmbedding.item_id, ItemEmbedding.vector)
                                         .join(Item, Item.id == ItemEmbedding.item_id)
                                         .where(Item.project_id == project)).all())
        db.session.rollback()
    # Publishing encoded every item, gold included (gold answers teach).
    assert len(stored) == 45 and {len(v) for v in stored.values()} == {2 * embedding.DIMENSIONS}
    workers = labelers(2)
    label_micro_tasks(project, workers, 4, run_jobs)  # 20 consensus labels and 5 gold answers: v1
    label_micro_tasks(project, workers, 1, run_jobs)  # 30: v2
    assert len(models(app, project)) == 2
    with app.app_context():
        again = dict(db.session.execute(select(ItemEmbedding.item_id, ItemEmbedding.vector)
                                        .join(Item, Item.id == ItemEmbedding.item_id)
                                        .where(Item.project_id == project)).all())
        assert assist.refresh(project)["encoded"] == 0
    assert again == stored


def test_a_model_of_the_former_learner_is_replaced_not_used(app, assisted, labelers, run_jobs):
    import joblib

    project = assisted.live(items=40, per_task=5, overlap=2, retrain_growth=5.0)
    label_micro_tasks(project, labelers(2), 5, run_jobs)
    [model] = models(app, project)
    # What the TF-IDF learner stored: a pipeline over texts, without the `features` this one reads.
    path = app.config["MODEL_ROOT"] + "/" + model.artifact_path
    old = joblib.load(path)
    joblib.dump({"model": old["model"], "task": old["task"]}, path)
    with app.app_context():
        with pytest.raises(learner.OutdatedModel, match="train a new version"):
            assist.load_model(model)
        summary = assist.refresh(project)
    assert summary["trained"] is True and summary["version"] == 2
