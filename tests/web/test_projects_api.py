"""Requesters script projects through the API, as they do Label Studio's."""
from __future__ import annotations

import httpx
import pytest
from label_studio_sdk import LabelStudio

from tests.conftest import IMAGE_CONFIG, TEXT_CONFIG, choice


def sdk(app, key: str) -> LabelStudio:
    return LabelStudio(base_url="http://testserver", api_key=key,
                       httpx_client=httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver"))


def test_label_studio_sdk_creates_a_project_imports_and_lists_tasks(app, teams):
    requester = teams.requester()
    ls = sdk(app, requester.key)
    project = ls.projects.create(title="Reviews", label_config=TEXT_CONFIG)
    tasks = [{"text": f"review number {i}"} for i in range(230)]
    tasks[0] = {"data": {"text": "wrapped in data"}, "predictions": [{"result": choice("Positive"), "score": 0.9,
                                                                     "model_version": "v1"}]}
    imported = ls.projects.import_tasks(id=project.id, request=tasks, return_task_ids=True)
    assert imported.task_count == 230 and imported.prediction_count == 1
    assert len(imported.task_ids) == 230
    listed = list(ls.tasks.list(project=project.id))  # pages of 100, then the 404 past the end
    assert [t.data["text"] for t in listed] == ["wrapped in data"] + [f"review number {i}" for i in range(1, 230)]
    assert listed[0].predictions[0].result == choice("Positive")
    assert ls.projects.get(id=project.id).title == "Reviews"


def test_create_edit_and_delete_with_label_studio_field_names(client, teams):
    requester = teams.requester()
    created = client.post("/api/projects/", headers=requester.headers, json={
        "title": "Boxes", "label_config": IMAGE_CONFIG, "maximum_annotations": 5, "expert_instruction": "Draw **tight** boxes",
        "pay_per_micro_task": 150, "currency": "eur", "items_per_micro_task": 20})
    assert created.status_code == 201
    body = created.get_json()
    assert (body["maximum_annotations"], body["overlap"], body["max_overlap"]) == (5, 5, 5)
    assert (body["currency"], body["pay_per_micro_task"], body["config_kind"]) == ("EUR", 150, "bounding_boxes")
    assert body["expert_instruction"] == "Draw **tight** boxes" and body["status"] == "draft"
    path = f"/api/projects/{body['id']}/"
    patched = client.patch(path, headers=requester.headers, json={"title": "Cars", "lease_seconds": 600})
    assert patched.status_code == 200 and patched.get_json()["title"] == "Cars"
    assert client.get(path, headers=requester.headers).get_json()["lease_seconds"] == 600
    assert client.delete(path, headers=requester.headers).status_code == 204
    assert client.get(path, headers=requester.headers).status_code == 404


@pytest.mark.parametrize("config,words", [
    ("<View><Text name='t' value='$text'/><Bogus name='b' toName='t'/></View>", "<Bogus>"),
    ("<View><Text name='t' value='$text'/><Choices name='c' toName='nothing'><Choice value='a'/></Choices></View>",
     "nothing"),
    ("<View><Text name='t' value='$text'>", "label_config"),
])
def test_a_bad_label_config_is_refused_with_the_tag_and_reason(client, teams, config, words):
    requester = teams.requester()
    response = client.post("/api/projects/", headers=requester.headers, json={"title": "x", "label_config": config})
    assert response.status_code == 400
    body = response.get_json()
    assert words in body["detail"] and "label_config" in body["validation_errors"]


@pytest.mark.parametrize("field,value,words", [
    ("pay_per_micro_task", 12.5, "pay_per_micro_task must be a whole number"),
    ("pay_per_micro_task", -1, "pay_per_micro_task must be at least 0"),
    ("overlap", 0, "overlap must be at least 1"),
    ("currency", "dollars", "currency must be a three-letter ISO 4217 code"),
    ("gold_share", 0.9, "gold_share must be at most 0.5"),
    ("lease_seconds", "soon", "lease_seconds must be a whole number"),
])
def test_settings_out_of_bounds_are_refused_by_name(client, teams, field, value, words):
    requester = teams.requester()
    response = client.post("/api/projects/", headers=requester.headers,
                           json={"title": "x", "label_config": TEXT_CONFIG, field: value})
    assert response.status_code == 400
    assert words in response.get_json()["detail"]
    assert field in response.get_json()["validation_errors"]
    assert client.get("/api/projects/", headers=requester.headers).get_json()["count"] == 0


def test_other_teams_and_annotators_cannot_see_a_project(client, teams, people, auth):
    owner, stranger = teams.requester("Vision"), teams.requester("Speech")
    project_id = client.post("/api/projects/", headers=owner.headers,
                             json={"title": "secret", "label_config": TEXT_CONFIG}).get_json()["id"]
    client.post(f"/api/projects/{project_id}/import", headers=owner.headers, json=[{"text": "a"}])
    for path in (f"/api/projects/{project_id}/", f"/api/tasks/?project={project_id}",
                 f"/api/projects/{project_id}/imports/"):
        response = client.get(path, headers=stranger.headers)
        assert response.status_code == 404 and "secret" not in response.get_data(as_text=True)
    assert client.patch(f"/api/projects/{project_id}/", headers=stranger.headers, json={"title": "mine"}).status_code == 404
    assert client.post(f"/api/projects/{project_id}/import", headers=stranger.headers, json=[{"text": "b"}]).status_code == 404
    assert client.get("/api/projects/", headers=stranger.headers).get_json()["count"] == 0
    auth.login(people.make())
    assert client.get(f"/api/projects/{project_id}/").status_code == 403
    assert client.get(f"/api/tasks/{1}/").status_code == 403


def test_a_bad_json_import_reports_every_row_and_stores_nothing(client, teams):
    requester = teams.requester()
    project_id = client.post("/api/projects/", headers=requester.headers,
                             json={"title": "x", "label_config": TEXT_CONFIG}).get_json()["id"]
    response = client.post(f"/api/projects/{project_id}/import", headers=requester.headers, json=[
        {"text": "fine"},
        {"body": "no text key"},
        {"text": "fine"},
        {"data": {"text": "bad prediction"}, "predictions": [{"result": choice("Angry")}]},
    ])
    assert response.status_code == 400
    body = response.get_json()
    assert body["detail"] == "3 problems found; nothing was stored"
    by_item = {e["item"]: e["message"] for e in body["errors"]}
    assert 'has no "text"' in by_item[2]
    assert "duplicate of item 1" in by_item[3]
    assert "Angry" in by_item[4]
    assert client.get(f"/api/tasks/?project={project_id}", headers=requester.headers).get_json()["total"] == 0
