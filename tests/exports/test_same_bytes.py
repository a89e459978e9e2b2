"""An export's bytes depend on the project's data alone: the same project
gives the files under tests/data/exports/ on SQLite and on PostgreSQL alike
(CI runs this test on both), whatever order each back end keeps JSON keys in
and however each hands back timestamps. The project has what changes the
bytes: data with a key that sorts differently by length than by name,
regions with several keys, text that CSV must quote, an imported annotation,
predictions, a gold item, a timestamp with no microseconds."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from annotate.extensions import db
from annotate.models import Annotation, Item, Prediction
from annotate.services import exports
from exports.pseudonyms import Pseudonyms
from tests.exports.conftest import label_all

EXPECTED = Path(__file__).resolve().parent.parent / "data" / "exports"

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="Positive"/><Choice value="Negative"/>
  </Choices>
  <Labels name="entity" toName="text"><Label value="PER"/><Label value="LOC"/></Labels>
</View>"""

TEXTS = ['Ada said "fine", then left', "Lima,\tby night\nand day", "Zoë — café", "Bob at home"]
T0 = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)


def regions(label: str, text: str) -> list[dict]:
    word = text.split()[0]
    return [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [label]}},
            {"from_name": "entity", "to_name": "text", "type": "labels",
             "value": {"start": 0, "end": len(word), "text": word, "labels": ["PER"]}}]


@pytest.fixture
def frozen_project(client, teams, annotators, run_jobs, app, monkeypatch):
    requester = teams.requester()
    headers = requester.headers
    project = client.post("/api/projects/", headers=headers, json={
        "title": "Same bytes", "label_config": CONFIG, "overlap": 2, "items_per_micro_task": 2,
        "pay_per_micro_task": 50, "estimated_seconds_per_micro_task": 60, "unassisted_share": 0.0}).get_json()
    tasks = [{"data": {"text": text, "source_name": f"feed {i}"}} for i, text in enumerate(TEXTS)]
    tasks[0]["predictions"] = [{"result": regions("Positive", TEXTS[0]), "score": 0.75, "model_version": "m1"}]
    tasks[3]["annotations"] = [{"result": regions("Negative", TEXTS[3]), "completed_by": 77, "lead_time": 2.5}]
    assert client.post(f"/api/projects/{project['id']}/import", headers=headers, json=tasks).status_code == 201
    gold = [{"data": {"text": "Gold item", "source_name": "gold"}, "annotations": [{"result": regions(
        "Positive", "Gold item")}]}]
    assert client.post(f"/api/projects/{project['id']}/import?gold=1", headers=headers, json=gold).status_code == 201
    assert client.post(f"/api/projects/{project['id']}/publish", headers=headers).status_code == 200
    run_jobs()
    first, second = annotators(2)
    label_all([first, second], project["id"],
              result_of=lambda person, item: regions("Negative" if person is second and "Lima" in item["data"]["text"]
                                                     else "Positive", item["data"]["text"]))
    run_jobs()
    with app.app_context():  # the clock is the one thing that differs between two runs
        session = db.session
        for model in (Item, Annotation, Prediction):
            for row in session.scalars(select(model).order_by(model.id)):
                row.created_at = T0 + dt.timedelta(minutes=row.id, microseconds=(row.id * 137_035) % 1_000_000)
        session.scalars(select(Annotation).order_by(Annotation.id).limit(1)).one().created_at = T0  # no microseconds
        session.commit()
    monkeypatch.setattr(exports, "Pseudonyms", lambda: Pseudonyms(b"a fixed salt, for this test only"))
    return project["id"], headers


@pytest.mark.parametrize("fmt,name", [("JSON", "project.json"), ("JSON_MIN", "project-min.json"),
                                      ("CSV", "project.csv"), ("TSV", "project.tsv"),
                                      ("CONSENSUS_JSONL", "consensus.jsonl"), ("CONSENSUS_CSV", "consensus.csv")])
def test_each_format_writes_the_same_bytes_on_either_back_end(frozen_project, client, fmt, name):
    project_id, headers = frozen_project
    response = client.get(f"/api/projects/{project_id}/export", headers=headers,
                          query_string={"exportType": fmt, "download_all_tasks": "true"})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.get_data() == (EXPECTED / name).read_bytes()
