"""The ledger and the fair-pay floor: exact to the cent, never paid twice."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from annotate.extensions import db
from annotate.models import LedgerEntry
from annotate.services import pay, reviews, scoring
from tests.conftest import choice

P, N, U = "Positive", "Negative", "Neutral"


def _ledger(app, kind=None):
    with app.app_context():
        stmt = select(LedgerEntry.idempotency_key, LedgerEntry.amount, LedgerEntry.assignment_id)
        if kind:
            stmt = stmt.where(LedgerEntry.kind == kind)
        rows = [tuple(r) for r in db.session.execute(stmt.order_by(LedgerEntry.id))]
        db.session.rollback()
        return rows


def _paid(app, assignment_id):
    with app.app_context():
        rows = db.session.execute(select(LedgerEntry.kind, LedgerEntry.amount)
                                  .where(LedgerEntry.assignment_id == assignment_id)).all()
        db.session.rollback()
    return sum(amount for kind, amount in rows if kind in ("earning", "top_up"))


def test_an_entry_with_a_known_key_is_never_written_twice(app, work):
    (a,) = work.annotators(1)
    with app.app_context():
        with db.transaction() as session:
            assert pay.add_entry(session, key="adjustment:test:1", annotator_id=a, kind="adjustment", amount=150,
                                 currency="EUR", memo="correction")
            assert not pay.add_entry(session, key="adjustment:test:1", annotator_id=a, kind="adjustment",
                                     amount=150, currency="EUR")
        with db.transaction() as session, pytest.raises(ValueError, match="minor units"):
            pay.add_entry(session, key="adjustment:test:2", annotator_id=a, kind="adjustment", amount=1.5,
                          currency="EUR")
    assert _ledger(app) == [("adjustment:test:1", 150, None)]


@pytest.fixture
def slow(app, work):
    """25 cents for two minutes of work: 7.50 an hour, below the 12.00 floor."""
    project_id = work.project(pay_per_micro_task=25, approve_quality_threshold=0.7)
    a, b, c = work.annotators(3)
    done = work.micro_task(project_id, {a: [choice(P)] * 6, b: [choice(P)] * 3 + [choice(N)] * 3,
                                        c: [choice(N)] * 3 + [choice(P)] * 3}, seconds=120)
    with app.app_context():
        # Every consensus is Positive: a agrees 6 of 6 (quality 0.8, approved), b and c 3 of 6 (0.5, pending).
        scoring.score_micro_task(done.micro_task_id)
    return project_id, (a, b, c), done


def test_top_ups_bring_approved_work_to_the_floor_once(app, work, slow):
    project_id, (a, b, c), done = slow
    with app.app_context():
        first = pay.fair_pay_top_ups(project_id)
        again = pay.fair_pay_top_ups(project_id)

    # 1200 an hour for a median of 120 s is 40 cents: 15 on top of 25.
    assert (first["rate"], first["floor"], first["median_seconds"], first["target"]) == (750, 1200, 120, 40)
    assert (first["entries"], first["amount"]) == (1, 15)
    ida = done.assignments[a]
    assert _ledger(app, "top_up") == [(f"top_up:assignment:{ida}:40", 15, ida)]
    assert (again["entries"], again["amount"]) == (0, 0)
    assert _paid(app, ida) == 40
    assert _paid(app, done.assignments[c]) == 0  # not approved: nothing to top up yet


def test_more_work_at_a_slower_median_adds_only_the_difference(app, work, slow):
    project_id, (a, b, c), done = slow
    with app.app_context():
        pay.fair_pay_top_ups(project_id)
        reviews.approve(work.requester.person.id, done.assignments[b])
    d, e, f = work.annotators(3)
    later = work.micro_task(project_id, {w: [choice(U)] * 6 for w in (d, e, f)}, seconds=180)
    with app.app_context():
        scoring.score_micro_task(later.micro_task_id)
        summary = pay.fair_pay_top_ups(project_id)

    # Median of 120, 120, 120, 180, 180, 180 is 150 s: 50 cents per micro-task.
    assert (summary["median_seconds"], summary["target"]) == (150, 50)
    ida, idb = done.assignments[a], done.assignments[b]
    assert [(k, amount) for k, amount, _ in _ledger(app, "top_up") if k.endswith(":50")] == [
        (f"top_up:assignment:{ida}:50", 10), (f"top_up:assignment:{idb}:50", 25),
        *((f"top_up:assignment:{later.assignments[w]}:50", 25) for w in (d, e, f))]
    assert [_paid(app, done.assignments[w]) for w in (a, b, c)] == [50, 50, 0]
    assert [_paid(app, later.assignments[w]) for w in (d, e, f)] == [50, 50, 50]


def test_no_top_up_when_the_rate_meets_the_floor_or_there_is_no_floor(app, work):
    project_id = work.project(pay_per_micro_task=25, currency="USD")
    a, b = work.annotators(2)
    done = work.micro_task(project_id, {a: [choice(P)] * 6, b: [choice(P)] * 6}, seconds=60)
    with app.app_context():
        scoring.score_micro_task(done.micro_task_id)
        assert pay.fair_pay_top_ups(project_id)["why"] == "1500 per hour meets the floor of 1200"
        app.config["PAY_FLOORS"] = "EUR:1100"
        assert pay.fair_pay_top_ups(project_id)["why"] == "no pay floor for this currency"
    assert _ledger(app, "top_up") == []


def test_concurrent_top_ups_pay_once(app, slow):
    project_id, (a, _, _), done = slow
    start = threading.Barrier(2)
    errors = []

    def run():
        try:
            with app.app_context():
                start.wait()
                pay.fair_pay_top_ups(project_id)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [amount for _, amount, _ in _ledger(app, "top_up")] == [15]
    assert _paid(app, done.assignments[a]) == 40


def test_scoring_racing_the_review_window_pays_each_assignment_once(app, work):
    project_id = work.project(pay_per_micro_task=30)
    annotators = work.annotators(3)
    done = work.micro_task(project_id, {w: [choice(P)] * 5 for w in annotators},
                           submitted_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=4))
    start = threading.Barrier(2)
    errors = []

    def run(job):
        try:
            with app.app_context():
                start.wait()
                job()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in (
        lambda: scoring.score_micro_task(done.micro_task_id), lambda: reviews.approve_overdue())]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    earnings = _ledger(app, "earning")
    assert sorted(i for _, _, i in earnings) == sorted(done.assignments.values())
    assert sum(amount for _, amount, _ in earnings) == 90
