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


# --- the deadline -----------------------------------------------------------------------


def test_a_deadline_is_stored_in_utc_and_read_back_as_iso_8601(client, teams):
    import datetime as dt

    requester = teams.requester()
    soon = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    in_paris = soon.astimezone(dt.timezone(dt.timedelta(hours=1))).isoformat()  # "...+01:00"
    created = client.post("/api/projects/", headers=requester.headers,
                          json={"title": "Due", "label_config": TEXT_CONFIG, "deadline": in_paris})
    assert created.status_code == 201, created.get_json()
    path = f"/api/projects/{created.get_json()['id']}"
    assert client.get(path, headers=requester.headers).get_json()["deadline"] == soon.isoformat()
    later = (soon + dt.timedelta(days=1)).replace(tzinfo=None).isoformat()  # no offset: read as UTC
    assert client.patch(path, headers=requester.headers, json={"deadline": later}).get_json()["deadline"] == (
        (soon + dt.timedelta(days=1)).isoformat())
    assert client.patch(path, headers=requester.headers, json={"deadline": None}).get_json()["deadline"] is None
    assert client.post("/api/projects/", headers=requester.headers,
                       json={"title": "None", "label_config": TEXT_CONFIG}).get_json()["deadline"] is None


@pytest.mark.parametrize("value,words", [
    ("next friday", "deadline must be a date and time such as 2026-12-01T18:00:00Z (UTC), not 'next friday'"),
    ("2020-01-01T00:00:00Z", "deadline must be in the future, not 2020-01-01T00:00:00+00:00"),
    (12, "deadline must be text"),
])
def test_a_deadline_in_the_past_or_unreadable_is_refused_by_name(client, teams, value, words):
    requester = teams.requester()
    response = client.post("/api/projects/", headers=requester.headers,
                           json={"title": "x", "label_config": TEXT_CONFIG, "deadline": value})
    assert response.status_code == 400
    assert words in response.get_json()["detail"]
    assert "deadline" in response.get_json()["validation_errors"]
    assert client.get("/api/projects/", headers=requester.headers).get_json()["count"] == 0


def test_a_passed_deadline_does_not_block_other_edits_but_cannot_be_set_again(client, teams, app):
    import datetime as dt

    from annotate.extensions import db
    from annotate.models import Project

    requester = teams.requester()
    body = client.post("/api/projects/", headers=requester.headers, json={
        "title": "Late", "label_config": TEXT_CONFIG,
        "deadline": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()}).get_json()
    past = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with app.app_context():  # the deadline passes
        db.session.get(Project, body["id"]).deadline = past
        db.session.commit()
    path = f"/api/projects/{body['id']}"
    # The web form sends every field back, the passed deadline with them.
    kept = client.patch(path, headers=requester.headers, json={"title": "Late again", "deadline": past.isoformat()})
    assert kept.status_code == 200 and kept.get_json()["deadline"] == past.isoformat()
    moved = client.patch(path, headers=requester.headers, json={"deadline": "2026-01-02T00:00:00Z"})
    assert moved.status_code == 400 and "deadline must be in the future" in moved.get_json()["detail"]


def test_the_project_form_sets_the_deadline_and_says_it_is_utc(client, auth, teams):
    import datetime as dt
    import re

    requester = teams.requester("Shop")
    auth.login(requester.person)
    page = client.get("/projects/new").get_data(as_text=True)
    field = re.search(r'<label for="deadline">.*?</small>', page, re.S).group(0)
    assert 'name="deadline"' in field and "UTC" in field
    due = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(second=0, microsecond=0)
    response = client.post("/projects/new", data={
        "title": "Due soon", "label_config": TEXT_CONFIG, "overlap": "3", "max_overlap": "3",
        "items_per_micro_task": "10", "pay_per_micro_task": "150", "currency": "EUR", "lease_seconds": "900",
        "deadline": due.strftime("%Y-%m-%d %H:%M")})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
    project = client.get("/api/projects/", headers=requester.headers).get_json()["results"][0]
    assert project["deadline"] == due.isoformat()
    edit = client.get(f"/projects/{project['id']}/edit").get_data(as_text=True)
    assert re.search(r'name="deadline" id="deadline" value="%s' % re.escape(due.strftime("%Y-%m-%d %H:%M")), edit)
    refused = client.post("/projects/new", data={"title": "Late", "label_config": TEXT_CONFIG,
                                                 "deadline": "2001-01-01 00:00"})
    assert refused.status_code == 400
    assert "deadline must be in the future" in refused.get_data(as_text=True)
