"""The labeling page as served: Label Studio from our own static files, the
work API's addresses, and each project's set-up (label config, instructions
rendered safe, hotkeys) for annotators who may label it."""
from __future__ import annotations

import json
import re

import pytest

from annotate.labelconfig import TEMPLATES
from tests.work.conftest import Annotator

LS_JS = "/static/node_modules/@heartexlabs/label-studio/build/static/js/main.js"
LS_CSS = "/static/node_modules/@heartexlabs/label-studio/build/static/css/main.css"


@pytest.fixture
def project(client, teams, run_jobs):
    """A live text project with the ready config (hotkeys 1-3) and instructions."""
    requester = teams.requester()
    response = client.post("/api/projects/", headers=requester.headers, json={
        "title": "Reviews", "label_config": TEMPLATES["text_classification"].xml, "overlap": 2,
        "items_per_micro_task": 2, "pay_per_micro_task": 150, "estimated_seconds_per_micro_task": 60,
        "instructions": "Pick the **tone**.\n\n<script>alert(1)</script> [bad](javascript:alert(1))"})
    project_id = response.get_json()["id"]
    client.post(f"/api/projects/{project_id}/import", headers=requester.headers,
                json=[{"text": f"review {i}"} for i in range(4)])
    assert client.post(f"/api/projects/{project_id}/publish", headers=requester.headers).status_code == 200
    run_jobs()
    return {"id": project_id, "requester": requester}


def settings_of(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="workbench-settings">(.*?)</script>', html, re.S)
    assert found, "the page carries no settings"
    return json.loads(found.group(1))


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/work?project=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/work?project%3D1"
    response = client.get("/work/projects/1", headers={"Accept": "application/json"})
    assert response.status_code == 401


def test_the_page_loads_label_studio_from_our_static_files(client, auth, people):
    auth.login(people.make())
    html = client.get("/work").get_data(as_text=True)
    assert re.search(rf'<script src="{re.escape(LS_JS)}\?v=[0-9a-f]{{16}}" defer></script>', html)  # versioned
    # Label Studio's CSS first, then ours again: its global resets must not win.
    assert html.index(LS_CSS) < html.rindex("/static/css/app.css") < html.index("/static/css/workbench.css")
    assert not re.search(r'<(?:script|link)[^>]+(?:src|href)="(?:https?:)?//', html)  # nothing from a CDN
    assert re.search(r'<meta name="csrf-token" content="[^"]+">', html)
    settings = settings_of(html)
    assert settings["project"] is None and settings["setup"] is None
    assert settings["urls"]["next"] == "/api/work/next"
    assert settings["urls"]["submit"] == "/api/work/{id}/submit"
    assert settings["urls"]["heartbeat"] == "/api/work/{id}/heartbeat"
    assert settings["urls"]["skip"] == "/api/work/{id}/skip"
    assert settings["idle_seconds"] == 60


def test_static_label_studio_files_are_served(client):
    for path in (LS_JS, LS_CSS):
        response = client.get(path)
        assert response.status_code == 200 and len(response.data) > 100_000
        response.close()


def test_a_project_page_carries_its_config_safe_instructions_and_hotkeys(client, auth, people, project):
    auth.login(people.make())
    html = client.get(f"/work?project={project['id']}").get_data(as_text=True)
    settings = settings_of(html)
    setup = settings["setup"]
    assert settings["project"] == project["id"]
    assert setup["label_config"] == TEMPLATES["text_classification"].xml
    assert setup["config_kind"] == "text_classification"
    assert setup["pay_text"] == "1.50 USD"
    assert [(h["key"], h["label"]) for h in setup["hotkeys"]] == [("1", "Positive"), ("2", "Negative"),
                                                                 ("3", "Neutral")]
    assert "<strong>tone</strong>" in html
    assert "<script>alert(1)</script>" not in html and 'href="javascript:' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; [bad](javascript:alert(1))" in html  # shown as text
    # The same set-up as JSON, for a project the page meets on its way.
    response = client.get(f"/work/projects/{project['id']}")
    assert response.status_code == 200
    assert response.get_json()["instructions_html"].startswith("<p>Pick the <strong>tone</strong>.</p>")


def test_a_bad_or_unknown_project_is_said_in_words(client, auth, people, project):
    auth.login(people.make())
    response = client.get("/work?project=abc")
    assert response.status_code == 400
    assert "project must be a project id, not &#39;abc&#39;" in response.get_data(as_text=True)
    response = client.get("/work?project=999")
    assert response.status_code == 404
    assert "no project 999" in response.get_data(as_text=True)
    response = client.get("/work/projects/999", headers={"Accept": "application/json"})
    assert response.status_code == 404 and response.get_json()["detail"] == "no project 999"


def test_a_draft_project_is_hidden_but_one_you_worked_on_stays_visible(client, auth, people, project, teams, app):
    requester = project["requester"]
    draft = client.post("/api/projects/", headers=requester.headers, json={
        "title": "Not yet", "label_config": TEMPLATES["text_classification"].xml}).get_json()["id"]
    worker = people.make()
    annotator = Annotator(app, worker)
    work = annotator.next(project["id"]).get_json()
    body = {"annotations": [{"item_id": item["id"], "result": TEMPLATES["text_classification"].sample_result}
                            for item in work["items"]]}
    assert annotator.client.post(f"/api/work/{work['assignment_id']}/submit", headers=annotator.headers,
                                 json=body).status_code == 200
    assert client.post(f"/api/projects/{project['id']}/pause", headers=requester.headers).status_code == 200

    auth.login(worker)
    assert client.get(f"/work/projects/{draft}", headers={"Accept": "application/json"}).status_code == 404
    assert client.get(f"/work/projects/{project['id']}").status_code == 200  # paused, but she worked on it
    auth.logout()
    auth.login(people.make())
    assert client.get(f"/work/projects/{project['id']}", headers={"Accept": "application/json"}).status_code == 404


def test_the_nav_and_start_page_point_annotators_to_their_work(client, auth, people):
    auth.login(people.make())
    html = client.get("/").get_data(as_text=True)
    assert '<a href="/dashboard">Dashboard</a>' in html
    assert '<a href="/work">Label</a>' in html
    assert "your dashboard</a>" in html


def test_the_page_uses_the_session_and_csrf_like_the_api_expects(client, auth, people, project, app):
    """What the page's script does, done by hand: the session cookie and the
    X-CSRFToken header from the page's meta tag."""
    auth.login(people.make())
    app.config["WTF_CSRF_ENABLED"] = True
    html = client.get(f"/work?project={project['id']}").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)
    assert client.post("/api/work/next").status_code == 400  # no token: refused
    work = client.post(f"/api/work/next?project={project['id']}", headers={"X-CSRFToken": token})
    assert work.status_code == 200
    assignment = work.get_json()
    body = {"annotations": [{"item_id": item["id"], "result": TEMPLATES["text_classification"].sample_result,
                             "seconds": 1.5,
                             "had_prediction": False, "accepted_prediction": False}
                            for item in assignment["items"]]}
    submitted = client.post(f"/api/work/{assignment['assignment_id']}/submit", json=body,
                            headers={"X-CSRFToken": token})
    assert submitted.status_code == 200 and submitted.get_json()["status"] == "submitted"
