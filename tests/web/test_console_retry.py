"""Retrying failed background jobs from the console, one story per kind.

Each background job fails for real (a folder the job writes to is a file, a
Redis key has the wrong type, a stored label config is broken), the failure
lands in SQL through RQ's failure callback or the job's own bookkeeping, the
operator fixes the cause and presses Retry twice; the job runs once and its
result is there.
"""
from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest
from rq.job import Job
from sqlalchemy import select, update

from annotate.extensions import db, redis
from annotate.models import Assignment, BackgroundJob, LedgerEntry, Project
from annotate.queue import queue
from tests.assist.conftest import assisted, label_micro_tasks, labelers  # noqa: F401 (fixtures)
from tests.conftest import IMAGE_CONFIG, TEXT_CONFIG
from tests.exports.conftest import label_all, labelled, png  # noqa: F401 (labelled: a fixture)
from tests.work.conftest import annotators, projects  # noqa: F401 (fixtures)


@pytest.fixture
def operator(teams, people):
    if teams.operator is None:
        teams.operator = people.make("operator")
    return teams.operator


def block(path: Path) -> None:
    """Put a file where the job expects a folder."""
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a folder")


def failed_row(app, **where) -> BackgroundJob:
    with app.app_context():
        stmt = select(BackgroundJob).where(BackgroundJob.status == "failed")
        for name, value in where.items():
            stmt = stmt.where(getattr(BackgroundJob, name) == value)
        rows = list(db.session.scalars(stmt))
        db.session.expunge_all()
    assert len(rows) == 1, f"expected one failed background job with {where}, found {len(rows)}"
    return rows[0]


def row(app, job_id: int) -> BackgroundJob:
    with app.app_context():
        job = db.session.get(BackgroundJob, job_id)
        db.session.expunge_all()
        return job


def retry_twice(client, job_id: int) -> str:
    """The operator double-clicks Retry; returns the page they land on."""
    assert client.post(f"/console/jobs/{job_id}/retry").status_code == 302
    assert client.post(f"/console/jobs/{job_id}/retry").status_code == 302
    return client.get("/console/jobs").get_data(as_text=True)


def queued_once(app, rq_id: str) -> None:
    with app.app_context():
        assert queue().job_ids == [rq_id]  # the second click put nothing on the queue


def test_an_import_that_failed_on_the_media_folder_is_retried(app, client, auth, operator, teams, run_jobs):
    requester = teams.requester()
    project = client.post("/api/projects/", headers=requester.headers, json={
        "title": "Street", "label_config": IMAGE_CONFIG, "items_per_micro_task": 1}).get_json()
    media_root = Path(app.config["MEDIA_ROOT"])
    block(media_root)
    files = {f"file{i}": (io.BytesIO(png(40 + i, 30, 60 * i)), f"street-{i}.png") for i in range(2)}
    assert client.post(f"/api/projects/{project['id']}/import", headers=requester.headers, data=files,
                       content_type="multipart/form-data").status_code == 201
    run_jobs()
    job = failed_row(app, kind="import")
    # The import's own words, which the requester reads too.
    assert job.error == "the import stopped on an internal error (NotADirectoryError); nothing was stored"
    auth.login(operator)
    page = client.get("/console/jobs").get_data(as_text=True)
    assert f'id="job-{job.id}"' in page and job.error in page
    assert "RQ tries it again by itself\n        (3 more times); Retry runs it now" in page

    media_root.unlink()  # the operator fixes the cause
    page = retry_twice(client, job.id)
    assert f"Background job {job.id} was waiting for RQ&#39;s own next try: it runs now instead" in page
    assert "is queued, not failed" in page and f'id="job-{job.id}"' not in page
    queued_once(app, job.rq_id)
    run_jobs()
    assert row(app, job.id).status == "finished"
    tasks = client.get(f"/api/tasks/?project={project['id']}", headers=requester.headers).get_json()["tasks"]
    assert len(tasks) == 2
    for task in tasks:
        image = client.get(task["data"]["image"])
        assert image.status_code == 200 and image.mimetype == "image/png"


def test_an_export_that_failed_on_the_export_folder_is_retried(app, client, auth, operator, labelled, run_jobs):
    lab = labelled(items=4)
    export_root = Path(app.config["EXPORT_ROOT"])
    block(export_root)
    created = client.post(f"/api/projects/{lab.project_id}/exports/", headers=lab.headers,
                          json={"format": "JSON_MIN"}).get_json()
    run_jobs()
    job = failed_row(app, kind="export")
    assert job.id == created["id"] and "Error" in job.error
    auth.login(operator)
    assert f'id="job-{job.id}"' in client.get("/console/jobs").get_data(as_text=True)

    export_root.unlink()
    retry_twice(client, job.id)
    queued_once(app, job.rq_id)
    run_jobs()
    assert row(app, job.id).status == "finished"
    download = client.get(f"/api/projects/{lab.project_id}/exports/{job.id}/download", headers=lab.headers)
    assert download.status_code == 200
    entries = json.loads(download.get_data())
    # Two answers to each of the four items.
    assert len(entries) == 8 and sorted({e["text"] for e in entries}) == [f"item {i}" for i in range(4)]


def test_a_split_whose_queueing_failed_in_redis_is_retried(app, client, auth, operator, teams, annotators, run_jobs):
    requester = teams.requester()
    project = client.post("/api/projects/", headers=requester.headers, json={
        "title": "Sentiment", "label_config": TEXT_CONFIG, "overlap": 1, "items_per_micro_task": 2,
        "pay_per_micro_task": 50, "estimated_seconds_per_micro_task": 60}).get_json()
    client.post(f"/api/projects/{project['id']}/import", headers=requester.headers,
                json=[{"text": f"item {i}"} for i in range(4)])
    assert client.post(f"/api/projects/{project['id']}/publish", headers=requester.headers).status_code == 200
    queue_key = f"d:p:{project['id']}:q"
    with app.app_context():
        redis.client.set(queue_key, "in the way")  # the project's queue is not a sorted set: WRONGTYPE
    run_jobs()
    job = failed_row(app, kind="split")
    assert "WRONGTYPE" in job.error

    with app.app_context():
        redis.client.delete(queue_key)
    auth.login(operator)
    retry_twice(client, job.id)
    queued_once(app, job.rq_id)
    run_jobs()
    done = row(app, job.id)
    assert done.status == "finished" and done.result["micro_tasks"] == 2  # the cut was not made twice
    worker, = annotators(1)
    taken = []
    for _ in range(2):
        work = worker.next(project["id"]).get_json()
        taken += [item["data"]["text"] for item in work["items"]]
        assert worker.submit(work).status_code == 200
    assert sorted(taken) == [f"item {i}" for i in range(4)]


def test_scoring_that_failed_on_a_broken_config_is_retried_and_pays(app, client, auth, operator, projects,
                                                                    annotators, run_jobs):
    project_id = projects.live(items=2, overlap=2, per_task=2, approve_quality_threshold=0.0)
    people = annotators(2)
    label_all(people, project_id)
    with app.app_context(), db.transaction() as session:  # what a bad hand edit of the database leaves
        config = session.scalar(select(Project.label_config).where(Project.id == project_id))
        session.execute(update(Project).where(Project.id == project_id).values(label_config="<View><Text"))
    run_jobs()
    job = failed_row(app, kind="score")
    assert job.project_id == project_id and job.params["function"] == "tasks.jobs.score_micro_task"
    auth.login(operator)
    page = client.get("/console/jobs").get_data(as_text=True)
    assert f'id="job-{job.id}"' in page and f"tasks.jobs.score_micro_task({job.params['args'][0]})" in page
    with app.app_context():
        assert not list(db.session.scalars(select(LedgerEntry)))  # nobody was paid

    with app.app_context(), db.transaction() as session:
        session.execute(update(Project).where(Project.id == project_id).values(label_config=config))
    page = retry_twice(client, job.id)
    assert "is queued, not failed" in page
    run_jobs()
    assert row(app, job.id).status == "finished"
    with app.app_context():
        decisions = list(db.session.scalars(select(Assignment.decision).where(Assignment.project_id == project_id)))
        paid = sorted(db.session.scalars(select(LedgerEntry.annotator_id).where(LedgerEntry.kind == "earning")))
        db.session.rollback()
    assert decisions == ["approved", "approved"]
    assert paid == sorted(p.id for p in people)  # each paid once
    audit = client.get("/console/audit?action=retry_background_job").get_data(as_text=True)
    assert re.search(rf"retry_background_job.*?{job.id}", audit, re.S)
    auth.logout()
    auth.login(people[0].person)  # the worker sees the pay the retried scoring approved
    assert "0.50" in client.get("/payroll/earnings").get_data(as_text=True)


def test_training_that_failed_on_the_model_folder_is_run_again_from_its_row_alone(
        app, client, auth, operator, assisted, labelers, run_jobs):
    project = assisted.live(items=40, per_task=5, overlap=2)
    model_root = Path(app.config["MODEL_ROOT"])
    block(model_root)
    label_micro_tasks(project, labelers(2), 4, run_jobs)  # 20 consensus labels: the first model is due
    job = failed_row(app, kind="assist train")
    assert job.project_id == project and job.params == {"function": "tasks.assist.train_builtin", "args": [project]}
    headers = assisted.requester.headers
    assert client.get(f"/api/projects/{project}/assist", headers=headers).get_json()["models"] == []
    with app.app_context():  # Redis lost the failed job (a restart without persistence): SQL still has it
        Job.fetch(job.rq_id, connection=redis.client).delete()

    model_root.unlink()
    auth.login(operator)
    page = retry_twice(client, job.id)
    assert f"Background job {job.id} is queued again from its record in the database" in page
    queued_once(app, job.rq_id)
    run_jobs()
    assert row(app, job.id).status == "finished"
    models = client.get(f"/api/projects/{project}/assist", headers=headers).get_json()["models"]
    assert [(m["version"], m["training_size"]) for m in models] == [(1, 20)]
    assert (model_root / f"project-{project}" / "v1.joblib").is_file()
