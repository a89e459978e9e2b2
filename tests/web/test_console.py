"""The operator console: who may use it, and what each action changes for
the annotator (block, decisions on appeals and overdue work), plus the
annotators, queues, background jobs and audit pages."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select, update

from annotate.extensions import db
from annotate.models import AnnotatorScore, Appeal, Assignment, AuditEntry, BackgroundJob, MicroTask, utcnow
from annotate.queue import enqueue, queue
from annotate.services import console, reviews
from annotate.services.errors import Conflict
from tests.web.test_reviews import assignment, audit_actions, earnings, reviewed  # noqa: F401 (reviewed: a fixture)
from tests.work.conftest import annotators, projects  # noqa: F401 (fixtures)


@pytest.fixture
def operator(teams, people):
    if teams.operator is None:
        teams.operator = people.make("operator")
    return teams.operator


def _concrete(rule: str) -> str:
    """A URL for a rule, with 1 for every number and x for every other part."""
    path = re.sub(r"<int:[^>]+>", "1", rule)
    return re.sub(r"<[^>]+>", "x", path)


def console_routes(app) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/console", "/api/console")):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                routes.append((method, _concrete(rule.rule)))
    return routes


# --- who may ------------------------------------------------------------------------------


def test_every_console_page_and_action_is_for_operators_only(app, client, auth, people, teams):
    routes = console_routes(app)
    paths = {path for _, path in routes}
    # Our pages, our chart endpoints and the mounted rq-dashboard are all in the list.
    assert {"/console/", "/console/annotators", "/console/annotators/1/block", "/console/reviews",
            "/console/reviews/1/appeals/1", "/console/queues", "/console/jobs", "/console/jobs/1/retry",
            "/console/fairness", "/console/audit", "/console/projects/1", "/api/console/fairness",
            "/api/console/projects/1/progress", "/console/rq/", "/console/rq/job/x/requeue"} <= paths
    people.make(email="target@example.org")  # no refusal may show who is there
    for person in (people.make(), teams.requester().person):
        auth.login(person)
        for method, path in routes:
            response = client.open(path, method=method, data={"reason": "x", "grant": "1", "response": "x"},
                                   headers={"Origin": "http://localhost"})
            assert response.status_code == 403, (method, path, response.status_code)
            assert "target@example.org" not in response.get_data(as_text=True)
        auth.logout()
    assert audit_entries(app, "block_user") == []
    # Signed out: pages send to the sign-in page, the API answers 401.
    for method, path in routes:
        response = client.open(path, method=method)
        if path.startswith("/api/"):
            assert response.status_code == 401, path
        else:
            assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_the_console_link_is_for_operators(client, auth, operator, people):
    auth.login(operator)
    assert 'href="/console/"' in client.get("/").get_data(as_text=True)
    auth.logout()
    auth.login(people.make())
    assert 'href="/console/"' not in client.get("/").get_data(as_text=True)


def test_every_console_page_renders_for_an_operator(app, client, auth, operator, reviewed):
    auth.login(operator)
    a = next(iter(reviewed.assignments.values()))
    worker = reviewed.workers[0].id
    for path in ("/console/", "/console/annotators", "/console/annotators?q=person&blocked=1",
                 f"/console/annotators/{worker}", "/console/reviews", f"/console/reviews/{a}", "/console/queues",
                 "/console/jobs", "/console/projects", f"/console/projects/{reviewed.project_id}",
                 "/console/fairness", "/console/audit", "/console/audit?action=reject_assignment&since=2020-01-01"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "<nav class=\"console-nav\"" in response.get_data(as_text=True)


# --- rq-dashboard -------------------------------------------------------------------------


def test_rq_dashboard_is_mounted_behind_operator_login(app, client, auth, operator, people):
    auth.login(operator)
    page = client.get("/console/rq/")
    assert page.status_code == 200 and "RQ dashboard" in page.get_data(as_text=True)
    data = client.get("/console/rq/0/data/queues.json")
    assert data.status_code == 200 and "queues" in data.get_json()
    assert client.get("/console/rq/static/css/main.css").status_code == 200
    # Its actions come from its own pages: without our origin they are refused.
    assert client.post("/console/rq/job/nothing/requeue").status_code == 403
    assert client.post("/console/rq/job/nothing/requeue", headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.get("/console/rq/requeue/default").status_code == 403
    auth.logout()
    auth.login(people.make("requester"))
    assert client.get("/console/rq/").status_code == 403
    assert client.get("/console/rq/0/data/queues.json").status_code == 403


def test_failed_rq_jobs_show_their_error_and_are_retried(app, client, auth, operator, run_jobs):
    with app.app_context():
        rq_id = enqueue("tasks.jobs.split_project", 999, job_id="split-missing", retries=0)
    run_jobs()
    auth.login(operator)
    page = client.get("/console/queues").get_data(as_text=True)
    assert "split-missing" in page and "no background job 999" in page
    response = client.post(f"/console/queues/failed/{rq_id}/retry")
    assert response.status_code == 302
    with app.app_context():
        assert queue().job_ids == [rq_id]
    follow = client.get("/console/queues").get_data(as_text=True)
    assert "No failed background job in RQ." in follow
    # Not failed any more: a second retry says so.
    client.post(f"/console/queues/failed/{rq_id}/retry")
    assert "is queued, not failed: it is not run again" in client.get("/console/queues").get_data(as_text=True)
    with app.app_context():
        assert queue().job_ids == [rq_id]


# --- annotators and blocking ------------------------------------------------------------------


def audit_entries(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        rows = list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))
        db.session.expunge_all()
        return rows


def test_blocking_releases_leases_and_the_annotator_sees_why(app, client, auth, operator, projects, annotators):
    project_id = projects.live(items=4, overlap=1, per_task=2)
    (worker,) = annotators(1)
    held = worker.next(project_id).get_json()
    auth.login(operator)

    refused = client.post(f"/console/annotators/{worker.id}/block", data={"reason": " "})
    assert refused.status_code == 400 and "say why the annotator is blocked" in refused.get_data(as_text=True)
    assert worker.next(project_id).status_code == 200  # still working: the same lease comes back

    response = client.post(f"/console/annotators/{worker.id}/block", data={"reason": "copied answers from a bot"})
    assert response.status_code == 302
    assert assignment(app, held["assignment_id"]).status == "released"
    refused = worker.next(project_id)
    assert refused.status_code == 403
    assert refused.get_json()["detail"] == "your account is blocked: copied answers from a bot"
    page = client.get(f"/console/annotators/{worker.id}").get_data(as_text=True)
    assert "copied answers from a bot" in page and "Unblock" in page
    assert f"/console/annotators/{worker.id}\"" in client.get("/console/annotators?blocked=1").get_data(as_text=True)
    [entry] = audit_entries(app, "block_user")
    assert (entry.actor_id, entry.target_id, entry.reason, entry.details) == (
        operator.id, worker.id, "copied answers from a bot", {"released": 1})

    client.post(f"/console/annotators/{worker.id}/unblock", data={"reason": "explained themselves"})
    assert worker.next(project_id).status_code == 200
    assert [e.reason for e in audit_entries(app, "unblock_user")] == ["explained themselves"]


def test_the_annotators_list_shows_work_quality_and_money(app, client, auth, operator, reviewed, people):
    a_worker, b_worker, c_worker = reviewed.workers
    a, c = reviewed.assignments[a_worker.id], reviewed.assignments[c_worker.id]
    with app.app_context():
        reviews.approve(reviewed.requester.person.id, a)
        reviews.reject(reviewed.requester.person.id, c, "random or careless answers", "")
        rows = {row["id"]: row for row in console.annotators(operator.id)}
        # Money against the ledger and the pending work.
        assert rows[a_worker.id]["money"] == {"USD": {"pending": 0, "approved": 50, "paid": 0}}
        assert rows[b_worker.id]["money"] == {"USD": {"pending": 50, "approved": 0, "paid": 0}}
        assert rows[c_worker.id]["money"] == {}
        assert rows[a_worker.id]["submissions"] == 1 and rows[a_worker.id]["projects"] == 1
        assert rows[c_worker.id]["rejected"] == 1
        # 50 cents for 6 active seconds; rejected work counts its time and no money.
        assert rows[a_worker.id]["rates"] == {"USD": 50 * 3600 // 6}
        assert rows[c_worker.id]["rates"] == {"USD": 0}
        assert rows[b_worker.id]["rates"] == {}  # nothing decided yet
        score = db.session.scalar(select(AnnotatorScore).where(AnnotatorScore.annotator_id == a_worker.id))
        assert rows[a_worker.id]["quality"] == pytest.approx(score.quality)
        assert rows[a_worker.id]["last_active"] is not None
    auth.login(operator)
    page = client.get("/console/annotators").get_data(as_text=True)
    assert "0.50 USD" in page and "300.00 USD/h" in page
    found = client.get("/console/annotators?q=" + a_worker.person.email).get_data(as_text=True)
    assert a_worker.person.email in found and c_worker.person.email not in found
    history = client.get(f"/console/annotators/{c_worker.id}").get_data(as_text=True)
    assert "random or careless answers" in history and "reject_assignment" in history


# --- reviews past their window and escalated appeals ------------------------------------------


def _escalate(app, client, auth, reviewed) -> tuple[int, int]:
    worker = reviewed.workers[2]
    c = reviewed.assignments[worker.id]
    auth.login(reviewed.requester.person)
    client.post(f"/reviews/assignments/{c}/reject", data={"rule": "ignored the instructions", "reason": "wrong"})
    with app.app_context():
        appeal_id = reviews.appeal(worker.id, c, "I followed the instructions")
    client.post(f"/reviews/assignments/{c}/appeals/{appeal_id}", data={"grant": "0", "response": "no"})
    auth.logout()
    return c, appeal_id


def test_an_operator_grants_an_escalated_appeal_and_the_worker_is_paid(app, client, auth, operator, reviewed):
    c, appeal_id = _escalate(app, client, auth, reviewed)
    auth.login(operator)
    queue_page = client.get("/console/reviews").get_data(as_text=True)
    assert "Appeals escalated to you (1)" in queue_page and "I followed the instructions" in queue_page
    page = client.get(f"/console/reviews/{c}").get_data(as_text=True)
    assert "sentiment: Negative" in page and "✗ differs" in page  # side by side with the consensus
    assert "Uphold the rejection" in page

    refused = client.post(f"/console/reviews/{c}/appeals/{appeal_id}", data={"grant": "1", "response": ""})
    assert refused.status_code == 400 and "the decision is final" in refused.get_data(as_text=True)
    response = client.post(f"/console/reviews/{c}/appeals/{appeal_id}",
                           data={"grant": "1", "response": "the labels match the text"})
    assert response.status_code == 302
    row = assignment(app, c)
    assert (row.decision, row.decision_rule, row.decision_reason) == (
        "approved", "appeal_granted_by_operator", "the labels match the text")
    assert earnings(app, c) == [50]
    with app.app_context():
        appeal = db.session.get(Appeal, appeal_id)
        assert (appeal.status, appeal.operator_response) == ("granted", "the labels match the text")
    [entry] = audit_entries(app, "decide_appeal")
    assert entry.actor_id == operator.id and entry.details["granted"] is True and entry.details["final"] is True
    assert "Appeals escalated to you (0)" in client.get("/console/reviews").get_data(as_text=True)
    # Final: deciding again is refused and pays nothing more.
    assert client.post(f"/console/reviews/{c}/appeals/{appeal_id}",
                       data={"grant": "1", "response": "again"}).status_code == 409
    assert earnings(app, c) == [50]


def test_an_operator_upholds_a_rejection_with_a_reason_the_worker_reads(app, client, auth, operator, reviewed):
    c, appeal_id = _escalate(app, client, auth, reviewed)
    auth.login(operator)
    response = client.post(f"/console/reviews/{c}/appeals/{appeal_id}",
                           data={"grant": "0", "response": "both answers contradict the text"})
    assert response.status_code == 302
    assert assignment(app, c).decision == "rejected"
    assert earnings(app, c) == []
    with app.app_context():
        appeal = db.session.get(Appeal, appeal_id)
        assert (appeal.status, appeal.operator_response) == ("refused", "both answers contradict the text")
    page = client.get(f"/console/reviews/{c}").get_data(as_text=True)
    assert "The operator decided:" in page and "both answers contradict the text" in page


def test_an_operator_approves_work_left_past_its_review_window(app, client, auth, operator, reviewed):
    a = reviewed.assignments[reviewed.workers[0].id]
    b = reviewed.assignments[reviewed.workers[1].id]
    auth.login(operator)
    assert "Reviews past their window (0)" in client.get("/console/reviews").get_data(as_text=True)
    early = client.post(f"/console/reviews/{b}/approve", data={"reason": "too early"})
    assert early.status_code == 409 and "to review until" in early.get_data(as_text=True)

    with app.app_context(), db.transaction() as session:  # as if submitted four days ago
        session.execute(update(Assignment).where(Assignment.id == a).values(
            submitted_at=utcnow() - dt.timedelta(days=4)))
    page = client.get("/console/reviews").get_data(as_text=True)
    assert "Reviews past their window (1)" in page and f"/console/reviews/{a}\"" in page
    assert "window passed" in client.get(f"/console/reviews/{a}").get_data(as_text=True)
    refused = client.post(f"/console/reviews/{a}/approve", data={"reason": ""})
    assert refused.status_code == 400
    response = client.post(f"/console/reviews/{a}/approve", data={"reason": "the requester did not review it"})
    assert response.status_code == 302
    row = assignment(app, a)
    assert (row.decision, row.decision_rule, row.decision_reason, row.decided_by_id) == (
        "approved", "approved_by_operator", "the requester did not review it", operator.id)
    assert earnings(app, a) == [50]
    assert ("approve_overdue_assignment", operator.id, a) in audit_actions(app)


# --- queues and background jobs ------------------------------------------------------------


def test_queues_count_micro_tasks_waiting_leased_and_done(app, client, auth, operator, projects, annotators, run_jobs):
    project_id = projects.live(items=6, overlap=2, per_task=2)  # three micro-tasks, two slots each
    first, second = annotators(2)
    done = [first.next(project_id).get_json(), second.next(project_id).get_json()]
    for worker, work in zip((first, second), done):
        worker.submit(work)
    held = first.next(project_id).get_json()
    auth.login(operator)
    body = client.get("/api/console/queues").get_json()
    [row] = [p for p in body["projects"] if p["project_id"] == project_id]
    with app.app_context():
        mts = list(db.session.scalars(select(MicroTask).where(MicroTask.project_id == project_id,
                                                               MicroTask.is_qualification.is_(False))))
        assert row["micro_tasks"] == len(mts) == 3
        assert row["done"] == sum(mt.status == "done" for mt in mts) == 1
        assert row["waiting"] == sum(mt.status == "open" and mt.taken < mt.overlap for mt in mts) == 2
        assert row["leased"] == 1 and row["leases"] == 1
        assert row["dispatch_waiting"] == 2
    assert [lease["assignment_id"] for lease in body["leases"]] == [held["assignment_id"]]
    page = client.get("/console/queues").get_data(as_text=True)
    assert f'data-project="{project_id}"' in page and first.person.email not in page  # names, not emails


def test_failed_background_jobs_are_listed_with_their_error_and_retried(app, client, auth, operator, teams, run_jobs):
    requester = teams.requester()
    project = client.post("/api/projects/", headers=requester.headers, json={
        "title": "Draft", "label_config": "<View><Text name='text' value='$text'/><Choices name='c' toName='text'>"
                                          "<Choice value='A'/><Choice value='B'/></Choices></View>",
        "items_per_micro_task": 2}).get_json()
    assert client.post(f"/api/projects/{project['id']}/import", headers=requester.headers,
                       json=[{"text": "one"}, {"text": "two"}, {"text": "three"}]).status_code == 201
    run_jobs()
    with app.app_context(), db.transaction() as session:
        # What a split that died on a lost database connection leaves behind.
        session.add(BackgroundJob(rq_id="split-lost", kind="split", project_id=project["id"], status="failed",
                                  error="the split stopped on an internal error (OperationalError)"))
        session.add(BackgroundJob(rq_id="import-bad", kind="import", project_id=project["id"], status="failed",
                                  error="1 problem found; nothing was stored",
                                  errors=[{"line": 3, "message": "no text"}]))
    auth.login(operator)
    page = client.get("/console/jobs").get_data(as_text=True)
    assert "the split stopped on an internal error (OperationalError)" in page
    assert "line 3" in page and "no text" in page and "upload a fixed file" in page
    with app.app_context():
        split_id, import_id = (db.session.scalar(select(BackgroundJob.id).where(BackgroundJob.rq_id == r))
                               for r in ("split-lost", "import-bad"))

    refused = client.post(f"/console/jobs/{import_id}/retry")
    assert refused.status_code == 302
    assert "a retry changes nothing" in client.get("/console/jobs").get_data(as_text=True)

    assert client.post(f"/console/jobs/{split_id}/retry").status_code == 302
    with app.app_context():
        assert queue().job_ids == ["split-lost"]
    run_jobs()
    with app.app_context():
        job = db.session.get(BackgroundJob, split_id)
        assert job.status == "finished" and job.result["micro_tasks"] == 2
    assert "the split stopped" not in client.get("/console/jobs").get_data(as_text=True)


# --- the audit log ---------------------------------------------------------------------------


def test_the_audit_log_is_filtered(app, client, auth, operator, reviewed, people):
    c = reviewed.assignments[reviewed.workers[2].id]
    with app.app_context():
        reviews.reject(reviewed.requester.person.id, c, "incomplete work", "half done")
    spammer = people.make(email="spammer@example.org")
    auth.login(operator)
    client.post(f"/console/annotators/{spammer.id}/block", data={"reason": "spam"})

    everything = client.get("/console/audit").get_data(as_text=True)
    assert "block_user" in everything and "reject_assignment" in everything and "half done" in everything
    only_blocks = client.get("/console/audit?action=block_user").get_data(as_text=True)
    assert "block_user" in only_blocks and "half done" not in only_blocks
    by_requester = client.get("/console/audit?actor=" + reviewed.requester.person.email).get_data(as_text=True)
    assert "half done" in by_requester and ">spam<" not in by_requester
    on_target = client.get(f"/console/audit?target_type=assignment&target_id={c}").get_data(as_text=True)
    assert "half done" in on_target and "block_user</span>" not in on_target
    tomorrow = (utcnow() + dt.timedelta(days=1)).strftime("%Y-%m-%d")
    assert "half done" not in client.get(f"/console/audit?since={tomorrow}").get_data(as_text=True)
    today = utcnow().strftime("%Y-%m-%d")
    assert "half done" in client.get(f"/console/audit?since={today}&until={today}").get_data(as_text=True)
    bad = client.get("/console/audit?since=yesterday")
    assert bad.status_code == 400 and "since must be a date" in bad.get_data(as_text=True)


def test_a_failed_background_job_rq_still_holds_is_requeued_not_enqueued_twice(app, client, auth, operator, run_jobs):
    with app.app_context():
        enqueue("tasks.jobs.split_project", 999, job_id="split-gone", retries=0)
    run_jobs()
    with app.app_context():
        # The failure callback wrote the row, with what to run again.
        row = db.session.scalar(select(BackgroundJob).where(BackgroundJob.rq_id == "split-gone"))
        assert row.status == "failed" and row.error == "NotFound: no background job 999"
        assert row.params == {"function": "tasks.jobs.split_project", "args": [999]}
        job_id = row.id
        assert console.retry_background_job(operator.id, job_id) == "requeued"
        assert queue().job_ids == ["split-gone"]
        # Queued already: a second retry is refused rather than run twice.
        with pytest.raises(Conflict, match="is queued, not failed"):
            console.retry_background_job(operator.id, job_id)
        assert queue().job_ids == ["split-gone"]


def test_rq_workers_are_listed(app, client, auth, operator):
    from rq import Worker

    auth.login(operator)
    assert "No RQ worker is running" in client.get("/console/queues").get_data(as_text=True)
    with app.app_context():
        worker = Worker([queue()], connection=queue().connection)
        worker.register_birth()
    try:
        page = client.get("/console/queues").get_data(as_text=True)
        assert worker.name in page and "No RQ worker is running" not in page
    finally:
        with app.app_context():
            worker.register_death()
