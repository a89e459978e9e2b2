"""Projects with finished micro-tasks for the scoring, pay and review tests.

Written straight through the SQL models, not the dispatch API (which is
still moving): the state is what a finished micro-task leaves behind.
"""
from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import pytest

from annotate.extensions import db
from annotate.models import Annotation, Assignment, GoldAnswer, Item, MicroTask, MicroTaskItem, Project, utcnow
from tests.conftest import TEXT_CONFIG

_counter = itertools.count(1)


@dataclass
class Finished:
    micro_task_id: int
    item_ids: list[int]
    assignments: dict[int, int]  # annotator id -> assignment id


class Work:
    def __init__(self, app, people, teams):
        self.app, self.people = app, people
        self.requester = teams.requester()
        self.operator = teams.operator

    def annotators(self, n: int) -> list[int]:
        return [self.people.make().id for _ in range(n)]

    def project(self, config: str = TEXT_CONFIG, **settings) -> int:
        settings = {"overlap": 3, "max_overlap": 5, "pay_per_micro_task": 25, "currency": "USD",
                    "status": "live", **settings}
        with self.app.app_context(), db.transaction() as session:
            project = Project(team_id=self.requester.team_id, title="Reviews", label_config=config, **settings)
            session.add(project)
            session.flush()
            return project.id

    def micro_task(self, project_id: int, answers: dict[int, list[list]], *, gold: dict[int, list] | None = None,
                   seconds: float = 60.0, submitted_at: dt.datetime | None = None, qualification: bool = False,
                   status: str = "done") -> Finished:
        """One micro-task whose items got ``answers`` (annotator id -> one result per item).

        ``gold`` maps item positions to their gold answer: those items are gold items.
        """
        gold = gold or {}
        n_items = len(next(iter(answers.values())))
        submitted_at = submitted_at or utcnow()
        with self.app.app_context(), db.transaction() as session:
            items = []
            for position in range(n_items):
                n = next(_counter)
                item = Item(project_id=project_id, data={"text": f"item {n}"}, content_hash=n,
                            is_gold=position in gold)
                session.add(item)
                items.append(item)
            session.flush()
            for position, result in gold.items():
                session.add(GoldAnswer(item_id=items[position].id, result=result))
            mt = MicroTask(project_id=project_id, seq=next(_counter), overlap=len(answers), status=status,
                           is_qualification=qualification, taken=len(answers), submitted=len(answers),
                           done_at=submitted_at if status == "done" else None)
            mt.items = [MicroTaskItem(position=p, item_id=item.id) for p, item in enumerate(items)]
            session.add(mt)
            session.flush()
            assignments = {}
            for annotator_id, results in answers.items():
                a = Assignment(micro_task_id=mt.id, annotator_id=annotator_id, project_id=project_id,
                               status="submitted", leased_at=submitted_at - dt.timedelta(seconds=seconds),
                               lease_expires_at=submitted_at + dt.timedelta(minutes=10),
                               submitted_at=submitted_at, ended_at=submitted_at, active_seconds=seconds,
                               decision="pending")
                session.add(a)
                session.flush()
                for item, result in zip(items, results):
                    session.add(Annotation(assignment_id=a.id, item_id=item.id, result=result,
                                           seconds=seconds / n_items, created_at=submitted_at))
                assignments[annotator_id] = a.id
            return Finished(mt.id, [i.id for i in items], assignments)


@pytest.fixture
def work(app, people, teams) -> Work:
    return Work(app, people, teams)
