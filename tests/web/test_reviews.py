"""Requesters review their team's submitted work in the browser pages: the
queue, the answers beside consensus and gold, approve, reject naming the
rule, and answering appeals. Others are refused."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from annotate.extensions import db
from annotate.models import Appeal, Assignment, AuditEntry, LedgerEntry
from annotate.services import reviews
from tests.work.conftest import Annotator, Projects, annotators, projects  # noqa: F401 (fixtures)


@dataclass
class Reviewed:
    project_id: int
    projects: Projects
    workers: list[Annotator]
    assignments: dict[int, int]  # annotator id -> assignment id

    @property
    def requester(self):
        return self.projects.requester


def label_one_micro_task(app, projects, annotators, run_jobs, labels=("Positive", "Positive", "Negative"),
                         seconds: float = 3.0, **live) -> Reviewed:
    """Three annotators label the one micro-task of a new project; scoring runs.

    With three answers the quality prior keeps everyone below the default
    threshold of 0.7, so all three wait for the requester's review.
    """
    settings = {"items": 2, "overlap": 3, "per_task": 2, **live}
    project_id = projects.live(**settings)
    workers = annotators(len(labels))
    ids = {}
    for worker, label in zip(workers, labels):
        work = worker.next(project_id).get_json()
        assert worker.submit(work, label, seconds=seconds).status_code == 200
        ids[worker.id] = work["assignment_id"]
    run_jobs()
    return Reviewed(project_id, projects, workers, ids)


@pytest.fixture
def reviewed(app, projects, annotators, run_jobs) -> Reviewed:
    done = label_one_micro_task(app, projects, annotators, run_jobs)
    assert decisions(app, done) == ["pending", "pending", "pending"]
    return done


def decisions(app, done: Reviewed) -> list[str]:
    with app.app_context():
        out = [db.session.get(Assignment, i).decision for i in done.assignments.values()]
        db.session.rollback()
        return out


def assignment(app, assignment_id: int) -> Assignment:
    with app.app_context():
        row = db.session.get(Assignment, assignment_id)
        db.session.expunge_all()
        return row


def earnings(app, assignment_id: int) -> list[int]:
    with app.app_context():
        amounts = list(db.session.scalars(select(LedgerEntry.amount).where(
            LedgerEntry.assignment_id == assignment_id, LedgerEntry.kind == "earning")))
        db.session.rollback()
        return amounts


def audit_actions(app) -> list[tuple[str, int, int]]:
    with app.app_context():
        rows = [(e.action, e.actor_id, e.target_id) for e in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
        db.session.rollback()
        return rows


# --- the queue ------------------------------------------------------------------------


def test_a_requester_sees_the_work_waiting_and_each_answer_beside_the_consensus(client, auth, reviewed):
    a, b, c = (reviewed.assignments[w.id] for w in reviewed.workers)
    auth.login(reviewed.requester.person)

    index = client.get("/reviews/").get_data(as_text=True)
    assert "Sentiment" in index and f"/reviews/projects/{reviewed.project_id}" in index

    queue = client.get(f"/reviews/projects/{reviewed.project_id}")
    assert queue.status_code == 200
    page = queue.get_data(as_text=True)
    assert "Waiting for review (3)" in page
    for assignment_id in (a, b, c):
        assert f"/reviews/assignments/{assignment_id}" in page

    # c answered Negative where the others said Positive: their answers differ from the consensus.
    page = client.get(f"/reviews/assignments/{c}").get_data(as_text=True)
    assert "item 0" in page and "item 1" in page
    assert page.count("sentiment: Negative") == 2  # c's own answer on both items
    assert "sentiment: Positive" in page  # the consensus and the other two
    assert page.count("✗ differs") == 2
    assert "sentiment: expected Positive, this annotator chose Negative" in page
    assert 'name="rule"' in page and "ignored the instructions" in page  # rules offered

    page = client.get(f"/reviews/assignments/{a}").get_data(as_text=True)
    assert page.count("✓ agrees") == 2 and "✗ differs" not in page


def test_gold_answers_are_shown_beside_the_annotators_answer(client, auth, projects, annotators, run_jobs, app):
    done = label_one_micro_task(app, projects, annotators, run_jobs, labels=("Negative", "Negative", "Negative"),
                                items=2, per_task=3, gold=1, gold_share=0.34)
    auth.login(done.requester.person)
    page = client.get(f"/reviews/assignments/{done.assignments[done.workers[0].id]}").get_data(as_text=True)
    assert "gold</span>" in page  # the gold item is marked
    assert "sentiment: expected Positive, this annotator chose Negative" in page
    assert "gold items right" in page


# --- decisions ------------------------------------------------------------------------


def test_approving_pays_the_worker_and_leaves_the_queue(client, auth, reviewed, app):
    a = reviewed.assignments[reviewed.workers[0].id]
    auth.login(reviewed.requester.person)
    response = client.post(f"/reviews/assignments/{a}/approve", data={"reason": "fine"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/reviews/projects/{reviewed.project_id}")
    assert earnings(app, a) == [50]
    row = assignment(app, a)
    assert (row.decision, row.decision_rule, row.decision_reason) == ("approved", "approved_by_requester", "fine")
    queue = client.get(f"/reviews/projects/{reviewed.project_id}").get_data(as_text=True)
    assert "Waiting for review (2)" in queue and f"/reviews/assignments/{a}\"" not in queue
    # Approving twice is refused in words, and pays nothing more.
    again = client.post(f"/reviews/assignments/{a}/approve")
    assert again.status_code == 409 and "approved already" in again.get_data(as_text=True)
    assert earnings(app, a) == [50]


def test_a_rejection_names_its_rule_and_the_worker_may_appeal(client, auth, reviewed, app):
    worker = reviewed.workers[2]
    c = reviewed.assignments[worker.id]
    auth.login(reviewed.requester.person)

    refused = client.post(f"/reviews/assignments/{c}/reject", data={"rule": " ", "reason": "careless"})
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert "name the rule the rejection rests on" in page and "careless" in page  # the input is kept
    assert assignment(app, c).decision == "pending"

    response = client.post(f"/reviews/assignments/{c}/reject",
                           data={"rule": "random or careless answers", "reason": "both labels contradict the text"})
    assert response.status_code == 302
    row = assignment(app, c)
    assert (row.decision, row.decision_rule, row.decision_reason) == (
        "rejected", "random or careless answers", "both labels contradict the text")
    assert earnings(app, c) == []
    assert ("reject_assignment", reviewed.requester.person.id, c) in audit_actions(app)

    # The worker appeals (their page is elsewhere; the service is what it calls).
    with app.app_context():
        appeal_id = reviews.appeal(worker.id, c, "the text is sarcastic: it is negative")
    queue = client.get(f"/reviews/projects/{reviewed.project_id}").get_data(as_text=True)
    assert "Appeals waiting for you (1)" in queue and "the text is sarcastic" in queue
    page = client.get(f"/reviews/assignments/{c}").get_data(as_text=True)
    assert "The worker wrote:" in page and f"/reviews/assignments/{c}/appeals/{appeal_id}" in page

    # Refusing needs words; then it goes to an operator.
    refused = client.post(f"/reviews/assignments/{c}/appeals/{appeal_id}", data={"grant": "0", "response": ""})
    assert refused.status_code == 400 and "say why the appeal is refused" in refused.get_data(as_text=True)
    response = client.post(f"/reviews/assignments/{c}/appeals/{appeal_id}",
                           data={"grant": "0", "response": "the rule is clear"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Appeal, appeal_id).status == "escalated"
    follow = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "goes to an operator" in follow
    # Answered already: the page offers no more buttons, and a second answer is refused.
    page = client.get(f"/reviews/assignments/{c}").get_data(as_text=True)
    assert "an operator decides it" in page and 'name="grant"' not in page
    again = client.post(f"/reviews/assignments/{c}/appeals/{appeal_id}", data={"grant": "1", "response": "ok"})
    assert again.status_code == 409


def test_granting_an_appeal_approves_and_pays(client, auth, reviewed, app):
    worker = reviewed.workers[2]
    c = reviewed.assignments[worker.id]
    auth.login(reviewed.requester.person)
    client.post(f"/reviews/assignments/{c}/reject", data={"rule": "failed the gold checks", "reason": ""})
    with app.app_context():
        appeal_id = reviews.appeal(worker.id, c, "there were no gold items")
    response = client.post(f"/reviews/assignments/{c}/appeals/{appeal_id}",
                           data={"grant": "1", "response": "you are right"})
    assert response.status_code == 302
    row = assignment(app, c)
    assert (row.decision, row.decision_rule) == ("approved", "appeal_granted_by_requester")
    assert earnings(app, c) == [50]
    # An appeal id that is not this assignment's is not found.
    assert client.post(f"/reviews/assignments/{reviewed.assignments[worker.id] - 1}/appeals/{appeal_id}",
                       data={"grant": "1"}).status_code == 404


# --- who may ------------------------------------------------------------------------------


def test_only_requesters_of_the_team_review(client, auth, reviewed, teams, people, app):
    a = reviewed.assignments[reviewed.workers[0].id]
    pages = [("GET", f"/reviews/projects/{reviewed.project_id}"), ("GET", f"/reviews/assignments/{a}"),
             ("POST", f"/reviews/assignments/{a}/approve"), ("POST", f"/reviews/assignments/{a}/reject"),
             ("POST", f"/reviews/assignments/{a}/appeals/1")]
    form = {"rule": "spam", "reason": "x", "grant": "1", "response": "x"}

    # A requester of another team: the project and its work do not exist for them.
    outsider = teams.requester("Audio")
    auth.login(outsider.person)
    assert "Sentiment" not in client.get("/reviews/").get_data(as_text=True)
    for method, path in pages:
        assert client.open(path, method=method, data=form).status_code == 404, path
    auth.logout()

    # Annotators and operators (who are not requesters) are refused outright.
    for person in (reviewed.workers[0].person, teams.operator):
        auth.login(person)
        for method, path in [("GET", "/reviews/"), *pages]:
            assert client.open(path, method=method, data=form).status_code == 403, (person, path)
        auth.logout()

    # Signed out: to the sign-in page.
    response = client.get(f"/reviews/assignments/{a}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]

    assert decisions(app, reviewed) == ["pending", "pending", "pending"]
    with app.app_context():
        assert db.session.scalar(select(func.count(LedgerEntry.id))) == 0


def test_the_reviews_link_is_for_requesters(client, auth, reviewed, teams):
    auth.login(reviewed.requester.person)
    assert 'href="/reviews/"' in client.get("/").get_data(as_text=True)
    auth.logout()
    auth.login(reviewed.workers[0].person)
    assert 'href="/reviews/"' not in client.get("/").get_data(as_text=True)


# --- the service functions these pages added ---------------------------------------------------


def test_review_services_refuse_those_they_are_not_for(app, reviewed, teams):
    from annotate.services.errors import Forbidden, NotFound

    a = reviewed.assignments[reviewed.workers[0].id]
    with app.app_context():
        with pytest.raises(NotFound):
            reviews.review_detail(reviewed.workers[0].id, a)  # an annotator, even their own work
        with pytest.raises(NotFound):
            reviews.review_detail(teams.requester("Audio").person.id, a)
        assert reviews.review_detail(teams.operator.id, a)["annotator_name"] == "Test Person"
        assert reviews.review_detail(reviewed.requester.person.id, a)["annotator_name"] is None
        with pytest.raises(Forbidden):
            reviews.overdue_reviews(reviewed.requester.person.id)
        with pytest.raises(Forbidden):
            reviews.approve_as_operator(reviewed.requester.person.id, a, "because")
        assert reviews.review_projects(reviewed.workers[0].id) == []
        [summary] = reviews.review_projects(reviewed.requester.person.id)
        assert (summary["pending"], summary["open_appeals"], summary["escalated_appeals"]) == (3, 0, 0)
