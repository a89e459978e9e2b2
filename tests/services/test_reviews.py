"""Requester review, appeals (requester first, then an operator) and the review window."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from annotate.extensions import db
from annotate.models import Appeal, Assignment, AuditEntry, LedgerEntry
from annotate.services import reviews, scoring
from annotate.services.errors import Conflict, Forbidden, Invalid, NotFound
from tests.conftest import choice

P, N = "Positive", "Negative"
NOW = dt.datetime(2030, 5, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def reviewed(app, work):
    """a's work is approved by scoring; b's and c's wait for review."""
    project_id = work.project(pay_per_micro_task=25, approve_quality_threshold=0.7)
    a, b, c = work.annotators(3)
    done = work.micro_task(project_id, {a: [choice(P)] * 6, b: [choice(P)] * 3 + [choice(N)] * 3,
                                        c: [choice(N)] * 3 + [choice(P)] * 3})
    with app.app_context():
        scoring.score_micro_task(done.micro_task_id)
    return project_id, (a, b, c), done


def _assignment(app, assignment_id):
    with app.app_context():
        row = db.session.get(Assignment, assignment_id)
        db.session.expunge_all()
        return row


def _earnings(app):
    with app.app_context():
        rows = [tuple(r) for r in db.session.execute(
            select(LedgerEntry.assignment_id, LedgerEntry.amount).where(LedgerEntry.kind == "earning")
            .order_by(LedgerEntry.assignment_id))]
        db.session.rollback()
        return rows


def _audit(app, action):
    with app.app_context():
        rows = [(e.actor_id, e.target_id, e.reason, e.details) for e in db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))]
        db.session.rollback()
        return rows


def test_requesters_of_the_team_see_the_work_waiting_for_them(app, work, teams, people, reviewed):
    project_id, (a, b, c), done = reviewed
    with app.app_context():
        waiting = reviews.pending_reviews(work.requester.person.id, project_id)
        assert [w["assignment_id"] for w in waiting] == [done.assignments[b], done.assignments[c]]
        assert waiting[0]["quality"] == pytest.approx(0.5)
        assert waiting[0]["rule"] == "quality 0.50 below the project's 0.70"
        assert waiting[0]["approve_by"] - waiting[0]["submitted_at"] == dt.timedelta(days=3)
        assert waiting[0]["explanation"].startswith("0.50: 0 of 0 gold items right")

        outsider = teams.requester("Audio")
        with pytest.raises(NotFound):
            reviews.pending_reviews(outsider.person.id, project_id)
        with pytest.raises(NotFound):
            reviews.pending_reviews(a, project_id)  # an annotator
        with pytest.raises(Forbidden):
            reviews.pending_reviews(teams.operator.id, project_id)  # may see it, not review it
        with pytest.raises(NotFound):
            reviews.approve(outsider.person.id, done.assignments[b])


def test_approving_pays_once(app, work, reviewed):
    _, (a, b, c), done = reviewed
    requester = work.requester.person.id
    with app.app_context():
        reviews.approve(requester, done.assignments[b], "fine after all")
        with pytest.raises(Conflict, match="approved already"):
            reviews.approve(requester, done.assignments[b])
        with pytest.raises(Conflict, match="approved already"):
            reviews.approve(requester, done.assignments[a])

    approved = _assignment(app, done.assignments[b])
    assert (approved.decision, approved.decision_rule, approved.decision_reason, approved.decided_by_id) == (
        "approved", "approved_by_requester", "fine after all", requester)
    assert _earnings(app) == [(done.assignments[a], 25), (done.assignments[b], 25)]


def test_a_rejection_must_name_its_rule(app, work, reviewed):
    _, (a, b, c), done = reviewed
    requester = work.requester.person.id
    with app.app_context():
        with pytest.raises(Invalid, match="name the rule"):
            reviews.reject(requester, done.assignments[b], " ", "careless")
        with pytest.raises(Conflict, match="only pending work"):
            reviews.reject(requester, done.assignments[a], "spam", "")  # approved and paid: final
        reviews.reject(requester, done.assignments[b], "ignored the instructions", "half the labels are random")

    rejected = _assignment(app, done.assignments[b])
    assert (rejected.decision, rejected.decision_rule, rejected.decision_reason) == (
        "rejected", "ignored the instructions", "half the labels are random")
    assert _audit(app, "reject_assignment") == [
        (requester, done.assignments[b], "half the labels are random", {"rule": "ignored the instructions"})]
    assert _earnings(app) == [(done.assignments[a], 25)]


def _reject(app, work, assignment_id, at=NOW):
    with app.app_context():
        reviews.reject(work.requester.person.id, assignment_id, "ignored the instructions", "random labels")
        with db.transaction() as session:  # as if rejected at `at`
            session.get(Assignment, assignment_id).decided_at = at


def test_a_worker_appeals_within_seven_days_and_the_requester_grants_it(app, work, reviewed):
    _, (a, b, c), done = reviewed
    idb = done.assignments[b]
    _reject(app, work, idb)
    with app.app_context():
        with pytest.raises(NotFound):
            reviews.appeal(c, idb, "not mine to appeal", now=NOW)
        with pytest.raises(Conflict, match="only a rejection"):
            reviews.appeal(a, done.assignments[a], "paid already", now=NOW)
        with pytest.raises(Conflict, match="7 days"):
            reviews.appeal(b, idb, "too late", now=NOW + dt.timedelta(days=7, seconds=1))
        appeal_id = reviews.appeal(b, idb, "I followed the guide", now=NOW + dt.timedelta(days=7))
        with pytest.raises(Conflict, match="already"):
            reviews.appeal(b, idb, "again", now=NOW)
        assert [x["appeal_id"] for x in reviews.open_appeals(work.requester.person.id, _project(app, idb))] == [
            appeal_id]

        with pytest.raises(Conflict, match="requester first"):
            reviews.decide_appeal(work.operator.id, appeal_id, True, "looks right")
        assert reviews.answer_appeal(work.requester.person.id, appeal_id, True, "you are right") == "granted"
        with pytest.raises(Conflict):
            reviews.answer_appeal(work.requester.person.id, appeal_id, True, "twice")

    paid = _assignment(app, idb)
    assert (paid.decision, paid.decision_rule) == ("approved", "appeal_granted_by_requester")
    assert _earnings(app) == [(done.assignments[a], 25), (idb, 25)]


def _project(app, assignment_id):
    return _assignment(app, assignment_id).project_id


def test_a_refused_appeal_goes_to_an_operator_whose_decision_is_final(app, work, people, reviewed):
    _, (a, b, c), done = reviewed
    idb, idc = done.assignments[b], done.assignments[c]
    requester, operator = work.requester.person.id, work.operator.id
    _reject(app, work, idb, at=dt.datetime.now(dt.UTC))
    _reject(app, work, idc, at=dt.datetime.now(dt.UTC))
    with app.app_context():
        appeal_b = reviews.appeal(b, idb, "I followed the guide")
        appeal_c = reviews.appeal(c, idc, "so did I")
        with pytest.raises(Invalid, match="why"):
            reviews.answer_appeal(requester, appeal_b, False, "")
        assert reviews.answer_appeal(requester, appeal_b, False, "the labels are random") == "escalated"
        assert reviews.answer_appeal(requester, appeal_c, False, "the labels are random") == "escalated"
        assert [x["appeal_id"] for x in reviews.escalated_appeals(operator)] == [appeal_b, appeal_c]

        with pytest.raises(Forbidden):
            reviews.decide_appeal(requester, appeal_b, True, "I am no operator")
        assert reviews.decide_appeal(operator, appeal_b, True, "the guide allowed these labels") == "granted"
        assert reviews.decide_appeal(operator, appeal_c, False, "the labels contradict the text") == "refused"
        with pytest.raises(Conflict, match="final"):
            reviews.decide_appeal(operator, appeal_c, True, "changed my mind")
        rows = {r.id: r for r in db.session.scalars(select(Appeal))}
        assert (rows[appeal_b].status, rows[appeal_b].requester_response, rows[appeal_b].operator_response) == (
            "granted", "the labels are random", "the guide allowed these labels")
        assert rows[appeal_c].decided_by_id == operator

    assert (_assignment(app, idb).decision, _assignment(app, idb).decision_rule) == (
        "approved", "appeal_granted_by_operator")
    assert _assignment(app, idc).decision == "rejected"
    assert _earnings(app) == [(done.assignments[a], 25), (idb, 25)]
    assert [(actor, target, reason, d["granted"], d["final"]) for actor, target, reason, d in
            _audit(app, "decide_appeal")] == [
        (operator, appeal_b, "the guide allowed these labels", True, True),
        (operator, appeal_c, "the labels contradict the text", False, True)]


def test_work_left_pending_past_the_review_window_is_approved(app, work):
    project_id = work.project(pay_per_micro_task=25, review_window_seconds=3 * 86400)
    a, b = work.annotators(2)
    old = work.micro_task(project_id, {a: [choice(P)], b: [choice(N)]}, submitted_at=NOW - dt.timedelta(days=3))
    new = work.micro_task(project_id, {a: [choice(P)], b: [choice(N)]},
                          submitted_at=NOW - dt.timedelta(days=2, hours=23))
    with app.app_context():
        assert reviews.approve_overdue(NOW) == 2
        assert reviews.approve_overdue(NOW) == 0

    overdue = _assignment(app, old.assignments[a])
    assert (overdue.decision, overdue.decision_rule, overdue.decided_at) == ("approved", "review_window_passed", NOW)
    assert overdue.decision_reason == "not reviewed within the project's review window of 3 days, so approved"
    assert {_assignment(app, i).decision for i in new.assignments.values()} == {"pending"}
    assert _earnings(app) == sorted((i, 25) for i in old.assignments.values())
