"""The numbers behind the console's charts, checked against the database:
project progress over time, and the fairness report; and the Gini
coefficient and top share on known values."""
from __future__ import annotations

import datetime as dt
import itertools
import random

import numpy as np
import pytest
from sqlalchemy import select, update

from annotate.extensions import db
from annotate.models import Annotation, Assignment, Item, ItemScore, LedgerEntry, MicroTask, MicroTaskItem
from annotate.services import reviews
from annotate.services.fairness import gini, top_share
from tests.web.test_reviews import label_one_micro_task
from tests.work.conftest import annotators, projects  # noqa: F401 (fixtures)

T0 = dt.datetime(2030, 5, 1, 9, 5, tzinfo=dt.UTC)


@pytest.fixture
def operator(teams, people):
    if teams.operator is None:
        teams.operator = people.make("operator")
    return teams.operator


# --- Gini and top share ----------------------------------------------------------------------


def test_gini_on_known_values():
    assert gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 1]) == pytest.approx(0.75)  # (n - 1) / n: one holds everything
    assert gini([1, 2, 3, 4, 5]) == pytest.approx(4 / 15)
    assert gini([1, 3]) == pytest.approx(0.25)
    assert gini([]) == 0.0 and gini([0, 0]) == 0.0
    assert gini([3, 1, 2]) == gini([1, 2, 3])  # order does not matter
    with pytest.raises(ValueError):
        gini([1, -1])


def test_gini_is_the_mean_absolute_difference_over_twice_the_mean():
    rng = random.Random(7)
    for n in (2, 7, 50):
        x = [rng.randint(0, 100) for _ in range(n)]
        mad = sum(abs(a - b) for a, b in itertools.product(x, x)) / (n * n)
        assert gini(x) == pytest.approx(mad / (2 * np.mean(x)))


def test_top_share_on_known_values():
    assert top_share([10] + [1] * 9) == pytest.approx(10 / 19)  # the top 10% of 10 is one
    assert top_share(list(range(1, 21))) == pytest.approx((20 + 19) / 210)  # of 20, two
    assert top_share([4, 4, 4]) == pytest.approx(1 / 3)  # at least one holder
    assert top_share([1, 1, 1, 1], fraction=0.5) == pytest.approx(0.5)
    assert top_share([]) == 0.0


# --- project progress ------------------------------------------------------------------------


def _two_micro_tasks_at_known_times(app, projects, annotators, run_jobs) -> int:
    project_id = projects.live(items=4, overlap=2, per_task=2)
    first, second = annotators(2)
    for worker, labels in ((first, ("Positive", "Positive")), (second, ("Positive", "Negative"))):
        for label in labels:
            worker.submit(worker.next(project_id).get_json(), label)
    run_jobs()
    # Move the work to known hours: the first micro-task done at 09:10, the second at 12:40.
    with app.app_context(), db.transaction() as session:
        mts = list(session.scalars(select(MicroTask).where(MicroTask.project_id == project_id).order_by(MicroTask.seq)))
        for mt, at in zip(mts, (T0, T0 + dt.timedelta(hours=3, minutes=25))):
            assert mt.status == "done"
            mt.done_at = at + dt.timedelta(minutes=5)
            ids = select(Assignment.id).where(Assignment.micro_task_id == mt.id)
            session.execute(update(Annotation).where(Annotation.assignment_id.in_(ids)).values(created_at=at))
    return project_id


def _expected(app, project_id: int, unit: str) -> dict:
    """The same numbers, counted in Python from the rows."""
    def floor(moment):
        moment = moment.replace(minute=0, second=0, microsecond=0)
        return moment.replace(hour=0) if unit == "day" else moment

    with app.app_context():
        session = db.session
        labels: dict = {}
        for (created,) in session.execute(select(Annotation.created_at).join(Assignment)
                                          .where(Assignment.project_id == project_id)):
            labels[floor(created)] = labels.get(floor(created), 0) + 1
        done: dict = {}
        agreements: dict = {}
        for done_at, item_id in session.execute(
                select(MicroTask.done_at, Item.id).join(MicroTaskItem, MicroTaskItem.micro_task_id == MicroTask.id)
                .join(Item, Item.id == MicroTaskItem.item_id)
                .where(MicroTask.project_id == project_id, MicroTask.status == "done", Item.is_gold.is_(False))):
            done[floor(done_at)] = done.get(floor(done_at), 0) + 1
            score = session.get(ItemScore, item_id)
            agreements.setdefault(floor(done_at), []).append(score.agreement)
        session.rollback()
    return {"labels": labels, "done": done, "agreement": {k: float(np.mean(v)) for k, v in agreements.items()}}


def test_progress_per_hour_matches_the_database(app, client, auth, operator, projects, annotators, run_jobs):
    project_id = _two_micro_tasks_at_known_times(app, projects, annotators, run_jobs)
    auth.login(operator)
    body = client.get(f"/api/console/projects/{project_id}/progress").get_json()
    assert body["bucket"] == "hour" and body["bucket_hours"] == 1
    expected = _expected(app, project_id, "hour")
    stamps = [p["t"] for p in body["points"]]
    assert stamps == ["2030-05-01T09:00:00Z", "2030-05-01T10:00:00Z", "2030-05-01T11:00:00Z", "2030-05-01T12:00:00Z"]
    running = 0
    for point in body["points"]:
        moment = dt.datetime.fromisoformat(point["t"].replace("Z", "+00:00"))
        running += expected["done"].get(moment, 0)
        assert point["labels"] == expected["labels"].get(moment, 0)
        assert point["labels_per_hour"] == expected["labels"].get(moment, 0)
        assert point["items_done"] == expected["done"].get(moment, 0)
        assert point["items_done_total"] == running
        if moment in expected["agreement"]:
            assert point["agreement"] == pytest.approx(expected["agreement"][moment], abs=1e-4)
        else:
            assert point["agreement"] is None
    assert [p["labels"] for p in body["points"]] == [4, 0, 0, 4]
    assert body["totals"] == {"items": 4, "items_done": 4, "labels": 8, "agreement": pytest.approx(
        np.mean([a for v in expected["agreement"].values() for a in [v, v]]), abs=1e-4)}


def test_progress_per_day_and_bad_buckets(app, client, auth, operator, projects, annotators, run_jobs):
    project_id = _two_micro_tasks_at_known_times(app, projects, annotators, run_jobs)
    auth.login(operator)
    body = client.get(f"/api/console/projects/{project_id}/progress?bucket=day").get_json()
    assert body["bucket_hours"] == 24
    [point] = body["points"]
    assert (point["t"], point["labels"], point["items_done_total"]) == ("2030-05-01T00:00:00Z", 8, 4)
    assert point["labels_per_hour"] == pytest.approx(8 / 24, abs=1e-3)
    with app.app_context():
        all_scores = [s.agreement for s in db.session.scalars(select(ItemScore).where(ItemScore.project_id == project_id))]
    assert point["agreement"] == pytest.approx(np.mean(all_scores), abs=1e-4)
    bad = client.get(f"/api/console/projects/{project_id}/progress?bucket=week")
    assert bad.status_code == 400 and "bucket must be hour or day" in bad.get_json()["detail"]
    assert client.get("/api/console/projects/999/progress").status_code == 404


def test_a_project_without_work_has_no_points(app, client, auth, operator, projects):
    project_id = projects.live(items=2, overlap=1, per_task=2)
    auth.login(operator)
    body = client.get(f"/api/console/projects/{project_id}/progress").get_json()
    assert body["points"] == [] and body["totals"] == {"items": 2, "items_done": 0, "labels": 0, "agreement": None}


# --- fairness ------------------------------------------------------------------------------


def test_fairness_numbers_match_the_ledger_and_the_decisions(app, client, auth, operator, projects, annotators,
                                                             run_jobs):
    done = label_one_micro_task(app, projects, annotators, run_jobs)
    a, b, c = (done.assignments[w.id] for w in done.workers)
    requester = done.requester.person.id
    with app.app_context():
        reviews.approve(requester, a)
        reviews.reject(requester, c, "random or careless answers", "")
        appeal_id = reviews.appeal(done.workers[2].id, c, "it is right")
        reviews.answer_appeal(requester, appeal_id, False, "no")
        reviews.decide_appeal(operator.id, appeal_id, False, "upheld")

    auth.login(operator)
    report = client.get("/api/console/fairness").get_json()
    [usd] = report["currencies"]
    with app.app_context():
        session = db.session
        expected = {}
        for row in session.scalars(select(Assignment).where(Assignment.decision.in_(("approved", "rejected")))):
            earned = sum(session.scalars(select(LedgerEntry.amount).where(LedgerEntry.assignment_id == row.id)))
            expected[row.annotator_id] = (earned, row.active_seconds, int(earned * 3600 // row.active_seconds))
        session.rollback()
    got = {x["annotator_id"]: (x["earned"], x["seconds"], x["rate"]) for x in usd["annotators"]}
    assert got == expected
    assert sorted(r for _, _, r in expected.values()) == [0, 50 * 3600 // 6]  # b's pending work is not counted
    assert usd["floor"] == 1200 and usd["below_floor"] == 1
    assert usd["median_rate"] == (50 * 3600 // 6) // 2
    assert sum(bin_["count"] for bin_ in usd["histogram"]) == 2
    assert usd["histogram"][0] == {"low": 0, "high": 300, "count": 1, "below_floor": True}
    assert usd["histogram"][-1] == {"low": 3600, "high": None, "count": 1, "below_floor": False}

    [project] = report["projects"]
    assert (project["earned"], project["seconds"], project["annotators"]) == (50, 12.0, 2)
    assert project["rate"] == 50 * 3600 // 12

    work = report["work"]
    assert (work["annotators"], work["submissions"], work["top_10_percent"]) == (3, 3, 1)
    assert work["top_10_share"] == pytest.approx(1 / 3) and work["gini"] == pytest.approx(0.0)
    assert work["earnings_gini"] == pytest.approx(2 / 3)  # 50 cents to one of three
    assert work["earnings_top_10_share"] == pytest.approx(1.0)

    [by_requester] = report["requesters"]
    assert by_requester == {"requester_id": requester, "name": "Test Person", "decisions": 2, "rejected": 1,
                            "appealed": 1, "overturned": 0, "rejection_rate": 0.5}
    assert report["rules"] == [{"rule": "random or careless answers", "rejected": 1, "appealed": 1, "overturned": 0}]

    page = client.get("/console/fairness").get_data(as_text=True)
    assert "1</strong> of 2 annotators below the floor" in page
    assert "12.00 USD</strong> pay floor an hour" in page
    assert 'data-histogram="USD"' in page and "random or careless answers" in page


def test_a_project_paying_below_the_floor_shows(app, client, auth, operator, projects, annotators, run_jobs):
    # Ten minutes an item for 50 cents a micro-task of two: 1.50 USD an hour.
    done = label_one_micro_task(app, projects, annotators, run_jobs, seconds=600)
    with app.app_context():
        for assignment_id in done.assignments.values():
            reviews.approve(done.requester.person.id, assignment_id)
    auth.login(operator)
    report = client.get("/api/console/fairness").get_json()
    [project] = report["projects"]
    assert project["rate"] == 150 and project["below_floor"] == 3 and project["floor"] == 1200
    assert report["currencies"][0]["histogram"][0]["count"] == 3
    page = client.get("/console/fairness").get_data(as_text=True)
    assert "1.50 USD/h" in page and 'class="below"' in page
