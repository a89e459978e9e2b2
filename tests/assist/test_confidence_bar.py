"""A project may hide the pre-annotations its model is unsure of."""
from __future__ import annotations

from sqlalchemy import select

from annotate.extensions import db
from annotate.models import AssistModel, Assignment, Annotation, Item
from annotate.services import assist
from tests.assist.conftest import truth
from tests.conftest import choice


def predict(app, project: int, scores: list[float]) -> dict[int, float]:
    """Predict the truth for the project's items, with the given scores in item order."""
    with app.app_context():
        with db.transaction() as session:
            model = AssistModel(project_id=project, kind="builtin", version=1, training_size=0,
                                heldout_accuracy=0.5, details={"heldout_size": 10})
            session.add(model)
            session.flush()
            model_id = model.id
            items = session.execute(select(Item.id, Item.data).where(Item.project_id == project)
                                    .order_by(Item.id)).all()
        scored = {item_id: scores[n % len(scores)] for n, (item_id, _data) in enumerate(items)}
        assist.store_predictions(project, [
            {"item_id": item_id, "assist_model_id": model_id, "result": choice(truth(data["text"])),
             "score": scored[item_id], "model_version": "builtin-v1"} for item_id, data in items])
    return scored


def test_predictions_below_the_bar_are_not_shown_nor_counted_as_accepted(app, client, assisted, labelers):
    project = assisted.live(items=8, per_task=4, overlap=1, retrain_growth=10.0, prediction_min_score=0.7)
    assert client.get(f"/api/projects/{project}/assist",
                      headers=assisted.requester.headers).get_json()["prediction_min_score"] == 0.7
    scores = predict(app, project, [0.55, 0.9])
    worker = labelers(1)[0]
    work = worker.next(project).get_json()
    shown = {item["id"]: item["predictions"] for item in work["items"]}
    for item_id, predictions in shown.items():
        if scores[item_id] >= 0.7:
            assert [p["score"] for p in predictions] == [0.9]
        else:
            assert predictions == []  # starts empty
    # The annotator answers every item with the model's (right) answer.
    annotations = [{"item_id": item["id"], "result": choice(truth(item["data"]["text"])), "seconds": 2.0}
                   for item in work["items"]]
    assert worker.client.post(f"/api/work/{work['assignment_id']}/submit", headers=worker.headers,
                              json={"annotations": annotations}).status_code == 200
    with app.app_context():
        marks = dict(db.session.execute(
            select(Annotation.item_id, Annotation.accepted_prediction)
            .join(Assignment, Assignment.id == Annotation.assignment_id)
            .where(Assignment.id == work["assignment_id"])).all())
    # Only what was shown can have been accepted.
    assert marks == {item_id: scores[item_id] >= 0.7 for item_id in shown}


def test_the_bar_is_a_setting_with_bounds(client, assisted):
    project = assisted.live(items=4, per_task=4, overlap=1)
    response = client.patch(f"/api/projects/{project}/", headers=assisted.requester.headers,
                            json={"prediction_min_score": 1.5})
    assert response.status_code == 400
    assert "prediction_min_score" in str(response.get_json())
    assert client.patch(f"/api/projects/{project}/", headers=assisted.requester.headers,
                        json={"prediction_min_score": 0.6}).get_json()["prediction_min_score"] == 0.6
