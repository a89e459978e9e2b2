"""The annotator's calls answer alike with a token (answered in front of Flask,
annotate.web.work_lane) and with the browser session (Flask's views)."""
from __future__ import annotations

import pytest
from sqlalchemy import update

from annotate.extensions import db
from annotate.models import User
from annotate.services import accounts
from tests.conftest import choice


def _without_id(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "id"}  # each error body has a fresh id


@pytest.fixture
def both(app, client, auth, people, projects):
    """One annotator, signed in twice: a browser session (client) and a token (headers)."""
    project = projects.live(items=4, per_task=2, overlap=2)
    person = people.make()
    auth.login(person)
    with app.app_context():
        headers = {"Authorization": f"Token {accounts.create_token(person.id, 'lane').key}"}
    return project, person, headers


def test_next_and_submit_answer_the_same_bytes_both_ways(client, both):
    project, _person, headers = both
    by_session = client.post(f"/api/work/next?project={project}")
    by_token = client.post(f"/api/work/next?project={project}", headers=headers)
    assert by_session.status_code == by_token.status_code == 200
    assert by_session.data == by_token.data  # the same live lease, the same JSON
    lease = by_token.get_json()
    body = {"annotations": [{"item_id": i["id"], "result": choice("Negative"), "seconds": 1.5} for i in lease["items"]]}
    first = client.post(f"/api/work/{lease['assignment_id']}/submit", headers=headers, json=body)
    again = client.post(f"/api/work/{lease['assignment_id']}/submit", json=body)  # a repeat, by the session
    assert first.status_code == again.status_code == 200
    assert first.get_json()["annotations"] == again.get_json()["annotations"]
    assert first.get_json()["status"] == "submitted"


@pytest.mark.parametrize("path, body, status, detail", [
    ("/api/work/next?project=abc", None, 400, "project must be a project id, not 'abc'"),
    ("/api/work/999999/submit", {"annotations": []}, 404, "no assignment 999999"),
    ("/api/work/999999/heartbeat", None, 404, "no assignment 999999"),
    ("/api/work/999999/skip", {"reason": "unclear"}, 404, "no assignment 999999"),
])
def test_errors_have_the_same_status_and_body_both_ways(client, both, path, body, status, detail):
    _project, _person, headers = both
    by_session = client.post(path, json=body)
    by_token = client.post(path, headers=headers, json=body)
    assert by_session.status_code == by_token.status_code == status
    assert _without_id(by_session.get_json()) == _without_id(by_token.get_json())
    assert by_token.get_json()["detail"] == detail


def test_a_body_that_is_not_json_is_refused_with_words_both_ways(client, both):
    project, _person, headers = both
    lease = client.post(f"/api/work/next?project={project}", headers=headers).get_json()
    for extra in ({}, headers):
        answer = client.post(f"/api/work/{lease['assignment_id']}/submit", headers=extra,
                             data=b'{"annotations": [', content_type="application/json")
        assert answer.status_code == 400
        assert answer.get_json()["detail"].startswith("the body is not valid JSON")
    refused = client.post(f"/api/work/{lease['assignment_id']}/submit", headers=headers, json=[1, 2])
    assert refused.status_code == 400 and refused.get_json()["detail"] == "the body must be a JSON object"


def test_a_token_call_is_answered_without_flask_views(app, client, both, monkeypatch):
    project, _person, headers = both

    def broken(*_args, **_kwargs):
        raise AssertionError("Flask's view ran")

    monkeypatch.setitem(app.view_functions, "api.next_work", broken)
    assert client.post(f"/api/work/next?project={project}", headers=headers).status_code == 200
    with pytest.raises(AssertionError, match="Flask's view ran"):
        client.post(f"/api/work/next?project={project}")  # the session goes through Flask


def test_who_may_call_is_checked_as_flask_checks_it(app, client, both):
    project, _person, _headers = both
    invalid = client.post(f"/api/work/next?project={project}", headers={"Authorization": "Token ann_nope"})
    assert invalid.status_code == 401 and invalid.get_json()["detail"] == "Invalid token."
    with app.app_context():  # an operator account that does not label (the services give everyone the role)
        operator = accounts.create_user("ops@example.org", "Ops", "a long password", roles=("operator",))
        with db.transaction() as session:
            session.execute(update(User).where(User.id == operator).values(is_annotator=False))
        key = accounts.create_token(operator, "lane").key
    denied = client.post(f"/api/work/next?project={project}", headers={"Authorization": f"Token {key}"})
    assert denied.status_code == 403
    assert set(denied.get_json()) >= {"id", "status_code", "version", "detail", "exc_info"}
    assert client.get("/api/work/next", headers={"Authorization": f"Token {key}"}).status_code == 405


def test_a_body_over_the_limit_is_refused(app, client, both):
    project, _person, headers = both
    lease = client.post(f"/api/work/next?project={project}", headers=headers).get_json()
    app.config["MAX_CONTENT_LENGTH"] = 2048
    huge = {"annotations": [{"item_id": 1, "result": choice("Positive"), "seconds": 1, "note": "x" * 4096}]}
    answer = client.post(f"/api/work/{lease['assignment_id']}/submit", headers=headers, json=huge)
    assert answer.status_code == 413
    assert "2048" in answer.get_json()["detail"]
