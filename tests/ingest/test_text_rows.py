"""Text rows keep every character through the bulk insert (COPY on
PostgreSQL, executemany on SQLite), and an item the project already holds is
reported by its line even though no look-up pass runs before the insert."""
from __future__ import annotations

import io
import json

import pytest

from annotate.extensions import db
from annotate.models import Item
from tests.conftest import TEXT_CONFIG, choice

AWKWARD = ["back\\slash \\N and \\t literally", "tab\there", "new\nline and \r return", 'quote " and \u00e9\u2028\U0001f600',
           "\u001f unit separator", "not a NUL: \\u0000"]


@pytest.fixture
def project(client, teams):
    requester = teams.requester()
    response = client.post("/api/projects/", headers=requester.headers, json={"title": "P", "label_config": TEXT_CONFIG})
    return requester, response.get_json()["id"]


def upload(client, requester, project_id, name: str, content: str, run_jobs) -> dict:
    response = client.post(f"/api/projects/{project_id}/import", headers=requester.headers,
                           data={"file": [(io.BytesIO(content.encode()), name)]}, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_data(as_text=True)
    run_jobs()
    return client.get(response.headers["Location"], headers=requester.headers).get_json()


def tasks(client, requester, project_id) -> list[dict]:
    return client.get(f"/api/tasks/?project={project_id}", headers=requester.headers).get_json()["tasks"]


def test_awkward_characters_and_annotations_come_back_as_sent(client, project, run_jobs):
    requester, project_id = project
    rows = [{"data": {"text": text, "meta": {"n": n, "ratio": 0.5}},
             "annotations": [{"result": choice("Positive"), "lead_time": 1.5}]} for n, text in enumerate(AWKWARD)]
    status = upload(client, requester, project_id, "awkward.jsonl", "".join(json.dumps(r) + "\n" for r in rows), run_jobs)
    assert status["status"] == "finished", status
    got = tasks(client, requester, project_id)
    assert [t["data"] for t in got] == [r["data"] for r in rows]
    assert [t["annotations"] for t in got] == [[{"result": choice("Positive"), "lead_time": 1.5}]] * len(rows)


def test_items_already_in_the_project_are_named_by_line_and_nothing_is_added(client, project, run_jobs, app):
    requester, project_id = project
    upload(client, requester, project_id, "first.jsonl", '{"text": "kept"}\n{"text": "also kept"}\n', run_jobs)
    status = upload(client, requester, project_id, "second.jsonl",
                    '{"text": "new"}\n{"text": "also kept"}\n{"text": "newer"}\n{"text": "kept"}\n', run_jobs)
    assert status["status"] == "failed"
    assert sorted((e["line"], e["message"]) for e in status["errors"]) == [
        (2, "duplicate: an item with the same data is already in the project"),
        (4, "duplicate: an item with the same data is already in the project")]
    assert status["error"] == "2 problems found; nothing was stored"
    assert [t["data"]["text"] for t in tasks(client, requester, project_id)] == ["kept", "also kept"]
    with app.app_context():
        assert db.session.query(Item).count() == 2


def test_key_order_does_not_make_a_new_item(client, project, run_jobs):
    requester, project_id = project
    status = upload(client, requester, project_id, "a.jsonl",
                    '{"text": "same", "source": "web"}\n{"source": "web", "text": "same"}\n', run_jobs)
    assert status["errors"] == [{"file": "a.jsonl", "line": 2,
                                 "message": "duplicate of a.jsonl, line 1: the same data is already in this upload"}]


def test_a_nul_character_is_refused_by_line_on_every_database(client, project, run_jobs, app):
    requester, project_id = project
    content = json.dumps({"text": "fine"}) + "\n" + json.dumps({"text": "nul \u0000 here"}) + "\n"
    status = upload(client, requester, project_id, "nul.jsonl", content, run_jobs)
    assert status["errors"] == [{"file": "nul.jsonl", "line": 2,
                                 "message": "the item holds a NUL character (\\u0000), which cannot be stored"}]
    with app.app_context():
        assert db.session.query(Item).count() == 0
