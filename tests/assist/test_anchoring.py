"""The anchoring panel: a model that makes workers faster but worse is caught."""
from __future__ import annotations

from sqlalchemy import select

from annotate.extensions import db
from annotate.models import AssistModel, Item
from annotate.services import assist
from tests.assist.conftest import truth
from tests.conftest import choice


def wrong_model(app, project: int) -> None:
    """A model that calls everything Negative, as a bad retrain would."""
    with app.app_context():
        with db.transaction() as session:
            model = AssistModel(project_id=project, kind="builtin", version=1, training_size=0,
                                heldout_accuracy=0.5, details={"heldout_size": 10})
            session.add(model)
            session.flush()
            model_id = model.id
            ids = list(session.scalars(select(Item.id).where(Item.project_id == project, Item.is_gold.is_(False))))
        assist.store_predictions(project, [{"item_id": i, "assist_model_id": model_id, "result": choice("Negative"),
                                            "score": 0.6, "model_version": "builtin-v1"} for i in ids])


def test_faster_but_worse_is_shown_side_by_side(app, client, assisted, labelers, run_jobs):
    project = assisted.live(items=48, per_task=4, overlap=2, gold=6, gold_share=0.25, unassisted_share=0.5,
                            retrain_growth=10.0)
    wrong_model(app, project)
    expected = {True: {"seconds": [], "prefilled": 0}, False: {"seconds": [], "prefilled": 0}}
    for worker in labelers(8):
        while True:
            response = worker.next(project)
            if response.status_code != 200:
                break
            work = response.get_json()
            shown = work["assist"]["shown"]
            annotations = []
            for item in work["items"]:
                text = item["data"]["text"]
                if shown:  # anchored: takes the suggestion, and rushes the gold items too
                    result = item["predictions"][0]["result"] if item.get("predictions") else choice("Negative")
                    seconds = 2.0
                else:
                    result, seconds = choice(truth(text.removeprefix("gold "))), 5.0
                if not text.startswith("gold"):
                    expected[shown]["seconds"].append(seconds)
                    expected[shown]["prefilled"] += int(shown)
                annotations.append({"item_id": item["id"], "result": result, "seconds": seconds})
            assert worker.client.post(f"/api/work/{work['assignment_id']}/submit", headers=worker.headers,
                                      json={"annotations": annotations}).status_code == 200
            if len(expected[True]["seconds"]) + len(expected[False]["seconds"]) >= 60:
                break
    run_jobs()
    with app.app_context():
        report = assist.anchoring_report(assisted.requester.person.id, project)
    with_, without = report["with"], report["without"]
    assert with_["assignments"] > 0 and without["assignments"] > 0
    assert (with_["median_seconds"], without["median_seconds"]) == (2.0, 5.0)
    assert with_["items"] == len(expected[True]["seconds"]) and without["items"] == len(expected[False]["seconds"])
    assert (with_["prefilled"], with_["accepted"], with_["accepted_share"]) == (
        expected[True]["prefilled"], expected[True]["prefilled"], 1.0)
    assert without["prefilled"] == 0
    assert with_["agreement"] < without["agreement"]
    assert without["gold_accuracy"] == 1.0 and with_["gold_accuracy"] < 1.0
    assert report["verdict"].startswith("The model makes workers faster but worse: ")

    page = client.get(f"/projects/{project}", headers=assisted.requester.headers)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Anchoring: with and without pre-annotations" in html and report["verdict"] in html
    assert "builtin-v1" in html and "50.0% <span class=\"muted\">of 10</span>" in html
    assert f"({with_['accepted']} of {with_['prefilled']})" in html
