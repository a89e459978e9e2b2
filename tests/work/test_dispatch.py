"""Annotators ask for work, label it and hand it in, through the work API."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from annotate import extensions
from annotate.extensions import db, redis
from annotate.models import Annotation, Assignment, AssignmentScore, MicroTask
from tasks import dispatch
from tests.conftest import choice


def test_next_gives_a_lease_on_a_micro_task_with_its_items(projects, annotators):
    project = projects.live(items=4, per_task=2)
    (ana,) = annotators(1)
    response = ana.next()
    assert response.status_code == 200
    work = response.get_json()
    assert work["project"] == project and work["is_qualification"] is False
    assert [item["data"]["text"] for item in work["items"]] == ["item 0", "item 1"]
    expires = dt.datetime.fromisoformat(work["lease_expires_at"])
    assert 590 <= (expires - dt.datetime.now(dt.UTC)).total_seconds() <= 600
    # Asking again while holding the lease returns the same lease.
    assert ana.next().get_json()["assignment_id"] == work["assignment_id"]


def test_started_micro_tasks_come_first_and_nobody_gets_one_twice(projects, annotators):
    projects.live(items=6, per_task=2, overlap=2)
    ana, ben, cleo = annotators(3)
    first = ana.next().get_json()
    # Ben gets the micro-task Ana started, so its items finish sooner.
    assert ben.next().get_json()["micro_task"] == first["micro_task"]
    # It has its two annotators now: Cleo gets the next one.
    assert cleo.next().get_json()["micro_task"] != first["micro_task"]
    assert ana.submit(first).status_code == 200
    after = ana.next().get_json()
    assert after["micro_task"] != first["micro_task"]


def test_nothing_left_is_204(projects, annotators):
    projects.live(items=2, per_task=2, overlap=1)
    ana, ben = annotators(2)
    assert ana.next().status_code == 200
    response = ben.next()
    assert response.status_code == 204 and response.get_data() == b""


def test_submit_stores_results_and_a_repeat_stores_nothing_twice(projects, annotators, app):
    projects.live(items=2, per_task=2, overlap=2)
    (ana,) = annotators(1)
    work = ana.next().get_json()
    first = ana.submit(work, "Negative")
    assert first.status_code == 200
    body = first.get_json()
    assert body["status"] == "submitted" and [a["result"] for a in body["annotations"]] == [choice("Negative")] * 2
    again = ana.submit(work, "Positive")  # a retry, even with other content, answers with what is stored
    assert again.status_code == 200 and again.get_json()["annotations"] == body["annotations"]
    with app.app_context():
        assert db.session.query(Annotation).count() == 2
        assert db.session.get(MicroTask, work["micro_task"]).submitted == 1


def test_two_submits_of_one_assignment_at_once_store_it_once(projects, annotators, app):
    # A double click, or a retry sent while the first request is still in flight.
    projects.live(items=2, per_task=2, overlap=2)
    (ana,) = annotators(1)
    work = ana.next().get_json()
    clients = [app.test_client() for _ in range(4)]
    start = threading.Barrier(len(clients))
    answers = [None] * len(clients)

    def send(i: int) -> None:
        body = {"annotations": [{"item_id": item["id"], "result": choice("Negative"), "seconds": 2}
                                for item in work["items"]]}
        start.wait()
        answers[i] = clients[i].post(f"/api/work/{work['assignment_id']}/submit", headers=ana.headers, json=body)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200] * len(clients)
    assert len({str(a.get_json()["annotations"]) for a in answers}) == 1
    with app.app_context():
        assert db.session.query(Annotation).count() == 2
        micro_task = db.session.get(MicroTask, work["micro_task"])
        assert (micro_task.taken, micro_task.submitted) == (1, 1)
        assert db.session.get(Assignment, work["assignment_id"]).status == "submitted"


def test_a_result_that_does_not_fit_the_config_names_the_item_and_field(projects, annotators, app):
    projects.live(items=2, per_task=2)
    (ana,) = annotators(1)
    work = ana.next().get_json()
    item = work["items"][1]["id"]
    bad = [{"item_id": work["items"][0]["id"], "result": choice("Positive"), "seconds": 2},
           {"item_id": item, "result": [{"from_name": "sentiment", "to_name": "text", "type": "choices",
                                         "value": {"choices": ["Furious"]}}], "seconds": 2}]
    response = ana.client.post(f"/api/work/{work['assignment_id']}/submit", headers=ana.headers, json={"annotations": bad})
    assert response.status_code == 400
    assert f"item {item}" in response.get_json()["detail"] and "Furious" in response.get_json()["detail"]
    missing = ana.client.post(f"/api/work/{work['assignment_id']}/submit", headers=ana.headers,
                              json={"annotations": bad[:1]})
    assert missing.status_code == 400 and f"items {item} have no annotation" in missing.get_json()["detail"]
    with app.app_context():
        assert db.session.query(Annotation).count() == 0


def test_someone_elses_assignment_is_not_found(projects, annotators):
    projects.live(items=2, per_task=2)
    ana, ben = annotators(2)
    work = ana.next().get_json()
    assert ben.submit(work).status_code == 404
    assert ben.heartbeat(work).status_code == 404
    assert ben.skip(work).status_code == 404


def _expire(app, assignment_id):
    with app.app_context():
        with db.transaction() as session:
            session.get(Assignment, assignment_id).lease_expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        redis.client.zadd("d:leases", {f"{session.get(Assignment, assignment_id).micro_task_id}:"
                                       f"{session.get(Assignment, assignment_id).annotator_id}": 1})


def test_an_expired_lease_goes_back_to_the_queue(projects, annotators, app):
    projects.live(items=2, per_task=2, overlap=1)
    ana, ben = annotators(2)
    work = ana.next().get_json()
    assert ben.next().status_code == 204
    _expire(app, work["assignment_id"])
    from annotate.services import work as work_service

    with app.app_context():
        assert work_service.reclaim_expired() == 1
    taken = ben.next().get_json()
    assert taken["micro_task"] == work["micro_task"]
    # Ana's late submit finds her slot given away.
    late = ana.submit(work)
    assert late.status_code == 409 and "given to someone else" in late.get_json()["detail"]
    assert ana.next().status_code == 204  # and she never gets it again
    with app.app_context():
        assert db.session.get(Assignment, work["assignment_id"]).status == "expired"


def test_a_late_submit_is_accepted_while_the_slot_is_free(projects, annotators, app):
    projects.live(items=2, per_task=2, overlap=1)
    (ana,) = annotators(1)
    work = ana.next().get_json()
    _expire(app, work["assignment_id"])
    from annotate.services import work as work_service

    with app.app_context():
        work_service.reclaim_expired()
    response = ana.submit(work)
    assert response.status_code == 200 and response.get_json()["status"] == "submitted"
    with app.app_context():
        mt = db.session.get(MicroTask, work["micro_task"])
        assert (mt.taken, mt.submitted, mt.status) == (1, 1, "done")


def test_an_expired_lease_is_noticed_on_the_request_path(projects, annotators, app):
    projects.live(items=2, per_task=2, overlap=1)
    ana, ben = annotators(2)
    work = ana.next().get_json()
    _expire(app, work["assignment_id"])
    # No periodic job ran: Ben's request reclaims the lease itself.
    assert ben.next().get_json()["micro_task"] == work["micro_task"]


def test_heartbeat_extends_and_skip_gives_the_slot_back(projects, annotators, app):
    projects.live(items=2, per_task=2, overlap=1)
    ana, ben = annotators(2)
    work = ana.next().get_json()
    _expire(app, work["assignment_id"])  # expired in time, not yet reclaimed: still hers
    beat = ana.heartbeat(work)
    assert beat.status_code == 200
    assert dt.datetime.fromisoformat(beat.get_json()["lease_expires_at"]) > dt.datetime.now(dt.UTC)
    assert ben.next().status_code == 204
    assert ana.skip(work, "text is not English").status_code == 200
    assert ben.next().get_json()["micro_task"] == work["micro_task"]
    assert ana.next().status_code == 204
    assert ana.heartbeat(work).status_code == 409
    with app.app_context():
        assert db.session.get(Assignment, work["assignment_id"]).skip_reason == "text is not English"


def test_a_blocked_annotator_gets_nothing_and_loses_their_lease(projects, annotators, people, app, client):
    projects.live(items=2, per_task=2, overlap=1)
    ana, ben = annotators(2)
    work = ana.next().get_json()
    operator = people.make("operator")
    from annotate.services import accounts

    with app.app_context():
        key = accounts.create_token(operator.id, "ops").key
    response = client.post(f"/api/users/{ana.id}/block", headers={"Authorization": f"Token {key}"},
                           json={"reason": "copy-pasted answers"})
    assert response.status_code == 200
    refused = ana.next()
    assert refused.status_code == 403 and "copy-pasted answers" in refused.get_json()["detail"]
    assert ana.submit(work).status_code == 409
    assert ben.next().get_json()["micro_task"] == work["micro_task"]
    client.post(f"/api/users/{ana.id}/unblock", headers={"Authorization": f"Token {key}"}, json={})
    assert ana.next().status_code == 204  # unblocked, but that micro-task was hers once


def test_losing_redis_loses_no_work(projects, annotators, app):
    projects.live(items=4, per_task=2, overlap=1)
    ana, ben = annotators(2)
    held = ana.next().get_json()
    with app.app_context():
        redis.client.flushdb()
    # The state is rebuilt from SQL: Ana keeps her lease and Ben gets the other micro-task.
    assert ana.next().get_json()["assignment_id"] == held["assignment_id"]
    other = ben.next().get_json()
    assert other["micro_task"] != held["micro_task"]
    assert ana.submit(held).status_code == 200


def test_a_state_in_an_older_layout_is_rebuilt_not_read(projects, annotators, app):
    # An upgrade finds Redis holding what the previous release loaded: its ready
    # mark under the old name and per-project keys the new script does not read.
    projects.live(items=4, per_task=2, overlap=1)
    ana, ben = annotators(2)
    held = ana.next().get_json()
    with app.app_context():
        client = redis.client
        client.delete(dispatch.READY, "d:match")
        client.set("d:ready", 1)
    assert ana.next().get_json()["assignment_id"] == held["assignment_id"]
    assert ben.next().get_json()["micro_task"] != held["micro_task"]
    with app.app_context():
        assert redis.client.exists(dispatch.READY) and redis.client.hlen("d:match") == 1


def test_a_big_split_leaves_the_planner_statistics_of_its_tables(projects, app, monkeypatch):
    # Without them PostgreSQL planned a parallel scan of a million micro-task items for
    # each request for work, until autovacuum came round.
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite plans by its indexes without statistics")
    monkeypatch.setattr(extensions, "ANALYZE_AFTER", 30)
    projects.live(items=37, per_task=2)
    with app.app_context():
        planned = dict(db.session.execute(sa.text(
            "SELECT relname, reltuples FROM pg_class WHERE relname IN ('item', 'micro_task', 'micro_task_item')")).all())
    assert planned == {"item": 37, "micro_task": 19, "micro_task_item": 37}


def test_a_finished_micro_task_is_scored_by_the_job_draining_the_inbox(projects, annotators, app, run_jobs):
    projects.live(items=8, per_task=2, overlap=2)
    ana, ben = annotators(2)
    for _ in range(3):  # three of the four micro-tasks finish; one scoring job is queued for them all
        for person in (ana, ben):
            assert person.submit(person.next().get_json()).status_code == 200
    with app.app_context():
        from annotate.queue import queue
        from annotate.services.work import dispatcher

        queued = [job.func_name for job in queue().get_jobs()]
        assert queued.count("tasks.jobs.score_finished") == 1 and "tasks.jobs.score_micro_task" not in queued
        done = sorted(db.session.scalars(select(MicroTask.id).where(MicroTask.status == "done")))
        assert len(done) == 3 and dispatcher().finished_waiting() == 3
        db.session.rollback()
    run_jobs()
    with app.app_context():
        scored = sorted(db.session.scalars(select(Assignment.micro_task_id).join(AssignmentScore)))
        assert scored == sorted(done * 2)  # each submission scored once
        assert dispatcher().finished_waiting() == 0 and not dispatcher().r.exists("s:draining")
        db.session.rollback()
    # The next finished micro-task queues a new job, as none drains the inbox now.
    for person in (ana, ben):
        assert person.submit(person.next().get_json()).status_code == 200
    with app.app_context():
        from annotate.queue import queue

        assert [job.func_name for job in queue().get_jobs()].count("tasks.jobs.score_finished") == 1


def test_a_micro_task_whose_scoring_fails_gets_a_job_of_its_own(projects, annotators, app, run_jobs, monkeypatch):
    projects.live(items=4, per_task=2, overlap=1)
    (ana,) = annotators(1)
    for _ in range(2):
        assert ana.submit(ana.next().get_json()).status_code == 200
    with app.app_context():
        first, second = sorted(db.session.scalars(select(MicroTask.id).where(MicroTask.status == "done")))
        db.session.rollback()
    from annotate.services import scoring

    real = scoring.score_micro_task

    def broken_on_first(micro_task_id):
        if micro_task_id == first:
            raise RuntimeError("the scorer broke")
        return real(micro_task_id)

    monkeypatch.setattr(scoring, "score_micro_task", broken_on_first)
    from tasks import jobs

    with app.app_context():
        assert jobs.score_finished() == 1  # the other one is scored all the same
        from annotate.queue import queue

        own = [job.args for job in queue().get_jobs() if job.func_name == "tasks.jobs.score_micro_task"]
        assert own == [(first,)]
        assert db.session.scalar(select(func.count()).select_from(AssignmentScore)
                                 .join(Assignment).where(Assignment.micro_task_id == second)) == 1
        db.session.rollback()


def test_a_rebuild_puts_finished_unscored_micro_tasks_back_in_the_inbox(projects, annotators, app, run_jobs):
    projects.live(items=2, per_task=2, overlap=1)
    (ana,) = annotators(1)
    assert ana.submit(ana.next().get_json()).status_code == 200
    with app.app_context():
        from annotate.services import work

        redis.client.flushdb()  # Redis restarts empty: the inbox and the queued job are gone
        assert work.rebuild()["unscored"] == 1
        assert work.dispatcher().finished_waiting() == 1
    run_jobs()
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AssignmentScore)) == 1
        db.session.rollback()


def test_qualification_comes_first_and_decides_access(projects, annotators, app):
    project = projects.live(items=4, per_task=2, overlap=2, gold=2, qualification=2)
    good, bad = annotators(2)
    test = good.next().get_json()
    assert test["is_qualification"] is True and len(test["items"]) == 2
    passed = good.submit(test, "Positive").get_json()["qualification"]
    assert passed["passed"] is True and (passed["right"], passed["total"]) == (2, 2)
    assert good.next().get_json()["is_qualification"] is False
    test = bad.next().get_json()
    failed = bad.submit(test, "Negative").get_json()["qualification"]
    assert failed["passed"] is False and "expected Positive, you chose Negative" in failed["items"][0]["why"]
    assert bad.next(project).status_code == 204


def test_gold_items_never_carry_predictions(projects, annotators):
    projects.live(items=4, per_task=3, overlap=1, gold=2, gold_share=0.34, show_predictions=True, predictions=True)
    (ana,) = annotators(1)
    work = ana.next().get_json()
    texts = {item["data"]["text"]: item["predictions"] for item in work["items"]}
    assert any(t.startswith("gold") for t in texts) and any(t.startswith("item") for t in texts)
    for text, predictions in texts.items():
        assert (predictions == []) if text.startswith("gold") else (predictions[0]["model_version"] == "m1")


def test_publish_refuses_pay_below_the_floor_and_empty_projects(client, teams):
    requester = teams.requester()
    from tests.conftest import TEXT_CONFIG

    project = client.post("/api/projects/", headers=requester.headers, json={
        "title": "cheap", "label_config": TEXT_CONFIG, "pay_per_micro_task": 5,
        "estimated_seconds_per_micro_task": 60}).get_json()["id"]
    empty = client.post(f"/api/projects/{project}/publish", headers=requester.headers)
    assert empty.status_code == 400 and "upload items before publishing" in empty.get_json()["detail"]
    client.post(f"/api/projects/{project}/import", headers=requester.headers, json=[{"text": "a"}])
    cheap = client.post(f"/api/projects/{project}/publish", headers=requester.headers)
    assert cheap.status_code == 400
    assert "below the floor of 1200: pay at least 20" in cheap.get_json()["detail"]


def test_progress_counts_what_the_queue_holds(projects, annotators, client):
    project = projects.live(items=6, per_task=2, overlap=1)
    (ana,) = annotators(1)
    ana.submit(ana.next().get_json())
    ana.next()
    progress = client.get(f"/api/projects/{project}/progress", headers=projects.requester.headers).get_json()
    assert (progress["micro_tasks"], progress["micro_tasks_done"], progress["assignments_live"]) == (3, 1, 1)
    assert progress["micro_tasks_waiting"] == 1 and progress["labels_last_hour"] == 2


def test_queue_rebuild_from_the_command_line_keeps_every_lease(projects, annotators, runner, app):
    projects.live(items=4, per_task=2, overlap=1)
    ana, ben = annotators(2)
    held = ana.next().get_json()
    result = runner.invoke(args=["queue", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "rebuilt: 1 projects, 2 micro_tasks, 1 leases, 0 blocked" in result.output
    assert ana.next().get_json()["assignment_id"] == held["assignment_id"]
    assert ben.next().get_json()["micro_task"] != held["micro_task"]


def test_finished_work_is_scored_and_paid_without_anyone_acting(projects, annotators, app, run_jobs):
    from annotate.models import ItemScore, LedgerEntry

    projects.live(items=2, per_task=2, overlap=3)
    people = annotators(3)
    for person, label in zip(people, ["Positive", "Positive", "Negative"]):
        assert person.submit(person.next().get_json(), label).status_code == 200
    run_jobs()
    with app.app_context():
        scores = db.session.query(ItemScore).all()
        assert len(scores) == 2
        assert all(s.consensus == choice("Positive") and abs(s.agreement - 2 / 3) < 1e-9 for s in scores)
        earnings = db.session.query(LedgerEntry).filter_by(kind="earning").all()
        # Each approved assignment earns the project's 50 cents exactly once.
        assert all(e.amount == 50 and e.currency == "USD" for e in earnings)
        assert len({e.assignment_id for e in earnings}) == len(earnings)
        decided = db.session.query(Assignment).filter(Assignment.decision != "pending").count()
        assert decided == len(earnings)


def test_queue_check_reports_violations_and_exits_non_zero(projects, annotators, runner, app):
    projects.live(items=2, per_task=2, overlap=1)
    (ana,) = annotators(1)
    ana.submit(ana.next().get_json())
    clean = runner.invoke(args=["queue", "check"])
    assert clean.exit_code == 0 and "0 violations" in clean.output
    with app.app_context():
        with db.transaction() as session:
            session.query(MicroTask).update({"submitted": 0})  # a counter that no longer matches its rows
    broken = runner.invoke(args=["queue", "check"])
    assert broken.exit_code == 1 and "counters taken=1 submitted=0 but rows say 1 and 1" in broken.output
