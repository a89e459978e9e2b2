"""Dynamic overlap: a micro-task whose items stay unsure after k answers goes back
into the queue for one more annotator at a time, up to the project's max_overlap."""
from __future__ import annotations

from sqlalchemy import select

from annotate.extensions import db
from annotate.models import ItemScore, MicroTask
from annotate.services.integrity import violations


def micro_task(app, project: int) -> MicroTask:
    with app.app_context():
        mt = db.session.scalar(select(MicroTask).where(MicroTask.project_id == project))
        db.session.expunge_all()
        return mt


def test_unsure_items_get_more_annotators_up_to_the_maximum(app, projects, annotators, run_jobs):
    project = projects.live(items=1, per_task=1, overlap=2, max_overlap=4, confidence_target=0.9)
    a, b, c, d, e = annotators(5)
    for worker, label in ((a, "Positive"), (b, "Negative")):
        assert worker.submit(worker.next(project).get_json(), label).status_code == 200
    run_jobs()
    mt = micro_task(app, project)
    assert (mt.status, mt.overlap, mt.taken, mt.submitted) == ("open", 3, 2, 2)
    # Those who answered never get it again; a third annotator does.
    assert a.next(project).status_code == 204 and b.next(project).status_code == 204
    third = c.next(project).get_json()
    assert third["micro_task"] == mt.id
    assert d.next(project).status_code == 204  # one more a round
    assert c.submit(third, "Positive").status_code == 200
    run_jobs()
    mt = micro_task(app, project)
    with app.app_context():
        score = db.session.get(ItemScore, third["items"][0]["id"])
        assert score.n_annotators == 3
        confident = score.confidence >= 0.9
    assert (mt.status, mt.overlap) == (("done", 3) if confident else ("open", 4))
    if not confident:
        fourth = d.next(project).get_json()
        assert d.submit(fourth, "Positive").status_code == 200
        run_jobs()
        mt = micro_task(app, project)
        assert (mt.status, mt.overlap, mt.submitted) == ("done", 4, 4)  # the maximum: no more
        assert e.next(project).status_code == 204
    with app.app_context():
        assert violations(project) == []


def test_agreement_closes_the_micro_task_at_k(app, projects, annotators, run_jobs):
    project = projects.live(items=1, per_task=1, overlap=2, max_overlap=4, confidence_target=0.6)
    a, b, c = annotators(3)
    for worker in (a, b):
        assert worker.submit(worker.next(project).get_json(), "Positive").status_code == 200
    run_jobs()
    mt = micro_task(app, project)
    assert (mt.status, mt.overlap) == ("done", 2)
    assert c.next(project).status_code == 204
