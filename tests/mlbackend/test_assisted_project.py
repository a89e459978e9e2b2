"""A project assisted by a real label-studio-ml 1.0.9 backend, end to end: the
operators' allow-list, predictions at publish, pre-annotations in the work API,
consensus sent back as ANNOTATION_CREATED, START_TRAINING on "train now", and
a backend that is down or answers the wrong number of results."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from annotate.extensions import db
from annotate.models import AssistModel, Item, Prediction, Project
from tests.conftest import TEXT_CONFIG
from tests.mlbackend.conftest import free_port
from tests.work.conftest import Annotator

TEXTS = ["good shoes", "bad laces", "great fit", "poor stitching", "good value", "awful smell"]


@pytest.fixture
def operator(client, people):
    person = people.make("operator")
    from annotate.services import accounts

    with client.application.app_context():
        key = accounts.create_token(person.id, "ops").key
    return {"Authorization": f"Token {key}"}


def allow(client, operator, url: str) -> dict:
    response = client.post("/api/ml-backends", headers=operator, json={"name": "keywords", "url": url + "/"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def backend_project(client, requester, url: str, texts=TEXTS, **settings) -> int:
    response = client.post("/api/projects/", headers=requester.headers, json={
        "title": "Shoes", "label_config": TEXT_CONFIG, "overlap": 2, "items_per_micro_task": 3,
        "pay_per_micro_task": 30, "estimated_seconds_per_micro_task": 30, "assist": "backend",
        "ml_backend_url": url, "show_predictions": True, "unassisted_share": 0.0, **settings})
    assert response.status_code == 201, response.get_json()
    project = response.get_json()["id"]
    assert client.post(f"/api/projects/{project}/import", headers=requester.headers,
                       json=[{"text": t} for t in texts]).status_code == 201
    assert client.post(f"/api/projects/{project}/publish", headers=requester.headers).status_code == 200
    return project


def stored(app, project: int) -> dict[str, tuple[str, float, str]]:
    with app.app_context():
        rows = db.session.execute(select(Item.data, Prediction.result, Prediction.score, Prediction.model_version)
                                  .join(Prediction, Prediction.item_id == Item.id)
                                  .where(Item.project_id == project)).all()
    return {d["text"]: (r[0]["value"]["choices"][0], s, v) for d, r, s, v in rows}


def wait_for(check, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    return check()


def test_only_urls_on_the_operators_list_can_be_used(client, teams, operator, people):
    requester = teams.requester()
    response = client.post("/api/projects/", headers=requester.headers, json={
        "title": "x", "label_config": TEXT_CONFIG, "assist": "backend", "ml_backend_url": "http://169.254.169.254"})
    assert response.status_code == 400
    assert "not on the operators' list" in response.get_json()["validation_errors"]["ml_backend_url"][0]
    # Only operators change the list; a bad URL is refused in words.
    assert client.post("/api/ml-backends", headers=requester.headers,
                       json={"name": "x", "url": "http://a.example"}).status_code == 403
    refused = client.post("/api/ml-backends", headers=operator, json={"name": "x", "url": "ftp://a.example"})
    assert refused.status_code == 400 and refused.get_json()["validation_errors"].keys() == {"url"}


def test_backend_predictions_reach_annotators_and_consensus_reaches_the_backend(
        app, client, teams, operator, people, start_backend, run_jobs):
    backend = start_backend()
    listed = allow(client, operator, backend.url)
    assert listed["url"] == backend.url
    checked = client.post(f"/api/ml-backends/{listed['id']}/check", headers=operator).get_json()
    assert checked["ok"] is True and checked["error"] is None
    requester = teams.requester()
    project = backend_project(client, requester, backend.url)
    run_jobs()  # the split, then the backend's predictions for the new items

    predicted = stored(app, project)
    assert {t: label for t, (label, _, _) in predicted.items()} == {
        "good shoes": "Positive", "bad laces": "Negative", "great fit": "Positive",
        "poor stitching": "Negative", "good value": "Positive", "awful smell": "Negative"}
    assert {v for _, _, v in predicted.values()} == {"keywords-initial"}
    [setup] = backend.received("setup")
    assert setup["label_config"] == TEXT_CONFIG

    # Annotators start from the backend's answers; two of them make a consensus.
    first, second = Annotator(app, people.make()), Annotator(app, people.make())
    for worker in (first, second):
        work = worker.next(project).get_json()
        assert work["assist"] == {"source": "backend", "shown": True, "unavailable": None}
        assert all(item["predictions"][0]["model_version"] == "keywords-initial" for item in work["items"])
        annotations = [{"item_id": i["id"], "result": i["predictions"][0]["result"], "seconds": 1.0}
                       for i in work["items"]]
        assert worker.client.post(f"/api/work/{work['assignment_id']}/submit", headers=worker.headers,
                                  json={"annotations": annotations}).status_code == 200
    run_jobs()  # scoring, then ANNOTATION_CREATED per consensus label
    created = wait_for(lambda: [r for r in backend.received("fit") if r["event"] == "ANNOTATION_CREATED"])
    assert len(created) == 3
    assert {r["task"]["data"]["text"] for r in created} == set(TEXTS[:3])
    assert all(r["annotation"]["result"][0]["value"]["choices"] in (["Positive"], ["Negative"]) for r in created)
    assert all(r["project"]["id"] == project for r in created)

    # "Train now" sends START_TRAINING.
    assert client.post(f"/api/projects/{project}/assist/train", headers=requester.headers).status_code == 202
    run_jobs()
    assert wait_for(lambda: [r for r in backend.received("fit") if r["event"] == "START_TRAINING"])
    state = client.get(f"/api/projects/{project}/assist", headers=requester.headers).get_json()
    assert state["error"] is None and state["models"][0]["kind"] == "backend"


def test_a_backend_that_is_down_never_blocks_annotators(app, client, teams, operator, people, run_jobs):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    allow(client, operator, url)
    requester = teams.requester()
    project = backend_project(client, requester, url)
    run_jobs()
    with app.app_context():
        error = db.session.get(Project, project).assist_error
    assert error and url in error
    worker = Annotator(app, people.make())
    response = worker.next(project)
    assert response.status_code == 200
    work = response.get_json()
    assert all(item["predictions"] == [] for item in work["items"])
    assert work["assist"]["unavailable"].startswith("The model is unavailable (")
    assert "label these items without pre-annotations" in work["assist"]["unavailable"]


def test_a_backend_answering_the_wrong_number_of_results_is_refused(
        app, client, teams, operator, people, start_backend, run_jobs, caplog):
    backend = start_backend()
    allow(client, operator, backend.url)
    requester = teams.requester()
    project = backend_project(client, requester, backend.url, texts=["good one", "__wrong_count__", "bad one"])
    run_jobs()
    assert stored(app, project) == {}
    with app.app_context():
        error = db.session.get(Project, project).assist_error
        assert db.session.scalar(select(AssistModel.id).where(AssistModel.project_id == project)) is not None
    assert "answered POST /predict with 4 predictions for 3 tasks" in error
    assert any("4 predictions for 3 tasks" in r.getMessage() for r in caplog.records)
