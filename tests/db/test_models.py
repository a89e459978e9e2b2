"""The constraints that carry the invariants, on whichever back end runs the tests."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.exc import IntegrityError, StatementError

from annotate.extensions import db
from annotate.models import (Annotation, Assignment, Item, LedgerEntry, MicroTask, Project, Team, User)


@pytest.fixture
def world(app, people):
    """A project with one micro-task and two annotators, built in the database."""
    annotator, other = people.make(), people.make()
    with app.app_context():
        with db.transaction() as session:
            team = Team(name="T")
            session.add(team)
            session.flush()
            project = Project(team_id=team.id, title="P", label_config="<View/>")
            session.add(project)
            session.flush()
            item = Item(project_id=project.id, data={"text": "x"}, content_hash=1)
            micro_task = MicroTask(project_id=project.id, seq=1, overlap=2)
            session.add_all([item, micro_task])
            session.flush()
            ids = {"project": project.id, "item": item.id, "micro_task": micro_task.id,
                   "annotator": annotator.id, "other": other.id}
    return ids


def _lease(world, annotator_key="annotator"):
    return Assignment(micro_task_id=world["micro_task"], annotator_id=world[annotator_key],
                      project_id=world["project"], lease_expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))


def test_timestamps_come_back_timezone_aware_utc(app, people):
    person = people.make()
    with app.app_context():
        moment = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
        with db.transaction() as session:
            session.get(User, person.id).last_login_at = moment
        db.session.expire_all()
        loaded = db.session.get(User, person.id).last_login_at
        assert loaded == moment and loaded.tzinfo is not None and loaded.utcoffset() == dt.timedelta(0)


def test_a_naive_timestamp_is_refused(app, people):
    person = people.make()
    with app.app_context():
        with pytest.raises(StatementError, match="naive datetime"):
            with db.transaction() as session:
                session.get(User, person.id).last_login_at = dt.datetime(2026, 1, 1)


def test_one_assignment_per_annotator_and_micro_task(app, world):
    with app.app_context():
        with db.transaction() as session:
            session.add(_lease(world))
        with pytest.raises(IntegrityError):
            with db.transaction() as session:
                session.add(_lease(world))
        with db.transaction() as session:
            session.add(_lease(world, "other"))  # a second annotator is fine
        assert db.session.query(Assignment).count() == 2


def test_one_annotation_per_assignment_and_item(app, world):
    with app.app_context():
        with db.transaction() as session:
            assignment = _lease(world)
            session.add(assignment)
            session.flush()
            session.add(Annotation(assignment_id=assignment.id, item_id=world["item"], result=[]))
        with pytest.raises(IntegrityError):
            with db.transaction() as session:
                session.add(Annotation(assignment_id=assignment.id, item_id=world["item"], result=[]))


def test_sql_refuses_more_slots_than_the_overlap(app, world):
    with app.app_context():
        with pytest.raises(IntegrityError):
            with db.transaction() as session:
                session.get(MicroTask, world["micro_task"]).taken = 3


def test_an_idempotency_key_pays_once(app, world):
    with app.app_context():
        entry = dict(annotator_id=world["annotator"], kind="earning", amount=125, currency="USD",
                     idempotency_key="earning:assignment:1")
        with db.transaction() as session:
            session.add(LedgerEntry(**entry))
        with pytest.raises(IntegrityError):
            with db.transaction() as session:
                session.add(LedgerEntry(**entry))
        assert db.session.query(LedgerEntry).count() == 1


def test_a_failed_unit_of_work_stores_nothing(app, world):
    with app.app_context():
        with pytest.raises(RuntimeError):
            with db.transaction() as session:
                session.add(Item(project_id=world["project"], data={"text": "y"}, content_hash=2))
                session.flush()
                raise RuntimeError("boom")
        assert db.session.query(Item).count() == 1
